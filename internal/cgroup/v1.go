package cgroup

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v1 is a run's cgroups on cgroup v1: one in each hierarchy it uses.
type v1 struct {
	h      *host
	limits Limits
	log    func(string)
	debug  func(string)
	warn   func(string)
	hs     []*v1Hierarchy
}

// v1Hierarchy is the run's cgroup in one v1 hierarchy.
type v1Hierarchy struct {
	p        place
	ctl      []string // the controllers of this hierarchy the run uses
	required bool     // a limit needs it; otherwise it only measures
	dir, cg  string
	fd       int // the directory, locked
	join     int // its cgroup.procs, open for writing
}

// v1Wanted are the v1 controllers a run uses, in order: memory, pids and
// cpuacct always, to measure the run, and required when a limit needs
// them; cpu and blkio only for a limit.
func v1Wanted(l Limits) []v1Want {
	ws := []v1Want{
		{"memory", l.Memory != 0 || l.MemorySwap != 0},
		{"pids", l.Pids != 0},
		{"cpu", l.CPUs != 0 || l.CPUWeight != 0},
		{"cpuacct", false},
		{"blkio", l.IOWeight != 0},
	}
	return slices.DeleteFunc(ws, func(w v1Want) bool {
		return !w.required && (w.ctl == "cpu" || w.ctl == "blkio")
	})
}

type v1Want struct {
	ctl      string
	required bool
}

func newV1(h *host, cfg Config, log func(string)) (*v1, error) {
	if cfg.Manager == "systemd" {
		return nil, errors.New("--cgroup-manager systemd: systemd makes scopes with limits on cgroup v2 only")
	}
	g := &v1{h: h, limits: cfg.Limits, log: log, debug: orNop(cfg.Debug), warn: orNop(cfg.Warn)}
	var firstErr error // why the first hierarchy could not be used
	for _, w := range v1Wanted(cfg.Limits) {
		m, ok := h.v1Mount(w.ctl)
		if !ok {
			if w.required {
				v2name := w.ctl
				if v2name == "blkio" {
					v2name = "io"
				}
				return nil, fmt.Errorf("%s: no cgroup v1 hierarchy of %s is mounted", flagOf(v2name, cfg.Limits), w.ctl)
			}
			continue
		}
		if i := slices.IndexFunc(g.hs, func(x *v1Hierarchy) bool { return x.p.m.dir == m.dir }); i >= 0 {
			// Mounted together, such as cpu,cpuacct.
			g.hs[i].ctl = append(g.hs[i].ctl, w.ctl)
			g.hs[i].required = g.hs[i].required || w.required
			continue
		}
		p, mode, err := h.where(m, h.self[w.ctl], cfg.Parent)
		var nd *notDelegated
		if errors.As(err, &nd) {
			nd.systemd = "systemd makes them for users on cgroup v2 only"
		}
		if err != nil {
			if w.required {
				return nil, err
			}
			log(fmt.Sprintf("cgroup: %s not used, so not measured: %v", w.ctl, err))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		log(fmt.Sprintf("cgroup: %s: parent %s (%s)", w.ctl, p.parent, mode))
		g.hs = append(g.hs, &v1Hierarchy{p: p, ctl: []string{w.ctl}, required: w.required, fd: -1, join: -1})
	}
	if len(g.hs) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("no cgroup v1 hierarchy of memory, pids or cpuacct is mounted")
	}
	return g, nil
}

func (g *v1) path() string {
	var parts []string
	same := true
	for _, x := range g.hs {
		if x.dir == "" {
			continue
		}
		parts = append(parts, strings.Join(x.ctl, ",")+":"+x.cg)
		same = same && x.cg == g.hs[0].cg
	}
	if same && len(parts) > 0 {
		return g.hs[0].cg
	}
	return strings.Join(parts, " ")
}

func (g *v1) cloneFD() int { return -1 }

func (g *v1) attaches() bool   { return false }
func (g *v1) attach(int) error { return nil }

func (g *v1) joinFDs() []JoinFile {
	var fs []JoinFile
	for _, x := range g.hs {
		if x.join >= 0 {
			fs = append(fs, JoinFile{FD: x.join, Controller: strings.Join(x.ctl, ",")})
		}
	}
	return fs
}

func (g *v1) create(name string) error {
	var kept []*v1Hierarchy
	for _, x := range g.hs {
		err := g.createIn(x, name)
		if err != nil && x.required {
			for _, y := range append(kept, x) {
				g.destroyIn(y)
			}
			return err
		}
		if err != nil {
			g.log(fmt.Sprintf("cgroup: %s not used, so not measured: %v", strings.Join(x.ctl, ","), err))
			continue
		}
		kept = append(kept, x)
	}
	g.hs = kept
	if len(kept) == 0 {
		return fmt.Errorf("no cgroup v1 hierarchy could be used")
	}
	return nil
}

func (g *v1) createIn(x *v1Hierarchy, name string) error {
	fs := g.h.fs
	if err := g.h.mkdirAll(x.p.m, x.p.dir); err != nil {
		return explainWrite(err)
	}
	kill := func(dir string) error { return killTree(fs, dir) }
	dir, fd, err := makeRun(fs, x.p.dir, name, kill, g.log)
	if err != nil {
		return err
	}
	x.dir, x.fd, x.cg = dir, fd, path.Join(x.p.parent, name)
	var ss []setting
	for _, c := range x.ctl {
		ss = append(ss, g.settings(c)...)
	}
	if err := apply(fs, dir, ss, g.debug, g.warn); err != nil {
		g.destroyIn(x)
		return err
	}
	if slices.Contains(x.ctl, "memory") && g.limits.Memory != 0 {
		// Where the file is still there, it must say hierarchical, or the
		// limit would not cover the leaf.
		if b, err := fs.ReadFile(path.Join(dir, "memory.use_hierarchy")); err == nil && strings.TrimSpace(string(b)) != "1" {
			g.destroyIn(x)
			return fmt.Errorf("--memory: %s is not hierarchical (memory.use_hierarchy is %s and could not be set), so its limit would not cover the command", dir, strings.TrimSpace(string(b)))
		}
	}
	leaf, err := makeLeaf(fs, dir)
	if err == nil {
		unix.Close(leaf)
		procs := path.Join(dir, leafName, "cgroup.procs")
		if x.join, err = fs.OpenWrite(procs); err != nil {
			err = fmt.Errorf("open %s: %w", procs, explainWrite(err))
		}
	}
	if err != nil {
		g.destroyIn(x)
		return err
	}
	return nil
}

// settings are the files to write in controller c's cgroup, in order.
func (g *v1) settings(c string) []setting {
	l := g.limits
	var ss []setting
	switch c {
	case "memory":
		// Hierarchical, so that the limit and the peak of the run's
		// cgroup cover its leaf: always so since Linux 5.11 (where the
		// file is gone or fixed), but not on older kernels whose root
		// was left at 0. Allowed while the cgroup has no children.
		ss = append(ss, setting{file: "memory.use_hierarchy", value: "1", bestEffort: true})
		if l.Memory == 0 {
			break
		}
		ss = append(ss, setting{file: "memory.limit_in_bytes", value: v1Value(l.Memory), flag: "--memory"})
		// memsw limits memory and swap together, and must not be
		// below the memory limit, which is set first.
		memsw := l.Memory
		if l.MemorySwap != 0 {
			memsw = l.MemorySwap
		}
		ss = append(ss, swapSetting("memory.memsw.limit_in_bytes", v1Value(memsw), l))
	case "pids":
		if l.Pids != 0 {
			ss = append(ss, setting{file: "pids.max", value: v2Value(l.Pids), flag: "--pids"})
		}
	case "cpu":
		if l.CPUs != 0 {
			ss = append(ss,
				setting{file: "cpu.cfs_period_us", value: fmt.Sprint(int64(CPUPeriod / time.Microsecond)), flag: "--cpus"},
				setting{file: "cpu.cfs_quota_us", value: fmt.Sprint(l.cpuQuota()), flag: "--cpus"})
		}
		if l.CPUWeight != 0 {
			ss = append(ss, setting{file: "cpu.shares", value: fmt.Sprint(max(2, l.CPUWeight*1024/100)), flag: "--cpu-weight"})
		}
	case "blkio":
		if l.IOWeight != 0 {
			w := min(max(l.IOWeight/10, 10), 1000)
			file := "blkio.weight"
			if _, err := g.h.fs.ReadFile(path.Join(g.dirOf("blkio"), file)); err != nil {
				file = "blkio.bfq.weight"
			}
			ss = append(ss, setting{file: file, value: fmt.Sprint(w), flag: "--io-weight"})
		}
	}
	return ss
}

func (g *v1) dirOf(c string) string {
	for _, x := range g.hs {
		if slices.Contains(x.ctl, c) {
			return x.dir
		}
	}
	return ""
}

func v1Value(n uint64) string {
	if n == Unlimited {
		return "-1"
	}
	return fmt.Sprint(n)
}

func (g *v1) cpuUsage() (time.Duration, bool) {
	d := g.dirOf("cpuacct")
	if d == "" {
		return 0, false
	}
	ns, ok := readUint(g.h.fs, path.Join(d, "cpuacct.usage"))
	return time.Duration(ns), ok
}

func (g *v1) stats() Stats {
	fs := g.h.fs
	var s Stats
	// v1 counts OOM kills and refused forks in the cgroup of the process
	// killed or forking, not in its parents: the leaf's count.
	if d := g.dirOf("memory"); d != "" {
		s.MemoryPeak = u64p(readUint(fs, path.Join(d, "memory.max_usage_in_bytes")))
		s.OOMKills = u64p(eventKey(fs, d, "memory.oom_control", "oom_kill"))
	}
	if d := g.dirOf("pids"); d != "" {
		s.PidsPeak = u64p(readUint(fs, path.Join(d, "pids.peak")))
		s.PidsDenied = u64p(eventKey(fs, d, "pids.events", "max"))
	}
	if d := g.dirOf("cpuacct"); d != "" {
		user, uok := readUint(fs, path.Join(d, "cpuacct.usage_user"))
		sys, sok := readUint(fs, path.Join(d, "cpuacct.usage_sys"))
		s.CPUUser = durp(time.Duration(user), uok)
		s.CPUSystem = durp(time.Duration(sys), sok)
		s.CPUTotal = durp(g.cpuUsage())
	}
	return s
}

func (g *v1) destroyIn(x *v1Hierarchy) error {
	if x.dir == "" {
		return nil
	}
	fs := g.h.fs
	err := killTree(fs, x.dir)
	if err == nil {
		err = removeTree(fs, x.dir)
	}
	if x.join >= 0 {
		unix.Close(x.join)
	}
	unix.Close(x.fd)
	x.dir, x.fd, x.join = "", -1, -1
	return err
}

func (g *v1) destroy() error {
	var first error
	for _, x := range g.hs {
		if err := g.destroyIn(x); err != nil && first == nil {
			first = err
		}
	}
	return first
}
