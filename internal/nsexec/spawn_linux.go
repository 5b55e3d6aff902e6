package nsexec

import (
	"errors"
	"fmt"
	"io"
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

// vforkSyscall makes a system call whose child shares our memory and stack
// until it execs (see vfork_linux_*.s).
//
//go:noescape
func vforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, errno syscall.Errno)

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

// CloneError is a failure of clone3 itself: the namespaces could not be
// created.
type CloneError struct {
	Errno syscall.Errno
}

func (e *CloneError) Error() string { return "clone3: " + e.Errno.Error() }

func (e *CloneError) Unwrap() error { return e.Errno }

// Process is a started sandbox child.
type Process struct {
	Pid int

	mu     sync.Mutex
	pidfd  int // -1 once the child is reaped
	done   chan struct{}
	status unix.WaitStatus
	rusage unix.Rusage
	err    error

	watchdog *Watchdog // stopped and reaped before done is closed
}

// The spawner is one goroutine locked to its OS thread for the life of the
// process, that makes every clone. The child's parent-death signal fires
// when the thread that cloned it exits, so that thread must outlive every
// child: a thread per run would have to wait for its child, and a run that
// a library user starts from a thread that later exits must not die with it.
var spawner struct {
	once sync.Once
	reqs chan *spawnRequest
}

type spawnRequest struct {
	p     *Program
	errfd int32
	done  chan spawnResult
}

type spawnResult struct {
	pid, pidfd int
	errno      syscall.Errno
}

func spawnLoop() {
	runtime.LockOSThread() // never unlocked: see spawner
	for r := range spawner.reqs {
		syscall.ForkLock.Lock()
		pid, pidfd, errno := forkChild(r.p, r.errfd)
		syscall.ForkLock.Unlock()
		r.done <- spawnResult{pid, pidfd, errno}
	}
}

// prepare allocates what the child writes into.
func (p *Program) prepare() {
	p.fds = make([]int32, max(p.Slots, 1)) // a step's Dir 0 reads fds[0]
	p.empty = cstr("")
	if len(p.Keep) > 0 {
		p.keepP = &p.Keep[0]
		p.keepN = uintptr(len(p.Keep))
	}
}

// spawn has the spawner thread clone a child that runs p.
func spawn(p *Program, errfd int32) spawnResult {
	spawner.once.Do(func() {
		spawner.reqs = make(chan *spawnRequest)
		go spawnLoop()
	})
	req := &spawnRequest{p: p, errfd: errfd, done: make(chan spawnResult, 1)}
	spawner.reqs <- req
	return <-req.done
}

// Start clones the child and runs p in it. stdio are the fds that become
// 0, 1 and 2 in the child. Start returns once the child has called execve, or
// with a *StepError naming the step that failed. On failure the child has
// been reaped already.
func Start(p *Program, stdio [3]int) (*Process, error) {
	if len(p.Steps) == 0 || p.Steps[len(p.Steps)-1].Kind != OpExec {
		return nil, errors.New("nsexec: program does not end in execve")
	}
	p.prepare()

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

	// The error pipe's read end is non-blocking, so that waiting for the
	// child's execve parks this goroutine rather than a thread.
	var errp, alive [2]int
	if err := unix.Pipe2(errp[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(errp[0], true); err != nil {
		unix.Close(errp[0])
		unix.Close(errp[1])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	errr := os.NewFile(uintptr(errp[0]), "hakoniwa-errpipe")
	defer errr.Close()
	if err := unix.Pipe2(alive[:], unix.O_CLOEXEC); err != nil {
		unix.Close(errp[1])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	p.alive = [2]int32{int32(alive[0]), int32(alive[1])}

	res := spawn(p, int32(errp[1]))
	unix.Close(errp[1])
	unix.Close(alive[0])
	if res.errno != 0 {
		unix.Close(alive[1])
		return nil, &CloneError{Errno: res.errno}
	}
	proc := &Process{Pid: res.pid, pidfd: res.pidfd, done: make(chan struct{})}
	if p.Watchdog {
		// Right after the clone, so that no moment of the command's life
		// is left to its parent-death signal alone.
		w, err := startWatchdog(res.pidfd)
		if err != nil {
			unix.Close(alive[1])
			proc.Signal(unix.SIGKILL)
			go proc.reap()
			<-proc.done
			return nil, err
		}
		proc.watchdog = w
	}
	if p.Started != nil {
		p.Started(res.pid, res.pidfd) // before reap, which closes the pidfd
	}
	go proc.reap()

	var rep childReport
	n, err := io.ReadFull(errr, (*[unsafe.Sizeof(rep)]byte)(unsafe.Pointer(&rep))[:])
	// The child is past its parent-alive check once it has exec'd or failed.
	unix.Close(alive[1])
	runtime.KeepAlive(p)
	if err == io.EOF {
		return proc, nil
	}
	if n == int(unsafe.Sizeof(rep)) {
		// The child reported a failure and exits; make sure of it, as
		// a seccomp filter that refuses exit_group would keep it
		// spinning.
		proc.Signal(unix.SIGKILL)
	}
	<-proc.done
	if err != nil && err != io.ErrUnexpectedEOF {
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

// reap waits for the child through its pidfd, which the runtime's poller
// watches, so no thread blocks in wait4.
func (pr *Process) reap() {
	var (
		ws  unix.WaitStatus
		ru  unix.Rusage
		err error
	)
	if e := unix.SetNonblock(pr.pidfd, true); e != nil {
		err = e
	}
	// A dup is watched by the poller, so that the pidfd itself stays
	// usable for signals until the child is reaped.
	dup, e := unix.FcntlInt(uintptr(pr.pidfd), unix.F_DUPFD_CLOEXEC, 0)
	if e != nil && err == nil {
		err = e
	}
	if err == nil {
		f := os.NewFile(uintptr(dup), "pidfd")
		rc, e := f.SyscallConn()
		if e != nil {
			err = e
		} else {
			e = rc.Read(func(fd uintptr) bool {
				var done bool
				done, ws, err = waitPidfd(int(fd), &ru)
				return done
			})
			if e != nil && err == nil {
				err = e
			}
		}
		f.Close()
	}
	if err != nil && pr.Pid > 0 {
		// The poller could not be used: block a thread instead. Never
		// with a pid of 0, which would reap any child of ours.
		for {
			_, err = unix.Wait4(pr.Pid, &ws, 0, &ru)
			if err != unix.EINTR {
				break
			}
		}
	}
	pr.mu.Lock()
	pr.status, pr.rusage, pr.err = ws, ru, err
	unix.Close(pr.pidfd)
	pr.pidfd = -1
	pr.mu.Unlock()
	if pr.watchdog != nil {
		pr.watchdog.stop()
	}
	close(pr.done)
}

// waitPidfd reaps the child of pidfd if it has exited.
func waitPidfd(pidfd int, ru *unix.Rusage) (done bool, ws unix.WaitStatus, err error) {
	var info [128]byte // siginfo_t
	const pPIDFD = 3
	for {
		_, _, e := syscall.Syscall6(unix.SYS_WAITID, pPIDFD, uintptr(pidfd), uintptr(unsafe.Pointer(&info[0])),
			unix.WEXITED|unix.WNOHANG, uintptr(unsafe.Pointer(ru)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return true, 0, e
		}
		break
	}
	// siginfo_t for SIGCHLD: si_code at 8, si_pid at 16, si_status at 24.
	code := *(*int32)(unsafe.Pointer(&info[8]))
	pid := *(*int32)(unsafe.Pointer(&info[16]))
	status := *(*int32)(unsafe.Pointer(&info[24]))
	if pid == 0 {
		return false, 0, nil
	}
	switch code {
	case 1: // CLD_EXITED
		ws = unix.WaitStatus(status&0xff) << 8
	case 2: // CLD_KILLED
		ws = unix.WaitStatus(status & 0x7f)
	case 3: // CLD_DUMPED
		ws = unix.WaitStatus(status&0x7f) | 0x80
	default:
		return true, 0, fmt.Errorf("waitid: unexpected si_code %d", code)
	}
	return true, ws, nil
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

// forkChild clones the child. In the parent it returns the child's pid and
// pidfd; in the child it runs the program and never returns.
//
//go:norace
//go:noinline
func forkChild(p *Program, errfd int32) (pid, pidfd int, errno syscall.Errno) {
	var fd int32 = -1
	args := &cloneArgs{
		flags:      p.CloneFlags | unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(&fd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	if p.ShareMemory {
		args.flags |= unix.CLONE_VM | unix.CLONE_VFORK
	}
	if p.IntoCgroup {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(p.CgroupFD)
	}
	var r1 uintptr
	var e syscall.Errno
	runtime_BeforeFork()
	if p.ShareMemory {
		r1, e = vforkSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	} else {
		r1, _, e = syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	}
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

// A Watchdog is a small process outside the sandbox that kills it with
// SIGKILL if our process dies first. The sandbox's own parent-death signal
// does that too, but a command that is PID 1 can clear it (prctl, or a
// setuid as root inside); the watchdog, in the host's pid namespace, is out
// of its reach. It shares our memory and runs a few system calls of
// assembly (watchdog_linux_*.s), so it costs about as much as a thread.
type Watchdog struct {
	lifeline int // write end; the watchdog reads EOF when it is closed
	pid      int
	pidfd    int
}

// cloneWatchdog is in watchdog_linux_*.s.
//
//go:noescape
func cloneWatchdog(args *cloneArgs, size uintptr, lifeline, pidfd int32, buf *byte) (pid uintptr, errno syscall.Errno)

// watchdogBuf is where watchdogs read into; nothing is ever written to
// their lifelines, so it stays unused.
var watchdogBuf [8]byte

// startWatchdog starts a watchdog for the process of pidfd.
func startWatchdog(pidfd int) (*Watchdog, error) {
	// Copies above 2, so that the watchdog's dup3 onto fds 0 and 1 cannot
	// overwrite one with the other.
	dup, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("watchdog: dup pidfd: %w", err)
	}
	defer unix.Close(dup)
	var life [2]int
	if err := unix.Pipe2(life[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("watchdog: pipe: %w", err)
	}
	r, err := unix.FcntlInt(uintptr(life[0]), unix.F_DUPFD_CLOEXEC, 3)
	unix.Close(life[0])
	if err != nil {
		unix.Close(life[1])
		return nil, fmt.Errorf("watchdog: dup pipe: %w", err)
	}
	defer unix.Close(r)

	var wpidfd int32 = -1
	args := &cloneArgs{
		flags:      unix.CLONE_VM | unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(&wpidfd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	// BeforeFork blocks every signal on this thread, and the child keeps
	// that mask: it must never run a handler. Nothing between the two
	// calls can reschedule this goroutine.
	runtime_BeforeFork()
	pid, errno := cloneWatchdog(args, unsafe.Sizeof(*args), int32(r), int32(dup), &watchdogBuf[0])
	runtime_AfterFork()
	if errno != 0 {
		unix.Close(life[1])
		return nil, fmt.Errorf("watchdog: clone3: %w", errno)
	}
	return &Watchdog{lifeline: life[1], pid: int(pid), pidfd: int(wpidfd)}, nil
}

// stop lets the watchdog exit, which kills the sandbox if it still runs,
// and reaps it.
func (w *Watchdog) stop() {
	unix.Close(w.lifeline)
	wd := &Process{Pid: w.pid, pidfd: w.pidfd, done: make(chan struct{})}
	wd.reap()
}
