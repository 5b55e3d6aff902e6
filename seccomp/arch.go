package seccomp

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
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
		return AARCH64, []Arch{ARM}
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

// table returns a's syscall numbers by name, or nil for an ABI this
// package has no table for.
func (a Arch) table() map[string]int {
	switch a {
	case X86_64:
		return tableX86_64
	case X86:
		return tableX86
	case X32:
		return tableX32
	case AARCH64:
		return tableAARCH64
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
	return byNumberCache[a][nr]
}

// byNumberCache is every table turned around, made once.
var byNumberCache = map[Arch]map[int]string{}

func byNumber(a Arch) map[int]string {
	m := map[int]string{}
	t := a.table()
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names) // one name per number, the same each time
	for _, n := range names {
		if _, dup := m[t[n]]; !dup {
			m[t[n]] = n
		}
	}
	return m
}

func init() {
	for _, a := range []Arch{X86_64, X86, X32, AARCH64} {
		byNumberCache[a] = byNumber(a)
	}
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

// tableX32 is x86_64's table with the x32 numbers, all with x32Bit.
var tableX32 = func() map[string]int {
	t := make(map[string]int, len(tableX86_64))
	for name, nr := range tableX86_64 {
		if x, ok := x32Numbers[name]; ok {
			nr = x
		}
		t[name] = nr | x32Bit
	}
	return t
}()
