package hakoniwa

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/cgroup"
	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"golang.org/x/sys/unix"
)

// Unlimited is the value of a memory or pids limit set to no limit.
const Unlimited = cgroup.Unlimited

// cgroupConfig is what a Container asks of the run's cgroup.
type cgroupConfig struct {
	limits  cgroup.Limits
	parent  string
	manager string
	version int
	always  bool
}

// Memory limits the memory of the sandbox's processes together, page cache
// included, to bytes, in a cgroup of the run's own (memory.max). When the
// limit is hit the kernel's OOM killer kills in the sandbox, and the report
// says MLE. Unless MemorySwap says otherwise, no swap is used beyond it.
func (c *Container) Memory(bytes uint64) *Container { c.cg.limits.Memory = bytes; return c }

// MemorySwap limits memory and swap together to bytes, as Docker's
// --memory-swap; it needs Memory. Unlimited allows any swap.
func (c *Container) MemorySwap(bytes uint64) *Container { c.cg.limits.MemorySwap = bytes; return c }

// Pids limits the number of processes and threads in the sandbox
// (pids.max); a fork past it fails with EAGAIN, and the report says PLE if
// the command then fails.
func (c *Container) Pids(n uint64) *Container { c.cg.limits.Pids = n; return c }

// CPUs limits the sandbox to n cpus' worth of time (cpu.max quota over a
// 100ms period): 0.5 is half of one cpu.
func (c *Container) CPUs(n float64) *Container { c.cg.limits.CPUs = n; return c }

// CPUWeight sets the sandbox's relative share of cpu time under
// contention, 1 to 10000 (100 is the default of every cgroup).
func (c *Container) CPUWeight(w uint64) *Container { c.cg.limits.CPUWeight = w; return c }

// IOWeight sets the sandbox's relative share of block io, 1 to 10000,
// where the io (v1: blkio) controller can.
func (c *Container) IOWeight(w uint64) *Container { c.cg.limits.IOWeight = w; return c }

// CgroupParent sets the cgroup the run's cgroup is made in (see
// docs/cgroups.md): a path from the top of the hierarchy such as
// "/hakoniwa", a path relative to the caller's own cgroup, or a directory
// of a mounted hierarchy under /sys/fs/cgroup. The default is /hakoniwa
// for root and a subtree delegated to the caller otherwise.
func (c *Container) CgroupParent(p string) *Container { c.cg.parent = p; return c }

// CgroupManager says who makes the run's cgroup: "cgroupfs" (hakoniwa
// itself, as root or in a subtree delegated to the caller), "systemd" (a
// transient scope that systemd makes when asked over D-Bus, on cgroup v2),
// or "" (the default) for cgroupfs, and systemd when no cgroup is
// delegated to the caller.
func (c *Container) CgroupManager(m string) *Container { c.cg.manager = m; return c }

// CgroupVersion forces cgroup v1 or v2; 0, the default, takes v2 when its
// hierarchy has the controllers needed, v1 otherwise.
func (c *Container) CgroupVersion(v int) *Container { c.cg.version = v; return c }

// Cgroup runs the command in a cgroup of its own even when no limit needs
// one: for the memory, pids and cpu figures of the report, for a cpu-time
// limit that counts every process, and for a teardown that kills every
// process left.
func (c *Container) Cgroup(on bool) *Container { c.cg.always = on; return c }

// usesCgroup reports whether runs of c get a cgroup.
func (c *Container) usesCgroup() bool {
	return c.cg.always || c.cg.limits != cgroup.Limits{}
}

// cgroupJoin is how the child gets into the run's cgroup.
type cgroupJoin struct {
	path    string
	into    bool // clone into cloneFD (v2)
	cloneFD int
	join    []cgroup.JoinFile // v1: write "0" into each
	// watchesCPU: the cgroup's cpu usage enforces the cpu-time limit.
	watchesCPU bool
	// attach: the parent moves the child in (a systemd scope) while
	// the child waits on the go-ahead pipe.
	attach bool
	goAhead
	// plan: for Plan, which makes no cgroup: the way in is not known.
	plan bool
}

// maxWatchedCPU bounds the cpu-time limits, in seconds, enforced on the
// cgroup's usage; larger ones are left to RLIMIT_CPU.
const maxWatchedCPU = 1 << 32

func joinOf(g *cgroup.Group) (*cgroupJoin, error) {
	j := &cgroupJoin{path: g.Path(), join: g.JoinFiles(), cloneFD: g.CloneFD(), goAhead: noGoAhead}
	j.into = j.cloneFD >= 0
	_, j.watchesCPU = g.CPUUsage()
	if g.Attaches() {
		// Usage is known once attached; a scope always has cpu.stat.
		j.attach, j.watchesCPU = true, true
		var err error
		if j.goAhead, err = newGoAhead(); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// closeGo closes what is left of the go-ahead pipe.
func (j *cgroupJoin) closeGo() {
	if j != nil {
		j.goAhead.close()
	}
}

// attachHook wraps the program's Started hook so that, first, the child is
// moved into its cgroup and let go on; a failure is kept in cmd.attachErr
// and the child, seeing end of file, fails its step.
func (cmd *Cmd) attachHook(j *cgroupJoin, next func(pid, pidfd int)) func(pid, pidfd int) {
	return func(pid, pidfd int) {
		cmd.attachErr = cmd.group.Attach(pid)
		j.give(cmd.attachErr, pidfd)
		if next != nil {
			next(pid, pidfd)
		}
	}
}

// addCgroupSteps has the child enter its cgroup first thing, and then, for
// a new cgroup namespace, unshare it there so that the command sees its
// cgroup as the root. (A namespace made by clone would be rooted at the
// parent's cgroup.)
func (c *Container) addCgroupSteps(b *nsexec.Builder, j *cgroupJoin) {
	if j == nil {
		return
	}
	if j.plan {
		b.JoinCgroup(-1, "enter the run's cgroup, made when the run starts (cgroup v1: write 0 into its cgroup.procs; v2: cloned into it; a systemd scope: wait to be moved)")
	}
	if j.into {
		b.P.IntoCgroup, b.P.CgroupFD, b.P.CgroupPath = true, j.cloneFD, j.path
	}
	if j.attach {
		// The parent moves the child between the clone and the execve,
		// so the child cannot hold it in a vfork.
		b.P.ShareMemory = false
		b.WaitGo(j.r, j.w, "wait until systemd has moved this process into "+j.path)
	}
	for _, f := range j.join {
		b.JoinCgroup(f.FD, fmt.Sprintf("join the cgroup %s:%s", f.Controller, j.path))
	}
	if !c.shareCgroup {
		b.P.CloneFlags &^= unix.CLONE_NEWCGROUP
		b.Unshare(unix.CLONE_NEWCGROUP, "unshare the cgroup namespace, rooted at the run's cgroup")
	}
}

// newCgroup makes the run's cgroup.
func (cmd *Cmd) newCgroup() error {
	c := cmd.c
	g, err := cgroup.New(cgroup.Config{
		Version: c.cg.version,
		Parent:  c.cg.parent,
		Manager: c.cg.manager,
		Limits:  c.cg.limits,
		Log:     c.logAt(slog.LevelInfo),
		Debug:   c.logAt(slog.LevelDebug),
		Warn: func(msg string) {
			c.logAt(slog.LevelWarn)("cgroup: " + msg)
			cmd.Result.Warnings = append(cmd.Result.Warnings, msg)
		},
	})
	if err != nil {
		return &SetupError{Step: "set up the cgroup", Err: err, ExitCode: 125}
	}
	cmd.group = g
	cmd.Result.Cgroup = g.Path()
	return nil
}

// logAt logs to the container's logger, if any, at level.
func (c *Container) logAt(level slog.Level) func(string) {
	return func(msg string) {
		if c.logger != nil {
			c.logger.Log(context.Background(), level, msg)
		}
	}
}

// watchCPU enforces the cpu-time limit on the cgroup's whole usage, which
// counts every thread of every process: it polls the usage, sleeping as
// long as the sandbox could not reach the limit even if every cpu ran it,
// and kills the command at the limit.
//
// Wait stops it (stopWatch) before it closes the cgroup.
func (cmd *Cmd) watchCPU(limit time.Duration) {
	g := cmd.group
	cpus := onlineCPUs()
	if q := cmd.c.cg.limits.CPUs; q > 0 && int(q+0.999) < cpus {
		cpus = int(q + 0.999)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	cmd.watchStop, cmd.watchStopped = stop, stopped
	go func() {
		defer close(stopped)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			used, ok := g.CPUUsage()
			if !ok {
				// Not readable for now: the limit is still due, so
				// look again soon (RLIMIT_CPU backs it up meanwhile).
				t.Reset(100 * time.Millisecond)
				continue
			}
			if used >= limit {
				cmd.kill(stopCause{cpu: limit, cpuUsed: used})
				return
			}
			wait := (limit - used) / time.Duration(cpus)
			t.Reset(min(max(wait, 2*time.Millisecond), time.Second))
		}
	}()
}

// stopWatch stops the cpu watcher, if any, and waits until it has.
func (cmd *Cmd) stopWatch() {
	if cmd.watchStop != nil {
		close(cmd.watchStop)
		<-cmd.watchStopped
		cmd.watchStop = nil
	}
}

// onlineCPUs counts the host's online cpus, which the sandbox may run on
// whatever our own affinity is.
func onlineCPUs() int {
	n := runtime.NumCPU()
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return n
	}
	total := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z, err2 := strconv.Atoi(hi)
		switch {
		case !isRange && err1 == nil:
			total++
		case isRange && err1 == nil && err2 == nil && z >= a:
			total += z - a + 1
		}
	}
	return max(n, total)
}

// closeCgroup measures the run's cgroup into r, then kills what is left in
// it and removes it.
func (cmd *Cmd) closeCgroup(r *Result) error {
	g := cmd.group
	if g == nil {
		return nil
	}
	cmd.group = nil
	if r != nil {
		s := g.Stats()
		r.MemoryPeak, r.OOMKill, r.PidsPeak = s.MemoryPeak, s.OOMKills, s.PidsPeak
		if s.CPUTotal != nil {
			u := &CPUUsage{Total: Duration(*s.CPUTotal)}
			if s.CPUUser != nil && s.CPUSystem != nil {
				u.User, u.System = Duration(*s.CPUUser), Duration(*s.CPUSystem)
			}
			r.CPUUsage = u
		}
		cmd.pidsDenied = s.PidsDenied
	}
	if err := g.Close(); err != nil {
		return fmt.Errorf("tear down the cgroup: %w", err)
	}
	return nil
}

// limitsInForce are the limits of c, for the report.
func (c *Container) limitsInForce() *Limits {
	var l Limits
	set := false
	u := func(v uint64) *uint64 {
		if v == 0 {
			return nil
		}
		set = true
		return &v
	}
	cl := c.cg.limits
	l.Memory, l.MemorySwap, l.Pids = u(cl.Memory), u(cl.MemorySwap), u(cl.Pids)
	l.CPUWeight, l.IOWeight = u(cl.CPUWeight), u(cl.IOWeight)
	if cl.CPUs != 0 {
		v := cl.CPUs
		l.CPUs, set = &v, true
	}
	if c.walltime > 0 {
		l.Walltime, set = durp(c.walltime), true
	}
	for res, v := range c.rlimits {
		if l.Rlimits == nil {
			l.Rlimits = map[string]uint64{}
		}
		l.Rlimits[rlimitNames[res]] = v
		set = true
	}
	if !set {
		return nil
	}
	return &l
}

// CheckCgroup reports a cgroup limit that is out of range, naming it by
// its flag (--memory, ...). Start checks it too.
func (c *Container) CheckCgroup() error { return c.cg.limits.Check() }
