package hakoniwa

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/cgroup"
	"golang.org/x/sys/unix"
)

// Status says how a run ended, as in hakoniwa's Result.
type Status string

// The statuses of a run.
const (
	StatusOK  Status = "OK"  // the command exited by itself
	StatusSE  Status = "SE"  // the sandbox could not be set up, or the command not executed
	StatusSIG Status = "SIG" // the command was killed by a signal
	StatusRFE Status = "RFE" // the command was killed by SIGSYS (seccomp)
	StatusTLE Status = "TLE" // our wall-time or cpu-time limit stopped the command
	StatusOLE Status = "OLE" // the command exceeded the file size limit (SIGXFSZ)
	StatusMLE Status = "MLE" // the memory limit's OOM killer killed in the sandbox
	StatusPLE Status = "PLE" // the pids limit refused forks, and the command failed
	StatusUK  Status = "UK"  // nothing could be known
)

// Duration is a time.Duration that encodes as {"secs":N,"nanos":N}, as
// hakoniwa's Result does.
type Duration time.Duration

// MarshalJSON encodes d as {"secs":N,"nanos":N}.
func (d Duration) MarshalJSON() ([]byte, error) {
	v := time.Duration(d)
	return fmt.Appendf(nil, `{"secs":%d,"nanos":%d}`, int64(v/time.Second), int64(v%time.Second)), nil
}

// UnmarshalJSON decodes {"secs":N,"nanos":N}.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v struct{ Secs, Nanos int64 }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Duration(time.Duration(v.Secs)*time.Second + time.Duration(v.Nanos))
	return nil
}

// Result is the report of one run. The first fields are those of hakoniwa's
// Result, in its order; the rest are ours.
type Result struct {
	Status     Status    `json:"status"`
	Reason     string    `json:"reason"`
	ExitCode   *int      `json:"exit_code"`
	StartTime  time.Time `json:"start_time"`
	RealTime   *Duration `json:"real_time"`
	SystemTime *Duration `json:"system_time"`
	UserTime   *Duration `json:"user_time"`
	// MaxRSS is the kernel's ru_maxrss of the command, in KiB. Linux counts
	// in it the memory the process had before its execve, which is the
	// caller's (see Container.CopyMemory): exact for the command's own
	// peak only when that is larger.
	MaxRSS int64 `json:"max_rss"`

	Signal    string    `json:"signal,omitempty"`     // the signal that ended the command, such as "SIGKILL"
	SetupTime *Duration `json:"setup_time,omitempty"` // from the start to the command's execve
	Pid       int       `json:"pid,omitempty"`        // the command's pid on the host
	// Capabilities are the command's capability sets, when Container.Caps
	// set them.
	Capabilities *CapSets `json:"capabilities,omitempty"`
	// Warnings say what the sandbox could not do as asked and went on
	// without, such as Landlock rights the kernel lacks.
	Warnings []string `json:"warnings,omitempty"`

	// The figures of the run's cgroup, when it had one (see
	// Container.Memory and Container.Cgroup), where the kernel has them.
	MemoryPeak *uint64   `json:"memory_peak,omitempty"` // bytes, page cache included
	OOMKill    *uint64   `json:"oom_kill,omitempty"`    // processes the OOM killer killed
	PidsPeak   *uint64   `json:"pids_peak,omitempty"`   // most processes and threads at once
	CPUUsage   *CPUUsage `json:"cpu_usage,omitempty"`   // of every process of the sandbox
	Cgroup     string    `json:"cgroup,omitempty"`      // the cgroup's path, as /proc/PID/cgroup names it
	// Limits are the limits that were in force.
	Limits *Limits `json:"limits,omitempty"`
}

// CPUUsage is the cpu time of a cgroup's processes. Total is exact; on
// cgroup v1 the kernel splits it into User and System by sampling on its
// ticks, so they may not add up to Total, and a short run may show 0.
type CPUUsage struct {
	Total  Duration `json:"total"`
	User   Duration `json:"user"`
	System Duration `json:"system"`
}

// Limits are the limits of a run, as set: cgroup limits in bytes, counts
// and cpus; the wall time; and rlimits by their names ("cpu" in seconds,
// "nofile", "fsize" in bytes, ...). Unlimited is 18446744073709551615.
type Limits struct {
	Memory     *uint64           `json:"memory,omitempty"`
	MemorySwap *uint64           `json:"memory_swap,omitempty"`
	Pids       *uint64           `json:"pids,omitempty"`
	CPUs       *float64          `json:"cpus,omitempty"`
	CPUWeight  *uint64           `json:"cpu_weight,omitempty"`
	IOWeight   *uint64           `json:"io_weight,omitempty"`
	Walltime   *Duration         `json:"walltime,omitempty"`
	Rlimits    map[string]uint64 `json:"rlimits,omitempty"`
}

// CapSets are a command's capability sets, by name.
type CapSets struct {
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
	Bounding  []string `json:"bounding"`
	Ambient   []string `json:"ambient"`
}

// JSON returns r as one line of JSON.
func (r *Result) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Code returns the exit code the CLI uses for r: the command's own code,
// 128+signal, or 125 when the sandbox failed.
func (r *Result) Code() int {
	if r.ExitCode != nil {
		return *r.ExitCode
	}
	return 125
}

func durp(d time.Duration) *Duration { v := Duration(d); return &v }
func intp(i int) *int                { return &i }

// stopCause is why the parent itself stopped a command.
type stopCause struct {
	walltime time.Duration // the wall-time limit ran out
	cpu      time.Duration // the cpu-time limit, measured on the cgroup, ran out
	cpuUsed  time.Duration // the cgroup's cpu time when it was killed
	reason   string        // another stop asked for by the caller
}

// finish fills r from the wait status and usage of the command.
func (r *Result) finish(ws unix.WaitStatus, ru *unix.Rusage, cpuLimit uint64, fsizeLimit bool, stop stopCause) {
	r.SystemTime = durp(time.Duration(ru.Stime.Nano()))
	r.UserTime = durp(time.Duration(ru.Utime.Nano()))
	r.MaxRSS = ru.Maxrss
	switch {
	case ws.Exited() && fsizeLimit && ws.ExitStatus() == 128+int(unix.SIGXFSZ):
		// The command is PID 1, which the kernel never sends SIGXFSZ
		// (its write fails with EFBIG instead); 153 is how a shell
		// reports that its child was killed by it.
		r.Status = StatusOLE
		r.ExitCode = intp(ws.ExitStatus())
		r.Reason = "exited with code 153 (128+SIGXFSZ): file size limit exceeded"
	case ws.Exited():
		r.Status = StatusOK
		r.ExitCode = intp(ws.ExitStatus())
		r.Reason = fmt.Sprintf("exited with code %d", ws.ExitStatus())
	case ws.Signaled():
		sig := ws.Signal()
		r.Signal = unix.SignalName(sig)
		r.ExitCode = intp(128 + int(sig))
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		// The kernel enforces RLIMIT_CPU on its tick-sampled cpu clock,
		// which runs ahead of the precise time in the rusage on a busy
		// machine, so a SIGKILL we did not send counts as the cpu limit
		// once at least half of it was used.
		ours := stop != (stopCause{})
		overCPU := cpuLimit > 0 && !ours && cpu >= time.Duration(cpuLimit)*time.Second/2
		switch {
		case sig == unix.SIGKILL && stop.walltime > 0:
			r.Status = StatusTLE
			r.Reason = fmt.Sprintf("wall time limit of %v exceeded: killed with SIGKILL", stop.walltime)
		case sig == unix.SIGKILL && stop.cpu > 0:
			r.Status = StatusTLE
			r.Reason = fmt.Sprintf("cpu time limit of %v exceeded: killed with SIGKILL (%v of cpu time measured for the whole sandbox)", stop.cpu, stop.cpuUsed.Round(time.Millisecond))
		case (sig == unix.SIGXCPU || sig == unix.SIGKILL) && overCPU:
			r.Status = StatusTLE
			r.Reason = fmt.Sprintf("cpu time limit of %ds exceeded: killed with %s by the kernel (%v of cpu time measured)", cpuLimit, r.Signal, cpu.Round(time.Millisecond))
		case sig == unix.SIGXFSZ && fsizeLimit:
			r.Status = StatusOLE
			r.Reason = "file size limit exceeded: killed with SIGXFSZ"
		case sig == unix.SIGSYS:
			r.Status = StatusRFE
			r.Reason = "killed with SIGSYS: a forbidden system call"
		case stop.reason != "":
			r.Status = StatusSIG
			r.Reason = fmt.Sprintf("signaled: %s (%s)", r.Signal, stop.reason)
		default:
			r.Status = StatusSIG
			r.Reason = "signaled: " + r.Signal
		}
	default:
		r.Status = StatusUK
		r.Reason = fmt.Sprintf("unknown wait status %#x", uint32(ws))
	}
}

// judgeCgroup turns what the cgroup saw into the status: MLE when the OOM
// killer killed in the sandbox, PLE when the pids limit refused forks; in
// both cases unless our own limit stopped the command first, or it exited
// with 0 all the same, which gets a warning instead.
func (r *Result) judgeCgroup(l cgroup.Limits, pidsDenied *uint64, stop stopCause) {
	if r.Status == StatusSE || r.Status == StatusUK {
		return
	}
	clean := r.Status == StatusOK && r.ExitCode != nil && *r.ExitCode == 0
	ours := stop.walltime > 0 || stop.cpu > 0
	if n := r.OOMKill; n != nil && *n > 0 {
		what := fmt.Sprintf("memory limit of %s exceeded: the OOM killer killed %d %s", sizeString(l.Memory), *n, plural(*n, "process", "processes"))
		switch {
		case l.Memory == 0:
			// Not ours: a limit above the run's cgroup, or the host's.
			r.Warnings = append(r.Warnings, fmt.Sprintf("the OOM killer killed %d %s of the sandbox, under a memory limit that is not the run's (its parent cgroup's, or the host's)", *n, plural(*n, "process", "processes")))
		case clean || ours:
			r.Warnings = append(r.Warnings, what)
		default:
			r.Status = StatusMLE
			r.Reason = what + "; command " + r.Reason
			return
		}
	}
	if n := pidsDenied; n != nil && *n > 0 && l.Pids != 0 {
		what := fmt.Sprintf("pids limit of %d reached: %d %s refused", l.Pids, *n, plural(*n, "fork was", "forks were"))
		switch {
		case clean || ours || r.Status == StatusMLE:
			r.Warnings = append(r.Warnings, what)
		default:
			r.Status = StatusPLE
			r.Reason = what + "; command " + r.Reason
		}
	}
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sizeString writes a size in bytes the way the flags take it.
func sizeString(n uint64) string {
	switch {
	case n == 0:
		return "none"
	case n == cgroup.Unlimited:
		return "unlimited"
	}
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprint(n)
}
