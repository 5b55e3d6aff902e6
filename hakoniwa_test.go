package hakoniwa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"github.com/hakoniwa-go/hakoniwa/policy"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv("HAKONIWA_TEST_HELPER") == "hostile" {
		hostileHelper()
		return
	}
	code := testutil.Both{M: m}.Run()
	if burner.dir != "" {
		os.RemoveAll(burner.dir)
	}
	os.Exit(code)
}

// hostileHelper is a library user that starts a sandbox whose PID 1 clears
// its parent-death signal, prints the sandbox's pid, and waits to be killed.
func hostileHelper() {
	p, err := policy.Default()
	if err != nil {
		panic(err)
	}
	c, err := FromPolicy(p)
	if err != nil {
		panic(err)
	}
	cmd := c.Command("/usr/bin/setpriv", "--pdeathsig", "clear", "--", "/bin/sleep", "102")
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	fmt.Println(cmd.Result.Pid)
	select {}
}

// TestWatchdogKills SIGKILLs a library user whose sandbox cleared its
// parent-death signal: the watchdog still kills the sandbox.
func TestWatchdogKills(t *testing.T) {
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "HAKONIWA_TEST_HELPER=hostile")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper: pid %d, %v", pid, err)
	}
	// Wait until setpriv has cleared the signal and become sleep.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if string(b) == "/bin/sleep\x00102\x00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox never ran sleep: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	helper.Process.Kill()
	helper.Wait()
	deadline = time.Now().Add(time.Second)
	for testutil.Alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the sandbox (pid %d) outlived its SIGKILLed library user", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kiss returns a Container on the default policy.
func kiss(t testing.TB) *Container {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sh runs a shell script in c and returns its stdout; it fails the test if
// the run does not succeed.
func sh(t testing.TB, c *Container, script string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := c.Command("/bin/sh", "-c", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr: %s", script, err, stderr.String())
	}
	return string(out)
}

// shFail runs a script that must fail and returns its combined output.
func shFail(t testing.TB, c *Container, script string) string {
	t.Helper()
	out, err := c.Command("/bin/sh", "-c", script).CombinedOutput()
	if err == nil {
		t.Fatalf("%s: succeeded, want failure; output:\n%s", script, out)
	}
	return string(out)
}

func TestRootListing(t *testing.T) {
	if got := sh(t, kiss(t), "ls /"); got != "bin\ndev\nlib\nlib64\nproc\nusr\n" {
		t.Errorf("ls / = %q", got)
	}
	if got := sh(t, kiss(t), "ls /dev"); got != "null\nrandom\nurandom\nzero\n" {
		t.Errorf("ls /dev = %q", got)
	}
	if got := sh(t, kiss(t), "cat /proc/1/cmdline | tr '\\0' ' '"); got != "/bin/sh -c cat /proc/1/cmdline | tr '\\0' ' ' " {
		t.Errorf("/proc/1/cmdline = %q", got)
	}
}

func TestReadOnly(t *testing.T) {
	// The root itself is read-only unless asked otherwise.
	if out := shFail(t, kiss(t), "touch /x"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("touch /x: %s", out)
	}
	sh(t, kiss(t).RootRW(true), "touch /x && mkdir /y")

	// A read-only bind is read-only on its submounts too: the host's
	// /dev/shm is a world-writable tmpfs under /dev.
	if out := shFail(t, kiss(t).BindRO("/dev", "/hostdev"), "touch /hostdev/shm/hakoniwa-test"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to a submount of a read-only bind: %s", out)
	}
	if _, err := os.Stat("/dev/shm/hakoniwa-test"); err == nil {
		os.Remove("/dev/shm/hakoniwa-test")
		t.Error("the write reached the host")
	}

	// A read-write bind writes through to the host; a read-only one does not.
	dir := t.TempDir()
	sh(t, kiss(t).BindRW(dir, "/data"), "echo hello > /data/f")
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "hello\n" {
		t.Errorf("rw bind: host sees %q, %v", b, err)
	}
	if out := shFail(t, kiss(t).BindRO(dir, "/data"), "echo bye > /data/f"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("ro bind: %s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "hello\n" {
		t.Errorf("ro bind changed the host file: %q", b)
	}
}

// TestProcProtected checks that a command cannot change the host's kernel
// through /proc, even when it is the host's root (uid 0 inside and out).
func TestProcProtected(t *testing.T) {
	for _, c := range []*Container{kiss(t), kiss(t).UID(0).GID(0), kiss(t).UID(1000)} {
		out := shFail(t, c, `v=$(cat /proc/sys/kernel/core_pattern) && echo "$v" > /proc/sys/kernel/core_pattern`)
		want := "Permission denied"
		if os.Getuid() == 0 {
			want = "Read-only file system"
		}
		if !strings.Contains(out, want) {
			t.Errorf("write to core_pattern: %q, want %q", out, want)
		}
		if out := shFail(t, c, "echo 1 > /proc/sys/vm/drop_caches"); !strings.Contains(out, want) {
			t.Errorf("write to drop_caches: %q", out)
		}
	}
	if os.Getuid() != 0 {
		return
	}
	// The host's root also sees the timer list and keys hidden.
	if out := sh(t, kiss(t), "wc -c < /proc/timer_list; grep -c ' /proc/sys ro,' /proc/self/mountinfo"); out != "0\n1\n" {
		t.Errorf("got %q", out)
	}
}

// TestMountsLocked checks that a command with every capability inside (uid
// 0) cannot undo the sandbox's mounts: no remount read-write, no unmount.
func TestMountsLocked(t *testing.T) {
	dir := t.TempDir()
	c := kiss(t).UID(0).GID(0).BindRO(dir, "/ro").Tmpfs("/t", "")
	out := sh(t, c, `grep CapEff /proc/self/status | tr -d '\t'
mount -o remount,bind,rw /ro 2>/dev/null && echo remounted /ro
mount -o remount,rw / 2>/dev/null && echo remounted /
umount /ro 2>/dev/null && echo unmounted /ro
umount -l /proc 2>/dev/null && echo unmounted /proc
mount -o remount,bind,rw /proc/sys 2>/dev/null && echo remounted /proc/sys
touch /ro/pwned 2>/dev/null && echo wrote /ro
true`)
	if out != "CapEff:000001ffffffffff\n" {
		t.Errorf("got %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the host directory was written")
	}
}

// TestDeviceBindInode checks that a bind of a device node, even asked
// read-write, cannot change the host's inode: the host's root inside could
// otherwise chmod the host's /dev/null.
func TestDeviceBindInode(t *testing.T) {
	// As root, a node of our own, so that a failure cannot hurt the
	// host's /dev/null; unprivileged, the host's own.
	node := "/dev/null"
	if os.Getuid() == 0 {
		node = filepath.Join(t.TempDir(), "null")
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(node, 0o666); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	before, err := os.Stat(node)
	if err != nil {
		t.Fatal(err)
	}
	out := sh(t, kiss(t).BindRW(node, "/dev/mynull"), `echo data > /dev/mynull && echo written
chmod 000 /dev/mynull 2>/dev/null || echo chmod refused
touch /dev/mynull 2>/dev/null || echo touch refused`)
	if out != "written\nchmod refused\ntouch refused\n" {
		t.Errorf("got %q", out)
	}
	if after, err := os.Stat(node); err != nil || after.Mode() != before.Mode() || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("host node changed: %v -> %v (%v)", before.Mode(), after.Mode(), err)
	}
}

func TestReadOnlySubmountOwn(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting on the host needs root; TestReadOnly covers the host's own submounts")
	}
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "mode=1777"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(sub, unix.MNT_DETACH)
	if out := shFail(t, kiss(t).BindRO(dir, "/d"), "touch /d/sub/x"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("submount of ro bind: %s", out)
	}
	// And a rw bind keeps the submount writable.
	sh(t, kiss(t).BindRW(dir, "/d"), "touch /d/sub/x")
}

func TestEntries(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*Container)
		script string
		want   string
	}{
		{"tmpfs mode", func(c *Container) { c.Tmpfs("/tmp", "mode=1777") }, "stat -c %a /tmp", "1777\n"},
		{"tmpfs size", func(c *Container) { c.Tmpfs("/tmp", "size=1M") },
			"head -c 2M /dev/zero > /tmp/f 2>/dev/null; stat -c %s /tmp/f", "1048576\n"},
		{"tmpfs ro", func(c *Container) { c.Tmpfs("/t", "ro") }, "touch /t/x 2>&1 | grep -c Read-only", "1\n"},
		{"devfs", func(c *Container) { c.Devfs("/dev") }, "ls /dev | tr '\\n' ' '",
			"core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "},
		{"devfs works", func(c *Container) { c.Devfs("/dev") },
			"head -c 3 /dev/zero | od -An -c | tr -d ' \\n'; echo; readlink /dev/fd /dev/ptmx; ls /dev/pts; stat -c %a /dev/shm; echo x > /dev/shm/y && cat /dev/shm/y",
			"\\0\\0\\0\n/proc/self/fd\npts/ptmx\nptmx\n1777\nx\n"},
		{"proc", func(c *Container) { c.Proc("/proc2") }, "cat /proc2/1/comm", "sh\n"},
		{"symlink", func(c *Container) { c.Symlink("/usr/share", "/s") }, "readlink /s; test -d /s/doc && echo dir", "/usr/share\ndir\n"},
		{"dir", func(c *Container) { c.Dir("/a/b", 0o711) }, "stat -c %a /a/b /a", "711\n755\n"},
		{"file", func(c *Container) { c.File("/etc/x/hello", []byte("hi\nthere")) }, "cat /etc/x/hello; stat -c %a /etc/x/hello", "hi\nthere644\n"},
		{"nested any order", func(c *Container) {
			c.File("/t/a/b/f", []byte("f")).Tmpfs("/t/a", "").Tmpfs("/t", "mode=700")
		}, "cat /t/a/b/f; stat -c %a /t", "f700\n"},
		{"last wins", func(c *Container) { c.File("/f", []byte("one")).File("/f", []byte("two")) }, "cat /f", "two"},
		{"file bind", func(c *Container) { c.BindRO("/etc/hostname", "/h") }, "cat /h", mustRead(t, "/etc/hostname")},
		{"optional missing", func(c *Container) {
			c.AddMount(Mount{Kind: KindBind, Source: "/does/not/exist", Target: "/x", Optional: true})
		}, "ls / | grep -c x; true", "0\n"},
		{"no proc", func(c *Container) { c.NoProc() }, "ls /", "bin\ndev\nlib\nlib64\nusr\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kiss(t)
			tt.setup(c)
			if got := sh(t, c, tt.script); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFileOverBind puts files over files of a host bind: the sandbox sees
// the new contents, read-only, even over a symlink that points nowhere in
// the sandbox, and the host's files are unchanged.
func TestFileOverBind(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "conf"), []byte("host's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../run/elsewhere/conf", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	before := mountinfo(t)
	c := kiss(t).BindRW(host, "/h").File("/h/conf", []byte("sandbox's\n")).File("/h/link", []byte("through the link\n"))
	got := sh(t, c, "cat /h/conf /h/link; echo x > /h/conf || echo refused; echo y > /h/new && echo rw bind; ls /")
	want := "sandbox's\nthrough the link\nrefused\nrw bind\nbin\ndev\nh\nlib\nlib64\nproc\nusr\n"
	if _, err := os.Stat("/lib64"); err != nil {
		want = strings.Replace(want, "lib64\n", "", 1)
	}
	if got != want {
		t.Errorf("got %q, want %q (the staged files must not stay in the root)", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "conf")); string(b) != "host's\n" {
		t.Errorf("the host's file became %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(host, "link")); l != "../run/elsewhere/conf" {
		t.Errorf("the host's symlink became %q", l)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err != nil {
		t.Errorf("the rw bind did not work: %v", err)
	}
	if after := mountinfo(t); after != before {
		t.Errorf("host mounts changed")
	}
}

func mustRead(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIdentity(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	tests := []struct {
		name  string
		setup func(*Container)
		want  string
	}{
		{"default", func(*Container) {}, fmt.Sprintf("%d %d hakoniwa\n", uid, gid)},
		{"root inside", func(c *Container) { c.UID(0).GID(0) }, "0 0 hakoniwa\n"},
		{"other ids", func(c *Container) { c.UID(1234).GID(4321).Hostname("judge") }, "1234 4321 judge\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kiss(t)
			tt.setup(c)
			if got := sh(t, c, "echo $(id -u) $(id -g) $(hostname)"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	host, _ := os.Hostname()
	if got := sh(t, kiss(t).ShareUTS(true), "hostname"); got != host+"\n" {
		t.Errorf("shared uts: hostname %q, want %q", got, host)
	}
	// Inside, the map is of the nested namespace that locks the mounts.
	want := "7 7 1\n"
	if got := sh(t, kiss(t).UID(7), "cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'"); got != want {
		t.Errorf("uid_map %q, want %q", got, want)
	}
}

func TestEnvAndDir(t *testing.T) {
	t.Setenv("HAKONIWA_SECRET", "leak")
	c := kiss(t).Setenv("A", "1").Setenv("B", "2").Setenv("A", "3")
	cmd := c.Command("/bin/sh", "-c", "env | grep -v '^PWD=' | sort; pwd")
	cmd.Env = []string{"B=4", "C=5"}
	cmd.Dir = "/usr/share"
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if strings.Contains(got, "HAKONIWA_SECRET") {
		t.Errorf("the host environment leaked: %s", got)
	}
	for _, want := range []string{"A=3\n", "B=4\n", "C=5\n", "/usr/share\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
}

func TestRlimits(t *testing.T) {
	tests := []struct {
		res   int
		value uint64
		line  string // the row of /proc/self/limits
		want  string
	}{
		{RlimitAS, 1 << 30, "Max address space", "1073741824"},
		{RlimitCore, 0, "Max core file size", "0"},
		{RlimitCPU, 7, "Max cpu time", "7"},
		{RlimitFsize, 1 << 20, "Max file size", "1048576"},
		{RlimitNofile, 64, "Max open files", "64"},
		{RlimitNproc, 500, "Max processes", "500"},
		{RlimitStack, 4 << 20, "Max stack size", "4194304"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if tt.res == RlimitNproc && os.Getuid() == 0 {
				// Linux does not enforce it on the host's root: refused.
				err := kiss(t).Rlimit(tt.res, tt.value).Command("/bin/true").Run()
				if err == nil || !strings.Contains(err.Error(), "does not enforce RLIMIT_NPROC") {
					t.Errorf("nproc as root: %v", err)
				}
				return
			}
			out := sh(t, kiss(t).Rlimit(tt.res, tt.value), "grep '^"+tt.line+"' /proc/self/limits")
			f := strings.Fields(strings.TrimPrefix(out, tt.line))
			if len(f) < 2 || f[0] != tt.want || f[1] != tt.want {
				t.Errorf("%s: got %q, want soft = hard = %s", tt.line, out, tt.want)
			}
		})
	}
	// The limits bite: 64 open files, and a 1 MiB file size.
	if out := sh(t, kiss(t).Rlimit(RlimitNofile, 5), "exec 3</dev/null 4</dev/null; (exec 5</dev/null) 2>/dev/null || echo refused"); !strings.Contains(out, "refused") {
		t.Errorf("nofile 5: %q", out)
	}
}

func TestStatuses(t *testing.T) {
	shebang := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(shebang, []byte("#!/proc/self/exe --version\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		c      func() *Container
		args   []string
		signal func(*Cmd) // sent after start
		status Status
		code   int // -1 for null
		reason string
	}{
		{"exit 0", func() *Container { return kiss(t) }, []string{"/bin/true"}, nil, StatusOK, 0, "exited with code 0"},
		{"exit 3", func() *Container { return kiss(t) }, []string{"/bin/sh", "-c", "exit 3"}, nil, StatusOK, 3, "exited with code 3"},
		{"walltime", func() *Container { return kiss(t).Walltime(300 * time.Millisecond) }, []string{"/bin/sleep", "10"}, nil, StatusTLE, 137, "wall time limit of 300ms exceeded"},
		{"cpu", func() *Container { return kiss(t).Rlimit(RlimitCPU, 1) }, []string{"/bin/sh", "-c", "while :; do :; done"}, nil, StatusTLE, 137, "cpu time limit of 1s exceeded"},
		{"fsize", func() *Container { return kiss(t).Rlimit(RlimitFsize, 1024).Tmpfs("/t", "") },
			[]string{"/bin/sh", "-c", "head -c 1M /dev/zero > /t/f"}, nil, StatusOLE, 153, "file size limit exceeded"},
		{"external SIGKILL is not TLE", func() *Container { return kiss(t) }, []string{"/bin/sleep", "10"},
			func(c *Cmd) { c.Signal(syscall.SIGKILL) }, StatusSIG, 137, "signaled: SIGKILL"},
		{"SIGTERM with a handler", func() *Container { return kiss(t) }, []string{"/bin/sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.01; done"},
			func(c *Cmd) { time.Sleep(100 * time.Millisecond); c.Signal(syscall.SIGTERM) }, StatusOK, 42, "exited with code 42"},
		{"SIGTERM ignored by PID 1, then SIGKILL after the grace", func() *Container { return kiss(t) }, []string{"/bin/sleep", "10"},
			func(c *Cmd) { c.Terminate(syscall.SIGTERM, 200*time.Millisecond) }, StatusSIG, 137, "still running 200ms after terminated"},
		{"not found inside", func() *Container { return kiss(t) }, []string{"/nonexistent"}, nil, StatusSE, 127, "/nonexistent: no such file or directory"},
		{"magic link to the host's binary", func() *Container { return kiss(t) }, []string{"/proc/self/exe"}, nil, StatusSE, 126, "magic link"},
		{"magic link as a script's interpreter", func() *Container { return kiss(t).BindRO(shebang, "/s") }, []string{"/s"}, nil, StatusSE, 126, "magic link"},
		{"not executable", func() *Container { return kiss(t).File("/x", []byte("#!/bin/sh\n")) }, []string{"/x"}, nil, StatusSE, 126, "permission denied"},
		{"not in PATH", func() *Container { return kiss(t) }, []string{"no-such-command-hakoniwa"}, nil, StatusSE, 127, "command not found"},
		{"setup error", func() *Container { return kiss(t).BindRO("/no/such/dir", "/x") }, []string{"/bin/true"}, nil, StatusSE, -1, "/no/such/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.c().Command(tt.args[0], tt.args[1:]...)
			err := cmd.Start()
			if err == nil {
				if tt.signal != nil {
					tt.signal(cmd)
				}
				err = cmd.Wait()
			}
			r := cmd.Result
			if r == nil {
				t.Fatalf("no result; err %v", err)
			}
			code := -1
			if r.ExitCode != nil {
				code = *r.ExitCode
			}
			if r.Status != tt.status || code != tt.code || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("got %s %d %q, want %s %d containing %q", r.Status, code, r.Reason, tt.status, tt.code, tt.reason)
			}
			if (err == nil) != (tt.status == StatusOK && tt.code == 0) {
				t.Errorf("err = %v", err)
			}
			if r.StartTime.IsZero() {
				t.Error("no start time")
			}
			if tt.status != StatusSE && (r.RealTime == nil || r.UserTime == nil || r.SystemTime == nil || r.MaxRSS <= 0) {
				t.Errorf("missing times or max_rss: %s", r.JSON())
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	cmd := kiss(t).Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	js := cmd.Result.JSON()
	keys := []string{`"status":"OK"`, `"reason":`, `"exit_code":0`, `"start_time":"`, `"real_time":{"secs":0,"nanos":`, `"system_time":{"secs":`, `"user_time":{"secs":`, `"max_rss":`}
	last := -1
	for _, k := range keys {
		i := strings.Index(js, k)
		if i < 0 || i < last {
			t.Fatalf("%s missing or out of order in %s", k, js)
		}
		last = i
	}
	var back Result
	if err := json.Unmarshal([]byte(js), &back); err != nil {
		t.Fatal(err)
	}
	if *back.RealTime != *cmd.Result.RealTime || back.Status != StatusOK {
		t.Errorf("round trip: %+v", back)
	}
	if !strings.HasSuffix(cmd.Result.StartTime.Format(time.RFC3339Nano), "Z") {
		t.Errorf("start time not in UTC: %v", cmd.Result.StartTime)
	}
}

// TestMaxRSS checks that max_rss is reported in KiB, reaches the command's
// own peak, and with CopyMemory is not inflated by the caller.
func TestMaxRSS(t *testing.T) {
	rss := func(c *Container, args ...string) int64 {
		cmd := c.Command(args[0], args[1:]...)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		return cmd.Result.MaxRSS
	}
	dd := []string{"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=48M", "count=1"}
	for _, copyMem := range []bool{false, true} {
		if big := rss(kiss(t).CopyMemory(copyMem), dd...); big < 48<<10 || big > 96<<10 {
			t.Errorf("copy %v: max_rss of a 48 MiB dd = %d KiB", copyMem, big)
		}
	}
	if small := rss(kiss(t).CopyMemory(true), "/bin/true"); small <= 0 || (small > 8<<10 && !raceEnabled) {
		t.Errorf("max_rss of /bin/true = %d KiB", small)
	}
}

func TestStdio(t *testing.T) {
	cmd := kiss(t).Command("/bin/sh", "-c", "cat; echo err >&2")
	cmd.Stdin = strings.NewReader("input\n")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "input\nerr\n" {
		t.Errorf("got %q, %v", out, err)
	}
	// Output captures stderr into the ExitError.
	_, err = kiss(t).Command("/bin/sh", "-c", "echo oops >&2; exit 1").Output()
	var ee *ExitError
	if !errors.As(err, &ee) || string(ee.Stderr) != "oops\n" || ee.ExitCode() != 1 {
		t.Errorf("Output error %v", err)
	}
}

// funcWriter is a writer of a type that cannot be compared.
type funcWriter struct{ write func([]byte) (int, error) }

func (w funcWriter) Write(b []byte) (int, error) { return w.write(b) }

func TestStdioEdgeCases(t *testing.T) {
	// A failed start returns at once, even when Stdin never ends.
	pr, pw := io.Pipe()
	defer pw.Close()
	cmd := kiss(t).Command("/bin/cat")
	cmd.Stdin = pr
	cmd.Dir = "/no/such/dir"
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "chdir /no/such/dir") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start hangs after a setup failure")
	}

	// Writers of types that cannot be compared work.
	var got bytes.Buffer
	var mu sync.Mutex
	write := func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return got.Write(b)
	}
	cmd = kiss(t).Command("/bin/sh", "-c", "echo out; echo err >&2")
	cmd.Stdout, cmd.Stderr = funcWriter{write}, funcWriter{write}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if s := got.String(); !strings.Contains(s, "out\n") || !strings.Contains(s, "err\n") {
		t.Errorf("got %q", s)
	}
}

func TestFdHygiene(t *testing.T) {
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// Without --keep-fd only 0-2 exist, plus the fd ls opens itself.
	got := sh(t, kiss(t), "ls /proc/self/fd | tr '\\n' ' '")
	if got != "0 1 2 3 " {
		t.Errorf("fds inside: %q", got)
	}
	// Whatever fd the host file got, it is not there; with KeepFds it is.
	// (bash: dash takes one-digit fds only.)
	cmd := kiss(t).Command("/bin/bash", "-c", "cat <&"+strconv.Itoa(fd))
	cmd.KeepFds = []int{fd}
	out, err := cmd.Output()
	if err != nil || string(out) != mustRead(t, "/etc/hostname") {
		t.Errorf("kept fd %d: %q %v", fd, out, err)
	}
	if out, _ := kiss(t).Command("/bin/bash", "-c", "cat <&"+strconv.Itoa(fd)).CombinedOutput(); !strings.Contains(string(out), "Bad file descriptor") {
		t.Errorf("fd %d without keep: %q", fd, out)
	}
	// The cwd of the sandbox cannot be reached through /proc/self/fd.
	if out := shFail(t, kiss(t), "cd /proc/self/fd/"+strconv.Itoa(fd)); out == "" {
		t.Error("cd into a host fd succeeded")
	}
}

func TestSessionAndNoNewPrivs(t *testing.T) {
	// The command leads its own session (sid 1 inside) and has no_new_privs.
	out := sh(t, kiss(t), "cut -d' ' -f6 /proc/self/stat; grep NoNewPrivs /proc/self/status | tr -d '\\t '")
	if out != "1\nNoNewPrivs:1\n" {
		t.Errorf("got %q", out)
	}
	out = sh(t, kiss(t).AllowNewPrivs(true), "grep NoNewPrivs /proc/self/status | tr -d '\\t '")
	if out != "NoNewPrivs:0\n" {
		t.Errorf("allow new privs: %q", out)
	}
}

func TestNamespaces(t *testing.T) {
	// A new net namespace has only lo, and it is down.
	if out := sh(t, kiss(t), "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"); out != "lo\n" {
		t.Errorf("interfaces: %q", out)
	}
	// The host's interfaces, less the veths that test binaries running
	// beside this one make and remove.
	const ifaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | grep -v ^hkt"
	hostIfaces, err := exec.Command("/bin/sh", "-c", ifaces).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out := sh(t, kiss(t).ShareNet(true), ifaces); out != string(hostIfaces) {
		t.Errorf("shared net: %q, the host's %q", out, hostIfaces)
	}
	// Each namespace is new unless shared.
	for _, ns := range []string{"ipc", "net", "uts", "cgroup", "pid", "mnt", "user"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		inside := strings.TrimSpace(sh(t, kiss(t), "readlink /proc/self/ns/"+ns))
		if inside == host {
			t.Errorf("%s namespace is the host's", ns)
		}
	}
	host, _ := os.Readlink("/proc/self/ns/ipc")
	if inside := strings.TrimSpace(sh(t, kiss(t).ShareIPC(true), "readlink /proc/self/ns/ipc")); inside != host {
		t.Errorf("ShareIPC: %s != %s", inside, host)
	}
	host, _ = os.Readlink("/proc/self/ns/cgroup")
	if inside := strings.TrimSpace(sh(t, kiss(t).ShareCgroup(true), "readlink /proc/self/ns/cgroup")); inside != host {
		t.Errorf("ShareCgroup: %s != %s", inside, host)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		c    func() *Container
		want string
	}{
		{"missing source", func() *Container { return kiss(t).BindRO("/no/such", "/x") }, "bind /no/such:/x: stat /no/such: no such file or directory"},
		{"relative target", func() *Container { return kiss(t).Tmpfs("rel", "") }, "target must be an absolute path"},
		{"relative source", func() *Container { return kiss(t).BindRO("rel", "/x") }, "source must be an absolute path"},
		{"bad tmpfs size", func() *Container { return kiss(t).Tmpfs("/t", "size=lots") }, `bad size "lots"`},
		{"unknown tmpfs option", func() *Container { return kiss(t).Tmpfs("/t", "exec") }, `unknown option "exec"`},
		{"uid out of range", func() *Container { return kiss(t).UID(1 << 32) }, "uid 4294967296: out of range"},
		{"negative gid", func() *Container { return kiss(t).GID(-1) }, "gid -1: out of range"},
		{"hostname too long", func() *Container { return kiss(t).Hostname(strings.Repeat("h", 65)) }, "must be 1-64 bytes"},
		{"hostname with shared uts", func() *Container { return kiss(t).ShareUTS(true).Hostname("x") }, "host's is shared"},
		{"file inside a bind", func() *Container { return kiss(t).File("/usr/x", nil) }, "file /usr/x: lies in the bind of /usr at /usr, and /usr/x does not exist"},
		{"file over a directory of a bind", func() *Container { return kiss(t).File("/usr/lib", nil) }, "file /usr/lib: lies in the bind of /usr at /usr, and /usr/lib is a directory"},
		{"file inside a proc", func() *Container { return kiss(t).File("/proc/x", nil) }, "file /proc/x: lies inside the proc at /proc"},
		{"mount point missing in a bind", func() *Container { return kiss(t).Tmpfs("/usr/no-such-dir", "") }, "does not exist: hakoniwa does not create mount points on the host"},
		{"replace root", func() *Container { return kiss(t).Tmpfs("/", "") }, "cannot replace the root"},
		{"NUL in path", func() *Container { return kiss(t).Tmpfs("/a\x00b", "") }, "NUL"},
		{"dir mode", func() *Container { return kiss(t).Dir("/d", 0o17777) }, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.c().Command("/bin/true")
			err := cmd.Run()
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a ConfigError containing %q", err, tt.want)
			}
			if cmd.Result == nil || cmd.Result.Status != StatusSE || cmd.Result.ExitCode != nil {
				t.Errorf("result %+v", cmd.Result)
			}
		})
	}
	var se *SetupError
	// KeepFds of a closed fd.
	cmd := kiss(t).Command("/bin/true")
	cmd.KeepFds = []int{999}
	if err := cmd.Run(); !errors.As(err, &se) || !strings.Contains(err.Error(), "keep-fd 999: not an open file descriptor") {
		t.Errorf("keep closed fd: %v", err)
	}
}

// TestSymlinkPlanted checks that a symlink in the way of a mount or a file
// never redirects it out of the new root.
func TestSymlinkPlanted(t *testing.T) {
	host := t.TempDir()
	victim := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(host, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(host, "root")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    func() *Container
	}{
		{"tmpfs on a symlink in a bind", func() *Container { return kiss(t).BindRW(host, "/h").Tmpfs("/h/evil", "") }},
		{"tmpfs below a symlink in a bind", func() *Container { return kiss(t).BindRW(host, "/h").Tmpfs("/h/root/tmp", "") }},
		{"file below a symlink in a bind", func() *Container { return kiss(t).BindRW(host, "/h").File("/h/evil/pwned", []byte("x")) }},
		{"file below our own symlink to a bind", func() *Container {
			return kiss(t).BindRW(victim, "/v").Symlink("/v", "/link").File("/link/pwned", []byte("x"))
		}},
		{"tmpfs below our own symlink", func() *Container {
			return kiss(t).BindRW(victim, "/v").Symlink("/v", "/link").Tmpfs("/link/pwned", "")
		}},
		{"file bind below our own symlink", func() *Container {
			return kiss(t).BindRW(victim, "/v").Symlink("/v", "/link").BindRO("/etc/hostname", "/link/pwned")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mountinfo(t)
			err := tt.c().Command("/bin/true").Run()
			if err == nil {
				t.Error("setup succeeded")
			}
			t.Log(err)
			if entries, _ := os.ReadDir(victim); len(entries) != 0 {
				t.Errorf("something was created on the host: %v", entries)
			}
			if after := mountinfo(t); after != before {
				t.Errorf("host mounts changed")
			}
		})
	}
}

// TestSymlinkRace swaps a directory in a bind source for a symlink to a
// host directory while sandboxes mount on it: the check before the clone can
// be raced, but the child never follows the symlink.
func TestSymlinkRace(t *testing.T) {
	host, victim := t.TempDir(), t.TempDir()
	sw := filepath.Join(host, "sw")
	stop := make(chan struct{})
	done := make(chan struct{})
	swap := func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Mkdir(sw, 0o755)
			runtime.Gosched()
			os.Remove(sw)
			os.Symlink(victim, sw)
			runtime.Gosched()
			os.Remove(sw)
		}
	}
	// Without the race, the same sandbox sets up.
	os.Mkdir(sw, 0o755)
	if err := kiss(t).BindRW(host, "/h").Tmpfs("/h/sw", "").File("/h/sw/f", []byte("x")).Command("/bin/true").Run(); err != nil {
		t.Fatalf("without the race: %v", err)
	}
	os.Remove(sw)
	go swap()
	before := mountinfo(t)
	ok, failed := 0, 0
	for i := 0; i < 100; i++ {
		c := kiss(t).BindRW(host, "/h").Tmpfs("/h/sw", "").File("/h/sw/f", []byte("x"))
		if err := c.Command("/bin/true").Run(); err != nil {
			failed++
		} else {
			ok++
		}
	}
	close(stop)
	<-done
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("the race reached the host: %v", entries)
	}
	if mountinfo(t) != before {
		t.Error("host mounts changed")
	}
	t.Logf("%d runs set up, %d refused", ok, failed)
}

func mountinfo(t testing.TB) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNothingLeft checks that runs leave no mounts, temp dirs, processes or
// fds behind on the host.
func TestNothingLeft(t *testing.T) {
	before := mountinfo(t)
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "*"))
	fdsBefore := countFds(t)
	for i := 0; i < 5; i++ {
		cmd := kiss(t).Devfs("/dev").Tmpfs("/tmp", "").Command("/bin/sh", "-c", "sleep 100.25 & sleep 100.25 & true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
	}
	if after := mountinfo(t); after != before {
		t.Errorf("host mounts changed:\n%s", after)
	}
	tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "*"))
	if len(tmpAfter) != len(tmpBefore) {
		t.Errorf("temp dir entries: %d before, %d after", len(tmpBefore), len(tmpAfter))
	}
	if n := countFds(t); n != fdsBefore {
		t.Errorf("fds: %d before, %d after", fdsBefore, n)
	}
	// The background sleeps died with PID 1.
	time.Sleep(50 * time.Millisecond)
	if out := children(t); out != "" {
		t.Errorf("processes left: %s", out)
	}
}

func countFds(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// children lists the processes whose parent is this test, or that run
// "sleep 100.25", which only this package's tests run (other packages' tests
// run at the same time).
func children(t testing.TB) string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if _, ppid, ok := testutil.ProcStat(pid); ok && ppid == os.Getpid() {
			out = append(out, string(b))
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		if string(cmdline) == "sleep\x00100.25\x00" {
			out = append(out, string(b))
		}
	}
	return strings.Join(out, "\n")
}

// TestThreadExit checks that a library user's goroutine whose thread exits
// does not kill the sandbox it started: the parent-death signal is tied to
// our own spawning thread, not the caller's.
func TestThreadExit(t *testing.T) {
	started := make(chan *Cmd)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		cmd := kiss(t).Command("/bin/sleep", "1")
		if err := cmd.Start(); err != nil {
			t.Error(err)
			close(started)
			return
		}
		started <- cmd
	}()
	cmd := <-started
	if cmd == nil {
		return
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandbox did not survive the caller's thread exit: %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	cmd := kiss(t).CommandContext(ctx, "/bin/sleep", "10")
	err := cmd.Run()
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	if cmd.Result.Status != StatusSIG || !strings.Contains(cmd.Result.Reason, "context deadline exceeded") {
		t.Errorf("result %s", cmd.Result.JSON())
	}
}

// TestWatchdog checks that runs with a watchdog work and leave neither fds
// nor zombie watchdogs behind.
func TestWatchdog(t *testing.T) {
	c := kiss(t) // the watchdog is on by default
	run := func() {
		out, err := c.Command("/bin/sh", "-c", "sleep 0.01; echo ok").Output()
		if err != nil || string(out) != "ok\n" {
			t.Fatalf("%q %v", out, err)
		}
	}
	settle := func() {
		deadline := time.Now().Add(2 * time.Second)
		for children(t) != "" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the reaper closes its pidfd
	}
	run()
	settle()
	fds := countFds(t)
	for i := 0; i < 30; i++ {
		run()
	}
	settle()
	if out := children(t); out != "" {
		t.Errorf("processes left: %s", out)
	}
	if n := countFds(t); n != fds {
		t.Errorf("fds: %d -> %d", fds, n)
	}
}

// TestManyRuns runs 300 sandboxes and checks that fds, goroutines and memory
// do not grow.
func TestManyRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := kiss(t)
	run := func() {
		out, err := c.Command("/bin/echo", "x").Output()
		if err != nil || string(out) != "x\n" {
			t.Fatalf("%q %v", out, err)
		}
	}
	for i := 0; i < 20; i++ {
		run()
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	fds, gs := countFds(t), runtime.NumGoroutine()
	for i := 0; i < 300; i++ {
		run()
	}
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if n := countFds(t); n != fds {
		t.Errorf("fds: %d -> %d", fds, n)
	}
	if n := runtime.NumGoroutine(); n > gs {
		t.Errorf("goroutines: %d -> %d", gs, n)
	}
	if grow := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grow > 1<<20 {
		t.Errorf("heap grew by %d bytes over 300 runs", grow)
	}
}
