package seccomp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// TestTablesCurrent checks that zsyscalls.go is what `go generate` writes
// from the x/sys of go.mod, so that the tables never drift from it.
func TestTablesCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	if testutil.Unprivileged() {
		t.Skip("the rerun as another user has a copy of this package only, without the module; the root run checks the tables")
	}
	out := filepath.Join(t.TempDir(), "z.go")
	cmd := exec.Command("go", "run", "./internal/gentables", "-o", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./internal/gentables: %v", err)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zsyscalls.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zsyscalls.go is out of date; run: go generate ./seccomp")
	}
}
