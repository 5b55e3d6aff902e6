package nsexec

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runChild executes p's steps in the freshly cloned child and never returns.
//
// It runs in a copy of the parent's address space in which only this thread
// exists. It must not allocate, take a lock, call the runtime or grow the
// stack: every function it calls is nosplit and makes raw system calls.
//
//go:nosplit
//go:norace
func runChild(p *Program, errfd int32) {
	var (
		i     int
		s     *Step
		r1    uintptr
		errno syscall.Errno
		dir   uintptr
		done  uintptr
		pfd   unix.PollFd
	)
	for i = 0; i < len(p.Steps); i++ {
		s = &p.Steps[i]
		errno = 0
		dir = atFDCWD
		if s.Dir >= 0 {
			dir = uintptr(p.fds[s.Dir])
		}
		switch s.Kind {
		case OpOpen:
			r1, _, errno = syscall.RawSyscall6(unix.SYS_OPENAT2, dir, uintptr(unsafe.Pointer(s.P1)), uintptr(s.Ptr), unix.SizeofOpenHow, 0, 0)
			p.fds[s.Slot] = int32(r1)
		case OpWrite:
			done = 0
			for done < s.N {
				r1, _, errno = syscall.RawSyscall(unix.SYS_WRITE, uintptr(p.fds[s.Slot]), uintptr(unsafe.Pointer(s.P2))+done, s.N-done)
				if errno == syscall.EINTR {
					errno = 0
					continue
				}
				if errno != 0 {
					break
				}
				if r1 == 0 {
					errno = syscall.EIO
					break
				}
				done += r1
			}
		case OpClose:
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(p.fds[s.Slot]), 0, 0)
		case OpMount:
			_, _, errno = syscall.RawSyscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(s.P1)), uintptr(unsafe.Pointer(s.P2)), uintptr(unsafe.Pointer(s.P3)), s.A, 0, 0)
		case OpOpenTree:
			r1, _, errno = syscall.RawSyscall(unix.SYS_OPEN_TREE, dir, uintptr(unsafe.Pointer(s.P1)), s.A)
			p.fds[s.Slot] = int32(r1)
		case OpSetAttr:
			_, _, errno = syscall.RawSyscall6(unix.SYS_MOUNT_SETATTR, uintptr(p.fds[s.Slot]), uintptr(unsafe.Pointer(p.empty)), unix.AT_EMPTY_PATH|s.A, uintptr(s.Ptr), unsafe.Sizeof(unix.MountAttr{}), 0)
		case OpFsOpen:
			r1, _, errno = syscall.RawSyscall(unix.SYS_FSOPEN, uintptr(unsafe.Pointer(s.P1)), unix.FSOPEN_CLOEXEC, 0)
			p.fds[s.Slot] = int32(r1)
		case OpFsConfig:
			_, _, errno = syscall.RawSyscall6(unix.SYS_FSCONFIG, uintptr(p.fds[s.Slot]), s.A, uintptr(unsafe.Pointer(s.P1)), uintptr(unsafe.Pointer(s.P2)), 0, 0)
		case OpFsConfigFD:
			_, _, errno = syscall.RawSyscall6(unix.SYS_FSCONFIG, uintptr(p.fds[s.Slot]), unix.FSCONFIG_SET_FD, uintptr(unsafe.Pointer(s.P1)), 0, dir, 0)
		case OpFsMount:
			r1, _, errno = syscall.RawSyscall(unix.SYS_FSMOUNT, dir, unix.FSMOUNT_CLOEXEC, s.A)
			p.fds[s.Slot] = int32(r1)
		case OpMoveMount:
			r1 = atFDCWD
			if s.Slot >= 0 {
				r1 = uintptr(p.fds[s.Slot])
			}
			_, _, errno = syscall.RawSyscall6(unix.SYS_MOVE_MOUNT, dir, uintptr(unsafe.Pointer(p.empty)), r1, uintptr(unsafe.Pointer(s.P1)), s.A, 0)
		case OpMkdir:
			_, _, errno = syscall.RawSyscall(unix.SYS_MKDIRAT, dir, uintptr(unsafe.Pointer(s.P1)), s.A)
			if errno == syscall.EEXIST && s.B != 0 {
				errno = 0
			}
		case OpSymlink:
			_, _, errno = syscall.RawSyscall(unix.SYS_SYMLINKAT, uintptr(unsafe.Pointer(s.P1)), dir, uintptr(unsafe.Pointer(s.P2)))
		case OpUnlink:
			_, _, errno = syscall.RawSyscall(unix.SYS_UNLINKAT, dir, uintptr(unsafe.Pointer(s.P1)), s.A)
		case OpFchdir:
			_, _, errno = syscall.RawSyscall(unix.SYS_FCHDIR, uintptr(p.fds[s.Slot]), 0, 0)
		case OpChdir:
			_, _, errno = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(s.P1)), 0, 0)
		case OpPivotRoot:
			_, _, errno = syscall.RawSyscall(unix.SYS_PIVOT_ROOT, uintptr(unsafe.Pointer(s.P1)), uintptr(unsafe.Pointer(s.P1)), 0)
		case OpUmount:
			_, _, errno = syscall.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(s.P1)), s.A, 0)
		case OpSethostname:
			_, _, errno = syscall.RawSyscall(unix.SYS_SETHOSTNAME, uintptr(unsafe.Pointer(s.P1)), s.A, 0)
		case OpSetrlimit:
			_, _, errno = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, s.A, uintptr(s.Ptr), 0, 0, 0)
		case OpSetsid:
			_, _, errno = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
		case OpPrctl:
			_, _, errno = syscall.RawSyscall6(unix.SYS_PRCTL, s.A, s.B, s.C, 0, 0, 0)
		case OpParentAlive:
			// The parent holds the write end of the pipe whose read end
			// is p.alive[0]. If it has died, poll reports a hang-up.
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(p.alive[1]), 0, 0)
			pfd.Fd = p.alive[0]
			pfd.Events = unix.POLLIN
			r1, _, errno = syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&p.zero)), 0, 0, 0)
			if errno == 0 && r1 > 0 && pfd.Revents&unix.POLLHUP != 0 {
				errno = syscall.ESRCH
			}
		case OpWaitGo:
			syscall.RawSyscall(unix.SYS_CLOSE, s.B, 0, 0)
			for {
				r1, _, errno = syscall.RawSyscall(unix.SYS_READ, s.A, uintptr(unsafe.Pointer(&p.goBuf[0])), 1)
				if errno != syscall.EINTR {
					break
				}
			}
			if errno == 0 && r1 != 1 {
				errno = syscall.ECANCELED
			}
			syscall.RawSyscall(unix.SYS_CLOSE, s.A, 0, 0)
		case OpDupStdio:
			for r1 = 0; r1 < 3; r1++ {
				_, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(p.stdio[r1]), r1, 0)
				if errno != 0 {
					break
				}
			}
		case OpCloseFds:
			_, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0)>>32, unix.CLOSE_RANGE_CLOEXEC)
			for r1 = 0; errno == 0 && r1 < p.keepN; r1++ {
				_, _, errno = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(*(*int32)(unsafe.Add(unsafe.Pointer(p.keepP), r1*4))), unix.F_SETFD, 0)
			}
		case OpSyscall:
			_, _, errno = syscall.RawSyscall(s.A, s.B, s.C, s.N)
		case OpIfUp:
			r1, _, errno = syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if errno == 0 {
				_, _, errno = syscall.RawSyscall(unix.SYS_IOCTL, r1, unix.SIOCSIFFLAGS, uintptr(s.Ptr))
				syscall.RawSyscall(unix.SYS_CLOSE, r1, 0, 0)
			}
		case OpNetlink:
			errno = netlink(p, s)
		case OpForkUserns:
			errno = forkUserns(p, s)
		case OpSetns:
			_, _, errno = syscall.RawSyscall(unix.SYS_SETNS, uintptr(p.fds[s.Slot]), s.A, 0)
		case OpReap:
			syscall.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(p.fds[s.Slot]), uintptr(unix.SIGKILL), 0, 0, 0, 0)
			for {
				_, _, errno = syscall.RawSyscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(p.fds[s.Slot]), 0, unix.WEXITED, 0, 0)
				if errno != syscall.EINTR {
					break
				}
			}
		case OpLandlockCreate:
			r1, _, errno = syscall.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(s.Ptr), s.N, 0)
			p.fds[s.Slot] = int32(r1)
		case OpLandlockPath:
			errno = landlockPath(p, s)
		case OpLandlockPort:
			_, _, errno = syscall.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(p.fds[s.Slot]), landlockRuleNetPort, uintptr(s.Ptr), 0, 0, 0)
		case OpLandlockRestrict:
			_, _, errno = syscall.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(p.fds[s.Slot]), 0, 0)
		case OpSeccomp:
			_, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, s.A, uintptr(s.Ptr))
		case OpUmask:
			syscall.RawSyscall(unix.SYS_UMASK, s.A, 0, 0)
		case OpCheckProgram:
			if p.found >= 0 {
				errno = checkProgram(p, p.cands[p.found])
			} else {
				errno = checkProgram(p, s.P1)
			}
		case OpSearch:
			errno = search(p)
		case OpExec:
			prog := s.P1
			if p.found >= 0 {
				prog = p.cands[p.found]
			}
			_, _, errno = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
		}
		if errno != 0 {
			break
		}
	}
	// Only a failure gets here.
	p.errb.Step = uint32(i)
	p.errb.Errno = uint32(errno)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errfd), uintptr(unsafe.Pointer(&p.errb)), unsafe.Sizeof(p.errb))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 125, 0, 0)
	}
}

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

// landlockRuleNetPort is LANDLOCK_RULE_NET_PORT.
const landlockRuleNetPort = 2

// forkUserns forks a process (fork semantics: a copy of this one's
// memory, its own stack) that unshares a user namespace, says so on a
// pipe, and waits to be killed. The pidfd comes back in fd[slot].
//
//go:nosplit
//go:norace
func forkUserns(p *Program, s *Step) syscall.Errno {
	var fds [2]int32
	_, _, errno := syscall.RawSyscall(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&fds[0])), unix.O_CLOEXEC, 0)
	if errno != 0 {
		return errno
	}
	p.fds[s.Slot] = -1
	// clone(flags, stack, parent_tid, ...): with CLONE_PIDFD the pidfd
	// is written to parent_tid, the third argument on every arch.
	pid, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, unix.CLONE_PIDFD|uintptr(unix.SIGCHLD), 0, uintptr(unsafe.Pointer(&p.fds[s.Slot])), 0, 0, 0)
	if errno == 0 && pid == 0 {
		// The new process.
		// It says 0, or the errno of the unshare, in one byte.
		_, _, errno = syscall.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		p.goBuf[0] = byte(errno)
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(fds[1]), uintptr(unsafe.Pointer(&p.goBuf[0])), 1)
		for errno == 0 {
			syscall.RawSyscall6(unix.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
		}
		for {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 1, 0, 0)
		}
	}
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fds[1]), 0, 0)
	if errno == 0 {
		var n uintptr
		for {
			n, _, errno = syscall.RawSyscall(unix.SYS_READ, uintptr(fds[0]), uintptr(unsafe.Pointer(&p.goBuf[0])), 1)
			if errno != syscall.EINTR {
				break
			}
		}
		switch {
		case errno == 0 && n != 1:
			errno = syscall.ECHILD // it died
		case errno == 0 && p.goBuf[0] != 0:
			errno = syscall.Errno(p.goBuf[0]) // it could not unshare
		case errno == 0 && pid != s.A:
			errno = syscall.ESRCH // not the pid its maps are written for
		}
	}
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fds[0]), 0, 0)
	return errno
}

// netlink sends the step's message on a new netlink socket and reads the
// first answer: an NLMSG_ERROR, whose error is 0 for an acknowledgement.
//
//go:nosplit
//go:norace
func netlink(p *Program, s *Step) syscall.Errno {
	fd, _, errno := syscall.RawSyscall(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, s.A)
	if errno != 0 {
		return errno
	}
	var n uintptr
	for {
		// To the kernel: an unbound, unconnected netlink socket sends
		// to port 0.
		n, _, errno = syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(s.P2)), s.N, 0, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno == 0 && n != s.N {
		errno = syscall.EMSGSIZE
	}
	for errno == 0 {
		// A datagram longer than the buffer is cut: the header and
		// error code come first.
		n, _, errno = syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.nlBuf[0])), uintptr(len(p.nlBuf)), 0, 0, 0)
		if errno == syscall.EINTR {
			errno = 0
			continue
		}
		if errno == 0 {
			errno = syscall.EPROTO
			if n >= unix.NLMSG_HDRLEN+4 && *(*uint16)(unsafe.Pointer(&p.nlBuf[4])) == unix.NLMSG_ERROR {
				errno = syscall.Errno(-*(*int32)(unsafe.Pointer(&p.nlBuf[unix.NLMSG_HDRLEN])))
			}
		}
		break
	}
	syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
	return errno
}

// landlockPath opens the step's path, and adds a path-beneath rule for it
// to the ruleset: the step's access for a directory, its file access for
// anything else (the kernel refuses directory rights on a file).
//
//go:nosplit
//go:norace
func landlockPath(p *Program, s *Step) syscall.Errno {
	fd, _, errno := syscall.RawSyscall6(unix.SYS_OPENAT2, atFDCWD, uintptr(unsafe.Pointer(s.P1)), uintptr(unsafe.Pointer(&p.pathHow)), unix.SizeofOpenHow, 0, 0)
	if errno != 0 {
		return errno
	}
	access := uint64(s.A)
	if _, _, e := syscall.RawSyscall(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&p.stat)), 0); e == 0 && p.stat.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= uint64(s.B)
	}
	attr := (*[2]uint64)(s.Ptr)
	attr[0] = access
	attr[1] = uint64(uint32(int32(fd))) // parent_fd, an s32 right after the u64 (packed)
	_, _, errno = syscall.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(p.fds[s.Slot]), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(s.Ptr), 0, 0, 0)
	syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
	return errno
}

// search sets p.found to the index of the first candidate that is an
// executable regular file. Like execvp, it goes on past a candidate that
// is missing or cannot be executed, and fails with EACCES if one could not
// be executed (or is not a regular file), else ENOENT; ELOOP (a magic
// link) is reported too.
//
//go:nosplit
//go:norace
func search(p *Program) syscall.Errno {
	var (
		i         int
		fd        uintptr
		errno, e2 syscall.Errno
	)
	errno = syscall.ENOENT
	for i = 0; i < len(p.cands); i++ {
		_, _, e2 = syscall.RawSyscall6(unix.SYS_FACCESSAT2, atFDCWD, uintptr(unsafe.Pointer(p.cands[i])), unix.X_OK, unix.AT_EACCESS, 0, 0)
		if e2 == syscall.EACCES && errno != syscall.ELOOP {
			errno = e2
		}
		if e2 != 0 {
			continue
		}
		fd, _, e2 = syscall.RawSyscall6(unix.SYS_OPENAT2, atFDCWD, uintptr(unsafe.Pointer(p.cands[i])), uintptr(unsafe.Pointer(&p.pathHow)), unix.SizeofOpenHow, 0, 0)
		if e2 == syscall.ELOOP {
			errno = e2
		}
		if e2 != 0 {
			continue
		}
		_, _, e2 = syscall.RawSyscall(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&p.stat)), 0)
		syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		if e2 != 0 || p.stat.Mode&unix.S_IFMT != unix.S_IFREG {
			if errno != syscall.ELOOP {
				errno = syscall.EACCES
			}
			continue
		}
		p.found = i
		return 0
	}
	return errno
}

// checkProgram fails with ELOOP if the program at path, or the interpreter
// named on its #! line (and so on, as deep as the kernel goes), is reached
// through a magic link such as /proc/self/exe, which names a file outside
// the new root: the host's hakoniwa binary, or the library caller's.
//
//go:nosplit
//go:norace
func checkProgram(p *Program, path *byte) syscall.Errno {
	var (
		depth, i, start int
		fd, n           uintptr
		errno           syscall.Errno
	)
	for depth = 0; depth < 5; depth++ {
		fd, _, errno = syscall.RawSyscall6(unix.SYS_OPENAT2, atFDCWD, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&p.pathHow)), unix.SizeofOpenHow, 0, 0)
		if errno != 0 {
			return errno
		}
		_, _, errno = syscall.RawSyscall(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&p.stat)), 0)
		syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		if errno != 0 || p.stat.Mode&unix.S_IFMT != unix.S_IFREG {
			return 0 // execve will say what is wrong with it
		}
		fd, _, errno = syscall.RawSyscall6(unix.SYS_OPENAT2, atFDCWD, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&p.readHow)), unix.SizeofOpenHow, 0, 0)
		if errno != 0 {
			return 0 // unreadable, so not a script the kernel could run
		}
		n, _, errno = syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p.shebang[0])), uintptr(len(p.shebang)-1))
		syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		if errno != 0 || n < 3 || p.shebang[0] != '#' || p.shebang[1] != '!' {
			return 0
		}
		// Indexed through a pointer: i stays below n, at most
		// len(p.shebang)-1, and bounds checks would call the runtime,
		// which a nosplit chain this deep cannot (the fuzzers'
		// instrumentation makes every frame bigger).
		i = 2
		for i < int(n) && (*shebangAt(p, i) == ' ' || *shebangAt(p, i) == '\t') {
			i++
		}
		start = i
		for i < int(n) && *shebangAt(p, i) != ' ' && *shebangAt(p, i) != '\t' && *shebangAt(p, i) != '\n' && *shebangAt(p, i) != 0 {
			i++
		}
		if i == start {
			return 0
		}
		*shebangAt(p, i) = 0
		path = shebangAt(p, start)
	}
	return 0
}

// shebangAt is &p.shebang[i], without a bounds check.
//
//go:nosplit
//go:norace
func shebangAt(p *Program, i int) *byte {
	return (*byte)(unsafe.Add(unsafe.Pointer(&p.shebang), i))
}
