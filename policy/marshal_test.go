package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// roundTrip writes p as TOML, parses it back, and checks that it is the
// same policy. It returns the TOML.
func roundTrip(t *testing.T, p *Policy) []byte {
	t.Helper()
	text, err := p.TOML()
	if err != nil {
		t.Fatalf("TOML(): %v", err)
	}
	q, err := Parse("roundtrip.toml", text)
	if err != nil {
		t.Fatalf("TOML() does not load back: %v\n%s", err, text)
	}
	if !samePolicy(p, q) {
		t.Fatalf("TOML() loads back to another policy:\n%s\nwas  %s\nnow  %s", text, dump(p), dump(q))
	}
	if q.Format != Format1 {
		t.Errorf("TOML() loads back as format %v", q.Format)
	}
	again, err := q.TOML()
	if err != nil || !bytes.Equal(again, text) {
		t.Errorf("TOML() is not stable:\n%s\nthen\n%s", text, again)
	}
	return text
}

// profileNames returns the names of the profiles in ../profiles.
func profileNames(t testing.TB) (dir string, names []string) {
	dir, err := filepath.Abs("../profiles")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no profiles in %s: %v", dir, err)
	}
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return dir, names
}

func TestRoundTripFiles(t *testing.T) {
	for _, name := range []string{"testdata/every1.toml", "testdata/every05.toml", "testdata/include/main.toml"} {
		t.Run(name, func(t *testing.T) {
			p, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, p)
		})
	}
	t.Run("default", func(t *testing.T) {
		t.Setenv("LANG", "fr_FR.UTF-8")
		t.Setenv("TERM", "{{ evil }}\"\n")
		p, err := Default()
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, p)
	})
}

func TestRoundTripProfiles(t *testing.T) {
	dir, names := profileNames(t)
	// build.toml binds the current directory; it refuses / and $HOME.
	t.Chdir(t.TempDir())
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := LoadFS(os.DirFS(dir), name)
			if err != nil {
				t.Fatal(err)
			}
			if p.Format != Format1 || p.Files[0] != name || len(p.Files) < 2 {
				t.Errorf("%s: format %v, files %q", name, p.Format, p.Files)
			}
			roundTrip(t, p)
			// The same profile from the host loads the same.
			q, err := Load(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !samePolicy(p, q) {
				t.Errorf("LoadFS and Load differ:\n%s\n%s", dump(p), dump(q))
			}
		})
	}
}

func TestRoundTripGo(t *testing.T) {
	uid := uint32(os.Getuid())
	var contents []File
	var envs []Env
	var args []string
	for _, tt := range trickyStrings {
		contents = append(contents, File{Destination: "/f/" + strings.ReplaceAll(tt.s, "\x00", ""), Contents: tt.s})
		if !strings.ContainsRune(tt.s, 0) {
			envs = append(envs, Env{Name: "E" + tt.name, Value: ptr(tt.s)})
			args = append(args, tt.s)
		}
	}
	tests := map[string]*Policy{
		"empty": {},
		"empty lists": {
			Mounts: []Mount{}, Namespaces: []Namespace{}, Envs: []Env{},
			Filesystem: &Filesystem{}, Landlock: &Landlock{}, Command: &Command{Cmdline: []string{}},
		},
		"tricky strings": {
			Mounts: []Mount{
				{Source: "/a {{ b }}/\"c\"", Destination: "/d\\e", RW: true, Optional: true},
				{Type: "tmpfs", Destination: "/t\n", Options: "size=1M,mode=1777"},
			},
			Filesystem: &Filesystem{
				Files:    contents,
				Dirs:     []Dir{{"/{{", "1777"}},
				Symlinks: []Symlink{{Original: "{{ fail \"x\" }}", Link: "/l"}},
			},
			Envs:     append(envs, Env{Name: "{{.X}}"}),
			Hostname: ptr("{{ os_env \"HOME\" }}"),
			Command:  &Command{Cmdline: append([]string{"/bin/echo"}, args...), Cwd: "/{{}}"},
		},
		"every table": {
			Namespaces: []Namespace{{"network", false}, {"cgroup", true}},
			Network:    &Network{Mode: "loopback"},
			Landlock:   &Landlock{Resources: []LandlockResource{{"tcp.connect", true}}},
			UIDMaps:    []IDMap{{ContainerID: 0, HostID: ptr(uid), Count: ptr(uint32(1))}},
			GIDMaps:    []IDMap{{ContainerID: 65534}},
			Limits:     []Limit{{"as", math.MaxInt64}, {"core", 0}, {"walltime", 1e9}},
			Seccomp:    &Seccomp{Path: "unconfined"},
			Command:    &Command{Cwd: "/"},
		},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			text := roundTrip(t, p)
			if bytes.Contains(text, []byte("{{")) {
				t.Errorf("TOML() has an action:\n%s", text)
			}
		})
	}
}

// TestTOMLLayout checks the shape of TOML(): keys first, then tables, an
// entry of a list a line.
func TestTOMLLayout(t *testing.T) {
	p := &Policy{
		Mounts:   []Mount{{Source: "/usr"}, {Type: "tmpfs", Destination: "/tmp"}},
		Envs:     []Env{{Name: "A", Value: ptr("")}},
		Hostname: ptr("h"),
		Command:  &Command{Cmdline: []string{"sh"}},
		Network:  &Network{Mode: "none"},
	}
	text, err := p.TOML()
	if err != nil {
		t.Fatal(err)
	}
	want := `mounts = [
  { source = "/usr" },
  { destination = "/tmp", type = "tmpfs" },
]
envs = [
  { name = "A", value = "" },
]
hostname = "h"

[network]
mode = "none"

[command]
cmdline = ["sh"]
`
	if string(text) != want {
		t.Errorf("TOML():\n%s\nwant\n%s", text, want)
	}
	if got, _ := (&Policy{}).TOML(); len(got) != 0 {
		t.Errorf("TOML() of an empty policy = %q", got)
	}
}

// TestTOMLCannotRoundTrip: TOML() refuses a policy that it cannot write
// so that it loads back the same (an integer above TOML's, a string that
// is not UTF-8), rather than writing something else.
func TestTOMLCannotRoundTrip(t *testing.T) {
	for name, p := range map[string]*Policy{
		// TOML integers are signed 64-bit: the file does not load.
		"limit above MaxInt64": {Limits: []Limit{{"as", math.MaxUint64}}},
		// TOML strings are UTF-8: the bytes come back as U+FFFD.
		"path not UTF-8": {Mounts: []Mount{{Source: "/data/caf\xe9"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				return // refused by Validate: fine too
			}
			text, err := p.TOML()
			if err != nil {
				return // refused: fine
			}
			q, err := Parse("roundtrip.toml", text)
			if err != nil || !samePolicy(p, q) {
				t.Fatalf("TOML() = %q, nil, which loads back as %s, %v", text, dump(q), err)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	p, err := Load("testdata/every1.toml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) || !bytes.HasSuffix(b, []byte("}\n")) || !bytes.HasPrefix(b, []byte("{\n  \"")) {
		t.Fatalf("JSON() is not indented JSON with a final newline:\n%s", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"command", "envs", "filesystem", "gidmaps", "hostname", "landlock", "limits", "mounts", "namespaces", "network", "seccomp", "uidmaps"}
	if !reflect.DeepEqual(sortedKeys(m), want) {
		t.Errorf("JSON keys = %q, want %q", sortedKeys(m), want)
	}
	for _, sub := range []struct {
		path string
		want []string
	}{
		{"mounts.1", []string{"destination", "rw", "source"}},
		{"mounts.3", []string{"destination", "options", "type"}},
		{"filesystem", []string{"dirs", "files", "symlinks"}},
		{"envs.1", []string{"name", "value"}},
		{"uidmaps.0", []string{"container_id"}},
		{"command", []string{"cmdline", "cwd"}},
		{"landlock.resources.0", []string{"type", "unrestrict"}},
		{"namespaces.1", []string{"share", "type"}},
	} {
		v := any(m)
		for _, part := range strings.Split(sub.path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[part]
			case []any:
				i := int(part[0] - '0')
				v = x[i]
			}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %v is not an object", sub.path, v)
			continue
		}
		if got := sortedKeys(obj); !reflect.DeepEqual(got, sub.want) {
			t.Errorf("%s: keys %q, want %q", sub.path, got, sub.want)
		}
	}
	// And it reads back into the same policy.
	var q Policy
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !samePolicy(p, &q) {
		t.Errorf("JSON does not read back the same:\n%s\n%s", dump(p), dump(&q))
	}
	if b, _ := (&Policy{Files: []string{"x"}, Format: Format05}).JSON(); string(b) != "{}\n" {
		t.Errorf("JSON() of an empty policy = %q", b)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
