package policy

import (
	"path"
	"sort"
)

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// v05 is a hakoniwa 0.5 policy file as written.
type v05 struct {
	ShareNet *bool             `toml:"share_net"`
	ShareUTS *bool             `toml:"share_uts"`
	UID      *int64            `toml:"uid"`
	GID      *int64            `toml:"gid"`
	Hostname *string           `toml:"hostname"`
	Mounts   []v05Mount        `toml:"mounts"`
	Files    []v05File         `toml:"files"`
	Env      map[string]string `toml:"env"`
	Limits   v05Limits         `toml:"limits"`
	Seccomp  *v05Seccomp       `toml:"seccomp"`
}

type v05Mount struct {
	Source   string `toml:"source"`
	Target   string `toml:"target"`
	Fstype   string `toml:"fstype"` // "" for a bind, or "tmpfs"
	RW       bool   `toml:"rw"`
	Optional bool   `toml:"optional"` // an extension of hakoniwa for Go
}

type v05File struct {
	Target   string `toml:"target"`
	Contents string `toml:"contents"`
}

// v05Limits is the [limits] table, in the order of LimitTypes.
type v05Limits struct {
	AS         *float64 `toml:"as"`
	Core       *float64 `toml:"core"`
	CPU        *float64 `toml:"cpu"`
	Fsize      *float64 `toml:"fsize"`
	Nofile     *float64 `toml:"nofile"`
	Nproc      *float64 `toml:"nproc"`
	Stack      *float64 `toml:"stack"`
	Walltime   *float64 `toml:"walltime"`
	Memory     *float64 `toml:"memory"`
	MemorySwap *float64 `toml:"memory_swap"`
	Pids       *float64 `toml:"pids"`
	CPUs       *float64 `toml:"cpus"`
}

func (l *v05Limits) values() []*float64 {
	return []*float64{l.AS, l.Core, l.CPU, l.Fsize, l.Nofile, l.Nproc, l.Stack, l.Walltime,
		l.Memory, l.MemorySwap, l.Pids, l.CPUs}
}

type v05Seccomp struct {
	Syscalls       []string `toml:"syscalls"`
	DismatchAction string   `toml:"dismatch_action"`
}

// check finds every problem of a 0.5 policy.
func (v *v05) check(d *doc) ErrorList {
	var errs ErrorList
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	for _, id := range []struct {
		key string
		v   *int64
	}{{"uid", v.UID}, {"gid", v.GID}} {
		if id.v != nil && (*id.v < 0 || *id.v > maxID) {
			add(d.errAt(id.key, "%d: want an id from 0 to %d", *id.v, maxID))
		}
	}
	if v.Hostname != nil {
		add(checkHostname(d, "hostname", *v.Hostname))
	}
	if v.ShareUTS != nil && *v.ShareUTS && v.Hostname != nil {
		add(d.errAt("hostname", "the hostname cannot be set with share_uts = true"))
	}
	for i, m := range v.Mounts {
		key := index("mounts", i)
		switch m.Fstype {
		case "":
			if m.Source == "" {
				add(d.errAt(key, "a bind needs a source"))
			} else {
				add(checkAbs(d, key+".source", m.Source))
			}
		case "tmpfs":
			if m.Source != "" {
				add(d.errAt(key+".source", "a tmpfs has no source"))
			}
			if m.Optional {
				add(d.errAt(key+".optional", "only a bind can be optional"))
			}
		default:
			add(d.errAt(key+".fstype", "unknown fstype %q (want \"\" for a bind, or \"tmpfs\")", m.Fstype))
		}
		if m.Target == "" && m.Fstype == "tmpfs" {
			add(d.errAt(key, "a tmpfs needs a target"))
		} else if m.Target != "" {
			add(checkAbs(d, key+".target", m.Target))
		}
		if t := orDefault(m.Target, m.Source); t != "" && path.Clean(t) == "/" {
			add(d.errAt(key, "cannot replace the root; bind or mount below it"))
		}
	}
	for i, f := range v.Files {
		add(checkEntry(d, index("files", i)+".target", f.Target))
	}
	names := make([]string, 0, len(v.Env))
	for name := range v.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		add(checkEnv(d, "env."+keyPart(name), name, v.Env[name]))
	}
	for i, l := range v.Limits.values() {
		if l != nil {
			add(checkLimit(d, "limits."+LimitTypes[i], LimitTypes[i], *l))
		}
	}
	if m, s := v.Limits.Memory, v.Limits.MemorySwap; m != nil && s != nil {
		add(checkSwap(d, "limits.memory_swap", *s, *m))
	}
	if s := v.Seccomp; s != nil {
		add(checkSeccompList(d, s.Syscalls, s.DismatchAction))
	}
	return errs
}

// convert returns the policy in the 1.x schema.
func (v *v05) convert() *Policy {
	p := &Policy{Hostname: v.Hostname}
	for _, ns := range []struct {
		name  string
		share *bool
	}{{"network", v.ShareNet}, {"uts", v.ShareUTS}} {
		if ns.share != nil {
			p.Namespaces = append(p.Namespaces, Namespace{Type: ns.name, Share: *ns.share})
		}
	}
	if v.UID != nil {
		p.UIDMaps = []IDMap{{ContainerID: uint32(*v.UID)}}
	}
	if v.GID != nil {
		p.GIDMaps = []IDMap{{ContainerID: uint32(*v.GID)}}
	}
	for _, m := range v.Mounts {
		n := Mount{Source: m.Source, Destination: m.Target, Type: m.Fstype, RW: m.RW, Optional: m.Optional}
		if m.Fstype == "tmpfs" {
			n.RW = false
			if !m.RW {
				n.Options = "ro"
			}
		}
		if n.Destination == n.Source {
			n.Destination = ""
		}
		p.Mounts = append(p.Mounts, n)
	}
	if len(v.Files) > 0 {
		p.Filesystem = &Filesystem{}
		for _, f := range v.Files {
			p.Filesystem.Files = append(p.Filesystem.Files, File{Destination: f.Target, Contents: f.Contents})
		}
	}
	names := make([]string, 0, len(v.Env))
	for name := range v.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := v.Env[name]
		p.Envs = append(p.Envs, Env{Name: name, Value: &value})
	}
	for i, l := range v.Limits.values() {
		if l != nil {
			p.Limits = append(p.Limits, Limit{Type: LimitTypes[i], Value: *l})
		}
	}
	if s := v.Seccomp; s != nil {
		p.Seccomp = &Seccomp{Syscalls: s.Syscalls, DismatchAction: s.DismatchAction}
	}
	return p
}
