package hakoniwa

import (
	"fmt"
	"os"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/mountopt"
	"github.com/hakoniwa-go/hakoniwa/policy"
	"github.com/hakoniwa-go/hakoniwa/seccomp"
)

// FromPolicy returns a new Container with p applied (see ApplyPolicy).
func FromPolicy(p *policy.Policy) (*Container, error) {
	c := New()
	if err := c.ApplyPolicy(p); err != nil {
		return nil, err
	}
	return c, nil
}

// ApplyPolicy adds what p sets to c: namespaces, network, identity,
// hostname, mounts, files, environment and limits. Later changes to c win
// over it. p's command is not part of a Container; run it with
// c.Command(p.Command.Cmdline...).
//
// p is checked first (see policy.Policy.Validate), so a policy built in Go
// gets the same errors as one loaded from a file; on error c is unchanged.
func (c *Container) ApplyPolicy(p *policy.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	var prof *seccomp.Profile
	if s := p.Seccomp; s != nil {
		var err error
		if s.Path != "" {
			prof, _, err = seccomp.Load(s.Path)
		} else {
			prof, err = seccomp.FromSeed(s.Syscalls, s.DismatchAction)
		}
		if err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
		c.Seccomp(prof)
	}
	for typ, share := range p.Shares() {
		switch typ {
		case "network":
			c.ShareNet(share)
		case "uts":
			c.ShareUTS(share)
		case "ipc":
			c.ShareIPC(share)
		case "cgroup":
			c.ShareCgroup(share)
		}
	}
	if p.Rootfs != nil {
		c.Rootfs(*p.Rootfs)
	}
	if r := p.Rootdir; r != nil && r.Overlay {
		c.RootdirOverlay(r.Path)
	} else if r != nil {
		c.Rootdir(r.Path, r.RW)
	}
	if p.Network != nil {
		c.ShareNet(p.Network.Mode == "host").Loopback(p.Network.Mode == "loopback")
		if m := p.Network.Mode; m == "pasta" || m == "slirp4netns" {
			c.UserNetwork(m, p.Network.Options...)
		} else {
			c.UserNetwork("")
		}
		c.DNS(p.Network.DNS...).AllowConnect(p.Network.AllowConnect...)
		for _, spec := range p.Network.Publish {
			c.Publish(spec)
		}
	}
	for _, m := range []struct {
		maps   []policy.IDMap
		caller uint32
		set    func(...IDMap) *Container
	}{{p.UIDMaps, uint32(os.Getuid()), c.UIDMaps}, {p.GIDMaps, uint32(os.Getgid()), c.GIDMaps}} {
		if len(m.maps) == 0 {
			continue
		}
		var maps []IDMap
		for _, pm := range m.maps {
			im := IDMap{Inside: pm.ContainerID, Outside: m.caller, Count: 1}
			if pm.HostID != nil {
				im.Outside = *pm.HostID
			}
			if pm.Count != nil {
				im.Count = *pm.Count
			}
			maps = append(maps, im)
		}
		m.set(maps...) // the caller's own id alone is still mapped by the sandbox itself
	}
	if p.Hostname != nil {
		c.Hostname(*p.Hostname)
	}
	for _, m := range p.Mounts {
		switch m.Type {
		case "":
			c.AddMount(Mount{Kind: KindBind, Source: m.Source, Target: m.Target(), RW: m.RW, Optional: m.Optional})
		case "tmpfs":
			c.Tmpfs(m.Destination, m.Options)
		case "devfs":
			c.Devfs(m.Destination)
		case "proc":
			c.Proc(m.Destination)
		}
	}
	if fsys := p.Filesystem; fsys != nil {
		for _, f := range fsys.Files {
			c.File(f.Destination, []byte(f.Contents))
		}
		for _, d := range fsys.Dirs {
			mode := uint32(0o700)
			if d.Mode != "" {
				mode, _ = mountopt.DirMode(d.Mode) // checked by Validate
			}
			c.Dir(d.Destination, mode)
		}
		for _, s := range fsys.Symlinks {
			c.Symlink(s.Original, s.Link)
		}
	}
	for _, e := range p.Envs {
		if e.Value != nil {
			c.Setenv(e.Name, *e.Value)
		} else if v, ok := os.LookupEnv(e.Name); ok {
			c.Setenv(e.Name, v)
		}
	}
	if ll := p.Landlock; ll != nil {
		c.Landlock(landlockOf(ll))
	}
	for _, l := range p.Limits {
		switch n := wholeValue(l.Value); l.Type {
		case "walltime":
			c.Walltime(time.Duration(n) * time.Second)
		case "memory":
			c.Memory(n)
		case "memory_swap":
			c.MemorySwap(n)
		case "pids":
			c.Pids(n)
		case "cpus":
			c.CPUs(l.Value)
		default:
			c.Rlimit(limitResources[l.Type], n)
		}
	}
	return nil
}

// wholeValue converts a limit's value, checked to be a whole number of 0
// or more, to an integer. 2^63 and more is unlimited: TOML's largest
// integer, 9223372036854775807, which configs write for "no limit", reads
// as 2^63.
func wholeValue(v float64) uint64 {
	if v >= 1<<63 {
		return Unlimited
	}
	return uint64(v)
}

// landlockOf turns the policy's landlock table into rules: a resource is
// restricted when the last resources entry for it says so, or when it has
// rules; an explicit unrestrict (checked to have no rules) lifts it.
func landlockOf(ll *policy.Landlock) *Landlock {
	state := map[string]bool{} // resource -> restricted
	var order []string
	for _, r := range ll.Resources {
		if _, seen := state[r.Type]; !seen {
			order = append(order, r.Type)
		}
		state[r.Type] = !r.Unrestrict
	}
	l := &Landlock{}
	for _, r := range order {
		if state[r] {
			l.Restrict = append(l.Restrict, r)
		}
	}
	for _, r := range ll.FS {
		l.FS = append(l.FS, LandlockPath{Path: r.Path, Access: r.Access})
	}
	for _, r := range ll.Net {
		if r.Access == "tcp.bind" {
			l.TCPBind = append(l.TCPBind, r.Port)
		} else {
			l.TCPConnect = append(l.TCPConnect, r.Port)
		}
	}
	return l
}

// limitResources maps the policy's limit types to rlimit resources.
var limitResources = map[string]int{
	"as": RlimitAS, "core": RlimitCore, "cpu": RlimitCPU, "fsize": RlimitFsize,
	"nofile": RlimitNofile, "nproc": RlimitNproc, "stack": RlimitStack,
}
