package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// rawTOML is template output that is already TOML (from toml and include),
// printed as it is.
type rawTOML string

// The template functions that the loader adds to every pipeline.
const (
	valueFunc = "__value" // prints the pipeline's value as TOML
	markFunc  = "__line"  // records which template line the output is at
)

// render runs a file's text through text/template. Every action that
// prints gets the value function appended to its pipeline, so what it
// prints is a TOML value: a string is quoted, whatever it holds. With
// marks, it also returns, for each line of the output, the template line
// it came from.
func (l *loader) render(f *file, marks bool) ([]byte, lineMap, error) {
	text := string(f.text)
	t := template.New(f.name).Option("missingkey=error").Funcs(l.funcs(f))
	var out countingBuffer
	var lines lineMap
	t.Funcs(template.FuncMap{
		valueFunc: tomlValue,
		markFunc: func(line int) rawTOML {
			// Lines that an action wrote (a file included as text) come
			// from the line of the action: the last one marked.
			for len(lines) <= out.lines {
				lines = append(lines, lines[len(lines)-1])
			}
			lines[out.lines] = line
			return ""
		},
	})
	if _, err := t.Parse(text); err != nil {
		return nil, nil, templateError(f.name, err)
	}
	if err := checkQuoting(t, f.name, text); err != nil {
		return nil, nil, err
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			instrument(tt.Tree.Root, text, marks)
		}
	}
	lines = lineMap{0, 1}
	out.lines = 1
	if err := t.Execute(&out, nil); err != nil {
		return nil, nil, templateError(f.name, err)
	}
	// A line after the last mark comes from the last line marked.
	for len(lines) <= out.lines {
		lines = append(lines, lines[len(lines)-1])
	}
	return out.Bytes(), lines, nil
}

// checkQuoting refuses an action that prints inside a TOML string, as in
// `source = "{{ os_env "X" }}/x"`: what it prints is quoted as a value of
// its own, so inside quotes it would end the string, and a host value
// could then add keys or entries.
func checkQuoting(t *template.Template, name, text string) error {
	inside := stringsAt(text)
	var bad *parse.Pos
	var walk func(list *parse.ListNode)
	walk = func(list *parse.ListNode) {
		if list == nil {
			return
		}
		for _, n := range list.Nodes {
			var pos parse.Pos
			switch n := n.(type) {
			case *parse.ActionNode:
				if len(n.Pipe.Decl) > 0 {
					continue
				}
				pos = n.Pos
			case *parse.TemplateNode:
				pos = n.Pos
			case *parse.IfNode:
				walk(n.List)
				walk(n.ElseList)
				continue
			case *parse.RangeNode:
				walk(n.List)
				walk(n.ElseList)
				continue
			case *parse.WithNode:
				walk(n.List)
				walk(n.ElseList)
				continue
			default:
				continue
			}
			// The action starts at the last "{{" before its pipeline.
			start := strings.LastIndex(text[:min(int(pos), len(text))], "{{")
			if start >= 0 && inside[start] && (bad == nil || parse.Pos(start) < *bad) {
				p := parse.Pos(start)
				bad = &p
			}
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	if bad == nil {
		return nil
	}
	start := int(*bad)
	line := 1 + strings.Count(text[:start], "\n")
	col := start - strings.LastIndexByte(text[:start], '\n')
	return &Error{File: name, Line: line, Col: col, Key: "template",
		Msg: "an action inside a quoted string; write it outside the quotes (key = {{ ... }}, or {{ printf \"%s/x\" ... }} to join text): what it prints is quoted for you"}
}

// stringsAt scans text as TOML, stepping over template actions, and
// tells for the start of each action ("{{") whether it is inside a
// string.
func stringsAt(text string) map[int]bool {
	const (
		none = iota
		basic
		literal
		mlBasic
		mlLiteral
		comment
	)
	at := map[int]bool{}
	state := none
	for i := 0; i < len(text); i++ {
		if strings.HasPrefix(text[i:], "{{") {
			at[i] = state != none && state != comment
			end := strings.Index(text[i+2:], "}}")
			if end < 0 {
				break
			}
			i += 2 + end + 1
			continue
		}
		c := text[i]
		switch state {
		case none:
			switch {
			case c == '#':
				state = comment
			case strings.HasPrefix(text[i:], `"""`):
				state, i = mlBasic, i+2
			case c == '"':
				state = basic
			case strings.HasPrefix(text[i:], "'''"):
				state, i = mlLiteral, i+2
			case c == '\'':
				state = literal
			}
		case basic:
			switch c {
			case '\\':
				i++
			case '"', '\n':
				state = none
			}
		case mlBasic:
			if c == '\\' {
				i++
			} else if strings.HasPrefix(text[i:], `"""`) {
				state, i = none, i+2
			}
		case literal:
			if c == '\'' || c == '\n' {
				state = none
			}
		case mlLiteral:
			if strings.HasPrefix(text[i:], "'''") {
				state, i = none, i+2
			}
		case comment:
			if c == '\n' {
				state = none
			}
		}
	}
	return at
}

// countingBuffer counts the lines written to it: lines is the line the
// next byte goes on.
type countingBuffer struct {
	bytes.Buffer
	lines int
}

func (b *countingBuffer) Write(p []byte) (int, error) {
	b.lines += bytes.Count(p, []byte{'\n'})
	return b.Buffer.Write(p)
}

// instrument rewrites a parsed template: actions that print get the value
// function, and after each newline of literal text a mark records the
// template line that follows.
func instrument(list *parse.ListNode, text string, marks bool) {
	if list == nil {
		return
	}
	var nodes []parse.Node
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 {
				n.Pipe.Cmds = append(n.Pipe.Cmds, call(n.Pos, valueFunc))
			}
		case *parse.TextNode:
			if marks {
				nodes = append(nodes, splitText(n, text)...)
				continue
			}
		case *parse.IfNode:
			instrument(n.List, text, marks)
			instrument(n.ElseList, text, marks)
		case *parse.RangeNode:
			instrument(n.List, text, marks)
			instrument(n.ElseList, text, marks)
		case *parse.WithNode:
			instrument(n.List, text, marks)
			instrument(n.ElseList, text, marks)
		}
		nodes = append(nodes, n)
	}
	list.Nodes = nodes
}

// splitText splits literal text after each newline and puts a mark there.
func splitText(n *parse.TextNode, text string) []parse.Node {
	var nodes []parse.Node
	rest := n.Text
	pos := int(n.Pos)
	line := 1 + strings.Count(text[:min(pos, len(text))], "\n")
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		seg := &parse.TextNode{NodeType: parse.NodeText, Pos: parse.Pos(pos), Text: rest[:i+1]}
		nodes = append(nodes, seg)
		rest = rest[i+1:]
		pos += i + 1
		line++
		mark := call(parse.Pos(pos), markFunc)
		mark.Args = append(mark.Args, &parse.NumberNode{NodeType: parse.NodeNumber, Pos: parse.Pos(pos),
			IsInt: true, IsFloat: true, Int64: int64(line), Float64: float64(line), Text: strconv.Itoa(line)})
		nodes = append(nodes, &parse.ActionNode{NodeType: parse.NodeAction, Pos: parse.Pos(pos),
			Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: parse.Pos(pos), Cmds: []*parse.CommandNode{mark}}})
	}
	if len(rest) > 0 {
		nodes = append(nodes, &parse.TextNode{NodeType: parse.NodeText, Pos: parse.Pos(pos), Text: rest})
	}
	return nodes
}

func call(pos parse.Pos, name string) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos,
		Args: []parse.Node{parse.NewIdentifier(name).SetPos(pos)}}
}

// templateError turns a text/template error, "template: NAME:LINE:COL:
// msg", into an Error with the place.
// Compiled on first use: every run of hakoniwa would pay for it at start-up.
var templatePlace = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^template: (.*?):(\d+)(?::(\d+))?: (.*)$`)
})

func templateError(name string, err error) error {
	msg := err.Error()
	var fe *Error
	if errors.As(err, &fe) {
		return fe // from a file included as text, already placed there
	}
	if m := templatePlace().FindStringSubmatch(msg); m != nil && m[1] == name {
		line, _ := strconv.Atoi(m[2])
		col := 1 // a parse error names no column
		if m[3] != "" {
			// text/template counts columns from 0.
			c, _ := strconv.Atoi(m[3])
			col = c + 1
		}
		msg := m[4]
		// "executing "x" at <os_env 1>: error calling os_env: ..." ->
		// "os_env: ...".
		if _, rest, ok := strings.Cut(msg, "error calling "); ok {
			msg = strings.TrimPrefix(rest, "fail: ")
		}
		if strings.HasPrefix(msg, "executing ") {
			if i := strings.Index(msg, ">: "); i >= 0 {
				msg = msg[i+3:]
			}
		}
		return &Error{File: name, Line: line, Col: col, Key: "template", Msg: msg}
	}
	return &Error{File: name, Key: "template", Msg: strings.TrimPrefix(msg, "template: ")}
}

// tomlValue writes a value as TOML: strings quoted, numbers and booleans
// as they are, lists as arrays.
func tomlValue(v any) (rawTOML, error) {
	switch v := v.(type) {
	case rawTOML:
		return v, nil
	case string:
		return rawTOML(Quote(v)), nil
	case bool:
		return rawTOML(strconv.FormatBool(v)), nil
	case nil:
		return "", errors.New("no value to print (nil)")
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rawTOML(strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return "", fmt.Errorf("%d does not fit a TOML integer", rv.Uint())
		}
		return rawTOML(strconv.FormatUint(rv.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		switch {
		case math.IsNaN(f):
			return "nan", nil
		case math.IsInf(f, 1):
			return "inf", nil
		case math.IsInf(f, -1):
			return "-inf", nil
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return rawTOML(s), nil
	case reflect.String:
		return rawTOML(Quote(rv.String())), nil
	case reflect.Slice, reflect.Array:
		parts := make([]string, rv.Len())
		for i := range parts {
			p, err := tomlValue(rv.Index(i).Interface())
			if err != nil {
				return "", err
			}
			parts[i] = string(p)
		}
		return rawTOML("[" + strings.Join(parts, ", ") + "]"), nil
	}
	return "", fmt.Errorf("a %T cannot be written as a TOML value", v)
}

// funcs returns the template functions for one file.
func (l *loader) funcs(f *file) template.FuncMap {
	return template.FuncMap{
		"os_env": os.Getenv,
		"os_homedir": func(suffix ...string) (string, error) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			return home + strings.Join(suffix, ""), nil
		},
		"os_cwd": os.Getwd,
		"fs_read_to_string": func(path string) (string, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				return "", err
			}
			if !utf8.Valid(data) {
				return "", fmt.Errorf("%s: not UTF-8 text", path)
			}
			return string(data), nil
		},
		"fs_findup":       findUp,
		"fs_glob":         glob,
		"fs_mkdir":        func(path string) (rawTOML, error) { return "", os.MkdirAll(path, 0o700) },
		"fs_touch":        touch,
		"fs_read_link":    os.Readlink,
		"fs_xdg_user_dir": xdgUserDir,
		"path_exists": func(path string) bool {
			_, err := os.Stat(path)
			return err == nil
		},
		"path_is_dir": func(path string) bool {
			st, err := os.Stat(path)
			return err == nil && st.IsDir()
		},
		"fs_realpath": realPath,
		"path_within": func(path, dir string) bool {
			rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
			return err == nil && filepath.IsAbs(path) == filepath.IsAbs(dir) && rel != ".." && !strings.HasPrefix(rel, "../")
		},
		"path_is_symlink": func(path string) bool {
			st, err := os.Lstat(path)
			return err == nil && st.Mode()&os.ModeSymlink != 0
		},
		"__dir__": func() (string, error) {
			if f.src.embedded() {
				return "", fmt.Errorf("%s is built into hakoniwa and has no directory on the host", f.name)
			}
			return f.src.dir(f.name), nil
		},
		"toml": func(v any) (rawTOML, error) {
			if s, ok := v.(rawTOML); ok {
				v = string(s)
			}
			return tomlValue(v)
		},
		"include": func(name string) (rawTOML, error) {
			inc, err := l.open(f, name, false)
			if err != nil {
				return "", err
			}
			defer l.pop()
			out, _, err := l.render(inc, false)
			return rawTOML(out), err
		},
		"fail": func(msg string) (rawTOML, error) { return "", errors.New(msg) },
		"list": func(items ...any) []any { return items },
	}
}

// findUp looks for name in the current directory and each of its parents,
// and returns the first path that exists, or "" when none does.
func findUp(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

// realPath returns the absolute path of path with every symlink resolved.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// glob returns the host paths that match pattern, sorted.
func glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	if m == nil {
		m = []string{}
	}
	return m, nil
}

// touch creates an empty file if path does not exist, like touch(1)
// without changing the times of an existing one.
func touch(path string) (rawTOML, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	return "", f.Close()
}

// xdgDefaults are the English folder names that xdg-user-dirs uses when
// user-dirs.dirs does not name a folder.
var xdgDefaults = map[string]string{
	"DESKTOP": "Desktop", "DOCUMENTS": "Documents", "DOWNLOAD": "Downloads",
	"MUSIC": "Music", "PICTURES": "Pictures", "PUBLICSHARE": "Public",
	"TEMPLATES": "Templates", "VIDEOS": "Videos",
}

// xdgUserDir returns the user's XDG folder NAME (such as DOWNLOAD), from
// $XDG_CONFIG_HOME/user-dirs.dirs, or the English default under $HOME.
func xdgUserDir(name string) (string, error) {
	def, known := xdgDefaults[name]
	if !known {
		names := make([]string, 0, len(xdgDefaults))
		for k := range xdgDefaults {
			names = append(names, k)
		}
		sort.Strings(names)
		return "", fmt.Errorf("unknown XDG user dir %q (want one of %s)", name, strings.Join(names, ", "))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	conf := os.Getenv("XDG_CONFIG_HOME")
	if conf == "" {
		conf = filepath.Join(home, ".config")
	}
	file := filepath.Join(conf, "user-dirs.dirs")
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return filepath.Join(home, def), nil
	}
	if err != nil {
		return "", err
	}
	// Lines are shell assignments: XDG_DOWNLOAD_DIR="$HOME/Downloads".
	want := "XDG_" + name + "_DIR="
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		v, ok := strings.CutPrefix(line, want)
		if !ok {
			continue
		}
		v, err := strconv.Unquote(v)
		if err != nil {
			return "", fmt.Errorf("%s: bad line %q", file, line)
		}
		if rest, ok := strings.CutPrefix(v, "$HOME"); ok {
			v = home + rest
		}
		if !filepath.IsAbs(v) {
			return "", fmt.Errorf("%s: %s is not an absolute path or under $HOME", file, line)
		}
		return v, nil
	}
	return filepath.Join(home, def), nil
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
