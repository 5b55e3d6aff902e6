package hakoniwa

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"golang.org/x/sys/unix"
)

// SeccompLearn runs the command under a filter that records every system
// call it makes into l, and lets each one go on; l.Profile() is then the
// allowlist of the run. It replaces Seccomp's filter, and it needs the
// command to start in a copy of the caller's memory (CopyMemory), which
// it sets: the supervisor must answer the child's first call, its
// execve, while the caller's thread would still wait in vfork.
func (c *Container) SeccompLearn(l *seccomp.Learner) *Container {
	c.learner = l
	c.seccomp, c.seccompFilter, c.seccompErr = nil, nil, nil
	if l != nil {
		c.seccomp = l.Filter()
		c.seccompFilter, c.seccompErr = seccomp.Compile(c.seccomp)
		c.copyMemory = true
	}
	return c
}

// kcmpFile is KCMP_FILE: kcmp compares two fds' open files.
const kcmpFile = 0

// listeners are the seccomp listeners that this process's supervisors
// hold. A child inherits copies of them (close-on-exec, but open until its
// execve), so a supervisor looking for its child's own listener skips the
// ones that a supervisor holds, and those whose filter has no users left
// (a run that ended): its child's own filter has a user, the child,
// waiting in its execve.
var listeners struct {
	sync.Mutex
	fds map[int]bool
}

// held reports whether fd is the same open file as a listener a
// supervisor holds, and if not, records it as held.
func hold(fd int) bool {
	listeners.Lock()
	defer listeners.Unlock()
	for other := range listeners.fds {
		if r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(os.Getpid()), kcmpFile, uintptr(fd), uintptr(other), 0); e == 0 && r == 0 {
			return false
		}
	}
	if listeners.fds == nil {
		listeners.fds = map[int]bool{}
	}
	listeners.fds[fd] = true
	return true
}

// dead reports whether the filter of listener fd has no users any more.
func dead(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLHUP != 0
}

func release(fd int) {
	listeners.Lock()
	delete(listeners.fds, fd)
	listeners.Unlock()
	unix.Close(fd)
}

// notif and notifResp are struct seccomp_notif and seccomp_notif_resp.
type notif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// learnStart serializes the starts of learning runs, from before the
// clone until the supervisor holds its child's listener: a child then
// inherits copies only of listeners that a supervisor holds, or whose run
// has ended, which serve tells apart from its own.
var learnStart sync.Mutex

// supervisor answers the learning filter's notifications for one run.
type supervisor struct {
	l       *seccomp.Learner
	done    chan error // receives once, when the run's filter has no more users
	started sync.Once  // unlocks learnStart
}

func newSupervisor(l *seccomp.Learner) *supervisor {
	learnStart.Lock()
	return &supervisor{l: l, done: make(chan error, 1)}
}

// startDone lets the next learning run start.
func (s *supervisor) startDone() { s.started.Do(learnStart.Unlock) }

// start is nsexec's Started hook: it takes a dup of the child's pidfd and
// serves the notifications in a goroutine.
func (s *supervisor) start(pid, pidfd int) {
	dup, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		// Nobody would answer the child's execve: end it.
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		s.startDone()
		s.done <- fmt.Errorf("seccomp learn: dup pidfd: %w", err)
		return
	}
	go func() {
		defer unix.Close(dup)
		err := s.serve(pid, dup)
		s.startDone()
		if err != nil {
			// The child may wait for an answer that will not come.
			unix.PidfdSendSignal(dup, unix.SIGKILL, nil, 0)
		}
		s.done <- err
	}()
}

// serve finds the listener fd that the child's seccomp(…,
// SECCOMP_FILTER_FLAG_NEW_LISTENER, …) made, takes a copy of it with
// pidfd_getfd, and answers every notification with "continue" until the
// filter has no more users.
func (s *supervisor) serve(pid, pidfd int) error {
	listener := -1
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	for deadline := time.Now().Add(10 * time.Second); listener < 0; {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("seccomp learn: the command is gone before its filter was loaded")
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if t, err := os.Readlink(dir + "/" + e.Name()); err == nil && t == "anon_inode:seccomp notify" {
				fd, _ := strconv.Atoi(e.Name())
				got, err := unix.PidfdGetfd(pidfd, fd, 0)
				if err != nil {
					return fmt.Errorf("seccomp learn: pidfd_getfd: %w", err)
				}
				if !hold(got) {
					unix.Close(got) // a live run's, inherited
					continue
				}
				if dead(got) {
					release(got) // an ended run's, inherited
					continue
				}
				listener = got
				break
			}
		}
		if listener >= 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("seccomp learn: the command's filter did not appear")
		}
		time.Sleep(50 * time.Microsecond)
	}
	defer release(listener)
	s.startDone()
	for {
		fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 1000); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("seccomp learn: poll: %w", err)
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				return nil // no process uses the filter any more
			}
			continue
		}
		var n notif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); e != 0 {
			if e == unix.EINTR || e == unix.ENOENT {
				continue // interrupted, or the caller went away
			}
			return fmt.Errorf("seccomp learn: receive: %w", e)
		}
		s.l.Record(n.arch, n.nr, n.args)
		r := notifResp{id: n.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&r))); e != 0 && e != unix.ENOENT {
			return fmt.Errorf("seccomp learn: send: %w", e)
		}
	}
}
