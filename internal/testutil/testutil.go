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
	"path/filepath"
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
	cmd := exec.Command(exe, args...)
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), UnprivilegedEnv+"=1", "TMPDIR="+tmp, "HOME="+tmp, "GOCOVERDIR=")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: GID, Groups: []uint32{}}}
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
