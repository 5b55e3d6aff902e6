package seccomp

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// nsFlags are the namespace flags of clone and unshare.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// Learner records the system calls a command makes, through a filter
// that hands every call to a supervisor (SECCOMP_RET_USER_NOTIF), which
// records it and lets it go on; Profile then returns the smallest
// allowlist that lets the same run through. Besides the syscall names,
// it records the arguments that the default profile checks: ioctl's
// requests, socket's address families, and whether clone or unshare made
// namespaces. A Learner is safe for concurrent use.
type Learner struct {
	mu      sync.Mutex
	calls   map[Arch]map[string]bool
	ioctls  map[uint32]bool
	domains map[uint32]bool
	cloneNS bool
	unknown map[string]bool // numbers that no table names, as "arch/nr"
}

// NewLearner returns an empty Learner.
func NewLearner() *Learner {
	return &Learner{calls: map[Arch]map[string]bool{}, ioctls: map[uint32]bool{}, domains: map[uint32]bool{}, unknown: map[string]bool{}}
}

// Filter returns the profile that notifies the supervisor of every call,
// through every ABI of the machine.
func (l *Learner) Filter() *Profile {
	native, others := NativeArch()
	return &Profile{Default: Notify, Arches: append([]Arch{native}, others...)}
}

// Record records one call, as the kernel describes it (seccomp_data).
func (l *Learner) Record(auditArch uint32, nr int32, args [6]uint64) {
	var a Arch
	switch auditArch {
	case auditArchX86_64:
		a = X86_64
		if nr&x32Bit != 0 {
			a = X32
		}
	case auditArchI386:
		a = X86
	case auditArchAARCH64:
		a = AARCH64
	}
	name := a.Name(int(nr)) // "" for an ABI with no table, such as arm
	l.mu.Lock()
	defer l.mu.Unlock()
	if name == "" {
		l.unknown[fmt.Sprintf("%#x/%d", auditArch, nr)] = true
		return
	}
	if l.calls[a] == nil {
		l.calls[a] = map[string]bool{}
	}
	l.calls[a][name] = true
	switch name {
	case "ioctl":
		l.ioctls[uint32(args[1])] = true // the kernel reads the request as 32 bits
	case "socket":
		l.domains[uint32(args[0])] = true
	case "clone", "unshare":
		if args[0]&nsFlags != 0 {
			l.cloneNS = true
		}
	case "clone3":
		// Its flags are in a struct, out of a filter's reach: allowed
		// only when the command made namespaces (as far as clone and
		// unshare show), else ENOSYS, on which the C library falls back
		// to clone.
	}
}

// Unknown returns the calls whose numbers no table names.
func (l *Learner) Unknown() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k := range l.unknown {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Profile returns the allowlist of what was recorded: EPERM for every
// other call, the ABIs that were used, ioctl only with the requests seen,
// socket only with the address families seen, clone and unshare without
// namespace flags and clone3 refused with ENOSYS unless the command made
// namespaces, and the default profile's argument checks in front.
func (l *Learner) Profile() *Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	native, others := NativeArch()
	p := &Profile{Default: Errno(uint16(unix.EPERM)), Arches: []Arch{native}}
	for _, a := range others {
		if len(l.calls[a]) > 0 {
			p.Arches = append(p.Arches, a)
		}
	}
	names := map[string]bool{}
	for _, calls := range l.calls {
		for n := range calls {
			names[n] = true
		}
	}
	var plain []string
	for n := range names {
		switch n {
		case "ioctl", "socket":
		case "clone", "unshare", "clone3":
			if l.cloneNS {
				plain = append(plain, n)
			}
		default:
			plain = append(plain, n)
		}
	}
	sort.Strings(plain)
	if len(plain) > 0 {
		p.Rules = append(p.Rules, Rule{Names: plain, Action: Allow})
	}
	low := uint64(0xffffffff)
	for _, req := range sortedKeys(l.ioctls) {
		p.Rules = append(p.Rules, Rule{Names: []string{"ioctl"}, Action: Allow,
			Conds: []Cond{{Index: 1, Op: OpMaskedEQ, Mask: low, Value: uint64(req)}}})
	}
	for _, dom := range sortedKeys(l.domains) {
		p.Rules = append(p.Rules, Rule{Names: []string{"socket"}, Action: Allow,
			Conds: []Cond{{Index: 0, Op: OpMaskedEQ, Mask: low, Value: uint64(dom)}}})
	}
	if !l.cloneNS {
		for _, n := range []string{"clone", "unshare"} {
			if names[n] {
				p.Rules = append(p.Rules, Rule{Names: []string{n}, Action: Allow,
					Conds: []Cond{{Index: 0, Op: OpMaskedEQ, Mask: nsFlags, Value: 0}}})
			}
		}
		if names["clone3"] {
			p.Rules = append(p.Rules, Rule{Names: []string{"clone3"}, Action: Errno(uint16(unix.ENOSYS))})
		}
	}
	// The default profile's argument checks come first, as there: a run
	// that used ioctl or socket does not open TIOCSTI or MPTCP; nor one
	// that used clone, new user namespaces, unless it made namespaces.
	var front []Rule
	for _, r := range denied() {
		if l.cloneNS && (r.Names[0] == "clone" || r.Names[0] == "unshare") {
			continue
		}
		front = append(front, r)
	}
	p.Rules = append(front, p.Rules...)
	return p
}

func sortedKeys(m map[uint32]bool) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ociArch names an ABI as libseccomp does.
var ociArch = map[Arch]string{X86_64: "SCMP_ARCH_X86_64", X86: "SCMP_ARCH_X86", X32: "SCMP_ARCH_X32", AARCH64: "SCMP_ARCH_AARCH64", ARM: "SCMP_ARCH_ARM"}

var ociOpNames = map[Op]string{OpEQ: "SCMP_CMP_EQ", OpNE: "SCMP_CMP_NE", OpLT: "SCMP_CMP_LT",
	OpLE: "SCMP_CMP_LE", OpGT: "SCMP_CMP_GT", OpGE: "SCMP_CMP_GE", OpMaskedEQ: "SCMP_CMP_MASKED_EQ"}

// JSON writes p as a Docker/OCI profile, which ParseJSON reads back to
// the same filter. Each rule with conditions is its own entry, and a rule
// must not name an argument twice (OCI would read that as either).
func (p *Profile) JSON() ([]byte, error) {
	type arg struct {
		Index    uint   `json:"index"`
		Value    uint64 `json:"value"`
		ValueTwo uint64 `json:"valueTwo,omitempty"`
		Op       string `json:"op"`
	}
	type syscall struct {
		Names    []string `json:"names"`
		Action   string   `json:"action"`
		ErrnoRet *uint    `json:"errnoRet,omitempty"`
		Args     []arg    `json:"args,omitempty"`
	}
	type profile struct {
		DefaultAction   string    `json:"defaultAction"`
		DefaultErrnoRet *uint     `json:"defaultErrnoRet,omitempty"`
		Architectures   []string  `json:"architectures"`
		Syscalls        []syscall `json:"syscalls"`
	}
	action := func(a Action) (string, *uint) {
		names := map[ActionKind]string{ActAllow: "SCMP_ACT_ALLOW", ActErrno: "SCMP_ACT_ERRNO",
			ActKillProcess: "SCMP_ACT_KILL_PROCESS", ActKillThread: "SCMP_ACT_KILL_THREAD", ActTrap: "SCMP_ACT_TRAP",
			ActLog: "SCMP_ACT_LOG", ActTrace: "SCMP_ACT_TRACE", ActNotify: "SCMP_ACT_NOTIFY"}
		if a.Kind == ActErrno || a.Kind == ActTrace {
			e := uint(a.Errno)
			return names[a.Kind], &e
		}
		return names[a.Kind], nil
	}
	out := profile{Syscalls: []syscall{}}
	out.DefaultAction, out.DefaultErrnoRet = action(p.Default)
	for _, a := range p.arches() {
		out.Architectures = append(out.Architectures, ociArch[a])
	}
	for i, r := range p.Rules {
		sc := syscall{Names: r.Names}
		sc.Action, sc.ErrnoRet = action(r.Action)
		seen := map[uint8]bool{}
		for _, c := range r.Conds {
			if seen[c.Index] {
				return nil, fmt.Errorf("seccomp: rule %d names argument %d twice, which OCI reads as either", i, c.Index)
			}
			seen[c.Index] = true
			a := arg{Index: uint(c.Index), Value: c.Value, Op: ociOpNames[c.Op]}
			if c.Op == OpMaskedEQ {
				a.Value, a.ValueTwo = c.Mask, c.Value
			}
			sc.Args = append(sc.Args, a)
		}
		out.Syscalls = append(out.Syscalls, sc)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
