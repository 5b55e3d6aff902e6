package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"github.com/pelletier/go-toml/v2"
)

// maxDepth bounds nested includes, beyond the cycle check.
const maxDepth = 32

// Load reads, renders and parses the policy file at path, with its
// includes.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse renders text as a template, then parses it as a policy. name is
// the file's name, for errors and to resolve its includes.
func Parse(name string, text []byte) (*Policy, error) {
	return load(&file{name: name, text: text, src: hostSource{}})
}

// LoadFS loads the policy file name from fsys, such as a set of embedded
// profiles. Its includes are read from fsys too.
func LoadFS(fsys fs.FS, name string) (*Policy, error) {
	src := fsSource{fsys}
	text, err := src.read(name)
	if err != nil {
		return nil, err
	}
	return load(&file{name: name, text: text, src: src})
}

func load(f *file) (*Policy, error) {
	l := &loader{}
	key, err := f.src.key(f.name)
	if err != nil {
		return nil, &Error{File: f.name, Msg: err.Error()}
	}
	f.key = key
	l.stack = []*file{f}
	l.files = []string{f.name}
	l.seen = map[string]bool{key: true}
	p, err := l.load(f)
	if err != nil {
		return nil, err
	}
	if errs := p.checkMerged(l.docs); len(errs) > 0 {
		return nil, errs.sorted()
	}
	p.Files = l.files
	return p, nil
}

// file is one policy file being loaded.
type file struct {
	name string // as given, or joined to the including file's directory
	key  string // its absolute name, for the cycle check
	text []byte
	src  source
}

// source is where policy files are read from.
type source interface {
	read(name string) ([]byte, error)
	// join resolves name relative to the file from.
	join(from, name string) (string, error)
	// key returns a name that is the same for the same file.
	key(name string) (string, error)
	dir(name string) string
	embedded() bool
}

// hostSource reads files from the host.
type hostSource struct{}

func (hostSource) read(name string) ([]byte, error) { return os.ReadFile(name) }
func (hostSource) join(from, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty file name")
	}
	if filepath.IsAbs(name) {
		return name, nil
	}
	return filepath.Join(filepath.Dir(from), name), nil
}
func (hostSource) key(name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil // the same file under another name is the same
	}
	return abs, nil
}
func (hostSource) dir(name string) string {
	d, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return filepath.Dir(name)
	}
	return d
}
func (hostSource) embedded() bool { return false }

// fsSource reads files from an fs.FS, such as the embedded profiles.
type fsSource struct{ fsys fs.FS }

func (s fsSource) read(name string) ([]byte, error) { return fs.ReadFile(s.fsys, name) }
func (s fsSource) join(from, name string) (string, error) {
	if path.IsAbs(name) {
		return "", fmt.Errorf("%s: a built-in profile can only include built-in files", name)
	}
	p := path.Join(path.Dir(from), name)
	if !fs.ValidPath(p) {
		return "", fmt.Errorf("%s: outside the built-in profiles", name)
	}
	return p, nil
}
func (fsSource) key(name string) (string, error) { return "embedded:" + name, nil }
func (fsSource) dir(name string) string          { return path.Dir(name) }
func (fsSource) embedded() bool                  { return true }

// loader loads one policy and its includes.
type loader struct {
	stack []*file         // the files being loaded, the including ones first
	files []string        // every file read, in order
	docs  []*doc          // every file loaded, each after its includes
	seen  map[string]bool // the keys of every file read
}

// open reads the file name, relative to from, and puts it on the stack.
// It fails on a cycle, which it shows, and with errSeen when once is set
// and the file was read already.
func (l *loader) open(from *file, name string, once bool) (*file, error) {
	p, err := from.src.join(from.name, name)
	if err != nil {
		return nil, err
	}
	key, err := from.src.key(p)
	if err != nil {
		return nil, err
	}
	for i, f := range l.stack {
		if f.key == key {
			var chain []string
			for _, g := range l.stack[i:] {
				chain = append(chain, g.name)
			}
			return nil, fmt.Errorf("include cycle: %s -> %s", strings.Join(chain, " -> "), p)
		}
	}
	if len(l.stack) >= maxDepth {
		return nil, fmt.Errorf("%s: includes nest deeper than %d files", p, maxDepth)
	}
	if once && l.seen[key] {
		return nil, errSeen
	}
	text, err := from.src.read(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", p, pe.Err)
		}
		return nil, err
	}
	f := &file{name: p, key: key, text: text, src: from.src}
	l.stack = append(l.stack, f)
	l.files = append(l.files, p)
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[key] = true
	return f, nil
}

func (l *loader) pop() { l.stack = l.stack[:len(l.stack)-1] }

// errSeen is what opening a file that was included already returns: each
// file is merged once, however many files include it.
var errSeen = errors.New("included already")

// errIncluded05 is what loading an included 0.5 file returns; the
// including file places the error.
var errIncluded05 = errors.New("a 0.5 policy cannot be included")

// file1 is a 1.x file as written: the policy and its includes.
type file1 struct {
	Include []string `toml:"@include"`
	Policy
}

// load renders, decodes and checks one file, then loads its includes and
// merges them under it.
func (l *loader) load(f *file) (*Policy, error) {
	rendered, _, err := l.render(f, false)
	if err != nil {
		return nil, err
	}
	d := &doc{name: f.name, text: f.text, rendered: rendered}
	// Which line of the file as written each rendered line came from is
	// only needed for an error: it renders the file again, with marks.
	stack := append([]*file(nil), l.stack...)
	d.lines = func() lineMap {
		again := &loader{stack: stack}
		out, lines, err := again.render(f, true)
		if err != nil || !bytes.Equal(out, rendered) {
			return nil // the template did not render the same: no mapping
		}
		return lines
	}
	var raw map[string]any
	if err := toml.Unmarshal(rendered, &raw); err != nil {
		return nil, d.decodeErrors(err)
	}
	format, err := detect(d, raw)
	if err != nil {
		return nil, err
	}
	var schema reflect.Type = reflect.TypeOf(file1{})
	if format == Format05 {
		schema = reflect.TypeOf(v05{})
	}
	var keyErrs ErrorList
	exactKeys(d, "", raw, schema, &keyErrs)
	if len(keyErrs) > 0 {
		return nil, keyErrs.sorted()
	}
	dec := toml.NewDecoder(bytes.NewReader(rendered))
	dec.DisallowUnknownFields()
	if format == Format05 {
		if len(l.stack) > 1 {
			return nil, errIncluded05
		}
		var v v05
		if err := dec.Decode(&v); err != nil {
			return nil, d.decodeErrors(err)
		}
		if errs := v.check(d); len(errs) > 0 {
			return nil, errs.sorted()
		}
		p := v.convert()
		p.Format = Format05
		l.docs = append(l.docs, d)
		return p, nil
	}
	var v file1
	if err := dec.Decode(&v); err != nil {
		return nil, d.decodeErrors(err)
	}
	if errs := v.Policy.check(d); len(errs) > 0 {
		return nil, errs.sorted()
	}
	if s := v.Policy.Seccomp; s != nil && s.Path != "" && !slices.Contains(seccomp.Builtin, s.Path) {
		// A JSON profile: relative to this file, read and checked now.
		if f.src.embedded() {
			return nil, ErrorList{d.errAt("seccomp.path", "a built-in profile can only name a built-in seccomp profile (%s)", strings.Join(seccomp.Builtin, ", "))}
		}
		if !filepath.IsAbs(s.Path) {
			s.Path = filepath.Join(filepath.Dir(f.name), s.Path)
		}
		if _, _, err := seccomp.Load(s.Path); err != nil {
			return nil, ErrorList{d.errAt("seccomp.path", "%v", err)}
		}
	}
	merged := &Policy{}
	for i, name := range v.Include {
		key := fmt.Sprintf("@include[%d]", i)
		inc, err := l.open(f, name, true)
		if err == errSeen {
			continue // merged already, through another file
		}
		if err != nil {
			return nil, ErrorList{d.errAt(key, "%v", err)}
		}
		p, err := l.load(inc)
		l.pop()
		if err == errIncluded05 {
			return nil, ErrorList{d.errAt(key, "%s is a 0.5 policy, which cannot be included; write it in the 1.x format", inc.name)}
		}
		if err != nil {
			return nil, err
		}
		merged = merge(merged, p)
	}
	p := merge(merged, &v.Policy)
	p.Format = Format1
	l.docs = append(l.docs, d)
	return p, nil
}

// merge returns top merged over base: lists are base's entries then top's;
// a scalar or table that top sets replaces base's.
func merge(base, top *Policy) *Policy {
	p := &Policy{
		Namespaces: concat(base.Namespaces, top.Namespaces),
		Mounts:     concat(base.Mounts, top.Mounts),
		Envs:       concat(base.Envs, top.Envs),
		UIDMaps:    concat(base.UIDMaps, top.UIDMaps),
		GIDMaps:    concat(base.GIDMaps, top.GIDMaps),
		Limits:     concat(base.Limits, top.Limits),
		Network:    either(top.Network, base.Network),
		Rootfs:     either(top.Rootfs, base.Rootfs),
		Rootdir:    either(top.Rootdir, base.Rootdir),
		Hostname:   either(top.Hostname, base.Hostname),
		Seccomp:    either(top.Seccomp, base.Seccomp),
		Command:    either(top.Command, base.Command),
	}
	if base.Filesystem != nil || top.Filesystem != nil {
		b, t := orZero(base.Filesystem), orZero(top.Filesystem)
		p.Filesystem = &Filesystem{
			Files:    concat(b.Files, t.Files),
			Dirs:     concat(b.Dirs, t.Dirs),
			Symlinks: concat(b.Symlinks, t.Symlinks),
		}
	}
	if base.Landlock != nil || top.Landlock != nil {
		b, t := orZero(base.Landlock), orZero(top.Landlock)
		p.Landlock = &Landlock{
			Resources: concat(b.Resources, t.Resources),
			FS:        concat(b.FS, t.FS),
			Net:       concat(b.Net, t.Net),
		}
	}
	return p
}

func concat[T any](a, b []T) []T {
	if len(a) == 0 {
		return b
	}
	return append(append([]T(nil), a...), b...)
}

func either[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func orZero[T any](p *T) *T {
	if p == nil {
		return new(T)
	}
	return p
}

// The keys that only one format has.
var (
	keys05 = []string{"share_net", "share_uts", "uid", "gid", "files", "env"}
	keys1  = []string{"@include", "namespaces", "filesystem", "envs", "network", "landlock", "rootfs", "rootdir", "uidmaps", "gidmaps", "command"}
)

// detect tells the format of a file by its keys. Keys that both formats
// have (mounts, limits, seccomp) are told by their shape.
func detect(d *doc, raw map[string]any) (Format, error) {
	var in05, in1 []string
	for _, k := range keys05 {
		if _, ok := raw[k]; ok {
			in05 = append(in05, k)
		}
	}
	for _, k := range keys1 {
		if _, ok := raw[k]; ok {
			in1 = append(in1, k)
		}
	}
	if mounts, ok := raw["mounts"].([]any); ok {
		for i, m := range mounts {
			t, _ := m.(map[string]any)
			for _, k := range []struct {
				name string
				in   *[]string
			}{{"target", &in05}, {"fstype", &in05}, {"destination", &in1}, {"type", &in1}} {
				if _, ok := t[k.name]; ok {
					*k.in = append(*k.in, fmt.Sprintf("mounts[%d].%s", i, k.name))
				}
			}
		}
	}
	switch raw["limits"].(type) {
	case map[string]any:
		in05 = append(in05, "limits")
	case []any:
		in1 = append(in1, "limits")
	}
	if s, ok := raw["seccomp"].(map[string]any); ok {
		for _, k := range []string{"syscalls", "dismatch_action"} {
			if _, ok := s[k]; ok {
				in05 = append(in05, "seccomp."+k)
			}
		}
		if _, ok := s["path"]; ok {
			in1 = append(in1, "seccomp.path")
		}
	}
	switch {
	case len(in05) > 0 && len(in1) > 0:
		first := func(keys []string) string {
			sort.Slice(keys, func(i, j int) bool {
				a, _ := d.lookup(keys[i])
				b, _ := d.lookup(keys[j])
				return a.before(b)
			})
			return keys[0]
		}
		k05, k1 := first(in05), first(in1)
		p1, _ := d.lookup(k1)
		return 0, ErrorList{d.errAt(k05, "a 0.5 policy key, but %s (line %d) is a 1.x config key; a file is written in one format or the other%s",
			k1, d.source(p1.line), hint(k05))}
	case len(in05) > 0:
		return Format05, nil
	}
	return Format1, nil
}
