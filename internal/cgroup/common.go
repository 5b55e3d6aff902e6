package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A run's cgroup is locked (flock LOCK_EX on its directory) by the process
// that made it, for as long as the run lasts. Making one holds LOCK_SH on
// the parent from the mkdir to the lock, and a sweep for stale cgroups
// holds LOCK_EX on the parent, so that a sweep never takes a cgroup that
// was just made and is not locked yet for a stale one.

// swept records the parents swept by this process: once each is enough, as
// a stale cgroup is left only by a hakoniwa that was killed.
var swept sync.Map // directory -> true

// isRunName reports whether n is the name of a run's cgroup,
// hakoniwa-run-PID-XXXXXXXX, and not of anything else that may share its
// parent (systemd's own units are named run-u12.service).
func isRunName(n string) bool {
	rest, ok := strings.CutPrefix(n, "hakoniwa-run-")
	pid, hexPart, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || pid == "" || len(hexPart) != 8 {
		return false
	}
	for _, c := range pid {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// makeRun makes and locks the run cgroup name in parent, after sweeping
// the parent of stale runs once. kill empties a stale cgroup's directory.
func makeRun(fs fsys, parent, name string, kill func(dir string) error, log func(string)) (dir string, fd int, err error) {
	pfd, err := fs.OpenDir(parent)
	if err != nil {
		return "", -1, fmt.Errorf("open the cgroup %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	if _, done := swept.Load(parent); !done {
		if unix.Flock(pfd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			sweep(fs, parent, kill, log)
			swept.Store(parent, true)
		}
	}
	if err := flock(pfd, unix.LOCK_SH); err != nil {
		return "", -1, fmt.Errorf("lock the cgroup %s: %w", parent, err)
	}
	dir = path.Join(parent, name)
	if err := fs.Mkdir(dir); err != nil {
		return "", -1, fmt.Errorf("make the cgroup %s: %w", dir, explainWrite(err))
	}
	fd, err = fs.OpenDir(dir)
	if err == nil {
		if err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		fs.Rmdir(dir)
		return "", -1, fmt.Errorf("lock the cgroup %s: %w", dir, err)
	}
	return dir, fd, nil
}

// flock takes a lock, waiting for it.
func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// sweep removes the run cgroups in parent that no process holds: those of
// runs whose hakoniwa was killed. It is called with parent locked.
func sweep(fs fsys, parent string, kill func(dir string) error, log func(string)) {
	names, err := fs.SubDirs(parent)
	if err != nil {
		return
	}
	for _, n := range names {
		if !isRunName(n) {
			continue
		}
		dir := path.Join(parent, n)
		fd, err := fs.OpenDir(dir)
		if err != nil {
			continue
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			err := kill(dir)
			if err == nil {
				err = removeTree(fs, dir)
			}
			if err != nil {
				log(fmt.Sprintf("cgroup: could not remove the stale cgroup %s: %v", dir, err))
			} else {
				log("cgroup: removed the stale cgroup " + dir + " of a hakoniwa that was killed")
			}
		}
		unix.Close(fd)
	}
}

// leafName is the cgroup, inside the run's, that the command is put in.
// The limits are on the run's cgroup, out of the command's reach: a
// command that mounts cgroupfs in a cgroup namespace of its own sees its
// leaf as the top, and a limit it sets there cannot lift its parent's.
const leafName = "sandbox"

// makeLeaf makes the leaf of the run cgroup at dir, and opens it.
func makeLeaf(fs fsys, dir string) (int, error) {
	leaf := path.Join(dir, leafName)
	if err := fs.Mkdir(leaf); err != nil {
		return -1, fmt.Errorf("make the cgroup %s: %w", leaf, explainWrite(err))
	}
	fd, err := fs.OpenDir(leaf)
	if err != nil {
		return -1, fmt.Errorf("open the cgroup %s: %w", leaf, err)
	}
	return fd, nil
}

// removeTree removes a cgroup whose processes are gone, and every cgroup
// below it (the command may have made some), deepest first.
func removeTree(fs fsys, dir string) error {
	subs, err := fs.SubDirs(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the cgroup %s: %w", dir, err)
	}
	for _, s := range subs {
		if err := removeTree(fs, path.Join(dir, s)); err != nil {
			return err
		}
	}
	return removeDir(fs, dir)
}

// killTree kills every process in the cgroup at dir and below (v1, or v2
// without cgroup.kill).
func killTree(fs fsys, dir string) error {
	subs, _ := fs.SubDirs(dir)
	for _, s := range subs {
		if err := killTree(fs, path.Join(dir, s)); err != nil {
			return err
		}
	}
	return killProcs(fs, path.Join(dir, "cgroup.procs"))
}

// removeDir removes a cgroup whose processes are gone, waiting a little for
// the kernel to let go of the last ones.
func removeDir(fs fsys, dir string) error {
	var err error
	for wait := time.Millisecond; ; wait *= 2 {
		err = fs.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || wait > time.Second {
			return fmt.Errorf("remove the cgroup %s: %w", dir, err)
		}
		time.Sleep(wait)
	}
}

// pids reads a cgroup.procs file.
func pids(fs fsys, file string) ([]int, error) {
	b, err := fs.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ps []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// killProcs kills every process listed in the cgroup.procs file, until it
// lists none. A pid is signalled through a pidfd opened while the file
// still listed it, so that a pid reused outside is never hit.
func killProcs(fs fsys, file string) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 100 * time.Microsecond; ; wait = min(wait*2, 50*time.Millisecond) {
		ps, err := pids(fs, file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if len(ps) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes are still in %s after 10s", len(ps), path.Dir(file))
		}
		var fds []int
		for _, p := range ps {
			if fd, err := unix.PidfdOpen(p, 0); err == nil {
				fds = append(fds, fd)
			} else {
				fds = append(fds, -1)
			}
		}
		again, _ := pids(fs, file)
		for i, p := range ps {
			if fds[i] < 0 {
				continue
			}
			if slices.Contains(again, p) {
				unix.PidfdSendSignal(fds[i], unix.SIGKILL, nil, 0)
			}
			unix.Close(fds[i])
		}
		time.Sleep(wait)
	}
}

// readUint reads a file that holds one number; "max" reads as Unlimited.
func readUint(fs fsys, file string) (uint64, bool) {
	b, err := fs.ReadFile(file)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return Unlimited, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// readKey reads key's number from a flat keyed file such as memory.events
// ("oom_kill 1").
func readKey(fs fsys, file, key string) (uint64, bool) {
	b, err := fs.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func u64p(v uint64, ok bool) *uint64 {
	if !ok {
		return nil
	}
	return &v
}

func durp(d time.Duration, ok bool) *time.Duration {
	if !ok {
		return nil
	}
	return &d
}

// setting is one value to write into a cgroup's file for a limit.
type setting struct {
	file, value string
	flag        string // the flag that asked for it, for errors
	optional    bool   // skipped when the file is missing
	bestEffort  bool   // skipped on any failure
	// missing says why the file may be missing; for an optional one,
	// it is a warning when missing matters (see swapSetting).
	missing     string
	warnMissing func() bool
}

// swapSetting limits swap in file. Without swap accounting the file is
// missing: an error when --memory-swap asked for a swap limit, and
// otherwise a warning where the host swaps, as the memory limit then does
// not stop the run using swap.
func swapSetting(file, value string, l Limits) setting {
	s := setting{file: file, value: value, flag: "--memory-swap", optional: l.MemorySwap == 0,
		missing: "swap accounting is off on this host (on cgroup v1, boot with swapaccount=1)"}
	if s.optional {
		s.flag = "--memory"
		s.warnMissing = hostSwaps
	}
	return s
}

// hostSwaps reports whether the host has swap on.
func hostSwaps() bool {
	b, err := os.ReadFile("/proc/swaps")
	return err == nil && strings.Count(strings.TrimSpace(string(b)), "\n") > 0
}

// apply writes the settings into dir, in order. A failure names the flag
// and the file.
func apply(fs fsys, dir string, ss []setting, debug, warn func(string)) error {
	for _, s := range ss {
		file := path.Join(dir, s.file)
		err := fs.WriteFile(file, s.value)
		if err == nil {
			debug(fmt.Sprintf("cgroup: %s = %s", file, s.value))
			continue
		}
		if s.optional && errors.Is(err, os.ErrNotExist) {
			debug(fmt.Sprintf("cgroup: %s: not set, the file is missing", file))
			if s.warnMissing != nil && s.warnMissing() {
				warn(fmt.Sprintf("%s does not stop swap: %s, and the host swaps", s.flag, s.missing))
			}
			continue
		}
		if s.missing != "" && errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: cannot write %s: %s", s.flag, file, s.missing)
		}
		if s.bestEffort {
			debug(fmt.Sprintf("cgroup: %s: not set: %v", file, err))
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: cannot write %s: the file is missing (the controller is not enabled for this cgroup)", s.flag, file)
		}
		return fmt.Errorf("%s: write %q to %s: %w", s.flag, s.value, file, explainWrite(err))
	}
	return nil
}

// explainWrite says what a permission error on cgroupfs means.
func explainWrite(err error) error {
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) {
		return fmt.Errorf("%w (the cgroup is not delegated to this user)", err)
	}
	return err
}

// eventKey reads an event count, key of file, of the run's cgroup at d:
// the larger of its own and its leaf's. Where the kernel counts an event
// in every ancestor (cgroup v2 since Linux 6.11 for pids, and for memory
// unless memory_localevents), both are the same; where it counts it only
// in the cgroup of the process (v1, older v2, the localevents mount
// options), the run's own is 0 and the leaf's is the count.
func eventKey(fs fsys, d, file, key string) (uint64, bool) {
	a, ok := readKey(fs, path.Join(d, file), key)
	if b, bok := readKey(fs, path.Join(d, leafName, file), key); bok {
		a, ok = max(a, b), true
	}
	return a, ok
}
