package policy

import (
	"math"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/internal/egress"
	"github.com/hakoniwa-go/hakoniwa/internal/mountopt"
	"github.com/hakoniwa-go/hakoniwa/internal/usernet"
	"github.com/hakoniwa-go/hakoniwa/seccomp"
)

// anyHost stands for a host name's lookup when only the syntax is checked.
func anyHost(string) ([]netip.Addr, error) { return []netip.Addr{netip.IPv4Unspecified()}, nil }

// maxID is the largest uid or gid (4294967295 is "no id").
const maxID = 1<<32 - 2

// maxWalltime bounds walltime, in seconds, so that it fits a Duration.
const maxWalltime = 1e9

// Validate checks a policy that was built in Go rather than loaded, with
// the same rules as Load. The errors name keys but no file.
func (p *Policy) Validate() error {
	d := &doc{}
	errs := p.check(d)
	errs = append(errs, p.checkMerged([]*doc{d})...)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func index(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// check finds every problem of one 1.x file.
func (p *Policy) check(d *doc) ErrorList {
	var errs ErrorList
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	for i, ns := range p.Namespaces {
		switch ns.Type {
		case "cgroup", "ipc", "network", "uts":
		default:
			add(d.errAt(index("namespaces", i)+".type", "unknown namespace type %q (want cgroup, ipc, network or uts; user, mount and pid are always new)", ns.Type))
		}
	}
	for i, m := range p.Mounts {
		key := index("mounts", i)
		switch m.Type {
		case "":
			if m.Source == "" {
				add(d.errAt(key, "a bind needs a source"))
				continue
			}
			add(checkAbs(d, key+".source", m.Source))
			if m.Options != "" {
				add(d.errAt(key+".options", "only a tmpfs has options"))
			}
		case "tmpfs", "devfs", "proc":
			if m.Source != "" {
				add(d.errAt(key+".source", "a %s has no source; remove it", m.Type))
			}
			if m.Destination == "" {
				add(d.errAt(key, "a %s needs a destination", m.Type))
			}
			if m.Optional {
				add(d.errAt(key+".optional", "only a bind can be optional"))
			}
			if m.Type != "tmpfs" && m.Options != "" {
				add(d.errAt(key+".options", "only a tmpfs has options"))
			} else if _, _, err := mountopt.Tmpfs(m.Options); err != nil {
				add(d.errAt(key+".options", "%v", err))
			}
			if m.Type != "tmpfs" && m.RW {
				add(d.errAt(key+".rw", "a %s is always mounted as hakoniwa makes it; remove rw", m.Type))
			}
		default:
			add(d.errAt(key+".type", "unknown type %q (want \"\" for a bind, \"tmpfs\", \"devfs\" or \"proc\")", m.Type))
		}
		if m.Destination != "" {
			add(checkAbs(d, key+".destination", m.Destination))
		}
		if path.Clean(m.Target()) == "/" {
			add(d.errAt(key, "cannot replace the root; bind or mount below it"))
		}
	}
	if fsys := p.Filesystem; fsys != nil {
		for i, f := range fsys.Files {
			add(checkEntry(d, index("filesystem.files", i)+".destination", f.Destination))
		}
		for i, dir := range fsys.Dirs {
			key := index("filesystem.dirs", i)
			add(checkEntry(d, key+".destination", dir.Destination))
			if dir.Mode != "" {
				if _, err := mountopt.DirMode(dir.Mode); err != nil {
					add(d.errAt(key+".mode", "%v", err))
				}
			}
		}
		for i, s := range fsys.Symlinks {
			key := index("filesystem.symlinks", i)
			add(checkEntry(d, key+".link", s.Link))
			if s.Original == "" {
				add(d.errAt(key+".original", "the link needs a target"))
			} else if strings.IndexByte(s.Original, 0) >= 0 {
				add(d.errAt(key+".original", "%q contains a NUL byte", s.Original))
			}
		}
	}
	for i, e := range p.Envs {
		key := index("envs", i)
		var value string
		if e.Value != nil {
			value = *e.Value
		}
		add(checkEnv(d, key+".name", e.Name, value))
	}
	if n := p.Network; n != nil {
		switch n.Mode {
		case "none", "loopback", "host":
			if len(n.Options) > 0 {
				add(d.errAt("network.options", "options are for the pasta and slirp4netns modes, not %q", n.Mode))
			}
		case "pasta", "slirp4netns":
		default:
			add(d.errAt("network.mode", "unknown mode %q (want none, loopback, host, pasta or slirp4netns)", n.Mode))
		}
		userNet := n.Mode == "pasta" || n.Mode == "slirp4netns"
		for i, s := range n.DNS {
			if s == "none" {
				if len(n.DNS) > 1 {
					add(d.errAt(index("network.dns", i), `"none" means no name server, and cannot be given with others`))
				}
			} else if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
				add(d.errAt(index("network.dns", i), `%q is not an IP address (or "none")`, s))
			} else if n.Mode == "none" || n.Mode == "loopback" {
				add(d.errAt(index("network.dns", i), "the sandbox has no network to reach a name server with (mode %q)", n.Mode))
			}
		}
		for i, s := range n.Publish {
			if p, err := usernet.ParsePort(s); err != nil {
				add(d.errAt(index("network.publish", i), "%v", err))
			} else if !userNet {
				add(d.errAt(index("network.publish", i), "needs mode pasta or slirp4netns, not %q", n.Mode))
			} else if n.Mode == "slirp4netns" && strings.Contains(p.HostIP, ":") {
				add(d.errAt(index("network.publish", i), "slirp4netns forwards IPv4 only"))
			}
		}
		for i, s := range n.AllowConnect {
			// Host names are looked up when the sandbox starts.
			if _, err := egress.Parse(s, anyHost); err != nil {
				add(d.errAt(index("network.allow_connect", i), "%v", err))
			} else if !userNet {
				add(d.errAt(index("network.allow_connect", i), "needs mode pasta or slirp4netns, not %q", n.Mode))
			}
		}
	}
	if ll := p.Landlock; ll != nil {
		// A rule restricts its resource; one that resources explicitly
		// unrestricts (as a profile does to lift an include's restriction)
		// would do nothing, which is an error.
		unrestricted := map[string]bool{}
		for i, r := range ll.Resources {
			key := index("landlock.resources", i)
			switch r.Type {
			case "fs", "tcp.bind", "tcp.connect":
				unrestricted[r.Type] = r.Unrestrict
			default:
				add(d.errAt(key+".type", "unknown resource %q (want fs, tcp.bind or tcp.connect)", r.Type))
			}
		}
		for i, r := range ll.FS {
			key := index("landlock.fs", i)
			add(checkAbs(d, key+".path", r.Path))
			if strings.Trim(strings.ToLower(r.Access), "-") == "" || strings.Trim(strings.ToLower(r.Access), "rwx-") != "" {
				add(d.errAt(key+".access", "bad access %q: want r, w, x or - each, such as \"r-x\"", r.Access))
			}
			if unrestricted["fs"] {
				add(d.errAt(key, "fs is unrestricted (resources … unrestrict = true), so this rule would do nothing"))
			}
		}
		for i, r := range ll.Net {
			key := index("landlock.net", i)
			if r.Port == 0 {
				add(d.errAt(key+".port", "want a port from 1 to 65535"))
			}
			switch r.Access {
			case "tcp.bind", "tcp.connect":
				if unrestricted[r.Access] {
					add(d.errAt(key, "%s is unrestricted (resources … unrestrict = true), so this rule would do nothing", r.Access))
				}
			default:
				add(d.errAt(key+".access", "bad access %q: want tcp.bind or tcp.connect", r.Access))
			}
		}
	}
	if r := p.Rootfs; r != nil && *r != "/" && *r != "none" {
		add(checkAbs(d, "rootfs", *r))
	}
	if r := p.Rootdir; r != nil {
		add(checkAbs(d, "rootdir.path", r.Path))
		if r.RW && r.Overlay {
			add(d.errAt("rootdir.overlay", "rw writes to the directory and overlay to a tmpfs: choose one"))
		}
	}
	for _, maps := range []struct {
		key    string
		maps   []IDMap
		caller int
	}{{"uidmaps", p.UIDMaps, os.Getuid()}, {"gidmaps", p.GIDMaps, os.Getgid()}} {
		for i, m := range maps.maps {
			key := index(maps.key, i)
			if m.ContainerID > maxID {
				add(d.errAt(key+".container_id", "%d: want an id from 0 to %d", m.ContainerID, maxID))
			}
			if m.HostID != nil && *m.HostID > maxID {
				add(d.errAt(key+".host_id", "%d: want an id from 0 to %d", *m.HostID, maxID))
			}
			if m.Count != nil && *m.Count == 0 {
				add(d.errAt(key+".count", "want a count from 1"))
			}
			in, out, n := m.span(maps.caller)
			for j, o := range maps.maps[:i] {
				oin, oout, on := o.span(maps.caller)
				switch {
				case in < oin+on && oin < in+n:
					add(d.errAt(key, "its ids inside overlap those of %s", index(maps.key, j)))
				case out < oout+on && oout < out+n:
					add(d.errAt(key, "its ids on the host overlap those of %s", index(maps.key, j)))
				}
			}
		}
	}
	if p.Hostname != nil {
		add(checkHostname(d, "hostname", *p.Hostname))
	}
	memory, swapAt := -1, -1
	for i, l := range p.Limits {
		add(checkLimit(d, index("limits", i), l.Type, l.Value))
		switch l.Type {
		case "memory":
			memory = i
		case "memory_swap":
			swapAt = i
		}
	}
	if memory >= 0 && swapAt >= 0 {
		add(checkSwap(d, index("limits", swapAt), p.Limits[swapAt].Value, p.Limits[memory].Value))
	}
	if s := p.Seccomp; s != nil {
		switch {
		case s.Path != "" && (len(s.Syscalls) > 0 || s.DismatchAction != ""):
			add(d.errAt("seccomp.path", "a profile (path) or a list (syscalls, dismatch_action), not both"))
		case s.Path == "" && s.Syscalls == nil && s.DismatchAction == "":
			add(d.errAt("seccomp", "want path = a built-in profile's name (default, docker, podman, audit, unconfined) or a JSON profile's path; or syscalls and dismatch_action"))
		case s.Path == "":
			add(checkSeccompList(d, s.Syscalls, s.DismatchAction))
		}
	}
	if c := p.Command; c != nil {
		for i, arg := range c.Cmdline {
			if strings.IndexByte(arg, 0) >= 0 {
				add(d.errAt(index("command.cmdline", i), "contains a NUL byte"))
			} else if i == 0 && arg == "" {
				add(d.errAt(index("command.cmdline", i), "the program name is empty"))
			}
		}
		if c.Cwd != "" {
			add(checkAbs(d, "command.cwd", c.Cwd))
		}
	}
	return errs
}

// checkMerged finds the problems that only show once every include is
// merged, in keys that several files may set. docs are the files in the
// order they were merged (each file after its includes): an error is
// placed in the last one that sets the key, the one whose value won.
func (p *Policy) checkMerged(docs []*doc) ErrorList {
	var errs ErrorList
	d := &multiDoc{docs}
	share := p.Shares()
	if p.Hostname != nil && share["uts"] {
		errs = append(errs, d.errAt("hostname", "the hostname cannot be set with the uts namespace shared"))
	}
	if n := p.Network; n != nil {
		last := ""
		for _, ns := range p.Namespaces {
			if ns.Type == "network" {
				last = strconv.FormatBool(ns.Share)
			}
		}
		if n.Mode == "host" && last == "false" || n.Mode != "host" && last == "true" {
			errs = append(errs, d.errAt("network.mode", "%q conflicts with namespaces { type = \"network\", share = %s }", n.Mode, last))
		}
	}
	return errs
}

// multiDoc places an error in the last of several files that has the key.
type multiDoc struct{ docs []*doc }

func (m *multiDoc) errAt(key, format string, args ...any) *Error {
	for i := len(m.docs) - 1; i >= 0; i-- {
		if _, ok := m.docs[i].lookup(key); ok {
			return m.docs[i].errAt(key, format, args...)
		}
	}
	return m.docs[0].errAt(key, format, args...)
}

// Shares returns, for each namespace type the policy names, whether it is
// shared with the host; the last entry for a type wins, and network mode
// "host" shares the network namespace.
func (p *Policy) Shares() map[string]bool {
	share := map[string]bool{}
	for _, ns := range p.Namespaces {
		share[ns.Type] = ns.Share
	}
	if p.Network != nil && p.Network.Mode == "host" {
		share["network"] = true
	}
	return share
}

// checkSeccompList checks the seed's seccomp section: known syscall names
// and a known dismatch_action.
func checkSeccompList(d *doc, syscalls []string, action string) *Error {
	if _, err := seccomp.FromSeed(syscalls, action); err != nil {
		key := "seccomp.syscalls"
		if strings.HasPrefix(err.Error(), "dismatch_action") {
			key = "seccomp.dismatch_action"
		}
		return d.errAt(key, "%v", err)
	}
	return nil
}

func checkAbs(d *doc, key, p string) *Error {
	switch {
	case p == "":
		return d.errAt(key, "empty path")
	case !strings.HasPrefix(p, "/"):
		return d.errAt(key, "%q is not an absolute path", p)
	case strings.IndexByte(p, 0) >= 0:
		return d.errAt(key, "%q contains a NUL byte", p)
	}
	return nil
}

// checkEntry checks where a file, directory or symlink is made: an
// absolute path below the root.
func checkEntry(d *doc, key, p string) *Error {
	if e := checkAbs(d, key, p); e != nil {
		return e
	}
	if path.Clean(p) == "/" {
		return d.errAt(key, "the root already exists; name a path below it")
	}
	return nil
}

func checkHostname(d *doc, key, name string) *Error {
	if name == "" || len(name) > 64 || strings.IndexByte(name, 0) >= 0 {
		return d.errAt(key, "%q: want 1 to 64 bytes", name)
	}
	return nil
}

func checkEnv(d *doc, key, name, value string) *Error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return d.errAt(key, "bad variable name %q", name)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return d.errAt(key, "the value of %s contains a NUL byte", name)
	}
	return nil
}

func checkLimit(d *doc, key, typ string, v float64) *Error {
	for _, t := range LimitTypes {
		if t != typ {
			continue
		}
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
			return d.errAt(key, "%s %s: want a number of 0 or more", typ, num(v))
		case typ == "cpus" && (v < 0.01 || v > 1<<20):
			return d.errAt(key, "cpus %s: want a number of cpus from 0.01, such as 0.5 or 2", num(v))
		case typ != "cpus" && v != math.Trunc(v):
			return d.errAt(key, "%s %s: want a whole number", typ, num(v))
		case typ == "walltime" && v > maxWalltime:
			return d.errAt(key, "walltime %s: want at most %d seconds", num(v), int64(maxWalltime))
		case typ == "memory" && v < 1<<20:
			return d.errAt(key, "memory %s: want at least 1048576 (1M) bytes", num(v))
		case typ == "pids" && v == 0:
			return d.errAt(key, "pids 0: want 1 or more")
		}
		return nil
	}
	return d.errAt(key+".type", "unknown limit %q (want %s)", typ, strings.Join(LimitTypes, ", "))
}

// checkSwap checks that memory_swap, memory and swap together, is at least
// memory.
func checkSwap(d *doc, key string, swap, memory float64) *Error {
	if swap < memory {
		return d.errAt(key, "memory_swap %s: want at least memory (%s): it limits memory and swap together", num(swap), num(memory))
	}
	return nil
}

// num writes a number as it would be in the file: 1000000001, 0.5, +Inf.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// span returns the ids a map covers, inside and on the host, and how many:
// the caller's id and one by default.
func (m IDMap) span(caller int) (inside, host, n uint64) {
	host, n = uint64(caller), 1
	if m.HostID != nil {
		host = uint64(*m.HostID)
	}
	if m.Count != nil {
		n = uint64(*m.Count)
	}
	return uint64(m.ContainerID), host, n
}
