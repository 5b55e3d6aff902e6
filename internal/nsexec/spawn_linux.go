package nsexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// cloneArgs is struct clone_args of clone3(2).
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// StepError is a failure of one step of the Program in the child.
type StepError struct {
	Index int
	Kind  Kind
	Desc  string
	Errno syscall.Errno
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: %v", e.Desc, e.Errno)
}

func (e *StepError) Unwrap() error { return e.Errno }

// Process is a started sandbox child.
type Process struct {
	Pid int

	mu     sync.Mutex
	pidfd  int // -1 once the child is reaped
	done   chan struct{}
	status unix.WaitStatus
	rusage unix.Rusage
	err    error
}

// Start clones the child and runs p in it. stdio are the fds that become
// 0, 1 and 2 in the child. Start returns once the child has called execve, or
// with a *StepError naming the step that failed. On failure the child has
// been reaped already.
func Start(p *Program, stdio [3]int) (*Process, error) {
	if len(p.Steps) == 0 || p.Steps[len(p.Steps)-1].Kind != OpExec {
		return nil, errors.New("nsexec: program does not end in execve")
	}
	p.fds = make([]int32, p.Slots)
	p.empty = cstr("")
	if len(p.Keep) > 0 {
		p.keepP = &p.Keep[0]
		p.keepN = uintptr(len(p.Keep))
	}

	// Copies of the stdio fds above 2, so that dup3 onto 0-2 in the child
	// never overwrites a source it still needs.
	for i, fd := range stdio {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			for j := 0; j < i; j++ {
				unix.Close(int(p.stdio[j]))
			}
			return nil, fmt.Errorf("dup stdio fd %d: %w", fd, err)
		}
		p.stdio[i] = int32(nfd)
	}
	defer func() {
		for _, fd := range p.stdio {
			unix.Close(int(fd))
		}
	}()

	type started struct {
		pid, pidfd int
		errr       int // read end of the error pipe
		err        error
	}
	startc := make(chan started, 1)
	proc := &Process{done: make(chan struct{}), pidfd: -1}

	go func() {
		// The child's parent-death signal fires when this thread exits,
		// so the thread stays locked to this goroutine, and is
		// destroyed with it, after the child has been reaped.
		runtime.LockOSThread()

		var errp, alive [2]int
		syscall.ForkLock.Lock()
		if err := unix.Pipe2(errp[:], unix.O_CLOEXEC); err != nil {
			syscall.ForkLock.Unlock()
			startc <- started{err: fmt.Errorf("pipe: %w", err)}
			return
		}
		if err := unix.Pipe2(alive[:], unix.O_CLOEXEC); err != nil {
			syscall.ForkLock.Unlock()
			unix.Close(errp[0])
			unix.Close(errp[1])
			startc <- started{err: fmt.Errorf("pipe: %w", err)}
			return
		}
		p.alive = [2]int32{int32(alive[0]), int32(alive[1])}
		pid, pidfd, errno := forkChild(p, int32(errp[1]))
		syscall.ForkLock.Unlock()
		unix.Close(errp[1])
		unix.Close(alive[0])
		runtime.KeepAlive(p)
		if errno != 0 {
			unix.Close(errp[0])
			unix.Close(alive[1])
			startc <- started{err: fmt.Errorf("clone3: %w", errno)}
			return
		}
		proc.Pid = pid
		proc.pidfd = pidfd
		startc <- started{pid: pid, pidfd: pidfd, errr: errp[0]}

		var ws unix.WaitStatus
		var ru unix.Rusage
		var err error
		for {
			_, err = unix.Wait4(pid, &ws, 0, &ru)
			if err != unix.EINTR {
				break
			}
		}
		unix.Close(alive[1])
		proc.mu.Lock()
		proc.status, proc.rusage, proc.err = ws, ru, err
		unix.Close(proc.pidfd)
		proc.pidfd = -1
		proc.mu.Unlock()
		close(proc.done)
	}()

	st := <-startc
	if st.err != nil {
		return nil, st.err
	}
	var rep childReport
	n, err := readFull(st.errr, (*[unsafe.Sizeof(rep)]byte)(unsafe.Pointer(&rep))[:])
	unix.Close(st.errr)
	runtime.KeepAlive(p)
	if err != nil || n != 0 {
		<-proc.done
		if err != nil {
			return nil, fmt.Errorf("read child status: %w", err)
		}
		if n != int(unsafe.Sizeof(rep)) {
			return nil, fmt.Errorf("child died during setup (%s)", describeStatus(proc.status))
		}
		se := &StepError{Index: int(rep.Step), Errno: syscall.Errno(rep.Errno)}
		if se.Index < len(p.Steps) {
			se.Kind = p.Steps[se.Index].Kind
			se.Desc = p.Steps[se.Index].Desc
		}
		return nil, se
	}
	return proc, nil
}

func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// forkChild clones the child. In the parent it returns the child's pid and
// pidfd; in the child it runs the program and never returns.
//
//go:norace
func forkChild(p *Program, errfd int32) (pid, pidfd int, errno syscall.Errno) {
	var fd int32 = -1
	args := &cloneArgs{
		flags:      p.CloneFlags | unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(&fd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	runtime_BeforeFork()
	// A copy of our memory rather than CLONE_VM|CLONE_VFORK: with a shared
	// memory the kernel charges the caller's peak RSS to the command's
	// max_rss at execve, and its cpu time was seen to be undercounted.
	r1, _, e := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	if e != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), int(fd), e
	}
	// In the child: only nosplit code and raw system calls from here on.
	runtime_AfterForkInChild()
	runChild(p, errfd)
	return 0, 0, 0
}

// Done is closed when the child has been reaped.
func (pr *Process) Done() <-chan struct{} { return pr.done }

// Wait waits for the child to exit and returns its wait status and usage.
func (pr *Process) Wait() (unix.WaitStatus, unix.Rusage, error) {
	<-pr.done
	return pr.status, pr.rusage, pr.err
}

// ErrDone is returned by Signal once the child has been reaped.
var ErrDone = errors.New("sandbox has already exited")

// Signal sends sig to the child through its pidfd, so that a recycled pid is
// never hit.
func (pr *Process) Signal(sig unix.Signal) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.pidfd < 0 {
		return ErrDone
	}
	_, _, e := syscall.Syscall6(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(pr.pidfd), uintptr(sig), 0, 0, 0, 0)
	if e == unix.ESRCH {
		return ErrDone
	}
	if e != 0 {
		return os.NewSyscallError("pidfd_send_signal", e)
	}
	return nil
}
