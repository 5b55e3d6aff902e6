package hakoniwa

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// goAhead is a pipe on which a child waits, at an nsexec WaitGo step, for
// its parent to finish a task on it between the clone and the execve (move
// it into a systemd scope, start its network): one byte lets it go on; end
// of file fails the step.
type goAhead struct{ r, w int }

// noGoAhead is the pipe of a plan, which is never run.
var noGoAhead = goAhead{-1, -1}

func newGoAhead() (goAhead, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return noGoAhead, fmt.Errorf("pipe: %w", err)
	}
	return goAhead{p[0], p[1]}, nil
}

// give lets the child go on, or, when the task failed, kills it through
// its pidfd: not only end of file, as another run's child, cloned
// meanwhile, may hold a copy of the write end until its own execve.
func (g *goAhead) give(err error, pidfd int) {
	if err == nil {
		unix.Write(g.w, []byte{1})
	} else {
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	}
	unix.Close(g.w)
	g.w = -1
}

// close closes what is left of the pipe.
func (g *goAhead) close() {
	for _, fd := range []*int{&g.r, &g.w} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
