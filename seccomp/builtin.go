package seccomp

import (
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// blocked are the syscalls the default profile takes out of Docker's
// allowlist, so that they get its default, EPERM: io_uring (a second
// syscall interface that filters do not see through), ptrace and the
// process_vm_* calls (reading and writing another process), userfaultfd
// (a tool of kernel exploits), and, whatever Docker's capability rules
// say, the keyring, BPF, perf, kexec, modules and the mount API.
var blocked = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"userfaultfd",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
	"open_tree", "move_mount", "mount_setattr",
}

// denied are the default profile's rules for calls it refuses by their
// arguments. They come before Docker's rules, so they win.
func denied() []Rule {
	eperm := Errno(uint16(unix.EPERM))
	low := uint64(0xffffffff)
	return []Rule{
		// TIOCSTI pushes input into the terminal; TIOCLINUX can too. The
		// kernel reads the request as 32 bits, so it is matched whatever
		// the high half holds.
		{Names: []string{"ioctl"}, Action: eperm, Conds: []Cond{{Index: 1, Op: OpMaskedEQ, Mask: low, Value: unix.TIOCSTI}}},
		{Names: []string{"ioctl"}, Action: eperm, Conds: []Cond{{Index: 1, Op: OpMaskedEQ, Mask: low, Value: unix.TIOCLINUX}}},
		// No new user namespaces: they open the kernel's code for
		// namespaced root to the command.
		{Names: []string{"unshare"}, Action: eperm, Conds: []Cond{{Index: 0, Op: OpMaskedEQ, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}}},
		{Names: []string{"clone"}, Action: eperm, Conds: []Cond{{Index: 0, Op: OpMaskedEQ, Mask: unix.CLONE_NEWUSER, Value: unix.CLONE_NEWUSER}}},
		// MPTCP sockets (IPPROTO_MPTCP), a large and young part of the
		// network stack. The protocol is an int: matched on its 32 bits.
		{Names: []string{"socket"}, Action: eperm, Conds: []Cond{{Index: 2, Op: OpMaskedEQ, Mask: low, Value: 262}}},
	}
}

// WithoutMPTCP returns p, or a profile that allows everything when p is
// nil, with MPTCP sockets refused (EPERM) in front of its rules, and
// io_uring and i386's socketcall, which could make one unseen. Landlock's
// TCP rules do not cover MPTCP, so a command whose TCP is restricted must
// not get it.
func WithoutMPTCP(p *Profile) *Profile {
	var q Profile
	if p == nil {
		native, others := NativeArch()
		q = Profile{Default: Allow, Arches: append([]Arch{native}, others...)}
	} else {
		q = *p
	}
	low := uint64(0xffffffff)
	eperm := Errno(uint16(unix.EPERM))
	front := []Rule{
		{Names: []string{"socket"}, Action: eperm, Conds: []Cond{{Index: 2, Op: OpMaskedEQ, Mask: low, Value: unix.IPPROTO_MPTCP}}},
		// io_uring makes sockets (IORING_OP_SOCKET) where no filter
		// sees them.
		{Names: []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}, Action: eperm},
	}
	if slices.Contains(q.arches(), X86) {
		// i386's socketcall passes socket's arguments in memory, where
		// no filter sees them: refused (programs use socket itself since
		// Linux 4.3).
		front = append(front, Rule{Names: []string{"socketcall"}, Action: eperm})
	}
	q.Rules = append(front, q.Rules...)
	return &q
}

// Default returns hakoniwa's default profile: Docker's default allowlist
// (EPERM for everything else, ENOSYS for clone3 so that the C library
// falls back to clone, where the flags can be seen), without the calls in
// blocked, and with the argument checks of denied in front. See
// docs/seccomp.md for the reasons, list by list.
func Default() (*Profile, error) {
	p, err := Docker()
	if err != nil {
		return nil, err
	}
	// The native ABI alone: calls through i386 (int 0x80) or x32 kill, as
	// almost nothing needs them and filters keep missing them.
	native, _ := NativeArch()
	p.Arches = []Arch{native}
	var rules []Rule
	for _, r := range p.Rules {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool {
			_, ok := native.Number(n)
			return !ok || slices.Contains(blocked, n)
		})
		if len(r.Names) > 0 {
			rules = append(rules, r)
		}
	}
	p.Rules = append(denied(), rules...)
	return p, nil
}

// Builtin names the profiles that --seccomp takes by name.
var Builtin = []string{"default", "docker", "podman", "audit", "unconfined"}

// Load returns the profile that name selects: a built-in one (nil for
// "unconfined") or a JSON profile at that path. It also returns the
// syscall names of a JSON profile that this machine does not have.
func Load(name string) (*Profile, []string, error) {
	switch name {
	case "default":
		p, err := Default()
		return p, nil, err
	case "docker", "podman":
		p, err := Docker()
		return p, nil, err
	case "audit":
		return Audit(), nil, nil
	case "unconfined":
		return nil, nil, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp profile: %w", err)
	}
	p, unknown, err := ParseJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, unknown, nil
}

// Audit returns a profile that allows every syscall and logs each one.
func Audit() *Profile {
	native, others := NativeArch()
	return &Profile{Default: Log, Arches: append([]Arch{native}, others...)}
}

// FromSeed builds the profile of the seed's policy section: syscalls with
// dismatch_action "kill_process" (an allowlist: any other call kills),
// "allow" (a denylist: the listed calls kill) or "log" (the listed calls
// are allowed, any other is logged).
func FromSeed(syscalls []string, dismatchAction string) (*Profile, error) {
	var p *Profile
	switch dismatchAction {
	case "", "kill_process", "kill":
		p = &Profile{Default: KillProcess, Rules: []Rule{{Names: syscalls, Action: Allow}}}
	case "allow":
		p = &Profile{Default: Allow, Rules: []Rule{{Names: syscalls, Action: KillProcess}}}
	case "log":
		p = &Profile{Default: Log, Rules: []Rule{{Names: syscalls, Action: Allow}}}
	default:
		return nil, fmt.Errorf("dismatch_action %q: want kill_process, allow or log", dismatchAction)
	}
	if len(syscalls) == 0 {
		p.Rules = nil
	}
	return p, p.Check()
}
