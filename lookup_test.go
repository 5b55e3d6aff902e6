package hakoniwa

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tools makes a host directory for the PATH tests: each name is a script
// that prints its own name, with that mode, or a directory when the mode
// has os.ModeDir.
func tools(t *testing.T, files map[string]os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for name, mode := range files {
		p := filepath.Join(dir, name)
		if mode.IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		script := "#!/bin/sh\necho " + name + "\n"
		if err := os.WriteFile(p, []byte(script), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode) // past the umask
	}
	return dir
}

// TestLookPathInside checks that a name without a slash is looked up
// inside the sandbox, in the sandbox's own PATH, as execvp would, and in
// the caller's PATH only when the sandbox's environment has none.
func TestLookPathInside(t *testing.T) {
	dir := tools(t, map[string]os.FileMode{
		"a/tool":                     0o755,
		"b/tool":                     0o755,
		"noexec/tool":                0o644,
		"dir/tool":                   os.ModeDir | 0o755,
		"hostonly/hk-host-only-tool": 0o755,
	})
	tests := []struct {
		name     string
		path     string // the sandbox's PATH; "-" for none
		prog     string
		want     string // stdout
		wantCode int    // the SetupError's exit code when it fails
		wantErr  string
	}{
		{"first dir wins", "/t/a:/t/b:/usr/bin", "tool", "a/tool\n", 0, ""},
		{"order", "/t/b:/t/a", "tool", "b/tool\n", 0, ""},
		{"not executable is skipped", "/t/noexec:/t/b", "tool", "b/tool\n", 0, ""},
		{"a directory is skipped", "/t/dir:/t/a", "tool", "a/tool\n", 0, ""},
		{"only not executable", "/t/noexec", "tool", "", 126, "permission denied"},
		{"missing", "/t/a:/usr/bin", "no-such-tool", "", 127, "look up no-such-tool in the sandbox's PATH (/t/a:/usr/bin): command not found"},
		{"empty PATH", "", "sh", "", 127, "command not found"},
		{"not in the sandbox's PATH", "/usr/bin", "tool", "", 127, "command not found"},
		// The caller's PATH is not used when the sandbox has one, even if
		// the program would be found there.
		{"caller's PATH ignored", "/usr/bin", "hk-host-only-tool", "", 127, "command not found"},
		// Without a PATH inside, the caller's PATH is used, as the seed did;
		// the path found must then exist inside too.
		{"no PATH: caller's", "-", "sh", "", 0, ""},
		{"no PATH: found on the host only", "-", "hk-host-only-tool", "", 127, "no such file or directory"},
		{"only a directory", "/t/dir", "tool", "", 126, "permission denied"},
		{"dot-dot joined as text", "/t/a/../b", "tool", "b/tool\n", 0, ""},
		// A magic link is never executed, even when PATH leads to one.
		{"magic link", "/proc/self", "exe", "", 126, "magic link"},
		{"through a magic link", "/proc/self/root/t/a", "tool", "", 126, "magic link"},
	}
	t.Setenv("PATH", filepath.Join(dir, "hostonly")+":/usr/bin:/bin")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kiss(t).BindRO(dir, "/t")
			if tt.path != "-" {
				c.Setenv("PATH", tt.path)
			}
			args := []string{}
			if tt.prog == "sh" {
				args = []string{"-c", "echo sh"}
				if tt.want == "" && tt.wantCode == 0 {
					tt.want = "sh\n"
				}
			}
			cmd := c.Command(tt.prog, args...)
			out, err := cmd.Output()
			if tt.wantCode == 0 {
				if err != nil || string(out) != tt.want {
					t.Fatalf("got %q, %v; want %q", out, err, tt.want)
				}
				return
			}
			var se *SetupError
			if !errors.As(err, &se) || se.ExitCode != tt.wantCode || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v (%#v), want a SetupError with exit code %d containing %q", err, se, tt.wantCode, tt.wantErr)
			}
			if cmd.Result.Status != StatusSE {
				t.Errorf("status %s, want SE", cmd.Result.Status)
			}
		})
	}
}

// TestLoopback checks that lo is down in a new network namespace unless
// Loopback is set, and that Loopback has no effect on a shared one.
func TestLoopback(t *testing.T) {
	// bash's /dev/tcp tells the two apart: with lo down the connect fails
	// with "Network is unreachable", with lo up and nothing listening it is
	// refused.
	const probe = "exec 3<>/dev/tcp/127.0.0.1/1 2>&1"
	run := func(c *Container) string {
		out, _ := c.Command("/bin/bash", "-c", probe).CombinedOutput()
		return string(out)
	}
	if out := run(kiss(t)); !strings.Contains(out, "Network is unreachable") {
		t.Errorf("default: %q, want Network is unreachable", out)
	}
	if out := run(kiss(t).Loopback(true)); !strings.Contains(out, "Connection refused") {
		t.Errorf("Loopback(true): %q, want Connection refused", out)
	}
	if out := run(kiss(t).Loopback(true).Loopback(false)); !strings.Contains(out, "Network is unreachable") {
		t.Errorf("Loopback(false): %q, want Network is unreachable", out)
	}
	plan, err := kiss(t).Loopback(true).ShareNet(true).Command("/bin/true").Plan()
	if err != nil || strings.Contains(plan, "bring up") {
		t.Errorf("shared net with Loopback: plan brings lo up (%v):\n%s", err, plan)
	}
}
