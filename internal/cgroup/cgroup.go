// Package cgroup gives one sandbox run a cgroup of its own: it finds where
// one can be made (as root, or in a subtree delegated to the caller), makes
// it with the run's limits, measures it while and after the run, and kills
// whatever is left in it and removes it at the end.
//
// It works on the unified hierarchy (cgroup v2), where the child is cloned
// straight into the cgroup with CLONE_INTO_CGROUP, and on the memory, pids,
// cpu, cpuacct and blkio controllers of cgroup v1, each in its own
// hierarchy, which the child joins itself through files its parent opened.
// The two are the two implementations of one interface, driver.
//
// Every run cgroup is named hakoniwa-run-PID-RANDOM and is held with a flock on its
// directory for as long as the run lasts, so that a later run can tell the
// cgroups of runs whose hakoniwa was killed (unlocked) from the live ones,
// and remove them.
package cgroup

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Unlimited is the value of a limit that is set to no limit.
const Unlimited = math.MaxUint64

// Limits are the limits a run's cgroup is made with. A zero field is not
// set.
type Limits struct {
	// Memory is the memory limit in bytes (memory.max, or
	// memory.limit_in_bytes on v1).
	Memory uint64
	// MemorySwap is the limit of memory and swap together, in bytes, as
	// Docker's --memory-swap. Zero with Memory set means no swap at all.
	MemorySwap uint64
	// Pids is the number of processes and threads (pids.max).
	Pids uint64
	// CPUs is the cpu bandwidth in cpus (cpu.max, or cfs quota over period
	// on v1): 0.5 is half of one cpu's time.
	CPUs float64
	// CPUWeight is the relative cpu weight, 1 to 10000 (cpu.weight; on v1
	// cpu.shares, 100 being 1024 shares).
	CPUWeight uint64
	// IOWeight is the relative io weight, 1 to 10000 (io.weight; on v1
	// blkio.weight, divided by 10 into 10 to 1000).
	IOWeight uint64
}

// CPUPeriod is the period of the cpu bandwidth limit.
const CPUPeriod = 100 * time.Millisecond

// Check reports the first value out of range, naming its flag.
func (l Limits) Check() error {
	switch {
	case l.Memory != 0 && l.Memory != Unlimited && l.Memory < 1<<20:
		return fmt.Errorf("--memory %d: want at least 1M", l.Memory)
	case l.MemorySwap != 0 && l.Memory == 0:
		return errors.New("--memory-swap needs --memory")
	case l.MemorySwap != 0 && l.MemorySwap < l.Memory:
		return fmt.Errorf("--memory-swap %d: want at least --memory (%d): it limits memory and swap together", l.MemorySwap, l.Memory)
	case l.CPUs < 0 || math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0):
		return fmt.Errorf("--cpus %v: want a positive number of cpus", l.CPUs)
	case l.CPUs != 0 && l.CPUs*float64(CPUPeriod/time.Microsecond) < 1000:
		return fmt.Errorf("--cpus %v: want at least 0.01", l.CPUs)
	case l.CPUs > 1<<20:
		return fmt.Errorf("--cpus %v: too large", l.CPUs)
	case l.CPUWeight > 10000:
		return fmt.Errorf("--cpu-weight %d: want 1 to 10000", l.CPUWeight)
	case l.IOWeight > 10000:
		return fmt.Errorf("--io-weight %d: want 1 to 10000", l.IOWeight)
	}
	return nil
}

// cpuQuota is the quota of l.CPUs per CPUPeriod, in microseconds.
func (l Limits) cpuQuota() uint64 {
	return uint64(math.Round(l.CPUs * float64(CPUPeriod/time.Microsecond)))
}

// Config says where and how to make the cgroup.
type Config struct {
	// Version is 1 or 2, or 0 to choose: v2 when it has the controllers
	// the run needs, v1 otherwise.
	Version int
	// Parent is the cgroup the run's cgroup is made in: a path from the
	// top of the hierarchy ("/hakoniwa"), a path relative to the caller's
	// own cgroup ("hakoniwa"), or, on v2, a directory of the cgroup file
	// system ("/sys/fs/cgroup/user.slice/..."). Empty means /hakoniwa
	// for root, and a subtree delegated to the caller for anyone else.
	Parent string
	// Manager is who makes the cgroup: "cgroupfs" (hakoniwa, in the
	// cgroup file system), "systemd" (a transient scope of systemd's,
	// asked for over D-Bus), or "" to try cgroupfs first and systemd
	// when no cgroup is delegated to the caller.
	Manager string
	Limits  Limits
	// Log, if set, is told which cgroup was chosen and why the other
	// ways were not used; Debug, the files written; Warn, what the
	// cgroup cannot do as asked and the run goes on without.
	Log, Debug, Warn func(msg string)
}

func orNop(f func(string)) func(string) {
	if f == nil {
		return func(string) {}
	}
	return f
}

// Stats are what a run's cgroup measured. A nil field was not measured.
type Stats struct {
	MemoryPeak *uint64        // bytes (memory.peak, memory.max_usage_in_bytes)
	OOMKills   *uint64        // processes the OOM killer killed
	PidsPeak   *uint64        // most processes and threads at once
	PidsDenied *uint64        // forks refused by the pids limit
	CPUTotal   *time.Duration // cpu time, measured exactly
	// CPUUser and CPUSystem split it, as the kernel samples it on its
	// ticks on v1 (so a run of a few ms may show 0 for both).
	CPUUser   *time.Duration
	CPUSystem *time.Duration
}

// driver is one cgroup version's way of making, measuring and removing the
// run's cgroup.
type driver interface {
	// create makes the run's cgroup with its limits, and locks it.
	create(name string) error
	// path is the cgroup's path, as /proc/PID/cgroup names it.
	path() string
	// cloneFD is the cgroup directory for CLONE_INTO_CGROUP, or -1.
	cloneFD() int
	// joinFDs are cgroup.procs files to write "0" into from the child.
	joinFDs() []JoinFile
	// cpuUsage is the cpu time used so far; ok is false when unknown.
	cpuUsage() (d time.Duration, ok bool)
	stats() Stats
	// attaches reports whether the child must be moved into the cgroup
	// by attach, after the clone and before its execve.
	attaches() bool
	attach(pid int) error
	// destroy kills every process left and removes the cgroup.
	destroy() error
}

// JoinFile is a cgroup.procs file open for writing, which a child joins
// its cgroup through by writing "0" into it.
type JoinFile struct {
	FD         int
	Controller string // such as "memory"
}

// Group is the cgroup of one run.
type Group struct {
	d       driver
	version int
	closed  bool
}

// Version is the cgroup version the group is on, 1 or 2.
func (g *Group) Version() int { return g.version }

// Path is the group's cgroup path, such as /hakoniwa/hakoniwa-run-42-0a1b2c3d.
func (g *Group) Path() string { return g.d.path() }

// CloneFD is the directory to clone the child into with CLONE_INTO_CGROUP,
// or -1 when the child must join through JoinFiles.
func (g *Group) CloneFD() int { return g.d.cloneFD() }

// JoinFiles are the files the child writes "0" into, first thing, to join
// its cgroups (cgroup v1).
func (g *Group) JoinFiles() []JoinFile { return g.d.joinFDs() }

// CPUUsage is the cpu time the group's processes have used so far; ok is
// false when this cgroup cannot tell.
func (g *Group) CPUUsage() (time.Duration, bool) { return g.d.cpuUsage() }

// Attaches reports whether Attach must move the child into the group
// between its clone and its execve (a systemd scope): the child must
// wait for it, in its own copy of memory.
func (g *Group) Attaches() bool { return g.d.attaches() }

// Attach moves the child pid into the group, where Attaches says so.
func (g *Group) Attach(pid int) error { return g.d.attach(pid) }

// Stats reads what the group measured. Call it before Close.
func (g *Group) Stats() Stats { return g.d.stats() }

// Close kills every process left in the group and removes it. It is safe
// to call more than once.
func (g *Group) Close() error {
	if g.closed {
		return nil
	}
	g.closed = true
	return g.d.destroy()
}

// New makes a cgroup for one run, as cfg says, on this host.
func New(cfg Config) (*Group, error) {
	h, err := readHost()
	if err != nil {
		return nil, err
	}
	return newGroup(h, cfg)
}

func newGroup(h *host, cfg Config) (*Group, error) {
	if err := cfg.Limits.Check(); err != nil {
		return nil, err
	}
	switch cfg.Manager {
	case "", "cgroupfs", "systemd":
	default:
		return nil, fmt.Errorf("--cgroup-manager %s: want cgroupfs or systemd", cfg.Manager)
	}
	if cfg.Manager == "systemd" && cfg.Parent != "" {
		return nil, errors.New("--cgroup-parent is for cgroupfs: systemd chooses where its scope goes")
	}
	log := orNop(cfg.Log)
	want := cfg.Version
	if cfg.Manager == "systemd" && want == 0 {
		want = 2 // systemd's scopes are on cgroup v2
	}
	version, why, err := h.chooseVersion(want, cfg.Limits)
	if err != nil && cfg.Manager == "systemd" && cfg.Version == 0 {
		err = errors.New("--cgroup-manager systemd needs cgroup v2: " + strings.TrimPrefix(err.Error(), "--cgroup-version 2: "))
	}
	if err != nil {
		return nil, err
	}
	log("cgroup: version " + fmt.Sprint(version) + ": " + why)
	var d driver
	if version == 2 {
		d, err = newV2(h, cfg, log)
	} else {
		d, err = newV1(h, cfg, log)
	}
	if err != nil {
		return nil, err
	}
	if err := d.create(h.runName()); err != nil {
		return nil, err
	}
	log("cgroup: made " + d.path())
	return &Group{d: d, version: version}, nil
}

// unprivilegedHelp is what an unprivileged user can do to get a cgroup.
const unprivilegedHelp = "to limit memory, pids or cpu without root, run hakoniwa inside a cgroup delegated to you " +
	"(for example `systemd-run --user --scope -p Delegate=yes hakoniwa run ...`), or have root make one and " +
	"chown it to you, and name it with --cgroup-parent (see docs/cgroups.md)"

// limitNames lists the limits set in l by their flags, for errors.
func limitNames(l Limits) string {
	var s []string
	for _, f := range []struct {
		set  bool
		flag string
	}{
		{l.Memory != 0, "--memory"}, {l.MemorySwap != 0, "--memory-swap"}, {l.Pids != 0, "--pids"},
		{l.CPUs != 0, "--cpus"}, {l.CPUWeight != 0, "--cpu-weight"}, {l.IOWeight != 0, "--io-weight"},
	} {
		if f.set {
			s = append(s, f.flag)
		}
	}
	return strings.Join(s, ", ")
}
