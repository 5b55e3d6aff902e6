// Package policy loads sandbox policies: hakoniwa 1.x config files and the
// hakoniwa 0.5 policy files of the seed, through one loader.
//
// A file is first rendered as a text/template, then decoded as TOML. Its
// format is told by its keys (see Format); a file that mixes the two is an
// error that says which key belongs to which format. Both decode into the
// one Policy type, which follows the 1.x schema:
//
//	"@include" = ["base.toml"]
//	namespaces = [{ type = "network", share = true }]
//	mounts = [
//	  { source = "/usr" },
//	  { source = {{ os_homedir "/src" }}, destination = "/src", rw = true },
//	  { type = "tmpfs", destination = "/tmp", options = "size=64M" },
//	]
//	envs = [{ name = "LANG" }, { name = "HOME", value = "/tmp" }]
//	limits = [{ type = "cpu", value = 2 }, { type = "walltime", value = 5 }]
//	[command]
//	cmdline = ["/usr/bin/python3"]
//	cwd = "/src"
//
// "@include" names other files, relative to the including file. Includes
// nest; a cycle is an error that shows the chain; a file included by
// several is merged once. Lists concatenate (those in filesystem and
// landlock too), the included files' entries first; any other value or
// table that the including file sets wins over its includes'.
//
// The template's actions print TOML values: a string is written quoted, so
// `key = {{ os_env "X" }}` is safe whatever X holds, and an action inside a
// quoted string is refused. See the README for the functions.
//
// Every error names the file, the line and column of the file as written,
// and the key: "profile.toml:12:5: mounts[2].type: unknown type ...".
package policy

import (
	"embed"
)

//go:embed KISS-policy.toml
var kissFS embed.FS

// DefaultName is the name of the embedded default policy.
const DefaultName = "KISS-policy.toml"

// Format is the format of a policy file.
type Format int

const (
	// Format1 is hakoniwa 1.x's config format (`--config`).
	Format1 Format = iota + 1
	// Format05 is hakoniwa 0.5's policy format (`--policy-file`), the seed's.
	Format05
)

func (f Format) String() string {
	switch f {
	case Format1:
		return "1.x"
	case Format05:
		return "0.5"
	}
	return "unknown"
}

// Policy is a loaded policy, in the 1.x schema. Nil pointers and empty
// lists are things the policy does not set.
type Policy struct {
	// Files are the files it was loaded from: the main file, then every
	// included file in the order they were read.
	Files []string `toml:"-" json:"-"`
	// Format is the format of the main file.
	Format Format `toml:"-" json:"-"`

	Namespaces []Namespace `toml:"namespaces,omitempty" json:"namespaces,omitempty"`
	Mounts     []Mount     `toml:"mounts,omitempty" json:"mounts,omitempty"`
	Filesystem *Filesystem `toml:"filesystem,omitempty" json:"filesystem,omitempty"`
	Envs       []Env       `toml:"envs,omitempty" json:"envs,omitempty"`
	Network    *Network    `toml:"network,omitempty" json:"network,omitempty"`
	Landlock   *Landlock   `toml:"landlock,omitempty" json:"landlock,omitempty"`
	Rootfs     *string     `toml:"rootfs,omitempty" json:"rootfs,omitempty"`
	Rootdir    *Rootdir    `toml:"rootdir,omitempty" json:"rootdir,omitempty"`
	UIDMaps    []IDMap     `toml:"uidmaps,omitempty" json:"uidmaps,omitempty"`
	GIDMaps    []IDMap     `toml:"gidmaps,omitempty" json:"gidmaps,omitempty"`
	Hostname   *string     `toml:"hostname,omitempty" json:"hostname,omitempty"`
	Limits     []Limit     `toml:"limits,omitempty" json:"limits,omitempty"`
	Seccomp    *Seccomp    `toml:"seccomp,omitempty" json:"seccomp,omitempty"`
	Command    *Command    `toml:"command,omitempty" json:"command,omitempty"`
}

// Namespace shares (Share) or unshares one namespace. Type is cgroup, ipc,
// network or uts. The user, mount and pid namespaces are always new, and
// the others are new unless shared.
type Namespace struct {
	Type  string `toml:"type" json:"type"`
	Share bool   `toml:"share" json:"share"`
}

// Mount is one entry of mounts. Type "" is a bind of Source (read-only
// unless RW) at Destination (Source when empty); "tmpfs", "devfs" and
// "proc" mount a new file system of that kind at Destination.
type Mount struct {
	Source      string `toml:"source,omitempty" json:"source,omitempty"`
	Destination string `toml:"destination,omitempty" json:"destination,omitempty"`
	Type        string `toml:"type,omitempty" json:"type,omitempty"`
	RW          bool   `toml:"rw,omitempty" json:"rw,omitempty"`
	// Optional skips a bind whose source is missing, with a log line.
	// (An extension of hakoniwa for Go.)
	Optional bool `toml:"optional,omitempty" json:"optional,omitempty"`
	// Options are tmpfs options, such as "size=64M,mode=1777". (An
	// extension of hakoniwa for Go.)
	Options string `toml:"options,omitempty" json:"options,omitempty"`
}

// Target returns where the mount goes inside the sandbox.
func (m Mount) Target() string {
	if m.Destination != "" {
		return m.Destination
	}
	return m.Source
}

// Filesystem is what is created inside the sandbox's root.
type Filesystem struct {
	Files    []File    `toml:"files,omitempty" json:"files,omitempty"`
	Dirs     []Dir     `toml:"dirs,omitempty" json:"dirs,omitempty"`
	Symlinks []Symlink `toml:"symlinks,omitempty" json:"symlinks,omitempty"`
}

// File is a file created with Contents.
type File struct {
	Destination string `toml:"destination" json:"destination"`
	Contents    string `toml:"contents" json:"contents"`
}

// Dir is a directory created with Mode, an octal string ("0700" when
// empty).
type Dir struct {
	Destination string `toml:"destination" json:"destination"`
	Mode        string `toml:"mode,omitempty" json:"mode,omitempty"`
}

// Symlink is a symbolic link at Link that points to Original.
type Symlink struct {
	Original string `toml:"original" json:"original"`
	Link     string `toml:"link" json:"link"`
}

// Env sets the variable Name to Value, or to the caller's value of Name
// when Value is nil (a variable the caller has not set stays unset).
type Env struct {
	Name  string  `toml:"name" json:"name"`
	Value *string `toml:"value,omitempty" json:"value,omitempty"`
}

// Network is the network mode: "none" (a new namespace, lo down),
// "loopback" (a new namespace with lo up), "host" (the host's namespace),
// or "pasta" and "slirp4netns" with Options for the helper; then, as the
// flags of the same names: the name servers of the sandbox's
// /etc/resolv.conf (DNS), ports forwarded from the host (Publish,
// [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]) and the egress allowlist
// (AllowConnect, HOST_OR_CIDR[:PORTS]).
type Network struct {
	Mode         string   `toml:"mode" json:"mode"`
	Options      []string `toml:"options,omitempty" json:"options,omitempty"`
	DNS          []string `toml:"dns,omitempty" json:"dns,omitempty"`
	Publish      []string `toml:"publish,omitempty" json:"publish,omitempty"`
	AllowConnect []string `toml:"allow_connect,omitempty" json:"allow_connect,omitempty"`
}

// Landlock restricts file system access and TCP ports with Landlock.
type Landlock struct {
	Resources []LandlockResource `toml:"resources,omitempty" json:"resources,omitempty"`
	FS        []LandlockFS       `toml:"fs,omitempty" json:"fs,omitempty"`
	Net       []LandlockNet      `toml:"net,omitempty" json:"net,omitempty"`
}

// LandlockResource restricts (or, with Unrestrict, lifts the restriction
// of) "fs", "tcp.bind" or "tcp.connect".
type LandlockResource struct {
	Type       string `toml:"type" json:"type"`
	Unrestrict bool   `toml:"unrestrict,omitempty" json:"unrestrict,omitempty"`
}

// LandlockFS allows Access ("r", "w", "x" or "-" each, such as "r-x") under
// Path.
type LandlockFS struct {
	Path   string `toml:"path" json:"path"`
	Access string `toml:"access" json:"access"`
}

// LandlockNet allows Access ("tcp.bind" or "tcp.connect") on Port.
type LandlockNet struct {
	Port   uint16 `toml:"port" json:"port"`
	Access string `toml:"access" json:"access"`
}

// Rootfs (the key) is the root's base of read-only binds: "/" for the
// host's bin, etc, lib, lib32, lib64, sbin and usr; a directory for each of
// its top-level directories but proc, dev and sys; or "none".

// Rootdir uses a host directory as the root instead of a new tmpfs.
type Rootdir struct {
	Path string `toml:"path" json:"path"`
	RW   bool   `toml:"rw,omitempty" json:"rw,omitempty"`
	// Overlay makes the root a writable view of Path, its writes on a
	// tmpfs.
	Overlay bool `toml:"overlay,omitempty" json:"overlay,omitempty"`
}

// IDMap maps Count ids from ContainerID inside to HostID outside. A nil
// HostID is the caller's id, a nil Count is 1.
type IDMap struct {
	ContainerID uint32  `toml:"container_id" json:"container_id"`
	HostID      *uint32 `toml:"host_id,omitempty" json:"host_id,omitempty"`
	Count       *uint32 `toml:"count,omitempty" json:"count,omitempty"`
}

// Limit is one resource limit. Type is one of LimitTypes; sizes are in
// bytes, cpu and walltime in seconds. Every value is a whole number but
// that of cpus, such as 0.5. Values are held as float64, exact up to 2^53
// (8 PiB); larger ones are rounded to 53 bits, and 9223372036854775807,
// TOML's largest integer, means unlimited.
//
// as, core, cpu, fsize, nofile, nproc and stack are rlimits; walltime is
// the wall time; memory, memory_swap, pids and cpus are limits of the
// run's cgroup (--memory, --memory-swap, --pids, --cpus).
type Limit struct {
	Type  string  `toml:"type" json:"type"`
	Value float64 `toml:"value" json:"value"`
}

// LimitTypes are the types of limits, in the order a 0.5 [limits] table
// lists them.
var LimitTypes = []string{"as", "core", "cpu", "fsize", "nofile", "nproc", "stack", "walltime",
	"memory", "memory_swap", "pids", "cpus"}

// Seccomp selects a seccomp profile: Path is a built-in profile's name
// (default, docker, podman, audit, unconfined) or a Docker/OCI JSON
// profile's path, relative to the policy file; or, as the seed's
// [seccomp] section, Syscalls with DismatchAction "kill_process" (an
// allowlist), "allow" (a denylist) or "log".
type Seccomp struct {
	Path           string   `toml:"path,omitempty" json:"path,omitempty"`
	Syscalls       []string `toml:"syscalls,omitempty" json:"syscalls,omitempty"`
	DismatchAction string   `toml:"dismatch_action,omitempty" json:"dismatch_action,omitempty"`
}

// Command is the command to run when none is given on the command line.
type Command struct {
	Cmdline []string `toml:"cmdline" json:"cmdline"`
	Cwd     string   `toml:"cwd,omitempty" json:"cwd,omitempty"`
}

// Default returns the embedded KISS policy, rendered for this caller.
func Default() (*Policy, error) {
	return LoadFS(kissFS, DefaultName)
}

// DefaultText returns the source of the embedded KISS policy.
func DefaultText() []byte {
	text, err := kissFS.ReadFile(DefaultName)
	if err != nil {
		panic("policy: the embedded default policy is missing: " + err.Error())
	}
	return text
}
