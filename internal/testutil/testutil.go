// Package testutil runs a package's tests twice when they start as root:
// once as root, then again as an unprivileged user, so that every behaviour
// is checked for both kinds of caller.
package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// UnprivilegedEnv is set in the environment of the unprivileged rerun.
const UnprivilegedEnv = "HAKONIWA_TEST_UNPRIVILEGED"

// UID and GID are the ids of the unprivileged rerun (nobody:nogroup).
const (
	UID = 65534
	GID = 65534
)

// Unprivileged reports whether this is the unprivileged rerun.
func Unprivileged() bool { return os.Getenv(UnprivilegedEnv) == "1" }

// M is what testing.M and testscript need of it.
type M interface{ Run() int }

// Both wraps m so that Run runs the tests, and then, if the caller is root,
// runs the same test binary again as UID:GID. Set HAKONIWA_TEST_ROOT_ONLY=1
// to skip the rerun.
type Both struct{ M M }

// Run runs the tests as described on Both.
func (b Both) Run() int {
	// Fuzzing (test/fuzz.sh, and its workers) parses: no host set-up,
	// no rerun.
	if slices.ContainsFunc(os.Args[1:], func(a string) bool { return strings.HasPrefix(a, "-test.fuzz") }) {
		return b.M.Run()
	}
	if os.Getuid() == 0 && !Unprivileged() {
		defer hostAddress()()
		defer openTun()()
		defer subIDs()()
	}
	code := b.M.Run()
	if code != 0 || os.Getuid() != 0 || Unprivileged() || os.Getenv("HAKONIWA_TEST_ROOT_ONLY") == "1" {
		return code
	}
	if err := rerun(); err != nil {
		fmt.Fprintf(os.Stderr, "unprivileged rerun: %v\n", err)
		return 1
	}
	return 0
}

func rerun() error {
	dir, err := os.MkdirTemp("", "hakoniwa-unpriv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	exe := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := copyFile(os.Args[0], exe); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Chown(tmp, UID, GID); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "=== rerunning the tests as uid %d, gid %d\n", UID, GID)
	// Drop the flags that name files of the root run, which the
	// unprivileged user cannot write.
	var args []string
	for _, a := range os.Args[1:] {
		switch name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); name {
		case "test.testlogfile", "test.gocoverdir", "test.coverprofile", "test.outputdir",
			"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace":
			continue
		}
		args = append(args, a)
	}
	// The package directory may not be readable by the unprivileged user
	// (a checkout under /root): run in a world-readable copy of it.
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	pkg := filepath.Join(dir, "pkg")
	if err := copyTree(wd, pkg); err != nil {
		return fmt.Errorf("copy %s: %w", wd, err)
	}
	cg := delegateCgroups()
	defer cg.undo()
	cmd := exec.Command(exe, args...)
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), UnprivilegedEnv+"=1", "TMPDIR="+tmp, "HOME="+tmp, "GOCOVERDIR=", CgroupParentEnv+"="+cg.parent())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: GID, Groups: []uint32{}}}
	if cg.testFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cg.testFD
	}
	return cmd.Run()
}

// copyTree copies the directory from to to, readable by everyone, leaving
// out hidden entries such as .git.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, dst)
		}
		return nil // symlinks and devices are not needed by the tests
	})
}

func copyFile(from, to string) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// ProcStat returns the state letter and the parent pid of process pid, from
// /proc/PID/stat; ok is false once the process is gone.
func ProcStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// The command name in parentheses may hold spaces: fields start after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// Alive reports whether pid runs; a zombie is dead.
func Alive(pid int) bool {
	state, _, ok := ProcStat(pid)
	return ok && state != "Z" && state != "X"
}

// CgroupParentEnv names, in the unprivileged rerun, a cgroup delegated to
// it (see delegateCgroups).
const CgroupParentEnv = "HAKONIWA_TEST_CGROUP_PARENT"

// CgroupParent is the cgroup parent the tests use: in the unprivileged
// rerun, the cgroup delegated to it; as root, "" for the default.
func CgroupParent() string { return os.Getenv(CgroupParentEnv) }

// cgroupTops are the tops of the hierarchies that may be delegated.
var cgroupTops = []string{"memory", "pids", "cpu", "cpuacct", "blkio", "unified", ""}

// delegation is a cgroup D made at the top of each mounted hierarchy and
// given to UID, the way systemd delegates a user's service or an
// administrator a cgroup: D/runs for the sandboxes (--cgroup-parent), and
// on cgroup v2 D/tests, where the rerun itself is started, so that moving
// processes between the two stays inside the delegated subtree, which v2
// requires. Controllers are enabled in D, as a delegation does.
type delegation struct {
	name   string   // /hakoniwa-test-PID
	made   []string // directories made, parents first
	testFD int      // D/tests on v2, or -1
}

func delegateCgroups() *delegation {
	d := &delegation{name: fmt.Sprintf("/hakoniwa-test-%d", os.Getpid()), testFD: -1}
	for _, m := range cgroupTops {
		top := filepath.Join("/sys/fs/cgroup", m)
		if _, err := os.Stat(filepath.Join(top, "cgroup.procs")); err != nil {
			continue
		}
		v2 := fileExists(filepath.Join(top, "cgroup.controllers"))
		dir := top + d.name
		if !d.mkdir(dir) {
			continue
		}
		if v2 {
			if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil {
				for _, c := range strings.Fields(string(b)) {
					os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
				}
			}
		}
		d.mkdir(filepath.Join(dir, "runs"))
		if v2 && d.testFD < 0 && d.mkdir(filepath.Join(dir, "tests")) {
			if fd, err := syscall.Open(filepath.Join(dir, "tests"), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err == nil {
				d.testFD = fd
			}
		}
	}
	return d
}

// mkdir makes a cgroup and gives it to UID.
func (d *delegation) mkdir(dir string) bool {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return false
	}
	d.made = append(d.made, dir)
	for _, f := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads"} {
		os.Chown(filepath.Join(dir, f), UID, GID)
	}
	return true
}

// parent is the --cgroup-parent of the rerun's sandboxes.
func (d *delegation) parent() string {
	if len(d.made) == 0 {
		return ""
	}
	return d.name + "/runs"
}

// undo removes what is left of the delegation: the runs remove their own
// cgroups, and a test may leave one of its own, empty by now.
func (d *delegation) undo() {
	if d.testFD >= 0 {
		syscall.Close(d.testFD)
	}
	for i := len(d.made) - 1; i >= 0; i-- {
		dir := d.made[i]
		if subs, err := os.ReadDir(dir); err == nil {
			for _, s := range subs {
				if s.IsDir() {
					syscall.Rmdir(filepath.Join(dir, s.Name()))
				}
			}
		}
		if err := syscall.Rmdir(dir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: remove %s: %v\n", dir, err)
		}
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// HostAddrEnv names an address of the host that the network tests' servers
// listen on and their sandboxes reach: not loopback (a sandbox's own), and
// not the host's address on its default route, which pasta copies into the
// sandbox's namespace.
const HostAddrEnv = "HAKONIWA_TEST_HOST_ADDR"

// HostAddr is the address of HostAddrEnv, or "" when there is none.
func HostAddr() string { return os.Getenv(HostAddrEnv) }

// hostAddress gives the host an interface with an address of its own for
// the network tests, of both passes (one end of a veth pair, as kernels
// may lack the dummy driver), and returns what removes it.
func hostAddress() func() {
	name := fmt.Sprintf("hkt%d", os.Getpid()%1000000)
	const addr = "10.231.77.1"
	ip := func(args ...string) error { return exec.Command("ip", args...).Run() }
	if ip("link", "add", name, "type", "veth", "peer", "name", name+"p") != nil {
		return func() {}
	}
	if ip("addr", "add", addr+"/32", "dev", name) != nil || ip("link", "set", name, "up") != nil ||
		ip("link", "set", name+"p", "up") != nil {
		ip("link", "del", name)
		return func() {}
	}
	os.Setenv(HostAddrEnv, addr)
	return func() { ip("link", "del", name) }
}

// openTun makes /dev/net/tun usable by every user, as udev's default rule
// does on common distributions (some VMs leave it 0600), so that pasta and
// slirp4netns can run for the unprivileged pass; it returns what restores
// the mode. The test binaries of several packages run at once, and tests
// start test binaries of their own: each holds a shared lock on the lock
// file while it runs, the first to change the mode writes the old one
// there, and the last to finish (the only one that can then take the lock
// exclusively) restores it. Two that start together may both change the
// mode, from the same old one.
func openTun() func() {
	const tun = "/dev/net/tun"
	lockPath := filepath.Join(os.TempDir(), "hakoniwa-test-tun.lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
	old, _ := io.ReadAll(f)
	if st, err := os.Stat(tun); err == nil && len(old) == 0 && st.Mode().Perm()&0o666 != 0o666 {
		if os.Chmod(tun, st.Mode().Perm()|0o666) == nil {
			f.WriteAt([]byte(strconv.FormatUint(uint64(st.Mode().Perm()), 8)), 0)
		}
	}
	return func() {
		defer f.Close()
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return // another package's tests still run
		}
		b := make([]byte, 16)
		n, _ := f.ReadAt(b, 0)
		if mode, err := strconv.ParseUint(strings.TrimSpace(string(b[:n])), 8, 32); err == nil {
			os.Chmod(tun, os.FileMode(mode))
		}
		// Emptied, not removed: a binary that opened it meanwhile must
		// lock the same file.
		f.Truncate(0)
	}
}

// The ranges of /etc/subuid and /etc/subgid that the tests give root and
// the unprivileged rerun's user, while they run.
const (
	RootSubID   = 300000
	UnprivSubID = 200000
	SubIDCount  = 65536
)

// subIDs adds the tests' ranges to /etc/subuid and /etc/subgid, where they
// are missing, and returns what removes them: the last test binary to
// finish does (a shared lock, as openTun).
func subIDs() func() {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "hakoniwa-test-subid.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	lines := []string{fmt.Sprintf("root:%d:%d", RootSubID, SubIDCount), fmt.Sprintf("%s:%d:%d", userName(UID), UnprivSubID, SubIDCount)}
	files := []string{"/etc/subuid", "/etc/subgid"}
	// The first binary sets up, under an exclusive lock that it then
	// turns shared; one that finds the lock held (a binary set up, or
	// is setting up: this one's own test subprocesses too) waits for a
	// shared lock.
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
	} else if marker, _ := io.ReadAll(f); len(marker) == 0 {
		var added []string
		for _, name := range files {
			b, _ := os.ReadFile(name)
			var missing []string
			for _, l := range lines {
				if !strings.Contains("\n"+string(b), "\n"+l+"\n") {
					missing = append(missing, l)
				}
			}
			if len(missing) == 0 {
				continue
			}
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			if os.WriteFile(name, append(b, strings.Join(missing, "\n")+"\n"...), 0o644) == nil {
				added = append(added, name+"="+strings.Join(missing, ","))
			}
		}
		f.WriteAt([]byte(strings.Join(added, ";")+"\n"), 0)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
	return func() {
		defer f.Close()
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return // another package's tests still run
		}
		marker := make([]byte, 4096)
		n, _ := f.ReadAt(marker, 0)
		for _, entry := range strings.Split(strings.TrimSpace(string(marker[:n])), ";") {
			name, added, ok := strings.Cut(entry, "=")
			if !ok {
				continue
			}
			b, err := os.ReadFile(name)
			if err != nil {
				continue
			}
			var keep []string
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if !slices.Contains(strings.Split(added, ","), l) {
					keep = append(keep, l)
				}
			}
			out := strings.Join(keep, "\n")
			if out != "" {
				out += "\n"
			}
			os.WriteFile(name, []byte(out), 0o644)
		}
		f.Truncate(0)
	}
}

// userName is the name of uid in /etc/passwd, or the number.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
