package seccomp

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	moby "github.com/moby/profiles/seccomp"
)

func TestParseJSON(t *testing.T) {
	native, _ := NativeArch()
	if native != X86_64 {
		t.Skip("the architectures below are x86_64's")
	}
	for _, tc := range []struct {
		name    string
		json    string
		want    *Profile
		unknown []string
	}{
		{"minimal", `{"defaultAction":"SCMP_ACT_ALLOW"}`, &Profile{Default: Allow}, nil},
		{"whitespace around", " \n{\"defaultAction\":\"SCMP_ACT_LOG\"}\n\t ", &Profile{Default: Log}, nil},
		{"empty lists", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":[],"syscalls":[]}`, &Profile{Default: Allow}, nil},
		{"defaultErrnoRet", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38}`, &Profile{Default: Errno(38)}, nil},
		{"errno without errnoRet is EPERM", `{"defaultAction":"SCMP_ACT_ERRNO"}`, &Profile{Default: Errno(1)}, nil},
		{"kill is kill_process", `{"defaultAction":"SCMP_ACT_KILL"}`, &Profile{Default: KillProcess}, nil},
		{"kill_thread", `{"defaultAction":"SCMP_ACT_KILL_THREAD"}`, &Profile{Default: KillThread}, nil},
		{"trace", `{"defaultAction":"SCMP_ACT_TRACE","defaultErrnoRet":9}`, &Profile{Default: Action{Kind: ActTrace, Errno: 9}}, nil},
		{"architectures, native first, foreign dropped",
			`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_AARCH64","SCMP_ARCH_X32","SCMP_ARCH_X86_64","SCMP_ARCH_X86"]}`,
			&Profile{Default: Allow, Arches: []Arch{X86_64, X86, X32}}, nil},
		{"architectures without the native one get it",
			`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X32"]}`,
			&Profile{Default: Allow, Arches: []Arch{X86_64, X32}}, nil},
		{"foreign architectures alone: native",
			`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"]}`,
			&Profile{Default: Allow}, nil},
		{"archMap picks this machine's entry",
			`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[
				{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]},
				{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}]}`,
			&Profile{Default: Allow, Arches: []Arch{X86_64, X86}}, nil},
		{"archMap without this machine",
			`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":null}]}`,
			&Profile{Default: Allow}, nil},
		{"name and names",
			`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"name":"read","action":"SCMP_ACT_ALLOW"},
				{"names":["write","close"],"action":"SCMP_ACT_LOG","comment":"a comment"}]}`,
			&Profile{Default: Errno(1), Rules: []Rule{
				{Names: []string{"read"}, Action: Allow},
				{Names: []string{"write", "close"}, Action: Log},
			}}, nil},
		{"actions and errnoRet",
			`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
				{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
				{"names":["write"],"action":"SCMP_ACT_ERRNO"},
				{"names":["close"],"action":"SCMP_ACT_TRACE","errnoRet":5},
				{"names":["open"],"action":"SCMP_ACT_TRAP"},
				{"names":["stat"],"action":"SCMP_ACT_KILL_PROCESS"},
				{"names":["fstat"],"action":"SCMP_ACT_KILL_THREAD"},
				{"names":["poll"],"action":"SCMP_ACT_LOG"},
				{"names":["lseek"],"action":"SCMP_ACT_ALLOW"}]}`,
			&Profile{Default: Allow, Rules: []Rule{
				{Names: []string{"read"}, Action: Errno(13)},
				{Names: []string{"write"}, Action: Errno(1)},
				{Names: []string{"close"}, Action: Action{Kind: ActTrace, Errno: 5}},
				{Names: []string{"open"}, Action: Trap},
				{Names: []string{"stat"}, Action: KillProcess},
				{Names: []string{"fstat"}, Action: KillThread},
				{Names: []string{"poll"}, Action: Log},
				{Names: []string{"lseek"}, Action: Allow},
			}}, nil},
		{"every op",
			`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[
				{"index":0,"value":1,"op":"SCMP_CMP_EQ"},
				{"index":1,"value":2,"valueTwo":99,"op":"SCMP_CMP_NE"},
				{"index":2,"value":3,"op":"SCMP_CMP_LT"},
				{"index":3,"value":4,"op":"SCMP_CMP_LE"},
				{"index":4,"value":5,"op":"SCMP_CMP_GT"},
				{"index":5,"value":18446744073709551615,"op":"SCMP_CMP_GE"},
				{"index":1,"value":4294967295,"valueTwo":21522,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
			// Index 1 comes twice: as runc does, each condition is then a
			// rule of its own.
			&Profile{Default: Allow, Rules: []Rule{
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 0, Op: OpEQ, Value: 1}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 1, Op: OpNE, Value: 2}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 2, Op: OpLT, Value: 3}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 3, Op: OpLE, Value: 4}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 4, Op: OpGT, Value: 5}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 5, Op: OpGE, Value: 1<<64 - 1}}},
				{Names: []string{"ioctl"}, Action: Errno(1), Conds: []Cond{{Index: 1, Op: OpMaskedEQ, Mask: 0xffffffff, Value: 0x5412}}},
			}}, nil},
		{"includes and excludes",
			`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN"]}},
				{"names":["write"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["close"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN","CAP_SYS_ADMIN"]}},
				{"names":["open"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["stat"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_CHOWN"]}},
				{"names":["fstat"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x86"]}},
				{"names":["lstat"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
				{"names":["poll"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}},
				{"names":["lseek"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["s390x"]}},
				{"names":["mmap"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"3.0"}},
				{"names":["mprotect"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"255.0"}},
				{"names":["munmap"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"3.0"}},
				{"names":["brk"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"255.255"}},
				{"names":["pipe"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":""}}]}`,
			&Profile{Default: Errno(1), Rules: []Rule{
				{Names: []string{"read"}, Action: Allow},
				{Names: []string{"open"}, Action: Allow},
				{Names: []string{"fstat"}, Action: Allow},
				{Names: []string{"lseek"}, Action: Allow},
				{Names: []string{"mmap"}, Action: Allow},
				{Names: []string{"brk"}, Action: Allow},
				{Names: []string{"pipe"}, Action: Allow},
			}}, nil},
		{"unknown names are returned and left out",
			`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["read","no_such_syscall","socketcall","read"],"action":"SCMP_ACT_ALLOW"},
				{"names":["socketcall","another_one"],"action":"SCMP_ACT_LOG"},
				{"names":["no_such_syscall"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			&Profile{Default: Errno(1), Rules: []Rule{{Names: []string{"read", "read"}, Action: Allow}}},
			[]string{"no_such_syscall", "socketcall", "another_one"}},
		{"a name of a listed sub-architecture is known",
			`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[
				{"names":["socketcall","aarch64_only_name_that_is_not"],"action":"SCMP_ACT_ALLOW"}]}`,
			&Profile{Default: Errno(1), Arches: []Arch{X86_64, X86}, Rules: []Rule{{Names: []string{"socketcall"}, Action: Allow}}},
			[]string{"aarch64_only_name_that_is_not"}},
		{"keys are matched without case, as encoding/json does",
			`{"DefaultAction":"SCMP_ACT_ALLOW","SYSCALLS":[{"Names":["read"],"Action":"SCMP_ACT_LOG"}]}`,
			&Profile{Default: Allow, Rules: []Rule{{Names: []string{"read"}, Action: Log}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, unknown, err := ParseJSON([]byte(tc.json))
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if !sameProfile(p, tc.want) {
				t.Errorf("ParseJSON = %s %v\nwant %s %v", p.Summary(), p.Rules, tc.want.Summary(), tc.want.Rules)
			}
			if !slices.Equal(unknown, tc.unknown) {
				t.Errorf("unknown = %q, want %q", unknown, tc.unknown)
			}
			if err := p.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			mustCompile(t, p)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, msg string
	}{
		{"empty", ``, "EOF"},
		{"not an object", `[]`, "cannot unmarshal"},
		{"null", `null`, "no defaultAction"},
		{"no defaultAction", `{}`, "no defaultAction"},
		{"no defaultAction, with syscalls", `{"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`, "no defaultAction"},
		{"unknown key", `{"defaultAction":"SCMP_ACT_ALLOW","bogus":1}`, `unknown field "bogus"`},
		{"unknown key in a syscall", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","nmaes":[]}]}`, `unknown field "nmaes"`},
		{"unknown key in an arg", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ","vlaue":2}]}]}`, `unknown field "vlaue"`},
		{"unknown key in includes", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"cap":["CAP_CHOWN"]}}]}`, `unknown field "cap"`},
		{"unknown key in archMap", `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"arch":"SCMP_ARCH_X86_64"}]}`, `unknown field "arch"`},
		{"bad default action", `{"defaultAction":"SCMP_ACT_MAYBE"}`, "unknown action"},
		{"bad action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_MAYBE"}]}`, "syscalls[0]: unknown action"},
		{"no action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"]}]}`, "syscalls[0]: unknown action"},
		{"errnoRet on allow", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}`, "takes no errno"},
		{"defaultErrnoRet on allow", `{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}`, "takes no errno"},
		{"errnoRet too big", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":4096}`, "want 0 to 4095"},
		{"negative errnoRet", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}`, "cannot unmarshal"},
		{"bad op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_MAYBE"}]}]}`, `unknown op "SCMP_CMP_MAYBE"`},
		{"no op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1}]}]}`, `unknown op ""`},
		{"index 6", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "argument index 6"},
		{"huge index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":4294967296,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "argument index"},
		{"value too big", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":18446744073709551616,"op":"SCMP_CMP_EQ"}]}]}`, "cannot unmarshal"},
		{"both architectures and archMap", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "both 'architectures' and 'archMap'"},
		{"both name and names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}`, "both 'name' and 'names'"},
		{"bad minKernel", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"five"}}]}`, "invalid kernel version"},
		{"unknown architecture", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["PDP11"]}`, "unknown architecture"},
		{"flags", `{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"]}`, "filter flags are not supported"},
		{"listener", `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock"}`, "listenerPath"},
		{"notify default", `{"defaultAction":"SCMP_ACT_NOTIFY"}`, "SCMP_ACT_NOTIFY needs a supervisor"},
		{"notify rule", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}`, "syscalls[0]: SCMP_ACT_NOTIFY needs a supervisor"},
		{"trailing object", `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "more than one JSON value"},
		{"trailing garbage", `{"defaultAction":"SCMP_ACT_ALLOW"} x`, "more than one JSON value"},
		{"trailing brace", `{"defaultAction":"SCMP_ACT_ALLOW"}}`, "after top-level value"},
		{"trailing bracket", `{"defaultAction":"SCMP_ACT_ALLOW"}]`, "after top-level value"},
		{"truncated", `{"defaultAction":"SCMP_ACT_ALLOW"`, "unexpected EOF"},
		{"wrong type", `{"defaultAction":1}`, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, unknown, err := ParseJSON([]byte(tc.json))
			if err == nil {
				t.Fatalf("ParseJSON = %s, %v, nil; want an error", p.Summary(), unknown)
			}
			if p != nil || unknown != nil {
				t.Errorf("ParseJSON returned %v, %v with the error", p, unknown)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to say %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "seccomp profile: ") {
				t.Errorf("error %q does not start with \"seccomp profile: \"", err)
			}
		})
	}
}

// TestParseJSONNullSyscall: a null in the syscalls list is bad input
// and must be an error; it panics in moby's setupSeccomp (a nil
// *Syscall), which ParseJSON calls.
func TestParseJSONNullSyscall(t *testing.T) {
	for _, in := range []string{
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[null]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_LOG"},null]}`,
	} {
		var err error
		panicked := func() (v any) {
			defer func() { v = recover() }()
			_, _, err = ParseJSON([]byte(in))
			return nil
		}()
		if panicked != nil {
			t.Fatalf("ParseJSON(%s) panics: %v", in, panicked)
		}
		if err == nil {
			t.Errorf("ParseJSON(%s): no error", in)
		}
	}
}

// TestParseJSONDocker: Docker's own default profile, as JSON, parses to
// what Docker() returns.
func TestParseJSONDocker(t *testing.T) {
	data, err := json.Marshal(moby.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	p, unknown, err := ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Docker()
	if err != nil {
		t.Fatal(err)
	}
	if !sameProfile(p, want) {
		t.Errorf("ParseJSON(docker's default.json) = %s, Docker() = %s", p.Summary(), want.Summary())
	}
	t.Logf("unknown on this machine: %d names", len(unknown))
	for _, n := range unknown {
		for _, a := range p.arches() {
			if _, ok := a.Number(n); ok {
				t.Errorf("%q is reported unknown, but %s has it", n, a)
			}
		}
	}
}

// TestParseJSONRepeatedIndex: runc, which runs Docker's and Podman's
// profiles, reads a syscall entry whose args name one argument twice as
// one rule per arg (either may hold), not as one rule with all of them
// (libcontainer/seccomp/seccomp_linux.go, matchCall: "If two or more
// arguments have the same condition, Revert to old behavior, adding each
// condition as a separate rule"). The package says a profile should mean
// here what it means in Docker.
func TestParseJSONRepeatedIndex(t *testing.T) {
	p, _, err := ParseJSON([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[
			{"index":0,"value":16,"op":"SCMP_CMP_EQ"},
			{"index":0,"value":40,"op":"SCMP_CMP_EQ"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	prog := mustCompile(t, p)
	socket := nr(t, X86_64, "socket")
	if got := run(t, prog, call{X86_64, socket, [6]uint64{2}}); got != retAllow {
		t.Errorf("socket(AF_INET): got %#x, want allow", got)
	}
	for _, family := range []uint64{16, 40} {
		if got := run(t, prog, call{X86_64, socket, [6]uint64{family}}); got != retErrno(1) {
			t.Fatalf("with two args on index 0 (== 16, == 40), socket(%d) gets %#x; runc denies it (EPERM): the conditions are ANDed here, ORed in runc", family, got)
		}
	}
}

// TestParseJSONForeignArchitectures: the OCI spec's architectures
// include ones this package has no table for (SCMP_ARCH_PPC64LE,
// SCMP_ARCH_S390X, SCMP_ARCH_RISCV64...). Like aarch64 on x86_64, they
// are another machine's and should be left out, as the syscall names of
// other machines are; ParseJSON rejects the whole profile instead.
func TestParseJSONForeignArchitectures(t *testing.T) {
	in := `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64","SCMP_ARCH_PPC64LE","SCMP_ARCH_S390X"]}`
	p, _, err := ParseJSON([]byte(in))
	if err != nil {
		t.Fatalf("ParseJSON rejects a profile listing other machines' architectures: %v", err)
	}
	if native, _ := NativeArch(); !slices.Equal(p.arches(), []Arch{native}) {
		t.Errorf("arches %v, want the native one", p.arches())
	}
}

// fuzzSeeds are the seed corpus of FuzzParseJSON: the profiles of the
// tests above, Docker's own, and the files in testdata.
func fuzzSeeds(f *testing.F) [][]byte {
	seeds := []string{
		`{"defaultAction":"SCMP_ACT_ALLOW"}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"},{"names":["write","close"],"action":"SCMP_ACT_LOG"}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":25,"args":[
			{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_NE"},{"index":2,"value":3,"op":"SCMP_CMP_LT"},
			{"index":3,"value":4,"op":"SCMP_CMP_LE"},{"index":4,"value":5,"op":"SCMP_CMP_GT"},{"index":5,"value":6,"op":"SCMP_CMP_GE"},
			{"index":1,"value":4294967295,"valueTwo":21522,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"],"arches":["amd64"],"minKernel":"4.8"},"excludes":{"caps":["CAP_CHOWN"]}}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","bogus":1}`,
		`{"defaultAction":"SCMP_ACT_ALLOW"} {}`,
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	if data, err := json.Marshal(moby.DefaultProfile()); err == nil {
		out = append(out, data)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			out = append(out, data)
		}
	}
	return out
}

// FuzzParseJSON: ParseJSON never panics; what it accepts passes Check,
// compiles or fails to compile with an error, fits the kernel's limit,
// and runs in the VM as the reference evaluator says.
func FuzzParseJSON(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			p       *Profile
			unknown []string
			err     error
		)
		func() {
			defer func() {
				if v := recover(); v != nil {
					panic(v)
				}
			}()
			p, unknown, err = ParseJSON(data)
		}()
		if err != nil {
			if p != nil || unknown != nil {
				t.Errorf("ParseJSON returned a profile with error %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("ParseJSON: no profile and no error")
		}
		if err := p.Check(); err != nil {
			t.Fatalf("ParseJSON's profile fails Check: %v", err)
		}
		for _, n := range unknown {
			for _, r := range p.Rules {
				if slices.Contains(r.Names, n) {
					t.Errorf("unknown %q left in rule %s", n, r)
				}
			}
		}
		filter, err := Compile(p)
		if err != nil {
			if filter != nil {
				t.Errorf("Compile returned a program with error %v", err)
			}
			return
		}
		if len(filter) > 4096 {
			t.Fatalf("%d instructions", len(filter))
		}
		prog := toVM(t, filter)
		r := rand.New(rand.NewPCG(uint64(len(data)), 1))
		checkAgainstRef(t, r, p, prog, append(p.arches(), AARCH64), 50)
	})
}
