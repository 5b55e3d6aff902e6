package seccomp

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pthreadFlags are the clone flags of glibc's pthread_create.
const pthreadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS |
	unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID

// builtinCase is one call to a builtin profile, by syscall name.
type builtinCase struct {
	arch Arch
	name string
	args [6]uint64
	want uint32
}

func runBuiltinCases(t *testing.T, p *Profile, cases []builtinCase) {
	t.Helper()
	vm := newVM(t, mustCompile(t, p))
	for _, tc := range cases {
		c := call{tc.arch, nr(t, tc.arch, tc.name), tc.args}
		if got := runVM(t, vm, c); got != tc.want {
			t.Errorf("%s %s(%#x): got %#x, want %#x", tc.arch, tc.name, tc.args[:3], got, tc.want)
		}
		if ref := retOf(refAction(p, c)); ref != tc.want {
			t.Errorf("%s %s(%#x): the reference says %#x, the table %#x", tc.arch, tc.name, tc.args[:3], ref, tc.want)
		}
	}
}

func TestDefault(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	native, _ := NativeArch()
	if !slices.Equal(p.Arches, []Arch{native}) {
		t.Errorf("Default arches %v, want the native one alone", p.Arches)
	}
	if p.Default != Errno(1) {
		t.Errorf("Default's default %s, want errno(1)", p.Default)
	}
	for i, r := range denied() {
		if !sameProfile(&Profile{Rules: []Rule{p.Rules[i]}}, &Profile{Rules: []Rule{r}}) {
			t.Errorf("rule %d is %s, want the denied rule %s", i, p.Rules[i], r)
		}
	}
	for _, r := range p.Rules[len(denied()):] {
		for _, n := range r.Names {
			if slices.Contains(blocked, n) {
				t.Errorf("blocked %s in rule %s", n, r)
			}
			if _, ok := native.Number(n); !ok {
				t.Errorf("non-native %s in rule %s", n, r)
			}
		}
	}
	if native != X86_64 {
		t.Skip("the calls below are x86_64's")
	}
	eperm, enosys := retErrno(uint32(unix.EPERM)), retErrno(uint32(unix.ENOSYS))
	cases := []builtinCase{
		// TIOCSTI and TIOCLINUX, whatever the high half of the request.
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCSTI}, eperm},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCSTI | 1<<32}, eperm},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCSTI | 0xffffffff_00000000}, eperm},
		{X86_64, "ioctl", [6]uint64{7, unix.TIOCLINUX}, eperm},
		{X86_64, "ioctl", [6]uint64{7, unix.TIOCLINUX | 1<<63}, eperm},
		{X86_64, "ioctl", [6]uint64{0, unix.TCGETS}, retAllow},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCGWINSZ}, retAllow},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCINQ}, retAllow},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCSTI + 1}, retAllow},
		{X86_64, "ioctl", [6]uint64{0, unix.TIOCSTI ^ 1<<16}, retAllow},
		{X86_64, "ioctl", [6]uint64{unix.TIOCSTI, 0}, retAllow}, // the fd is not the request
		// No new user namespaces.
		{X86_64, "unshare", [6]uint64{unix.CLONE_NEWUSER}, eperm},
		{X86_64, "unshare", [6]uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNS | 1<<40}, eperm},
		{X86_64, "clone", [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm},
		{X86_64, "clone", [6]uint64{unix.CLONE_NEWUSER | 1<<32}, eperm},
		{X86_64, "clone", [6]uint64{unix.CLONE_NEWNET | uint64(unix.SIGCHLD)}, eperm}, // Docker's namespace mask
		// Threads, fork and posix_spawn's vfork go on.
		{X86_64, "clone", [6]uint64{pthreadFlags, 0x7f00_0000_1000}, retAllow},
		{X86_64, "clone", [6]uint64{uint64(unix.SIGCHLD)}, retAllow},
		{X86_64, "clone", [6]uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, retAllow},
		{X86_64, "clone3", [6]uint64{}, enosys},
		// Everyday calls.
		{X86_64, "read", [6]uint64{}, retAllow},
		{X86_64, "write", [6]uint64{1, 0, 5}, retAllow},
		{X86_64, "execve", [6]uint64{}, retAllow},
		{X86_64, "openat", [6]uint64{uint64(0xffffff9c)}, retAllow},
		{X86_64, "close", [6]uint64{}, retAllow},
		{X86_64, "mmap", [6]uint64{}, retAllow},
		{X86_64, "futex", [6]uint64{}, retAllow},
		{X86_64, "exit_group", [6]uint64{}, retAllow},
		{X86_64, "rt_sigreturn", [6]uint64{}, retAllow},
		// Sockets: by family, and no MPTCP.
		{X86_64, "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 0}, retAllow},
		{X86_64, "socket", [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP}, retAllow},
		{X86_64, "socket", [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0}, retAllow},
		{X86_64, "socket", [6]uint64{unix.AF_NETLINK, unix.SOCK_RAW, 0}, retAllow},
		{X86_64, "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}, eperm},
		{X86_64, "socket", [6]uint64{unix.AF_INET6, unix.SOCK_STREAM, 262}, eperm},
		{X86_64, "socket", [6]uint64{unix.AF_VSOCK, unix.SOCK_STREAM, 0}, eperm},
		{X86_64, "socket", [6]uint64{unix.AF_INET | 1<<32, unix.SOCK_STREAM, 0}, eperm},
		// Docker's personality values only.
		{X86_64, "personality", [6]uint64{0}, retAllow},
		{X86_64, "personality", [6]uint64{0xffffffff}, retAllow},
		{X86_64, "personality", [6]uint64{0x0040000}, eperm}, // ADDR_NO_RANDOMIZE
	}
	for _, n := range []string{
		"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
		"process_vm_writev", "bpf", "keyctl", "add_key", "request_key", "mount", "umount2",
		"userfaultfd", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
		"finit_module", "delete_module", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
		"open_tree", "move_mount", "mount_setattr", "setns",
	} {
		cases = append(cases, builtinCase{X86_64, n, [6]uint64{}, eperm})
	}
	// The native ABI alone: i386 and x32 kill.
	for _, n := range []string{"read", "write", "execve", "exit_group"} {
		cases = append(cases, builtinCase{X86, n, [6]uint64{}, retKill}, builtinCase{X32, n, [6]uint64{}, retKill})
	}
	runBuiltinCases(t, p, cases)
	prog := mustCompile(t, p)
	for _, c := range []call{
		{X86_64, 1000, [6]uint64{}}, {X86_64, 0xffffffff, [6]uint64{}}, {X86_64, 0x80000000, [6]uint64{}},
	} {
		if got := run(t, prog, c); got != eperm {
			t.Errorf("nr %#x: got %#x, want EPERM", c.nr, got)
		}
	}
	if got := run(t, prog, call{AARCH64, 63, [6]uint64{}}); got != retKill {
		t.Errorf("aarch64 call: got %#x, want kill", got)
	}
}

// TestDefaultMPTCPHighBits: socket's protocol is an int, and the kernel
// drops the high half of the register, so socket(AF_INET, SOCK_STREAM,
// 1<<32|IPPROTO_MPTCP) makes an MPTCP socket. The OpEQ rule of denied
// compares all 64 bits and lets it through (TIOCSTI's rule masks the
// high half; this one does not).
func TestDefaultMPTCPHighBits(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	prog := mustCompile(t, p)
	eperm := retErrno(uint32(unix.EPERM))
	for _, proto := range []uint64{1<<32 | unix.IPPROTO_MPTCP, 0xffffffff_00000000 | unix.IPPROTO_MPTCP} {
		c := call{X86_64, nr(t, X86_64, "socket"), [6]uint64{unix.AF_INET, unix.SOCK_STREAM, proto}}
		if got := run(t, prog, c); got != eperm {
			t.Fatalf("Default allows socket(AF_INET, SOCK_STREAM, %#x), which the kernel reads as IPPROTO_MPTCP: got %#x, want EPERM %#x", proto, got, eperm)
		}
	}
}

// TestDefaultIsDockerMinus checks Default against Docker syscall by
// syscall: the same, but EPERM for the blocked calls and the denied
// argument checks in front.
func TestDefaultIsDockerMinus(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	dock, err := Docker()
	if err != nil {
		t.Fatal(err)
	}
	native, _ := NativeArch()
	dvm, kvm := newVM(t, mustCompile(t, def)), newVM(t, mustCompile(t, dock))
	r := rand.New(rand.NewPCG(9, 10))
	deniedNames := map[string]bool{}
	for _, rule := range denied() {
		for _, n := range rule.Names {
			deniedNames[n] = true
		}
	}
	for _, name := range namesOf(native) {
		if deniedNames[name] {
			continue
		}
		for range 20 {
			c := randCall(r, dock, []Arch{native})
			c.nr = nr(t, native, name)
			want := runVM(t, kvm, c)
			if slices.Contains(blocked, name) {
				want = retErrno(uint32(unix.EPERM))
			}
			if got := runVM(t, dvm, c); got != want {
				t.Errorf("%s %#x: Default %#x, want %#x", name, c.args, got, want)
				break
			}
		}
	}
}

func TestDocker(t *testing.T) {
	p, err := Docker()
	if err != nil {
		t.Fatal(err)
	}
	native, others := NativeArch()
	if want := append([]Arch{native}, others...); !slices.Equal(p.Arches, want) {
		t.Errorf("Docker arches %v, want %v", p.Arches, want)
	}
	if p.Default != Errno(1) {
		t.Errorf("Docker's default %s, want errno(1)", p.Default)
	}
	if native != X86_64 {
		t.Skip("the calls below are x86_64's")
	}
	eperm, enosys := retErrno(uint32(unix.EPERM)), retErrno(uint32(unix.ENOSYS))
	var cases []builtinCase
	for _, arch := range []Arch{X86_64, X86, X32} {
		cases = append(cases,
			builtinCase{arch, "read", [6]uint64{}, retAllow},
			builtinCase{arch, "write", [6]uint64{}, retAllow},
			builtinCase{arch, "execve", [6]uint64{}, retAllow},
			builtinCase{arch, "ioctl", [6]uint64{0, unix.TIOCSTI}, retAllow}, // Docker leaves TIOCSTI alone
			builtinCase{arch, "clone", [6]uint64{pthreadFlags}, retAllow},
			builtinCase{arch, "clone", [6]uint64{unix.CLONE_NEWUSER}, eperm},
			builtinCase{arch, "clone3", [6]uint64{}, enosys},
			builtinCase{arch, "unshare", [6]uint64{unix.CLONE_NEWUSER}, eperm},
			builtinCase{arch, "mount", [6]uint64{}, eperm},
			builtinCase{arch, "bpf", [6]uint64{}, eperm},
			builtinCase{arch, "ptrace", [6]uint64{}, retAllow}, // from kernel 4.8
			builtinCase{arch, "socket", [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}, retAllow},
			builtinCase{arch, "socket", [6]uint64{unix.AF_VSOCK}, eperm},
		)
	}
	cases = append(cases, builtinCase{X86, "socketcall", [6]uint64{}, retAllow})
	runBuiltinCases(t, p, cases)
	prog := mustCompile(t, p)
	for _, c := range []struct {
		c    call
		want uint32
	}{
		{call{X32, 520 | x32Bit, [6]uint64{}}, retAllow}, // x32 execve
		{call{X32, 59 | x32Bit, [6]uint64{}}, eperm},     // x86_64's execve number through x32
		{call{X86_64, 0xffffffff, [6]uint64{}}, eperm},
		{call{X86, 0xffffffff, [6]uint64{}}, eperm},
		{call{AARCH64, 63, [6]uint64{}}, retKill},
		{call{ARM, 3, [6]uint64{}}, retKill},
	} {
		if got := run(t, prog, c.c); got != c.want {
			t.Errorf("%s nr %#x: got %#x, want %#x", c.c.arch, c.c.nr, got, c.want)
		}
	}
}

func TestAudit(t *testing.T) {
	p := Audit()
	native, others := NativeArch()
	if p.Default != Log || len(p.Rules) != 0 || !slices.Equal(p.Arches, append([]Arch{native}, others...)) {
		t.Fatalf("Audit() = %s %v", p.Summary(), p.Rules)
	}
	vm := newVM(t, mustCompile(t, p))
	r := rand.New(rand.NewPCG(11, 12))
	for range 2000 {
		c := randCall(r, p, p.arches())
		if got := runVM(t, vm, c); got != retLog {
			t.Fatalf("%s nr %#x: got %#x, want log", c.arch, c.nr, got)
		}
	}
	for _, nr := range []uint32{0, 59, 0x3fffffff, 0x40000000, 0x7fffffff, 0x80000000, 0xffffffff} {
		for _, arch := range p.arches() {
			if got := runVM(t, vm, call{arch, nr, [6]uint64{}}); got != retLog {
				t.Errorf("%s nr %#x: got %#x, want log", arch, nr, got)
			}
		}
	}
}

func TestFromSeed(t *testing.T) {
	list := []string{"read", "write", "exit_group"}
	allowlist := &Profile{Default: KillProcess, Rules: []Rule{{Names: list, Action: Allow}}}
	for _, tc := range []struct {
		syscalls []string
		action   string
		want     *Profile
		// what read and openat get
		read, openat uint32
	}{
		{list, "kill_process", allowlist, retAllow, retKill},
		{list, "kill", allowlist, retAllow, retKill},
		{list, "", allowlist, retAllow, retKill},
		{list, "allow", &Profile{Default: Allow, Rules: []Rule{{Names: list, Action: KillProcess}}}, retKill, retAllow},
		{list, "log", &Profile{Default: Log, Rules: []Rule{{Names: list, Action: Allow}}}, retAllow, retLog},
		{nil, "kill_process", &Profile{Default: KillProcess}, retKill, retKill},
		{[]string{}, "allow", &Profile{Default: Allow}, retAllow, retAllow},
		{nil, "log", &Profile{Default: Log}, retLog, retLog},
	} {
		p, err := FromSeed(tc.syscalls, tc.action)
		if err != nil {
			t.Errorf("FromSeed(%v, %q): %v", tc.syscalls, tc.action, err)
			continue
		}
		if !sameProfile(p, tc.want) {
			t.Errorf("FromSeed(%v, %q) = %s %v, want %s %v", tc.syscalls, tc.action, p.Summary(), p.Rules, tc.want.Summary(), tc.want.Rules)
		}
		if len(tc.syscalls) == 0 && p.Rules != nil {
			t.Errorf("FromSeed(%v, %q): rules %v, want none", tc.syscalls, tc.action, p.Rules)
		}
		prog := mustCompile(t, p)
		if got := run(t, prog, call{X86_64, nr(t, X86_64, "read"), [6]uint64{}}); got != tc.read {
			t.Errorf("FromSeed(%q): read %#x, want %#x", tc.action, got, tc.read)
		}
		if got := run(t, prog, call{X86_64, nr(t, X86_64, "openat"), [6]uint64{}}); got != tc.openat {
			t.Errorf("FromSeed(%q): openat %#x, want %#x", tc.action, got, tc.openat)
		}
		// Whatever the action, the other ABIs are killed.
		if got := run(t, prog, call{X86, 3, [6]uint64{}}); got != retKill {
			t.Errorf("FromSeed(%q): i386 read %#x, want kill", tc.action, got)
		}
		if got := run(t, prog, call{X32, 0 | x32Bit, [6]uint64{}}); got != retKill {
			t.Errorf("FromSeed(%q): x32 read %#x, want kill", tc.action, got)
		}
	}
	for _, tc := range []struct {
		syscalls []string
		action   string
		msg      string
	}{
		{list, "deny", `dismatch_action "deny"`},
		{list, "KILL_PROCESS", "dismatch_action"},
		{list, "errno", "dismatch_action"},
		{[]string{"read", "no_such_syscall"}, "kill_process", `unknown syscall "no_such_syscall"`},
		{[]string{"socketcall"}, "allow", `unknown syscall "socketcall"`},
		{[]string{""}, "log", `unknown syscall ""`},
	} {
		_, err := FromSeed(tc.syscalls, tc.action)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("FromSeed(%v, %q): %v, want an error with %q", tc.syscalls, tc.action, err, tc.msg)
		}
	}
	if p, err := FromSeed(list, "bad"); p != nil || err == nil {
		t.Errorf("FromSeed with a bad action: %v, %v; want no profile and an error", p, err)
	}
}

func TestLoad(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	dock, err := Docker()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]*Profile{"default": def, "docker": dock, "podman": dock, "audit": Audit()} {
		p, unknown, err := Load(name)
		if err != nil || unknown != nil || !sameProfile(p, want) {
			t.Errorf("Load(%q) = %v, %v, %v", name, p.Summary(), unknown, err)
		}
	}
	for _, name := range Builtin {
		if _, _, err := Load(name); err != nil {
			t.Errorf("Load(%q): %v", name, err)
		}
	}
	p, unknown, err := Load("unconfined")
	if p != nil || unknown != nil || err != nil {
		t.Errorf("Load(unconfined) = %v, %v, %v; want nothing", p, unknown, err)
	}

	p, unknown, err = Load(filepath.Join("testdata", "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unknown, []string{"no_such_syscall", "socketcall"}) {
		t.Errorf("unknown = %q", unknown)
	}
	if p.Default != Errno(1) || !slices.Equal(p.Arches, []Arch{X86_64}) || len(p.Rules) != 3 {
		t.Errorf("testdata/profile.json: %s %v", p.Summary(), p.Rules)
	}
	runBuiltinCases(t, p, []builtinCase{
		{X86_64, "read", [6]uint64{}, retAllow},
		{X86_64, "write", [6]uint64{2}, retAllow},
		{X86_64, "write", [6]uint64{3}, retErrno(1)},
		{X86_64, "ioctl", [6]uint64{0, 0xdead0000_00005412}, retErrno(25)},
		{X86_64, "ioctl", [6]uint64{0, 0x5401}, retErrno(1)},
		{X86, "read", [6]uint64{}, retKill},
	})

	for _, tc := range []struct {
		path, msg string
	}{
		{filepath.Join("testdata", "missing.json"), "no such file"},
		{"", "seccomp profile"},
		{filepath.Join("testdata", "bad.json"), filepath.Join("testdata", "bad.json") + ": seccomp profile"},
		{"testdata", "is a directory"},
	} {
		p, _, err := Load(tc.path)
		if err == nil || p != nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Load(%q) = %v, %v; want an error with %q", tc.path, p, err, tc.msg)
		}
	}
	// A relative path that is also a builtin's name is the builtin.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "default"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, _, err := Load(filepath.Join(dir, "default")); err != nil || p.Default != Allow {
		t.Errorf("Load(dir/default) = %v, %v", p, err)
	}
}
