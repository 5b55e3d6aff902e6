package hakoniwa

import (
	"time"

	"github.com/hakoniwa-go/hakoniwa/policy"
)

// ApplyPolicy adds what p sets to c: namespaces, identity, hostname, mounts,
// files, environment and limits. Later changes to c win over it.
func (c *Container) ApplyPolicy(p *policy.Policy) *Container {
	if p.ShareNet != nil {
		c.ShareNet(*p.ShareNet)
	}
	if p.ShareUTS != nil {
		c.ShareUTS(*p.ShareUTS)
	}
	if p.UID != nil {
		c.UID(*p.UID)
	}
	if p.GID != nil {
		c.GID(*p.GID)
	}
	if p.Hostname != nil {
		c.Hostname(*p.Hostname)
	}
	for _, m := range p.Mounts {
		switch m.Fstype {
		case "tmpfs":
			opts := ""
			if !m.RW {
				opts = "ro"
			}
			c.Tmpfs(m.Target, opts)
		default:
			c.AddMount(Mount{Kind: KindBind, Source: m.Source, Target: orSame(m.Target, m.Source), RW: m.RW, Optional: m.Optional})
		}
	}
	for _, f := range p.Files {
		c.File(f.Target, []byte(f.Contents))
	}
	for _, name := range p.Env.Names() {
		c.Setenv(name, p.Env[name])
	}
	l := p.Limits
	for _, r := range []struct {
		res int
		v   *uint64
	}{{RlimitAS, l.AS}, {RlimitCore, l.Core}, {RlimitCPU, l.CPU}, {RlimitFsize, l.Fsize},
		{RlimitNofile, l.Nofile}, {RlimitNproc, l.Nproc}, {RlimitStack, l.Stack}} {
		if r.v != nil {
			c.Rlimit(r.res, *r.v)
		}
	}
	if l.Walltime != nil {
		c.Walltime(time.Duration(*l.Walltime) * time.Second)
	}
	return c
}
