// Package policy loads sandbox policies in the hakoniwa 0.5 format: a TOML
// file that is first rendered as a text/template.
//
// A policy looks like this:
//
//	share_net = false
//	hostname  = "judge"
//	mounts = [
//	  { source = "/usr", target = "/usr" },
//	  { source = "/lib64", target = "/lib64", optional = true },
//	  { fstype = "tmpfs", target = "/tmp", rw = true },
//	]
//	files = [{ target = "/etc/hosts", contents = {{ fs_read_to_string "/etc/hosts" }} }]
//	[env]
//	LANG = {{ os_env "LANG" }}
//	[limits]
//	cpu = 2
//	walltime = 5
//
// The template functions return TOML-quoted strings, so their results are
// used as values directly:
//
//   - os_env NAME: the value of the caller's environment variable ("" if unset);
//   - os_homedir SUFFIX: the caller's home directory with SUFFIX appended;
//   - fs_read_to_string PATH: the contents of a file.
//
// Unknown keys, values of the wrong type and unknown template functions are
// errors that name the file, the line and the key.
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

//go:embed KISS-policy.toml
var kissPolicy []byte

// DefaultName is the name of the embedded default policy.
const DefaultName = "KISS-policy.toml"

// Policy is a parsed policy. Pointer fields are nil when the file does not
// set them.
type Policy struct {
	Name string `toml:"-"` // the file it came from, for logs and errors

	ShareNet *bool    `toml:"share_net"`
	ShareUTS *bool    `toml:"share_uts"`
	UID      *int64   `toml:"uid"`
	GID      *int64   `toml:"gid"`
	Hostname *string  `toml:"hostname"`
	Mounts   []Mount  `toml:"mounts"`
	Files    []File   `toml:"files"`
	Env      Env      `toml:"env"`
	Limits   Limits   `toml:"limits"`
	Seccomp  *Seccomp `toml:"seccomp"`
}

// Mount is one entry of mounts.
type Mount struct {
	Source   string `toml:"source"`
	Target   string `toml:"target"`
	Fstype   string `toml:"fstype"` // "" for a bind, or "tmpfs"
	RW       bool   `toml:"rw"`
	Optional bool   `toml:"optional"` // a missing source is skipped, with a log line
}

// File is one entry of files.
type File struct {
	Target   string `toml:"target"`
	Contents string `toml:"contents"`
}

// Env is the [env] table.
type Env map[string]string

// Names returns the variable names, sorted.
func (e Env) Names() []string {
	names := make([]string, 0, len(e))
	for k := range e {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Limits is the [limits] table. Sizes are in bytes, cpu and walltime in
// seconds.
type Limits struct {
	AS       *uint64 `toml:"as"`
	Core     *uint64 `toml:"core"`
	CPU      *uint64 `toml:"cpu"`
	Fsize    *uint64 `toml:"fsize"`
	Nofile   *uint64 `toml:"nofile"`
	Nproc    *uint64 `toml:"nproc"`
	Stack    *uint64 `toml:"stack"`
	Walltime *uint64 `toml:"walltime"`
}

// Seccomp is the [seccomp] table, which this version refuses.
type Seccomp struct {
	Syscalls       []string `toml:"syscalls"`
	DismatchAction string   `toml:"dismatch_action"`
}

// Default returns the embedded KISS policy, rendered for this caller.
func Default() (*Policy, error) {
	return Parse(DefaultName, kissPolicy)
}

// DefaultText returns the source of the embedded KISS policy.
func DefaultText() []byte { return append([]byte(nil), kissPolicy...) }

// Load reads, renders and parses the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data)
}

// Parse renders text as a template, then parses it as a policy. name is used
// in errors.
func Parse(name string, text []byte) (*Policy, error) {
	rendered, err := Render(name, text)
	if err != nil {
		return nil, err
	}
	var p Policy
	dec := toml.NewDecoder(bytes.NewReader(rendered))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, tomlError(name, rendered, err)
	}
	p.Name = name
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &p, nil
}

func (p *Policy) check() error {
	if p.Seccomp != nil {
		return errors.New("[seccomp]: seccomp filters are not supported by this version of hakoniwa yet; remove the section")
	}
	for i, m := range p.Mounts {
		switch m.Fstype {
		case "":
			if m.Source == "" {
				return fmt.Errorf("mounts[%d]: a bind needs a source", i)
			}
		case "tmpfs":
		default:
			return fmt.Errorf("mounts[%d].fstype: unknown fstype %q (want \"\" for a bind, or \"tmpfs\")", i, m.Fstype)
		}
		if !strings.HasPrefix(m.Target, "/") {
			return fmt.Errorf("mounts[%d].target: %q is not an absolute path", i, m.Target)
		}
	}
	for i, f := range p.Files {
		if !strings.HasPrefix(f.Target, "/") {
			return fmt.Errorf("files[%d].target: %q is not an absolute path", i, f.Target)
		}
	}
	for name := range p.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("env: bad variable name %q", name)
		}
	}
	return nil
}

// tomlError turns a go-toml error into "file:line:col: key: message".
func tomlError(name string, doc []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		for _, e := range strict.Errors {
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %q", name, row, col, keyPath(doc, e.Key())))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("%s:%d:%d: key %q: %s", name, row, col, strings.Join(k, "."), msg)
		}
		return fmt.Errorf("%s:%d:%d: %s", name, row, col, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// keyPath names an unknown key fully. go-toml names a key of an inline
// table in an array, such as mounts = [{ readonly = true }], by its last
// part only; this finds the array entry that holds it: "mounts[0].readonly".
func keyPath(doc []byte, key []string) string {
	if len(key) != 1 {
		return strings.Join(key, ".")
	}
	var m map[string]any
	if toml.Unmarshal(doc, &m) != nil {
		return key[0]
	}
	if _, top := m[key[0]]; top {
		return key[0]
	}
	for _, top := range []string{"mounts", "files"} {
		list, _ := m[top].([]any)
		for i, item := range list {
			if t, ok := item.(map[string]any); ok {
				if _, ok := t[key[0]]; ok {
					return fmt.Sprintf("%s[%d].%s", top, i, key[0])
				}
			}
		}
	}
	return key[0]
}

// Render runs text through text/template with the policy functions. A
// missing key or an unknown function is an error.
func Render(name string, text []byte) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(Funcs()).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("policy template: %w", err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, nil); err != nil {
		return nil, fmt.Errorf("policy template: %w", err)
	}
	return out.Bytes(), nil
}

// Funcs returns the template functions of the 0.5 policy format.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"os_env": func(name string) string { return Quote(os.Getenv(name)) },
		"os_homedir": func(suffix string) (string, error) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			return Quote(home + suffix), nil
		},
		"fs_read_to_string": func(path string) (string, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				return "", err
			}
			if !utf8.Valid(data) {
				return "", fmt.Errorf("fs_read_to_string %s: not UTF-8 text", path)
			}
			return Quote(string(data)), nil
		},
	}
}

// Quote returns s as a TOML basic string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
