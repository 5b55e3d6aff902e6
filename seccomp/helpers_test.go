package seccomp

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// This file holds the tests' shared helpers: compiling through the public
// Compile, running a program in x/net/bpf's VM (see run in
// compile_test.go), the seccomp return values from x/sys/unix, and a
// reference evaluator of a Profile written without the compiler.

// mustCompile compiles p with Compile, the public entry point, checks the
// kernel's length limit, and turns the kernel's instructions back into
// x/net/bpf's, so that the tests run exactly what would be loaded.
func mustCompile(t testing.TB, p *Profile) []bpf.Instruction {
	t.Helper()
	filter, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile(%s): %v", p.Summary(), err)
	}
	return toVM(t, filter)
}

// toVM turns a compiled filter into x/net/bpf instructions.
func toVM(t testing.TB, filter []unix.SockFilter) []bpf.Instruction {
	t.Helper()
	if len(filter) == 0 || len(filter) > 4096 {
		t.Fatalf("filter has %d instructions, want 1 to 4096", len(filter))
	}
	raw := make([]bpf.RawInstruction, len(filter))
	for i, f := range filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the filter has instructions x/net/bpf cannot decode")
	}
	return insns
}

// newVM makes a VM for prog, for tests that run one program many times.
func newVM(t testing.TB, prog []bpf.Instruction) *bpf.VM {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return vm
}

// runVM is run (compile_test.go) on a VM made once.
func runVM(t testing.TB, vm *bpf.VM, c call) uint32 {
	t.Helper()
	out, err := vm.Run(seccompData(c))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(out)
}

// seccompData encodes c as struct seccomp_data, each 32-bit word
// big-endian (see run).
func seccompData(c call) []byte {
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], c.nr)
	binary.BigEndian.PutUint32(data[4:], c.arch.audit())
	for i, a := range c.args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	return data
}

// retOf is the filter's return value for a, from the kernel's constants
// (not from Action.ret, which the tests check).
func retOf(a Action) uint32 {
	switch a.Kind {
	case ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(a.Errno)&unix.SECCOMP_RET_DATA
	case ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case ActTrap:
		return unix.SECCOMP_RET_TRAP
	case ActLog:
		return unix.SECCOMP_RET_LOG
	case ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(a.Errno)&unix.SECCOMP_RET_DATA
	case ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	}
	return unix.SECCOMP_RET_KILL_PROCESS
}

var (
	retAllow = uint32(unix.SECCOMP_RET_ALLOW)
	retKill  = uint32(unix.SECCOMP_RET_KILL_PROCESS)
	retLog   = uint32(unix.SECCOMP_RET_LOG)
)

func retErrno(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

// The reference evaluator.

// refABI is the ABI of a call that the kernel reports with audit arch
// audit and number nr, or "" for an audit arch no ABI has.
func refABI(audit, nr uint32) Arch {
	switch audit {
	case unix.AUDIT_ARCH_X86_64:
		if nr >= 0x40000000 && nr < 0x80000000 {
			return X32
		}
		return X86_64
	case unix.AUDIT_ARCH_I386:
		return X86
	case unix.AUDIT_ARCH_AARCH64:
		return AARCH64
	case unix.AUDIT_ARCH_ARM:
		return ARM
	}
	return ""
}

// refHolds says whether condition c holds for args.
func refHolds(c Cond, args [6]uint64) bool {
	a := args[c.Index]
	switch c.Op {
	case OpEQ:
		return a == c.Value
	case OpNE:
		return a != c.Value
	case OpLT:
		return a < c.Value
	case OpLE:
		return a <= c.Value
	case OpGT:
		return a > c.Value
	case OpGE:
		return a >= c.Value
	case OpMaskedEQ:
		return a&c.Mask == c.Value
	}
	panic("bad op")
}

// refAction is what p must do with c: kill when c's ABI is not one of
// p's, else the action of the first rule that names c's syscall and whose
// conditions all hold, else p's default.
func refAction(p *Profile, c call) Action {
	abi := refABI(c.arch.audit(), c.nr)
	arches := p.Arches
	if len(arches) == 0 {
		native, _ := NativeArch()
		arches = []Arch{native}
	}
	if abi == "" || !slices.Contains(arches, abi) {
		return KillProcess
	}
	for _, r := range p.Rules {
		named := false
		for _, name := range r.Names {
			if n, ok := abi.Number(name); ok && uint32(n) == c.nr {
				named = true
			}
		}
		if !named {
			continue
		}
		holds := true
		for _, cd := range r.Conds {
			holds = holds && refHolds(cd, c.args)
		}
		if holds {
			return r.Action
		}
	}
	return p.Default
}

// Random values.

// boundaries are the values where 64-bit comparisons over two 32-bit
// halves go wrong.
var boundaries = []uint64{
	0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	1 << 32, 1<<32 + 1, 0x1_ffffffff, 0x2_00000000,
	0x7fffffff_ffffffff, 1 << 63, 1<<63 + 1,
	0xffffffff_00000000, 0xffffffff_fffffffe, math.MaxUint64,
}

// randValue draws a 64-bit value, often a boundary or one with only one
// half set.
func randValue(r *rand.Rand) uint64 {
	switch r.IntN(5) {
	case 0:
		return boundaries[r.IntN(len(boundaries))]
	case 1:
		return r.Uint64()
	case 2:
		return uint64(r.Uint32())
	case 3:
		return r.Uint64()&^0xffffffff | uint64(r.IntN(3))
	default:
		return uint64(r.IntN(64))
	}
}

// near draws a value close to v: v itself, v±1, v with one bit of one
// half flipped, v with a half replaced, or a new value.
func near(r *rand.Rand, v uint64) uint64 {
	switch r.IntN(9) {
	case 0, 1:
		return v
	case 2:
		return v + 1
	case 3:
		return v - 1
	case 4:
		return v ^ 1<<(32+r.IntN(32)) // the high half differs
	case 5:
		return v ^ 1<<r.IntN(32) // the low half differs
	case 6:
		return v&0xffffffff | uint64(r.Uint32())<<32
	case 7:
		return v&^0xffffffff | uint64(r.Uint32())
	default:
		return randValue(r)
	}
}

// namesOf returns the names of a's syscalls, sorted.
func namesOf(a Arch) []string {
	var names []string
	for n := range a.table() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// randCall draws a call that p's rules are likely to meet: mostly a
// syscall p names, through one of the ABIs, with arguments near the
// values of p's conditions.
func randCall(r *rand.Rand, p *Profile, abis []Arch) call {
	abi := abis[r.IntN(len(abis))]
	var c call
	c.arch = abi
	switch k := r.IntN(10); {
	case k < 6 && len(p.Rules) > 0:
		rule := p.Rules[r.IntN(len(p.Rules))]
		n, ok := abi.Number(rule.Names[r.IntN(len(rule.Names))])
		if !ok {
			n = r.IntN(600)
		}
		c.nr = uint32(n)
	case k < 8:
		names := namesOf(abi)
		if len(names) == 0 {
			c.nr = uint32(r.IntN(600))
			break
		}
		n, _ := abi.Number(names[r.IntN(len(names))])
		c.nr = uint32(n)
	case k < 9:
		c.nr = uint32(r.IntN(1024))
		if abi == X32 {
			c.nr |= 0x40000000
		}
	default:
		c.nr = r.Uint32()
	}
	var values []uint64
	for _, rule := range p.Rules {
		for _, cd := range rule.Conds {
			values = append(values, cd.Value)
			if cd.Op == OpMaskedEQ {
				values = append(values, cd.Value|r.Uint64()&^cd.Mask, cd.Mask)
			}
		}
	}
	for i := range c.args {
		if len(values) > 0 && r.IntN(4) != 0 {
			c.args[i] = near(r, values[r.IntN(len(values))])
		} else {
			c.args[i] = randValue(r)
		}
	}
	return c
}

// checkAgainstRef runs n random calls through prog and the reference.
func checkAgainstRef(t *testing.T, r *rand.Rand, p *Profile, prog []bpf.Instruction, abis []Arch, n int) {
	t.Helper()
	vm := newVM(t, prog)
	bad := 0
	for range n {
		c := randCall(r, p, abis)
		want := retOf(refAction(p, c))
		if got := runVM(t, vm, c); got != want {
			t.Errorf("%s nr %#x (%s) args %#x: got %#x, want %#x (%s)",
				c.arch, c.nr, refABI(c.arch.audit(), c.nr).Name(int(c.nr)), c.args, got, want, refAction(p, c))
			if bad++; bad > 10 {
				t.Fatal("too many failures")
			}
		}
	}
}

// sameProfile says whether a and b are the same profile, nil and empty
// slices alike.
func sameProfile(a, b *Profile) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Default == b.Default && slices.Equal(a.Arches, b.Arches) &&
		slices.EqualFunc(a.Rules, b.Rules, func(x, y Rule) bool {
			return x.Action == y.Action && slices.Equal(x.Names, y.Names) && slices.Equal(x.Conds, y.Conds)
		})
}
