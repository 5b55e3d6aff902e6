package hakoniwa

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Landlock describes what the command may reach, enforced with Landlock
// on top of the mounts: file system rights under paths inside the
// sandbox, and TCP ports to bind and connect to. A resource that has
// rules, or that Restrict names, is restricted: everything not allowed is
// denied.
type Landlock struct {
	// Restrict names resources to restrict even without rules: "fs",
	// "tcp.bind", "tcp.connect".
	Restrict []string
	// FS are path rules; Access is a string of r (read files, list
	// directories), w (write, create, remove, rename, truncate) and x
	// (execute), such as "r-x".
	FS []LandlockPath
	// TCPBind and TCPConnect are the ports the command may bind and
	// connect to.
	TCPBind, TCPConnect []uint16
	// Scope stops the command from signalling processes outside its
	// Landlock domain ("signal") or connecting to abstract unix sockets
	// made outside it ("abstract-unix"), with Landlock ABI 6.
	Scope []string
	// Strict makes it an error when the kernel cannot enforce a right
	// asked for; by default such rights are left out (best effort) and
	// the log says which.
	Strict bool
}

// LandlockPath allows Access beneath Path, a path inside the sandbox.
type LandlockPath struct {
	Path   string
	Access string
}

// Landlock restricts the command with l, replacing any rules set before;
// nil, the default, does not restrict it.
func (c *Container) Landlock(l *Landlock) *Container { c.landlock = l; return c }

// AddLandlock adds l's rules, resources and scopes to those set before.
func (c *Container) AddLandlock(l *Landlock) *Container {
	if c.landlock == nil {
		c.landlock = &Landlock{}
	}
	m := *c.landlock
	m.Restrict = append(append([]string(nil), m.Restrict...), l.Restrict...)
	m.FS = append(append([]LandlockPath(nil), m.FS...), l.FS...)
	m.TCPBind = append(append([]uint16(nil), m.TCPBind...), l.TCPBind...)
	m.TCPConnect = append(append([]uint16(nil), m.TCPConnect...), l.TCPConnect...)
	m.Scope = append(append([]string(nil), m.Scope...), l.Scope...)
	m.Strict = m.Strict || l.Strict
	c.landlock = &m
	return c
}

// Landlock's rights, by the ABI that brought them.
const (
	llRead  = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	llExec  = unix.LANDLOCK_ACCESS_FS_EXECUTE
	llWrite = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM | unix.LANDLOCK_ACCESS_FS_REFER | unix.LANDLOCK_ACCESS_FS_TRUNCATE |
		unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	// llFile are the rights that apply to a file, not a directory.
	llFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// landlockFS returns the file system rights that Landlock ABI abi knows.
func landlockFS(abi int) uint64 {
	r := uint64(0x1fff) // ABI 1: execute … make_sym
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		r |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

// landlockABI is the kernel's Landlock ABI version, 0 without Landlock.
var landlockABI = sync.OnceValue(func() int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
})

// parseAccess parses "r-x"-style access into rights.
func parseAccess(s string) (uint64, error) {
	if strings.Trim(s, "-") == "" || strings.Trim(strings.ToLower(s), "rwx-") != "" {
		return 0, fmt.Errorf("bad access %q: want r, w, x or - each, and one of r, w, x at least, such as \"r-x\"", s)
	}
	var r uint64
	for _, c := range strings.ToLower(s) {
		switch c {
		case 'r':
			r |= llRead
		case 'w':
			r |= llWrite
		case 'x':
			r |= llExec
		}
	}
	return r, nil
}

// compileLandlock adds the steps that enforce l, for the kernel's ABI
// abi, and returns what it left out (best effort).
func compileLandlock(b landlockBuilder, l *Landlock, abi int) (missing []string, err error) {
	restrict := map[string]bool{}
	for _, r := range l.Restrict {
		switch r {
		case "fs", "tcp.bind", "tcp.connect":
			restrict[r] = true
		default:
			return nil, fmt.Errorf("unknown resource %q (want fs, tcp.bind or tcp.connect)", r)
		}
	}
	if len(l.FS) > 0 {
		restrict["fs"] = true
	}
	if len(l.TCPBind) > 0 {
		restrict["tcp.bind"] = true
	}
	if len(l.TCPConnect) > 0 {
		restrict["tcp.connect"] = true
	}
	var scoped uint64
	for _, sc := range l.Scope {
		switch sc {
		case "signal":
			scoped |= unix.LANDLOCK_SCOPE_SIGNAL
		case "abstract-unix":
			scoped |= unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
		default:
			return nil, fmt.Errorf("unknown scope %q (want signal or abstract-unix)", sc)
		}
	}
	if len(restrict) == 0 && scoped == 0 {
		return nil, nil
	}
	if abi < 1 {
		missing = append(missing, "all of Landlock (the kernel has none)")
		return missing, nil
	}
	var fs, net uint64
	if restrict["fs"] {
		fs = landlockFS(abi)
		if want := landlockFS(5); fs != want {
			missing = append(missing, fmt.Sprintf("file system rights %#x (ABI %d)", want&^fs, abi))
		}
	}
	for _, r := range []struct {
		name  string
		right uint64
	}{{"tcp.bind", unix.LANDLOCK_ACCESS_NET_BIND_TCP}, {"tcp.connect", unix.LANDLOCK_ACCESS_NET_CONNECT_TCP}} {
		if !restrict[r.name] {
			continue
		}
		if abi < 4 {
			missing = append(missing, r.name+" (needs ABI 4)")
			continue
		}
		net |= r.right
	}
	if scoped != 0 && abi < 6 {
		missing = append(missing, "scopes "+strings.Join(l.Scope, ",")+" (needs ABI 6)")
		scoped = 0
	}
	if l.Strict && len(missing) > 0 {
		return missing, fmt.Errorf("this kernel's Landlock (ABI %d) cannot enforce %s", abi, strings.Join(missing, ", "))
	}
	if fs == 0 && net == 0 && scoped == 0 {
		return missing, nil
	}
	size := uintptr(16) // struct landlock_ruleset_attr up to ABI 5
	if scoped != 0 {
		size = 24
	}
	ruleset := b.LandlockCreate(fs, net, scoped, size, fmt.Sprintf("create a Landlock ruleset (fs %#x, net %#x, scoped %#x)", fs, net, scoped))
	for _, p := range l.FS {
		if !strings.HasPrefix(p.Path, "/") {
			return nil, fmt.Errorf("landlock path %q: not an absolute path inside the sandbox", p.Path)
		}
		access, err := parseAccess(p.Access)
		if err != nil {
			return nil, fmt.Errorf("landlock path %s: %w", p.Path, err)
		}
		access &= fs
		b.LandlockPath(ruleset, p.Path, access, llFile, fmt.Sprintf("landlock: allow %s under %s", p.Access, p.Path))
	}
	for _, ports := range []struct {
		list  []uint16
		right uint64
		name  string
	}{{l.TCPBind, unix.LANDLOCK_ACCESS_NET_BIND_TCP, "bind"}, {l.TCPConnect, unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, "connect"}} {
		if net&ports.right == 0 {
			continue
		}
		for _, port := range ports.list {
			b.LandlockPort(ruleset, port, ports.right, fmt.Sprintf("landlock: allow TCP %s to port %d", ports.name, port))
		}
	}
	b.LandlockRestrict(ruleset, "restrict the command with the Landlock ruleset")
	b.Close(ruleset)
	return missing, nil
}

// landlockTCP reports whether l restricts TCP.
func landlockTCP(l *Landlock) bool {
	for _, r := range l.Restrict {
		if strings.HasPrefix(r, "tcp.") {
			return true
		}
	}
	return len(l.TCPBind) > 0 || len(l.TCPConnect) > 0
}

// landlockBuilder is the part of nsexec.Builder that compileLandlock uses.
type landlockBuilder interface {
	LandlockCreate(fs, net, scoped uint64, size uintptr, desc string) int32
	LandlockPath(ruleset int32, path string, access, fileAccess uint64, desc string)
	LandlockPort(ruleset int32, port uint16, access uint64, desc string)
	LandlockRestrict(ruleset int32, desc string)
	Close(slot int32)
}
