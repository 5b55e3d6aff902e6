package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"text/template/parse"
	"time"
)

// fuzzName is the name the fuzzed text is loaded as.
const fuzzName = "fuzz.toml"

// fuzzHelpers are the files that the fuzzed text can include, in the FS it
// is loaded from.
var fuzzHelpers = map[string]string{
	"inc.toml":      "mounts = [{ source = \"/inc\" }]\nhostname = \"inc\"\nenvs = [{ name = \"INC\" }]\n",
	"v05.toml":      "share_net = true\n",
	"bad.toml":      "hostname = 5\n",
	"broken.toml":   "hostname = \"x\n",
	"sub/up.toml":   "\"@include\" = [\"../inc.toml\"]\nmounts = [{ type = \"tmpfs\", destination = \"/up\" }]\n",
	"sub/tmpl.toml": "{{ if true }}limits = [{ type = \"cpu\", value = {{ len \"abc\" }} }]{{ end }}\n",
	"text.toml":     "  { source = \"/text\" },\n",
}

// FuzzParse loads arbitrary text, from an FS and from the host, and checks
// that the loader never panics, returns a policy or an error, that its
// errors have places, and that what it loads writes back as TOML that
// loads the same.
//
// The template functions reach the host, so texts that could change it
// (fs_mkdir, fs_touch), read from it without bound (fs_read_to_string,
// include or @include from the host), or make the template run without
// bound are skipped: see fuzzSafe. What is left only reads the host's
// file names and environment. (F.Chdir to a temporary directory would be
// tidier, but the fuzzing workers die with it.)
func FuzzParse(f *testing.F) {
	fsys := fstest.MapFS{}
	for name, text := range fuzzHelpers {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	seed := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, pattern := range []string{"testdata/*.toml", "testdata/*/*.toml", "testdata/*/*/*.toml", "../profiles/*.toml", "../profiles/include/*.toml", DefaultName} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seed files %s: %v", pattern, err)
		}
		for _, file := range files {
			seed(file)
		}
	}
	// The profiles' includes, for the profiles as seeds.
	incs, _ := filepath.Glob("../profiles/include/*.toml")
	for _, file := range incs {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		fsys["include/"+filepath.Base(file)] = &fstest.MapFile{Data: b}
	}
	for _, s := range []string{
		"",
		"\"@include\" = [\"inc.toml\", \"sub/up.toml\"]\nhostname = \"main\"\n",
		"\"@include\" = [\"fuzz.toml\"]\n",
		"\"@include\" = [\"v05.toml\"]\n",
		"\"@include\" = [\"bad.toml\", \"broken.toml\"]\n",
		"\"@include\" = [\"sub/tmpl.toml\", \"nope.toml\"]\n",
		"mounts = [\n{{ include \"text.toml\" }}]\n",
		"share_net = true\nnamespaces = [{ type = \"network\" }]\n",
		"mounts = [{ source = \"/a\", target = \"/a\", type = \"tmpfs\" }]\n",
		"[[mounts]]\nsource = \"/a\"\n[[mounts]]\nsource = \"/b\"\nfstyp = \"x\"\n",
		"namespaces = [{ type = \"uts\", share = true }]\nhostname = \"h\"\n",
		"network = { mode = \"host\" }\nnamespaces = [{ type = \"network\" }]\n",
		"uidmaps = [{ container_id = 0 }, { container_id = 1 }]\n",
		"[landlock]\nfs = [{ path = \"/usr\", access = \"r-x\" }]\nnet = [{ port = 0, access = \"x\" }]\n",
		"rootdir = { path = \"rel\" }\nseccomp = { path = \"\" }\n",
		"[env]\n\"A=B\" = \"\\u0000\"\n[limits]\nwalltime = 9999999999\n[seccomp]\nsyscalls = []\n",
		"hostname = {{ os_env \"HOME\" }}\n{{ if path_exists \"/usr\" }}\nbogus = 1\n{{ end }}\n",
		"mounts = [\n{{- range fs_glob \"/etc/host*\" }}\n  { source = {{ . }} },\n{{- end }}\n]\nx = 1\n",
		"{{ $x := toml \"a\\\"b\" }}hostname = {{ $x }}\n{{ fail \"stop\" }}\n",
		"hostname = {{ .Foo }}\n",
		"hostname = {{ nope }}\n",
		"[filesystem]\nfiles = [{ destination = \"/x\", contents = \"{{\\u007B }}\" }]\ndirs = [{ destination = \"/d\", mode = \"0789\" }]\n",
		"command = { cmdline = [\"\", \"a\\u0000\"], cwd = \"x\" }\nlimits = [{ type = \"as\", value = 9223372036854775807 }]\n",
		"envs = [{ name = \"V\", value = {{ os_env \"HAKONIWA_FUZZ\" }} }]\nhostname = {{ __dir__ }}\n",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 || !fuzzSafe(text) {
			t.Skip()
		}
		// An input that runs this long is a hang: crash with its stacks,
		// so that the fuzzer reports it with the input.
		hang := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic(fmt.Sprintf("HANG on %q\n%s", text, buf[:n]))
		})
		defer hang.Stop()
		// From an FS, where includes stay inside it.
		m := fstest.MapFS{fuzzName: &fstest.MapFile{Data: []byte(text)}}
		for k, v := range fsys {
			m[k] = v
		}
		p, err := LoadFS(m, fuzzName)
		checkLoaded(t, text, p, err)

		// From the host, where an include could read anything: only
		// texts that include nothing.
		if strings.Contains(strings.ToLower(text), "include") { // go-toml takes "@Include" too
			return
		}
		q, err2 := Parse(fuzzName, []byte(text))
		checkLoaded(t, text, q, err2)
		// Without includes or __dir__, an FS and the host load the same.
		if strings.Contains(text, "__dir__") {
			return
		}
		switch {
		case (err == nil) != (err2 == nil):
			t.Fatalf("LoadFS and Parse disagree on %q:\n%v\n%v", text, err, err2)
		case err != nil && err.Error() != err2.Error():
			t.Fatalf("LoadFS and Parse errors differ on %q:\n%v\n%v", text, err, err2)
		case err == nil && !samePolicy(p, q):
			t.Fatalf("LoadFS and Parse policies differ on %q:\n%s\n%s", text, dump(p), dump(q))
		}
	})
}

// checkLoaded checks what the loader returned for text.
func checkLoaded(t *testing.T, text string, p *Policy, err error) {
	t.Helper()
	if (p == nil) == (err == nil) {
		t.Fatalf("loading %q returned %v and %v: want exactly one", text, p, err)
	}
	if err != nil {
		checkErrors(t, text, err)
		return
	}
	// What loads writes back as TOML that loads the same.
	out, err := p.TOML()
	if err != nil {
		t.Fatalf("TOML() of %q: %v", text, err)
	}
	q, err := Parse("roundtrip.toml", out)
	if err != nil {
		t.Fatalf("TOML() of %q does not load back: %v\n%s", text, err, out)
	}
	if !samePolicy(p, q) {
		t.Fatalf("TOML() of %q loads back to another policy:\n%s\n%s\n%s", text, out, dump(p), dump(q))
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("a loaded policy does not validate: %v\n%q", err, text)
	}
}

// noPlace are the messages of errors known to have no line: a 0.5 policy
// included is named without a line.
var noPlace = regexp.MustCompile(`^a 0\.5 policy cannot be included`)

func checkErrors(t *testing.T, text string, err error) {
	t.Helper()
	var list ErrorList
	var one *Error
	var errs []*Error
	switch {
	case errors.As(err, &list):
		errs = list
	case errors.As(err, &one):
		errs = []*Error{one}
	default:
		t.Fatalf("loading %q: error %v is a %T, neither an ErrorList nor an *Error", text, err, err)
	}
	if len(errs) == 0 {
		t.Fatalf("loading %q: an empty ErrorList", text)
	}
	for _, e := range errs {
		if e == nil {
			t.Fatalf("loading %q: a nil *Error in %v", text, err)
		}
		if e.File == "" {
			t.Fatalf("loading %q: error %q names no file", text, e)
		}
		if e.Msg == "" && e.Key != "template" { // fail "" has no message
			t.Fatalf("loading %q: error %+v has no message", text, e)
		}
		// Template errors (such as a host function's) may have no line;
		// every problem of the TOML or of the policy has one.
		if e.Key == "template" || noPlace.MatchString(e.Msg) || otherCase(text, e.Key) {
			continue
		}
		if e.Line <= 0 || e.Col <= 0 {
			t.Fatalf("loading %q: error %q has no place: %+v", text, e, placeOf(e))
		}
		if e.Line > strings.Count(text, "\n")+1 && e.File == fuzzName {
			t.Fatalf("loading %q: error %q is past the last line", text, e)
		}
	}
}

// otherCase reports whether the first part of key is in text only in
// another case: go-toml matched it to the schema without regard to case,
// and the key index cannot find it (see TestBugKeysCaseInsensitive).
func otherCase(text, key string) bool {
	first, _, _ := strings.Cut(key, ".")
	first, _, _ = strings.Cut(first, "[")
	return first != "" && !strings.Contains(text, first) && strings.Contains(strings.ToLower(text), strings.ToLower(first))
}

// unsafeFuncs are the functions that the fuzzed text may not call: they
// change the host, read from it without bound, or grow output without
// bound (text/template's escapers).
var unsafeFuncs = map[string]bool{
	"fs_mkdir": true, "fs_touch": true, "fs_read_to_string": true,
	"html": true, "js": true, "urlquery": true, "call": true,
}

// fuzzSafe reports whether text is safe to render: it calls none of
// unsafeFuncs, and its template cannot run or grow without bound (no
// recursion, no nested or large ranges, no assignments, few variable
// references, no deep nesting, no big printf widths or repeated
// arguments, no wide globs). A text that does not parse is safe: the
// loader stops at the parse error.
func fuzzSafe(text string) bool {
	if !strings.Contains(text, "{{") {
		return true
	}
	tree := parse.New(fuzzName)
	tree.Mode = parse.SkipFuncCheck | parse.ParseComments
	trees := map[string]*parse.Tree{}
	if _, err := tree.Parse(text, "{{", "}}", trees); err != nil {
		return true
	}
	w := &safetyWalk{}
	for name, tr := range trees {
		w.main = name == fuzzName
		w.walk(tr.Root, 0, 0)
	}
	return !w.unsafe && w.vars <= 10
}

type safetyWalk struct {
	main   bool // walking the main template, which may call others
	unsafe bool
	vars   int // variable references
}

var bigWidth = regexp.MustCompile(`%[^a-zA-Z%]*[0-9]{3}|%[^a-zA-Z%]*\[`)

func (w *safetyWalk) walk(n parse.Node, ranges, depth int) {
	if w.unsafe || n == nil {
		return
	}
	if depth > 6 {
		w.unsafe = true
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.walk(c, ranges, depth)
		}
	case *parse.ActionNode:
		w.walk(n.Pipe, ranges, depth)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		if n.IsAssign {
			w.unsafe = true
			return
		}
		for _, c := range n.Cmds {
			w.walk(c, ranges, depth+1)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			w.walk(a, ranges, depth)
		}
	case *parse.IdentifierNode:
		if unsafeFuncs[n.Ident] {
			w.unsafe = true
		}
	case *parse.VariableNode:
		w.vars++
	case *parse.ChainNode:
		w.walk(n.Node, ranges, depth)
	case *parse.NumberNode:
		if !n.IsInt || n.Int64 > 4096 || n.Int64 < -4096 || ranges > 0 && n.Int64 > 64 {
			w.unsafe = true
		}
	case *parse.StringNode:
		if bigWidth.MatchString(n.Text) || strings.Count(n.Text, "*")+strings.Count(n.Text, "?")+strings.Count(n.Text, "[") > 1 {
			w.unsafe = true
		}
	case *parse.IfNode:
		w.walk(n.Pipe, ranges, depth)
		w.walk(n.List, ranges, depth)
		w.walk(n.ElseList, ranges, depth)
	case *parse.WithNode:
		w.walk(n.Pipe, ranges, depth)
		w.walk(n.List, ranges, depth)
		w.walk(n.ElseList, ranges, depth)
	case *parse.RangeNode:
		if ranges > 0 {
			w.unsafe = true
			return
		}
		// What a range counts over: a literal up to 64 or the list of
		// fs_glob, not a variable or a length.
		if len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) == 0 {
			w.unsafe = true
			return
		}
		switch a := n.Pipe.Cmds[0].Args[0].(type) {
		case *parse.IdentifierNode:
			w.unsafe = a.Ident != "fs_glob"
		case *parse.NumberNode:
		default:
			w.unsafe = true
		}
		w.walk(n.Pipe, ranges+1, depth)
		w.walk(n.List, ranges+1, depth)
		w.walk(n.ElseList, ranges, depth)
	case *parse.TemplateNode:
		if !w.main || ranges > 0 || n.Name == fuzzName {
			w.unsafe = true
			return
		}
		w.walk(n.Pipe, ranges, depth)
	}
}

// TestFuzzSafe checks the filter of FuzzParse.
func TestFuzzSafe(t *testing.T) {
	for _, text := range []string{
		"hostname = \"h\"",
		"{{ if path_exists \"/usr\" }}x{{ end }}",
		"{{ range fs_glob \"/etc/java-*\" }}{{ . }}{{ end }}",
		"{{ range $i, $p := fs_glob \"/etc/*\" }}{{ $p }}{{ end }}",
		"{{ range 3 }}x{{ end }}",
		"{{ define \"a\" }}x{{ end }}{{ template \"a\" }}{{ template \"a\" }}",
		"{{ printf \"%s/x\" (os_homedir) }}",
		"{{ fs_mkdir", // does not parse: the loader stops there
	} {
		if !fuzzSafe(text) {
			t.Errorf("fuzzSafe(%q) = false", text)
		}
	}
	for _, text := range []string{
		"{{ fs_mkdir \"/x\" }}",
		"{{ fs_touch \"/x\" }}",
		"{{ fs_read_to_string \"/dev/zero\" }}",
		"{{ html (html \"<\") }}",
		"{{ range 100 }}x{{ end }}",
		"{{ range 3 }}{{ range 3 }}x{{ end }}{{ end }}",
		"{{ $n := 5 }}{{ range $n }}x{{ end }}",
		"{{ range len \"xxxx\" }}x{{ end }}",
		"{{ $s := \"a\" }}{{ $s = printf \"%s%s\" $s $s }}",
		"{{ define \"a\" }}{{ template \"a\" }}{{ end }}{{ template \"a\" }}",
		"{{ block \"a\" . }}{{ template \"a\" }}{{ end }}",
		"x{{ template \"fuzz.toml\" }}",
		"{{ printf \"%0999999d\" 1 }}",
		"{{ printf \"%[1]s%[1]s\" \"x\" }}",
		"{{ printf \"%*d\" 999999 1 }}",
		"{{ fs_glob \"/*/*\" }}",
		"{{ toml (toml (toml (toml (toml (toml (toml (toml \"\\\"\"))))))) }}",
		"{{ range (fs_glob \"/x\") }}{{ end }}",
		"{{ range or 1 2 }}{{ end }}",
	} {
		if fuzzSafe(text) {
			t.Errorf("fuzzSafe(%q) = true", text)
		}
	}
}
