package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// hostname renders `hostname = ACTION` and returns the hostname.
func hostname(t *testing.T, name, action string) string {
	t.Helper()
	p := mustParse(t, name, "hostname = "+action+"\n")
	if p.Hostname == nil {
		t.Fatalf("%s: no hostname", action)
	}
	return *p.Hostname
}

// contents renders a file's contents from an action, with no limit on
// the value as a hostname has.
func contents(t *testing.T, name, action string) string {
	t.Helper()
	p := mustParse(t, name, "[filesystem]\nfiles = [{ destination = \"/x\", contents = "+action+" }]\n")
	return p.Filesystem.Files[0].Contents
}

// templateErr renders text, wants a template error (key "template") on
// line, and returns its message.
func templateErr(t *testing.T, name, text string, line int) string {
	t.Helper()
	errs := parseErr(t, name, text)
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(errs), ErrorList(errs))
	}
	e := errs[0]
	if e.File != name || e.Line != line || e.Key != "template" {
		t.Errorf("error %q: file %q line %d key %q, want %q line %d key template", e, e.File, e.Line, e.Key, name, line)
	}
	return e.Msg
}

func wantMsg(t *testing.T, msg string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q does not contain %q", msg, s)
		}
	}
}

// TestFuncNames checks the set of template functions, so that one added
// or removed shows here (and in the README).
func TestFuncNames(t *testing.T) {
	l := &loader{}
	var names []string
	for name := range l.funcs(&file{name: "p.toml", src: hostSource{}}) {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{
		"__dir__", "fail", "fs_findup", "fs_glob", "fs_mkdir", "fs_read_link", "fs_read_to_string",
		"fs_realpath", "fs_touch", "fs_xdg_user_dir", "include", "list", "os_cwd", "os_env", "os_homedir",
		"path_exists", "path_is_dir", "path_is_symlink", "path_within", "toml",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("functions %q\nwant %q", names, want)
	}
}

func TestFuncOsEnv(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_SET", "/set")
	t.Setenv("HAKONIWA_TEST_UNSET", "x")
	os.Unsetenv("HAKONIWA_TEST_UNSET")
	if got := hostname(t, "p.toml", `{{ os_env "HAKONIWA_TEST_SET" }}`); got != "/set" {
		t.Errorf("os_env of a set variable = %q", got)
	}
	if got := contents(t, "p.toml", `{{ os_env "HAKONIWA_TEST_UNSET" }}`); got != "" {
		t.Errorf("os_env of an unset variable = %q, want \"\"", got)
	}
	wantMsg(t, templateErr(t, "p.toml", "\nhostname = {{ os_env }}\n", 2), "wrong number of args for os_env")
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ os_env 1 }}\n", 1), "expected string")
}

func TestFuncOsHomedir(t *testing.T) {
	tests := []struct {
		home, args, want string
	}{
		{"/home/alice", "", "/home/alice"},
		{"/home/alice", `"/.config"`, "/home/alice/.config"},
		{"/home/alice", `""`, "/home/alice"},
		{"/root", `"/x y" "/z"`, "/root/x y/z"},
		{`/home/we"ird\dir`, `"/a\"b"`, `/home/we"ird\dir/a"b`},
		{"/home/日本", `"/🦀\n"`, "/home/日本/🦀\n"},
	}
	for _, tt := range tests {
		t.Setenv("HOME", tt.home)
		if got := contents(t, "p.toml", "{{ os_homedir "+tt.args+" }}"); got != tt.want {
			t.Errorf("os_homedir %s with HOME=%q = %q, want %q", tt.args, tt.home, got, tt.want)
		}
	}
	t.Setenv("HOME", "")
	wantMsg(t, templateErr(t, "p.toml", `hostname = {{ os_homedir "/x" }}`, 1), "os_homedir", "$HOME is not defined")
}

func TestFuncOsCwd(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	want, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(t, "p.toml", "{{ os_cwd }}"); got != want {
		t.Errorf("os_cwd = %q, want %q", got, want)
	}
	// Without a current directory, it fails (the file's name is absolute,
	// so that only the function needs it).
	gone := filepath.Join(dir, "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(gone)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, templateErr(t, filepath.Join(dir, "p.toml"), "hostname = {{ os_cwd }}", 1), "os_cwd")
}

func TestFuncFsReadToString(t *testing.T) {
	dir := t.TempDir()
	for i, tt := range trickyStrings {
		path := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(path, []byte(tt.s), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, "p.toml", "{{ fs_read_to_string "+Quote(path)+" }}"); got != tt.s {
			t.Errorf("%s: contents = %q, want %q", tt.name, got, tt.s)
		}
	}
	// A path with quotes and spaces.
	odd := filepath.Join(dir, `a dir "q" \ x`)
	writeTree(t, odd, map[string]string{"hosts": "127.0.0.1 localhost\n"})
	if got := contents(t, "p.toml", "{{ fs_read_to_string "+Quote(filepath.Join(odd, "hosts"))+" }}"); got != "127.0.0.1 localhost\n" {
		t.Errorf("contents = %q", got)
	}

	missing := filepath.Join(dir, "no-such-file")
	latin1 := filepath.Join(dir, "latin1")
	if err := os.WriteFile(latin1, []byte("caf\xe9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		missing: {"fs_read_to_string", missing, "no such file or directory"},
		dir:     {"fs_read_to_string", dir, "is a directory"},
		latin1:  {"fs_read_to_string", latin1 + ": not UTF-8 text"},
	} {
		wantMsg(t, templateErr(t, "p.toml", "\n\nhostname = {{ fs_read_to_string "+Quote(path)+" }}\n", 3), want...)
	}
}

func TestFuncFsFindup(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"a/.marker":     "",
		"a/b/c/d/.keep": "",
		"a/b/here":      "",
	})
	if err := os.Symlink("/nonexistent", filepath.Join(root, "a", "b", "dangling")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "a", "b", "c", "d"))
	wd, _ := os.Getwd()
	base := filepath.Dir(filepath.Dir(filepath.Dir(wd))) // root/a, as Getwd spells it
	tests := map[string]string{
		".marker":                      filepath.Join(base, ".marker"),
		"here":                         filepath.Join(base, "b", "here"),
		".keep":                        filepath.Join(wd, ".keep"),
		"dangling":                     filepath.Join(base, "b", "dangling"), // a link counts, even dangling
		"no-such-name-hakoniwa-f8e2a1": "",
	}
	for name, want := range tests {
		if got := contents(t, "p.toml", "{{ fs_findup "+Quote(name)+" }}"); got != want {
			t.Errorf("fs_findup %q = %q, want %q", name, got, want)
		}
	}
	// In an if, "" is false.
	p := mustParse(t, "p.toml", `hostname = {{ if fs_findup "no-such-name-hakoniwa-f8e2a1" }}"found"{{ else }}"none"{{ end }}`)
	if *p.Hostname != "none" {
		t.Errorf("hostname = %q", *p.Hostname)
	}
}

func TestFuncFsGlob(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"c": "", "a": "", "b": "", "sub/d": "", "x.txt": ""})
	pat := func(p string) string { return Quote(filepath.Join(dir, p)) }
	p := mustParse(t, "p.toml", "[command]\ncmdline = {{ fs_glob "+pat("[a-c]")+" }}\n")
	if want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")}; !reflect.DeepEqual(p.Command.Cmdline, want) {
		t.Errorf("fs_glob = %q, want %q", p.Command.Cmdline, want)
	}
	// range over the raw list.
	p = mustParse(t, "p.toml", "mounts = [\n{{ range fs_glob "+pat("*")+" }}  { source = {{ . }} },\n{{ end }}]\n")
	var got []string
	for _, m := range p.Mounts {
		got = append(got, filepath.Base(m.Source))
	}
	if want := []string{"a", "b", "c", "sub", "x.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("range fs_glob = %q, want %q", got, want)
	}
	// No match is an empty array, not nothing.
	p = mustParse(t, "p.toml", "[command]\ncmdline = {{ fs_glob "+pat("*.none")+" }}\n")
	if p.Command.Cmdline == nil || len(p.Command.Cmdline) != 0 {
		t.Errorf("fs_glob of no match = %#v, want []", p.Command.Cmdline)
	}
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ fs_glob \"/tmp/[\" }}", 1), `fs_glob: bad pattern "/tmp/["`, "syntax error in pattern")
	// A bad pattern is an error even when nothing could match it.
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ fs_glob \"/no-such-dir/[\" }}", 1), "bad pattern")
}

func TestFuncFsMkdir(t *testing.T) {
	dir := t.TempDir()
	nested := filepath.Join(dir, "a", "b", "c")
	p := mustParse(t, "p.toml", "{{ fs_mkdir "+Quote(nested)+" }}hostname = \"h\"\n")
	if *p.Hostname != "h" {
		t.Errorf("fs_mkdir printed something: %s", dump(p))
	}
	for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b"), nested} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm() != 0o700&^umask(t) {
			t.Errorf("%s: mode %v, want a directory with mode 0700", d, st.Mode())
		}
	}
	// Again: it exists, which is fine.
	mustParse(t, "p.toml", "{{ fs_mkdir "+Quote(nested)+" }}")
	// Under a file: an error.
	file := filepath.Join(dir, "file")
	writeTree(t, dir, map[string]string{"file": "x"})
	wantMsg(t, templateErr(t, "p.toml", "{{ fs_mkdir "+Quote(filepath.Join(file, "d"))+" }}", 1), "fs_mkdir", "not a directory")
}

// umask returns the process's umask, which limits the modes of what the
// functions create.
func umask(t *testing.T) os.FileMode {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.Mkdir(probe, 0o777); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ st.Mode().Perm()
}

func TestFuncFsTouch(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "new")
	mustParse(t, "p.toml", "{{ fs_touch "+Quote(f)+" }}\n")
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 0 || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600&^umask(t) {
		t.Errorf("%s: %v size %d, want an empty file with mode 0600", f, st.Mode(), st.Size())
	}
	// An existing file keeps its contents.
	old := filepath.Join(dir, "old")
	writeTree(t, dir, map[string]string{"old": "keep me"})
	p := mustParse(t, "p.toml", "{{ fs_touch "+Quote(old)+" }}hostname = \"h\"")
	if b, _ := os.ReadFile(old); string(b) != "keep me" {
		t.Errorf("fs_touch changed an existing file to %q", b)
	}
	if *p.Hostname != "h" {
		t.Errorf("fs_touch printed something: %s", dump(p))
	}
	wantMsg(t, templateErr(t, "p.toml", "{{ fs_touch "+Quote(filepath.Join(dir, "no", "f"))+" }}", 1), "fs_touch", "no such file or directory")
}

func TestFuncFsReadLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink("../some where/\"x\"", link); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, "p.toml", "{{ fs_read_link "+Quote(link)+" }}"); got != "../some where/\"x\"" {
		t.Errorf("fs_read_link = %q", got)
	}
	wantMsg(t, templateErr(t, "p.toml", "{{ fs_read_link "+Quote(dir)+" }}", 1), "fs_read_link", "invalid argument")
	wantMsg(t, templateErr(t, "p.toml", "{{ fs_read_link "+Quote(filepath.Join(dir, "none"))+" }}", 1), "fs_read_link", "no such file or directory")
}

func TestFuncFsXdgUserDir(t *testing.T) {
	home := t.TempDir()
	conf := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", conf)
	writeTree(t, conf, map[string]string{"user-dirs.dirs": `# This file is written by xdg-user-dirs-update
XDG_DESKTOP_DIR="$HOME/Bureau"
  XDG_DOWNLOAD_DIR="$HOME/Téléchargements"
XDG_MUSIC_DIR="/srv/music"
XDG_VIDEOS_DIR="$HOME"
XDG_TEMPLATES_DIR="relative/dir"
XDG_PUBLICSHARE_DIR=$HOME/unquoted
`})
	tests := map[string]string{
		"DESKTOP":  home + "/Bureau",
		"DOWNLOAD": home + "/Téléchargements",
		"MUSIC":    "/srv/music",
		"VIDEOS":   home,
		"PICTURES": filepath.Join(home, "Pictures"), // not in the file
	}
	for name, want := range tests {
		if got := contents(t, "p.toml", "{{ fs_xdg_user_dir "+Quote(name)+" }}"); got != want {
			t.Errorf("fs_xdg_user_dir %s = %q, want %q", name, got, want)
		}
	}
	wantMsg(t, templateErr(t, "p.toml", `{{ fs_xdg_user_dir "TEMPLATES" }}`, 1), "is not an absolute path or under $HOME")
	wantMsg(t, templateErr(t, "p.toml", `{{ fs_xdg_user_dir "PUBLICSHARE" }}`, 1), "bad line")
	wantMsg(t, templateErr(t, "p.toml", `{{ fs_xdg_user_dir "download" }}`, 1), `unknown XDG user dir "download"`, "DESKTOP, DOCUMENTS, DOWNLOAD, MUSIC")

	// Without the file, the English default under $HOME.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if got := contents(t, "p.toml", `{{ fs_xdg_user_dir "DOWNLOAD" }}`); got != filepath.Join(home, "Downloads") {
		t.Errorf("default DOWNLOAD = %q", got)
	}
	// Without XDG_CONFIG_HOME, $HOME/.config/user-dirs.dirs.
	t.Setenv("XDG_CONFIG_HOME", "")
	writeTree(t, home, map[string]string{".config/user-dirs.dirs": "XDG_DOCUMENTS_DIR=\"$HOME/Docs\"\n"})
	if got := contents(t, "p.toml", `{{ fs_xdg_user_dir "DOCUMENTS" }}`); got != home+"/Docs" {
		t.Errorf("DOCUMENTS from ~/.config = %q", got)
	}
}

func TestFuncPathTests(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"file": "x", "dir/x": ""})
	for _, l := range [][2]string{{"dir", "linkdir"}, {"file", "linkfile"}, {"none", "dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name                 string
		exists, dir, symlink bool
	}{
		{"file", true, false, false},
		{"dir", true, true, false},
		{"linkdir", true, true, true},
		{"linkfile", true, false, true},
		{"dangling", false, false, true},
		{"none", false, false, false},
	}
	for _, tt := range tests {
		path := Quote(filepath.Join(dir, tt.name))
		// Printed, TOML booleans; in an if, the raw booleans.
		text := `namespaces = [
  { type = "ipc", share = {{ path_exists PATH }} },
  { type = "uts", share = {{ path_is_dir PATH }} },
  { type = "cgroup", share = {{ path_is_symlink PATH }} },
]
envs = [{ name = "{{ if path_exists PATH }}e{{ end }}{{ if path_is_dir PATH }}d{{ end }}{{ if path_is_symlink PATH }}l{{ end }}-" }]
`
		p := mustParse(t, "p.toml", strings.ReplaceAll(text, "PATH", path))
		got := []bool{p.Namespaces[0].Share, p.Namespaces[1].Share, p.Namespaces[2].Share}
		if want := []bool{tt.exists, tt.dir, tt.symlink}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: exists, is_dir, is_symlink = %v, want %v", tt.name, got, want)
		}
		flags := ""
		for _, f := range []struct {
			on bool
			c  string
		}{{tt.exists, "e"}, {tt.dir, "d"}, {tt.symlink, "l"}} {
			if f.on {
				flags += f.c
			}
		}
		if got := p.Envs[0].Name; got != flags+"-" {
			t.Errorf("%s: if path_*: %q, want %q", tt.name, got, flags+"-")
		}
	}
	// The argument of a test can be another function's raw value.
	t.Setenv("HAKONIWA_TEST_P", filepath.Join(dir, "dir"))
	p := mustParse(t, "p.toml", `{{ if path_is_dir (os_env "HAKONIWA_TEST_P") }}hostname = "yes"{{ end }}`)
	if p.Hostname == nil || *p.Hostname != "yes" {
		t.Errorf("if path_is_dir (os_env ...): %s", dump(p))
	}
}

func TestFuncDir(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"sub/inc.toml": "hostname = {{ __dir__ }}\n",
	})
	if got := contents(t, filepath.Join(dir, "x.toml"), "{{ __dir__ }}"); got != dir {
		t.Errorf("__dir__ = %q, want %q", got, dir)
	}
	// A relative name is made absolute.
	t.Chdir(dir)
	wd, _ := os.Getwd()
	if got := contents(t, "sub/x.toml", "{{ __dir__ }}"); got != filepath.Join(wd, "sub") {
		t.Errorf("__dir__ of sub/x.toml = %q, want %q", got, filepath.Join(wd, "sub"))
	}
	// In a file included as text, that file's directory.
	p := mustParse(t, filepath.Join(dir, "x.toml"), "{{ include \"sub/inc.toml\" }}")
	if want := filepath.Join(dir, "sub"); *p.Hostname != want {
		t.Errorf("__dir__ in an included file = %q, want %q", *p.Hostname, want)
	}
	// Built in from an FS: an error; see TestLoadFS.
}

func TestFuncToml(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_V", "x\"\nevil = \"1")
	p := mustParse(t, "p.toml", `envs = [{ name = "V", value = {{ toml (os_env "HAKONIWA_TEST_V") }} }]`)
	if len(p.Envs) != 1 || *p.Envs[0].Value != "x\"\nevil = \"1" {
		t.Errorf("toml of a hostile value: %s", dump(p))
	}
	// A list, booleans and integers.
	p = mustParse(t, "p.toml", `command = { cmdline = {{ toml (fs_glob "/no-such-dir-hakoniwa/*") }} }
namespaces = [{ type = "ipc", share = {{ toml true }} }]
limits = [{ type = "cpu", value = {{ toml 42 }} }]
`)
	if len(p.Command.Cmdline) != 0 || !p.Namespaces[0].Share || p.Limits[0].Value != 42 {
		t.Errorf("toml of a list, a bool and an int: %s", dump(p))
	}
	// Its output is raw TOML: printing it does not quote it again.
	if got := contents(t, "p.toml", `{{ toml "a\"b" }}`); got != `a"b` {
		t.Errorf("toml printed = %q", got)
	}
	// toml of TOML text (what include returns) quotes it as a string.
	dir := writeTree(t, t.TempDir(), map[string]string{"inc.toml": "a = \"1\"\n"})
	if got := contents(t, filepath.Join(dir, "p.toml"), `{{ toml (include "inc.toml") }}`); got != "a = \"1\"\n" {
		t.Errorf("toml (include) = %q", got)
	}
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ toml nil }}", 1), "toml: no value to print (nil)")
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ toml 1i }}", 1), "complex128 cannot be written as a TOML value")
}

func TestFuncList(t *testing.T) {
	p := mustParse(t, "p.toml", `command = { cmdline = {{ list "/bin/echo" "a\"b" }} }
limits = [{{ range $i, $t := list "cpu" "nofile" }}{ type = {{ $t }}, value = {{ $i }} },{{ end }}]
envs = [{ name = "E", value = {{ toml (list 1 true "x") | toml }} }]
`)
	want := &Policy{
		Files: []string{"p.toml"}, Format: Format1,
		Command: &Command{Cmdline: []string{"/bin/echo", `a"b`}},
		Limits:  []Limit{{"cpu", 0}, {"nofile", 1}},
		Envs:    []Env{{Name: "E", Value: ptr(`[1, true, "x"]`)}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	// An empty list prints as an empty array; a list of what cannot be
	// printed is an error.
	p = mustParse(t, "p.toml", "command = { cmdline = {{ list }} }")
	if p.Command.Cmdline == nil || len(p.Command.Cmdline) != 0 {
		t.Errorf("cmdline = %#v, want []", p.Command.Cmdline)
	}
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ list nil }}", 1), "no value to print (nil)")
}

// TestPrintedValues checks how each kind of value prints.
func TestPrintedValues(t *testing.T) {
	p := mustParse(t, "p.toml", `namespaces = [{ type = {{ "ipc" }}, share = {{ eq 1 1 }} }]
limits = [{ type = "nofile", value = {{ len "four" }} }, { type = "cpu", value = {{ 9223372036854775807 }} }]
command = { cmdline = {{ fs_glob "/no-such-dir-hakoniwa/*" }} }
`)
	want := &Policy{
		Files: []string{"p.toml"}, Format: Format1,
		Namespaces: []Namespace{{"ipc", true}},
		Limits:     []Limit{{"nofile", 4}, {"cpu", 9223372036854775807}},
		Command:    &Command{Cmdline: []string{}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	// Nothing to print is an error, never an empty value.
	wantMsg(t, templateErr(t, "p.toml", "hostname = {{ . }}", 1), "no value to print (nil)")
	// A float prints as a TOML float (which no key takes).
	errs := parseErr(t, "p.toml", "hostname = {{ 1.5 }}")
	wantOne(t, errs, place{"p.toml", 1, 12, "hostname"}, "want a string, got a TOML float")
}

func TestFuncInclude(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"parts/mounts.toml": "  { source = \"/usr\" },\n  { source = {{ __dir__ }} },\n",
		"parts/self.toml":   "\n{{ include \"self.toml\" }}",
		"parts/a.toml":      "{{ include \"b.toml\" }}",
		"parts/b.toml":      "\n\n{{ include \"a.toml\" }}",
	})
	main := filepath.Join(dir, "main.toml")
	p := mustParse(t, main, "mounts = [\n{{ include \"parts/mounts.toml\" }}]\n")
	want := []Mount{{Source: "/usr"}, {Source: filepath.Join(dir, "parts")}}
	if !reflect.DeepEqual(p.Mounts, want) {
		t.Errorf("mounts = %+v, want %+v", p.Mounts, want)
	}
	if want := []string{main, filepath.Join(dir, "parts/mounts.toml")}; !reflect.DeepEqual(p.Files, want) {
		t.Errorf("Files = %q, want %q", p.Files, want)
	}

	self := filepath.Join(dir, "parts/self.toml")
	_, err := Load(self)
	wantOne(t, entries(t, err), place{self, 2, -1, "template"}, "include: include cycle: "+self+" -> "+self)

	a, b := filepath.Join(dir, "parts/a.toml"), filepath.Join(dir, "parts/b.toml")
	_, err = Load(a)
	wantOne(t, entries(t, err), place{b, 3, -1, "template"}, "include: include cycle: "+a+" -> "+b+" -> "+a)

	msg := templateErr(t, main, "\n{{ include \"none.toml\" }}", 2)
	wantMsg(t, msg, "include: "+filepath.Join(dir, "none.toml")+": no such file or directory")
}

// TestIncludeErrorWrapped: an error in a file included as text comes back
// as the *Error that names the included file and its line.
func TestIncludeErrorWrapped(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{
		"inc.toml":  "hostname = \"x\"\n{{ nope }}\n",
		"main.toml": "{{ include \"inc.toml\" }}\n",
	})
	_, err := Load(filepath.Join(dir, "main.toml"))
	if err == nil {
		t.Fatal("no error")
	}
	want := filepath.Join(dir, "inc.toml") + `:2:1: template: function "nope" not defined`
	if err.Error() != want {
		t.Fatalf("the error is %T %q, want the included file's *Error %q", err, err, want)
	}
}

// TestFuncFail checks fail's message and place.
func TestFuncFail(t *testing.T) {
	msg := templateErr(t, "p.toml", "hostname = \"h\"\n\nmounts = [{ source = {{ fail \"no \\\"build\\\" here\" }} }]\n", 3)
	if msg != `no "build" here` {
		t.Errorf("fail message = %q", msg)
	}
	// In a branch not taken, nothing fails.
	mustParse(t, "p.toml", "{{ if false }}{{ fail \"x\" }}{{ end }}hostname = \"h\"")
	// fail with what another function returns.
	t.Setenv("HAKONIWA_TEST_MSG", "from env")
	if msg := templateErr(t, "p.toml", "{{ fail (printf \"%s!\" (os_env \"HAKONIWA_TEST_MSG\")) }}", 1); msg != "from env!" {
		t.Errorf("fail message = %q", msg)
	}
}

// TestTemplateColumns: the columns of template errors count from 1, like
// every other error's (text/template's count from 0).
func TestTemplateColumns(t *testing.T) {
	errs := parseErr(t, "p.toml", "hostname = {{ fail \"boom\" }}\n")
	// "fail" starts at column 15.
	if got := placeOf(errs[0]); got != (place{"p.toml", 1, 15, "template"}) {
		t.Fatalf("fail at column 15 is reported at %+v", got)
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"unknown function", "x = {{ os_getenv \"A\" }}", 1, `function "os_getenv" not defined`},
		{"unknown function, line 3", "\n\nx = {{ shell \"id\" }}", 3, `function "shell" not defined`},
		{"missing key", "\nhostname = {{ .Foo }}", 2, `no entry for key "Foo"`},
		{"missing nested key", "hostname = {{ .Foo.Bar }}", 1, `"Foo"`},
		{"unclosed action", "x = {{ os_env \"A\" ", 1, "unclosed action"},
		{"unexpected EOF", "{{ if true }}\nhostname = \"h\"\n", 3, "unexpected EOF"},
		{"if without value", "{{ if }}{{ end }}", 1, "missing value for if"},
		{"undefined variable", "hostname = {{ $x }}", 1, "undefined variable"},
		{"wrong argument type", "hostname = {{ path_exists 1 }}", 1, "expected string"},
		{"unknown template", "\n{{ template \"none\" }}", 2, `template "none" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantMsg(t, templateErr(t, "p.toml", tt.text, tt.line), tt.msg)
		})
	}
}

// TestTemplateRawValues checks that if, range and with see the functions'
// raw values, and that only printing actions print TOML.
func TestTemplateRawValues(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"a": "", "b": ""})
	t.Setenv("HAKONIWA_TEST_DIR", dir)
	t.Setenv("HAKONIWA_TEST_EMPTY", "")
	text := `{{ $d := os_env "HAKONIWA_TEST_DIR" }}{{ $none := os_env "HAKONIWA_TEST_EMPTY" }}
{{- if path_exists (os_env "HAKONIWA_TEST_DIR") }}
hostname = "exists"
{{- end }}
mounts = [
{{- range $i, $p := fs_glob (printf "%s/*" $d) }}
  { source = {{ $p }}, rw = {{ eq $i 0 }} },
{{- end }}
]
envs = [
{{- with $none }}
  { name = "NOT" },
{{- else }}
  { name = "EMPTY", value = {{ $none }} },
{{- end }}
{{- with $d }}
  { name = "D", value = {{ . }} },
{{- end }}
]
`
	p := mustParse(t, "p.toml", text)
	want := &Policy{
		Files: []string{"p.toml"}, Format: Format1,
		Hostname: ptr("exists"),
		Mounts:   []Mount{{Source: filepath.Join(dir, "a"), RW: true}, {Source: filepath.Join(dir, "b")}},
		Envs:     []Env{{Name: "EMPTY", Value: ptr("")}, {Name: "D", Value: ptr(dir)}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	// Declarations and assignments print nothing.
	p = mustParse(t, "p.toml", "{{ $x := \"a\" }}{{ $x = \"b\" }}hostname = {{ $x }}\n")
	if *p.Hostname != "b" {
		t.Errorf("hostname = %q", *p.Hostname)
	}
	// define and template, as rootfs.toml does.
	p = mustParse(t, "p.toml", "{{ define \"m\" }}[[mounts]]\nsource = {{ . }}\n{{ end }}{{ template \"m\" \"/a\" }}{{ template \"m\" \"/b\\\"\" }}")
	if want := []Mount{{Source: "/a"}, {Source: "/b\""}}; !reflect.DeepEqual(p.Mounts, want) {
		t.Errorf("mounts = %+v, want %+v", p.Mounts, want)
	}
	// Text outside actions is left alone, even what html/template would
	// escape.
	p = mustParse(t, "p.toml", "hostname = \"<a & 'b'>\" # {not an action}\n")
	if *p.Hostname != "<a & 'b'>" {
		t.Errorf("hostname = %q", *p.Hostname)
	}
}

// TestLineMapping checks that errors after blocks that render to more or
// fewer lines name the line of the file as written.
func TestLineMapping(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"a": "", "b": "", "c": ""})
	glob := Quote(filepath.Join(dir, "*"))
	tests := []struct {
		name string
		text string
		at   place
	}{
		{"after a range that renders 3 times",
			"mounts = [\n{{ range fs_glob " + glob + " }}\n  { source = {{ . }} },\n\n{{ end }}\n]\nbogus = 1\n",
			place{Line: 7, Col: 1, Key: "bogus"}},
		{"after a range that renders nothing",
			"mounts = [\n{{- range fs_glob \"/no-such-dir-hakoniwa/*\" }}\n  { source = {{ . }} },\n{{- end }}\n]\nbogus = 1\n",
			place{Line: 6, Col: 1, Key: "bogus"}},
		{"inside the second pass of a range",
			"mounts = [\n{{ range $i, $p := fs_glob " + glob + " }}\n  { source = {{ $p }}{{ if eq $i 1 }}, bad = 1{{ end }} },\n{{ end }}\n]\n",
			place{Line: 3, Col: -1, Key: "mounts[1].bad"}},
		{"after an if taken",
			"{{ if true }}\n# a\n# b\n{{ else }}\n# c\n{{ end }}\nbogus = 1\n",
			place{Line: 7, Col: 1, Key: "bogus"}},
		{"after an if not taken",
			"{{ if false }}\n# a\n# b\n# c\n{{ end }}\n\nbogus = 1\n",
			place{Line: 7, Col: 1, Key: "bogus"}},
		{"after an if with trim markers",
			"hostname = \"h\"\n{{ if true -}}\n\n\n{{- end }}\n\nbogus = 1\n",
			place{Line: 7, Col: 1, Key: "bogus"}},
		{"in the else branch",
			"{{ if false }}\n# a\n{{ else }}\n# b\nbogus = 1\n{{ end }}\n",
			place{Line: 5, Col: 1, Key: "bogus"}},
		{"after a multi-line comment",
			"{{/* a\nb\nc */}}\nbogus = 1\n",
			place{Line: 4, Col: 1, Key: "bogus"}},
		{"after a multi-line action",
			"hostname = {{ os_env\n  \"HAKONIWA_TEST_NONE\"\n}}\nbogus = 1\n",
			place{Line: 4, Col: 1, Key: "bogus"}},
		{"after a declaration",
			"hostname = \"h\"\n{{ $x := 1 }}\n{{ $y := 2 }}\nbogus = 1\n",
			place{Line: 4, Col: 1, Key: "bogus"}},
		{"after a define",
			"{{ define \"t\" }}\n# 1\n# 2\n{{ end }}\nhostname = \"h\"\n{{ template \"t\" }}\nbogus = 1\n",
			place{Line: 7, Col: 1, Key: "bogus"}},
		{"inside a define",
			"{{ define \"t\" }}\n# 1\nbogus = 1\n{{ end }}\nhostname = \"h\"\n{{ template \"t\" }}\n",
			place{Line: 3, Col: 1, Key: "bogus"}},
		{"a validation error after a range",
			"{{ range fs_glob " + glob + " }}\n# {{ . }}\n{{ end }}\nmounts = [{ source = \"rel\" }]\n",
			place{Line: 4, Col: 13, Key: "mounts[0].source"}},
		{"a type error after an if",
			"{{ if true }}\n\n\n{{ end }}\nhostname = 1\n",
			place{Line: 5, Col: 12, Key: "hostname"}},
		{"a syntax error after a range",
			"{{ range fs_glob " + glob + " }}\n\n{{ end }}\nhostname = \"a\n",
			place{Line: 4, Col: 14}},
		{"the mixing error, after a range",
			"{{ range fs_glob " + glob + " }}\n\n{{ end }}\nnamespaces = []\nshare_net = true\n",
			place{Line: 5, Col: 1, Key: "share_net"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErr(t, "p.toml", tt.text)
			tt.at.File = "p.toml"
			wantOne(t, errs, tt.at)
		})
	}
	// The mixing error names the other key's line as written.
	errs := parseErr(t, "p.toml", "{{ range fs_glob "+glob+" }}\n\n{{ end }}\nnamespaces = []\nshare_net = true\n")
	wantMsg(t, errs[0].Msg, "namespaces (line 4)")
}

// TestIncludeTextLines: every line of a file included as text maps to
// the line of the include action.
func TestIncludeTextLines(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string]string{"inc.toml": "a = 1\nb = 2\n"})
	errs := parseErr(t, filepath.Join(dir, "main.toml"), "{{ include \"inc.toml\" }}\nhostname = \"x\"\n")
	if len(errs) != 2 || errs[0].Line != 1 || errs[0].Key != "a" || errs[1].Key != "b" {
		t.Fatalf("errors %v", ErrorList(errs))
	}
	if errs[1].Line != 1 {
		t.Fatalf("b (from the include on line 1) is reported on line %d, which is `hostname = \"x\"`", errs[1].Line)
	}
}

// TestColumnsAfterAction: a column after a printing action on the same
// line is the file's as written, not the rendered text's.
func TestColumnsAfterAction(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_SRC", "/a")
	text := "mounts = [{ source = {{ os_env \"HAKONIWA_TEST_SRC\" }}, type = \"bad\" }]\n"
	errs := parseErr(t, "p.toml", text)
	want := place{"p.toml", 1, strings.Index(text, "type") + 1, "mounts[0].type"}
	if len(errs) != 1 {
		t.Fatalf("errors %v", ErrorList(errs))
	}
	if got := placeOf(errs[0]); got != want {
		t.Fatalf("error at %+v, want %+v (the column of the rendered line)", got, want)
	}
}
