package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestReadmeExamples checks that every README block marked
//
//	<!-- example: SCRIPT.txtar FILE -->
//
// is the same as FILE in testdata/script/SCRIPT.txtar, which runs it: the
// README's examples are tested as they are written.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if testutil.Unprivileged() && os.IsNotExist(err) {
		t.Skip("the rerun as another user has a copy of this package only; the root run checks the README")
	}
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("(?m)^<!-- example: (\\S+\\.txtar) (\\S+) -->\n```[a-z]*\n")
	found := 0
	for _, m := range marker.FindAllSubmatchIndex(readme, -1) {
		script, name := string(readme[m[2]:m[3]]), string(readme[m[4]:m[5]])
		rest := readme[m[1]:]
		end := strings.Index(string(rest), "```\n")
		if end < 0 {
			t.Fatalf("README: the block of %s %s is not closed", script, name)
		}
		block := string(rest[:end])
		ar, err := txtar.ParseFile(filepath.Join("testdata/script", script))
		if err != nil {
			t.Fatal(err)
		}
		var file *txtar.File
		for i := range ar.Files {
			if ar.Files[i].Name == name {
				file = &ar.Files[i]
			}
		}
		switch {
		case file == nil:
			t.Errorf("README shows %s of %s, which has no such file", name, script)
		case string(file.Data) != block:
			t.Errorf("README's %s differs from %s's:\nREADME:\n%s\n%s:\n%s", name, script, block, script, file.Data)
		}
		found++
	}
	if found < 4 {
		t.Errorf("found %d examples in the README, want at least 4", found)
	}
}
