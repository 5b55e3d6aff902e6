package hakoniwa

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus/dbustest"
	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// These tests run real sandboxes in real cgroups: as root under the
// default parent /hakoniwa, and in the unprivileged rerun under the cgroup
// that testutil delegates to it. This host's memory, pids and cpu
// controllers are on cgroup v1; its cgroup v2 hierarchy has none, and
// serves the v2 tests of what needs no controller.

// haveCgroups skips the test where no cgroup hierarchy is mounted, and
// fails it under CI, which has them.
func haveCgroups(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing under CI: %v", f, err)
			}
			t.Skipf("no %s on this host", f)
		}
	}
}

const (
	v1Memory = "/sys/fs/cgroup/memory/cgroup.procs"
	v1Pids   = "/sys/fs/cgroup/pids/cgroup.procs"
	v1CPU    = "/sys/fs/cgroup/cpu/cgroup.procs"
	v2Top    = "/sys/fs/cgroup/unified/cgroup.procs"
)

// cgKiss is the default sandbox with the test's cgroup parent.
func cgKiss(t *testing.T) *Container {
	return kiss(t).CgroupParent(testutil.CgroupParent())
}

// runResult runs argv in c and returns its report.
func runResult(t *testing.T, c *Container, argv ...string) *Result {
	t.Helper()
	cmd := c.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v\nstderr: %s", argv, err, stderr.String())
	}
	if cmd.Result == nil {
		t.Fatalf("%v: no result", argv)
	}
	t.Logf("%v: %s", argv, cmd.Result.JSON())
	checkGone(t, cmd.Result.Cgroup)
	return cmd.Result
}

// checkGone checks that the run's cgroup was removed from every
// hierarchy: at once by hakoniwa, or soon by systemd for a scope.
func checkGone(t *testing.T, cg string) {
	t.Helper()
	if cg == "" {
		t.Error("the report names no cgroup")
		return
	}
	for _, top := range []string{"memory", "pids", "cpu", "cpuacct", "unified"} {
		dir := filepath.Join("/sys/fs/cgroup", top, cg)
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			_, err := os.Stat(dir)
			if err != nil {
				break
			}
			if !strings.HasSuffix(cg, ".scope") || time.Now().After(deadline) {
				t.Errorf("%s is left after the run", dir)
				break
			}
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	haveCgroups(t, v1Memory)
	const limit = 32 << 20
	// tail keeps a whole line in memory, and /dev/zero has no newline.
	r := runResult(t, cgKiss(t).Memory(limit), "/bin/sh", "-c", "head -c 256M /dev/zero | tail -n 1 >/dev/null")
	if r.Status != StatusMLE {
		t.Fatalf("status %s (%s), want MLE", r.Status, r.Reason)
	}
	if r.OOMKill == nil || *r.OOMKill < 1 {
		t.Errorf("oom_kill = %s, want at least 1", u64s(r.OOMKill))
	}
	// The peak is the limit itself, give or take a few pages.
	if r.MemoryPeak == nil || *r.MemoryPeak < limit*9/10 || *r.MemoryPeak > limit+limit/10 {
		t.Errorf("memory_peak = %s, want within 10%% of %d", u64s(r.MemoryPeak), limit)
	}
	if !strings.Contains(r.Reason, "memory limit of 32M exceeded") {
		t.Errorf("reason %q does not name the memory limit", r.Reason)
	}
	if r.Limits == nil || r.Limits.Memory == nil || *r.Limits.Memory != limit {
		t.Errorf("limits = %+v, want memory %d", r.Limits, limit)
	}
}

func TestCgroupMemoryUnderLimit(t *testing.T) {
	haveCgroups(t, v1Memory)
	// The same work under a limit it fits: OK, no OOM kill, and the peak
	// is at least what it allocated.
	r := runResult(t, cgKiss(t).Memory(256<<20), "/bin/sh", "-c", "head -c 16M /dev/zero | tail -n 1 >/dev/null")
	if r.Status != StatusOK || *r.ExitCode != 0 {
		t.Fatalf("status %s (%s), want OK", r.Status, r.Reason)
	}
	if r.OOMKill == nil || *r.OOMKill != 0 {
		t.Errorf("oom_kill = %s, want 0", u64s(r.OOMKill))
	}
	if r.MemoryPeak == nil || *r.MemoryPeak < 16<<20 {
		t.Errorf("memory_peak = %s, want at least 16M", u64s(r.MemoryPeak))
	}
}

func TestCgroupForkBomb(t *testing.T) {
	haveCgroups(t, v1Pids)
	const limit = 16
	before := hostCanFork(t)
	// Forks until the limit refuses one, and sh then gives up.
	r := runResult(t, cgKiss(t).Pids(limit), "/bin/sh", "-c", "while :; do sleep 30.25 & done")
	if r.Status != StatusPLE {
		t.Fatalf("status %s (%s), want PLE", r.Status, r.Reason)
	}
	if r.PidsPeak == nil || *r.PidsPeak != limit {
		t.Errorf("pids_peak = %s, want %d", u64s(r.PidsPeak), limit)
	}
	if !strings.Contains(r.Reason, "pids limit of 16 reached") {
		t.Errorf("reason %q does not name the pids limit", r.Reason)
	}
	if !before || !hostCanFork(t) {
		t.Error("the host cannot fork")
	}
	// Every sleep died with the sandbox.
	if out, _ := exec.Command("pgrep", "-f", "^sleep 30.25$").Output(); len(out) > 0 {
		t.Errorf("sleeps left on the host: %s", out)
	}
}

// u64s writes a reported number, or "none".
func u64s(p *uint64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatUint(*p, 10)
}

// hostCanFork runs a process on the host.
func hostCanFork(t *testing.T) bool {
	return exec.Command("/bin/true").Run() == nil
}

func TestCgroupWeights(t *testing.T) {
	haveCgroups(t, v1CPU)
	// The weights have no effect to measure without contention; check
	// that they are accepted where this host's controllers have them.
	r := runResult(t, cgKiss(t).CPUWeight(500).IOWeight(500), "/bin/true")
	if r.Status != StatusOK || *r.Limits.CPUWeight != 500 || *r.Limits.IOWeight != 500 {
		t.Fatalf("status %s (%s), limits %+v", r.Status, r.Reason, r.Limits)
	}
}

func TestCgroupPidsUnderLimit(t *testing.T) {
	haveCgroups(t, v1Pids)
	r := runResult(t, cgKiss(t).Pids(16), "/bin/sh", "-c", "sleep 0.1 & sleep 0.1 & wait")
	if r.Status != StatusOK || *r.ExitCode != 0 {
		t.Fatalf("status %s (%s), want OK", r.Status, r.Reason)
	}
	if r.PidsPeak == nil || *r.PidsPeak != 3 {
		t.Errorf("pids_peak = %s, want 3", u64s(r.PidsPeak))
	}
}

// TestCgroupCPUQuota runs a busy loop for 2 s of wall time under half a
// cpu: the cgroup must have used 0.5 of a cpu over that time, within
// ±0.1 (the bandwidth is enforced every 100 ms period; the rest is this
// machine's noise).
func TestCgroupCPUQuota(t *testing.T) {
	haveCgroups(t, v1CPU)
	r := runResult(t, cgKiss(t).CPUs(0.5), "/usr/bin/timeout", "2", "/bin/sh", "-c", "while :; do :; done")
	if r.Status != StatusOK || *r.ExitCode != 124 {
		t.Fatalf("status %s (%s), want timeout's exit 124", r.Status, r.Reason)
	}
	if r.CPUUsage == nil {
		t.Fatal("no cpu_usage")
	}
	share := time.Duration(r.CPUUsage.Total).Seconds() / time.Duration(*r.RealTime).Seconds()
	t.Logf("used %.3f of a cpu", share)
	if share < 0.4 || share > 0.6 {
		t.Errorf("used %.3f of a cpu under --cpus 0.5, want 0.5±0.1", share)
	}
}

// TestCgroupCPUTime burns cpu in two processes, and in one process with
// two threads, under a 1 s cpu-time limit. RLIMIT_CPU counts each process
// apart, so two processes would get 2 s; the cgroup counts them together,
// and stops the run at 1 s of their sum.
func TestCgroupCPUTime(t *testing.T) {
	haveCgroups(t, v1CPU)
	burn := buildBurner(t)
	for _, tc := range []struct{ name, script string }{
		{"two processes", "/burn 1 & /burn 1"},
		{"two threads", "/burn 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cgKiss(t).Cgroup(true).Rlimit(RlimitCPU, 1).Walltime(20 * time.Second).
				AddMount(Mount{Kind: KindBind, Source: burn, Target: "/burn"})
			r := runResult(t, c, "/bin/sh", "-c", tc.script)
			if r.Status != StatusTLE || !strings.Contains(r.Reason, "cpu time limit of 1s exceeded") {
				t.Fatalf("status %s (%s), want TLE for the cpu time", r.Status, r.Reason)
			}
			total := time.Duration(r.CPUUsage.Total)
			if total < time.Second || total > 1300*time.Millisecond {
				t.Errorf("the sandbox used %v of cpu time, want 1s to 1.3s", total)
			}
		})
	}
}

// buildBurner builds, once, a static program that spins in N threads for
// up to a minute.
func buildBurner(t *testing.T) string {
	t.Helper()
	burner.once.Do(func() { burner.path, burner.err = build(t) })
	if burner.err != nil {
		t.Fatal(burner.err)
	}
	return burner.path
}

// burner is the program buildBurner built, in a directory TestMain removes.
var burner struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func build(t *testing.T) (string, error) {
	dir, err := os.MkdirTemp("", "hakoniwa-burn-")
	if err != nil {
		return "", err
	}
	burner.dir = dir
	src := filepath.Join(dir, "main.go")
	prog := `package main

import (
	"os"
	"strconv"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	for i := 1; i < n; i++ {
		go spin()
	}
	spin()
}

func spin() {
	end := time.Now().Add(time.Minute)
	for x := 0; time.Now().Before(end); x++ {
	}
}
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "burn")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off", "GOCACHE="+filepath.Join(dir, "cache"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the burner: %v\n%s", err, out)
	}
	return bin, os.Chmod(dir, 0o755)
}

// TestCgroupNamespace checks that the command sees its own cgroup as the
// root, on v1 and on v2 (where the child is cloned into its cgroup), and
// that the cgroup holds it.
func TestCgroupNamespace(t *testing.T) {
	for _, tc := range []struct {
		version int
		file    string
		line    string
	}{
		{1, v1Pids, "pids:/"},
		{2, v2Top, ":/"}, // "0::/"
	} {
		t.Run(map[int]string{1: "v1", 2: "v2"}[tc.version], func(t *testing.T) {
			haveCgroups(t, tc.file)
			c := cgKiss(t).CgroupVersion(tc.version).Cgroup(true)
			cmd := c.Command("/bin/sh", "-c", "cat /proc/self/cgroup; sleep 0.2")
			var out strings.Builder
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// While it runs, the host sees the command in the run's cgroup.
			host, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Result.Pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
			// In the leaf of the run's cgroup, below its limits.
			if !strings.Contains(string(host), cmd.Result.Cgroup+"/sandbox\n") {
				t.Errorf("the host sees the command in\n%s\nnot in %s/sandbox", host, cmd.Result.Cgroup)
			}
			if !hasLineSuffix(out.String(), ":"+tc.line) {
				t.Errorf("inside, /proc/self/cgroup is\n%s\nwant a line %q", out.String(), tc.line)
			}
			checkGone(t, cmd.Result.Cgroup)
		})
	}
}

// hasLineSuffix reports whether a line of text ends with suffix.
func hasLineSuffix(text, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// TestCgroupV2CPUTime enforces the cpu-time limit through cgroup v2's
// cpu.stat, which needs no controller.
func TestCgroupV2CPUTime(t *testing.T) {
	haveCgroups(t, v2Top)
	burn := buildBurner(t)
	c := cgKiss(t).CgroupVersion(2).Cgroup(true).Rlimit(RlimitCPU, 1).Walltime(20 * time.Second).
		AddMount(Mount{Kind: KindBind, Source: burn, Target: "/burn"})
	r := runResult(t, c, "/bin/sh", "-c", "/burn 1 & /burn 1")
	if r.Status != StatusTLE || !strings.Contains(r.Reason, "whole sandbox") {
		t.Fatalf("status %s (%s), want TLE measured on the cgroup", r.Status, r.Reason)
	}
}

// TestCgroupTeardownKillsEverything leaves a daemon in its own session
// when the command exits: it must be dead, and the cgroup removed.
func TestCgroupTeardownKillsEverything(t *testing.T) {
	haveCgroups(t, v1Pids)
	r := runResult(t, cgKiss(t).Pids(64), "/bin/sh", "-c", "(setsid sleep 60.25 &) ; exit 3")
	if r.Status != StatusOK || *r.ExitCode != 3 {
		t.Fatalf("status %s (%s), want exit 3", r.Status, r.Reason)
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 60.25$").Output(); len(out) > 0 {
		t.Errorf("the daemon lives on: %s", out)
	}
}

// TestCgroupErrors checks the failures before the run: each names the
// flag, and no process and no cgroup is left.
func TestCgroupErrors(t *testing.T) {
	haveCgroups(t, v1Memory)
	for _, tc := range []struct {
		name string
		c    func(*Container) *Container
		want string
	}{
		{"tiny memory", func(c *Container) *Container { return c.Memory(4096) }, "--memory 4096: want at least 1M"},
		{"swap below memory", func(c *Container) *Container { return c.Memory(64 << 20).MemorySwap(32 << 20) }, "--memory-swap"},
		{"swap alone", func(c *Container) *Container { return c.MemorySwap(64 << 20) }, "--memory-swap needs --memory"},
		{"v2 has no memory here", func(c *Container) *Container { return c.Memory(64 << 20).CgroupVersion(2) }, "--cgroup-version 2: the cgroup v2 hierarchy at /sys/fs/cgroup/unified lacks the memory controller"},
		{"io weight too large", func(c *Container) *Container { return c.IOWeight(20000) }, "--io-weight 20000: want 1 to 10000"},
		{"cpus too small", func(c *Container) *Container { return c.CPUs(0.001) }, "--cpus 0.001: want at least 0.01"},
		{"bad version", func(c *Container) *Container { return c.CgroupVersion(3).Pids(3) }, "--cgroup-version 3: want 1 or 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.c(cgKiss(t)).Command("/bin/true")
			err := cmd.Run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if cmd.Result.Status != StatusSE || cmd.Result.Code() != 125 {
				t.Errorf("status %s, code %d, want SE and 125", cmd.Result.Status, cmd.Result.Code())
			}
			if cmd.Result.Cgroup != "" {
				checkGone(t, cmd.Result.Cgroup)
			}
		})
	}
}

// TestCgroupUnprivilegedNeedsDelegation checks that a user without a
// delegated cgroup gets no limit, and an error that says what to do,
// rather than a run without the limit.
func TestCgroupUnprivilegedNeedsDelegation(t *testing.T) {
	haveCgroups(t, v1Memory)
	if os.Geteuid() == 0 {
		t.Skip("root may make cgroups anywhere")
	}
	cmd := kiss(t).Memory(64 << 20).Command("/bin/true")
	err := cmd.Run()
	if err == nil {
		t.Fatal("ran without a cgroup")
	}
	for _, want := range []string{"not root", "not delegated", "--cgroup-parent", "docs/cgroups.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if cmd.Result.Pid != 0 {
		t.Error("the command ran")
	}
}

// TestCgroupStaleSweep leaves a cgroup the way a killed hakoniwa would (no
// one holds it), and one that a live run holds, and checks that a new
// process's first run removes only the first.
func TestCgroupStaleSweep(t *testing.T) {
	haveCgroups(t, v1Pids)
	parent := testutil.CgroupParent()
	if parent == "" {
		parent = "/hakoniwa"
	}
	// A sweep happens once per process and parent: run the check in a
	// fresh process, which this test binary becomes.
	if os.Getenv("HAKONIWA_TEST_SWEEP") == "1" {
		r := runResult(t, cgKiss(t).Pids(8), "/bin/true")
		if r.Status != StatusOK {
			t.Fatalf("status %s (%s)", r.Status, r.Reason)
		}
		return
	}
	top := filepath.Join("/sys/fs/cgroup/pids", parent)
	// Make sure the parent exists, with a first run.
	runResult(t, cgKiss(t).Pids(8), "/bin/true")
	stale := filepath.Join(top, "hakoniwa-run-1-deadbeef")
	live := filepath.Join(top, "hakoniwa-run-2-cafef00d")
	other := filepath.Join(top, "not-a-run")
	systemd := filepath.Join(top, "run-u1.service") // systemd's transient units are named so
	for _, d := range []string{stale, live, other, systemd} {
		os.Remove(d) // left by a test run that was killed
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(d)
	}
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCgroupStaleSweep$", "-test.v")
	cmd.Env = append(os.Environ(), "HAKONIWA_TEST_SWEEP=1", "HAKONIWA_TEST_ROOT_ONLY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the second process: %v\n%s", err, out)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("the stale %s was not removed", stale)
	}
	for _, d := range []string{live, other, systemd} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

// TestCgroupSystemdScope runs sandboxes in systemd scopes: a fake systemd
// on a real dbus-daemon (internal/dbus/dbustest) moves the child into a
// real cgroup v2 cgroup while it waits before its execve. Playing systemd
// needs root.
func TestCgroupSystemdScope(t *testing.T) {
	haveCgroups(t, v2Top)
	if os.Geteuid() != 0 {
		t.Skip("playing systemd, which moves processes, needs root")
	}
	sock := dbustest.StartBus(t)
	slice := dbustest.Slice(t, "/sys/fs/cgroup/unified")
	sd := dbustest.StartSystemd(t, sock, slice)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	scoped := func() *Container { return kiss(t).CgroupManager("systemd").CgroupVersion(2) }

	t.Run("runs in the scope", func(t *testing.T) {
		cmd := scoped().Cgroup(true).Command("/bin/sh", "-c", "cat /proc/self/cgroup")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		r := cmd.Result
		if !hasLineSuffix(string(out), "::/") {
			t.Errorf("inside, /proc/self/cgroup is\n%s\nwant the scope as the root", out)
		}
		starts := sd.Starts()
		unit := starts[len(starts)-1].Name
		if want := "/" + filepath.Base(slice) + "/" + unit; r.Cgroup != want {
			t.Errorf("report's cgroup %q, want %q", r.Cgroup, want)
		}
		if pids := starts[len(starts)-1].Props["PIDs"].([]uint32); len(pids) != 1 || int(pids[0]) != r.Pid {
			t.Errorf("systemd was asked to move %v, the command is %d", pids, r.Pid)
		}
		// systemd removes an empty scope at once, which may beat the
		// read of its figures; then the report says so.
		if r.CPUUsage == nil && !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "before its figures could be read") }) {
			t.Errorf("no cpu usage from the scope, and no warning why: %q", r.Warnings)
		}
	})
	t.Run("cpu time of every process", func(t *testing.T) {
		c := scoped().Cgroup(true).Rlimit(RlimitCPU, 1).Walltime(20 * time.Second).
			AddMount(Mount{Kind: KindBind, Source: buildBurner(t), Target: "/burn"})
		r := runResult(t, c, "/bin/sh", "-c", "/burn 1 & /burn 1")
		if r.Status != StatusTLE || !strings.Contains(r.Reason, "whole sandbox") {
			t.Fatalf("status %s (%s), want TLE measured on the scope", r.Status, r.Reason)
		}
	})
	t.Run("systemd refuses", func(t *testing.T) {
		sd.Fail("org.freedesktop.systemd1.UnitExists")
		defer sd.Fail("")
		cmd := scoped().Cgroup(true).Command("/bin/echo", "ran")
		out, err := cmd.Output()
		if err == nil || !strings.Contains(err.Error(), "move the sandbox into its cgroup: ask systemd for the scope") ||
			!strings.Contains(err.Error(), "UnitExists") {
			t.Fatalf("err = %v, want systemd's refusal", err)
		}
		if len(out) != 0 || cmd.Result.Status != StatusSE || cmd.Result.Code() != 125 {
			t.Errorf("out %q, status %s, code %d; want nothing run, SE, 125", out, cmd.Result.Status, cmd.Result.Code())
		}
	})
	t.Run("no bus", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		err := scoped().Cgroup(true).Command("/bin/true").Run()
		if err == nil || !strings.Contains(err.Error(), "--cgroup-manager systemd") {
			t.Fatalf("err = %v, want the bus failure, naming the flag", err)
		}
	})
}

// TestCgroupLimitOutOfReach attacks the memory limit from inside, on the
// most permissive settings (no seccomp filter): the command makes a user,
// cgroup and mount namespace of its own, mounts cgroupfs, and raises the
// memory limit of the top cgroup it sees. That is its leaf: the limit is on
// the run's cgroup above it, which it cannot see, so the bomb is still MLE.
// As root, it cannot even make the cgroup namespace.
func TestCgroupLimitOutOfReach(t *testing.T) {
	haveCgroups(t, v1Memory)
	const limit = 32 << 20
	c := cgKiss(t).Memory(limit).Seccomp(nil).Tmpfs("/mnt", "")
	script := `unshare -U -r -C -m sh -c 'mount -t cgroup -o memory none /mnt && echo 9999999999 > /mnt/memory.limit_in_bytes && echo raised to $(cat /mnt/memory.limit_in_bytes)' 2>&1
head -c 256M /dev/zero | tail -n 1`
	cmd := c.Command("/bin/sh", "-c", script)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	r := cmd.Result
	t.Logf("output:\n%s\nreport: %s", out.String(), r.JSON())
	if r.Status != StatusMLE || *r.MemoryPeak > limit {
		t.Fatalf("status %s (%s), memory_peak %s: the limit did not hold", r.Status, r.Reason, u64s(r.MemoryPeak))
	}
	raised := strings.Contains(out.String(), "raised to 9999")
	switch {
	case os.Geteuid() == 0 && raised:
		t.Error("as root, the command made a cgroup namespace and mounted cgroupfs")
	case os.Geteuid() != 0 && !raised:
		// The attack must have reached the limit file, or this test
		// tests nothing.
		t.Errorf("the command could not write its own cgroup's limit; the attack did not run:\n%s", out.String())
	}
}

// TestCgroupShortRunsWatched runs many short commands at once under a
// watched cpu-time limit: each run's watcher must be stopped before its
// cgroup is removed (run it with -race to check that), and every cgroup is
// gone after its run.
func TestCgroupShortRunsWatched(t *testing.T) {
	haveCgroups(t, v1Pids)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				cmd := cgKiss(t).Cgroup(true).Rlimit(RlimitCPU, 5).Command("/bin/true")
				if err := cmd.Run(); err != nil {
					errs <- err
					return
				}
				for _, top := range []string{"pids", "cpuacct"} {
					if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", top, cmd.Result.Cgroup)); err == nil {
						errs <- fmt.Errorf("%s is left after the run", cmd.Result.Cgroup)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCgroupV2Delegated runs, without root and without --cgroup-parent, in
// the cgroup v2 subtree delegated to the caller, which hakoniwa finds by
// itself: the unprivileged rerun runs inside such a subtree (testutil's
// delegation), as a process of a systemd user session does.
func TestCgroupV2Delegated(t *testing.T) {
	haveCgroups(t, v2Top)
	if os.Geteuid() == 0 {
		t.Skip("root makes its cgroups under /hakoniwa")
	}
	parent := testutil.CgroupParent() // /hakoniwa-test-PID/runs
	if parent == "" {
		t.Skip("no cgroup delegated to this rerun")
	}
	delegated := filepath.Dir(parent)
	c := kiss(t).CgroupVersion(2).Cgroup(true).Rlimit(RlimitCPU, 1)
	r := runResult(t, c, "/bin/sh", "-c", "while :; do :; done")
	if want := delegated + "/hakoniwa/hakoniwa-run-"; !strings.HasPrefix(r.Cgroup, want) {
		t.Errorf("cgroup %q, want one under %s", r.Cgroup, want)
	}
	if r.Status != StatusTLE || !strings.Contains(r.Reason, "whole sandbox") {
		t.Errorf("status %s (%s), want TLE measured on the delegated cgroup", r.Status, r.Reason)
	}
}
