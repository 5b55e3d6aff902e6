package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2 is a run's cgroup on the unified hierarchy.
type v2 struct {
	h      *host
	p      place
	limits Limits
	log    func(string)
	debug  func(string)
	warn   func(string)

	dir, cg string // the run's directory and cgroup path
	fd      int    // its directory, locked
	leafFD  int    // its leaf, the CLONE_INTO_CGROUP target
}

func newV2(h *host, cfg Config, log func(string)) (driver, error) {
	m, _ := h.v2Mount()
	if cfg.Manager == "systemd" {
		s, err := newScope(h, m, cfg, log)
		if err != nil && !h.systemd {
			err = fmt.Errorf("%w (PID 1 is not systemd)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("--cgroup-manager systemd: %w", err)
		}
		log("cgroup: a systemd transient scope, asked for over D-Bus (--cgroup-manager systemd)")
		return s, nil
	}
	p, mode, err := h.where(m, h.self[""], cfg.Parent)
	var nd *notDelegated
	if errors.As(err, &nd) {
		switch {
		case cfg.Manager == "cgroupfs":
			nd.systemd = "not asked for (--cgroup-manager cgroupfs)"
			return nil, nd
		case !h.systemd:
			nd.systemd = "PID 1 is not systemd"
			return nil, nd
		}
		s, serr := newScope(h, m, cfg, log)
		if serr != nil {
			nd.systemd = serr.Error()
			return nil, nd
		}
		log("cgroup: " + nd.why + "; so a systemd transient scope, asked for over D-Bus")
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	log(fmt.Sprintf("cgroup: parent %s (%s)", p.parent, mode))
	return &v2{h: h, p: p, limits: cfg.Limits, log: log, debug: orNop(cfg.Debug), warn: orNop(cfg.Warn), fd: -1, leafFD: -1}, nil
}

func (g *v2) path() string { return g.cg }
func (g *v2) cloneFD() int { return g.leafFD }

func (g *v2) joinFDs() []JoinFile { return nil }

func (g *v2) attaches() bool   { return false }
func (g *v2) attach(int) error { return nil }

// create makes the parent and enables in it the controllers the run
// needs, or would report on, then makes the run's cgroup with its limits.
func (g *v2) create(name string) error {
	fs := g.h.fs
	if err := g.h.mkdirAll(g.p.m, g.p.dir); err != nil {
		return explainWrite(err)
	}
	need := needed(g.limits)
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(need, c) {
			// For the report only: enabled when the hierarchy has it.
			if err := g.enable(c); err != nil {
				g.log(fmt.Sprintf("cgroup: %s not enabled, so not measured: %v", c, err))
			}
		}
	}
	for _, c := range need {
		if err := g.enable(c); err != nil {
			return fmt.Errorf("%s: %w", flagOf(c, g.limits), err)
		}
	}
	dir, fd, err := makeRun(fs, g.p.dir, name, g.killDir, g.log)
	if err != nil {
		return err
	}
	g.dir, g.fd, g.cg = dir, fd, path.Join(g.p.parent, name)
	if err := apply(fs, dir, g.settings(), g.debug, g.warn); err != nil {
		g.destroy()
		return err
	}
	if g.leafFD, err = makeLeaf(fs, dir); err != nil {
		g.destroy()
		return err
	}
	return nil
}

// flagOf names the flag that needs controller c.
func flagOf(c string, l Limits) string {
	switch c {
	case "memory":
		if l.Memory == 0 {
			return "--memory-swap"
		}
		return "--memory"
	case "pids":
		return "--pids"
	case "cpu":
		if l.CPUs == 0 {
			return "--cpu-weight"
		}
		return "--cpus"
	}
	return "--io-weight"
}

// enable makes controller c available in the parent's children, enabling
// it down from the nearest cgroup above that has it.
func (g *v2) enable(c string) error {
	fs := g.h.fs
	has := func(dir, file string) bool {
		b, err := fs.ReadFile(path.Join(dir, file))
		return err == nil && slices.Contains(strings.Fields(string(b)), c)
	}
	// The cgroups whose subtree_control must list c, bottom up.
	chain := []string{g.p.dir}
	for dir := g.p.dir; !has(dir, "cgroup.controllers"); {
		if dir == g.p.m.dir || dir == "/" {
			return fmt.Errorf("the %s controller is not available in the cgroup v2 hierarchy at %s", c, g.p.m.dir)
		}
		dir = path.Dir(dir)
		chain = append(chain, dir)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		dir := chain[i]
		if has(dir, "cgroup.subtree_control") {
			continue
		}
		file := path.Join(dir, "cgroup.subtree_control")
		if err := fs.WriteFile(file, "+"+c); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("enable %s in %s: %w: the cgroup has processes of its own, and cgroup v2 lets only a cgroup without processes give controllers to its children; choose a --cgroup-parent that holds no processes", c, file, err)
			}
			return fmt.Errorf("enable %s in %s: %w", c, file, explainWrite(err))
		}
		g.log(fmt.Sprintf("cgroup: enabled %s in %s", c, file))
	}
	return nil
}

// settings are the files to write for the limits, in order.
func (g *v2) settings() []setting {
	l := g.limits
	var ss []setting
	if l.Memory != 0 {
		ss = append(ss, setting{file: "memory.max", value: v2Value(l.Memory), flag: "--memory"})
		swap := uint64(0)
		switch {
		case l.MemorySwap == Unlimited || l.Memory == Unlimited:
			swap = Unlimited
		case l.MemorySwap != 0:
			swap = l.MemorySwap - l.Memory
		}
		ss = append(ss, swapSetting("memory.swap.max", v2Value(swap), l))
		ss = append(ss, setting{file: "memory.oom.group", value: "1", flag: "--memory", optional: true})
	}
	if l.Pids != 0 {
		ss = append(ss, setting{file: "pids.max", value: v2Value(l.Pids), flag: "--pids"})
	}
	if l.CPUs != 0 {
		ss = append(ss, setting{file: "cpu.max", value: fmt.Sprintf("%d %d", l.cpuQuota(), int64(CPUPeriod/time.Microsecond)), flag: "--cpus"})
	}
	if l.CPUWeight != 0 {
		ss = append(ss, setting{file: "cpu.weight", value: fmt.Sprint(l.CPUWeight), flag: "--cpu-weight"})
	}
	if l.IOWeight != 0 {
		ss = append(ss, setting{file: "io.weight", value: fmt.Sprintf("default %d", l.IOWeight), flag: "--io-weight"})
	}
	// The command may make cgroups below its leaf (it mounts cgroupfs in
	// namespaces of its own): bound them, as the teardown removes them.
	ss = append(ss, setting{file: "cgroup.max.depth", value: maxDepth, bestEffort: true},
		setting{file: "cgroup.max.descendants", value: maxDescendants, bestEffort: true})
	return ss
}

// The bounds of the cgroups below a run's (its leaf included).
const (
	maxDepth       = "8"
	maxDescendants = "64"
)

func v2Value(n uint64) string {
	if n == Unlimited {
		return "max"
	}
	return fmt.Sprint(n)
}

func (g *v2) cpuUsage() (time.Duration, bool) { return v2CPUUsage(g.h.fs, g.dir) }
func (g *v2) stats() Stats                    { return v2Stats(g.h.fs, g.dir) }

// v2CPUUsage reads the cpu time of the v2 cgroup at d.
func v2CPUUsage(fs fsys, d string) (time.Duration, bool) {
	us, ok := readKey(fs, path.Join(d, "cpu.stat"), "usage_usec")
	return time.Duration(us) * time.Microsecond, ok
}

// v2Stats reads what the v2 cgroup at d measured.
func v2Stats(fs fsys, d string) Stats {
	var s Stats
	s.MemoryPeak = u64p(readUint(fs, path.Join(d, "memory.peak")))
	s.OOMKills = u64p(eventKey(fs, d, "memory.events", "oom_kill"))
	s.PidsPeak = u64p(readUint(fs, path.Join(d, "pids.peak")))
	s.PidsDenied = u64p(eventKey(fs, d, "pids.events", "max"))
	user, uok := readKey(fs, path.Join(d, "cpu.stat"), "user_usec")
	sys, sok := readKey(fs, path.Join(d, "cpu.stat"), "system_usec")
	s.CPUUser = durp(time.Duration(user)*time.Microsecond, uok)
	s.CPUSystem = durp(time.Duration(sys)*time.Microsecond, sok)
	s.CPUTotal = durp(v2CPUUsage(fs, d))
	return s
}

// killDir kills every process in the cgroup at dir and waits until it has
// none: through cgroup.kill, or one by one on kernels before 5.14.
func (g *v2) killDir(dir string) error {
	fs := g.h.fs
	if err := fs.WriteFile(path.Join(dir, "cgroup.kill"), "1"); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return killTree(fs, dir)
		}
		return fmt.Errorf("kill the cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for wait := 100 * time.Microsecond; ; wait = min(wait*2, 50*time.Millisecond) {
		if n, ok := readKey(fs, path.Join(dir, "cgroup.events"), "populated"); !ok || n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes are still in the cgroup %s 10s after cgroup.kill", dir)
		}
		time.Sleep(wait)
	}
}

func (g *v2) destroy() error {
	if g.dir == "" {
		return nil
	}
	err := g.killDir(g.dir)
	if err == nil {
		err = removeTree(g.h.fs, g.dir)
	}
	for _, fd := range []*int{&g.fd, &g.leafFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	g.dir = ""
	return err
}
