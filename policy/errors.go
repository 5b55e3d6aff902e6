package policy

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is one problem in a policy file, with its place: the file, the
// line and column in the file as written (before rendering), and the key.
// Fields that are not known are zero.
type Error struct {
	File      string
	Line, Col int
	Key       string // such as mounts[1].type
	Msg       string
}

// Error returns "file:line:col: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a policy, one Error a line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// sorted returns the list ordered by file, line and column.
func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return l
}

// Unwrap lets errors.As find the first *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// doc is one rendered file: its text and how to turn a place in it back
// into a place in the file as written.
type doc struct {
	name     string
	text     []byte // the file as written
	rendered []byte
	lines    func() lineMap // maps the rendered lines back, computed on first use
	lineMap  lineMap
	index    map[string]position // key path -> place, built on first use
	keys     []keyAt             // the same, sorted by place
}

type position struct{ line, col int }

type keyAt struct {
	pos  position
	path string
}

// lineMap maps a line of the rendered text (index) to the line of the
// template it came from. Nil means they are the same.
type lineMap []int

// source returns the line of the file as written that a line of the
// rendered text came from.
func (d *doc) source(line int) int {
	if d.lineMap == nil && d.lines != nil {
		d.lineMap = d.lines()
		d.lines = nil
	}
	return d.lineMap.source(line)
}

// column returns the column in the file as written of a place in the
// rendered text. An action before it on the line printed something else
// than it is written as; the text after the place is then looked for at
// the end of the line as written, which is where it is when no action
// follows it. Otherwise the rendered column is the best there is.
func (d *doc) column(line, col int) int {
	rendered := lineOf(d.rendered, line)
	written := lineOf(d.text, d.source(line))
	if rendered == nil || written == nil || bytes.Equal(rendered, written) || col < 1 || col > len(rendered)+1 {
		return col
	}
	rest := rendered[col-1:]
	if len(rest) > 0 && bytes.HasSuffix(written, rest) {
		return len(written) - len(rest) + 1
	}
	return col
}

// lineOf returns line n (from 1) of text, without its newline, or nil.
func lineOf(text []byte, n int) []byte {
	if n < 1 || text == nil {
		return nil
	}
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(text, '\n')
		if j < 0 {
			return nil
		}
		text = text[j+1:]
	}
	if j := bytes.IndexByte(text, '\n'); j >= 0 {
		text = text[:j]
	}
	return text
}

func (m lineMap) source(line int) int {
	if m == nil || line <= 0 {
		return line
	}
	if line < len(m) {
		return m[line]
	}
	return m[len(m)-1]
}

// errAt returns an Error for key at its place in d, or without a place
// when d does not have the key (for instance, a default).
func (d *doc) errAt(key, format string, args ...any) *Error {
	e := &Error{File: d.name, Key: key, Msg: fmt.Sprintf(format, args...)}
	if p, ok := d.lookup(key); ok {
		e.Line, e.Col = d.source(p.line), d.column(p.line, p.col)
	}
	return e
}

// at returns an Error at a place of the rendered text, naming the key
// found there.
func (d *doc) at(line, col int, msg string) *Error {
	return &Error{File: d.name, Line: d.source(line), Col: d.column(line, col), Key: d.keyAt(line, col), Msg: msg}
}

// lookup finds the place of a key path, or of its nearest parent that the
// file names.
func (d *doc) lookup(key string) (position, bool) {
	d.build()
	for k := key; k != ""; k = parentKey(k) {
		if p, ok := d.index[k]; ok {
			return p, true
		}
	}
	return position{}, false
}

// parentKey returns the key path that holds key: "a.b[1].c" -> "a.b[1]" ->
// "a.b" -> "a" -> "".
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i > 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		return key[:i]
	}
	return ""
}

// keyAt names the key at, or last before, a place of the rendered text.
func (d *doc) keyAt(line, col int) string {
	d.build()
	p := position{line, col}
	i := sort.Search(len(d.keys), func(i int) bool { return !d.keys[i].pos.before(p) && d.keys[i].pos != p })
	if i == 0 {
		return ""
	}
	return d.keys[i-1].path
}

func (p position) before(q position) bool {
	return p.line < q.line || (p.line == q.line && p.col < q.col)
}

// build indexes every key path of the rendered text with its place:
// "mounts[0].source", "filesystem.files[2]", "@include[1]". It walks the
// TOML syntax tree, so it names array entries of [[tables]] and of inline
// arrays alike.
func (d *doc) build() {
	if d.index != nil {
		return
	}
	d.index = map[string]position{}
	starts := []int{0}
	for i, c := range d.rendered {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	pos := func(off int) position {
		line := sort.Search(len(starts), func(i int) bool { return starts[i] > off })
		return position{line, off - starts[line-1] + 1}
	}
	add := func(path string, n *unstable.Node) {
		if _, dup := d.index[path]; dup {
			return
		}
		p := pos(int(n.Raw.Offset))
		d.index[path] = p
		d.keys = append(d.keys, keyAt{p, path})
	}
	arrays := map[string]int{} // [[array]] path -> entries so far
	// resolve turns the parts of a key into a path, entering the last
	// entry of each array of tables it crosses.
	resolve := func(prefix string, key unstable.Iterator) (string, *unstable.Node) {
		path := prefix
		var last *unstable.Node
		for key.Next() {
			last = key.Node()
			path = joinKey(path, keyPart(string(last.Data)))
			if !key.IsLast() {
				add(path, last) // a table that a dotted key makes
			}
			if n, ok := arrays[path]; ok && !key.IsLast() {
				path = fmt.Sprintf("%s[%d]", path, n-1)
			}
		}
		return path, last
	}
	var value func(path string, v *unstable.Node)
	value = func(path string, v *unstable.Node) {
		switch v.Kind {
		case unstable.InlineTable:
			for it := v.Children(); it.Next(); {
				kv := it.Node()
				p, k := resolve(path, kv.Key())
				if k != nil {
					add(p, k)
				}
				value(p, kv.Value())
			}
		case unstable.Array:
			i := 0
			for it := v.Children(); it.Next(); {
				e := it.Node()
				if e.Kind == unstable.Comment {
					continue
				}
				p := fmt.Sprintf("%s[%d]", path, i)
				add(p, e)
				value(p, e)
				i++
			}
		}
	}
	var p unstable.Parser
	p.Reset(d.rendered)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			path, k := resolve("", e.Key())
			table = path
			if k != nil {
				add(path, k)
			}
		case unstable.ArrayTable:
			path, k := resolve("", e.Key())
			n := arrays[path]
			arrays[path] = n + 1
			table = fmt.Sprintf("%s[%d]", path, n)
			if k != nil {
				add(path, k)
				add(table, k)
			}
		case unstable.KeyValue:
			path, k := resolve(table, e.Key())
			if k != nil {
				add(path, k)
			}
			value(path, e.Value())
		}
	}
	sort.SliceStable(d.keys, func(i, j int) bool { return d.keys[i].pos.before(d.keys[j].pos) })
}

// keyPart writes one part of a key path: as it is when it is a bare TOML
// key (or "@include"), else quoted.
func keyPart(k string) string {
	bare := k != ""
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '@') {
			bare = false
		}
	}
	if bare {
		return k
	}
	return Quote(k)
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// decodeErrors turns what go-toml returned into Errors with places and
// full key paths.
func (d *doc) decodeErrors(err error) ErrorList {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var list ErrorList
		for _, e := range strict.Errors {
			line, col := e.Position()
			key := d.keyAt(line, col)
			if key == "" {
				key = strings.Join(e.Key(), ".")
			}
			list = append(list, &Error{File: d.name, Line: d.source(line), Col: d.column(line, col), Key: key, Msg: "unknown key" + hint(key)})
		}
		return list
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return ErrorList{d.at(line, col, typeMessage(msg))}
	}
	return ErrorList{{File: d.name, Msg: err.Error()}}
}

// typeMessage shortens go-toml's message about a value of the wrong type,
// which names our Go types, to the TOML types.
func typeMessage(msg string) string {
	// "cannot decode TOML string into struct field policy.Mount.RW of type bool"
	from, rest, ok := strings.Cut(strings.TrimPrefix(msg, "cannot decode TOML "), " into ")
	if !ok || !strings.HasPrefix(msg, "cannot decode TOML ") {
		return msg
	}
	want := rest
	if i := strings.LastIndex(rest, " of type "); i >= 0 {
		want = rest[i+len(" of type "):]
	} else if i := strings.LastIndex(rest, "a Go type "); i >= 0 {
		want = rest[i+len("a Go type "):]
	}
	return fmt.Sprintf("want %s, got a TOML %s", tomlType(want), from)
}

func tomlType(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "policy."):
		return "a table"
	}
	return goType
}

// renamedTop are top-level keys of the other format, or of older 1.x
// versions, with what to write instead.
var renamedTop = map[string]string{
	"uidmap":     `uidmaps = [{ container_id = N }]`,
	"gidmap":     `gidmaps = [{ container_id = N }]`,
	"share_net":  `namespaces = [{ type = "network", share = true }] in a 1.x file`,
	"share_uts":  `namespaces = [{ type = "uts", share = true }] in a 1.x file`,
	"uid":        `uidmaps = [{ container_id = N }] in a 1.x file`,
	"gid":        `gidmaps = [{ container_id = N }] in a 1.x file`,
	"files":      `filesystem.files = [{ destination = ..., contents = ... }] in a 1.x file`,
	"env":        `envs = [{ name = ..., value = ... }] in a 1.x file`,
	"namespaces": `share_net or share_uts in a 0.5 file`,
	"envs":       `[env] NAME = "value" in a 0.5 file`,
	"filesystem": `files = [{ target = ..., contents = ... }] in a 0.5 file`,
	"limits":     `limits = [{ type = ..., value = ... }] in a 1.x file`,
}

// renamedMount are the same for the keys of a mount.
var renamedMount = map[string]string{
	"target":      `destination in a 1.x file`,
	"destination": `target in a 0.5 file`,
	"fstype":      `type in a 1.x file`,
	"type":        `fstype in a 0.5 file`,
	"readonly":    `rw = false (the default)`,
	"read_only":   `rw = false (the default)`,
}

// Compiled on first use: every run of hakoniwa would pay for it at start-up.
var mountKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^mounts\[\d+\]\.([^.]+)$`) })

// hint suggests what to write instead of an unknown key.
func hint(key string) string {
	if s, ok := renamedTop[key]; ok {
		return "; write " + s
	}
	if m := mountKey().FindStringSubmatch(key); m != nil {
		if s, ok := renamedMount[m[1]]; ok {
			return "; write " + s
		}
	}
	return ""
}

// exactKeys finds the keys of raw, a decoded TOML document, that t's
// schema does not have, with their exact case: go-toml matches keys to
// fields without regard to case, but TOML keys are case-sensitive. It also
// finds a table where the schema wants an array of tables ([mounts] for
// [[mounts]]), which go-toml would take as a list of one.
func exactKeys(d *doc, path string, raw any, t reflect.Type, errs *ErrorList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return // go-toml reports the type
		}
		fields := fieldsOf(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := joinKey(path, keyPart(k))
			ft, ok := fields[k]
			if !ok {
				msg := "unknown key" + hint(p)
				for name := range fields {
					if strings.EqualFold(name, k) {
						msg = fmt.Sprintf("unknown key; keys are case-sensitive: write %s", name)
					}
				}
				*errs = append(*errs, d.errAt(p, "%s", msg))
				continue
			}
			exactKeys(d, p, m[k], ft, errs)
		}
	case reflect.Slice:
		switch v := raw.(type) {
		case []any:
			for i, e := range v {
				exactKeys(d, index(path, i), e, t.Elem(), errs)
			}
		case map[string]any:
			if t.Elem().Kind() == reflect.Struct {
				*errs = append(*errs, d.errAt(path, "want an array of tables, got a table; write [[%s]] or %s = [{ ... }]", path, path))
			}
		}
	}
}

// fieldCache holds fieldsOf's results, by type.
var fieldCache sync.Map

// fieldsOf returns the TOML keys of a struct's fields and their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	schemaFields(t, fields)
	fieldCache.Store(t, fields)
	return fields
}

// schemaFields collects the TOML keys of a struct's fields, those of
// embedded structs included.
func schemaFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			schemaFields(f.Type, fields)
			continue
		}
		if k, ok := tomlKey(f); ok {
			fields[k] = f.Type
		}
	}
}
