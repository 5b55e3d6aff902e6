package hakoniwa

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFinish checks the status rules on wait statuses that are hard to
// produce for real: SIGSYS (which needs seccomp), unknown statuses, and the
// cpu limit on a machine too busy for the kernel's and our clocks to agree.
func TestFinish(t *testing.T) {
	exited := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	signaled := func(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }
	cpu := func(d time.Duration) *unix.Rusage {
		return &unix.Rusage{Utime: unix.NsecToTimeval(int64(d))}
	}
	tests := []struct {
		name   string
		ws     unix.WaitStatus
		ru     *unix.Rusage
		cpuLim uint64
		fsize  bool
		stop   stopCause
		status Status
		code   int
		reason string
	}{
		{"exit 0", exited(0), cpu(0), 0, false, stopCause{}, StatusOK, 0, "exited with code 0"},
		{"exit 153 without fsize limit", exited(153), cpu(0), 0, false, stopCause{}, StatusOK, 153, "exited with code 153"},
		{"exit 153 under an fsize limit", exited(153), cpu(0), 0, true, stopCause{}, StatusOLE, 153, "file size limit exceeded"},
		{"SIGSYS", signaled(unix.SIGSYS), cpu(0), 0, false, stopCause{}, StatusRFE, 159, "SIGSYS"},
		{"SIGXFSZ under a limit", signaled(unix.SIGXFSZ), cpu(0), 0, true, stopCause{}, StatusOLE, 153, "file size limit"},
		{"SIGXFSZ without a limit", signaled(unix.SIGXFSZ), cpu(0), 0, false, stopCause{}, StatusSIG, 153, "signaled: SIGXFSZ"},
		{"our wall time", signaled(unix.SIGKILL), cpu(0), 0, false, stopCause{walltime: time.Second}, StatusTLE, 137, "wall time limit of 1s"},
		{"cpu limit", signaled(unix.SIGKILL), cpu(990 * time.Millisecond), 1, false, stopCause{}, StatusTLE, 137, "cpu time limit of 1s"},
		{"cpu limit on a busy machine", signaled(unix.SIGKILL), cpu(600 * time.Millisecond), 1, false, stopCause{}, StatusTLE, 137, "cpu time limit of 1s"},
		{"SIGKILL with little cpu used", signaled(unix.SIGKILL), cpu(10 * time.Millisecond), 1, false, stopCause{}, StatusSIG, 137, "signaled: SIGKILL"},
		{"SIGKILL we sent, cpu limit set", signaled(unix.SIGKILL), cpu(990 * time.Millisecond), 1, false, stopCause{reason: "context canceled"}, StatusSIG, 137, "context canceled"},
		{"external SIGKILL", signaled(unix.SIGKILL), cpu(0), 0, false, stopCause{}, StatusSIG, 137, "signaled: SIGKILL"},
		{"stopped (unknown)", unix.WaitStatus(0x137f), cpu(0), 0, false, stopCause{}, StatusUK, -1, "unknown wait status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			r.finish(tt.ws, tt.ru, tt.cpuLim, tt.fsize, tt.stop)
			code := -1
			if r.ExitCode != nil {
				code = *r.ExitCode
			}
			if r.Status != tt.status || code != tt.code || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("got %s %d %q, want %s %d containing %q", r.Status, code, r.Reason, tt.status, tt.code, tt.reason)
			}
		})
	}
}
