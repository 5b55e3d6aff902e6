package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// dump shows a policy as JSON, with its pointers followed, for failure
// messages and comparisons.
func dump(p *Policy) string {
	if p == nil {
		return "<nil>"
	}
	b, err := json.MarshalIndent(struct {
		Files  []string
		Format string
		*Policy
	}{p.Files, p.Format.String(), p}, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// writeTree writes files (name -> contents) under dir, making the
// directories they need, and returns dir.
func writeTree(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mustParse parses text as the file name and fails the test on an error.
func mustParse(t testing.TB, name, text string) *Policy {
	t.Helper()
	p, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("Parse(%q):\n%s\nerror: %v", name, text, err)
	}
	if p == nil {
		t.Fatalf("Parse(%q) returned neither a policy nor an error", name)
	}
	return p
}

// entries returns every *Error of an error returned by the loader: an
// ErrorList's entries, or the one *Error. It fails the test when err is
// something else.
func entries(t testing.TB, err error) []*Error {
	t.Helper()
	var list ErrorList
	if errors.As(err, &list) {
		if len(list) == 0 {
			t.Fatalf("empty ErrorList")
		}
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return []*Error{one}
	}
	t.Fatalf("error %v (%T) is neither an ErrorList nor an *Error", err, err)
	return nil
}

// parseErr parses text as name, wants an error, and returns its entries.
func parseErr(t testing.TB, name, text string) []*Error {
	t.Helper()
	p, err := Parse(name, []byte(text))
	if err == nil {
		t.Fatalf("Parse(%q) succeeded, want an error:\n%s\ngot %s", name, text, dump(p))
	}
	if p != nil {
		t.Errorf("Parse(%q) returned a policy with its error", name)
	}
	return entries(t, err)
}

// place is where an error is: what the tests compare.
type place struct {
	File      string
	Line, Col int
	Key       string
}

func placeOf(e *Error) place { return place{e.File, e.Line, e.Col, e.Key} }

// wantOne checks that errs is exactly one error at want whose message
// contains every one of msgs. A Col of -1 is not checked.
func wantOne(t testing.TB, errs []*Error, want place, msgs ...string) {
	t.Helper()
	if len(errs) != 1 {
		t.Errorf("got %d errors, want 1:\n%v", len(errs), ErrorList(errs))
		if len(errs) == 0 {
			return
		}
	}
	e := errs[0]
	got := placeOf(e)
	if want.Col < 0 { // a template error: see TestBugTemplateColumns
		got.Col = want.Col
	}
	if got != want {
		t.Errorf("error %q\n at %+v\nwant %+v", e.Error(), got, want)
	}
	for _, m := range msgs {
		if !strings.Contains(e.Msg, m) {
			t.Errorf("error message %q does not contain %q", e.Msg, m)
		}
	}
}

// samePolicy compares two policies, ignoring Files and Format.
func samePolicy(a, b *Policy) bool {
	x, y := *a, *b
	x.Files, x.Format, y.Files, y.Format = nil, 0, nil, 0
	return reflect.DeepEqual(x, y)
}
