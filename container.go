// Package hakoniwa runs commands in Linux sandboxes built from namespaces,
// mounts and resource limits, with an API that follows os/exec.
//
// A Container describes the sandbox: its mounts, identity, namespaces and
// limits. Container.Command returns a Cmd, which is started, waited for and
// read like an exec.Cmd, and which reports what happened as a Result:
//
//	c := hakoniwa.New().BindRO("/usr", "/usr").Symlink("usr/bin", "/bin")
//	out, err := c.Command("/bin/echo", "hello").Output()
//
// The sandbox is set up without re-executing any program of ours: the parent
// compiles it into a plan of plain data, and the cloned child runs that plan
// with raw system calls up to execve (see internal/nsexec).
package hakoniwa

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"golang.org/x/sys/unix"
)

// A MountKind says what an entry of the sandbox's file system is.
type MountKind int

// The kinds of entries in the sandbox's file system.
const (
	KindBind    MountKind = iota + 1 // a bind mount of a host path
	KindTmpfs                        // a new tmpfs
	KindProc                         // a new proc instance
	KindDevfs                        // a minimal /dev
	KindDir                          // a directory
	KindSymlink                      // a symbolic link
	KindFile                         // a file with given contents
	KindOverlay                      // a writable overlay of a host directory
)

func (k MountKind) String() string {
	switch k {
	case KindBind:
		return "bind"
	case KindTmpfs:
		return "tmpfs"
	case KindProc:
		return "proc"
	case KindDevfs:
		return "devfs"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	case KindFile:
		return "file"
	case KindOverlay:
		return "overlay"
	}
	return fmt.Sprintf("MountKind(%d)", int(k))
}

// A Mount is one entry of the sandbox's file system, keyed by its Target.
type Mount struct {
	Kind     MountKind
	Source   string // host path of a bind
	Target   string // absolute path inside the sandbox
	RW       bool   // a writable bind
	Optional bool   // a bind whose missing source is skipped; a file not put over a missing one
	Options  string // tmpfs options, such as "size=64M,mode=1777"
	Mode     uint32 // mode of a dir (0 means 0755)
	Link     string // what a symlink points to
	Contents []byte // contents of a file
	// Upper and Work are an overlay's directories for its writes, and
	// for overlayfs's own use (empty, on Upper's file system); both ""
	// for a tmpfs, whose writes vanish with the run.
	Upper, Work string
}

// Rlimit resources understood by Container.Rlimit.
const (
	RlimitAS     = 9  // RLIMIT_AS, bytes
	RlimitCore   = 4  // RLIMIT_CORE, bytes
	RlimitCPU    = 0  // RLIMIT_CPU, seconds
	RlimitFsize  = 1  // RLIMIT_FSIZE, bytes
	RlimitNofile = 7  // RLIMIT_NOFILE
	RlimitNproc  = 6  // RLIMIT_NPROC
	RlimitStack  = 3  // RLIMIT_STACK, bytes
	rlimitCount  = 16 // bound on resource numbers
)

var rlimitNames = map[int]string{
	RlimitAS: "as", RlimitCore: "core", RlimitCPU: "cpu", RlimitFsize: "fsize",
	RlimitNofile: "nofile", RlimitNproc: "nproc", RlimitStack: "stack",
}

// Container describes a sandbox. Its methods change it and return it, so
// that calls chain. A Container may start any number of commands, one after
// another or at once; it is not changed by running them.
type Container struct {
	shareNet, shareUTS, shareIPC, shareCgroup bool
	loopback                                  bool
	usernet                                   *userNet
	publish                                   []string
	dns, allowConnect                         []string

	hostname    string
	hostnameSet bool
	uid, gid    *int64 // ids inside; nil means the caller's own
	uidMaps     []IDMap
	gidMaps     []IDMap
	usernsAuto  bool
	user        string

	rootfs  string   // see Rootfs
	rootdir *rootdir // see Rootdir
	mounts  []Mount
	env     []string

	rlimits       map[int]uint64
	walltime      time.Duration
	cg            cgroupConfig
	rootRW        bool
	allowNewPrivs bool
	noProc        bool
	copyMemory    bool
	watchdog      bool

	seccomp       *seccomp.Profile
	seccompFilter []unix.SockFilter
	seccompErr    error
	learner       *seccomp.Learner
	landlock      *Landlock
	caps          *Caps

	logger *slog.Logger
}

// New returns a Container with nothing in its root but /proc: new user,
// mount, pid, ipc, net, uts and cgroup namespaces, hostname "hakoniwa", the
// caller's uid and gid mapped to themselves, and no environment.
func New() *Container {
	return &Container{hostname: "hakoniwa", rlimits: map[int]uint64{}, watchdog: true}
}

// Clone returns a deep copy of c.
func (c *Container) Clone() *Container {
	n := *c
	n.mounts = append([]Mount(nil), c.mounts...)
	n.env = append([]string(nil), c.env...)
	n.publish = append([]string(nil), c.publish...)
	n.uidMaps = append([]IDMap(nil), c.uidMaps...)
	n.gidMaps = append([]IDMap(nil), c.gidMaps...)
	n.dns = append([]string(nil), c.dns...)
	n.allowConnect = append([]string(nil), c.allowConnect...)
	n.rlimits = map[int]uint64{}
	for k, v := range c.rlimits {
		n.rlimits[k] = v
	}
	if c.uid != nil {
		u := *c.uid
		n.uid = &u
	}
	if c.gid != nil {
		g := *c.gid
		n.gid = &g
	}
	return &n
}

// AddMount adds m. A later entry with the same target replaces an earlier
// one.
func (c *Container) AddMount(m Mount) *Container {
	if m.Target != "" && m.Target[0] == '/' {
		m.Target = path.Clean(m.Target)
	}
	c.mounts = append(c.mounts, m)
	return c
}

// Mounts returns the file system entries in the order they were added.
func (c *Container) Mounts() []Mount { return append([]Mount(nil), c.mounts...) }

// BindRO bind-mounts the host path src read-only at dst ("" means src).
func (c *Container) BindRO(src, dst string) *Container {
	return c.AddMount(Mount{Kind: KindBind, Source: src, Target: orSame(dst, src)})
}

// BindRW bind-mounts the host path src read-write at dst ("" means src).
func (c *Container) BindRW(src, dst string) *Container {
	return c.AddMount(Mount{Kind: KindBind, Source: src, Target: orSame(dst, src), RW: true})
}

// Tmpfs mounts a new tmpfs at dst with the given options ("size=64M,mode=1777").
func (c *Container) Tmpfs(dst, options string) *Container {
	return c.AddMount(Mount{Kind: KindTmpfs, Target: dst, Options: options})
}

// Proc mounts a new proc at dst. /proc is mounted by default.
func (c *Container) Proc(dst string) *Container {
	return c.AddMount(Mount{Kind: KindProc, Target: dst})
}

// Devfs mounts a minimal /dev at dst: null, zero, full, random, urandom and
// tty, the fd links, a new devpts instance and a tmpfs shm.
func (c *Container) Devfs(dst string) *Container {
	return c.AddMount(Mount{Kind: KindDevfs, Target: dst})
}

// Overlay mounts at dst a writable view of the host directory lower
// (overlayfs): writes go to upper, with work an empty directory on the
// same file system, and lower is never changed. TmpOverlay keeps the
// writes on a tmpfs instead.
func (c *Container) Overlay(lower, upper, work, dst string) *Container {
	return c.AddMount(Mount{Kind: KindOverlay, Source: lower, Upper: upper, Work: work, Target: dst})
}

// TmpOverlay mounts at dst a writable view of the host directory lower
// whose writes go to a tmpfs and vanish with the run.
func (c *Container) TmpOverlay(lower, dst string) *Container {
	return c.AddMount(Mount{Kind: KindOverlay, Source: lower, Target: dst})
}

// Dir creates the directory dst with mode (0 means 0755).
func (c *Container) Dir(dst string, mode uint32) *Container {
	return c.AddMount(Mount{Kind: KindDir, Target: dst, Mode: mode})
}

// Symlink creates link as a symlink to target.
func (c *Container) Symlink(target, link string) *Container {
	return c.AddMount(Mount{Kind: KindSymlink, Target: link, Link: target})
}

// File creates the file dst with the given contents.
func (c *Container) File(dst string, contents []byte) *Container {
	return c.AddMount(Mount{Kind: KindFile, Target: dst, Contents: append([]byte(nil), contents...)})
}

// NoProc leaves /proc unmounted unless a Proc entry asks for it.
func (c *Container) NoProc() *Container { c.noProc = true; return c }

// ShareNet keeps the host's network namespace.
func (c *Container) ShareNet(share bool) *Container { c.shareNet = share; return c }

// Loopback brings the loopback interface up in the sandbox's own network
// namespace, so that programs inside can talk over 127.0.0.1 and ::1 while
// nothing reaches out. It has no effect when the network is shared.
func (c *Container) Loopback(up bool) *Container { c.loopback = up; return c }

// ShareUTS keeps the host's uts namespace, and so its hostname.
func (c *Container) ShareUTS(share bool) *Container { c.shareUTS = share; return c }

// ShareIPC keeps the host's ipc namespace.
func (c *Container) ShareIPC(share bool) *Container { c.shareIPC = share; return c }

// ShareCgroup keeps the host's cgroup namespace.
func (c *Container) ShareCgroup(share bool) *Container { c.shareCgroup = share; return c }

// Hostname sets the hostname of the new uts namespace.
func (c *Container) Hostname(name string) *Container {
	c.hostname, c.hostnameSet = name, true
	return c
}

// UID sets the uid the command has inside; it maps to the caller's uid.
func (c *Container) UID(id int64) *Container { c.uid, c.uidMaps = &id, nil; return c }

// GID sets the gid the command has inside; it maps to the caller's gid.
func (c *Container) GID(id int64) *Container { c.gid, c.gidMaps = &id, nil; return c }

// Setenv sets an environment variable for every command of c.
func (c *Container) Setenv(name, value string) *Container {
	c.env = append(c.env, name+"="+value)
	return c
}

// Env returns the environment set with Setenv, later entries winning.
func (c *Container) Env() []string { return dedupEnv(c.env) }

// Rlimit sets resource res (RlimitAS, ...) to soft = hard = value.
func (c *Container) Rlimit(res int, value uint64) *Container {
	c.rlimits[res] = value
	return c
}

// Walltime kills the command when it has run for d (0 means no limit).
func (c *Container) Walltime(d time.Duration) *Container { c.walltime = d; return c }

// RootRW leaves the root tmpfs writable after setup.
func (c *Container) RootRW(rw bool) *Container { c.rootRW = rw; return c }

// AllowNewPrivs leaves no_new_privs unset.
func (c *Container) AllowNewPrivs(allow bool) *Container { c.allowNewPrivs = allow; return c }

// CopyMemory makes the sandbox's first process start in a copy of the
// caller's memory, as after fork, instead of sharing it until its execve, as
// after vfork. Sharing is the default: it is faster, and its cost does not
// grow with the caller's size. The difference shows in Result.MaxRSS, which
// Linux makes at least the size of the memory the process had before its
// execve: with sharing, the caller's whole resident memory; with a copy,
// only the caller's resident anonymous memory. The CLI, whose own memory is
// small, copies, so that max_rss is close to the command's own.
func (c *Container) CopyMemory(copy bool) *Container { c.copyMemory = copy; return c }

// Watchdog, on by default, starts for each run a tiny process outside the
// sandbox that kills it if the caller dies first, even by SIGKILL. Without
// it that is left to the sandbox's parent-death signal, which a hostile
// command that is PID 1 can clear (with prctl, or with setuid as root
// inside). The watchdog shares the caller's memory and costs about as much
// as starting a thread.
func (c *Container) Watchdog(on bool) *Container { c.watchdog = on; return c }

// Seccomp filters the command's system calls with p (see package
// seccomp); nil, the default, loads no filter. The filter is compiled here,
// once for every command of c; an error in p is returned by Start.
func (c *Container) Seccomp(p *seccomp.Profile) *Container {
	c.seccomp, c.seccompFilter, c.seccompErr, c.learner = p, nil, nil, nil
	if p != nil {
		c.seccompFilter, c.seccompErr = seccomp.Compile(p)
	}
	return c
}

// Logger sets where setup is logged; nil means nowhere.
func (c *Container) Logger(l *slog.Logger) *Container { c.logger = l; return c }

func orSame(dst, src string) string {
	if dst == "" {
		return src
	}
	return dst
}

// dedupEnv keeps the last value of each name, in first-seen order.
func dedupEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[name]; ok {
			out[i] = kv
			continue
		}
		idx[name] = len(out)
		out = append(out, kv)
	}
	return out
}
