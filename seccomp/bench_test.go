package seccomp

import (
	"runtime"
	"sort"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// BenchmarkCompileDocker compiles Docker's profile (three ABIs, about
// 1100 instructions with trampolines); the target is under 1 ms.
func BenchmarkCompileDocker(b *testing.B) {
	p, err := Docker()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		filter, err := Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		n = len(filter)
	}
	b.ReportMetric(float64(n), "insns")
}

// BenchmarkDockerProfile resolves Docker's profile and compiles it, as
// a sandbox start with --seccomp=docker does.
func BenchmarkDockerProfile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := Docker()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileDefault compiles hakoniwa's default profile.
func BenchmarkCompileDefault(b *testing.B) {
	p, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileBig compiles a profile near the kernel's limit, with
// many trampolines.
func BenchmarkCompileBig(b *testing.B) {
	p := bigProfile(len(tableX86_64), false, X86_64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyscall measures what a filter costs a system call, on a
// thread that has loaded the filter (the thread ends with the benchmark,
// so the filter never reaches another goroutine): with no filter, with
// the default profile (a binary search), and with a linear filter that
// tests Docker's allowlist one number after another in name order, as a
// naive compiler would. Since Linux 5.11 the kernel skips the filter for
// a call that it allows whatever the arguments (getpid here): only a call
// with argument checks runs it (ioctl, checked for TIOCSTI and TIOCLINUX
// by both filters).
func BenchmarkSyscall(b *testing.B) {
	def, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	defProg, err := Compile(def)
	if err != nil {
		b.Fatal(err)
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	var n int
	calls := []struct {
		name string
		call func()
	}{
		{"getpid", func() { unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0) }},
		{"ioctl", func() {
			unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCINQ, uintptr(unsafe.Pointer(&n)))
		}},
	}
	for _, c := range calls {
		for _, f := range []struct {
			name string
			prog []unix.SockFilter
		}{
			{"unconfined", nil},
			{"default", defProg},
			{"linear", linearFilter(b, def)},
		} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				done := make(chan error)
				go func() {
					runtime.LockOSThread() // never unlocked: the thread dies with its filter
					if f.prog != nil {
						if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
							done <- err
							return
						}
						fprog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
						if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
							done <- e
							return
						}
					}
					for b.Loop() {
						c.call()
					}
					done <- nil
				}()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// linearFilter returns a filter that allows the unconditional allow rules
// of p on the native ABI, one comparison each in name order (ioctl after
// checking its request for TIOCSTI and TIOCLINUX, as the default does),
// and returns p's default for the rest.
func linearFilter(b *testing.B, p *Profile) []unix.SockFilter {
	native, _ := NativeArch()
	var names []string
	for _, r := range p.Rules {
		if len(r.Conds) == 0 && r.Action.Kind == ActAllow {
			names = append(names, r.Names...)
		}
	}
	sort.Strings(names)
	insns := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: native.audit(), SkipTrue: 1},
		bpf.RetConstant{Val: KillProcess.ret()},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	eperm := Errno(uint16(unix.EPERM)).ret()
	for _, n := range names {
		nr, _ := native.Number(n)
		if n != "ioctl" {
			insns = append(insns,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 1},
				bpf.RetConstant{Val: Allow.ret()})
			continue
		}
		insns = append(insns,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 6},
			bpf.LoadAbsolute{Off: offArgs + 8, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCSTI, SkipTrue: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCLINUX, SkipTrue: 1},
			bpf.RetConstant{Val: Allow.ret()},
			bpf.RetConstant{Val: eperm},
			bpf.LoadAbsolute{Off: offNr, Size: 4})
	}
	insns = append(insns, bpf.RetConstant{Val: p.Default.ret()})
	raw, err := bpf.Assemble(insns)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}
