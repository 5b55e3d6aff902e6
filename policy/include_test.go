package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// wantIncludeTree is testdata/include/main.toml loaded: main includes
// sub/mid.toml (which includes ../base.toml and leaf.toml) then
// extra.toml.
func wantIncludeTree(files ...string) *Policy {
	return &Policy{
		Files:  files,
		Format: Format1,
		// Lists: the includes' entries first, in the order listed, depth
		// first.
		Mounts:     []Mount{{Source: "/base"}, {Source: "/leaf"}, {Source: "/mid"}, {Source: "/main"}},
		Envs:       []Env{{Name: "BASE"}, {Name: "EXTRA"}},
		Filesystem: &Filesystem{Dirs: []Dir{{Destination: "/base"}, {Destination: "/extra"}}},
		// Scalars: the including file wins over its includes.
		Hostname: ptr("main"),
		// A table that only an include sets comes through.
		Network: &Network{Mode: "loopback"},
		// Between two includes, the later one wins, as a whole table:
		// extra's command has no cwd, and leaf's cwd is not kept.
		Command: &Command{Cmdline: []string{"/extra"}},
	}
}

func TestIncludeTree(t *testing.T) {
	p, err := Load("testdata/include/main.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := wantIncludeTree("testdata/include/main.toml", "testdata/include/sub/mid.toml",
		"testdata/include/base.toml", "testdata/include/sub/leaf.toml", "testdata/include/extra.toml")
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}

	// The includes are relative to the including file, not to the current
	// directory.
	abs, err := filepath.Abs("testdata/include/main.toml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	p, err = Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(abs)
	want = wantIncludeTree(abs, filepath.Join(dir, "sub/mid.toml"), filepath.Join(dir, "base.toml"),
		filepath.Join(dir, "sub/leaf.toml"), filepath.Join(dir, "extra.toml"))
	if !reflect.DeepEqual(p, want) {
		t.Errorf("from another directory:\n got %s\nwant %s", dump(p), dump(want))
	}
}

func TestIncludeTreeFS(t *testing.T) {
	p, err := LoadFS(os.DirFS("testdata/include"), "main.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := wantIncludeTree("main.toml", "sub/mid.toml", "base.toml", "sub/leaf.toml", "extra.toml")
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
}

// TestIncludeMerge checks how each key merges.
func TestIncludeMerge(t *testing.T) {
	uid := os.Getuid()
	dir := writeTree(t, t.TempDir(), map[string]string{
		"a.toml": `namespaces = [{ type = "ipc" }]
mounts = [{ source = "/a" }]
envs = [{ name = "A" }]
limits = [{ type = "cpu", value = 1 }]
hostname = "a"
network = { mode = "none" }
seccomp = { path = "unconfined" }
command = { cmdline = ["/a"], cwd = "/a" }
[filesystem]
files = [{ destination = "/fa", contents = "a" }]
symlinks = [{ original = "x", link = "/la" }]
[landlock]
resources = [{ type = "fs", unrestrict = true }]
`,
		"b.toml": fmt.Sprintf(`namespaces = [{ type = "ipc", share = true }]
mounts = [{ source = "/b" }]
uidmaps = [{ container_id = 0, host_id = %d }]
limits = [{ type = "cpu", value = 2 }]
hostname = "b"
[filesystem]
files = [{ destination = "/fb", contents = "b" }]
dirs = [{ destination = "/db" }]
[landlock]
resources = [{ type = "tcp.bind", unrestrict = true }]
`, uid),
		"empty.toml": "",
		"main.toml": `"@include" = ["a.toml", "empty.toml", "b.toml"]
mounts = [{ source = "/main" }]
gidmaps = [{ container_id = 7 }]
limits = [{ type = "cpu", value = 3 }]
[filesystem]
symlinks = [{ original = "y", link = "/lmain" }]
`,
	})
	main := filepath.Join(dir, "main.toml")
	p, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Files:      []string{main, filepath.Join(dir, "a.toml"), filepath.Join(dir, "empty.toml"), filepath.Join(dir, "b.toml")},
		Format:     Format1,
		Namespaces: []Namespace{{"ipc", false}, {"ipc", true}},
		Mounts:     []Mount{{Source: "/a"}, {Source: "/b"}, {Source: "/main"}},
		Envs:       []Env{{Name: "A"}},
		UIDMaps:    []IDMap{{ContainerID: 0, HostID: ptr(uint32(uid))}},
		GIDMaps:    []IDMap{{ContainerID: 7}},
		Limits:     []Limit{{"cpu", 1}, {"cpu", 2}, {"cpu", 3}},
		Hostname:   ptr("b"), // the later include wins
		Network:    &Network{Mode: "none"},
		Seccomp:    &Seccomp{Path: "unconfined"},
		Command:    &Command{Cmdline: []string{"/a"}, Cwd: "/a"},
		Filesystem: &Filesystem{
			Files:    []File{{"/fa", "a"}, {"/fb", "b"}},
			Dirs:     []Dir{{Destination: "/db"}},
			Symlinks: []Symlink{{"x", "/la"}, {"y", "/lmain"}},
		},
		Landlock: &Landlock{Resources: []LandlockResource{{"fs", true}, {"tcp.bind", true}}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	if got := p.Shares()["ipc"]; !got {
		t.Errorf("Shares()[ipc] = false; the last entry, from b.toml, shares it")
	}
}

// TestIncludeMergedChecks checks the rules that apply to the merged
// policy, with keys from several files: the error is placed in the last
// file that sets the key, the one whose value won.
func TestIncludeMergedChecks(t *testing.T) {
	tests := []struct {
		inc, main string
		file      string // inc or main
		at        place
		msg       string
	}{
		{"namespaces = [{ type = \"uts\", share = true }]", "\nhostname = \"h\"",
			"main", place{Line: 3, Col: 1, Key: "hostname"}, "the hostname cannot be set with the uts namespace shared"},
		{"hostname = \"h\"", "namespaces = [{ type = \"uts\", share = true }]",
			"inc", place{Line: 1, Col: 1, Key: "hostname"}, "the hostname cannot be set with the uts namespace shared"},
		{"hostname = \"h\"", "hostname = \"main\"\nnamespaces = [{ type = \"uts\", share = true }]",
			"main", place{Line: 2, Col: 1, Key: "hostname"}, "the hostname cannot be set"},
		{"network = { mode = \"host\" }", "namespaces = [{ type = \"network\" }]",
			"inc", place{Line: 1, Col: 13, Key: "network.mode"}, `"host" conflicts with namespaces { type = "network", share = false }`},
		{"uidmaps = [{ container_id = 0 }]", "\nuidmaps = [{ container_id = 1, count = 0 }]",
			"main", place{Line: 3, Col: 32, Key: "uidmaps[0].count"}, "want a count from 1"},
	}
	for _, tt := range tests {
		dir := writeTree(t, t.TempDir(), map[string]string{
			"inc.toml":  tt.inc + "\n",
			"main.toml": "\"@include\" = [\"inc.toml\"]\n" + tt.main + "\n",
		})
		tt.at.File = filepath.Join(dir, tt.file+".toml")
		_, err := Load(filepath.Join(dir, "main.toml"))
		if err == nil {
			t.Errorf("%q over %q loaded, want %s", tt.main, tt.inc, tt.msg)
			continue
		}
		wantOne(t, entries(t, err), tt.at, tt.msg)
	}
	// The last namespace entry wins: the main file unshares uts again.
	dir := writeTree(t, t.TempDir(), map[string]string{
		"inc.toml":  "namespaces = [{ type = \"uts\", share = true }]\n",
		"main.toml": "\"@include\" = [\"inc.toml\"]\nnamespaces = [{ type = \"uts\" }]\nhostname = \"h\"\n",
	})
	if _, err := Load(filepath.Join(dir, "main.toml")); err != nil {
		t.Error(err)
	}
}

// TestIncludeErrors checks include problems: the error names the file
// and line of the @include entry, or of the problem in the included file.
func TestIncludeErrors(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"self.toml":        "# a comment\n\"@include\" = [\"self.toml\"]\n",
		"a.toml":           "\"@include\" = [\"b.toml\"]\n",
		"b.toml":           "hostname = \"b\"\n\"@include\" = [\n  \"c.toml\",\n  \"a.toml\",\n]\n",
		"c.toml":           "",
		"missing.toml":     "\"@include\" = [\n  \"c.toml\",\n  \"nope.toml\",\n]\n",
		"v05.toml":         "\"@include\" = [\"policy05.toml\"]\n",
		"policy05.toml":    "share_net = true\n",
		"bad.toml":         "\"@include\" = [\"sub/bad.toml\"]\n",
		"sub/bad.toml":     "hostname = \"x\"\n\nmounts = [{ source = \"rel\" }]\n",
		"badtoml.toml":     "\"@include\" = [\"sub/badtoml.toml\"]\n",
		"sub/badtoml.toml": "# x\nhostname = 5\n",
		"badtmpl.toml":     "\"@include\" = [\"sub/badtmpl.toml\"]\n",
		"sub/badtmpl.toml": "hostname = \"x\"\n\nmounts = [{ source = {{ fail \"boom\" }} }]\n",
		"empty.toml":       "\"@include\" = [\"\"]\n",
		"dir.toml":         "\"@include\" = [\"sub\"]\n",
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		file string
		at   place
		msg  string
	}{
		{"self.toml", place{p("self.toml"), 2, 15, "@include[0]"},
			"include cycle: " + p("self.toml") + " -> " + p("self.toml")},
		{"a.toml", place{p("b.toml"), 4, 3, "@include[1]"},
			"include cycle: " + p("a.toml") + " -> " + p("b.toml") + " -> " + p("a.toml")},
		{"missing.toml", place{p("missing.toml"), 3, 3, "@include[1]"},
			p("nope.toml") + ": no such file or directory"},
		{"v05.toml", place{p("v05.toml"), 1, 15, "@include[0]"},
			p("policy05.toml") + " is a 0.5 policy, which cannot be included; write it in the 1.x format"},
		{"bad.toml", place{p("sub/bad.toml"), 3, 13, "mounts[0].source"}, `"rel" is not an absolute path`},
		{"badtoml.toml", place{p("sub/badtoml.toml"), 2, 12, "hostname"}, "want a string, got a TOML integer"},
		{"badtmpl.toml", place{p("sub/badtmpl.toml"), 3, -1, "template"}, "boom"},
		{"empty.toml", place{p("empty.toml"), 1, 15, "@include[0]"}, "empty file name"},
		{"dir.toml", place{p("dir.toml"), 1, 15, "@include[0]"}, p("sub") + ": is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pol, err := Load(p(tt.file))
			if err == nil {
				t.Fatalf("Load succeeded: %s", dump(pol))
			}
			wantOne(t, entries(t, err), tt.at, tt.msg)
		})
	}
	// Includes in the wrong shape are decode errors.
	for text, at := range map[string]place{
		"\"@include\" = \"x.toml\"\n":    {"p.toml", 1, 14, "@include"},
		"\"@include\" = [1]\n":           {"p.toml", 1, 15, "@include[0]"},
		"[command]\n\"@include\" = []\n": {"p.toml", 2, 1, "command.@include"},
	} {
		errs := parseErr(t, "p.toml", text)
		wantOne(t, errs, at)
	}
}

// TestIncludeDepth checks that a chain of 32 files loads and one of 33 is
// an error.
func TestIncludeDepth(t *testing.T) {
	chain := func(n int) string {
		dir := t.TempDir()
		files := map[string]string{}
		for i := 0; i < n-1; i++ {
			files[fmt.Sprintf("f%d.toml", i)] = fmt.Sprintf("\"@include\" = [\"f%d.toml\"]\nmounts = [{ source = \"/%d\" }]\n", i+1, i)
		}
		files[fmt.Sprintf("f%d.toml", n-1)] = "hostname = \"last\"\n"
		writeTree(t, dir, files)
		return dir
	}
	dir := chain(32)
	p, err := Load(filepath.Join(dir, "f0.toml"))
	if err != nil {
		t.Fatalf("32 files: %v", err)
	}
	if len(p.Files) != 32 || len(p.Mounts) != 31 || p.Mounts[0].Source != "/30" || *p.Hostname != "last" {
		t.Errorf("32 files: %s", dump(p))
	}
	dir = chain(33)
	_, err = Load(filepath.Join(dir, "f0.toml"))
	if err == nil {
		t.Fatal("33 nested files loaded")
	}
	wantOne(t, entries(t, err), place{filepath.Join(dir, "f31.toml"), 1, 15, "@include[0]"},
		filepath.Join(dir, "f32.toml")+": includes nest deeper than 32 files")
}

// TestIncludeSameFileTwice: a file that several files include (a
// diamond), not in a cycle, is merged once, where it is first included;
// the same through a symlink to it.
func TestIncludeSameFileTwice(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"x.toml":    "mounts = [{ source = \"/x\" }]\n",
		"y.toml":    "\"@include\" = [\"x.toml\", \"link.toml\"]\nmounts = [{ source = \"/y\" }]\n",
		"main.toml": "\"@include\" = [\"x.toml\", \"y.toml\"]\n",
	})
	if err := os.Symlink("x.toml", filepath.Join(dir, "link.toml")); err != nil {
		t.Fatal(err)
	}
	p, err := Load(filepath.Join(dir, "main.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Mount{{Source: "/x"}, {Source: "/y"}}; !reflect.DeepEqual(p.Mounts, want) {
		t.Errorf("mounts = %+v, want %+v", p.Mounts, want)
	}
	if len(p.Files) != 3 {
		t.Errorf("files %q, want main, x and y once each", p.Files)
	}
}

// TestIncludeAbsolute: on the host, an include may be an absolute path.
func TestIncludeAbsolute(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"abs.toml": "hostname = \"abs\"\n"})
	abs := filepath.Join(dir, "abs.toml")
	p := mustParse(t, "p.toml", "\"@include\" = ["+Quote(abs)+"]\n")
	if *p.Hostname != "abs" || !reflect.DeepEqual(p.Files, []string{"p.toml", abs}) {
		t.Errorf("got %s", dump(p))
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"main.toml":        {Data: []byte("\"@include\" = [\"inc/a.toml\"]\nmounts = [{ source = \"/main\" }]\n")},
		"inc/a.toml":       {Data: []byte("\"@include\" = [\"../b.toml\"]\nmounts = [{ source = \"/a\" }]\n{{ include \"text.toml\" }}\n")},
		"inc/text.toml":    {Data: []byte("hostname = \"text\"\n")},
		"b.toml":           {Data: []byte("mounts = [{ source = \"/b\" }]\n")},
		"abs.toml":         {Data: []byte("\n\"@include\" = [\"/etc/hakoniwa.toml\"]\n")},
		"out.toml":         {Data: []byte("\"@include\" = [\"../x.toml\"]\n")},
		"inc/out.toml":     {Data: []byte("\"@include\" = [\"../../x.toml\"]\n")},
		"dir.toml":         {Data: []byte("hostname = {{ __dir__ }}\n")},
		"inc/dir.toml":     {Data: []byte("hostname = {{ __dir__ }}\n")},
		"textdir.toml":     {Data: []byte("{{ include \"inc/dir.toml\" }}\n")},
		"cycle.toml":       {Data: []byte("\"@include\" = [\"inc/cycle.toml\"]\n")},
		"inc/cycle.toml":   {Data: []byte("\"@include\" = [\"../cycle.toml\"]\n")},
		"missing.toml":     {Data: []byte("\"@include\" = [\"b.toml\", \"nope.toml\"]\n")},
		"textabs.toml":     {Data: []byte("{{ include \"/etc/passwd\" }}\n")},
		"textmissing.toml": {Data: []byte("\n{{ include \"nope.toml\" }}\n")},
		"v05.toml":         {Data: []byte("\"@include\" = [\"inc/v05.toml\"]\n")},
		"inc/v05.toml":     {Data: []byte("uid = 0\n")},
	}
	p, err := LoadFS(fsys, "main.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		// Files are in the order read: a.toml's text include is read as
		// it is rendered, before its @include.
		Files:    []string{"main.toml", "inc/a.toml", "inc/text.toml", "b.toml"},
		Format:   Format1,
		Mounts:   []Mount{{Source: "/b"}, {Source: "/a"}, {Source: "/main"}},
		Hostname: ptr("text"),
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}

	tests := []struct {
		file string
		at   place
		msg  string
	}{
		{"abs.toml", place{"abs.toml", 2, 15, "@include[0]"}, "/etc/hakoniwa.toml: a built-in profile can only include built-in files"},
		{"out.toml", place{"out.toml", 1, 15, "@include[0]"}, "../x.toml: outside the built-in profiles"},
		{"inc/out.toml", place{"inc/out.toml", 1, 15, "@include[0]"}, "../../x.toml: outside the built-in profiles"},
		{"dir.toml", place{"dir.toml", 1, -1, "template"}, "__dir__: dir.toml is built into hakoniwa and has no directory on the host"},
		{"cycle.toml", place{"inc/cycle.toml", 1, 15, "@include[0]"}, "include cycle: cycle.toml -> inc/cycle.toml -> cycle.toml"},
		{"missing.toml", place{"missing.toml", 1, 25, "@include[1]"}, "nope.toml: file does not exist"},
		{"textabs.toml", place{"textabs.toml", 1, -1, "template"}, "include: /etc/passwd: a built-in profile can only include built-in files"},
		{"textmissing.toml", place{"textmissing.toml", 2, -1, "template"}, "include: nope.toml: file does not exist"},
		{"v05.toml", place{"v05.toml", 1, 15, "@include[0]"}, "inc/v05.toml is a 0.5 policy, which cannot be included"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := LoadFS(fsys, tt.file)
			if err == nil {
				t.Fatalf("LoadFS succeeded: %s", dump(p))
			}
			wantOne(t, entries(t, err), tt.at, tt.msg)
		})
	}
	// __dir__ in a file that an FS file includes as text fails too.
	if _, err := LoadFS(fsys, "textdir.toml"); err == nil || !strings.Contains(err.Error(), "inc/dir.toml is built into hakoniwa") {
		t.Errorf("__dir__ through include in an FS: %v", err)
	}

	_, err = LoadFS(fsys, "none.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFS of a missing file: %v, want ErrNotExist", err)
	}
}
