// Package attack tries to break out of real sandboxes the way hostile code
// would, on the default settings (the CLI's: the embedded KISS policy and
// the default seccomp profile) and, where it matters, on the most
// permissive ones a user might pick, and checks that every attempt fails
// safely. Each test names the escape class of docs/SECURITY.md it tries.
package attack

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"github.com/hakoniwa-go/hakoniwa/policy"
	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { os.Exit(testutil.Both{M: m}.Run()) }

// sandbox is the CLI's default sandbox: the KISS policy and the default
// seccomp profile.
func sandbox(t *testing.T) *hakoniwa.Container {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	c, err := hakoniwa.FromPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c.Seccomp(prof)
}

// permissive is the most permissive sandbox a user might pick: no
// seccomp filter, root inside, the host's network.
func permissive(t *testing.T) *hakoniwa.Container {
	return sandbox(t).Seccomp(nil).UID(0).GID(0)
}

// python runs a python script in c and returns its output; a run that the
// sandbox killed returns what it printed before.
func python(t *testing.T, c *hakoniwa.Container, script string, args ...string) string {
	t.Helper()
	cmd := c.Walltime(20*time.Second).Command("/usr/bin/python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *hakoniwa.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// pySyscalls makes each system call (name, number, arguments) and prints
// "name: ok" or "name: ERRNO".
const pySyscalls = `import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(4096)
calls = [
    ("unshare_user", 272, 0x10000000),            # CLONE_NEWUSER
    ("mount", 165, b"none", b"/tmp", b"tmpfs", 0, 0),
    ("fsopen", 430, b"tmpfs", 0),
    ("open_tree", 428, -100, b"/", 1),            # OPEN_TREE_CLONE
    ("move_mount", 429, -100, b"/usr", -100, b"/bin", 0),
    ("pivot_root", 155, b"/", b"/"),
    ("open_by_handle_at", 304, -100, buf, 0),
    ("kexec_load", 246, 0, 0, 0, 0),
    ("init_module", 175, buf, 16, b""),
    ("bpf", 321, 0, buf, 48),                     # BPF_MAP_CREATE
    ("perf_event_open", 298, buf, 0, -1, -1, 0),
    ("userfaultfd", 323, 0),
    ("keyctl", 250, 0, -3, 0),                    # KEYCTL_GET_KEYRING_ID of the user keyring
    ("io_uring_setup", 425, 8, buf),
]
only = set(sys.argv[1:])
for name, nr, *args in calls:
    if only and name not in only:
        continue
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(nr, *args)
    e = ctypes.get_errno()
    print(name + ":", "ok" if r >= 0 else errno.errorcode.get(e, str(e)), flush=True)
`

// TestDangerousSyscalls: with the default profile, every system call an
// escape has used fails (peers.md: namespaces and mounts, kernel modules
// and kexec, bpf, perf, userfaultfd, the keyring, io_uring). With no
// filter at all, those that only the host's root may make still fail.
func TestDangerousSyscalls(t *testing.T) {
	got := python(t, sandbox(t), pySyscalls)
	for _, line := range strings.Split(got, "\n") {
		name, result, _ := strings.Cut(line, ": ")
		if result == "ok" || result == "" {
			t.Errorf("default profile: %s succeeded (%q)", name, line)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 14 {
		t.Errorf("%d of 14 calls reported:\n%s", n, got)
	}
	// (EPERM, or ENOSYS on a kernel without modules or kexec, or EINVAL
	// for a handle the kernel checks before the capability.)
	got = python(t, permissive(t), pySyscalls, "kexec_load", "init_module", "open_by_handle_at")
	for _, line := range strings.Split(got, "\n") {
		if name, result, _ := strings.Cut(line, ": "); result == "ok" || result == "" {
			t.Errorf("no filter: %s: %q", name, line)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 3 {
		t.Errorf("%d of 3 calls reported:\n%s", n, got)
	}
}

// TestOtherABIs makes a denied call through the x32 ABI (the number with
// bit 30 set), which a filter that checks only the number would let by,
// and through int 0x80 (i386), from a program gcc builds, where the CPU
// and kernel run it.
func TestOtherABIs(t *testing.T) {
	// x32 getpid: not the pid, and not a success.
	x32 := `import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.syscall(0x40000000 | 39), ctypes.get_errno())
`
	cmd := sandbox(t).Command("/usr/bin/python3", "-c", x32)
	out, err := cmd.CombinedOutput()
	fields := strings.Fields(string(out))
	refused := err == nil && len(fields) == 2 && fields[0] == "-1" // an errno
	if !refused && !strings.Contains(cmd.Result.Reason, "SIGSYS") {
		t.Errorf("x32 getpid: %q, %v (%s): neither an errno nor killed by the filter", out, err, cmd.Result.Reason)
	}
	t.Logf("x32: %q %v (%s)", out, err, cmd.Result.Reason)

	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("under CI, gcc must be there")
		}
		t.Skip("no gcc for the int 0x80 program")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "int80.c")
	// i386 unshare(CLONE_NEWUSER): number 310 there.
	os.WriteFile(src, []byte(`#include <stdio.h>
int main(void) {
	long r;
	__asm__ volatile ("int $0x80" : "=a"(r) : "a"(310), "b"(0x10000000) : "memory");
	printf("%ld\n", r);
	return r == 0;
}
`), 0o644)
	bin := filepath.Join(dir, "int80")
	if out, err := exec.Command(gcc, "-static", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc cannot build a static program here: %v\n%s", err, out)
	}
	// On the host first: where the kernel has no i386 entry (the
	// program dies, or gets ENOSYS), say so and skip only this case.
	hostOut, _ := exec.Command(bin).CombinedOutput()
	if r, err := strconv.Atoi(strings.TrimSpace(string(hostOut))); err != nil || r == -int(syscall.ENOSYS) {
		t.Skipf("int 0x80 does not run on this host: %q", hostOut)
	}
	cmd = sandbox(t).BindRO(bin, "/int80").Command("/int80")
	out, err = cmd.CombinedOutput()
	r, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if !strings.Contains(cmd.Result.Reason, "SIGSYS") && (perr != nil || r >= 0) {
		t.Errorf("int 0x80 unshare(CLONE_NEWUSER): %q, %v (%s): neither an errno nor killed by the filter", out, err, cmd.Result.Reason)
	}
	t.Logf("int 0x80: %q (%s)", out, cmd.Result.Reason)
}

// TestHostInterfacesReadOnly writes what changes the host's kernel:
// /proc/sys, /proc/sysrq-trigger, and /sys with /sys/fs/cgroup bound in.
// Even root inside (the host's root, for a root caller) is refused.
func TestHostInterfacesReadOnly(t *testing.T) {
	script := `import sys
for p in sys.argv[1:]:
    try:
        with open(p, "w") as f:
            f.write("0\n")
        print(p, "written")
    except OSError as e:
        print(p, "refused")
`
	targets := []string{"/proc/sys/vm/drop_caches", "/proc/sys/kernel/panic", "/proc/sysrq-trigger", "/sys/kernel/uevent_helper", "/sys/fs/cgroup/cgroup.procs"}
	for _, c := range []*hakoniwa.Container{sandbox(t).BindRO("/sys", "/sys"), permissive(t).BindRO("/sys", "/sys")} {
		got := python(t, c, script, targets...)
		if strings.Contains(got, "written") {
			t.Errorf("a host interface was written:\n%s", got)
		}
		if strings.Count(got, "refused") != len(targets) {
			t.Errorf("got\n%s", got)
		}
	}
}

// TestSignalsStayInside: kill(-1) kills only the sandbox, and a host pid
// is not even visible: a host process the test started survives.
func TestSignalsStayInside(t *testing.T) {
	host := exec.Command("sleep", "60")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer host.Process.Kill()
	script := `import os, signal, sys
try:
    os.kill(int(sys.argv[1]), 0)
    print("host pid visible")
except ProcessLookupError:
    print("host pid ESRCH")
try:
    os.kill(-1, signal.SIGKILL)  # every process it may signal, but itself and pid 1
except ProcessLookupError:
    pass
print("survived kill(-1)")
`
	for _, c := range []*hakoniwa.Container{sandbox(t), permissive(t).ShareNet(true)} {
		got := python(t, c, script, strconv.Itoa(host.Process.Pid))
		if got != "host pid ESRCH\nsurvived kill(-1)" {
			t.Errorf("got %q", got)
		}
		if err := host.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("the host's process died: %v", err)
		}
	}
}

// TestDaemonGone: a daemon that double-forks, calls setsid and ignores
// SIGTERM is gone when the command exits, and after a walltime kill.
func TestDaemonGone(t *testing.T) {
	for _, wall := range []time.Duration{0, 500 * time.Millisecond} {
		marker := fmt.Sprintf("%d.%d", 7000+os.Getpid()%1000, time.Now().UnixNano()%1000)
		script := `import os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.execv("/bin/sleep", ["sleep", sys.argv[1]])
    os._exit(0)
time.sleep(0.2)
if sys.argv[2] == "wait":
    time.sleep(30)
`
		how := "exit"
		if wall > 0 {
			how = "wait"
		}
		c := sandbox(t)
		if wall > 0 {
			c.Walltime(wall)
		}
		cmd := c.Command("/usr/bin/python3", "-c", script, marker, how)
		cmd.Run()
		if wall > 0 && cmd.Result.Status != hakoniwa.StatusTLE {
			t.Errorf("walltime: status %s", cmd.Result.Status)
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "sleep\x00"+marker) {
				t.Errorf("the daemon is left after %s: %s", how, p)
			}
		}
	}
}

// TestTIOCSTI pushes input into a terminal shared with the caller: TIOCSTI,
// TIOCSTI with high bits set in the request (a filter that compares all
// 64 bits would miss it, the kernel ignores them), and TIOCLINUX. Each is
// refused, and the terminal's input queue, which the caller reads, stays
// empty.
func TestTIOCSTI(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	script := `import fcntl, errno
for name, req, arg in (("TIOCSTI", 0x5412, b"X"), ("TIOCSTI high bits", 0xffffffff00005412, b"Y"), ("TIOCLINUX", 0x541c, bytes([2]))):
    try:
        fcntl.ioctl(0, req, arg)
        print(name, "done")
    except OverflowError:
        print(name, "too large for python")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
`
	for _, c := range []*hakoniwa.Container{sandbox(t), permissive(t)} {
		cmd := c.Command("/usr/bin/python3", "-c", script)
		cmd.Stdin = slave
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if strings.Contains(string(out), "done") {
			t.Errorf("an ioctl went through:\n%s", out)
		}
		t.Logf("%s", out)
	}
	// The caller's side of the terminal reads what was typed into it:
	// nothing.
	fd := int(slave.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Read(fd, buf); n > 0 || err != unix.EAGAIN {
		t.Errorf("the caller's input queue got %q (%v)", buf[:max(n, 0)], err)
	}
}

// TestInheritedFds opens fds up to 200 in the caller, among them a host
// directory and a socket: inside only 0-2 exist (and the one ls opens),
// KeepFds passes exactly the one asked for, and a closed fd is no way to
// the host's directory.
func TestInheritedFds(t *testing.T) {
	dir, err := os.Open("/etc")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	sock, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(sock)
	var opened []int
	for fd := 3; fd <= 200; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			continue
		}
		if err := unix.Dup3(int(dir.Fd()), fd, 0); err != nil {
			t.Fatal(err)
		}
		opened = append(opened, fd)
	}
	defer func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}()
	got := python(t, sandbox(t), "import os; print(sorted(os.listdir('/proc/self/fd')))")
	if got != "['0', '1', '2', '3']" {
		t.Errorf("fds inside: %s", got)
	}
	keep := opened[len(opened)-1]
	cmd := sandbox(t).Walltime(20*time.Second).Command("/usr/bin/python3", "-c", "import os; print(sorted(os.listdir('/proc/self/fd'), key=int))")
	cmd.KeepFds = []int{keep, sock}
	out, err := cmd.Output()
	if want := fmt.Sprintf("['0', '1', '2', '3', '%d', '%d']", min(keep, sock), max(keep, sock)); err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("with KeepFds %d and %d: %q %v, want %s", keep, sock, out, err, want)
	}
	got = python(t, sandbox(t), fmt.Sprintf(`import os
try:
    os.chdir("/proc/self/fd/%d"); print("reached", os.listdir("."))
except OSError as e:
    print("refused")`, opened[0]))
	if got != "refused" {
		t.Errorf("chdir through a closed fd: %s", got)
	}
}

// TestSetuidBinary runs a setuid-root binary, made by root in a rw bind,
// as a user other than root inside: it gains nothing. The binary is cat,
// reading its own status: its uid stays the user's, no_new_privs is set,
// and it has no capability; the same with no_new_privs lifted and no
// filter (binds are nosuid).
func TestSetuidBinary(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("making a setuid-root binary needs root: the root run covers it")
	}
	b, _ := os.ReadFile("/etc/subuid")
	if !strings.Contains(string(b), fmt.Sprintf("root:%d:", testutil.RootSubID)) {
		t.Skip("no /etc/subuid range for root (the tests' setup adds one)")
	}
	dir, err := os.MkdirTemp("/tmp", "hakoniwa-suid-") // reachable by the subordinate ids
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	cat, err := os.ReadFile("/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(dir, "cat")
	if err := os.WriteFile(suid, cat, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o4755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*hakoniwa.Container{sandbox(t), sandbox(t).Seccomp(nil).AllowNewPrivs(true)} {
		c.UserNSAuto(true).User("1000:1000").BindRW(dir, "/s")
		cmd := c.Command("/s/cat", "/proc/self/status")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		if fields["Uid"] != "1000 1000 1000 1000" || fields["CapEff"] != "0000000000000000" || fields["CapPrm"] != "0000000000000000" {
			t.Errorf("the setuid binary got Uid %q, CapEff %q, CapPrm %q", fields["Uid"], fields["CapEff"], fields["CapPrm"])
		}
		if want := []string{"1", "0"}[i]; fields["NoNewPrivs"] != want {
			t.Errorf("NoNewPrivs %q, want %s", fields["NoNewPrivs"], want)
		}
	}
}

// TestExeWrite writes to /proc/self/exe and /proc/1/exe from inside, as
// root inside: refused, and the program is unchanged.
func TestExeWrite(t *testing.T) {
	before, err := os.ReadFile("/usr/bin/python3")
	if err != nil {
		t.Skip(err)
	}
	script := `for p in ("/proc/self/exe", "/proc/1/exe"):
    try:
        with open(p, "r+b") as f:
            f.write(b"\0")
        print(p, "written")
    except OSError as e:
        print(p, "refused")
`
	for _, c := range []*hakoniwa.Container{sandbox(t), permissive(t)} {
		if got := python(t, c, script); got != "/proc/self/exe refused\n/proc/1/exe refused" {
			t.Errorf("got %q", got)
		}
	}
	if after, _ := os.ReadFile("/usr/bin/python3"); !bytes.Equal(before, after) {
		t.Fatal("the program changed")
	}
}

// TestHostNotReachable: what the host has must not be reachable from
// inside: an abstract unix socket it listens on, a SysV shared memory
// segment, a file in its /dev/shm, and a key in the caller's user keyring.
func TestHostNotReachable(t *testing.T) {
	name := fmt.Sprintf("hakoniwa-attack-%d", os.Getpid())
	ln, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host\n"))
			c.Close()
		}
	}()
	key := 0x4b000000 | os.Getpid()&0xffff
	shm, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(shm, unix.IPC_RMID, nil)
	shmFile := filepath.Join("/dev/shm", name)
	if err := os.WriteFile(shmFile, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shmFile)
	keyID, err := unix.AddKey("user", name, []byte("secret"), unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.KeyctlInt(unix.KEYCTL_INVALIDATE, keyID, 0, 0, 0)

	script := `import ctypes, errno, os, socket, sys
name, key = sys.argv[1], int(sys.argv[2])
try:
    s = socket.socket(socket.AF_UNIX); s.connect("\0" + name); print("socket", s.recv(10))
except OSError as e:
    print("socket", errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
r = libc.shmget(key, 0, 0)
print("shm", "found" if r >= 0 else errno.errorcode[ctypes.get_errno()])
print("dev/shm", os.path.exists("/dev/shm/" + name))
r = libc.syscall(250, 10, -4, b"user", name.encode(), 0)  # KEYCTL_SEARCH in the user keyring
print("key", "found" if r >= 0 else errno.errorcode[ctypes.get_errno()])
`
	for _, c := range []*hakoniwa.Container{sandbox(t).Devfs("/dev"), permissive(t).Devfs("/dev")} {
		got := python(t, c, script, name, strconv.Itoa(key))
		lines := strings.Split(got, "\n")
		if len(lines) != 4 || lines[0] != "socket ECONNREFUSED" || lines[1] != "shm ENOENT" || lines[2] != "dev/shm False" || !strings.HasPrefix(lines[3], "key E") {
			t.Errorf("got\n%s", got)
		}
	}
	// The attack is real: the host itself reaches all four.
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", name, 0); err != nil {
		t.Errorf("the host's own key: %v", err)
	}
	c, err := net.Dial("unix", "@"+name)
	if err != nil {
		t.Fatalf("the host's own socket: %v", err)
	}
	c.Close()
}
