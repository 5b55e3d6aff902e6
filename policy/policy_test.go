package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func ptr[T any](v T) *T { return &v }

// trickyStrings are values that must survive Quote and a TOML parser intact.
var trickyStrings = []struct {
	name string
	s    string
}{
	{"empty", ""},
	{"plain", "en_US.UTF-8"},
	{"double quote", `say "hi"`},
	{"only quotes", `"""`},
	{"single quotes", `it's '''`},
	{"backslash", `C:\path\to\x`},
	{"backslash then quote", `\"`},
	{"trailing backslash", `abc\`},
	{"unicode escape lookalike", `\u0041 \U00000041 \n \t`},
	{"newline", "a\nb"},
	{"crlf", "a\r\nb\r\n"},
	{"tab", "a\tb"},
	{"backspace and form feed", "a\bb\fc"},
	{"NUL", "a\x00b"},
	{"control chars", "\x01\x02\x1b[31m\x1f"},
	{"DEL", "a\x7fb"},
	{"C1 control", "a\u0085b\u009fc"},
	{"unicode", "héllo wörld — 日本語 Ελληνικά"},
	{"emoji", "🦀👨‍👩‍👧 🏳️‍🌈"},
	{"replacement char", "a\uFFFDb"},
	{"line separators", "a\u2028b\u2029c"},
	{"BOM", "\uFEFFx"},
	{"template braces", "{{ os_env \"X\" }}"},
	{"toml syntax", "x = 1\n[limits]\ncpu = 2\n# comment"},
	{"all together", "\"\\\n\t\x00\x7f☃🎉'`$"},
}

func TestQuoteExact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", `"a\nb"`},
		{"a\tb", `"a\tb"`},
		{"a\rb", `"a\rb"`},
		{"\b\f", `"\b\f"`},
		{"\x00", `"\u0000"`},
		{"\x1b", `"\u001B"`},
		{"\x7f", `"\u007F"`},
		{"日本", `"日本"`},
		{"🦀", `"🦀"`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteRoundTrip checks that Quote(s) decodes back to s with a TOML
// parser.
func TestQuoteRoundTrip(t *testing.T) {
	for _, tt := range trickyStrings {
		t.Run(tt.name, func(t *testing.T) {
			doc := "x = " + Quote(tt.s) + "\n"
			var v struct {
				X string `toml:"x"`
			}
			if err := toml.Unmarshal([]byte(doc), &v); err != nil {
				t.Fatalf("decoding %q: %v", doc, err)
			}
			if v.X != tt.s {
				t.Errorf("round trip of %q gave %q", tt.s, v.X)
			}
		})
	}
}

// TestQuoteInvalidUTF8 checks that Quote of bytes that are not UTF-8 still
// yields a valid TOML string (TOML cannot carry such bytes, so they are
// replaced).
func TestQuoteInvalidUTF8(t *testing.T) {
	for _, s := range []string{"\xff", "a\xc3(b", "\xed\xa0\x80"} {
		q := Quote(s)
		var v map[string]any
		if err := toml.Unmarshal([]byte("x = "+q), &v); err != nil {
			t.Errorf("Quote(%q) = %s is not valid TOML: %v", s, q, err)
		}
	}
}

// TestFuncsOsEnvRoundTrip renders `x = {{ os_env "V" }}` and decodes it back.
func TestFuncsOsEnvRoundTrip(t *testing.T) {
	for _, tt := range trickyStrings {
		if strings.ContainsRune(tt.s, 0) {
			continue // environment variables cannot hold NUL
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HAKONIWA_TEST_V", tt.s)
			out, err := Render("t.toml", []byte(`x = {{ os_env "HAKONIWA_TEST_V" }}`+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				X string `toml:"x"`
			}
			if err := toml.Unmarshal(out, &v); err != nil {
				t.Fatalf("decoding %q: %v", out, err)
			}
			if v.X != tt.s {
				t.Errorf("os_env round trip of %q gave %q", tt.s, v.X)
			}

			// The same through the whole loader.
			p, err := Parse("t.toml", []byte(`hostname = {{ os_env "HAKONIWA_TEST_V" }}`+"\n[env]\nV = {{ os_env \"HAKONIWA_TEST_V\" }}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Hostname == nil || *p.Hostname != tt.s {
				t.Errorf("hostname = %v, want %q", p.Hostname, tt.s)
			}
			if got := p.Env["V"]; got != tt.s {
				t.Errorf("env V = %q, want %q", got, tt.s)
			}
		})
	}
}

func TestFuncsOsEnvUnset(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_UNSET", "x")
	os.Unsetenv("HAKONIWA_TEST_UNSET")
	out, err := Render("t.toml", []byte(`x = {{ os_env "HAKONIWA_TEST_UNSET" }}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `x = ""` {
		t.Errorf("got %q, want %q", out, `x = ""`)
	}
}

func TestFuncsNames(t *testing.T) {
	var names []string
	for k := range Funcs() {
		names = append(names, k)
	}
	sort.Strings(names)
	want := []string{"fs_read_to_string", "os_env", "os_homedir"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Funcs() = %v, want %v", names, want)
	}
}

func TestFuncsOsHomedir(t *testing.T) {
	tests := []struct {
		home, suffix, want string
	}{
		{"/home/alice", "/.config", "/home/alice/.config"},
		{"/home/alice", "", "/home/alice"},
		{"/root", "/x y/z", "/root/x y/z"},
		{`/home/we"ird\dir`, `/a"b`, `/home/we"ird\dir/a"b`},
		{"/home/日本", "/🦀\n", "/home/日本/🦀\n"},
	}
	for _, tt := range tests {
		t.Run(tt.home+tt.suffix, func(t *testing.T) {
			t.Setenv("HOME", tt.home)
			p, err := Parse("t.toml", []byte(`hostname = {{ os_homedir `+strings.ReplaceAll(Quote(tt.suffix), `\n`, "\\n")+` }}`))
			if err != nil {
				t.Fatal(err)
			}
			if p.Hostname == nil || *p.Hostname != tt.want {
				t.Errorf("os_homedir %q with HOME=%q = %v, want %q", tt.suffix, tt.home, p.Hostname, tt.want)
			}
		})
	}
}

func TestFuncsOsHomedirNoHome(t *testing.T) {
	t.Setenv("HOME", "")
	_, err := Render("t.toml", []byte(`x = {{ os_homedir "/x" }}`))
	if err == nil {
		t.Fatal("os_homedir with HOME unset succeeded")
	}
	if !strings.Contains(err.Error(), "os_homedir") {
		t.Errorf("error %q does not name os_homedir", err)
	}
}

func TestFuncsReadToString(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range trickyStrings {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "f"+string(rune('a'+i)))
			if err := os.WriteFile(path, []byte(tt.s), 0o644); err != nil {
				t.Fatal(err)
			}
			text := "files = [{ target = \"/etc/x\", contents = {{ fs_read_to_string " + Quote(path) + " }} }]\n"
			p, err := Parse("t.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Files) != 1 || p.Files[0].Target != "/etc/x" {
				t.Fatalf("files = %+v", p.Files)
			}
			if p.Files[0].Contents != tt.s {
				t.Errorf("contents = %q, want %q", p.Files[0].Contents, tt.s)
			}
		})
	}
}

func TestFuncsReadToStringPathWithSpaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `a dir "q"`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hosts")
	if err := os.WriteFile(path, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Render("t.toml", []byte(`x = {{ fs_read_to_string `+Quote(path)+` }}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `x = "127.0.0.1 localhost\n"`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
}

func TestFuncsReadToStringErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-file")
	bad := filepath.Join(dir, "latin1")
	if err := os.WriteFile(bad, []byte("caf\xe9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"missing", missing, []string{missing, "no such file"}},
		{"directory", dir, []string{dir}},
		{"not UTF-8", bad, []string{bad, "not UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "x = {{ fs_read_to_string " + Quote(tt.path) + " }}"
			p, err := Parse("t.toml", []byte(text))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LANGUAGE", `en "GB" \ x`)
	t.Setenv("LC_ALL", "")
	t.Setenv("TERM", "xterm-256color")
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != DefaultName || DefaultName != "KISS-policy.toml" {
		t.Errorf("Name = %q, DefaultName = %q", p.Name, DefaultName)
	}
	wantMounts := []Mount{
		{Source: "/bin", Target: "/bin"},
		{Source: "/lib", Target: "/lib"},
		{Source: "/lib64", Target: "/lib64", Optional: true},
		{Source: "/usr", Target: "/usr"},
		{Source: "/dev/null", Target: "/dev/null", RW: true},
		{Source: "/dev/random", Target: "/dev/random", RW: true},
		{Source: "/dev/urandom", Target: "/dev/urandom", RW: true},
		{Source: "/dev/zero", Target: "/dev/zero", RW: true},
	}
	if !reflect.DeepEqual(p.Mounts, wantMounts) {
		t.Errorf("mounts:\n got %+v\nwant %+v", p.Mounts, wantMounts)
	}
	if got, want := p.Env.Names(), []string{"LANG", "LANGUAGE", "LC_ALL", "TERM"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env names = %v, want %v", got, want)
	}
	wantEnv := Env{"LANG": "C.UTF-8", "LANGUAGE": `en "GB" \ x`, "LC_ALL": "", "TERM": "xterm-256color"}
	if !reflect.DeepEqual(p.Env, wantEnv) {
		t.Errorf("env = %q, want %q", p.Env, wantEnv)
	}
	if p.ShareNet != nil || p.ShareUTS != nil || p.UID != nil || p.GID != nil || p.Hostname != nil ||
		p.Files != nil || p.Seccomp != nil || p.Limits != (Limits{}) {
		t.Errorf("default policy sets more than mounts and env: %+v", p)
	}
}

func TestDefaultText(t *testing.T) {
	a := DefaultText()
	if !strings.Contains(string(a), `{{ os_env "LANG" }}`) {
		t.Errorf("DefaultText is not the template source:\n%s", a)
	}
	a[0] ^= 0xff
	if b := DefaultText(); b[0] == a[0] {
		t.Error("DefaultText returns a shared slice")
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Policy
	}{
		{"empty", "", Policy{}},
		{"comment only", "# nothing\n", Policy{}},
		{"share_net true", "share_net = true", Policy{ShareNet: ptr(true)}},
		{"share_net false", "share_net = false", Policy{ShareNet: ptr(false)}},
		{"share_uts", "share_uts = true", Policy{ShareUTS: ptr(true)}},
		{"uid", "uid = 1000", Policy{UID: ptr(int64(1000))}},
		{"uid 0", "uid = 0", Policy{UID: ptr(int64(0))}},
		{"gid", "gid = 65534", Policy{GID: ptr(int64(65534))}},
		{"hostname", `hostname = "judge"`, Policy{Hostname: ptr("judge")}},
		{"hostname literal", `hostname = 'ju\dge'`, Policy{Hostname: ptr(`ju\dge`)}},
		{"empty hostname", `hostname = ""`, Policy{Hostname: ptr("")}},
		{"bind", `mounts = [{ source = "/usr", target = "/usr" }]`,
			Policy{Mounts: []Mount{{Source: "/usr", Target: "/usr"}}}},
		{"bind elsewhere rw", `mounts = [{ source = "/srv/data", target = "/data", rw = true }]`,
			Policy{Mounts: []Mount{{Source: "/srv/data", Target: "/data", RW: true}}}},
		{"optional bind", `mounts = [{ source = "/lib64", target = "/lib64", optional = true }]`,
			Policy{Mounts: []Mount{{Source: "/lib64", Target: "/lib64", Optional: true}}}},
		{"tmpfs", `mounts = [{ fstype = "tmpfs", target = "/tmp", rw = true }]`,
			Policy{Mounts: []Mount{{Fstype: "tmpfs", Target: "/tmp", RW: true}}}},
		{"explicit bind fstype", `mounts = [{ source = "/a", target = "/b", fstype = "", rw = false, optional = false }]`,
			Policy{Mounts: []Mount{{Source: "/a", Target: "/b"}}}},
		{"array of tables", "[[mounts]]\nsource = \"/a\"\ntarget = \"/a\"\n[[mounts]]\nfstype = \"tmpfs\"\ntarget = \"/t\"\n",
			Policy{Mounts: []Mount{{Source: "/a", Target: "/a"}, {Fstype: "tmpfs", Target: "/t"}}}},
		{"mount order kept", "mounts = [\n{ source = \"/z\", target = \"/z\" },\n{ source = \"/a\", target = \"/a\" },\n{ source = \"/m\", target = \"/z/m\" },\n]",
			Policy{Mounts: []Mount{{Source: "/z", Target: "/z"}, {Source: "/a", Target: "/a"}, {Source: "/m", Target: "/z/m"}}}},
		{"empty mounts", "mounts = []", Policy{Mounts: []Mount{}}},
		{"files", `files = [{ target = "/etc/hosts", contents = "127.0.0.1 localhost\n" }, { target = "/e", contents = "" }]`,
			Policy{Files: []File{{Target: "/etc/hosts", Contents: "127.0.0.1 localhost\n"}, {Target: "/e"}}}},
		{"files multiline", "files = [{ target = \"/x\", contents = \"\"\"\na\nb\"\"\" }]",
			Policy{Files: []File{{Target: "/x", Contents: "a\nb"}}}},
		{"env", "[env]\nLANG = \"C\"\nPATH = \"/usr/bin:/bin\"\nEMPTY = \"\"\n\"lower.dot\" = \"x\"",
			Policy{Env: Env{"LANG": "C", "PATH": "/usr/bin:/bin", "EMPTY": "", "lower.dot": "x"}}},
		{"empty env", "[env]\n", Policy{Env: Env{}}},
		{"limits", "[limits]\nas = 1073741824\ncore = 0\ncpu = 2\nfsize = 1048576\nnofile = 64\nnproc = 16\nstack = 8388608\nwalltime = 5\n",
			Policy{Limits: Limits{
				AS: ptr(uint64(1 << 30)), Core: ptr(uint64(0)), CPU: ptr(uint64(2)), Fsize: ptr(uint64(1 << 20)),
				Nofile: ptr(uint64(64)), Nproc: ptr(uint64(16)), Stack: ptr(uint64(8 << 20)), Walltime: ptr(uint64(5)),
			}}},
		{"one limit", "[limits]\nwalltime = 1", Policy{Limits: Limits{Walltime: ptr(uint64(1))}}},
		{"largest limit", "[limits]\nas = 9223372036854775807", Policy{Limits: Limits{AS: ptr(uint64(9223372036854775807))}}},
		{"dotted limits", "limits.cpu = 3", Policy{Limits: Limits{CPU: ptr(uint64(3))}}},
		{"inline limits", "limits = { nofile = 10, nproc = 2 }", Policy{Limits: Limits{Nofile: ptr(uint64(10)), Nproc: ptr(uint64(2))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("t.toml", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = "t.toml"
			// An empty table or array means the same as none.
			for _, q := range []*Policy{p, &tt.want} {
				if len(q.Env) == 0 {
					q.Env = nil
				}
				if len(q.Mounts) == 0 {
					q.Mounts = nil
				}
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.text, dump(*p), dump(tt.want))
			}
		})
	}
}

// dump shows a policy with its pointers followed.
func dump(p Policy) string {
	b, err := toml.Marshal(p)
	if err != nil {
		return fmt.Sprintf("%+v", p)
	}
	return fmt.Sprintf("name %q\n%s", p.Name, b)
}

func TestParseEverything(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_LANG", "fr_FR.UTF-8")
	t.Setenv("HOME", "/home/judge")
	text := `# a policy using every key of the 0.5 format
share_net = true
share_uts = false
uid = 0
gid = 100
hostname  = "judge"
mounts = [
  { source = "/usr", target = "/usr" },
  { source = "/lib64", target = "/lib64", optional = true },
  { fstype = "tmpfs", target = "/tmp", rw = true },
  { source = {{ os_homedir "/work" }}, target = "/work", rw = true },
]
files = [{ target = "/etc/motd", contents = "hello\n" }]

[env]
LANG = {{ os_env "HAKONIWA_TEST_LANG" }}
HOME = {{ os_homedir "" }}

[limits]
as = 536870912
core = 0
cpu = 2
fsize = 1024
nofile = 32
nproc = 8
stack = 65536
walltime = 5
`
	p, err := Parse("every.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		Name:     "every.toml",
		ShareNet: ptr(true),
		ShareUTS: ptr(false),
		UID:      ptr(int64(0)),
		GID:      ptr(int64(100)),
		Hostname: ptr("judge"),
		Mounts: []Mount{
			{Source: "/usr", Target: "/usr"},
			{Source: "/lib64", Target: "/lib64", Optional: true},
			{Fstype: "tmpfs", Target: "/tmp", RW: true},
			{Source: "/home/judge/work", Target: "/work", RW: true},
		},
		Files: []File{{Target: "/etc/motd", Contents: "hello\n"}},
		Env:   Env{"LANG": "fr_FR.UTF-8", "HOME": "/home/judge"},
		Limits: Limits{
			AS: ptr(uint64(536870912)), Core: ptr(uint64(0)), CPU: ptr(uint64(2)), Fsize: ptr(uint64(1024)),
			Nofile: ptr(uint64(32)), Nproc: ptr(uint64(8)), Stack: ptr(uint64(65536)), Walltime: ptr(uint64(5)),
		},
	}
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("got  %s\nwant %s", dump(*p), dump(want))
	}
	if got := p.Env.Names(); !reflect.DeepEqual(got, []string{"HOME", "LANG"}) {
		t.Errorf("Env.Names() = %v", got)
	}
}

func TestPolicyEnvNames(t *testing.T) {
	tests := []struct {
		env  Env
		want []string
	}{
		{nil, []string{}},
		{Env{}, []string{}},
		{Env{"b": "", "B": "", "a": "1", "A_1": "2"}, []string{"A_1", "B", "a", "b"}},
	}
	for _, tt := range tests {
		if got := tt.env.Names(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v.Names() = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestParseErrors checks that each error names what is wrong and where.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // substrings of the error
	}{
		// Unknown keys: file, line:col and the key.
		{"unknown top-level key", "share_net = true\n\nshare_ipc = true\n",
			[]string{`p.toml:3:1: unknown key "share_ipc"`}},
		{"unknown key indented", "hostname = \"h\"\n   bogus = 1\n",
			[]string{`p.toml:2:4: unknown key "bogus"`}},
		{"unknown key in limits", "[limits]\ncpu = 1\nrss = 2\n",
			[]string{`p.toml:3:1: unknown key "limits.rss"`}},
		{"unknown dotted limit", "limits.memory = 1\n",
			[]string{`p.toml:1:1: unknown key "limits.memory"`}},
		{"unknown key in inline mounts entry", "mounts = [\n  { source = \"/a\", target = \"/a\", readonly = true },\n]\n",
			[]string{`p.toml:2:35: unknown key "mounts[0].readonly"`}},
		{"unknown key in the second files entry", "files = [\n  { target = \"/a\", contents = \"\" },\n  { target = \"/b\", mode = 1 },\n]\n",
			[]string{`p.toml:3:20: unknown key "files[1].mode"`}},
		{"unknown top-level key named like an entry key", "source = \"/x\"\nmounts = [{ source = \"/a\", target = \"/a\" }]\n",
			[]string{`p.toml:1:1: unknown key "source"`}},
		{"unknown key in [[mounts]]", "[[mounts]]\nsource = \"/a\"\ntarget = \"/a\"\nmode = \"ro\"\n",
			[]string{`p.toml:4:1: unknown key "mounts.mode"`}},
		{"unknown key in files entry", "files = [{ target = \"/a\", contents = \"\", mode = 1 }]\n",
			[]string{"p.toml:1:42: unknown key", "mode"}},
		{"unknown table", "[namespaces]\nnet = true\n",
			[]string{`p.toml:1:2: unknown key "namespaces"`}},
		{"two unknown keys", "a = 1\nb = 2\n",
			[]string{"p.toml:1:1: unknown key \"a\"", "p.toml:2:1: unknown key \"b\""}},

		// Type errors: file, line:col and the key.
		{"share_net int", "share_net = 1",
			[]string{`p.toml:1:13: key "share_net": `, "integer"}},
		{"share_uts string", "\nshare_uts = \"yes\"",
			[]string{`p.toml:2:13: key "share_uts": `, "string"}},
		{"uid string", `uid = "x"`,
			[]string{`p.toml:1:7: key "uid": `, "string"}},
		{"gid float", "gid = 1.5",
			[]string{`p.toml:1:7: key "gid": `, "float"}},
		{"hostname int", "hostname = 5",
			[]string{`p.toml:1:12: key "hostname": `, "integer"}},
		{"limit negative", "[limits]\ncpu = -1",
			[]string{`p.toml:2:7: key "limits.cpu": `, "negative"}},
		{"limit string", "[limits]\n\nnofile = \"64\"",
			[]string{`p.toml:3:10: key "limits.nofile": `, "string"}},
		{"limit too large", "[limits]\nas = 99999999999999999999",
			[]string{`p.toml:2:6: key "limits.as": `, "too large"}},
		{"env int", "[env]\nA = 1",
			[]string{`p.toml:2:5: key "env.A": `, "integer"}},
		{"mount source int", "mounts = [{ source = 1, target = \"/a\" }]",
			[]string{`p.toml:1:22: key "mounts`, "integer"}},
		{"mount rw string", "mounts = [{ source = \"/a\", target = \"/a\", rw = \"yes\" }]",
			[]string{`p.toml:1:48: key "mounts`, "string"}},
		{"mounts not array", `mounts = "/usr"`,
			[]string{`p.toml:1:10: key "mounts"`}},
		{"files contents int", "files = [{ target = \"/a\", contents = 1 }]",
			[]string{`p.toml:1:38: key "files`, "integer"}},

		// Bad TOML.
		{"duplicate key", "share_net = true\nshare_net = false",
			[]string{`p.toml:2:1: key "share_net": `, "already defined"}},
		{"missing value", "hostname = ",
			[]string{"p.toml:1:"}},
		{"unterminated string", "hostname = \"abc\n",
			[]string{"p.toml:1:"}},

		// Template errors.
		{"unknown function", "x = {{ os_getenv \"A\" }}",
			[]string{"p.toml", `"os_getenv" not defined`}},
		{"unknown function line", "\n\nx = {{ shell \"id\" }}",
			[]string{"p.toml:3", `"shell" not defined`}},
		{"unclosed action", "x = {{ os_env \"A\" ",
			[]string{"p.toml:1", "unclosed action"}},
		{"unexpected end", "{{ if true }}\nshare_net = true\n",
			[]string{"p.toml", "unexpected EOF"}},
		{"wrong arg count", `x = {{ os_env }}`,
			[]string{"p.toml", "os_env"}},
		{"wrong arg type", `x = {{ os_env 1 }}`,
			[]string{"p.toml:1", "expected string"}},
		{"missing data key", `x = {{ .Foo }}`,
			[]string{"p.toml", "Foo"}},

		// [seccomp] is refused.
		{"seccomp", "[seccomp]\nsyscalls = [\"read\", \"write\"]\ndismatch_action = \"kill_process\"\n",
			[]string{"p.toml", "[seccomp]", "not supported"}},
		{"empty seccomp", "[seccomp]\n",
			[]string{"p.toml", "seccomp", "not supported"}},
		{"seccomp inline", "seccomp = { syscalls = [] }\n",
			[]string{"p.toml", "seccomp", "not supported"}},

		// Checks after decoding.
		{"relative mount target", "mounts = [\n{ source = \"/a\", target = \"/a\" },\n{ source = \"/b\", target = \"b\" },\n]",
			[]string{`p.toml: mounts[1].target: "b" is not an absolute path`}},
		{"empty mount target", `mounts = [{ source = "/a" }]`,
			[]string{"p.toml", "mounts[0].target", "absolute"}},
		{"relative tmpfs target", `mounts = [{ fstype = "tmpfs", target = "tmp" }]`,
			[]string{"p.toml", "mounts[0].target", `"tmp"`}},
		{"unknown fstype", "mounts = [\n{ source = \"/a\", target = \"/a\" },\n{ fstype = \"overlay\", target = \"/o\" },\n]",
			[]string{`p.toml: mounts[1].fstype: `, `"overlay"`}},
		{"fstype proc", `mounts = [{ fstype = "proc", target = "/proc" }]`,
			[]string{"p.toml", "mounts[0].fstype", `"proc"`}},
		{"fstype case", `mounts = [{ fstype = "TMPFS", target = "/t" }]`,
			[]string{"p.toml", "mounts[0].fstype", `"TMPFS"`}},
		{"bind without source", `mounts = [{ target = "/a" }]`,
			[]string{"p.toml: mounts[0]: ", "source"}},
		{"relative file target", "files = [\n{ target = \"/a\", contents = \"\" },\n{ target = \"etc/hosts\", contents = \"x\" },\n]",
			[]string{`p.toml: files[1].target: "etc/hosts" is not an absolute path`}},
		{"empty file target", `files = [{ contents = "x" }]`,
			[]string{"p.toml", "files[0].target"}},
		{"env name with =", "[env]\n\"A=B\" = \"x\"",
			[]string{"p.toml", "env", `"A=B"`}},
		{"empty env name", "[env]\n\"\" = \"x\"",
			[]string{"p.toml", "env", `""`}},
		{"env name with NUL", "[env]\n\"A\\u0000\" = \"x\"",
			[]string{"p.toml", "env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded: %s", tt.text, dump(*p))
			}
			t.Logf("error: %v", err)
			if p != nil {
				t.Errorf("Parse returned a policy with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error\n  %v\ndoes not contain %q", tt.text, err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("hostname = \"h\"\nmounts = [{ source = \"/usr\", target = \"/usr\" }]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{Name: good, Hostname: ptr("h"), Mounts: []Mount{{Source: "/usr", Target: "/usr"}}}
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("Load = %s, want %s", dump(*p), dump(want))
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("hostname = \"h\"\n[limits]\nmemory = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":3:1:") || !strings.Contains(err.Error(), "limits.memory") {
		t.Errorf("Load(bad) error = %v, want %s:3:1: ... limits.memory", err, bad)
	}

	badTmpl := filepath.Join(dir, "tmpl.toml")
	if err := os.WriteFile(badTmpl, []byte("x = {{ nope }}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(badTmpl)
	if err == nil || !strings.Contains(err.Error(), badTmpl) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Load(badTmpl) error = %v", err)
	}

	missing := filepath.Join(dir, "missing.toml")
	p, err = Load(missing)
	if err == nil {
		t.Fatalf("Load(missing) = %+v", p)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Load(missing) error %q does not name %s", err, missing)
	}

	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(dir) error = %v", err)
	}
}

func TestRenderPlain(t *testing.T) {
	// Text without actions passes through unchanged, including characters
	// that html/template would escape.
	in := "hostname = \"<a & 'b'>\"\n# {not an action}\n"
	out, err := Render("t.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("Render changed %q into %q", in, out)
	}
}
