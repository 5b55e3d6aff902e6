package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// TestManPageCurrent checks that docs/hakoniwa.1 is what `hakoniwa man`
// writes, so that the shipped page never drifts from --help.
func TestManPageCurrent(t *testing.T) {
	want := manPage(newRootCmd(strings.NewReader(""), io.Discard, io.Discard))
	got, err := os.ReadFile("../../docs/hakoniwa.1")
	if testutil.Unprivileged() && os.IsNotExist(err) {
		t.Skip("the rerun as another user has a copy of this package only; the root run checks the file")
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/hakoniwa.1 is out of date; run: go run ./cmd/hakoniwa man > docs/hakoniwa.1")
	}
	// Every runnable command and every visible flag of run is in it.
	for _, s := range []string{`.SS "hakoniwa run"`, `.SS "hakoniwa policy check"`, `.SS "hakoniwa policy show"`,
		`.SS "hakoniwa policy list"`, `.SS "hakoniwa man"`, `.SS "hakoniwa completion bash"`,
		`\fB\-c\fR, \fB\-\-config\fR \fIFILE\fR`, `\fB\-\-profile\fR \fINAME\fR`, `\fB\-\-format\fR \fIFORMAT\fR`} {
		if !strings.Contains(want, s) {
			t.Errorf("man page lacks %q", s)
		}
	}
	for _, line := range strings.Split(want, "\n") {
		if strings.HasPrefix(line, ".") && !strings.HasPrefix(line, ".TH") && !strings.HasPrefix(line, ".SH") &&
			!strings.HasPrefix(line, ".SS") && !strings.HasPrefix(line, ".TP") && !strings.HasPrefix(line, ".PP") &&
			!strings.HasPrefix(line, ".B ") && !strings.HasPrefix(line, ".BR ") && !strings.HasPrefix(line, ".br") &&
			!strings.HasPrefix(line, ".nf") && !strings.HasPrefix(line, ".fi") && !strings.HasPrefix(line, ".RS") && !strings.HasPrefix(line, ".RE") {
			t.Errorf("text line starts with a control character: %q", line)
		}
	}
}
