package cgroup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
	"golang.org/x/sys/unix"
)

// fsys is the cgroup file system as the drivers use it: the real one, or a
// fake in the tests that keeps the kernel's rules.
type fsys interface {
	Mkdir(path string) error
	Rmdir(path string) error
	ReadFile(path string) ([]byte, error)
	// WriteFile writes data to an existing file in one write.
	WriteFile(path, data string) error
	// OpenDir opens a directory, read-only and close-on-exec.
	OpenDir(path string) (int, error)
	// OpenWrite opens an existing file for writing, close-on-exec.
	OpenWrite(path string) (int, error)
	// Writable reports whether the caller may write to path.
	Writable(path string) bool
	// SubDirs lists the names of the directories in dir.
	SubDirs(dir string) ([]string, error)
}

// osFS is the real file system.
type osFS struct{}

func (osFS) Mkdir(p string) error { return os.Mkdir(p, 0o755) }
func (osFS) Rmdir(p string) error { return unix.Rmdir(p) }
func (osFS) ReadFile(p string) ([]byte, error) {
	return os.ReadFile(p)
}
func (osFS) WriteFile(p, data string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, []byte(data))
	if err == nil && n != len(data) {
		err = errors.New("short write")
	}
	return err
}
func (osFS) OpenDir(p string) (int, error) {
	return unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}
func (osFS) OpenWrite(p string) (int, error) {
	return unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
}
func (osFS) Writable(p string) bool {
	return unix.Faccessat(unix.AT_FDCWD, p, unix.W_OK, unix.AT_EACCESS) == nil
}
func (osFS) SubDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// mount is one mounted cgroup hierarchy.
type mount struct {
	dir         string   // where it is mounted
	root        string   // the cgroup its top is (mountinfo's root field)
	v2          bool     // the unified hierarchy
	controllers []string // v1: the controllers bound to it
}

// host is what the drivers know of the machine.
type host struct {
	fs     fsys
	mounts []mount
	// self maps a v1 controller, or "" for v2, to the caller's cgroup.
	self map[string]string
	euid int
	pid  int
	// systemd is whether PID 1 is systemd, and bus connects to the
	// caller's session bus, where systemd --user answers.
	systemd bool
	bus     func() (*dbus.Conn, error)
}

// readHost reads the cgroup mounts, the caller's cgroups and ids.
func readHost() (*host, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	comm, _ := os.ReadFile("/proc/1/comm")
	return &host{
		fs:      osFS{},
		mounts:  parseMountinfo(mi),
		self:    parseProcCgroup(cg),
		euid:    os.Geteuid(),
		pid:     os.Getpid(),
		systemd: strings.TrimSpace(string(comm)) == "systemd",
		bus:     func() (*dbus.Conn, error) { return dialUserBus(os.Geteuid()) },
	}, nil
}

// parseMountinfo returns the cgroup and cgroup2 mounts of a mountinfo file.
func parseMountinfo(b []byte) []mount {
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		m := mount{dir: unescapeMountinfo(f[4]), root: unescapeMountinfo(f[3])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "memory", "pids", "cpu", "cpuacct", "blkio", "cpuset", "devices", "freezer",
					"net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc":
					m.controllers = append(m.controllers, o)
				}
			}
			if len(m.controllers) == 0 {
				continue // a named hierarchy such as name=systemd
			}
		default:
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// parseProcCgroup maps each controller of /proc/self/cgroup (and "" for
// cgroup v2) to the caller's cgroup in it.
func parseProcCgroup(b []byte) map[string]string {
	self := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			self[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			self[c] = parts[2]
		}
	}
	return self
}

// v2Mount is the unified hierarchy's mount, preferring /sys/fs/cgroup.
func (h *host) v2Mount() (mount, bool) {
	var found mount
	ok := false
	for _, m := range h.mounts {
		if m.v2 && (!ok || m.dir == "/sys/fs/cgroup") {
			found, ok = m, true
		}
	}
	return found, ok
}

// v1Mount is the v1 hierarchy that controller c is bound to.
func (h *host) v1Mount(c string) (mount, bool) {
	for _, m := range h.mounts {
		if !m.v2 && slices.Contains(m.controllers, c) {
			return m, true
		}
	}
	return mount{}, false
}

// v2Controllers are the controllers available at the top of the mounted
// unified hierarchy.
func (h *host) v2Controllers(m mount) []string {
	b, err := h.fs.ReadFile(path.Join(m.dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// needed are the controllers that l's limits need, by v2 name.
func needed(l Limits) []string {
	var c []string
	if l.Memory != 0 || l.MemorySwap != 0 {
		c = append(c, "memory")
	}
	if l.Pids != 0 {
		c = append(c, "pids")
	}
	if l.CPUs != 0 || l.CPUWeight != 0 {
		c = append(c, "cpu")
	}
	if l.IOWeight != 0 {
		c = append(c, "io")
	}
	return c
}

// v1Name is the v1 name of a v2 controller.
func v1Name(c string) string {
	if c == "io" {
		return "blkio"
	}
	return c
}

// chooseVersion picks the cgroup version: want, if not 0, or v2 when it
// has every controller the limits need, and memory and pids to measure
// the run (or v1 cannot do the limits either); v1 otherwise.
func (h *host) chooseVersion(want int, l Limits) (int, string, error) {
	need := needed(l)
	m2, has2 := h.v2Mount()
	var ctl2 []string
	if has2 {
		ctl2 = h.v2Controllers(m2)
	}
	var miss2, miss1 []string
	for _, c := range need {
		if !slices.Contains(ctl2, c) {
			miss2 = append(miss2, c)
		}
		if _, ok := h.v1Mount(v1Name(c)); !ok {
			miss1 = append(miss1, v1Name(c))
		}
	}
	_, hasV1 := h.v1Mount("memory")
	if _, ok := h.v1Mount("pids"); ok {
		hasV1 = true
	}
	v2Why := func() string {
		if !has2 {
			return "no cgroup2 file system is mounted"
		}
		what := "the cgroup v2 hierarchy at " + m2.dir
		switch {
		case len(miss2) > 0:
			what += " lacks the " + controllers(miss2)
		case len(ctl2) > 0:
			return what + " lacks memory or pids, which measure the run"
		default:
			what += " has no controllers"
		}
		if len(ctl2) == 0 {
			return what + " (it has none: they are bound to cgroup v1 hierarchies)"
		}
		return what + " (bound to cgroup v1 here, or not enabled)"
	}
	switch want {
	case 2:
		if !has2 || len(miss2) > 0 {
			return 0, "", fmt.Errorf("--cgroup-version 2: %s", v2Why())
		}
		return 2, "asked for with --cgroup-version 2, at " + m2.dir, nil
	case 1:
		if len(miss1) > 0 || !hasV1 {
			return 0, "", fmt.Errorf("--cgroup-version 1: no cgroup v1 hierarchy of %s is mounted", orAny(miss1))
		}
		return 1, "asked for with --cgroup-version 1", nil
	case 0:
	default:
		return 0, "", fmt.Errorf("--cgroup-version %d: want 1 or 2", want)
	}
	// v2 when it has what the limits need, and also memory and pids, which
	// measure the run, unless v1 cannot do the limits either.
	v1OK := hasV1 && len(miss1) == 0
	measures := slices.Contains(ctl2, "memory") && slices.Contains(ctl2, "pids")
	if has2 && len(miss2) == 0 && (measures || !v1OK) {
		return 2, "the unified hierarchy at " + m2.dir + " has the " + controllers(need), nil
	}
	if v1OK {
		return 1, "cgroup v1 hierarchies have the " + controllers(need) + "; " + v2Why(), nil
	}
	if len(need) == 0 {
		return 0, "", fmt.Errorf("no cgroup hierarchy to run in: %s; and no cgroup v1 hierarchy of memory or pids is mounted", v2Why())
	}
	return 0, "", fmt.Errorf("no cgroup hierarchy has the %s needed by %s: %s; and no cgroup v1 hierarchy of %s is mounted",
		controllers(miss2), limitNames(l), v2Why(), strings.Join(miss1, ", "))
}

// controllers names a list of controllers in words: "the memory and pids
// controllers".
func controllers(c []string) string {
	switch len(c) {
	case 0:
		return "controllers needed"
	case 1:
		return c[0] + " controller"
	}
	return strings.Join(c[:len(c)-1], ", ") + " and " + c[len(c)-1] + " controllers"
}

func orAny(c []string) string {
	if len(c) == 0 {
		return "the controllers needed"
	}
	return strings.Join(c, ", ")
}

// runName is a fresh name for a run's cgroup.
func (h *host) runName() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("hakoniwa-run-%d-%s", h.pid, hex.EncodeToString(b[:]))
}

// place is where one hierarchy's run cgroups are made.
type place struct {
	m      mount
	parent string // the parent's cgroup path
	dir    string // the parent's directory
}

// fsPath is the directory of cgroup path cg in mount m.
func fsPath(m mount, cg string) (string, error) {
	rel := cg
	if m.root != "/" {
		if cg != m.root && !strings.HasPrefix(cg, m.root+"/") {
			return "", fmt.Errorf("cgroup %s is outside the part of the hierarchy mounted at %s (%s)", cg, m.dir, m.root)
		}
		rel = strings.TrimPrefix(cg, m.root)
	}
	return path.Join(m.dir, rel), nil
}

// where finds the parent cgroup of the runs in mount m, for the caller
// whose cgroup there is self; mode says how it was found, for the log.
func (h *host) where(m mount, self, parent string) (p place, mode string, err error) {
	p.m = m
	switch {
	case strings.HasPrefix(parent, "/"):
		if p.parent, err = h.absParent(parent); err != nil {
			return p, "", err
		}
		mode = "--cgroup-parent"
	case parent != "":
		if self == "" {
			return p, "", fmt.Errorf("--cgroup-parent %s: the caller's own cgroup in %s is unknown", parent, m.dir)
		}
		p.parent = path.Join(self, parent)
		mode = "--cgroup-parent, relative to the caller's cgroup " + self
	case h.euid == 0:
		p.parent = "/hakoniwa"
		mode = "running as root"
	default:
		d, err := h.delegated(m, self)
		if err != nil {
			return p, "", &notDelegated{dir: m.dir, why: "not root, and " + err.Error()}
		}
		p.parent = path.Join(d, "hakoniwa")
		mode = "not root: in the subtree " + d + " delegated to uid " + fmt.Sprint(h.euid)
	}
	if p.dir == "" {
		if p.dir, err = fsPath(m, p.parent); err != nil {
			return p, "", err
		}
	}
	return p, mode, nil
}

// absParent turns an absolute --cgroup-parent into a cgroup path: a
// directory of a mounted hierarchy names the same cgroup in every
// hierarchy (/sys/fs/cgroup/memory/x is /x); anything else is a cgroup path
// already.
func (h *host) absParent(parent string) (string, error) {
	if slices.Contains(strings.Split(parent, "/"), "..") {
		return "", fmt.Errorf("--cgroup-parent %s: want a path without ..", parent)
	}
	clean := path.Clean(parent)
	var best mount
	found := false
	for _, mm := range h.mounts {
		if (clean == mm.dir || strings.HasPrefix(clean, mm.dir+"/")) && len(mm.dir) > len(best.dir) {
			best, found = mm, true
		}
	}
	switch {
	case found:
		return path.Join(best.root, strings.TrimPrefix(clean, best.dir)), nil
	case clean == "/sys/fs/cgroup" || strings.HasPrefix(clean, "/sys/fs/cgroup/"):
		var dirs []string
		for _, mm := range h.mounts {
			dirs = append(dirs, mm.dir)
		}
		return "", fmt.Errorf("--cgroup-parent %s: not in a mounted cgroup hierarchy (those are %s); or give the cgroup's path, such as /hakoniwa", parent, strings.Join(dirs, ", "))
	}
	return clean, nil
}

// notDelegated is the failure to find a cgroup for a caller who is not
// root and gave no --cgroup-parent. The caller adds why a systemd scope
// was no way out either.
type notDelegated struct {
	dir, why string
	systemd  string // why no systemd scope
}

func (e *notDelegated) Error() string {
	return fmt.Sprintf("no cgroup for %s: %s; and no systemd transient scope: %s; %s", e.dir, e.why, e.systemd, unprivilegedHelp)
}

// delegated finds the highest cgroup above or at self, in mount m, that the
// caller may write along with every cgroup down to self: the top of the
// subtree delegated to it, inside which it may move its processes.
func (h *host) delegated(m mount, self string) (string, error) {
	if self == "" {
		return "", errors.New("the caller's own cgroup is unknown")
	}
	top := ""
	for cg := self; ; cg = path.Dir(cg) {
		dir, err := fsPath(m, cg)
		if err != nil || !h.fs.Writable(dir) || !h.fs.Writable(path.Join(dir, "cgroup.procs")) {
			break
		}
		top = cg
		if cg == "/" || cg == m.root {
			break
		}
	}
	if top == "" {
		return "", fmt.Errorf("the caller's cgroup %s is not delegated to it (not writable)", self)
	}
	return top, nil
}

// mkdirAll makes dir and its missing parents, down from the mount.
func (h *host) mkdirAll(m mount, dir string) error {
	if dir == m.dir {
		return nil
	}
	if !strings.HasPrefix(dir, m.dir+"/") {
		return fmt.Errorf("make the cgroup %s: outside the hierarchy mounted at %s", dir, m.dir)
	}
	if _, err := h.fs.ReadFile(path.Join(dir, "cgroup.procs")); err == nil {
		return nil
	}
	if err := h.mkdirAll(m, path.Dir(dir)); err != nil {
		return err
	}
	if err := h.fs.Mkdir(dir); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("make the cgroup %s: %w", dir, err)
	}
	return nil
}
