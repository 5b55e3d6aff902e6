package seccomp

import (
	"reflect"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestLearner records calls as the kernel describes them and checks the
// allowlist it writes: through the VM, and through its JSON read back.
func TestLearner(t *testing.T) {
	if native, _ := NativeArch(); native != X86_64 {
		t.Skip("the numbers below are x86_64's")
	}
	l := NewLearner()
	rec := func(a Arch, name string, args ...uint64) {
		var arr [6]uint64
		copy(arr[:], args)
		nr, _ := a.Number(name)
		l.Record(a.audit(), int32(nr), arr)
	}
	rec(X86_64, "read")
	rec(X86_64, "write")
	rec(X86_64, "ioctl", 1, unix.TCGETS)
	rec(X86_64, "ioctl", 1, 1<<32|unix.TIOCGWINSZ) // the kernel reads 32 bits
	rec(X86_64, "socket", unix.AF_UNIX, unix.SOCK_STREAM)
	rec(X86_64, "clone", unix.CLONE_VM|unix.CLONE_THREAD)
	rec(X86_64, "clone3")
	l.Record(auditArchX86_64, 99999, [6]uint64{})

	p := l.Profile()
	if got := l.Unknown(); !reflect.DeepEqual(got, []string{"0xc000003e/99999"}) {
		t.Errorf("Unknown() = %q", got)
	}
	prog, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	eperm := Errno(uint16(unix.EPERM)).ret()
	tests := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, Allow.ret()},
		{"write", nil, Allow.ret()},
		{"getpid", nil, eperm},
		{"ioctl", []uint64{1, unix.TCGETS}, Allow.ret()},
		{"ioctl", []uint64{1, unix.TIOCGWINSZ}, Allow.ret()},
		{"ioctl", []uint64{1, unix.TIOCSTI}, eperm},
		{"socket", []uint64{unix.AF_UNIX, unix.SOCK_DGRAM}, Allow.ret()},
		{"socket", []uint64{unix.AF_INET, unix.SOCK_STREAM}, eperm},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_THREAD}, Allow.ret()},
		{"clone", []uint64{unix.CLONE_NEWUSER}, eperm},
		// clone3's flags are out of reach: ENOSYS, so that the C library
		// falls back to clone.
		{"clone3", []uint64{0}, Errno(uint16(unix.ENOSYS)).ret()},
		// The default profile's checks stay in front.
		{"ioctl", []uint64{1, 1<<32 | unix.TIOCSTI}, eperm},
	}
	check := func(prog []bpf.Instruction, what string) {
		for _, tt := range tests {
			var args [6]uint64
			copy(args[:], tt.args)
			if got := run(t, prog, call{X86_64, nr(t, X86_64, tt.name), args}); got != tt.want {
				t.Errorf("%s: %s%v = %#x, want %#x", what, tt.name, tt.args, got, tt.want)
			}
		}
		// Not an ABI that was used: killed.
		if got := run(t, prog, call{X86, 3, [6]uint64{}}); got != KillProcess.ret() {
			t.Errorf("%s: i386 read = %#x, want kill", what, got)
		}
	}
	check(prog, "learned")

	data, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, unknown, err := ParseJSON(data)
	if err != nil || len(unknown) > 0 {
		t.Fatalf("ParseJSON(%s) = %v, %v", data, unknown, err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("JSON round trip:\n got %s %v\nwant %s %v", back.Summary(), back.Rules, p.Summary(), p.Rules)
	}
	prog2, err := compile(back)
	if err != nil {
		t.Fatal(err)
	}
	check(prog2, "from JSON")
}

// TestLearnerNamespaces: a command that made namespaces keeps clone and
// unshare without argument checks.
func TestLearnerNamespaces(t *testing.T) {
	l := NewLearner()
	nr, _ := X86_64.Number("unshare")
	l.Record(auditArchX86_64, int32(nr), [6]uint64{unix.CLONE_NEWNS})
	p := l.Profile()
	last := p.Rules[len(p.Rules)-1]
	if !reflect.DeepEqual(last.Names, []string{"unshare"}) || len(last.Conds) != 0 || last.Action != Allow {
		t.Errorf("rules %v", p.Rules)
	}
	for _, r := range p.Rules[:len(p.Rules)-1] {
		if r.Names[0] == "unshare" || r.Names[0] == "clone" {
			t.Errorf("a namespace rule in front: %v", r)
		}
	}
	if _, err := (&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read"}, Action: Allow,
		Conds: []Cond{{Index: 0, Op: OpEQ}, {Index: 0, Op: OpNE}}}}}).JSON(); err == nil {
		t.Error("JSON of a rule naming an argument twice: no error")
	}
}

// TestWithoutMPTCP: MPTCP is refused in front of any profile, and i386's
// socketcall too where the profile lets i386 through.
func TestWithoutMPTCP(t *testing.T) {
	if native, _ := NativeArch(); native != X86_64 {
		t.Skip("the numbers below are x86_64's")
	}
	eperm := Errno(uint16(unix.EPERM)).ret()
	p := WithoutMPTCP(nil)
	prog, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	socket := nr(t, X86_64, "socket")
	for _, tt := range []struct {
		c    call
		want uint32
	}{
		{call{X86_64, socket, [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 0}}, Allow.ret()},
		{call{X86_64, socket, [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}}, eperm},
		{call{X86_64, socket, [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 1<<32 | unix.IPPROTO_MPTCP}}, eperm},
		{call{X86, nr(t, X86, "socketcall"), [6]uint64{1}}, eperm},
		{call{X86, nr(t, X86, "read"), [6]uint64{}}, Allow.ret()},
	} {
		if got := run(t, prog, tt.c); got != tt.want {
			t.Errorf("%+v = %#x, want %#x", tt.c, got, tt.want)
		}
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	wrapped := WithoutMPTCP(def)
	if _, err := compile(wrapped); err != nil {
		t.Errorf("WithoutMPTCP(Default()): %v", err)
	}
	// Native-only: the MPTCP and io_uring rules in front, no socketcall,
	// then the profile's own rules unchanged.
	if len(wrapped.Rules) != len(def.Rules)+2 || wrapped.Rules[0].Names[0] != "socket" ||
		wrapped.Rules[1].Names[0] != "io_uring_setup" || !reflect.DeepEqual(wrapped.Rules[2:], def.Rules) {
		t.Errorf("WithoutMPTCP(Default()) rules: %v", wrapped.Rules[:3])
	}
}
