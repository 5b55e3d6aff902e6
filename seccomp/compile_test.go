package seccomp

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// call is one system call as the filter sees it.
type call struct {
	arch Arch
	nr   uint32
	args [6]uint64
}

// run runs a compiled program in x/net/bpf's VM on c and returns what the
// filter returns. The VM loads words in network order where the kernel
// loads them in the machine's (little-endian) order: each 32-bit word of
// seccomp_data is written big-endian at its place, so the VM reads the
// values the kernel would.
func run(t *testing.T, prog []bpf.Instruction, c call) uint32 {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], c.nr)
	binary.BigEndian.PutUint32(data[4:], c.arch.audit())
	for i, a := range c.args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	// The VM returns the number of bytes to keep: the return value, up to
	// the packet's length. Give it a packet as long as any value.
	out, err := vm.Run(append(data, make([]byte, 0)...))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(out)
}

func nr(t *testing.T, a Arch, name string) uint32 {
	t.Helper()
	n, ok := a.Number(name)
	if !ok {
		t.Fatalf("%s has no %s", a, name)
	}
	return uint32(n)
}

func TestCompileSmoke(t *testing.T) {
	p := &Profile{Default: Errno(38), Arches: []Arch{X86_64}, Rules: []Rule{
		{Names: []string{"read", "write"}, Action: Allow},
		{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 1, Op: OpEQ, Value: 0x5412}}},
	}}
	prog, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c    call
		want uint32
	}{
		{call{X86_64, nr(t, X86_64, "read"), [6]uint64{}}, Allow.ret()},
		{call{X86_64, nr(t, X86_64, "openat"), [6]uint64{}}, Errno(38).ret()},
		{call{X86_64, nr(t, X86_64, "ioctl"), [6]uint64{0, 0x5412}}, Errno(1).ret()},
		{call{X86_64, nr(t, X86_64, "ioctl"), [6]uint64{0, 0x1_0000_5412}}, Errno(38).ret()},
		{call{X86, 3, [6]uint64{}}, KillProcess.ret()},
		{call{X86_64, 0 | x32Bit, [6]uint64{}}, KillProcess.ret()},
	} {
		if got := run(t, prog, c.c); got != c.want {
			t.Errorf("%+v: %#x, want %#x", c.c, got, c.want)
		}
	}
}

func TestBuiltinSizes(t *testing.T) {
	for name, get := range map[string]func() (*Profile, error){
		"docker": Docker, "default": Default,
		"audit": func() (*Profile, error) { return Audit(), nil },
	} {
		p, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		prog, err := compile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s, %d instructions", name, p.Summary(), len(prog))
	}
}

// TestCompileMatchesInternal checks that Compile and compile give the same
// program.
func TestCompileMatchesInternal(t *testing.T) {
	p, err := Docker()
	if err != nil {
		t.Fatal(err)
	}
	internal, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	public := mustCompile(t, p)
	if len(public) != len(internal) {
		t.Fatalf("Compile: %d instructions, compile: %d", len(public), len(internal))
	}
	raw1, err := bpf.Assemble(internal)
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := bpf.Assemble(public)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw1, raw2) {
		t.Error("Compile and compile differ")
	}
	if _, ok := public[len(public)-1].(bpf.RetConstant); !ok {
		t.Errorf("the program ends with %v, want a return", public[len(public)-1])
	}
}

func TestCompileDeterministic(t *testing.T) {
	for _, get := range []func() (*Profile, error){Docker, Default} {
		p, err := get()
		if err != nil {
			t.Fatal(err)
		}
		a, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, b) {
				t.Fatalf("%s: two compilations differ", p.Summary())
			}
		}
	}
}

func TestCompileCheckError(t *testing.T) {
	for _, p := range []*Profile{
		{},
		{Default: Allow, Rules: []Rule{{Names: []string{"no_such_syscall"}, Action: Allow}}},
		{Default: Allow, Arches: []Arch{ARM}},
	} {
		filter, err := Compile(p)
		if err == nil || filter != nil {
			t.Errorf("Compile(%+v) = %d instructions, %v; want an error", p, len(filter), err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "seccomp: ") {
			t.Errorf("error %q does not start with seccomp:", err)
		}
	}
}

// testActions are every action, with the value the kernel expects.
var testActions = []struct {
	act  Action
	want uint32
}{
	{Allow, unix.SECCOMP_RET_ALLOW},
	{Errno(1), unix.SECCOMP_RET_ERRNO | 1},
	{Errno(0), unix.SECCOMP_RET_ERRNO},
	{Errno(uint16(unix.ENOSYS)), unix.SECCOMP_RET_ERRNO | 38},
	{Errno(4095), unix.SECCOMP_RET_ERRNO | 4095},
	{KillProcess, unix.SECCOMP_RET_KILL_PROCESS},
	{KillThread, unix.SECCOMP_RET_KILL_THREAD},
	{Trap, unix.SECCOMP_RET_TRAP},
	{Log, unix.SECCOMP_RET_LOG},
	{Action{Kind: ActTrace}, unix.SECCOMP_RET_TRACE},
	{Action{Kind: ActTrace, Errno: 7}, unix.SECCOMP_RET_TRACE | 7},
	{Notify, unix.SECCOMP_RET_USER_NOTIF},
}

func TestActionRet(t *testing.T) {
	for _, tc := range testActions {
		if got := tc.act.ret(); got != tc.want {
			t.Errorf("%s.ret() = %#x, want %#x", tc.act, got, tc.want)
		}
	}
	if got := (Action{}).ret(); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("zero Action ret = %#x, want kill_process", got)
	}
}

// TestActionsPerArch runs every action, as a rule's and as the default,
// through each ABI.
func TestActionsPerArch(t *testing.T) {
	for _, arch := range []Arch{X86_64, X86, X32, AARCH64} {
		getpid, gettid := nr(t, arch, "getpid"), nr(t, arch, "gettid")
		for _, tc := range testActions {
			t.Run(string(arch)+"/"+tc.act.String(), func(t *testing.T) {
				other := Errno(99)
				if tc.act == other {
					other = Errno(98)
				}
				// The action as a rule's, with and without a condition.
				p := &Profile{Default: other, Arches: []Arch{arch}, Rules: []Rule{
					{Names: []string{"getpid"}, Action: tc.act},
					{Names: []string{"gettid"}, Action: tc.act, Conds: []Cond{{Index: 0, Op: OpEQ, Value: 1}}},
				}}
				prog := mustCompile(t, p)
				for _, c := range []struct {
					c    call
					want uint32
				}{
					{call{arch, getpid, [6]uint64{}}, tc.want},
					{call{arch, gettid, [6]uint64{1}}, tc.want},
					{call{arch, gettid, [6]uint64{2}}, retOf(other)},
					{call{arch, gettid, [6]uint64{1 | 1<<32}}, retOf(other)},
					{call{arch, nr(t, arch, "close"), [6]uint64{}}, retOf(other)},
				} {
					if got := run(t, prog, c.c); got != c.want {
						t.Errorf("rule: %s nr %#x args %v: got %#x, want %#x", c.c.arch, c.c.nr, c.c.args[:1], got, c.want)
					}
				}
				// The action as the default.
				p = &Profile{Default: tc.act, Arches: []Arch{arch}, Rules: []Rule{
					{Names: []string{"getpid"}, Action: other},
				}}
				prog = mustCompile(t, p)
				if got := run(t, prog, call{arch, gettid, [6]uint64{}}); got != tc.want {
					t.Errorf("default: got %#x, want %#x", got, tc.want)
				}
				if got := run(t, prog, call{arch, getpid, [6]uint64{}}); got != retOf(other) {
					t.Errorf("default: getpid got %#x, want %#x", got, retOf(other))
				}
				if got := run(t, prog, call{ARM, 20, [6]uint64{}}); got != retKill {
					t.Errorf("arm call: got %#x, want kill_process", got)
				}
			})
		}
	}
}

func TestArchHandling(t *testing.T) {
	const bit = 0x40000000
	if got := nr(t, X32, "execve"); got != 520|bit {
		t.Fatalf("x32 execve = %#x, want 520|bit", got)
	}
	if got := nr(t, X32, "read"); got != 0|bit {
		t.Fatalf("x32 read = %#x, want 0|bit", got)
	}
	profile := func(arches ...Arch) *Profile {
		return &Profile{Default: Errno(99), Arches: arches, Rules: []Rule{
			{Names: []string{"read"}, Action: Errno(1)},
			{Names: []string{"execve"}, Action: Errno(2)},
			{Names: []string{"ioctl"}, Action: Errno(3), Conds: []Cond{{Index: 1, Op: OpEQ, Value: 0x5412}}},
		}}
	}
	def := retErrno(99)
	type tc struct {
		name string
		c    call
		want uint32
	}
	x86_64Calls := []tc{
		{"read", call{X86_64, 0, [6]uint64{}}, retErrno(1)},
		{"execve", call{X86_64, 59, [6]uint64{}}, retErrno(2)},
		{"ioctl TIOCSTI", call{X86_64, 16, [6]uint64{0, 0x5412}}, retErrno(3)},
		{"ioctl other", call{X86_64, 16, [6]uint64{0, 0x5413}}, def},
		{"close", call{X86_64, 3, [6]uint64{}}, def},
		{"x32-only number 520", call{X86_64, 520, [6]uint64{}}, def},
		{"nr 1000", call{X86_64, 1000, [6]uint64{}}, def},
		{"nr 0x3fffffff", call{X86_64, 0x3fffffff, [6]uint64{}}, def},
		{"nr 0x80000000", call{X86_64, 0x80000000, [6]uint64{}}, def},
		{"nr 0x80000000+59", call{X86_64, 0x80000000 + 59, [6]uint64{}}, def},
		{"nr 0xc0000000", call{X86_64, 0xc0000000, [6]uint64{}}, def},
		{"nr -1", call{X86_64, 0xffffffff, [6]uint64{}}, def},
	}
	x32Calls := func(listed bool) []tc {
		w := func(v uint32) uint32 {
			if listed {
				return v
			}
			return retKill
		}
		return []tc{
			{"x32 read", call{X32, 0 | bit, [6]uint64{}}, w(retErrno(1))},
			{"x32 execve", call{X32, 520 | bit, [6]uint64{}}, w(retErrno(2))},
			{"x32 x86_64's execve", call{X32, 59 | bit, [6]uint64{}}, w(def)},
			{"x32 ioctl TIOCSTI", call{X32, 514 | bit, [6]uint64{0, 0x5412}}, w(retErrno(3))},
			{"x32 x86_64's ioctl", call{X32, 16 | bit, [6]uint64{0, 0x5412}}, w(def)},
			{"x32 close", call{X32, 3 | bit, [6]uint64{}}, w(def)},
			{"x32 lowest", call{X32, bit, [6]uint64{}}, w(retErrno(1))},
			{"x32 highest", call{X32, 0x7fffffff, [6]uint64{}}, w(def)},
		}
	}
	i386Calls := func(listed bool) []tc {
		w := func(v uint32) uint32 {
			if listed {
				return v
			}
			return retKill
		}
		return []tc{
			{"i386 read", call{X86, 3, [6]uint64{}}, w(retErrno(1))},
			{"i386 execve", call{X86, 11, [6]uint64{}}, w(retErrno(2))},
			{"i386 ioctl", call{X86, 54, [6]uint64{0, 0x5412}}, w(retErrno(3))},
			{"i386 restart_syscall", call{X86, 0, [6]uint64{}}, w(def)},
			{"i386 nr -1", call{X86, 0xffffffff, [6]uint64{}}, w(def)},
			{"i386 nr 0x40000003", call{X86, 0x40000003, [6]uint64{}}, w(def)},
		}
	}
	aarch64Calls := func(listed bool) []tc {
		w := func(v uint32) uint32 {
			if listed {
				return v
			}
			return retKill
		}
		return []tc{
			{"aarch64 read", call{AARCH64, 63, [6]uint64{}}, w(retErrno(1))},
			{"aarch64 execve", call{AARCH64, 221, [6]uint64{}}, w(retErrno(2))},
			{"aarch64 ioctl", call{AARCH64, 29, [6]uint64{0, 0x5412}}, w(retErrno(3))},
			{"aarch64 nr 0", call{AARCH64, 0, [6]uint64{}}, w(def)},
			{"aarch64 nr -1", call{AARCH64, 0xffffffff, [6]uint64{}}, w(def)},
		}
	}
	killed := func(cs []tc) []tc {
		out := make([]tc, len(cs))
		for i, c := range cs {
			c.want = retKill
			out[i] = c
		}
		return out
	}
	unlisted := []tc{
		{"arm", call{ARM, 3, [6]uint64{}}, retKill},
		{"audit arch 0", call{Arch("none"), 0, [6]uint64{}}, retKill},
	}
	for _, tt := range []struct {
		name   string
		arches []Arch
		calls  [][]tc
	}{
		{"native only (nil)", nil, [][]tc{x86_64Calls, x32Calls(false), i386Calls(false), aarch64Calls(false), unlisted}},
		{"x86_64", []Arch{X86_64}, [][]tc{x86_64Calls, x32Calls(false), i386Calls(false), aarch64Calls(false), unlisted}},
		{"x86_64+x32", []Arch{X86_64, X32}, [][]tc{x86_64Calls, x32Calls(true), i386Calls(false), aarch64Calls(false), unlisted}},
		{"x86_64+x86", []Arch{X86_64, X86}, [][]tc{x86_64Calls, x32Calls(false), i386Calls(true), aarch64Calls(false), unlisted}},
		{"x32 only", []Arch{X32}, [][]tc{killed(x86_64Calls), x32Calls(true), i386Calls(false), aarch64Calls(false), unlisted}},
		{"x86 only", []Arch{X86}, [][]tc{killed(x86_64Calls), x32Calls(false), i386Calls(true), aarch64Calls(false), unlisted}},
		{"aarch64 only", []Arch{AARCH64}, [][]tc{killed(x86_64Calls), x32Calls(false), i386Calls(false), aarch64Calls(true), unlisted}},
		{"all, with duplicates", []Arch{X86_64, X86, X32, AARCH64, X32, X86_64}, [][]tc{x86_64Calls, x32Calls(true), i386Calls(true), aarch64Calls(true), unlisted}},
		{"all, x32 first", []Arch{X32, AARCH64, X86, X86_64}, [][]tc{x86_64Calls, x32Calls(true), i386Calls(true), aarch64Calls(true), unlisted}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := profile(tt.arches...)
			prog := mustCompile(t, p)
			for _, cs := range tt.calls {
				for _, c := range cs {
					got := run(t, prog, c.c)
					if got != c.want {
						t.Errorf("%s (%s nr %#x): got %#x, want %#x", c.name, c.c.arch, c.c.nr, got, c.want)
					}
					if ref := retOf(refAction(p, c.c)); ref != c.want {
						t.Errorf("%s: the reference says %#x, the table %#x", c.name, ref, c.want)
					}
				}
			}
		})
	}
}

// TestX32NumbersByName gives every x86_64 syscall its own action and
// checks each through both x86_64 and x32, x32's own numbers (512-547)
// included.
func TestX32NumbersByName(t *testing.T) {
	p := &Profile{Default: Allow, Arches: []Arch{X86_64, X32}}
	for _, name := range namesOf(X86_64) {
		n, _ := X86_64.Number(name)
		p.Rules = append(p.Rules, Rule{Names: []string{name}, Action: Errno(uint16(n%4000 + 1))})
	}
	prog := mustCompile(t, p)
	vm := newVM(t, prog)
	for _, name := range namesOf(X86_64) {
		n64, _ := X86_64.Number(name)
		n32, _ := X32.Number(name)
		want := retErrno(uint32(n64%4000 + 1))
		if got := runVM(t, vm, call{X86_64, uint32(n64), [6]uint64{}}); got != want {
			t.Errorf("x86_64 %s (%d): got %#x, want %#x", name, n64, got, want)
		}
		if got := runVM(t, vm, call{X32, uint32(n32), [6]uint64{}}); got != want {
			t.Errorf("x32 %s (%#x): got %#x, want %#x", name, n32, got, want)
		}
		if x, ok := x32Numbers[name]; ok {
			if n32 != x|x32Bit {
				t.Errorf("x32 %s = %#x, want %#x", name, n32, x|x32Bit)
			}
			// Through x32, the x86_64 number of such a call is no
			// syscall: the default.
			if got := runVM(t, vm, call{X32, uint32(n64) | x32Bit, [6]uint64{}}); got != retAllow {
				t.Errorf("x32 x86_64-numbered %s (%#x): got %#x, want the default", name, n64|x32Bit, got)
			}
		}
	}
	for nr := uint32(512); nr <= 547; nr++ {
		if X32.Name(int(nr|x32Bit)) == "" {
			t.Errorf("x32 number %d has no name", nr)
		}
	}
}

// runCond compiles one condition, as the only rule of read, and returns
// a function that says whether it holds for an argument.
func runCond(t *testing.T, c Cond) func(arg uint64) bool {
	t.Helper()
	p := &Profile{Default: Allow, Arches: []Arch{X86_64}, Rules: []Rule{{Names: []string{"read"}, Action: Errno(1), Conds: []Cond{c}}}}
	vm := newVM(t, mustCompile(t, p))
	return func(arg uint64) bool {
		var args [6]uint64
		for i := range args {
			args[i] = ^arg // the other arguments must not count
		}
		args[c.Index] = arg
		switch got := runVM(t, vm, call{X86_64, 0, args}); got {
		case retErrno(1):
			return true
		case retAllow:
			return false
		default:
			t.Fatalf("%s: got %#x", c, got)
			return false
		}
	}
}

func TestCompareOps(t *testing.T) {
	const (
		max  = math.MaxUint64
		lo   = 0xffffffff
		hi   = 0xffffffff_00000000
		b32  = 1 << 32
		b63  = 1 << 63
		v    = 0x00000005_00000007
		vHi  = 0x00000006_00000007 // only the high half differs
		vHi2 = 0x00000004_00000007
		vLo  = 0x00000005_00000008 // only the low half differs
		vLo2 = 0x00000005_00000006
		vX   = 0x00000004_00000008 // high smaller, low larger
		vY   = 0x00000006_00000006 // high larger, low smaller
	)
	for _, tc := range []struct {
		op        Op
		value     uint64
		mask      uint64
		arg       uint64
		want      bool
		nameOfArg string
	}{
		{OpEQ, v, 0, v, true, "equal"},
		{OpEQ, v, 0, vHi, false, "high differs"},
		{OpEQ, v, 0, vLo, false, "low differs"},
		{OpEQ, 0, 0, 0, true, "0"},
		{OpEQ, 0, 0, b32, false, "1<<32 vs 0"},
		{OpEQ, lo, 0, max, false, "max vs 1<<32-1"},
		{OpEQ, max, 0, max, true, "max"},
		{OpEQ, b63, 0, b63, true, "1<<63"},
		{OpEQ, b63, 0, 0, false, "0 vs 1<<63"},

		{OpNE, v, 0, v, false, "equal"},
		{OpNE, v, 0, vHi, true, "high differs"},
		{OpNE, v, 0, vLo, true, "low differs"},
		{OpNE, 0, 0, b32, true, "1<<32 vs 0"},
		{OpNE, max, 0, max, false, "max"},
		{OpNE, lo, 0, max, true, "max vs 1<<32-1"},

		{OpLT, v, 0, v, false, "equal"},
		{OpLT, v, 0, vHi, false, "high larger"},
		{OpLT, v, 0, vHi2, true, "high smaller"},
		{OpLT, v, 0, vLo, false, "low larger"},
		{OpLT, v, 0, vLo2, true, "low smaller"},
		{OpLT, v, 0, vX, true, "high smaller, low larger"},
		{OpLT, v, 0, vY, false, "high larger, low smaller"},
		{OpLT, 0, 0, 0, false, "0 < 0"},
		{OpLT, b32, 0, lo, true, "1<<32-1 < 1<<32"},
		{OpLT, lo, 0, b32, false, "1<<32 < 1<<32-1"},
		{OpLT, b63, 0, b63 - 1, true, "1<<63-1 < 1<<63 (unsigned)"},
		{OpLT, b63, 0, max, false, "max < 1<<63 (unsigned)"},
		{OpLT, max, 0, max - 1, true, "max-1 < max"},

		{OpLE, v, 0, v, true, "equal"},
		{OpLE, v, 0, vHi, false, "high larger"},
		{OpLE, v, 0, vHi2, true, "high smaller"},
		{OpLE, v, 0, vLo, false, "low larger"},
		{OpLE, v, 0, vLo2, true, "low smaller"},
		{OpLE, v, 0, vX, true, "high smaller, low larger"},
		{OpLE, v, 0, vY, false, "high larger, low smaller"},
		{OpLE, 0, 0, 0, true, "0 <= 0"},
		{OpLE, lo, 0, b32, false, "1<<32 <= 1<<32-1"},
		{OpLE, max, 0, max, true, "max <= max"},
		{OpLE, 0, 0, max, false, "max <= 0"},

		{OpGT, v, 0, v, false, "equal"},
		{OpGT, v, 0, vHi, true, "high larger"},
		{OpGT, v, 0, vHi2, false, "high smaller"},
		{OpGT, v, 0, vLo, true, "low larger"},
		{OpGT, v, 0, vLo2, false, "low smaller"},
		{OpGT, v, 0, vX, false, "high smaller, low larger"},
		{OpGT, v, 0, vY, true, "high larger, low smaller"},
		{OpGT, lo, 0, b32, true, "1<<32 > 1<<32-1"},
		{OpGT, b32, 0, lo, false, "1<<32-1 > 1<<32"},
		{OpGT, 0, 0, b63, true, "1<<63 > 0 (unsigned)"},
		{OpGT, max, 0, max, false, "max > max"},
		{OpGT, 0, 0, 0, false, "0 > 0"},

		{OpGE, v, 0, v, true, "equal"},
		{OpGE, v, 0, vHi, true, "high larger"},
		{OpGE, v, 0, vHi2, false, "high smaller"},
		{OpGE, v, 0, vLo, true, "low larger"},
		{OpGE, v, 0, vLo2, false, "low smaller"},
		{OpGE, v, 0, vX, false, "high smaller, low larger"},
		{OpGE, v, 0, vY, true, "high larger, low smaller"},
		{OpGE, b32, 0, lo, false, "1<<32-1 >= 1<<32"},
		{OpGE, 0, 0, 0, true, "0 >= 0"},
		{OpGE, max, 0, max, true, "max >= max"},
		{OpGE, b63, 0, b63 - 1, false, "1<<63-1 >= 1<<63"},

		// Masks over the high half only, the low half only, both.
		{OpMaskedEQ, 0x12345678_00000000, hi, 0x12345678_deadbeef, true, "high mask, low ignored"},
		{OpMaskedEQ, 0x12345678_00000000, hi, 0x12345679_00000000, false, "high mask, high differs"},
		{OpMaskedEQ, 0x5412, lo, 0xdeadbeef_00005412, true, "low mask, high ignored"},
		{OpMaskedEQ, 0x5412, lo, 0x5413, false, "low mask, low differs"},
		{OpMaskedEQ, 0x5412, lo, 0x5412, true, "low mask, equal"},
		{OpMaskedEQ, 0x00001234_00005678, 0x0000ffff_0000ffff, 0xabcd1234_ef015678, true, "both halves"},
		{OpMaskedEQ, 0x00001234_00005678, 0x0000ffff_0000ffff, 0xabcd1235_ef015678, false, "both halves, high differs"},
		{OpMaskedEQ, 0x00001234_00005678, 0x0000ffff_0000ffff, 0xabcd1234_ef015679, false, "both halves, low differs"},
		{OpMaskedEQ, unix.CLONE_NEWUSER, unix.CLONE_NEWUSER, unix.CLONE_NEWUSER | unix.CLONE_VM | 1<<40, true, "flag set"},
		{OpMaskedEQ, unix.CLONE_NEWUSER, unix.CLONE_NEWUSER, unix.CLONE_VM | 1<<40, false, "flag clear"},
		{OpMaskedEQ, 0, 0x7e020000, unix.CLONE_VM | unix.CLONE_THREAD, true, "no namespace flag"},
		{OpMaskedEQ, 0, 0x7e020000, unix.CLONE_NEWNET, false, "a namespace flag"},
		{OpMaskedEQ, 0x100, 0xff, 0x100, false, "value outside the mask never holds"},
		{OpMaskedEQ, 0, 0, max, true, "empty mask always holds"},
		{OpMaskedEQ, max, max, max, true, "full mask, max"},
		{OpMaskedEQ, max, max, max - 1, false, "full mask, max-1"},
		{OpMaskedEQ, b63, b63, b63 | 1, true, "top bit"},
	} {
		for _, index := range []uint8{0, 3, 5} {
			c := Cond{Index: index, Op: tc.op, Value: tc.value, Mask: tc.mask}
			if ref := refHolds(c, [6]uint64{tc.arg, 0, 0, tc.arg, 0, tc.arg}); ref != tc.want {
				t.Fatalf("table and reference disagree on %s for %#x", c, tc.arg)
			}
			if got := runCond(t, c)(tc.arg); got != tc.want {
				t.Errorf("%s, arg %#x (%s): got %v, want %v", c, tc.arg, tc.nameOfArg, got, tc.want)
			}
		}
	}
}

// TestCompareOpsBoundaries runs every op over every pair of boundary
// values, and each value's neighbours, against the reference.
func TestCompareOpsBoundaries(t *testing.T) {
	var args []uint64
	for _, b := range boundaries {
		args = append(args, b, b+1, b-1, b^1<<32, b^1, b^1<<63)
	}
	for op := OpEQ; op <= OpMaskedEQ; op++ {
		for _, value := range boundaries {
			masks := []uint64{0}
			if op == OpMaskedEQ {
				masks = []uint64{0xffffffff, 0xffffffff_00000000, math.MaxUint64, value, 0x80000001_80000001}
			}
			for _, mask := range masks {
				c := Cond{Index: 2, Op: op, Value: value, Mask: mask}
				if op == OpMaskedEQ {
					c.Value &= mask // a value the mask can give
				}
				holds := runCond(t, c)
				for _, arg := range args {
					want := refHolds(c, [6]uint64{2: arg})
					if got := holds(arg); got != want {
						t.Errorf("%s, arg %#x: got %v, want %v", c, arg, got, want)
					}
				}
			}
		}
	}
}

// TestCompareOpsRandom is a property test: random (op, value, arg)
// triples through the VM agree with Go's comparison.
func TestCompareOpsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	programs, runs := 3000, 25
	if testing.Short() {
		programs = 300
	}
	for range programs {
		c := Cond{Index: uint8(r.IntN(6)), Op: Op(1 + r.IntN(7)), Value: randValue(r)}
		if c.Op == OpMaskedEQ {
			c.Mask = randValue(r)
			if r.IntN(4) != 0 {
				c.Value &= c.Mask
			}
		}
		holds := runCond(t, c)
		for range runs {
			arg := near(r, c.Value)
			if c.Op == OpMaskedEQ && r.IntN(2) == 0 {
				arg = c.Value | r.Uint64()&^c.Mask
			}
			var args [6]uint64
			args[c.Index] = arg
			want := refHolds(c, args)
			if got := holds(arg); got != want {
				t.Fatalf("%s, arg %#x: got %v, want %v", c, arg, got, want)
			}
		}
	}
}

// TestArgOffsets checks that each argument is read from its own place,
// the low half first.
func TestArgOffsets(t *testing.T) {
	const v = 0x11223344_55667788
	const swapped = 0x55667788_11223344
	for i := range uint8(6) {
		p := &Profile{Default: Allow, Arches: []Arch{X86_64}, Rules: []Rule{
			{Names: []string{"read"}, Action: Errno(1), Conds: []Cond{{Index: i, Op: OpEQ, Value: v}}},
		}}
		vm := newVM(t, mustCompile(t, p))
		var only, others, swap [6]uint64
		only[i] = v
		for j := range others {
			if j != int(i) {
				others[j] = v
			}
		}
		swap[i] = swapped
		for _, c := range []struct {
			args [6]uint64
			want uint32
		}{
			{only, retErrno(1)},
			{others, retAllow},
			{swap, retAllow},
		} {
			if got := runVM(t, vm, call{X86_64, 0, c.args}); got != c.want {
				t.Errorf("arg%d, args %#x: got %#x, want %#x", i, c.args, got, c.want)
			}
		}
	}
}

func TestMultipleRules(t *testing.T) {
	ioctl, read, write := nr(t, X86_64, "ioctl"), nr(t, X86_64, "read"), nr(t, X86_64, "write")
	p := &Profile{Default: Errno(99), Arches: []Arch{X86_64}, Rules: []Rule{
		{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 1, Op: OpEQ, Value: 1}}},
		{Names: []string{"ioctl"}, Action: Errno(2), Conds: []Cond{{Index: 1, Op: OpEQ, Value: 1}}}, // shadowed by the first
		{Names: []string{"ioctl"}, Action: Errno(3), Conds: []Cond{ // three conditions, all needed
			{Index: 0, Op: OpEQ, Value: 5},
			{Index: 1, Op: OpGE, Value: 10},
			{Index: 1, Op: OpLT, Value: 20},
		}},
		{Names: []string{"read", "ioctl", "read"}, Action: Errno(4), Conds: []Cond{{Index: 2, Op: OpNE, Value: 0}}},
		{Names: []string{"ioctl"}, Action: Errno(5), Conds: []Cond{{Index: 3, Op: OpMaskedEQ, Mask: 0xf, Value: 0xa}}},
		{Names: []string{"ioctl", "write"}, Action: Errno(6)}, // unconditional: the rest is never reached
		{Names: []string{"ioctl"}, Action: Errno(7)},
		{Names: []string{"write"}, Action: Allow},
	}}
	prog := mustCompile(t, p)
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"first rule", call{X86_64, ioctl, [6]uint64{0, 1}}, retErrno(1)},
		{"first rule with the other conditions true too", call{X86_64, ioctl, [6]uint64{5, 1, 1, 0xa}}, retErrno(1)},
		{"all three conditions", call{X86_64, ioctl, [6]uint64{5, 15}}, retErrno(3)},
		{"all three, lower bound", call{X86_64, ioctl, [6]uint64{5, 10}}, retErrno(3)},
		{"third fails, upper bound", call{X86_64, ioctl, [6]uint64{5, 20}}, retErrno(6)},
		{"first fails", call{X86_64, ioctl, [6]uint64{4, 15}}, retErrno(6)},
		{"second fails", call{X86_64, ioctl, [6]uint64{5, 9}}, retErrno(6)},
		{"three fail, the next holds", call{X86_64, ioctl, [6]uint64{5, 9, 1}}, retErrno(4)},
		{"masked", call{X86_64, ioctl, [6]uint64{0, 0, 0, 0xfa}}, retErrno(5)},
		{"unconditional", call{X86_64, ioctl, [6]uint64{0, 0, 0, 0xfb}}, retErrno(6)},
		{"read, in a rule twice, holds", call{X86_64, read, [6]uint64{0, 0, 7}}, retErrno(4)},
		{"read falls through to the default", call{X86_64, read, [6]uint64{0, 0, 0}}, retErrno(99)},
		{"write: first rule that names it", call{X86_64, write, [6]uint64{}}, retErrno(6)},
		{"unnamed", call{X86_64, nr(t, X86_64, "close"), [6]uint64{}}, retErrno(99)},
	} {
		if got := run(t, prog, tc.c); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
		if ref := retOf(refAction(p, tc.c)); ref != tc.want {
			t.Errorf("%s: the reference says %#x, the table %#x", tc.name, ref, tc.want)
		}
	}

	// Order matters: the same rules the other way round.
	a := Rule{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 0, Op: OpEQ, Value: 1}}}
	b := Rule{Names: []string{"ioctl"}, Action: Errno(2)}
	c := call{X86_64, ioctl, [6]uint64{1}}
	ab := mustCompile(t, &Profile{Default: Allow, Rules: []Rule{a, b}})
	ba := mustCompile(t, &Profile{Default: Allow, Rules: []Rule{b, a}})
	if got := run(t, ab, c); got != retErrno(1) {
		t.Errorf("a, b: got %#x, want errno 1", got)
	}
	if got := run(t, ba, c); got != retErrno(2) {
		t.Errorf("b, a: got %#x, want errno 2", got)
	}
	if got := run(t, ab, call{X86_64, ioctl, [6]uint64{2}}); got != retErrno(2) {
		t.Errorf("a, b, arg 2: got %#x, want errno 2", got)
	}
}

// TestSegments covers the binary search's edges: syscall 0, neighbours
// with the same or different actions, the highest number, and a rule
// whose action is the default.
func TestSegments(t *testing.T) {
	names := namesOf(X86_64)
	highest := names[0]
	for _, n := range names {
		if a, b := nr(t, X86_64, n), nr(t, X86_64, highest); a > b {
			highest = n
		}
	}
	for _, p := range []*Profile{
		{Default: Errno(9), Rules: []Rule{{Names: []string{"read"}, Action: Allow}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{"read"}, Action: Allow, Conds: []Cond{{Index: 0, Op: OpEQ, Value: 0}}}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{"read"}, Action: Errno(9)}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{"read", "write", "open"}, Action: Allow}, {Names: []string{"close"}, Action: Log}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{"write"}, Action: Allow}, {Names: []string{"close"}, Action: Allow}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{highest}, Action: Allow}}},
		{Default: Errno(9), Rules: []Rule{{Names: []string{highest}, Action: Allow, Conds: []Cond{{Index: 0, Op: OpGT, Value: 3}}}}},
		{Default: Allow, Arches: []Arch{X86_64, X86, X32, AARCH64}, Rules: []Rule{
			{Names: []string{"restart_syscall", "read", highest}, Action: Trap},
			{Names: []string{"io_setup"}, Action: Errno(3), Conds: []Cond{{Index: 0, Op: OpLE, Value: 7}}},
		}},
		{Default: Allow},
	} {
		prog := mustCompile(t, p)
		vm := newVM(t, prog)
		for _, abi := range p.arches() {
			for nr := uint32(0); nr < 600; nr++ {
				for _, arg := range []uint64{0, 3, 4, 8} {
					c := call{abi, nr, [6]uint64{arg}}
					if abi == X32 {
						c.nr |= x32Bit
					}
					want := retOf(refAction(p, c))
					if got := runVM(t, vm, c); got != want {
						t.Errorf("%v: %s nr %#x arg %d: got %#x, want %#x", p.Rules, abi, c.nr, arg, got, want)
					}
				}
			}
		}
	}
}

// bigProfile gives each of the first n x86_64 syscalls (by number) a
// conditional rule, each with a different op; with extra, each also gets
// a second, two-condition rule.
func bigProfile(n int, extra bool, arches ...Arch) *Profile {
	names := namesOf(X86_64)
	sort.Slice(names, func(i, j int) bool {
		a, _ := X86_64.Number(names[i])
		b, _ := X86_64.Number(names[j])
		return a < b
	})
	p := &Profile{Default: Allow, Arches: arches}
	for i, name := range names[:n] {
		nr, _ := X86_64.Number(name)
		op := Op(1 + i%7)
		c := Cond{Index: uint8(i % 6), Op: op, Value: uint64(nr) | uint64(i)<<32}
		if op == OpMaskedEQ {
			c.Mask = 0xffff_0000ffff
			c.Value &= c.Mask
		}
		p.Rules = append(p.Rules, Rule{Names: []string{name}, Action: Errno(uint16(i + 1)), Conds: []Cond{c}})
		if extra {
			p.Rules = append(p.Rules, Rule{Names: []string{name}, Action: Errno(uint16(i + 1000)), Conds: []Cond{
				{Index: 0, Op: OpNE, Value: uint64(i)},
				{Index: 1, Op: OpGE, Value: uint64(i) << 33},
			}})
		}
	}
	return p
}

// hasFarJump says whether prog has an unconditional jump further than a
// conditional one reaches: a trampoline, or a jump to a far return.
func hasFarJump(prog []bpf.Instruction) bool {
	for _, ins := range prog {
		if j, ok := ins.(bpf.Jump); ok && j.Skip > 255 {
			return true
		}
	}
	return false
}

func TestTrampolines(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		p    *Profile
		abis []Arch
	}{
		{"300 syscalls", bigProfile(300, false, X86_64), []Arch{X86_64}},
		{"150 syscalls, two rules each", bigProfile(150, true, X86_64), []Arch{X86_64}},
		{"120 syscalls, three ABIs", bigProfile(120, false, X86_64, X86, X32), []Arch{X86_64, X86, X32}},
		{"every syscall", bigProfile(len(tableX86_64), false, X86_64), []Arch{X86_64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := mustCompile(t, tc.p)
			t.Logf("%s: %d instructions", tc.p.Summary(), len(prog))
			if !hasFarJump(prog) {
				t.Errorf("no far jump: the profile does not test trampolines")
			}
			vm := newVM(t, prog)
			// Each syscall, with its condition true and false.
			for _, rule := range tc.p.Rules {
				nr := nr(t, X86_64, rule.Names[0])
				cd := rule.Conds[0]
				for _, arg := range []uint64{cd.Value, cd.Value + 1, cd.Value - 1, cd.Value ^ 1<<40} {
					c := call{X86_64, nr, [6]uint64{}}
					c.args[cd.Index] = arg
					want := retOf(refAction(tc.p, c))
					if got := runVM(t, vm, c); got != want {
						t.Errorf("%s arg%d %#x: got %#x, want %#x", rule.Names[0], cd.Index, arg, got, want)
					}
				}
			}
			checkAgainstRef(t, r, tc.p, prog, append(tc.abis, AARCH64), 5000)
		})
	}
}

// TestLongRule has a rule with so many conditions that its first
// condition's jump to the next rule needs a trampoline.
func TestLongRule(t *testing.T) {
	var conds []Cond
	for i := range 100 {
		conds = append(conds, Cond{Index: uint8(i % 6), Op: OpNE, Value: uint64(i)})
	}
	p := &Profile{Default: Errno(99), Rules: []Rule{
		{Names: []string{"read"}, Action: Errno(1), Conds: conds},
		{Names: []string{"read"}, Action: Errno(2), Conds: []Cond{{Index: 0, Op: OpEQ, Value: 0}}},
	}}
	prog := mustCompile(t, p)
	if len(prog) < 400 {
		t.Fatalf("%d instructions: too short to need a trampoline", len(prog))
	}
	for _, tc := range []struct {
		args [6]uint64
		want uint32
	}{
		{[6]uint64{100, 100, 100, 100, 100, 100}, retErrno(1)},
		{[6]uint64{0, 100, 100, 100, 100, 100}, retErrno(2)},   // the first condition fails
		{[6]uint64{96, 100, 100, 100, 100, 100}, retErrno(99)}, // the last but three fails
		{[6]uint64{100, 100, 100, 100, 100, 47}, retErrno(99)}, // one in the middle fails
	} {
		if got := run(t, prog, call{X86_64, 0, tc.args}); got != tc.want {
			t.Errorf("args %v: got %#x, want %#x", tc.args, got, tc.want)
		}
	}
}

func TestTooBig(t *testing.T) {
	p := &Profile{Default: Allow}
	for _, name := range namesOf(X86_64)[:350] {
		for i := range 3 {
			p.Rules = append(p.Rules, Rule{Names: []string{name}, Action: Errno(uint16(i + 1)), Conds: []Cond{
				{Index: 0, Op: OpEQ, Value: uint64(i)}, {Index: 1, Op: OpEQ, Value: uint64(i)},
			}})
		}
	}
	filter, err := Compile(p)
	if err == nil {
		t.Fatalf("Compile: %d instructions and no error", len(filter))
	}
	if filter != nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("Compile: %d instructions, %v; want no program and an error about 4096", len(filter), err)
	}
}

// TestSizeLimit grows one syscall's rules until the program no longer
// fits: the last one that fits has at most 4096 instructions and runs.
func TestSizeLimit(t *testing.T) {
	rules := func(n int) *Profile {
		p := &Profile{Default: Allow}
		for i := range n {
			p.Rules = append(p.Rules, Rule{Names: []string{"ioctl"}, Action: Errno(uint16(i%8 + 1)), Conds: []Cond{{Index: 1, Op: OpEQ, Value: uint64(i)}}})
		}
		return p
	}
	last := 0
	for n := 700; n < 1000; n++ {
		if _, err := Compile(rules(n)); err != nil {
			if !strings.Contains(err.Error(), "4096") {
				t.Fatalf("%d rules: %v", n, err)
			}
			break
		}
		last = n
	}
	if last == 0 || last == 999 {
		t.Fatalf("no limit found between 700 and 1000 rules (last %d)", last)
	}
	p := rules(last)
	prog := mustCompile(t, p)
	if len(prog) > 4096 || len(prog) < 4096-8 {
		t.Errorf("%d rules: %d instructions, want just under 4096", last, len(prog))
	}
	vm := newVM(t, prog)
	for _, i := range []int{0, 1, last / 2, last - 1, last} {
		c := call{X86_64, 16, [6]uint64{0, uint64(i)}}
		if got, want := runVM(t, vm, c), retOf(refAction(p, c)); got != want {
			t.Errorf("ioctl %d: got %#x, want %#x", i, got, want)
		}
	}
}

// TestRandomProfiles is a property test: random profiles, compiled and
// run on random calls, agree with the reference evaluator.
func TestRandomProfiles(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	iterations := 300
	if testing.Short() {
		iterations = 40
	}
	archSets := [][]Arch{nil, {X86_64}, {X86_64, X86, X32}, {X86_64, X32}, {X86}, {X32}, {AARCH64}, {AARCH64, X86_64}}
	tooBig := 0
	for it := range iterations {
		arches := archSets[r.IntN(len(archSets))]
		p := &Profile{Default: randAction(r), Arches: arches}
		var pool []string
		for _, a := range p.arches() {
			names := namesOf(a)
			for range 6 {
				pool = append(pool, names[r.IntN(len(names))])
			}
		}
		pool = append(pool, "read") // number 0 on x86_64
		nrules := r.IntN(12)
		if r.IntN(5) == 0 {
			nrules = 100 + r.IntN(400)
		}
		for range nrules {
			rule := Rule{Action: randAction(r)}
			for range 1 + r.IntN(3) {
				rule.Names = append(rule.Names, pool[r.IntN(len(pool))])
			}
			for range r.IntN(4) {
				c := Cond{Index: uint8(r.IntN(6)), Op: Op(1 + r.IntN(7)), Value: randValue(r)}
				if c.Op == OpMaskedEQ {
					c.Mask = randValue(r)
					if r.IntN(4) != 0 {
						c.Value &= c.Mask
					}
				}
				rule.Conds = append(rule.Conds, c)
			}
			p.Rules = append(p.Rules, rule)
		}
		filter, err := Compile(p)
		if err != nil {
			if strings.Contains(err.Error(), "4096") {
				tooBig++
				continue
			}
			t.Fatalf("iteration %d: %v", it, err)
		}
		prog := toVM(t, filter)
		abis := append(p.arches(), X86_64, X86, X32, AARCH64, ARM)
		checkAgainstRef(t, r, p, prog, abis, 400)
		if t.Failed() {
			t.Fatalf("iteration %d: profile %s: %v", it, p.Summary(), p.Rules)
		}
	}
	t.Logf("%d of %d profiles too big", tooBig, iterations)
}

func randAction(r *rand.Rand) Action {
	return []Action{Allow, Errno(uint16(r.IntN(4096))), KillProcess, KillThread, Trap, Log,
		{Kind: ActTrace, Errno: uint16(r.IntN(100))}, Notify}[r.IntN(8)]
}

// TestBuiltinsAgainstReference runs random calls through the builtin
// profiles and the reference evaluator; Docker's and Default's programs
// are long enough to need trampolines.
func TestBuiltinsAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for name, get := range map[string]func() (*Profile, error){
		"docker": Docker, "default": Default,
		"audit": func() (*Profile, error) { return Audit(), nil },
	} {
		t.Run(name, func(t *testing.T) {
			p, err := get()
			if err != nil {
				t.Fatal(err)
			}
			prog := mustCompile(t, p)
			if len(prog) > 4096 {
				t.Fatalf("%d instructions", len(prog))
			}
			checkAgainstRef(t, r, p, prog, []Arch{X86_64, X86, X32, AARCH64, ARM}, n)
		})
	}
}
