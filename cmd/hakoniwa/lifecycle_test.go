package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// cli returns the path of this test binary copied as "hakoniwa", which
// testscript's Main runs as the CLI.
func cli(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "hakoniwa")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// findChild waits for a process whose parent is ppid and whose command line
// is cmdline, and returns its pid.
func findChild(t *testing.T, ppid int, cmdline string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			b, err := os.ReadFile(p + "/cmdline")
			if err != nil || string(b) != cmdline {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(p))
			if _, parent, ok := testutil.ProcStat(pid); ok && parent == ppid {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no child %q of %d", cmdline, ppid)
	return 0
}

func TestDieWithParent(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		cmdline string
	}{
		{"sleep", []string{"/bin/sleep", "100"}, "/bin/sleep\x00100\x00"},
		// A hostile PID 1 clears its parent-death signal first: the
		// watchdog still kills it.
		{"pdeathsig cleared", []string{"/usr/bin/setpriv", "--pdeathsig", "clear", "--", "/bin/sleep", "101"}, "/bin/sleep\x00101\x00"},
	}
	exe := cli(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, append([]string{"run", "--"}, tt.args...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := findChild(t, cmd.Process.Pid, tt.cmdline)
			cmd.Process.Kill()
			cmd.Wait()
			deadline := time.Now().Add(time.Second)
			for testutil.Alive(pid) {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("the sandbox (pid %d) outlived its SIGKILLed parent by a second", pid)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestSignalForwarding(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		sig     syscall.Signal
		code    int
		stdout  string
		stderr  string
		maxTime time.Duration
	}{
		{"SIGTERM reaches a handler", []string{"run", "--", "/bin/sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`},
			syscall.SIGTERM, 7, "ready\ngot TERM\n", "", 5 * time.Second},
		{"SIGINT reaches a handler", []string{"run", "--", "/bin/sh", "-c", `trap 'echo got INT; exit 8' INT; echo ready; while :; do sleep 0.05; done`},
			syscall.SIGINT, 8, "ready\ngot INT\n", "", 5 * time.Second},
		{"SIGHUP ignored by PID 1 is followed by SIGKILL", []string{"run", "--kill-grace", "300ms", "--", "/bin/sh", "-c", "echo ready; exec sleep 100"},
			syscall.SIGHUP, 137, "ready\n", "still running 300ms after hangup", 5 * time.Second},
	}
	exe := cli(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, tt.args...)
			var stdout, stderr bytes.Buffer
			pr, pw, _ := os.Pipe()
			cmd.Stdout, cmd.Stderr = pw, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			buf := make([]byte, 6)
			if _, err := pr.Read(buf); err != nil || string(buf) != "ready\n" {
				t.Fatalf("read %q %v", buf, err)
			}
			stdout.Write(buf)
			start := time.Now()
			cmd.Process.Signal(tt.sig)
			rest := make(chan struct{})
			go func() { stdout.ReadFrom(pr); close(rest) }()
			err := cmd.Wait()
			<-rest
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code || stdout.String() != tt.stdout || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d stdout %q stderr %q; want %d %q %q", code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
			if d := time.Since(start); d > tt.maxTime {
				t.Errorf("took %v", d)
			}
		})
	}
}
