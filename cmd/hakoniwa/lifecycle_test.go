package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// cgroupParent is the cgroup the tests' runs are made in.
func cgroupParent() string {
	if p := testutil.CgroupParent(); p != "" {
		return p
	}
	return "/hakoniwa"
}

// TestCgroupTeardownAfterSIGKILL kills the CLI while its sandbox runs in a
// cgroup: the watchdog kills every process of the sandbox, and the next
// run removes the cgroup that the killed CLI could not.
func TestCgroupTeardownAfterSIGKILL(t *testing.T) {
	top := filepath.Join("/sys/fs/cgroup/pids", cgroupParent())
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no cgroup v1 pids hierarchy under CI")
		}
		t.Skip("no cgroup v1 pids hierarchy")
	}
	exe := cli(t)
	cmd := exec.Command(exe, "run", "--pids", "64", "--cgroup-parent", cgroupParent(), "--",
		"/bin/sh", "-c", "sleep 103 & sleep 104 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	findChild(t, cmd.Process.Pid, "/bin/sh\x00-c\x00sleep 103 & sleep 104 & wait\x00")
	// The run's cgroup, and the three processes in its leaf.
	var dir string
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); len(pids) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no run cgroup of %d with 3 processes in %s (%q, %v)", cmd.Process.Pid, top, dir, pids)
		}
		m, _ := filepath.Glob(filepath.Join(top, "hakoniwa-run-"+strconv.Itoa(cmd.Process.Pid)+"-*"))
		if len(m) != 1 {
			continue
		}
		dir = m[0]
		b, _ := os.ReadFile(filepath.Join(dir, "sandbox", "cgroup.procs"))
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			p, _ := strconv.Atoi(f)
			pids = append(pids, p)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	for _, pid := range pids {
		waitGone(t, pid, "of the sandbox")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sandbox", "cgroup.procs")); err != nil || len(b) != 0 {
		t.Errorf("the cgroup holds %q (%v), want nothing", b, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed CLI's cgroup is gone already: %v", err)
	}
	// The next run sweeps it away.
	out, err := exec.Command(exe, "run", "-v", "--pids", "8", "--cgroup-parent", cgroupParent(), "--", "/bin/true").CombinedOutput()
	if err != nil {
		t.Fatalf("the next run: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s is still there after the next run:\n%s", dir, out)
	}
	if !strings.Contains(string(out), "removed the stale cgroup "+dir) {
		t.Errorf("the next run's log does not say it removed %s:\n%s", dir, out)
	}
}

// TestNetHelperGoneAfterSIGKILL kills the CLI while pasta or slirp4netns
// serves its sandbox: the helper dies with the CLI (pasta, which does not
// quit by itself when the sandbox is gone, by its parent-death signal;
// slirp4netns also by its exit fd), and so does the sandbox.
func TestNetHelperGoneAfterSIGKILL(t *testing.T) {
	for _, helper := range []string{"pasta", "slirp4netns"} {
		t.Run(helper, func(t *testing.T) { testHelperGone(t, helper) })
	}
}

func testHelperGone(t *testing.T, helper string) {
	if _, err := exec.LookPath(helper); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing under CI", helper)
		}
		t.Skip("no " + helper)
	}
	exe := cli(t)
	cmd := exec.Command(exe, "run", "--network", helper, "--", "/bin/sleep", "105")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sandbox := findChild(t, cmd.Process.Pid, "/bin/sleep\x00105\x00")
	pasta := 0
	for deadline := time.Now().Add(5 * time.Second); pasta == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			if filepath.Base(args[0]) == helper && slices.Contains(args[1:], strconv.Itoa(sandbox)) {
				pasta, _ = strconv.Atoi(filepath.Base(filepath.Dir(p)))
			}
		}
	}
	if pasta == 0 {
		t.Fatalf("no %s for the sandbox", helper)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitGone(t, sandbox, "of the sandbox")
	waitGone(t, pasta, "("+helper+")")
}

// waitGone waits up to 2s for pid, which a SIGKILLed CLI leaves behind, to
// die, and kills it and fails the test if it does not.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for testutil.Alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("pid %d %s outlived its SIGKILLed CLI by 2s", pid, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
