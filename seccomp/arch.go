package seccomp

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// Arch is a system call ABI that a filter can meet.
type Arch string

// The ABIs. A process on x86_64 can make system calls through three of
// them: x86_64 itself, i386 (int 0x80) and x32 (the x86_64 instruction
// with bit 30 set in the number).
const (
	X86_64  Arch = "x86_64"
	X86     Arch = "x86"
	X32     Arch = "x32"
	AARCH64 Arch = "aarch64"
	ARM     Arch = "arm"
)

// The AUDIT_ARCH_* values that seccomp_data.arch holds.
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAARCH64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

// x32Bit is the bit of the syscall number that selects the x32 ABI.
const x32Bit = 0x40000000

// NativeArch returns the ABI of the machine this program runs on, and the
// other ABIs a process on it can use.
func NativeArch() (native Arch, others []Arch) {
	switch runtime.GOARCH {
	case "amd64":
		return X86_64, []Arch{X86, X32}
	case "arm64":
		// arm (aarch32) has no table here: not listed, so killed.
		return AARCH64, nil
	}
	return Arch(runtime.GOARCH), nil
}

// ParseArch parses an ABI by our name or by libseccomp's (SCMP_ARCH_X86_64).
func ParseArch(s string) (Arch, error) {
	name := strings.ToLower(strings.TrimPrefix(s, "SCMP_ARCH_"))
	switch name {
	case "x86_64", "amd64":
		return X86_64, nil
	case "x86", "i386", "386":
		return X86, nil
	case "x32":
		return X32, nil
	case "aarch64", "arm64":
		return AARCH64, nil
	case "arm":
		return ARM, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64, x86, x32, aarch64 or arm)", s)
}

// audit returns the seccomp_data.arch value of a.
func (a Arch) audit() uint32 {
	switch a {
	case X86_64, X32:
		return auditArchX86_64
	case X86:
		return auditArchI386
	case AARCH64:
		return auditArchAARCH64
	case ARM:
		return auditArchARM
	}
	return 0
}

// entry is one syscall of a generated table.
type entry struct {
	name string
	nr   int
}

// tables are the syscall tables by name and by number, made on first use
// rather than at start-up, which every run of hakoniwa would pay for.
var tables = sync.OnceValue(func() map[Arch]*table {
	t := map[Arch]*table{
		X86_64:  newTable(tableX86_64),
		X86:     newTable(tableX86),
		AARCH64: newTable(tableAARCH64),
	}
	// x32 is x86_64 with its own numbers for some calls, all with x32Bit.
	x32 := make([]entry, len(tableX86_64))
	for i, e := range tableX86_64 {
		if nr, ok := x32Numbers[e.name]; ok {
			e.nr = nr
		}
		x32[i] = entry{e.name, e.nr | x32Bit}
	}
	t[X32] = newTable(x32)
	return t
})

type table struct {
	byName map[string]int
	byNr   map[int]string
}

func newTable(entries []entry) *table {
	t := &table{byName: make(map[string]int, len(entries)), byNr: make(map[int]string, len(entries))}
	for _, e := range entries {
		t.byName[e.name] = e.nr
		// One name per number, the first in the table's order (by number,
		// then by name), the same each time.
		if _, dup := t.byNr[e.nr]; !dup {
			t.byNr[e.nr] = e.name
		}
	}
	return t
}

// table returns a's syscall numbers by name, or nil for an ABI this
// package has no table for.
func (a Arch) table() map[string]int {
	if t := tables()[a]; t != nil {
		return t.byName
	}
	return nil
}

// Number returns the number of the syscall name in a.
func (a Arch) Number(name string) (int, bool) {
	n, ok := a.table()[name]
	return n, ok
}

// Name returns the name of syscall number nr in a, or "".
func (a Arch) Name(nr int) string {
	if t := tables()[a]; t != nil {
		return t.byNr[nr]
	}
	return ""
}

// x32Numbers are the x32 ABI's own numbers for the syscalls whose
// arguments differ from x86_64's (arch/x86/entry/syscalls/syscall_64.tbl,
// 512-547); x32 cannot reach the x86_64 numbers of these. Every other
// x86_64 syscall is x32's too, with x32Bit set.
var x32Numbers = map[string]int{
	"rt_sigaction": 512, "rt_sigreturn": 513, "ioctl": 514, "readv": 515,
	"writev": 516, "recvfrom": 517, "sendmsg": 518, "recvmsg": 519,
	"execve": 520, "ptrace": 521, "rt_sigpending": 522, "rt_sigtimedwait": 523,
	"rt_sigqueueinfo": 524, "sigaltstack": 525, "timer_create": 526, "mq_notify": 527,
	"kexec_load": 528, "waitid": 529, "set_robust_list": 530, "get_robust_list": 531,
	"vmsplice": 532, "move_pages": 533, "preadv": 534, "pwritev": 535,
	"rt_tgsigqueueinfo": 536, "recvmmsg": 537, "sendmmsg": 538, "process_vm_readv": 539,
	"process_vm_writev": 540, "setsockopt": 541, "getsockopt": 542, "io_setup": 543,
	"io_submit": 544, "execveat": 545, "preadv2": 546, "pwritev2": 547,
}
