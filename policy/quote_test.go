package policy

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

// trickyStrings are values that must survive Quote and the loader intact.
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
	{"escape lookalikes", `\u0041 \U00000041 \n \t \x41`},
	{"newline", "a\nb"},
	{"crlf", "a\r\nb\r\n"},
	{"tab", "a\tb"},
	{"backspace and form feed", "a\bb\fc"},
	{"NUL", "a\x00b"},
	{"control chars", "\x01\x02\x1b[31m\x1f"},
	{"DEL", "a\x7fb"},
	{"C1 controls", "a\u0085b\u009fc"},
	{"unicode", "héllo wörld — 日本語 Ελληνικά"},
	{"emoji", "🦀👨‍👩‍👧 🏳️‍🌈"},
	{"right to left", "\u202Eabc\u202C שלום مرحبا"},
	{"replacement char", "a\uFFFDb"},
	{"line separators", "a\u2028b\u2029c"},
	{"BOM", "\uFEFFx"},
	{"template braces", "{{ os_env \"X\" }}"},
	{"half braces", "{ { } } }} {{"},
	{"toml syntax", "x = 1\n[limits]\ncpu = 2\n# comment"},
	{"injection", "x\"\nevil = \"1"},
	{"inline table injection", "x\" }, { name = \"EVIL\", value = \"1"},
	{"all together", "\"\\\n\t\x00\x7f☃🎉'`$"},
}

func TestQuoteExact(t *testing.T) {
	tests := []struct{ in, want string }{
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
		{"\u0085", "\"\u0085\""},
		{"日本", `"日本"`},
		{"🦀", `"🦀"`},
		{"\uFFFD", `"\uFFFD"`},
		{"\xff", `"\uFFFD"`},
		{"a\xc3(b", `"a\uFFFD(b"`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteRoundTrip checks that Quote(s) reads back as s, with go-toml
// and through the loader.
func TestQuoteRoundTrip(t *testing.T) {
	for _, tt := range trickyStrings {
		t.Run(tt.name, func(t *testing.T) {
			q := Quote(tt.s)
			if strings.ContainsAny(q, "\n\r") {
				t.Errorf("Quote(%q) = %s spans lines", tt.s, q)
			}
			var v struct {
				X string `toml:"x"`
			}
			if err := toml.Unmarshal([]byte("x = "+q+"\n"), &v); err != nil {
				t.Fatalf("decoding %s: %v", q, err)
			}
			if v.X != tt.s {
				t.Errorf("go-toml read %s as %q, want %q", q, v.X, tt.s)
			}
			// Through the loader, as a printed value: {{ "..." }} of a Go
			// string literal holding s.
			if got := contents(t, "p.toml", "{{ "+strconv.Quote(tt.s)+" }}"); got != tt.s {
				t.Errorf("printed %q read back as %q", tt.s, got)
			}
		})
	}
}

// TestQuoteInvalidUTF8 checks that bytes that are not UTF-8, which TOML
// cannot carry, become U+FFFD and still make valid TOML.
func TestQuoteInvalidUTF8(t *testing.T) {
	for s, want := range map[string]string{
		"\xff":               "\uFFFD",
		"a\xc3(b":            "a\uFFFD(b",
		"\xed\xa0\x80":       "\uFFFD\uFFFD\uFFFD", // a surrogate
		"ok\xf4\x90\x80\x80": "ok\uFFFD\uFFFD\uFFFD\uFFFD",
	} {
		var v map[string]string
		q := Quote(s)
		if err := toml.Unmarshal([]byte("x = "+q), &v); err != nil {
			t.Errorf("Quote(%q) = %s is not valid TOML: %v", s, q, err)
			continue
		}
		if v["x"] != want {
			t.Errorf("Quote(%q) reads back as %q, want %q", s, v["x"], want)
		}
	}
}

// TestHostileEnv puts hostile values in the environment and reads them
// through os_env into keys: each must come back whole, as one value,
// whatever it holds.
func TestHostileEnv(t *testing.T) {
	for _, tt := range trickyStrings {
		if strings.ContainsRune(tt.s, 0) {
			continue // the environment cannot hold NUL
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HAKONIWA_TEST_V", tt.s)
			text := `envs = [
  { name = "V", value = {{ os_env "HAKONIWA_TEST_V" }} },
  { name = "W", value = {{ toml (os_env "HAKONIWA_TEST_V") }} },
]
[command]
cmdline = ["/bin/echo", {{ os_env "HAKONIWA_TEST_V" }}]
`
			p := mustParse(t, "p.toml", text)
			if len(p.Envs) != 2 || p.Envs[0].Name != "V" || p.Envs[1].Name != "W" {
				t.Fatalf("envs injected or lost: %s", dump(p))
			}
			for _, e := range p.Envs {
				if *e.Value != tt.s {
					t.Errorf("env %s = %q, want %q", e.Name, *e.Value, tt.s)
				}
			}
			if len(p.Command.Cmdline) != 2 || p.Command.Cmdline[1] != tt.s {
				t.Errorf("cmdline = %q", p.Command.Cmdline)
			}
			if tt.s != "" && len(tt.s) <= 64 {
				p := mustParse(t, "p.toml", "hostname = {{ os_env \"HAKONIWA_TEST_V\" }}\n")
				if *p.Hostname != tt.s {
					t.Errorf("hostname = %q, want %q", *p.Hostname, tt.s)
				}
			}
		})
	}
}

// TestHostileEnvInvalidUTF8: bytes that are not UTF-8 become U+FFFD, and
// cannot break out of the string either.
func TestHostileEnvInvalidUTF8(t *testing.T) {
	for _, s := range []string{"\xff", "a\xc3\"\nevil = \"1", "\xc0\x22 }, { name = \"EVIL\" }, { name = \"X", "\xe2\x80"} {
		t.Setenv("HAKONIWA_TEST_V", s)
		p := mustParse(t, "p.toml", `envs = [{ name = "V", value = {{ os_env "HAKONIWA_TEST_V" }} }]`)
		if len(p.Envs) != 1 {
			t.Fatalf("%q: envs injected: %s", s, dump(p))
		}
		got := *p.Envs[0].Value
		if want := strings.ToValidUTF8(s, "\uFFFD"); !utf8.ValidString(got) || strings.ReplaceAll(got, "\uFFFD", "") != strings.ReplaceAll(want, "\uFFFD", "") {
			t.Errorf("%q read back as %q, want %q with U+FFFD for the bad bytes", s, got, want)
		}
		if !strings.Contains(got, "\uFFFD") {
			t.Errorf("%q read back as %q, without U+FFFD", s, got)
		}
	}
	os.Unsetenv("HAKONIWA_TEST_V")
}
