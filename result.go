package hakoniwa

import (
	"encoding/json"
	"fmt"
	"time"

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
		ours := stop.walltime > 0 || stop.reason != ""
		overCPU := cpuLimit > 0 && !ours && cpu >= time.Duration(cpuLimit)*time.Second/2
		switch {
		case sig == unix.SIGKILL && stop.walltime > 0:
			r.Status = StatusTLE
			r.Reason = fmt.Sprintf("wall time limit of %v exceeded: killed with SIGKILL", stop.walltime)
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
