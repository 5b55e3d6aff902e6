// Package nsexec runs a sandbox plan in a freshly cloned child process.
//
// The parent compiles the whole sandbox into a Program: a flat list of steps
// whose arguments are plain data (NUL-terminated byte strings, integers and
// pre-built kernel structs). Start clones the child with the namespace flags
// from a goroutine locked to its OS thread. The child then executes the steps
// with raw system calls only, up to execve: it never allocates, takes locks or
// grows its stack, so it is safe in a copy of a multi-threaded Go process. A
// failing step is reported as (step index, errno) over a close-on-exec pipe;
// end of file on that pipe means execve succeeded.
//
// Our own binary is never executed inside the sandbox.
package nsexec

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kind is the kind of one step of a Program.
type Kind uint8

// The step kinds. Each is executed by the child as one or a few raw system
// calls; see (*Program).String for their printed form.
const (
	OpOpen             Kind = iota + 1 // fd[slot] = openat2(fd[dir], p1, how)
	OpWrite                            // write all of p2[:n] to fd[slot]
	OpClose                            // close(fd[slot])
	OpMount                            // mount(p1, p2, p3, a, nil)
	OpOpenTree                         // fd[slot] = open_tree(fd[dir] or AT_FDCWD, p1, a)
	OpSetAttr                          // mount_setattr(fd[slot], "", AT_EMPTY_PATH|a, attr)
	OpFsOpen                           // fd[slot] = fsopen(p1, FSOPEN_CLOEXEC)
	OpFsConfig                         // fsconfig(fd[slot], a, p1, p2, 0)
	OpFsConfigFD                       // fsconfig(fd[slot], FSCONFIG_SET_FD, p1, NULL, fd[dir])
	OpFsMount                          // fd[slot] = fsmount(fd[dir], FSMOUNT_CLOEXEC, a)
	OpMoveMount                        // move_mount(fd[dir], "", fd[slot] or AT_FDCWD, p1, a)
	OpMkdir                            // mkdirat(fd[dir], p1, a); EEXIST is fine if b != 0
	OpSymlink                          // symlinkat(p1, fd[dir], p2)
	OpUnlink                           // unlinkat(fd[dir], p1, a)
	OpFchdir                           // fchdir(fd[slot])
	OpChdir                            // chdir(p1)
	OpPivotRoot                        // pivot_root(".", ".")
	OpUmount                           // umount2(p1, a)
	OpSethostname                      // sethostname(p1, a)
	OpSetrlimit                        // prlimit64(0, a, rlimit, nil)
	OpSetsid                           // setsid()
	OpPrctl                            // prctl(a, b, c, 0, 0)
	OpParentAlive                      // exit if fd[slot] (read end of the parent's pipe) hangs up
	OpWaitGo                           // close(b), then read a byte from a: the parent's go-ahead
	OpCloseFds                         // close_range(3, ~0, CLOSE_RANGE_CLOEXEC), then keep the fds in keep
	OpDupStdio                         // dup3(stdio[i], i, 0) for i in 0..2
	OpUmask                            // umask(a)
	OpSyscall                          // syscall a(b, c, n)
	OpIfUp                             // bring up the interface named in the ifreq at ptr
	OpNetlink                          // send p2[:n] on a new netlink socket of protocol a; fail with the errno of the first answer
	OpForkUserns                       // fork a process that unshares a user namespace and waits; fd[slot] = its pidfd; fail unless its pid is a
	OpSetns                            // setns(fd[slot], a)
	OpReap                             // pidfd_send_signal(fd[slot], SIGKILL), then waitid(P_PIDFD, fd[slot])
	OpSeccomp                          // seccomp(SECCOMP_SET_MODE_FILTER, a, ptr to sock_fprog)
	OpLandlockCreate                   // fd[slot] = landlock_create_ruleset(ptr, n, 0)
	OpLandlockPath                     // allow a (b if p1 is not a directory) beneath p1 in ruleset fd[slot]
	OpLandlockPort                     // add the net_port rule at ptr to ruleset fd[slot]
	OpLandlockRestrict                 // landlock_restrict_self(fd[slot], 0)
	OpCheckProgram                     // fail if the program found, or p1, or its #! interpreters cross a magic link
	OpSearch                           // find the program among the candidates
	OpExec                             // execve(the program found, or p1, argv, envv)
)

// AtCWD as a dir slot means AT_FDCWD.
const AtCWD = -1

// Step is one step of a Program. The child reads only the fields before Desc.
type Step struct {
	Kind Kind
	Slot int32 // result or operand fd slot
	Dir  int32 // directory fd slot, or AtCWD

	A, B, C uintptr
	P1, P2  *byte
	P3      *byte
	N       uintptr
	Ptr     unsafe.Pointer // a pre-built kernel struct (open_how, mount_attr, rlimit)

	// Desc says in words what the step does, for --dry-run and for errors.
	Desc string
}

// Program is a compiled sandbox: the clone flags and the steps the child runs.
type Program struct {
	CloneFlags uint64
	// ShareMemory clones with CLONE_VM|CLONE_VFORK: the child runs in our
	// memory until its execve, instead of in a copy. That costs nothing
	// however large the caller is, but the kernel then counts the
	// caller's resident memory in the command's ru_maxrss.
	ShareMemory bool
	// Watchdog starts a watchdog (see Watchdog) right after the clone.
	Watchdog bool
	// IntoCgroup clones the child into the cgroup v2 directory CgroupFD
	// (CLONE_INTO_CGROUP), so that it is in it from its first instruction.
	IntoCgroup bool
	CgroupFD   int
	CgroupPath string // for String
	Steps      []Step
	Slots      int // number of fd slots the steps use
	// Started, if set, is called right after the clone with the child's
	// pid and pidfd, before Start waits for the child's execve: a
	// seccomp supervisor must answer the child's first notification, the
	// execve itself. It must not keep the pidfd.
	Started func(pid, pidfd int)
	Keep    []int32 // fds kept open across execve, beyond 0-2

	fds   []int32     // fd slots, written by the child in its copy of memory
	stdio [3]int32    // set by Start
	argv  []*byte     // NUL-terminated argv array
	envv  []*byte     // NUL-terminated envv array
	alive [2]int32    // parent-alive pipe, set by Start
	keepP *int32      // first element of Keep, or nil
	keepN uintptr     // len(Keep)
	empty *byte       // ""
	errb  childReport // buffer the child writes its failure into
	goBuf [1]byte     // what OpWaitGo reads into
	nlBuf [64]byte    // what OpNetlink reads the kernel's answer into
	zero  unix.Timespec

	keepFilter []unix.SockFilter // the seccomp filter OpSeccomp points to
	keepAlive  []any             // what steps point to as plain numbers

	// for OpSearch: the paths to try, and the index of the one found (-1
	// for none). An index, not a pointer: the child must not store
	// pointers, which would call the garbage collector's write barrier.
	cands []*byte
	found int

	// for OpCheckProgram
	pathHow, readHow unix.OpenHow
	stat             unix.Stat_t
	shebang          [256]byte
}

// childReport is what a failing child writes on the error pipe.
type childReport struct {
	Step  uint32
	Errno uint32
}

// cstr returns a NUL-terminated copy of s. It panics on an embedded NUL,
// which the compiler has already rejected with a clear error.
func cstr(s string) *byte {
	p, err := syscall.BytePtrFromString(s)
	if err != nil {
		panic(fmt.Sprintf("nsexec: string with NUL byte: %q", s))
	}
	return p
}

// Builder appends steps to a Program.
type Builder struct {
	P *Program
}

// NewBuilder returns a Builder for a Program with the given clone flags.
func NewBuilder(cloneFlags uint64) *Builder {
	return &Builder{P: &Program{CloneFlags: cloneFlags, found: -1}}
}

// Slot allocates a new fd slot.
func (b *Builder) Slot() int32 {
	b.P.Slots++
	return int32(b.P.Slots - 1)
}

func (b *Builder) add(s Step) {
	b.P.Steps = append(b.P.Steps, s)
}

// Open opens path (relative to the fd in dir) with openat2.
func (b *Builder) Open(dir int32, path string, flags, mode, resolve uint64, desc string) int32 {
	slot := b.Slot()
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolve}
	b.add(Step{Kind: OpOpen, Slot: slot, Dir: dir, P1: cstr(path), Ptr: unsafe.Pointer(how), Desc: desc})
	return slot
}

// Write writes data to the fd in slot.
func (b *Builder) Write(slot int32, data []byte, desc string) {
	p := make([]byte, len(data)+1)
	copy(p, data)
	b.add(Step{Kind: OpWrite, Slot: slot, P2: &p[0], N: uintptr(len(data)), Desc: desc})
}

// Close closes the fd in slot.
func (b *Builder) Close(slot int32) {
	b.add(Step{Kind: OpClose, Slot: slot, Desc: "close"})
}

// Mount calls mount(2) with no data.
func (b *Builder) Mount(src, target, fstype string, flags uintptr, desc string) {
	b.add(Step{Kind: OpMount, P1: cstr(src), P2: cstr(target), P3: cstr(fstype), A: flags, Desc: desc})
}

// OpenTree clones the mount tree at a host path into a detached tree.
func (b *Builder) OpenTree(path string, flags uintptr, desc string) int32 {
	return b.OpenTreeAt(AtCWD, path, flags, desc)
}

// OpenTreeAt clones the mount tree at path relative to the fd in dir.
func (b *Builder) OpenTreeAt(dir int32, path string, flags uintptr, desc string) int32 {
	slot := b.Slot()
	b.add(Step{Kind: OpOpenTree, Slot: slot, Dir: dir, P1: cstr(path), A: flags, Desc: desc})
	return slot
}

// SetAttr changes the attributes of the mount (tree) in slot.
func (b *Builder) SetAttr(slot int32, set, clr uint64, recursive bool, desc string) {
	var flags uintptr
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: set, Attr_clr: clr}
	b.add(Step{Kind: OpSetAttr, Slot: slot, A: flags, Ptr: unsafe.Pointer(attr), Desc: desc})
}

// NewMount creates a detached mount of a new fstype instance with the given
// string options, and returns the slot of the mount fd.
func (b *Builder) NewMount(fstype string, opts [][2]string, attrs uint64, desc string) int32 {
	ctx := b.Slot()
	b.add(Step{Kind: OpFsOpen, Slot: ctx, P1: cstr(fstype), Desc: desc + ": fsopen " + fstype})
	for _, kv := range opts {
		if kv[1] == "" {
			b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_SET_FLAG, P1: cstr(kv[0]), Desc: desc + ": option " + kv[0]})
		} else {
			b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_SET_STRING, P1: cstr(kv[0]), P2: cstr(kv[1]), Desc: desc + ": option " + kv[0] + "=" + kv[1]})
		}
	}
	b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_CMD_CREATE, Desc: desc + ": create"})
	mnt := b.Slot()
	b.add(Step{Kind: OpFsMount, Slot: mnt, Dir: ctx, A: uintptr(attrs), Desc: desc + ": fsmount"})
	b.Close(ctx)
	return mnt
}

// Overlay creates a detached overlayfs mount of lower with its writes in
// upper, using work, and returns the slot of the mount fd. Paths are
// resolved by the kernel now, as host paths; upperFD and workFD, when not
// -1, are slots of directory fds used instead of upper and work (Linux
// 6.13 takes layers by fd), for layers on a tmpfs that has no path.
func (b *Builder) Overlay(lower, upper, work string, upperFD, workFD int32, attrs uint64, desc string) int32 {
	ctx := b.Slot()
	b.add(Step{Kind: OpFsOpen, Slot: ctx, P1: cstr("overlay"), Desc: desc + ": fsopen overlay"})
	b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_SET_STRING, P1: cstr("lowerdir"), P2: cstr(escapeLayer(lower)), Desc: desc + ": lowerdir " + lower})
	for _, l := range []struct {
		key, path string
		fd        int32
	}{{"upperdir", upper, upperFD}, {"workdir", work, workFD}} {
		if l.fd >= 0 {
			b.add(Step{Kind: OpFsConfigFD, Slot: ctx, Dir: l.fd, P1: cstr(l.key), Desc: desc + ": " + l.key + " by fd (Linux 6.13 or later)"})
		} else {
			b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_SET_STRING, P1: cstr(l.key), P2: cstr(l.path), Desc: desc + ": " + l.key + " " + l.path})
		}
	}
	b.add(Step{Kind: OpFsConfig, Slot: ctx, A: unix.FSCONFIG_CMD_CREATE, Desc: desc + ": create"})
	mnt := b.Slot()
	b.add(Step{Kind: OpFsMount, Slot: mnt, Dir: ctx, A: uintptr(attrs), Desc: desc + ": fsmount"})
	b.Close(ctx)
	return mnt
}

// escapeLayer escapes a path for overlayfs's lowerdir, a list separated
// by colons.
func escapeLayer(p string) string {
	return strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace(p)
}

// MoveMount attaches the detached mount in src onto the fd in dst, or onto
// path if dst is AtCWD.
func (b *Builder) MoveMount(src, dst int32, path string, desc string) {
	flags := uintptr(unix.MOVE_MOUNT_F_EMPTY_PATH)
	if dst != AtCWD {
		flags |= unix.MOVE_MOUNT_T_EMPTY_PATH
	}
	b.add(Step{Kind: OpMoveMount, Slot: dst, Dir: src, P1: cstr(path), A: flags, Desc: desc})
}

// Mkdir creates name in the directory in dir.
func (b *Builder) Mkdir(dir int32, name string, mode uint32, existOK bool, desc string) {
	var ok uintptr
	if existOK {
		ok = 1
	}
	b.add(Step{Kind: OpMkdir, Dir: dir, P1: cstr(name), A: uintptr(mode), B: ok, Desc: desc})
}

// Symlink creates name in dir as a symlink to target.
func (b *Builder) Symlink(dir int32, target, name string, desc string) {
	b.add(Step{Kind: OpSymlink, Dir: dir, P1: cstr(target), P2: cstr(name), Desc: desc})
}

// Unlink removes name from the directory in dir.
func (b *Builder) Unlink(dir int32, name string, flags uintptr, desc string) {
	b.add(Step{Kind: OpUnlink, Dir: dir, P1: cstr(name), A: flags, Desc: desc})
}

// Fchdir changes to the directory in slot.
func (b *Builder) Fchdir(slot int32, desc string) {
	b.add(Step{Kind: OpFchdir, Slot: slot, Desc: desc})
}

// Chdir changes to path.
func (b *Builder) Chdir(path string, desc string) {
	b.add(Step{Kind: OpChdir, P1: cstr(path), Desc: desc})
}

// PivotRoot makes the current directory the root, with the old root on top
// of it, ready to be detached by Umount(".").
func (b *Builder) PivotRoot(desc string) {
	b.add(Step{Kind: OpPivotRoot, P1: cstr("."), Desc: desc})
}

// Umount unmounts path.
func (b *Builder) Umount(path string, flags uintptr, desc string) {
	b.add(Step{Kind: OpUmount, P1: cstr(path), A: flags, Desc: desc})
}

// Sethostname sets the hostname of the new uts namespace.
func (b *Builder) Sethostname(name string) {
	p := cstr(name)
	b.add(Step{Kind: OpSethostname, P1: p, A: uintptr(len(name)), Desc: "sethostname " + name})
}

// Setrlimit sets resource res to soft = hard = v.
func (b *Builder) Setrlimit(res int, v uint64, desc string) {
	lim := &unix.Rlimit{Cur: v, Max: v}
	b.add(Step{Kind: OpSetrlimit, A: uintptr(res), Ptr: unsafe.Pointer(lim), Desc: desc})
}

// Umask sets the file mode creation mask.
func (b *Builder) Umask(mask uint32) {
	b.add(Step{Kind: OpUmask, A: uintptr(mask), Desc: fmt.Sprintf("umask %04o", mask)})
}

// Unshare moves the child into new namespaces.
func (b *Builder) Unshare(flags uintptr, desc string) {
	b.Syscall(unix.SYS_UNSHARE, flags, 0, 0, desc)
}

// Syscall makes the system call trap(a1, a2, a3).
func (b *Builder) Syscall(trap, a1, a2, a3 uintptr, desc string) {
	b.add(Step{Kind: OpSyscall, A: trap, B: a1, C: a2, N: a3, Desc: desc})
}

// Netlink sends msg, whole, on a new netlink socket of protocol proto,
// reads one answer and fails with its error, if it is an error. The
// message must ask for one acknowledgement, in the last place of a batch,
// so that an error of any earlier part comes first: one read tells.
func (b *Builder) Netlink(proto int, msg []byte, desc string) {
	p := append([]byte(nil), msg...)
	b.add(Step{Kind: OpNetlink, A: uintptr(proto), P2: &p[0], N: uintptr(len(p)), Desc: desc})
}

// ForkUserns forks a process that moves into a new user namespace and
// then waits to be killed: its maps can then be written by this one, from
// the parent namespace, which may write any map there (the namespace's
// own process may only map its own id). It returns the slot of its
// pidfd. The step fails unless the process gets pid wantPid, so that
// its /proc entry is known in advance.
func (b *Builder) ForkUserns(wantPid int, desc string) int32 {
	slot := b.Slot()
	b.add(Step{Kind: OpForkUserns, Slot: slot, A: uintptr(wantPid), Desc: desc})
	return slot
}

// Setns joins the namespace of the fd in slot (a pidfd, or a namespace
// file), of the kind nstype.
func (b *Builder) Setns(slot int32, nstype uintptr, desc string) {
	b.add(Step{Kind: OpSetns, Slot: slot, A: nstype, Desc: desc})
}

// Reap kills the process of the pidfd in slot and waits for it.
func (b *Builder) Reap(slot int32, desc string) {
	b.add(Step{Kind: OpReap, Slot: slot, Desc: desc})
}

// Setgroups sets the supplementary groups.
func (b *Builder) Setgroups(groups []uint32, desc string) {
	g := append([]uint32{0}, groups...) // never empty, for &g[0]
	b.P.keepAlive = append(b.P.keepAlive, g)
	b.Syscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&g[1%len(g)])), 0, desc)
}

// IfUp brings the network interface name up, in the child's network
// namespace: SIOCSIFFLAGS with IFF_UP|IFF_RUNNING on a datagram socket.
func (b *Builder) IfUp(name string) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		panic(fmt.Sprintf("nsexec: interface name %q: %v", name, err))
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_RUNNING)
	b.add(Step{Kind: OpIfUp, Ptr: unsafe.Pointer(ifr), Desc: "bring up the network interface " + name})
}

// Search finds the program that Exec runs: the first of paths that is an
// executable regular file inside the sandbox, as execvp would. It then
// checks it as CheckProgram does. It fails with ENOENT when there is none,
// EACCES when one exists but cannot be executed, and ELOOP when one is
// reached through a magic link.
func (b *Builder) Search(name string, paths []string, desc string) {
	b.checkHows()
	for _, p := range paths {
		b.P.cands = append(b.P.cands, cstr(p))
	}
	b.P.found = -1
	b.add(Step{Kind: OpSearch, P1: cstr(name), Desc: desc})
	b.add(Step{Kind: OpCheckProgram, P1: cstr(name), Desc: "program " + name})
}

func (b *Builder) checkHows() {
	b.P.pathHow = unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
	b.P.readHow = unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
}

// Seccomp loads a seccomp filter, the last step before Exec.
func (b *Builder) Seccomp(filter []unix.SockFilter, flags uintptr, desc string) {
	prog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	b.P.keepFilter = filter
	b.add(Step{Kind: OpSeccomp, A: flags, Ptr: unsafe.Pointer(prog), Desc: desc})
}

// LandlockCreate makes a Landlock ruleset that handles the given rights,
// in a new slot. size is the size of the kernel's struct to pass: 16
// bytes up to ABI 5, 24 with scopes.
func (b *Builder) LandlockCreate(fs, net, scoped uint64, size uintptr, desc string) int32 {
	slot := b.Slot()
	attr := &[3]uint64{fs, net, scoped}
	b.add(Step{Kind: OpLandlockCreate, Slot: slot, Ptr: unsafe.Pointer(attr), N: size, Desc: desc})
	return slot
}

// LandlockPath allows access beneath path in the ruleset, or fileAccess
// when path is not a directory. path is opened inside the sandbox, so a
// missing one fails the run.
func (b *Builder) LandlockPath(ruleset int32, path string, access, fileAccess uint64, desc string) {
	b.checkHows()
	// struct landlock_path_beneath_attr is packed: a u64 and an s32, which
	// the child fills in.
	attr := new([2]uint64)
	b.add(Step{Kind: OpLandlockPath, Slot: ruleset, P1: cstr(path), A: uintptr(access), B: uintptr(fileAccess), Ptr: unsafe.Pointer(attr), Desc: desc})
}

// LandlockPort allows access to a TCP port in the ruleset.
func (b *Builder) LandlockPort(ruleset int32, port uint16, access uint64, desc string) {
	attr := &[2]uint64{access, uint64(port)}
	b.add(Step{Kind: OpLandlockPort, Slot: ruleset, Ptr: unsafe.Pointer(attr), Desc: desc})
}

// LandlockRestrict enforces the ruleset on the child.
func (b *Builder) LandlockRestrict(ruleset int32, desc string) {
	b.add(Step{Kind: OpLandlockRestrict, Slot: ruleset, Desc: desc})
}

// CapsInheritable sets the inheritable capabilities to inh, keeping the
// permitted and effective ones full (the child has every capability in
// its user namespace at that point): capset with version 3.
func (b *Builder) CapsInheritable(inh uint64) {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{
		{Effective: ^uint32(0), Permitted: ^uint32(0), Inheritable: uint32(inh)},
		{Effective: ^uint32(0), Permitted: ^uint32(0), Inheritable: uint32(inh >> 32)},
	}
	b.P.keepAlive = append(b.P.keepAlive, hdr, data)
	b.add(Step{Kind: OpSyscall, A: unix.SYS_CAPSET, B: uintptr(unsafe.Pointer(hdr)), C: uintptr(unsafe.Pointer(data)),
		Desc: fmt.Sprintf("set the inheritable capabilities to %#x", inh)})
}

// JoinCgroup joins a cgroup v1 cgroup: writes "0", this process, into fd,
// its cgroup.procs file, which the parent opened.
func (b *Builder) JoinCgroup(fd int, desc string) {
	zero := &[1]byte{'0'}
	b.P.keepAlive = append(b.P.keepAlive, zero)
	b.add(Step{Kind: OpSyscall, A: unix.SYS_WRITE, B: uintptr(fd), C: uintptr(unsafe.Pointer(zero)), N: 1, Desc: desc})
}

// WaitGo waits for the parent's go-ahead: one byte on the pipe whose read
// end is r; w, the write end, is closed first, so that the parent closing
// its own without a byte is end of file, and fails the step.
func (b *Builder) WaitGo(r, w int, desc string) {
	b.add(Step{Kind: OpWaitGo, A: uintptr(r), B: uintptr(w), Desc: desc})
}

// Setsid starts a new session.
func (b *Builder) Setsid() {
	b.add(Step{Kind: OpSetsid, Desc: "setsid"})
}

// Prctl calls prctl(option, arg2, arg3).
func (b *Builder) Prctl(option, arg2, arg3 uintptr, desc string) {
	b.add(Step{Kind: OpPrctl, A: option, B: arg2, C: arg3, Desc: desc})
}

// ParentAlive makes the child exit if its parent is already gone.
func (b *Builder) ParentAlive() {
	b.add(Step{Kind: OpParentAlive, Desc: "check that the parent is alive"})
}

// DupStdio installs the caller's stdin, stdout and stderr as fds 0-2.
func (b *Builder) DupStdio() {
	b.add(Step{Kind: OpDupStdio, Desc: "install stdin, stdout and stderr"})
}

// CloseFds marks every fd from 3 up close-on-exec except those in keep.
func (b *Builder) CloseFds(keep []int32) {
	b.P.Keep = append([]int32(nil), keep...)
	desc := "close every fd above 2 at execve"
	if len(keep) > 0 {
		desc += fmt.Sprintf(" except %v", keep)
	}
	b.add(Step{Kind: OpCloseFds, Desc: desc})
}

// Exec runs path with argv and env. It is the last step.
func (b *Builder) Exec(path string, argv, env []string) {
	p := b.P
	p.argv = make([]*byte, len(argv)+1)
	for i, a := range argv {
		p.argv[i] = cstr(a)
	}
	p.envv = make([]*byte, len(env)+1)
	for i, e := range env {
		p.envv[i] = cstr(e)
	}
	b.add(Step{Kind: OpExec, P1: cstr(path), Desc: fmt.Sprintf("execve %s %q", path, argv)})
}

// CheckProgram fails the run if path cannot be reached without a magic
// link, such as /proc/self/exe, which could name a file outside the root.
func (b *Builder) CheckProgram(path string) {
	b.checkHows()
	b.add(Step{Kind: OpCheckProgram, P1: cstr(path), Desc: "program " + path})
}

// String prints the program, one step a line, for --dry-run.
func (p *Program) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "clone flags %s\n", CloneFlagNames(p.CloneFlags))
	if p.IntoCgroup {
		fmt.Fprintf(&sb, "clone into the cgroup %s\n", p.CgroupPath)
	}
	for i, s := range p.Steps {
		if s.Kind == OpClose {
			continue
		}
		fmt.Fprintf(&sb, "%3d %s\n", i, s.Desc)
	}
	return sb.String()
}

// CloneFlagNames names the namespace bits of flags.
func CloneFlagNames(flags uint64) string {
	names := []struct {
		bit  uint64
		name string
	}{
		{unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWNS, "mount"}, {unix.CLONE_NEWPID, "pid"},
		{unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWUTS, "uts"},
		{unix.CLONE_NEWCGROUP, "cgroup"},
	}
	var out []string
	for _, n := range names {
		if flags&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	return "new " + strings.Join(out, ",") + " namespaces"
}
