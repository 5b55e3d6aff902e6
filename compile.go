package hakoniwa

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hakoniwa-go/hakoniwa/internal/mountopt"
	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"golang.org/x/sys/unix"
)

// kindDevpts is the devpts instance inside a devfs.
const kindDevpts MountKind = 100

// resolveInRoot keeps every path walk inside the new root on the directory
// it starts from: no "..", no absolute paths, and no symlinks at all, so that
// nothing a bind source contains can redirect a mount or a file.
const resolveInRoot = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// maxID is the largest id a uid or gid map can hold.
const maxID = 1<<32 - 2

// A ConfigError is an invalid sandbox description, found before anything ran.
type ConfigError struct {
	What string // the entry or option at fault, such as "bind /x:/y"
	Err  error
}

func (e *ConfigError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(what string, format string, args ...any) error {
	return &ConfigError{What: what, Err: fmt.Errorf(format, args...)}
}

// command is what the compiler needs to know of a Cmd.
type command struct {
	path string   // program path inside the sandbox
	argv []string // argv, argv[0] included
	env  []string
	dir  string // cwd inside; "" means /
	keep []int  // fds kept open beyond 0-2

	// result, if set, receives what the setup decides that the report
	// shows: warnings (what the sandbox could not do as asked and went on
	// without) and the command's capability sets.
	result *Result

	// cgroup is how the child enters the run's cgroup, if it has one.
	cgroup *cgroupJoin
	// net is how the child waits for its user-mode network, if any.
	net *netJoin
	// ids is how the child waits for hakoniwa to write its id maps,
	// if it may have to; compile sets its plan.
	ids *idJoin
}

var callerUmask = sync.OnceValue(func() uint32 {
	// Read rather than set-and-restore: umask(2) is process-wide and
	// changing it would race with other goroutines creating files.
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o022
})

// compile turns c and cmd into a plan. Everything that can be checked before
// the clone is checked here, so that errors name the entry at fault.
func (c *Container) compile(cmd command, log *slog.Logger) (*nsexec.Program, error) {
	flags := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID)
	if !c.shareIPC {
		flags |= unix.CLONE_NEWIPC
	}
	if !c.shareNet {
		flags |= unix.CLONE_NEWNET
	}
	if !c.shareUTS {
		flags |= unix.CLONE_NEWUTS
	}
	if !c.shareCgroup {
		flags |= unix.CLONE_NEWCGROUP
	}
	if c.shareUTS && c.hostnameSet {
		return nil, configErr("hostname "+c.hostname, "needs a new uts namespace, but the host's is shared")
	}
	if !c.shareUTS {
		if err := checkHostname(c.hostname); err != nil {
			return nil, err
		}
	}

	b := nsexec.NewBuilder(flags)
	b.P.ShareMemory = !c.copyMemory
	b.P.Watchdog = c.watchdog
	b.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, "set the parent-death signal to SIGKILL")
	b.ParentAlive()
	c.addCgroupSteps(b, cmd.cgroup)
	b.Umask(0)

	if c.uid != nil && (*c.uid < 0 || *c.uid > maxID) {
		return nil, configErr("uid "+strconv.FormatInt(*c.uid, 10), "out of range 0-%d", maxID)
	}
	if c.gid != nil && (*c.gid < 0 || *c.gid > maxID) {
		return nil, configErr("gid "+strconv.FormatInt(*c.gid, 10), "out of range 0-%d", maxID)
	}
	entries, err := c.entries(log)
	if err != nil {
		return nil, err
	}
	// Identity: the maps, written by the child when they map the
	// caller's own ids alone, else by hakoniwa; the command's ids.
	ids, err := c.idPlan(entries)
	if err != nil {
		return nil, err
	}
	if n := c.cg.limits.Pids; n > 0 && n < 2 && ids.parentWrites {
		return nil, configErr("pids "+strconv.FormatUint(n, 10), "with several ids the setup forks a second process (it makes the nested user namespace): give at least 2")
	}
	if cmd.ids != nil {
		cmd.ids.plan = ids
	}
	addIDSteps(b, ids, cmd.ids)
	if err := c.addNetSteps(b, cmd.net, log); err != nil {
		return nil, err
	}
	// The host's /proc, kept open by fd to write the nested namespace's id
	// maps after the root is switched, and closed before the command runs.
	hostProc := b.Open(nsexec.AtCWD, "/proc", unix.O_PATH|unix.O_DIRECTORY, 0, 0, "open the host's /proc")
	if log != nil {
		log.Info("Namespaces: " + nsexec.CloneFlagNames(flags))
		for _, m := range []struct {
			name string
			maps []IDMap
		}{{"UID", ids.uid}, {"GID", ids.gid}} {
			for _, r := range m.maps {
				if r.Count == 1 {
					log.Info(fmt.Sprintf("%s map: host_id: %d, container_id: %d", m.name, r.Outside, r.Inside))
				} else {
					log.Info(fmt.Sprintf("%s map: host_id: %d, container_id: %d, count: %d", m.name, r.Outside, r.Inside, r.Count))
				}
			}
		}
		if c.user != "" {
			log.Info(fmt.Sprintf("User: %s: uid %d, gid %d, groups %v", c.user, ids.cmdUID, ids.cmdGID, ids.groups))
		}
	}

	// With several ids, the process that makes the nested user
	// namespace (see enterNested) is forked now, while the host's /proc
	// is still whole: a proc of the sandbox's own can only be made then.
	nested := forkNested(b, ids)

	b.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "make every mount private")
	// A session keyring of its own, so that the caller's keys are not
	// reachable from the sandbox.
	b.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0, "join a new session keyring")

	// Mapped to the host's root, the command passes every uid-based check
	// on host objects: /proc/sys and /proc/sysrq-trigger would let it
	// change the host's kernel. Those parts of /proc are made read-only,
	// and the ones that only leak the host's state are hidden.
	hostRoot := ids.hostRoot()
	l := &layout{b: b, dirs: map[string]int32{}, log: log, protectProc: hostRoot}
	if err := l.setRootdir(c.rootdir); err != nil {
		return nil, err
	}
	if err := l.build(entries, c.rootRW); err != nil {
		return nil, err
	}

	if !c.shareUTS {
		b.Sethostname(c.hostname)
	}
	if c.loopback && !c.shareNet {
		b.IfUp("lo")
	}
	enterNested(b, ids, nested, hostProc)
	if hostRoot {
		// As the host's root, a command that made a cgroup, net, pid or
		// ipc namespace of its own could mount cgroupfs, sysfs, proc or
		// mqueue and pass their uid checks. The nested user namespace
		// allows it none of those, nor further user namespaces.
		for _, ns := range []string{"user", "cgroup", "net", "pid", "ipc"} {
			name := "sys/user/max_" + ns + "_namespaces"
			fd := b.Open(hostProc, name, unix.O_WRONLY, 0, 0, "open /proc/"+name)
			b.Write(fd, []byte("0"), "forbid new "+ns+" namespaces: write 0 to /proc/"+name)
			b.Close(fd)
		}
	}
	b.Close(hostProc)
	if log != nil {
		log.Debug("Mounts: locked in a nested user and mount namespace; new session keyring")
		if hostRoot {
			log.Debug("Host root: no new user, cgroup, net, pid or ipc namespaces inside")
		}
		log.Debug(fmt.Sprintf("Clone: shared memory %v, watchdog %v", b.P.ShareMemory, b.P.Watchdog))
	}
	// The command's identity before its cwd and program: those are
	// looked up as it.
	addSwitchSteps(b, ids)
	if cmd.dir != "" {
		if !path.IsAbs(cmd.dir) {
			return nil, configErr("workdir "+cmd.dir, "must be an absolute path inside the sandbox")
		}
		b.Chdir(cmd.dir, "chdir "+cmd.dir)
	}
	switch {
	case strings.IndexByte(cmd.path, 0) >= 0:
		// refused below
	case !strings.Contains(cmd.path, "/"):
		// Looked up inside, in the sandbox's own PATH, as execvp would.
		dirs, _ := envValue(cmd.env, "PATH")
		// As execvp: each entry joined as text (so that the kernel, not
		// us, resolves "..", and a symlink before it), and an empty
		// entry, or an empty PATH, meaning the cwd.
		var paths []string
		for _, dir := range strings.Split(dirs, ":") {
			if dir == "" {
				dir = "."
			}
			paths = append(paths, strings.TrimSuffix(dir, "/")+"/"+cmd.path)
		}
		b.Search(cmd.path, paths, fmt.Sprintf("look up %s in the sandbox's PATH (%s)", cmd.path, dirs))
	default:
		b.CheckProgram(cmd.path)
	}
	b.Setsid()
	if !c.allowNewPrivs {
		b.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, "set no_new_privs")
	}
	b.Umask(callerUmask())
	b.DupStdio()
	keep := make([]int32, 0, len(cmd.keep))
	for _, fd := range cmd.keep {
		if fd < 3 {
			return nil, configErr("keep-fd "+strconv.Itoa(fd), "fds 0-2 are always kept")
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, configErr("keep-fd "+strconv.Itoa(fd), "not an open file descriptor")
		}
		keep = append(keep, int32(fd))
	}
	b.CloseFds(keep)
	if c.caps != nil {
		uid := int64(ids.cmdUID)
		set, err := c.caps.capSet(uid)
		if err != nil {
			return nil, configErr("caps", "%v", err)
		}
		compileCaps(b, set, uid)
		sets := capSets(set, uid)
		if log != nil {
			log.Info("Capabilities: effective, permitted and bounding " + capNameList(sets.Effective) + ", ambient " + capNameList(sets.Ambient))
		}
		if cmd.result != nil {
			cmd.result.Capabilities = sets
		}
	}
	if c.landlock != nil {
		missing, err := compileLandlock(b, c.landlock, landlockABI())
		if err != nil {
			return nil, configErr("landlock", "%v", err)
		}
		if log != nil {
			log.Info(fmt.Sprintf("Landlock: ABI %d, fs rules %d, tcp bind %v, tcp connect %v", landlockABI(), len(c.landlock.FS), c.landlock.TCPBind, c.landlock.TCPConnect))
		}
		for _, m := range missing {
			if log != nil {
				log.Warn("Landlock: not enforced by this kernel: " + m)
			}
			if cmd.result != nil {
				cmd.result.Warnings = append(cmd.result.Warnings, "Landlock: not enforced by this kernel: "+m)
			}
		}
	}
	// The rlimits come last, so that a small RLIMIT_NOFILE cannot fail
	// the setup itself.
	if _, ok := c.rlimits[RlimitNproc]; ok && ids.commandIsHostRoot() {
		return nil, configErr("limit nproc", "Linux does not enforce RLIMIT_NPROC on the host's root user, which this sandbox runs as; run hakoniwa as another user to limit processes")
	}
	res := make([]int, 0, len(c.rlimits))
	for r := range c.rlimits {
		res = append(res, r)
	}
	sort.Ints(res)
	for _, r := range res {
		name := rlimitNames[r]
		if name == "" {
			name = "resource " + strconv.Itoa(r)
		}
		v := c.rlimits[r]
		desc := fmt.Sprintf("set RLIMIT_%s to %d", strings.ToUpper(name), v)
		if r == RlimitCPU && cmd.cgroup != nil && cmd.cgroup.watchesCPU && v > 0 && v < maxWatchedCPU {
			// The cgroup's usage of every process enforces the limit;
			// RLIMIT_CPU, a second later, only backs it up, so that
			// it never kills one process of several first.
			v++
			desc = fmt.Sprintf("set RLIMIT_%s to %d, a second over the limit that the cgroup's cpu usage enforces", strings.ToUpper(name), v)
		}
		b.Setrlimit(r, v, desc)
	}
	for _, s := range append(append([]string{cmd.path}, cmd.argv...), cmd.env...) {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, configErr("command", "argument or environment contains a NUL byte: %q", s)
		}
	}
	if c.seccompErr != nil {
		return nil, configErr("seccomp", "%v", c.seccompErr)
	}
	if c.learner != nil && !c.copyMemory {
		return nil, configErr("seccomp learn", "needs CopyMemory(true): the supervisor must answer the child's execve, which a caller held in vfork could not")
	}
	if c.seccomp != nil && c.learner == nil {
		if err := c.seccomp.AllowsExecve(); err != nil {
			return nil, configErr("seccomp", "%v", err)
		}
	}
	if log != nil {
		if c.seccomp == nil {
			log.Info("Seccomp: disabled")
		} else {
			log.Info(fmt.Sprintf("Seccomp: %s, %d instructions", c.seccomp.Summary(), len(c.seccompFilter)))
			for _, r := range c.seccomp.Rules {
				log.Debug(fmt.Sprintf("Seccomp: rule %s", r))
			}
		}
		log.Info(fmt.Sprintf("Execve: %s %q", cmd.path, cmd.argv))
	}
	filter, profile := c.seccompFilter, c.seccomp
	if l := c.landlock; l != nil && c.learner != nil && landlockTCP(l) {
		return nil, configErr("seccomp learn", "cannot run with Landlock TCP rules: the learning filter lets every call through, MPTCP sockets included, which Landlock's TCP rules do not see")
	}
	if l := c.landlock; l != nil && c.learner == nil && landlockTCP(l) {
		// Landlock's TCP rules do not cover MPTCP: refuse it.
		profile = seccomp.WithoutMPTCP(profile)
		var err error
		if filter, err = seccomp.Compile(profile); err != nil {
			return nil, configErr("seccomp", "%v", err)
		}
	}
	if profile != nil {
		// Last before execve: the filter then only has to allow execve,
		// not the setup's own calls.
		if c.learner != nil {
			b.Seccomp(filter, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "load the learning seccomp filter, which hands every call to hakoniwa")
		} else {
			b.Seccomp(filter, 0, "load the seccomp filter ("+profile.Summary()+")")
		}
	}
	b.Exec(cmd.path, cmd.argv, cmd.env)
	return b.P, nil
}

// writeIDMaps maps one uid and one gid (inside, outside) in the child's
// current user namespace, written by the child itself to the files of
// proc + "uid_map" and so on, relative to the fd in dir.
func writeIDMaps(b *nsexec.Builder, dir int32, proc string, uid, gid [2]int64) {
	for _, f := range []struct{ file, data string }{
		{"uid_map", fmt.Sprintf("%d %d 1\n", uid[0], uid[1])},
		{"setgroups", "deny"},
		{"gid_map", fmt.Sprintf("%d %d 1\n", gid[0], gid[1])},
	} {
		name := proc + f.file
		fd := b.Open(dir, name, unix.O_WRONLY, 0, 0, "open "+name)
		b.Write(fd, []byte(f.data), fmt.Sprintf("write %q to %s", strings.TrimSpace(f.data), name))
		b.Close(fd)
	}
}

func checkHostname(name string) error {
	if name == "" || len(name) > 64 || strings.IndexByte(name, 0) >= 0 {
		return configErr("hostname "+strconv.Quote(name), "must be 1-64 bytes with no NUL")
	}
	return nil
}

// entry is a Mount checked and ready to lay out.
type entry struct {
	Mount
	isDir    bool   // the target is a directory
	isDevice bool   // a bind of a device: no nodev
	real     string // a bind's source with its symlinks resolved
	attrs    uint64
	opts     [][2]string // fsconfig options
}

// entries checks c's mounts and returns them keyed by target (the last
// wins), devfs expanded, sorted so that parents come before children.
func (c *Container) entries(log *slog.Logger) ([]entry, error) {
	byTarget := map[string]int{}
	var list []Mount
	add := func(m Mount) {
		if i, ok := byTarget[m.Target]; ok {
			list[i] = m
			return
		}
		byTarget[m.Target] = len(list)
		list = append(list, m)
	}
	if !c.noProc {
		add(Mount{Kind: KindProc, Target: "/proc"})
	}
	base, err := c.rootfsMounts(log)
	if err != nil {
		return nil, err
	}
	for _, m := range base {
		add(m) // before the other mounts, which win
	}
	servers, why, err := c.resolvConf()
	if err != nil {
		return nil, err
	}
	if len(servers) > 0 {
		// Optional: a bound /etc without the file is left alone.
		add(Mount{Kind: KindFile, Target: "/etc/resolv.conf", Contents: resolvConfFile(servers), Optional: true})
	} else if log != nil && (c.usernet != nil || len(c.dns) > 0) {
		log.Info("DNS: no /etc/resolv.conf written: " + why)
	}
	for _, m := range c.mounts {
		what := m.Kind.String() + " " + m.Target
		if m.Kind == KindBind {
			what = "bind " + m.Source + ":" + m.Target
		}
		if !path.IsAbs(m.Target) {
			return nil, configErr(what, "target must be an absolute path")
		}
		if m.Target == "/" {
			return nil, configErr(what, "cannot replace the root")
		}
		for _, s := range []string{m.Source, m.Target, m.Link, m.Options} {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, configErr(what, "contains a NUL byte")
			}
		}
		add(m)
		if m.Kind == KindDevfs {
			for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
				add(Mount{Kind: KindBind, Source: "/dev/" + d, Target: path.Join(m.Target, d), RW: true, Optional: d == "tty"})
			}
			for _, l := range [][2]string{{"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
				{"fd", "/proc/self/fd"}, {"core", "/proc/kcore"}, {"ptmx", "pts/ptmx"}} {
				add(Mount{Kind: KindSymlink, Target: path.Join(m.Target, l[0]), Link: l[1]})
			}
			add(Mount{Kind: kindDevpts, Target: path.Join(m.Target, "pts")})
			add(Mount{Kind: KindTmpfs, Target: path.Join(m.Target, "shm"), Options: "mode=1777"})
		}
	}

	var out []entry
	for _, m := range list {
		e := entry{Mount: m}
		switch m.Kind {
		case KindBind:
			what := "bind " + m.Source + ":" + m.Target
			if !path.IsAbs(m.Source) {
				return nil, configErr(what, "source must be an absolute path")
			}
			fi, err := os.Stat(m.Source)
			if err != nil {
				if m.Optional && errors.Is(err, fs.ErrNotExist) {
					if log != nil {
						log.Info(fmt.Sprintf("Mount point: skipped, optional source %q does not exist", m.Source))
					}
					continue
				}
				return nil, &ConfigError{What: what, Err: err}
			}
			e.isDir = fi.IsDir()
			// A device, or a directory of devices such as /dev itself,
			// keeps its devices usable: no nodev.
			if e.real, err = filepath.EvalSymlinks(m.Source); err != nil {
				return nil, &ConfigError{What: what, Err: err}
			}
			e.isDevice = fi.Mode()&fs.ModeDevice != 0 || (fi.IsDir() && (e.real == "/dev" || strings.HasPrefix(e.real, "/dev/")))
			e.attrs = unix.MOUNT_ATTR_NOSUID
			if !e.isDevice {
				e.attrs |= unix.MOUNT_ATTR_NODEV
			}
			// A device node is bound read-only whatever was asked: reading
			// and writing the device work through a read-only mount, but
			// chmod, chown and utimes on the host's inode do not, which
			// the host's root inside could otherwise do to /dev/null.
			if !m.RW || fi.Mode()&fs.ModeDevice != 0 {
				e.attrs |= unix.MOUNT_ATTR_RDONLY
			}
		case KindTmpfs:
			opts, ro, err := mountopt.Tmpfs(m.Options)
			if err != nil {
				return nil, &ConfigError{What: "tmpfs " + m.Target + ":" + m.Options, Err: err}
			}
			e.isDir, e.opts = true, opts
			e.attrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
			if ro {
				e.attrs |= unix.MOUNT_ATTR_RDONLY
			}
		case KindDevfs:
			e.isDir, e.opts = true, [][2]string{{"mode", "0755"}}
			e.attrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
		case kindDevpts:
			e.isDir = true
			e.opts = [][2]string{{"newinstance", ""}, {"ptmxmode", "0666"}, {"mode", "0620"}}
			e.attrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
		case KindProc:
			e.isDir = true
			e.attrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
		case KindDir:
			e.isDir = true
			if m.Mode == 0 {
				e.Mode = 0o755
			}
			if m.Mode > 0o7777 {
				return nil, configErr("dir "+m.Target, "mode %#o is out of range", m.Mode)
			}
		case KindSymlink:
			if m.Link == "" {
				return nil, configErr("symlink "+m.Target, "empty link target")
			}
		case KindFile:
		case KindOverlay:
			if err := checkOverlay(m); err != nil {
				return nil, err
			}
			e.isDir = true
			e.attrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
		default:
			return nil, configErr(m.Target, "unknown mount kind %v", m.Kind)
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return pathLess(out[i].Target, out[j].Target) })
	return out, nil
}

// pathLess orders paths component by component, so that a directory comes
// right before everything below it.
func pathLess(a, b string) bool {
	return strings.ReplaceAll(a, "/", "\x00") < strings.ReplaceAll(b, "/", "\x00")
}

// layout emits the steps that build the new root.
type layout struct {
	b           *nsexec.Builder
	protectProc bool
	log         *slog.Logger
	root        int32
	dirs        map[string]int32 // O_PATH fds of directories in the new root
	placed      []entry          // mounts placed so far
	staged      int              // files staged for fileMount
	stage       int32            // where they are staged: the root tmpfs, or a tmpfs of their own
	rootdir     *rootdir         // the host directory used as the root, if any
	rootEntry   *entry           // the owner of what lies directly in a rootdir
}

func (l *layout) logMount(e entry) {
	if l.log == nil {
		return
	}
	switch e.Kind {
	case KindBind:
		l.log.Info(fmt.Sprintf("Mount point: host_path: %q, container_path: %q, fstype: \"\", rw: %v", e.real, e.Target, e.RW))
	case KindOverlay:
		upper := e.Upper
		if upper == "" {
			upper = "(a tmpfs)"
		}
		l.log.Info(fmt.Sprintf("Mount point: host_path: %q, container_path: %q, fstype: \"overlay\", upper: %q", e.Source, e.Target, upper))
	case KindTmpfs, KindProc, KindDevfs, kindDevpts:
		fstype := map[MountKind]string{KindTmpfs: "tmpfs", KindProc: "proc", KindDevfs: "tmpfs", kindDevpts: "devpts"}[e.Kind]
		l.log.Info(fmt.Sprintf("Mount point: host_path: \"\", container_path: %q, fstype: %q, rw: %v", e.Target, fstype, e.attrs&unix.MOUNT_ATTR_RDONLY == 0))
	case KindDir:
		l.log.Debug(fmt.Sprintf("Directory: %q, mode: %#o", e.Target, e.Mode))
	case KindSymlink:
		l.log.Debug(fmt.Sprintf("Symlink: %q -> %q", e.Target, e.Link))
	case KindFile:
		l.log.Debug(fmt.Sprintf("File: %q, %d bytes", e.Target, len(e.Contents)))
	}
}

func (l *layout) build(entries []entry, rootRW bool) error {
	b := l.b
	// Clone every bind source first, while host paths still resolve on
	// the host; from here on they are used by fd only.
	trees := make([]int32, len(entries))
	for i, e := range entries {
		switch e.Kind {
		case KindBind:
			trees[i] = b.OpenTree(e.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE, "clone the mount tree of "+e.Source)
			b.SetAttr(trees[i], e.attrs, 0, true, fmt.Sprintf("make the bind of %s %s", e.Source, attrNames(e.attrs)))
		case KindOverlay:
			// Its layers are given by path: made now, like the
			// binds' clones.
			trees[i] = l.overlay(e.Source, e.Upper, e.Work, e.attrs, "an overlay of "+e.Source+" for "+e.Target)
		}
	}
	masks := map[int][]int32{} // per proc entry, /dev/null trees to hide files with
	if l.protectProc {
		for i, e := range entries {
			if e.Kind != KindProc {
				continue
			}
			_, masked := hostProc()
			for _, m := range masked {
				t := b.OpenTree("/dev/null", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC, "clone /dev/null to hide "+path.Join(e.Target, m.name))
				b.SetAttr(t, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, 0, false, "make that /dev/null read-only")
				masks[i] = append(masks[i], t)
			}
		}
	}
	if r := l.rootdir; r != nil && r.overlay {
		l.root = l.overlay(r.path, "", "", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, "an overlay of the root directory "+r.path)
		b.MoveMount(l.root, nsexec.AtCWD, "/", "mount the overlay of the root directory over /")
		l.stage = l.root
		if l.log != nil {
			l.log.Info(fmt.Sprintf("Mount point: host_path: %q, container_path: \"/\", fstype: \"overlay\", upper: \"(a tmpfs)\"", r.real))
		}
	} else if r != nil {
		l.root = b.OpenTree(r.path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE, "clone the mount tree of the root directory "+r.path)
		b.SetAttr(l.root, l.rootEntry.attrs, 0, true, fmt.Sprintf("make the root directory %s", attrNames(l.rootEntry.attrs)))
		b.MoveMount(l.root, nsexec.AtCWD, "/", "mount the root directory over /")
		// Files for fileMount are staged on a tmpfs of their own:
		// nothing is written to the host's directory.
		l.stage = b.NewMount("tmpfs", [][2]string{{"mode", "0700"}}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, "create a tmpfs to stage files on")
		if l.log != nil {
			l.log.Info(fmt.Sprintf("Mount point: host_path: %q, container_path: \"/\", fstype: \"\", rw: %v", r.real, r.rw))
		}
	} else {
		l.root = b.NewMount("tmpfs", [][2]string{{"mode", "0755"}}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, "create the root tmpfs")
		b.MoveMount(l.root, nsexec.AtCWD, "/", "mount the root tmpfs over /")
		l.stage = l.root
		if l.log != nil {
			l.log.Info(`Mount point: host_path: "", container_path: "/", fstype: "tmpfs", rw: ` + strconv.FormatBool(rootRW))
		}
	}
	l.dirs["/"] = l.root

	for i, e := range entries {
		l.logMount(e)
		switch e.Kind {
		case KindBind, KindTmpfs, KindProc, KindDevfs, kindDevpts, KindOverlay:
			var src int32
			switch e.Kind {
			case KindBind, KindOverlay:
				src = trees[i]
			case KindProc:
				src = b.NewMount("proc", nil, e.attrs, "create a proc instance for "+e.Target)
			case kindDevpts:
				src = b.NewMount("devpts", e.opts, e.attrs, "create a devpts instance for "+e.Target)
			default:
				src = b.NewMount("tmpfs", e.opts, e.attrs, "create a tmpfs for "+e.Target)
			}
			dst, err := l.target(e)
			if err != nil {
				return err
			}
			b.MoveMount(src, dst, "", fmt.Sprintf("mount %s on %s", describe(e), e.Target))
			b.Close(dst)
			b.Close(src)
			l.forget(e.Target)
			l.placed = append(l.placed, e)
			if e.Kind == KindProc && l.protectProc {
				if err := l.protect(e, masks[i]); err != nil {
					return err
				}
			}
		case KindDir:
			parent, err := l.createIn(e)
			if err != nil {
				return err
			}
			b.Mkdir(parent, path.Base(e.Target), e.Mode, true, fmt.Sprintf("mkdir %s mode %#o", e.Target, e.Mode))
		case KindSymlink:
			parent, err := l.createIn(e)
			if err != nil {
				return err
			}
			b.Symlink(parent, e.Link, path.Base(e.Target), fmt.Sprintf("symlink %s -> %s", e.Target, e.Link))
		case KindFile:
			if o := l.owner(e.Target); !creatable(o) {
				if err := l.fileMount(e, o); err != nil {
					return err
				}
				break
			}
			parent, err := l.createIn(e)
			if err != nil {
				return err
			}
			fd := b.Open(parent, path.Base(e.Target), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644, resolveInRoot, "create file "+e.Target)
			b.Write(fd, e.Contents, fmt.Sprintf("write %d bytes to %s", len(e.Contents), e.Target))
			b.Close(fd)
		}
	}
	if !rootRW && l.rootdir == nil {
		b.SetAttr(l.root, unix.MOUNT_ATTR_RDONLY, 0, false, "make the root read-only")
	}
	b.Fchdir(l.root, "chdir to the new root")
	b.PivotRoot("pivot_root to the new root")
	b.Umount(".", unix.MNT_DETACH, "detach the old root")
	b.Chdir("/", "chdir /")
	return nil
}

// procReadOnly are the parts of /proc that change the host's kernel, made
// read-only for a command that is the host's root; procMasked are files
// that only show the host's state, hidden behind /dev/null.
var (
	procReadOnly = []string{"sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi", "asound"}
	procMasked   = []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kpageflags", "kpagecount", "kpagecgroup"}
)

// procEntry is a part of /proc that this kernel has.
type procEntry struct {
	name  string
	isDir bool
}

func (e procEntry) String() string { return e.name }

// hostProc lists which of procReadOnly and procMasked this kernel has,
// read once from the host's /proc.
var hostProc = sync.OnceValues(func() (readOnly, masked []procEntry) {
	have := func(names []string) []procEntry {
		var out []procEntry
		for _, name := range names {
			if fi, err := os.Lstat("/proc/" + name); err == nil {
				out = append(out, procEntry{name, fi.IsDir()})
			}
		}
		return out
	}
	return have(procReadOnly), have(procMasked)
})

// protect makes the dangerous parts of the proc mounted at e.Target
// read-only, and hides the masked files with the /dev/null trees in masks.
func (l *layout) protect(e entry, masks []int32) error {
	b := l.b
	parent, err := l.dir(path.Dir(e.Target))
	if err != nil {
		return err
	}
	proc := b.Open(parent, path.Base(e.Target), unix.O_PATH|unix.O_DIRECTORY, 0, resolveInRoot, "open the new proc at "+e.Target)
	readOnly, masked := hostProc()
	for _, r := range readOnly {
		p := path.Join(e.Target, r.name)
		t := b.OpenTreeAt(proc, r.name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE, "clone "+p)
		b.SetAttr(t, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, 0, true, "make "+p+" read-only (recursively)")
		flags := uint64(unix.O_PATH)
		if r.isDir {
			flags |= unix.O_DIRECTORY
		}
		dst := b.Open(proc, r.name, flags, 0, resolveInRoot, "open "+p)
		b.MoveMount(t, dst, "", "mount the read-only "+p+" over itself")
		b.Close(dst)
		b.Close(t)
	}
	// masks holds one /dev/null tree for each of masked, in order.
	for j, m := range masked {
		p := path.Join(e.Target, m.name)
		dst := b.Open(proc, m.name, unix.O_PATH, 0, resolveInRoot, "open "+p)
		b.MoveMount(masks[j], dst, "", "hide "+p+" behind /dev/null")
		b.Close(dst)
		b.Close(masks[j])
	}
	b.Close(proc)
	if l.log != nil {
		l.log.Debug(fmt.Sprintf("Mount point: %s: %v made read-only, %v hidden, as the command is the host's root", e.Target, readOnly, masked))
	}
	return nil
}

func describe(e entry) string {
	switch e.Kind {
	case KindBind:
		return "the bind of " + e.Source
	case KindOverlay:
		return "the overlay of " + e.Source
	case KindDevfs:
		return "a devfs tmpfs"
	}
	return "a new " + map[MountKind]string{KindTmpfs: "tmpfs", KindProc: "proc", kindDevpts: "devpts"}[e.Kind]
}

func attrNames(a uint64) string {
	var s []string
	if a&unix.MOUNT_ATTR_RDONLY != 0 {
		s = append(s, "read-only")
	} else {
		s = append(s, "read-write")
	}
	if a&unix.MOUNT_ATTR_NOSUID != 0 {
		s = append(s, "nosuid")
	}
	if a&unix.MOUNT_ATTR_NODEV != 0 {
		s = append(s, "nodev")
	}
	if a&unix.MOUNT_ATTR_NOEXEC != 0 {
		s = append(s, "noexec")
	}
	return strings.Join(s, ",") + " (recursively)"
}

// owner returns the mount that p lies in: the deepest placed mount above p,
// or for the root, nil (a tmpfs) or the root directory's entry.
func (l *layout) owner(p string) *entry {
	for i := len(l.placed) - 1; i >= 0; i-- {
		t := l.placed[i].Target
		if strings.HasPrefix(p, t+"/") {
			return &l.placed[i]
		}
	}
	return l.rootEntry
}

// creatable reports whether new entries may be made at p: only on tmpfs
// that this sandbox made (an overlay's too), never inside a bind of the
// host, an overlay whose writes go to the host, or proc.
func creatable(owner *entry) bool {
	return owner == nil || owner.Kind == KindTmpfs || owner.Kind == KindDevfs || owner.Kind == KindOverlay && owner.Upper == ""
}

// dir returns the slot of an O_PATH fd of directory p in the new root,
// creating it and its parents where they lie on our own tmpfs.
func (l *layout) dir(p string) (int32, error) {
	if fd, ok := l.dirs[p]; ok {
		return fd, nil
	}
	parent, err := l.dir(path.Dir(p))
	if err != nil {
		return 0, err
	}
	name := path.Base(p)
	if o := l.owner(p); creatable(o) {
		l.b.Mkdir(parent, name, 0o755, true, "mkdir "+p)
	} else if err := l.mustExist(o, p, true); err != nil {
		return 0, err
	}
	fd := l.b.Open(parent, name, unix.O_PATH|unix.O_DIRECTORY, 0, resolveInRoot, "open directory "+p)
	l.dirs[p] = fd
	return fd, nil
}

// mustExist checks, for a clear early error, that p exists in the bind it
// lies in. hakoniwa never creates anything on the host's file systems.
func (l *layout) mustExist(o *entry, p string, wantDir bool) error {
	if o.Kind != KindBind && o.Kind != KindOverlay {
		return configErr(p, "cannot create a mount point inside the %s at %s", o.Kind, o.Target)
	}
	host := path.Join(o.Source, strings.TrimPrefix(p, o.Target))
	fi, err := os.Lstat(host)
	if err != nil {
		return configErr(p, "lies in the %s at %s, and %s does not exist: hakoniwa does not create mount points on the host", describeOwner(o), o.Target, host)
	}
	if wantDir && !fi.IsDir() {
		return configErr(p, "lies in the %s at %s, and %s is not a directory", describeOwner(o), o.Target, host)
	}
	return nil
}

// target returns the slot of an fd of e's mount point, created if needed.
func (l *layout) target(e entry) (int32, error) {
	parent, err := l.dir(path.Dir(e.Target))
	if err != nil {
		return 0, err
	}
	name := path.Base(e.Target)
	o := l.owner(e.Target)
	if !creatable(o) {
		if err := l.mustExist(o, e.Target, e.isDir); err != nil {
			return 0, err
		}
		flags := uint64(unix.O_PATH)
		if e.isDir {
			flags |= unix.O_DIRECTORY
		}
		return l.b.Open(parent, name, flags, 0, resolveInRoot, "open mount point "+e.Target), nil
	}
	if e.isDir {
		l.b.Mkdir(parent, name, 0o755, true, "mkdir "+e.Target)
		return l.b.Open(parent, name, unix.O_PATH|unix.O_DIRECTORY, 0, resolveInRoot, "open mount point "+e.Target), nil
	}
	return l.b.Open(parent, name, unix.O_RDONLY|unix.O_CREAT, 0o644, resolveInRoot, "create mount point "+e.Target), nil
}

// fileMount puts a file with e's contents over the file at e.Target,
// which lies in a bind of the host (o) and must exist there: the contents
// are written to a file on the root tmpfs, which is cloned as a mount of
// its own, mounted read-only over the target, and unlinked from the root. A symlink at the target is covered, not followed: the new
// root may not have what it points to (/etc/resolv.conf is often a link
// into /run).
func (l *layout) fileMount(e entry, o *entry) error {
	what := "file " + e.Target
	if o.Kind != KindBind {
		return configErr(what, "lies inside the %s at %s; a file can only be created on the root, a tmpfs or a devfs, or put over a file of a bind", describeOwner(o), o.Target)
	}
	host := path.Join(o.Source, strings.TrimPrefix(e.Target, o.Target))
	fi, err := os.Lstat(host)
	if err != nil && e.Optional {
		if l.log != nil {
			l.log.Info(fmt.Sprintf("File: skipped %s, as %s does not exist in the bind of %s", e.Target, host, o.Source))
		}
		return nil
	}
	if err != nil {
		return configErr(what, "lies in the bind of %s at %s, and %s does not exist: hakoniwa puts a file over an existing one there, and does not create files on the host", o.Source, o.Target, host)
	}
	if fi.IsDir() {
		return configErr(what, "lies in the bind of %s at %s, and %s is a directory", o.Source, o.Target, host)
	}
	b := l.b
	staged := fmt.Sprintf(".hakoniwa-file-%d", l.staged)
	l.staged++
	fd := b.Open(l.stage, staged, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644, resolveInRoot, "stage the contents of "+e.Target+" as "+staged)
	b.Write(fd, e.Contents, fmt.Sprintf("write %d bytes to %s", len(e.Contents), staged))
	b.Close(fd)
	tree := b.OpenTreeAt(l.stage, staged, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC, "clone "+staged+" as a mount of its own")
	b.SetAttr(tree, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, 0, false, "make it read-only, nosuid, nodev, noexec")
	parent, err := l.dir(path.Dir(e.Target))
	if err != nil {
		return err
	}
	dst := b.Open(parent, path.Base(e.Target), unix.O_PATH|unix.O_NOFOLLOW, 0, resolveInRoot, "open mount point "+e.Target)
	b.MoveMount(tree, dst, "", "mount the new contents over "+e.Target)
	b.Close(dst)
	b.Close(tree)
	// The mount keeps the file; the root need not (the kernel will not
	// mount an unlinked file, so this comes last).
	b.Unlink(l.stage, staged, 0, "remove "+staged+" from where it was staged")
	return nil
}

// createIn returns the parent directory for a dir, symlink or file entry,
// which may only be made on our own tmpfs.
func (l *layout) createIn(e entry) (int32, error) {
	if o := l.owner(e.Target); !creatable(o) {
		return 0, configErr(e.Kind.String()+" "+e.Target, "lies inside the %s at %s; entries can only be created on the root, a tmpfs or a devfs", describeOwner(o), o.Target)
	}
	return l.dir(path.Dir(e.Target))
}

func describeOwner(o *entry) string {
	switch o.Kind {
	case KindBind:
		return "bind of " + o.Source
	case KindOverlay:
		return "overlay of " + o.Source
	}
	return o.Kind.String()
}

// forget drops cached fds at and below p, which a mount on p has hidden.
func (l *layout) forget(p string) {
	var gone []string
	for k := range l.dirs {
		if k == p || strings.HasPrefix(k, p+"/") {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		l.b.Close(l.dirs[k])
		delete(l.dirs, k)
	}
}
