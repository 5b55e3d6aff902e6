package cgroup

// This file holds fakeFS, a cgroup file system for the tests. It is a tree
// of real directories and files under t.TempDir(), so that OpenDir gives a
// real descriptor to flock and to clone into, and the package's paths
// (/sys/fs/cgroup/...) are mapped under that directory. On top of the files
// it keeps the rules of the kernel's cgroupfs that the package relies on:
//
//   - Mkdir makes a cgroup with its interface files. On cgroup v2 the
//     controller files are those of the controllers the parent enables in
//     its cgroup.subtree_control (which are the child's cgroup.controllers);
//     on v1, those of the hierarchy's controllers. Mkdir of an existing
//     cgroup fails with EEXIST.
//   - WriteFile never creates a file (ENOENT). Writing "+X" to a v2
//     cgroup.subtree_control needs X in the cgroup's cgroup.controllers
//     (ENOENT) and, below the top of the hierarchy, a cgroup with no
//     processes (EBUSY: the no-internal-process rule); an enabled
//     controller shows up at once in the children's cgroup.controllers,
//     with its files. Writing a pid to cgroup.procs of a v2 cgroup that
//     gives controllers to its children fails with EBUSY, the same rule the
//     other way round. Writing "1" to cgroup.kill empties the cgroup and
//     everything below it, and cgroup.events says "populated 0". On v1,
//     memory.limit_in_bytes may not go above memory.memsw.limit_in_bytes,
//     nor the latter below the former (EINVAL).
//   - On v1, memory.use_hierarchy is inherited from the parent at mkdir
//     (the tops say "1", as systemd sets it), and may be written only with
//     its value, or, where the parent's is 0, in a cgroup without children
//     (EINVAL, EBUSY).
//   - Rmdir fails with EBUSY on a cgroup that has processes or children, or
//     on the top of a hierarchy: so a subtree must be removed deepest
//     first.
//   - Writable answers from permissions the test sets with setWritable
//     (everything is writable, as for root, until it says otherwise), and
//     Mkdir, Rmdir, WriteFile and OpenWrite fail with EACCES where it says
//     no: this models a subtree delegated to (chowned to) the caller in a
//     hierarchy owned by root.
//
// Every Mkdir, WriteFile and Rmdir is logged in order, the failed ones too
// (with their error), for the tests that check the order of the writes.
//
// Processes are only numbers in cgroup.procs: the tests use pids above the
// kernel's PID_MAX_LIMIT (ghostPid), so that no signal can reach a real
// process. cgroup.kill (v2) empties a subtree at once; but on v1 the
// package kills through pidfds of real pids, which a ghost pid never
// gets, so it would wait 10s for it and fail: the v1 tests leave no
// process in a cgroup that the package is to empty.
//
// The fake host is in cgroup_test.go (newHost). Its bus is nil, so that no
// test can reach a real D-Bus; tests that need one set failBus or noBus
// (below).

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
	"golang.org/x/sys/unix"
)

type fakeFS struct {
	t      testing.TB
	base   string  // the temporary directory the tree is in
	mounts []mount // the hierarchies; a v2 one's top has rootCtl
	// noSwap leaves out memory.swap.max and memory.memsw.limit_in_bytes
	// from the cgroups made after it is set: a kernel without swap
	// accounting.
	noSwap bool
	// noKill leaves out cgroup.kill from the v2 cgroups made after it is
	// set: a kernel before 5.14.
	noKill bool
	perm   map[string]bool // path -> writable, for it and what is below
	ops    []string        // Mkdir, WriteFile and Rmdir, in order
}

// newFakeFS makes the tops of the hierarchies of mounts. Those of v2 have
// rootCtl as their cgroup.controllers and nothing enabled yet.
func newFakeFS(t testing.TB, mounts []mount, rootCtl ...string) *fakeFS {
	f := &fakeFS{t: t, base: t.TempDir(), mounts: mounts, perm: map[string]bool{}}
	for _, m := range mounts {
		if err := os.MkdirAll(f.real(m.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{"cgroup.procs": ""}
		if m.v2 {
			files["cgroup.controllers"] = strings.Join(rootCtl, " ")
			files["cgroup.subtree_control"] = ""
			files["cpu.stat"] = "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"
		} else {
			files["tasks"] = ""
			if slices.Contains(m.controllers, "memory") {
				files["memory.use_hierarchy"] = "1"
			}
		}
		f.writeAll(m.dir, files)
	}
	return f
}

// real is where path p of the cgroup file system is kept.
func (f *fakeFS) real(p string) string {
	return filepath.Join(f.base, path.Clean("/"+p))
}

func (f *fakeFS) writeAll(dir string, files map[string]string) {
	for name, s := range files {
		if err := os.WriteFile(f.real(path.Join(dir, name)), []byte(s), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// mountOf is the hierarchy p is in: the one mounted deepest above it.
func (f *fakeFS) mountOf(p string) (mount, bool) {
	var found mount
	ok := false
	for _, m := range f.mounts {
		if (p == m.dir || strings.HasPrefix(p, m.dir+"/")) && (!ok || len(m.dir) > len(found.dir)) {
			found, ok = m, true
		}
	}
	return found, ok
}

func (f *fakeFS) isTop(dir string) bool {
	m, ok := f.mountOf(dir)
	return ok && m.dir == dir
}

// isCgroup says whether dir is a cgroup: a directory in a hierarchy.
func (f *fakeFS) isCgroup(dir string) bool {
	if _, ok := f.mountOf(dir); !ok {
		return false
	}
	st, err := os.Stat(f.real(path.Join(dir, "cgroup.procs")))
	return err == nil && st.Mode().IsRegular()
}

func (f *fakeFS) isFile(p string) bool {
	st, err := os.Stat(f.real(p))
	return err == nil && st.Mode().IsRegular()
}

func (f *fakeFS) fields(p string) []string {
	b, _ := os.ReadFile(f.real(p))
	return strings.Fields(string(b))
}

func (f *fakeFS) children(dir string) []string {
	ents, _ := os.ReadDir(f.real(dir))
	var cs []string
	for _, e := range ents {
		if e.IsDir() {
			cs = append(cs, path.Join(dir, e.Name()))
		}
	}
	return cs
}

func (f *fakeFS) log(op string, err error) error {
	if err != nil {
		op += ": " + err.Error()
	}
	f.ops = append(f.ops, op)
	return err
}

func pathErr(op, p string, errno unix.Errno) error {
	return &os.PathError{Op: op, Path: p, Err: errno}
}

// v2Files are the files a v2 cgroup has for controller c.
func (f *fakeFS) v2Files(c string) map[string]string {
	switch c {
	case "memory":
		m := map[string]string{
			"memory.max": "max", "memory.oom.group": "0", "memory.peak": "0", "memory.current": "0",
			"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		}
		if !f.noSwap {
			m["memory.swap.max"] = "max"
		}
		return m
	case "pids":
		return map[string]string{"pids.max": "max", "pids.peak": "0", "pids.current": "0", "pids.events": "max 0\n"}
	case "cpu":
		return map[string]string{"cpu.max": "max 100000", "cpu.weight": "100"}
	case "io":
		return map[string]string{"io.weight": "default 100"}
	}
	return nil
}

// v1Files are the files a v1 cgroup has for controller c.
func (f *fakeFS) v1Files(c string) map[string]string {
	const unlimited = "9223372036854771712" // PAGE_COUNTER_MAX pages
	switch c {
	case "memory":
		m := map[string]string{
			"memory.limit_in_bytes": unlimited, "memory.max_usage_in_bytes": "0",
			"memory.oom_control":   "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
			"memory.use_hierarchy": "1", // Mkdir inherits the parent's
		}
		if !f.noSwap {
			m["memory.memsw.limit_in_bytes"] = unlimited
		}
		return m
	case "pids":
		return map[string]string{"pids.max": "max", "pids.current": "0", "pids.peak": "0", "pids.events": "max 0\n"}
	case "cpu":
		return map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"}
	case "cpuacct":
		return map[string]string{"cpuacct.usage": "0", "cpuacct.usage_user": "0", "cpuacct.usage_sys": "0"}
	case "blkio":
		return map[string]string{"blkio.weight": "500"}
	}
	return nil
}

// readOnly are files the kernel gives no write to (EACCES on open).
var readOnly = map[string]bool{
	"cgroup.controllers": true, "cgroup.events": true, "cpu.stat": true,
	"memory.current": true, "memory.events": true,
	"pids.current": true, "pids.peak": true, "pids.events": true,
	"cpuacct.usage_user": true, "cpuacct.usage_sys": true,
}

// Mkdir makes a cgroup and its interface files.
func (f *fakeFS) Mkdir(p string) error {
	op := "mkdir " + p
	parent := path.Dir(p)
	m, ok := f.mountOf(p)
	switch {
	case !ok || m.dir == p || !f.isCgroup(parent):
		return f.log(op, pathErr("mkdir", p, unix.ENOENT))
	case f.isCgroup(p):
		return f.log(op, pathErr("mkdir", p, unix.EEXIST))
	case !f.Writable(parent):
		return f.log(op, pathErr("mkdir", p, unix.EACCES))
	}
	if err := os.Mkdir(f.real(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	files := map[string]string{"cgroup.procs": ""}
	if m.v2 {
		ctl := f.fields(path.Join(parent, "cgroup.subtree_control"))
		files["cgroup.controllers"] = strings.Join(ctl, " ")
		files["cgroup.subtree_control"] = ""
		files["cgroup.events"] = "populated 0\nfrozen 0\n"
		files["cgroup.max.depth"] = "max"
		files["cgroup.max.descendants"] = "max"
		if !f.noKill {
			files["cgroup.kill"] = ""
		}
		files["cpu.stat"] = "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"
		for _, c := range ctl {
			for k, v := range f.v2Files(c) {
				files[k] = v
			}
		}
	} else {
		files["tasks"] = ""
		for _, c := range m.controllers {
			for k, v := range f.v1Files(c) {
				files[k] = v
			}
		}
		if _, ok := files["memory.use_hierarchy"]; ok {
			files["memory.use_hierarchy"] = f.read(path.Join(parent, "memory.use_hierarchy"))
		}
	}
	f.writeAll(p, files)
	return f.log(op, nil)
}

// Rmdir removes a cgroup that has no processes and no children.
func (f *fakeFS) Rmdir(p string) error {
	op := "rmdir " + p
	switch {
	case !f.isCgroup(p):
		return f.log(op, pathErr("rmdir", p, unix.ENOENT))
	case f.isTop(p):
		return f.log(op, pathErr("rmdir", p, unix.EBUSY))
	case !f.Writable(path.Dir(p)):
		return f.log(op, pathErr("rmdir", p, unix.EACCES))
	case len(f.children(p)) > 0 || len(f.fields(path.Join(p, "cgroup.procs"))) > 0:
		return f.log(op, pathErr("rmdir", p, unix.EBUSY))
	}
	if err := os.RemoveAll(f.real(p)); err != nil {
		f.t.Fatal(err)
	}
	return f.log(op, nil)
}

func (f *fakeFS) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(f.real(p))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			pe.Path = p
		}
	}
	return b, err
}

// WriteFile writes to an existing file, as the kernel would take it.
func (f *fakeFS) WriteFile(p, data string) error {
	op := "write " + p + " " + data
	dir, name := path.Split(p)
	dir = path.Clean(dir)
	m, _ := f.mountOf(p)
	switch {
	case !f.isFile(p):
		return f.log(op, pathErr("open", p, unix.ENOENT))
	case !f.Writable(p) || readOnly[name]:
		return f.log(op, pathErr("open", p, unix.EACCES))
	}
	var err error
	switch {
	case m.v2 && name == "cgroup.subtree_control":
		err = f.enable(dir, data)
	case name == "cgroup.procs":
		err = f.addProc(dir, data)
	case m.v2 && name == "cgroup.kill":
		if strings.TrimSpace(data) != "1" {
			err = unix.EINVAL
		} else {
			f.kill(dir)
		}
	case !m.v2 && (name == "memory.limit_in_bytes" || name == "memory.memsw.limit_in_bytes"):
		err = f.setV1Memory(dir, name, data)
	case !m.v2 && name == "memory.use_hierarchy":
		err = f.setUseHierarchy(dir, data)
	default:
		err = os.WriteFile(f.real(p), []byte(data), 0o644)
	}
	if errno, ok := err.(unix.Errno); ok {
		err = pathErr("write", p, errno)
	}
	return f.log(op, err)
}

// enable writes "+X ..." to dir's cgroup.subtree_control.
func (f *fakeFS) enable(dir, data string) error {
	var add []string
	for _, tok := range strings.Fields(data) {
		c, ok := strings.CutPrefix(tok, "+")
		if !ok {
			return unix.EINVAL // "-X" is not modelled: the package never disables
		}
		// A controller the parent does not give this cgroup: the kernel
		// says ENOENT.
		if !slices.Contains(f.fields(path.Join(dir, "cgroup.controllers")), c) {
			return unix.ENOENT
		}
		add = append(add, c)
	}
	// The no-internal-process rule: below the top, a cgroup with
	// processes cannot give controllers to its children.
	if !f.isTop(dir) && len(f.fields(path.Join(dir, "cgroup.procs"))) > 0 {
		return unix.EBUSY
	}
	sub := f.fields(path.Join(dir, "cgroup.subtree_control"))
	for _, c := range add {
		if slices.Contains(sub, c) {
			continue
		}
		sub = append(sub, c)
		// The children get it at once, with its files.
		for _, child := range f.children(dir) {
			ctl := append(f.fields(path.Join(child, "cgroup.controllers")), c)
			files := f.v2Files(c)
			files["cgroup.controllers"] = strings.Join(ctl, " ")
			f.writeAll(child, files)
		}
	}
	f.writeAll(dir, map[string]string{"cgroup.subtree_control": strings.Join(sub, " ")})
	return nil
}

// addProc moves a process, by its pid, into dir.
func (f *fakeFS) addProc(dir, data string) error {
	pid, err := strconv.Atoi(strings.TrimSpace(data))
	if err != nil || pid <= 0 {
		return unix.EINVAL
	}
	m, _ := f.mountOf(dir)
	// The no-internal-process rule, the other way round.
	if m.v2 && !f.isTop(dir) && len(f.fields(path.Join(dir, "cgroup.subtree_control"))) > 0 {
		return unix.EBUSY
	}
	procs := append(f.fields(path.Join(dir, "cgroup.procs")), strconv.Itoa(pid))
	f.writeAll(dir, map[string]string{"cgroup.procs": strings.Join(procs, "\n") + "\n"})
	f.repopulate(dir)
	return nil
}

// kill empties dir and every cgroup below it, as cgroup.kill does.
func (f *fakeFS) kill(dir string) {
	for _, c := range f.children(dir) {
		f.kill(c)
	}
	f.writeAll(dir, map[string]string{"cgroup.procs": ""})
	f.repopulate(dir)
}

// repopulate updates "populated" in cgroup.events from dir up: a cgroup is
// populated when it or a cgroup below it has processes.
func (f *fakeFS) repopulate(dir string) {
	for d := dir; ; d = path.Dir(d) {
		events := path.Join(d, "cgroup.events")
		if f.isFile(events) {
			pop := len(f.fields(path.Join(d, "cgroup.procs"))) > 0
			for _, c := range f.children(d) {
				if n, ok := readKey(f, path.Join(c, "cgroup.events"), "populated"); ok && n == 1 {
					pop = true
				}
			}
			n := 0
			if pop {
				n = 1
			}
			f.writeAll(d, map[string]string{"cgroup.events": fmt.Sprintf("populated %d\nfrozen 0\n", n)})
		}
		if f.isTop(d) || d == "/" {
			return
		}
	}
}

// setV1Memory keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes.
func (f *fakeFS) setV1Memory(dir, name, data string) error {
	parse := func(s string) (uint64, bool) {
		s = strings.TrimSpace(s)
		if s == "-1" {
			return Unlimited, true
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	v, ok := parse(data)
	if !ok {
		return unix.EINVAL
	}
	mem, _ := parse(f.read(path.Join(dir, "memory.limit_in_bytes")))
	memsw, hasSw := parse(f.read(path.Join(dir, "memory.memsw.limit_in_bytes")))
	if name == "memory.limit_in_bytes" && hasSw && v > memsw || name == "memory.memsw.limit_in_bytes" && v < mem {
		return unix.EINVAL
	}
	f.writeAll(dir, map[string]string{name: data})
	return nil
}

// setUseHierarchy writes v1's memory.use_hierarchy, by the rules of
// mem_cgroup_hierarchy_write: the same value is a no-op; a cgroup whose
// parent has it set cannot change it, nor one with children.
func (f *fakeFS) setUseHierarchy(dir, data string) error {
	v := strings.TrimSpace(data)
	if v != "0" && v != "1" {
		return unix.EINVAL
	}
	switch {
	case v == strings.TrimSpace(f.read(path.Join(dir, "memory.use_hierarchy"))):
		return nil
	case !f.isTop(dir) && strings.TrimSpace(f.read(path.Join(path.Dir(dir), "memory.use_hierarchy"))) == "1":
		return unix.EINVAL
	case len(f.children(dir)) > 0:
		return unix.EBUSY
	}
	f.writeAll(dir, map[string]string{"memory.use_hierarchy": v})
	return nil
}

func (f *fakeFS) OpenDir(p string) (int, error) {
	return unix.Open(f.real(p), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func (f *fakeFS) OpenWrite(p string) (int, error) {
	switch {
	case !f.isFile(p):
		return -1, pathErr("open", p, unix.ENOENT)
	case !f.Writable(p):
		return -1, pathErr("open", p, unix.EACCES)
	}
	return unix.Open(f.real(p), unix.O_WRONLY|unix.O_CLOEXEC, 0)
}

// Writable answers from the nearest permission set at or above p.
func (f *fakeFS) Writable(p string) bool {
	for q := path.Clean(p); ; q = path.Dir(q) {
		if w, ok := f.perm[q]; ok {
			return w
		}
		if q == "/" {
			return true
		}
	}
}

func (f *fakeFS) SubDirs(dir string) ([]string, error) { return osFS{}.SubDirs(f.real(dir)) }

// The helpers below are for the tests, to set the scene and look at it.

// setWritable sets whether p and what is below it are writable.
func (f *fakeFS) setWritable(p string, w bool) { f.perm[p] = w }

// mkcg makes the cgroup p, as root and by the rules, and enables ctl in
// its cgroup.subtree_control.
func (f *fakeFS) mkcg(p string, ctl ...string) {
	f.t.Helper()
	if err := f.Mkdir(p); err != nil {
		f.t.Fatal(err)
	}
	for _, c := range ctl {
		f.mustWrite(path.Join(p, "cgroup.subtree_control"), "+"+c)
	}
}

// mustWrite writes through WriteFile, by the rules.
func (f *fakeFS) mustWrite(p, data string) {
	f.t.Helper()
	if err := f.WriteFile(p, data); err != nil {
		f.t.Fatal(err)
	}
}

// set overwrites a file that exists, bypassing the rules: what the kernel
// would have counted, such as memory.peak.
func (f *fakeFS) set(p, data string) {
	f.t.Helper()
	if !f.isFile(p) {
		f.t.Fatalf("set %s: no such file", p)
	}
	f.writeAll(path.Dir(p), map[string]string{path.Base(p): data})
}

// read is a file's contents, or "<missing>".
func (f *fakeFS) read(p string) string {
	b, err := os.ReadFile(f.real(p))
	if err != nil {
		return "<missing>"
	}
	return string(b)
}

// exists says whether p is a file or directory.
func (f *fakeFS) exists(p string) bool {
	_, err := os.Stat(f.real(p))
	return err == nil
}

// runDirs are the run-* cgroups in dir.
func (f *fakeFS) runDirs(dir string) []string {
	names, _ := f.SubDirs(dir)
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "hakoniwa-run-") })
}

// resetOps forgets the operations so far: those of the scene.
func (f *fakeFS) resetOps() { f.ops = nil }

// index is the position of op in the log, or -1.
func (f *fakeFS) index(op string) int { return slices.Index(f.ops, op) }

// opsUnder are the logged operations on dir and below, in order.
func (f *fakeFS) opsUnder(dir string) []string {
	var ops []string
	for _, op := range f.ops {
		_, rest, _ := strings.Cut(op, " ")
		p, _, _ := strings.Cut(rest, " ")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			ops = append(ops, op)
		}
	}
	return ops
}

// The fake host's D-Bus, for the tests of how the package falls back to a
// systemd scope. None of them reaches a real bus: the package's own dial
// is set only by readHost, which the tests on the fake host never call
// (systemd_test.go's end-to-end test does, and sets a bus of its own).

// failBus is a bus that cannot be reached, with err; *calls counts the
// attempts.
func failBus(err error) (func() (*dbus.Conn, error), *int) {
	calls := 0
	return func() (*dbus.Conn, error) {
		calls++
		return nil, err
	}, &calls
}

// noBus is a bus the test must not try: it fails the test if called.
func noBus(t testing.TB) func() (*dbus.Conn, error) {
	return func() (*dbus.Conn, error) {
		t.Helper()
		t.Error("tried D-Bus where it must not")
		return nil, errors.New("no D-Bus in this test")
	}
}
