package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestActionInString checks that an action that prints inside a TOML
// string is refused, with its place: what it prints is a quoted value, so
// inside quotes a host value could end the string and add entries.
func TestActionInString(t *testing.T) {
	t.Setenv("HAKONIWA_TEST_SRC", `", type='tmpfs', destination='/t'}, {source='/home', rw=true}, {source='/usr', destination="`)
	tests := []struct {
		name, text string
		line, col  int
	}{
		{"basic string", `mounts = [{ source = "{{ os_env "HAKONIWA_TEST_SRC" }}" }]`, 1, 23},
		{"text after the action", "\nsource = \"x{{ os_env \"A\" }}/y\"", 2, 12},
		{"literal string", `envs = [{ name = 'G', value = '{{ os_env "G" }}' }]`, 1, 32},
		{"multi-line basic", "x = \"\"\"\nline {{ os_env \"A\" }}\n\"\"\"", 2, 6},
		{"multi-line literal", "x = '''\n{{ os_env \"A\" }}'''", 2, 1},
		{"template call", "{{ define \"t\" }}{{ . }}{{ end }}\nx = \"{{ template \"t\" \"v\" }}\"", 2, 6},
		{"in a branch", "{{ if true }}\nx = \"{{ os_env \"A\" }}\"\n{{ end }}", 2, 6},
		{"after an escaped quote", `x = "a\"{{ os_env "A" }}"`, 1, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("q.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("loaded: %s", dump(p))
			}
			wantOne(t, entries(t, err), place{"q.toml", tt.line, tt.col, "template"}, "an action inside a quoted string")
		})
	}
	// Outside strings, in comments, and in actions that only declare, it
	// is fine; a string that holds "{{" in an action's own argument too.
	t.Setenv("A", `a"b`)
	for _, text := range []string{
		`hostname = {{ os_env "A" }}`,
		"# source = \"{{ os_env \"A\" }}\"\nhostname = \"h\"",
		`{{ $x := "y" }}hostname = {{ printf "%s/x" $x }}`,
		`x = "}}" # a closing pair alone is text` + "\nhostname = {{ os_env \"A\" }}",
		"x = \"quoted\"\nhostname = {{ os_env \"A\" }}\ny = 'lit'",
	} {
		if _, err := Parse("q.toml", []byte(text)); err != nil && strings.Contains(err.Error(), "inside a quoted string") {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// TestPathFuncs checks fs_realpath and path_within, with which a profile
// refuses to run from a directory that holds the caller's home.
func TestPathFuncs(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"home/u/f": ""})
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "home/u"), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string
	}{
		{`{{ fs_realpath "` + link + `" }}`, Quote(filepath.Join(dir, "home/u"))},
		{`{{ fs_realpath "` + link + `/." }}`, Quote(filepath.Join(dir, "home/u"))},
		{`{{ path_within "/home/u" "/home" }}`, "true"},
		{`{{ path_within "/home/u" "/home/u/" }}`, "true"},
		{`{{ path_within "/home/u" "/" }}`, "true"},
		{`{{ path_within "/home/user" "/home/u" }}`, "false"},
		{`{{ path_within "/home" "/home/u" }}`, "false"},
		{`{{ path_within "/a/../home/u" "/home" }}`, "true"},
		{`{{ path_within "home/u" "/home" }}`, "false"},
	}
	for _, tt := range tests {
		out, _, err := (&loader{}).render(&file{name: "f.toml", text: []byte(tt.expr), src: hostSource{}}, false)
		if err != nil || string(out) != tt.want {
			t.Errorf("%s = %s, %v; want %s", tt.expr, out, err, tt.want)
		}
	}
	if _, err := Parse("f.toml", []byte(`hostname = {{ fs_realpath "/no/such/hakoniwa" }}`)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("fs_realpath of a missing path: %v", err)
	}
}
