package seccomp

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestNativeArch(t *testing.T) {
	native, others := NativeArch()
	switch runtime.GOARCH {
	case "amd64":
		if native != X86_64 || !slices.Equal(others, []Arch{X86, X32}) {
			t.Errorf("NativeArch() = %s, %v; want x86_64, [x86 x32]", native, others)
		}
	case "arm64":
		if native != AARCH64 || !slices.Equal(others, []Arch{ARM}) {
			t.Errorf("NativeArch() = %s, %v; want aarch64, [arm]", native, others)
		}
	}
}

func TestArchNumberName(t *testing.T) {
	for _, tc := range []struct {
		arch Arch
		name string
		nr   int
	}{
		{X86_64, "read", 0},
		{X86_64, "execve", 59},
		{X86_64, "ioctl", 16},
		{X86_64, "clone3", 435},
		{X86, "restart_syscall", 0},
		{X86, "read", 3},
		{X86, "execve", 11},
		{X86, "socketcall", 102},
		{X32, "read", 0 | x32Bit},
		{X32, "execve", 520 | x32Bit},
		{X32, "ioctl", 514 | x32Bit},
		{X32, "pwritev2", 547 | x32Bit},
		{X32, "clone3", 435 | x32Bit},
		{AARCH64, "read", 63},
		{AARCH64, "execve", 221},
		{AARCH64, "io_setup", 0},
	} {
		if n, ok := tc.arch.Number(tc.name); !ok || n != tc.nr {
			t.Errorf("%s.Number(%q) = %d, %v; want %d", tc.arch, tc.name, n, ok, tc.nr)
		}
		if got := tc.arch.Name(tc.nr); got != tc.name {
			t.Errorf("%s.Name(%d) = %q, want %q", tc.arch, tc.nr, got, tc.name)
		}
	}
	for _, tc := range []struct {
		arch Arch
		name string
	}{
		{X86_64, "socketcall"}, // i386 only
		{AARCH64, "open"},      // aarch64 has openat alone
		{X86_64, "no_such_syscall"},
		{X86_64, ""},
		{ARM, "read"}, // no table
		{Arch("mips"), "read"},
	} {
		if n, ok := tc.arch.Number(tc.name); ok {
			t.Errorf("%s.Number(%q) = %d, true; want false", tc.arch, tc.name, n)
		}
	}
	for _, tc := range []struct {
		arch Arch
		nr   int
	}{
		{X86_64, -1}, {X86_64, 100000}, {X86_64, 520}, {X32, 59 | x32Bit}, {X32, 0}, {ARM, 3}, {Arch("mips"), 0},
	} {
		if got := tc.arch.Name(tc.nr); got != "" {
			t.Errorf("%s.Name(%d) = %q, want \"\"", tc.arch, tc.nr, got)
		}
	}
}

// TestArchRoundTrip checks Number and Name against each other over the
// whole of every table.
func TestArchRoundTrip(t *testing.T) {
	for _, arch := range []Arch{X86_64, X86, X32, AARCH64} {
		names := namesOf(arch)
		if len(names) < 250 {
			t.Errorf("%s: only %d syscalls", arch, len(names))
		}
		numbers := map[int]bool{}
		for _, name := range names {
			n, ok := arch.Number(name)
			if !ok {
				t.Fatalf("%s.Number(%q) not found", arch, name)
			}
			numbers[n] = true
			back := arch.Name(n)
			if m, _ := arch.Number(back); back == "" || m != n {
				t.Errorf("%s: Name(Number(%q) = %d) = %q", arch, name, n, back)
			}
			if arch == X32 && n&x32Bit == 0 {
				t.Errorf("x32 %s = %#x: no x32 bit", name, n)
			}
			if arch != X32 && (n < 0 || n >= 1024) {
				t.Errorf("%s %s = %d: out of range", arch, name, n)
			}
		}
		for n := range numbers {
			if arch.Name(n) == "" {
				t.Errorf("%s.Name(%d) = \"\"", arch, n)
			}
		}
		// Where names share a number, Name picks the first by name, so
		// the same one each time.
		first := map[int]string{}
		for name, n := range arch.table() {
			if f, ok := first[n]; !ok || name < f {
				first[n] = name
			}
		}
		for n := range numbers {
			if a, b := arch.Name(n), first[n]; a != b {
				t.Errorf("%s.Name(%d) = %q, want %q", arch, n, a, b)
			}
		}
	}
	// x32 has every x86_64 syscall, at the x86_64 number or its own.
	for _, name := range namesOf(X86_64) {
		n64, _ := X86_64.Number(name)
		n32, ok := X32.Number(name)
		want := n64 | x32Bit
		if x, own := x32Numbers[name]; own {
			want = x | x32Bit
		}
		if !ok || n32 != want {
			t.Errorf("x32 %s = %#x, %v; want %#x", name, n32, ok, want)
		}
	}
}

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{
		"x86_64": X86_64, "amd64": X86_64, "SCMP_ARCH_X86_64": X86_64, "X86_64": X86_64, "AMD64": X86_64,
		"x86": X86, "i386": X86, "386": X86, "SCMP_ARCH_X86": X86,
		"x32": X32, "SCMP_ARCH_X32": X32,
		"aarch64": AARCH64, "arm64": AARCH64, "SCMP_ARCH_AARCH64": AARCH64,
		"arm": ARM, "SCMP_ARCH_ARM": ARM,
	} {
		got, err := ParseArch(in)
		if err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mips", "SCMP_ARCH_", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "x86-64", " x86_64"} {
		got, err := ParseArch(in)
		if err == nil {
			t.Errorf("ParseArch(%q) = %q, nil; want an error", in, got)
		} else if !strings.Contains(err.Error(), "unknown architecture") {
			t.Errorf("ParseArch(%q): %v", in, err)
		}
	}
}

func TestParseAction(t *testing.T) {
	u := func(v uint) *uint { return &v }
	for _, tc := range []struct {
		in    string
		errno *uint
		want  Action
	}{
		{"allow", nil, Allow},
		{"SCMP_ACT_ALLOW", nil, Allow},
		{"ALLOW", nil, Allow},
		{"errno", nil, Errno(1)},
		{"SCMP_ACT_ERRNO", nil, Errno(1)},
		{"SCMP_ACT_ERRNO", u(38), Errno(38)},
		{"errno", u(0), Errno(0)},
		{"errno", u(4095), Errno(4095)},
		{"kill_process", nil, KillProcess},
		{"SCMP_ACT_KILL_PROCESS", nil, KillProcess},
		// "kill" is documented as kill_process here, and so is
		// SCMP_ACT_KILL; libseccomp and runc read SCMP_ACT_KILL as
		// kill_thread. Killing the process is the stricter of the two.
		{"kill", nil, KillProcess},
		{"SCMP_ACT_KILL", nil, KillProcess},
		{"kill_thread", nil, KillThread},
		{"SCMP_ACT_KILL_THREAD", nil, KillThread},
		{"trap", nil, Trap},
		{"SCMP_ACT_TRAP", nil, Trap},
		{"log", nil, Log},
		{"SCMP_ACT_LOG", nil, Log},
		{"trace", nil, Action{Kind: ActTrace}},
		{"SCMP_ACT_TRACE", u(5), Action{Kind: ActTrace, Errno: 5}},
		{"notify", nil, Notify},
		{"SCMP_ACT_NOTIFY", nil, Notify},
	} {
		got, err := ParseAction(tc.in, tc.errno)
		if err != nil || got != tc.want {
			t.Errorf("ParseAction(%q, %v) = %s, %v; want %s", tc.in, tc.errno, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in    string
		errno *uint
		msg   string
	}{
		{"", nil, "unknown action"},
		{"deny", nil, "unknown action"},
		{"SCMP_ACT_FOO", nil, "unknown action"},
		{"SCMP_ACT_", nil, "unknown action"},
		{"allow", u(1), "takes no errno"},
		{"kill_process", u(0), "takes no errno"},
		{"log", u(1), "takes no errno"},
		{"notify", u(1), "takes no errno"},
		{"errno", u(4096), "want 0 to 4095"},
		{"trace", u(1 << 20), "want 0 to 4095"},
	} {
		got, err := ParseAction(tc.in, tc.errno)
		if err == nil {
			t.Errorf("ParseAction(%q) = %s, nil; want an error", tc.in, got)
		} else if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseAction(%q): %v; want %q", tc.in, err, tc.msg)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Allow.String(), "allow"},
		{Errno(1).String(), "errno(1)"},
		{Errno(0).String(), "errno(0)"},
		{KillProcess.String(), "kill_process"},
		{KillThread.String(), "kill_thread"},
		{Trap.String(), "trap"},
		{Log.String(), "log"},
		{Action{Kind: ActTrace, Errno: 3}.String(), "trace(3)"},
		{Notify.String(), "notify"},
		{Action{}.String(), "invalid"},
		{Action{Kind: 200}.String(), "invalid"},

		{OpEQ.String(), "=="},
		{OpNE.String(), "!="},
		{OpLT.String(), "<"},
		{OpLE.String(), "<="},
		{OpGT.String(), ">"},
		{OpGE.String(), ">="},
		{OpMaskedEQ.String(), "&=="},
		{Op(0).String(), "invalid"},
		{Op(8).String(), "invalid"},

		{Cond{Index: 0, Op: OpEQ, Value: 1}.String(), "arg0 == 0x1"},
		{Cond{Index: 5, Op: OpGE, Value: 1 << 40}.String(), "arg5 >= 0x10000000000"},
		{Cond{Index: 1, Op: OpMaskedEQ, Mask: 0xffffffff, Value: 0x5412}.String(), "arg1 & 0xffffffff == 0x5412"},

		{Rule{Names: []string{"read", "write"}, Action: Allow}.String(), "read,write -> allow"},
		{Rule{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{
			{Index: 1, Op: OpEQ, Value: 0x5412}, {Index: 2, Op: OpNE, Value: 0},
		}}.String(), "ioctl -> errno(1) if arg1 == 0x5412 if arg2 != 0x0"},
		{Rule{}.String(), " -> invalid"},

		{(&Profile{Default: Errno(1)}).Summary(), "0 rules, arches(" + string(native()) + "), default errno(1)"},
		{(&Profile{Default: Allow, Arches: []Arch{X86_64, X86, X86_64, X32, X86}, Rules: make([]Rule, 2)}).Summary(),
			"2 rules, arches(x86_64,x86,x32), default allow"},
		{(&Profile{Default: Log, Arches: []Arch{AARCH64}}).Summary(), "0 rules, arches(aarch64), default log"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func native() Arch {
	n, _ := NativeArch()
	return n
}

func TestCheck(t *testing.T) {
	ok := []*Profile{
		{Default: Allow},
		{Default: Errno(1), Rules: []Rule{{Names: []string{"read"}, Action: Allow, Conds: []Cond{{Index: 5, Op: OpMaskedEQ}}}}},
		{Default: Allow, Arches: []Arch{X86_64, X86}, Rules: []Rule{{Names: []string{"socketcall"}, Action: Errno(1)}}}, // i386's only
		{Default: Allow, Arches: []Arch{AARCH64}, Rules: []Rule{{Names: []string{"openat"}, Action: Log}}},
		{Default: Allow, Rules: []Rule{{Names: nil, Action: Log}}},
	}
	for _, p := range ok {
		if err := p.Check(); err != nil {
			t.Errorf("Check(%s %v): %v", p.Summary(), p.Rules, err)
		}
	}
	for _, tc := range []struct {
		p    *Profile
		msgs []string
	}{
		{&Profile{}, []string{"no default action"}},
		{&Profile{Default: Allow, Arches: []Arch{ARM}}, []string{"architecture arm: no syscall table"}},
		{&Profile{Default: Allow, Arches: []Arch{"mips"}}, []string{"architecture mips: no syscall table"}},
		{&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read"}}}}, []string{"rule 0: no action"}},
		{&Profile{Default: Allow, Rules: []Rule{{}, {Names: []string{"read"}, Action: Allow, Conds: []Cond{{Index: 6, Op: OpEQ}}}}}, []string{"rule 1: argument 6: want 0 to 5", "rule 0: no action"}},
		{&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read"}, Action: Allow, Conds: []Cond{{Index: 0}}}}}, []string{"rule 0: bad comparison"}},
		{&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read"}, Action: Allow, Conds: []Cond{{Index: 0, Op: 8}}}}}, []string{"rule 0: bad comparison"}},
		{&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read", "no_such_syscall"}, Action: Allow}}}, []string{`unknown syscall "no_such_syscall"`}},
		{&Profile{Default: Allow, Rules: []Rule{{Names: []string{"socketcall"}, Action: Allow}}}, []string{`unknown syscall "socketcall"`}}, // not native
		{&Profile{Default: Allow, Arches: []Arch{AARCH64}, Rules: []Rule{{Names: []string{"open"}, Action: Allow}}}, []string{`unknown syscall "open"`}},
		{&Profile{Arches: []Arch{ARM}, Rules: []Rule{{Names: []string{"nope"}, Conds: []Cond{{Index: 9, Op: 0}}}}},
			[]string{"no default action", "architecture arm", "rule 0: no action", "argument 9", "bad comparison", `unknown syscall "nope"`}},
	} {
		err := tc.p.Check()
		if err == nil {
			t.Errorf("Check(%+v) = nil, want %q", tc.p, tc.msgs)
			continue
		}
		for _, m := range tc.msgs {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("Check(%+v) = %q, want it to say %q", tc.p, err, m)
			}
		}
	}
}

// TestCheckActionKind: Check is documented to report "an action ... out
// of range", but an ActionKind past ActNotify passes it (and compiles to
// kill_process).
func TestCheckActionKind(t *testing.T) {
	for _, p := range []*Profile{
		{Default: Action{Kind: ActNotify + 1}},
		{Default: Allow, Rules: []Rule{{Names: []string{"read"}, Action: Action{Kind: 200}}}},
	} {
		if err := p.Check(); err == nil {
			t.Fatalf("Check accepts the out-of-range action kind of %s %v", p.Summary(), p.Rules)
		}
	}
}
