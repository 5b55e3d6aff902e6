// Command hakoniwa runs a command in a Linux sandbox.
//
//	hakoniwa run [flags] [-- COMMAND [ARGS...]]
//
// See the README for the flags, the policy format and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/internal/usernet"
	"github.com/hakoniwa-go/hakoniwa/policy"
	"github.com/hakoniwa-go/hakoniwa/profiles"
	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// exitCode carries the exit code of a run that already reported itself.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

func main() {
	// The CLI mostly waits for the sandbox. With one P the runtime does not
	// spin idle threads on the cpus that the sandbox's setup needs: this
	// measured a quarter less cpu per run, and a little less wall time.
	runtime.GOMAXPROCS(1)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	reached := false
	root.PersistentPreRun = func(*cobra.Command, []string) { reached = true }
	cmd, err := root.ExecuteC()
	if err != nil && !reached {
		// Cobra failed before any command ran: an unknown command or a
		// bad flag.
		err = usageError{err}
	}
	var code exitCode
	var uerr usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "hakoniwa: %v\n", uerr.err)
		path := "hakoniwa"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return 2
	default:
		printError(stderr, err)
		return 125
	}
}

// printError prints an error, one "hakoniwa: " line for each of its lines
// (a policy's errors are one a line).
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "hakoniwa: %s\n", line)
	}
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "hakoniwa",
		Short:         "Run commands in Linux sandboxes built from namespaces, mounts and resource limits",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCmd(stdin, stdout, stderr), newPolicyCmd(stdout), newDoctorCmd(stdout), newManCmd(root, stdout))
	root.CompletionOptions.HiddenDefaultCmd = false
	// Made now rather than when the command runs, so that `hakoniwa man`
	// documents it.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = cobra.NoArgs
			c.RunE = func(*cobra.Command, []string) error {
				return usageError{errors.New("completion: want a shell: bash, zsh, fish or powershell")}
			}
		}
	}
	return root
}

// runOptions are the flags of `hakoniwa run`.
type runOptions struct {
	policyFile, config, profile string
	mounts                      mountFlags

	shareNet, shareUTS, shareIPC, shareCgroup      bool
	unshareAll, unshareNet, unshareUTS, unshareIPC bool
	unshareCgroup                                  bool
	network                                        string
	publish, dns, allowConnect                     []string
	hostname                                       string
	hostnameSet, uidSet, gidSet, cgroupParentSet   bool
	uidmaps, gidmaps                               []string
	userns, user                                   string
	uid, gid                                       string
	env                                            []string
	workdir, chdir                                 string
	limits                                         map[string]*string
	walltime                                       string
	memory, memorySwap, pids, cpus                 string
	cpuWeight, ioWeight, cgroupParent              string
	cgroupManager                                  string
	cgroupVersion                                  int
	useCgroup                                      bool
	rootfsRW, allowNewPrivs, dryRun                bool
	rootfs, rootdir                                string
	seccomp, seccompLearn                          string
	llRestrict, llTCPBind, llTCPConnect, llScope   []string
	llFS                                           map[string]*[]string
	llStrict                                       bool
	capDrop, capAdd                                []string
	learner                                        *seccomp.Learner
	keepFds                                        []int
	killGrace                                      time.Duration
	reportFile                                     string
	reportFd                                       int
	verbose                                        int
}

var limitFlags = []struct {
	name string
	res  int
	size bool
	help string
}{
	{"as", hakoniwa.RlimitAS, true, "address space size (RLIMIT_AS), such as 512M"},
	{"core", hakoniwa.RlimitCore, true, "core file size (RLIMIT_CORE)"},
	{"cpu", hakoniwa.RlimitCPU, false, "cpu time in seconds (RLIMIT_CPU)"},
	{"fsize", hakoniwa.RlimitFsize, true, "file size (RLIMIT_FSIZE)"},
	{"nofile", hakoniwa.RlimitNofile, false, "number of open files (RLIMIT_NOFILE)"},
	{"nproc", hakoniwa.RlimitNproc, false, "number of processes of the user (RLIMIT_NPROC)"},
	{"stack", hakoniwa.RlimitStack, true, "stack size (RLIMIT_STACK)"},
}

func newRunCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := &runOptions{limits: map[string]*string{}, llFS: map[string]*[]string{}}
	cmd := &cobra.Command{
		Use:   "run [flags] [-- COMMAND [ARGS...]]",
		Short: "Run COMMAND in a sandbox (default $SHELL, else /bin/sh)",
		Long: `Run COMMAND in a new sandbox: new user, mount, pid, ipc, net, uts and cgroup
namespaces, and a root on an empty tmpfs that the host never sees. The
embedded KISS policy binds /bin, /lib, /lib64 and /usr read-only and four
device files; --config FILE (a 1.x config or a 0.5 policy) or --profile NAME
(see 'hakoniwa policy list') replaces it, and flags apply on top. Without
COMMAND, the policy's command.cmdline runs, else $SHELL, else /bin/sh.

A COMMAND without a slash is looked up inside the sandbox, in the PATH that
the policy or -e sets; with no PATH there, in the caller's PATH.

Exit status: the command's own code, 128+N when it was killed by signal N,
125 when the sandbox failed, 126 when the command could not be executed,
127 when it was not found, and 2 for usage errors.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			f := c.Flags()
			o.hostnameSet = f.Changed("hostname")
			o.cgroupParentSet = f.Changed("cgroup-parent")
			if f.Changed("network") && o.network == "" {
				return usageError{errors.New("--network: want none, loopback, host, pasta[:OPTIONS] or slirp4netns[:OPTIONS]")}
			}
			o.uidSet = f.Changed("uid")
			o.gidSet = f.Changed("gid")
			return o.run(c, args, stdin, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.SetInterspersed(false)
	f.StringVarP(&o.config, "config", "c", "", "load the sandbox policy from `FILE` (1.x or 0.5 format) instead of the embedded KISS policy")
	f.StringVar(&o.policyFile, "policy-file", "", "alias of --config `FILE` (the seed's name)")
	f.StringVar(&o.profile, "profile", "", "load the built-in profile `NAME` (see 'hakoniwa policy list')")
	cmd.MarkFlagFilename("config", "toml")
	cmd.MarkFlagFilename("policy-file", "toml")
	cmd.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(profiles.Names(), cobra.ShellCompDirectiveNoFileComp))

	mount := func(name, short, usage string, parse func(string) (hakoniwa.Mount, error)) {
		v := &mountValue{all: &o.mounts, parse: parse}
		f.VarP(v, name, short, usage)
	}
	mount("ro-bind", "", "bind `SRC[:DST]` read-only (repeatable)", bindParser(false, false))
	mount("bindmount-ro", "b", "alias of --ro-bind `SRC[:DST]`", bindParser(false, false))
	mount("rw-bind", "", "bind `SRC[:DST]` read-write", bindParser(true, false))
	mount("bindmount-rw", "B", "alias of --rw-bind `SRC[:DST]`", bindParser(true, false))
	mount("ro-bind-try", "", "like --ro-bind, but skip a missing `SRC[:DST]`", bindParser(false, true))
	mount("rw-bind-try", "", "like --rw-bind, but skip a missing `SRC[:DST]`", bindParser(true, true))
	mount("tmpfs", "", "mount a tmpfs at `DST[:OPTS]`, OPTS such as size=64M,mode=1777", parseTmpfs)
	mount("proc", "", "mount a new proc at `DST` (/proc is always mounted)", parseProc)
	mount("devfs", "", "mount a minimal /dev at `DST`", parseDevfs)
	mount("overlay", "", "mount at DST a writable view of the host directory LOWER, its writes in UPPER (WORK: an empty directory beside it): `LOWER:UPPER:WORK:DST`; LOWER is never changed", parseOverlay(false))
	mount("tmp-overlay", "", "mount at DST a writable view of the host directory LOWER whose writes go to a tmpfs and vanish: `LOWER:DST`", parseOverlay(true))
	mount("dir", "", "create the directory `DST[:MODE]` (mode 0700 by default)", parseDir)
	mount("symlink", "", "create the symlink `TARGET:LINK`", parseSymlink)
	mount("file", "", "create the file `DST:CONTENTS`", parseFile)

	f.BoolVar(&o.shareNet, "share-net", false, "keep the host's network namespace")
	f.StringVar(&o.network, "network", "", "`MODE`: none (the default: a new namespace, lo down), loopback (lo up), host (same as --share-net), pasta[:OPTIONS] or slirp4netns[:OPTIONS] (user-mode networking by that helper, with its comma-separated OPTIONS; no port forwarding and no host loopback unless asked)")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "forward the host's port to the sandbox's, with --network pasta or slirp4netns (IPv4 only): `[HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]` (repeatable)")
	f.StringArrayVar(&o.dns, "dns", nil, "list the name server `IP` in the sandbox's /etc/resolv.conf (repeatable; none: write no resolv.conf and, with --allow-connect, allow no name server); with --network pasta or slirp4netns it lists the helper's DNS forwarder unless this is given")
	f.StringArrayVar(&o.allowConnect, "allow-connect", nil, "with --network pasta or slirp4netns, let the sandbox connect only to `HOST_OR_CIDR[:PORTS]` (repeatable; an address, CIDR prefix or host name, then TCP and UDP ports such as 80,443 or 8000-8100; an IPv6 one in brackets); anything else is refused")
	cmd.RegisterFlagCompletionFunc("network", cobra.FixedCompletions([]string{"none", "loopback", "host", "pasta", "slirp4netns"}, cobra.ShellCompDirectiveNoFileComp))
	f.BoolVar(&o.shareUTS, "share-uts", false, "keep the host's uts namespace")
	f.BoolVar(&o.shareIPC, "share-ipc", false, "keep the host's ipc namespace")
	f.BoolVar(&o.shareCgroup, "share-cgroup", false, "keep the host's cgroup namespace")
	f.BoolVar(&o.unshareAll, "unshare-all", false, "new ipc, net, uts and cgroup namespaces (the default; hakoniwa 1.x)")
	f.BoolVar(&o.unshareNet, "unshare-network", false, "a new network namespace (the default)")
	f.BoolVar(&o.unshareUTS, "unshare-uts", false, "a new uts namespace (the default)")
	f.BoolVar(&o.unshareIPC, "unshare-ipc", false, "a new ipc namespace (the default)")
	f.BoolVar(&o.unshareCgroup, "unshare-cgroup", false, "a new cgroup namespace (the default)")
	f.StringVar(&o.hostname, "hostname", "", "the hostname inside (default hakoniwa)")

	f.StringArrayVarP(&o.uidmaps, "uidmap", "u", nil, "map uids `C[:H[:N]]`: N ids (1) from C inside to H on the host (the caller's uid); repeatable. Ranges other than the caller's own uid are written with newuidmap (Debian's uidmap) and /etc/subuid, or directly as root")
	f.StringArrayVarP(&o.gidmaps, "gidmap", "g", nil, "map gids `C[:H[:N]]`, as --uidmap, with newgidmap and /etc/subgid")
	f.StringVar(&o.uid, "uid", "", "the uid `N` inside, mapped to the caller's uid (--uidmap N)")
	f.StringVar(&o.gid, "gid", "", "the gid `N` inside, mapped to the caller's gid (--gidmap N)")
	f.StringVar(&o.userns, "userns", "", "`auto`: map 0 to the caller and 1 up to the caller's ranges of /etc/subuid and /etc/subgid")
	f.StringVar(&o.user, "user", "", "run the command as `USER[:GROUP[:SUPP,...]]` of the sandbox's own /etc/passwd and /etc/group (names or numbers); without GROUP, the user's group and every group that lists the user")

	f.StringArrayVarP(&o.env, "setenv", "e", nil, "set `NAME=VALUE`, or copy NAME from the host")
	cmd.RegisterFlagCompletionFunc("setenv", completeEnv)
	f.StringVarP(&o.workdir, "workdir", "w", "", "bind `HOST` read-write at the same path and use it as the cwd; :PATH only sets the cwd")
	f.StringVar(&o.workdir, "work-dir", "", "alias of --workdir `HOST`")
	f.StringVar(&o.chdir, "chdir", "", "the cwd `PATH` inside")

	for _, l := range limitFlags {
		o.limits[l.name] = f.String("limit-"+l.name, "", l.help)
	}
	f.StringVar(&o.walltime, "limit-walltime", "", "kill the sandbox after `SECONDS` of wall time (fractions allowed, 0 = none)")
	f.StringVar(&o.memory, "memory", "", "limit the sandbox's memory, page cache included, to `SIZE` (a cgroup's memory.max), such as 256M; hitting it is MLE")
	f.StringVar(&o.memorySwap, "memory-swap", "", "limit memory and swap together to `SIZE` (default: --memory, so no swap; unlimited for any)")
	f.StringVar(&o.pids, "pids", "", "limit the sandbox to `N` processes and threads (pids.max)")
	f.StringVar(&o.cpus, "cpus", "", "limit the sandbox to `N` cpus' worth of time, such as 0.5 (cpu.max)")
	f.StringVar(&o.cpuWeight, "cpu-weight", "", "the sandbox's cpu weight under contention, `N` from 1 to 10000 (default 100)")
	f.StringVar(&o.ioWeight, "io-weight", "", "the sandbox's io weight, `N` from 1 to 10000, where the io (blkio) controller has one")
	f.StringVar(&o.cgroupParent, "cgroup-parent", os.Getenv("HAKONIWA_CGROUP_PARENT"), "make the run's cgroup in `CGROUP`: /path from the top of the hierarchy, a path relative to your own cgroup, or a /sys/fs/cgroup/... directory (default $HAKONIWA_CGROUP_PARENT, else /hakoniwa as root and a delegated subtree otherwise)")
	f.StringVar(&o.cgroupManager, "cgroup-manager", "auto", "who makes the run's cgroup: `MANAGER` cgroupfs (hakoniwa, as root or in a delegated cgroup), systemd (a transient scope over D-Bus, cgroup v2), or auto: cgroupfs, then systemd where no cgroup is delegated")
	cmd.RegisterFlagCompletionFunc("cgroup-manager", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"auto", "cgroupfs", "systemd"}, cobra.ShellCompDirectiveNoFileComp
	})
	f.IntVar(&o.cgroupVersion, "cgroup-version", 0, "use cgroup version `V`, 1 or 2 (default: 2 when its hierarchy has the controllers, else 1)")
	f.BoolVar(&o.useCgroup, "cgroup", false, "run in a cgroup of its own even without a cgroup limit: the report gets memory_peak, pids_peak and cpu_usage, and --limit-cpu counts every process")

	f.BoolVar(&o.rootfsRW, "rootfs-rw", false, "leave the root tmpfs writable")
	f.StringVar(&o.rootdir, "rootdir", "", "use the host directory `DIR[:rw|:overlay]` as the root instead of a tmpfs, and of the policy's mounts: read-only unless :rw, every mount point must exist in it, and nothing is created in it; :overlay gives a writable view whose writes go to a tmpfs and vanish")
	f.StringVar(&o.rootfs, "rootfs", "", "build the root on `ROOTFS` instead of the policy's mounts: / (the host's bin, etc, lib, lib32, lib64, sbin and usr, read-only; top-level symlinks kept), a directory (each of its top-level directories but proc, dev and sys, read-only), or none")
	f.BoolVar(&o.allowNewPrivs, "allow-new-privs", false, "do not set no_new_privs")
	f.StringSliceVar(&o.capDrop, "cap-drop", nil, "drop the capabilities `CAPS` (ALL, or CAP_X,...) from the command, and from the bounding set")
	f.StringSliceVar(&o.capAdd, "cap-add", nil, "give the command the capabilities `CAPS` (CAP_X,...), over its own namespaces; a uid other than 0 keeps them as ambient ones")
	f.StringVar(&o.seccomp, "seccomp", "", "filter syscalls with `PROFILE`: default (the default unless the policy names one), docker (podman), audit, unconfined, or a Docker/OCI JSON file")
	f.StringSliceVar(&o.llRestrict, "landlock-restrict", nil, "restrict `RESOURCES` with Landlock: fs, tcp.bind, tcp.connect (a rule of a resource restricts it too)")
	for _, a := range []string{"ro", "rw", "rx", "rwx"} {
		o.llFS[a] = f.StringArray("landlock-fs-"+a, nil, "allow "+a+" access under `PATHS` inside the sandbox (':' or ',' separated; repeatable)")
	}
	f.StringSliceVar(&o.llTCPBind, "landlock-tcp-bind", nil, "allow binding the TCP `PORTS` (such as 80,8000-8100)")
	f.StringSliceVar(&o.llTCPConnect, "landlock-tcp-connect", nil, "allow connecting to the TCP `PORTS`")
	f.StringSliceVar(&o.llScope, "landlock-scope", nil, "stop the command reaching outside its Landlock domain: `SCOPES` signal, abstract-unix")
	f.BoolVar(&o.llStrict, "landlock-strict", false, "fail when the kernel's Landlock cannot enforce a right asked for (the default leaves it out and logs it)")
	f.StringVar(&o.seccompLearn, "seccomp-learn", "", "record the syscalls COMMAND makes and write the allowlist that runs it to `FILE` (Docker/OCI JSON, or the seed's [seccomp] section if FILE ends in .toml)")
	cmd.MarkFlagFilename("seccomp-learn", "json", "toml")
	cmd.RegisterFlagCompletionFunc("seccomp", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return append([]string(nil), seccomp.Builtin...), cobra.ShellCompDirectiveDefault
	})
	f.IntSliceVar(&o.keepFds, "keep-fd", nil, "keep fd `N` open in the sandbox (repeatable)")
	f.DurationVar(&o.killGrace, "kill-grace", 2*time.Second, "after forwarding SIGINT, SIGTERM or SIGHUP, wait this long before SIGKILL")
	f.StringVar(&o.reportFile, "report-file", "", "write the JSON report to `FILE`")
	f.IntVar(&o.reportFd, "report-fd", -1, "write the JSON report to fd `N`")
	f.CountVarP(&o.verbose, "verbose", "v", "log the setup to stderr (-vv for more)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the steps the sandbox would run, and exit")
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName { return pflag.NormalizedName(name) })
	return cmd
}

// loadPolicy loads the policy that the flags name: --config (or
// --policy-file), --profile, or the embedded KISS policy.
func (o *runOptions) loadPolicy() (*policy.Policy, error) {
	var given []string
	for _, f := range []struct{ name, v string }{{"--config", o.config}, {"--policy-file", o.policyFile}, {"--profile", o.profile}} {
		if f.v != "" {
			given = append(given, f.name)
		}
	}
	if len(given) > 1 {
		return nil, usageError{fmt.Errorf("%s and %s are exclusive: a run has one policy", given[0], given[1])}
	}
	switch {
	case o.config != "":
		return policy.Load(o.config)
	case o.policyFile != "":
		return policy.Load(o.policyFile)
	case o.profile != "":
		return loadProfile(o.profile)
	}
	return policy.Default()
}

// loadProfile loads a built-in profile.
func loadProfile(name string) (*policy.Policy, error) {
	if !slices.Contains(profiles.Names(), name) {
		return nil, usageError{fmt.Errorf("--profile %q: no such profile (have %s)", name, strings.Join(profiles.Names(), ", "))}
	}
	return policy.LoadFS(profiles.FS, profiles.File(name))
}

// applyIDs applies --uidmap, --gidmap, --userns and --user.
func (o *runOptions) applyIDs(c *hakoniwa.Container) error {
	if o.uidSet && len(o.uidmaps) > 0 || o.gidSet && len(o.gidmaps) > 0 {
		return usageError{errors.New("--uid and --gid are the single-id forms of --uidmap and --gidmap: give one or the other")}
	}
	for _, m := range []struct {
		flag   string
		specs  []string
		caller uint32
		set    func(...hakoniwa.IDMap) *hakoniwa.Container
	}{{"--uidmap", o.uidmaps, uint32(os.Getuid()), c.UIDMaps}, {"--gidmap", o.gidmaps, uint32(os.Getgid()), c.GIDMaps}} {
		var maps []hakoniwa.IDMap
		for _, spec := range m.specs {
			im, err := parseIDMap(spec, m.caller)
			if err != nil {
				return usageError{fmt.Errorf("%s %q: %v", m.flag, spec, err)}
			}
			maps = append(maps, im)
		}
		if len(maps) > 0 {
			m.set(maps...) // the caller's own id alone is still mapped by the sandbox itself
		}
	}
	switch o.userns {
	case "":
	case "auto":
		if len(o.uidmaps) > 0 || len(o.gidmaps) > 0 || o.uidSet || o.gidSet {
			return usageError{errors.New("--userns auto conflicts with --uidmap, --gidmap, --uid and --gid")}
		}
		c.UIDMaps().GIDMaps().UserNSAuto(true) // instead of the policy's maps
	default:
		return usageError{fmt.Errorf("--userns %q: want auto", o.userns)}
	}
	if o.user != "" {
		c.User(o.user)
	}
	return nil
}

// parseIDMap parses C[:H[:N]], H the caller's id and N 1 by default.
func parseIDMap(spec string, caller uint32) (hakoniwa.IDMap, error) {
	m := hakoniwa.IDMap{Outside: caller, Count: 1}
	parts := strings.Split(spec, ":")
	if len(parts) > 3 {
		return m, errors.New("want C[:H[:N]]")
	}
	for i, dst := range []*uint32{&m.Inside, &m.Outside, &m.Count} {
		if i >= len(parts) {
			break
		}
		n, err := strconv.ParseUint(parts[i], 10, 32)
		if err != nil || n > 1<<32-2 || i == 2 && n == 0 {
			what := []string{"an id from 0 to 4294967294", "an id from 0 to 4294967294", "a count from 1"}[i]
			return m, fmt.Errorf("want %s, not %q", what, parts[i])
		}
		*dst = uint32(n)
	}
	return m, nil
}

// container builds the sandbox from the policy and the flags.
func (o *runOptions) container(pol *policy.Policy, log *slog.Logger) (*hakoniwa.Container, error) {
	if log != nil {
		log.Info(fmt.Sprintf("Configuration: %q (%s format)", pol.Files[0], pol.Format))
		for _, inc := range pol.Files[1:] {
			log.Info(fmt.Sprintf("Configuration: including %q", inc))
		}
	}
	// The CLI's own memory is small, so starting the sandbox in a copy of
	// it keeps the reported max_rss close to the command's own.
	c := hakoniwa.New().Logger(log).CopyMemory(true)
	if o.rootfs != "" || o.rootdir != "" {
		// The policy's mounts are its root: --rootfs and --rootdir
		// give another.
		p := *pol
		p.Mounts = nil
		if o.rootfs != "" {
			p.Rootfs = &o.rootfs
		}
		if o.rootdir != "" {
			dir, mode, _ := strings.Cut(o.rootdir, ":")
			if mode != "" && mode != "rw" && mode != "overlay" {
				return nil, usageError{fmt.Errorf("--rootdir %s: want DIR, DIR:rw or DIR:overlay, not :%s", o.rootdir, mode)}
			}
			p.Rootdir = &policy.Rootdir{Path: dir, RW: mode == "rw", Overlay: mode == "overlay"}
		}
		pol = &p
	}
	if err := c.ApplyPolicy(pol); err != nil {
		return nil, err
	}

	mode, opts, hasOpts := strings.Cut(o.network, ":")
	if hasOpts && mode != "pasta" && mode != "slirp4netns" {
		return nil, usageError{fmt.Errorf("--network %s: options are for pasta and slirp4netns", o.network)}
	}
	switch mode {
	case "":
	case "none", "loopback":
		if o.shareNet {
			return nil, usageError{fmt.Errorf("--network %s conflicts with --share-net", o.network)}
		}
		// The policy's ports, allowlist and name servers go with its
		// network: nothing could use them now. (With host they stay,
		// and are an error: the allowlist is never dropped silently.)
		c.ShareNet(false).Loopback(mode == "loopback").UserNetwork("").Publish().AllowConnect().DNS()
	case "host":
		if o.unshareNet || o.unshareAll {
			return nil, usageError{errors.New("--network host conflicts with --unshare-network and --unshare-all")}
		}
		o.shareNet = true
	case "pasta", "slirp4netns":
		if o.shareNet {
			return nil, usageError{fmt.Errorf("--network %s conflicts with --share-net", mode)}
		}
		var options []string
		if opts != "" || hasOpts {
			options = strings.Split(opts, ",")
		}
		if err := usernet.CheckOptions(mode, options); err != nil {
			return nil, usageError{err}
		}
		c.ShareNet(false).Loopback(false).UserNetwork(mode, options...)
	default:
		return nil, usageError{fmt.Errorf("--network %q: want none, loopback, host, pasta[:OPTIONS] or slirp4netns[:OPTIONS]", o.network)}
	}
	for _, spec := range o.publish {
		if _, err := usernet.ParsePort(spec); err != nil {
			return nil, usageError{fmt.Errorf("--publish %v", err)}
		}
		if mode != "" && mode != "pasta" && mode != "slirp4netns" {
			return nil, usageError{fmt.Errorf("--publish %s needs --network pasta or slirp4netns", spec)}
		}
		c.Publish(spec) // with the policy's network, checked when the run starts
	}
	if len(o.dns) > 0 {
		c.DNS().DNS(o.dns...) // instead of the policy's; checked when the run starts
	}
	if len(o.allowConnect) > 0 {
		c.AllowConnect(o.allowConnect...) // checked when the run starts
	}
	for _, conflict := range []struct {
		share, unshare bool
		a, b           string
	}{
		{o.shareNet, o.unshareNet, "--share-net", "--unshare-network"},
		{o.shareUTS, o.unshareUTS, "--share-uts", "--unshare-uts"},
		{o.shareIPC, o.unshareIPC, "--share-ipc", "--unshare-ipc"},
		{o.shareCgroup, o.unshareCgroup, "--share-cgroup", "--unshare-cgroup"},
	} {
		if conflict.share && (conflict.unshare || o.unshareAll) {
			b := conflict.b
			if !conflict.unshare {
				b = "--unshare-all"
			}
			return nil, usageError{fmt.Errorf("%s conflicts with %s", conflict.a, b)}
		}
	}
	// --share-* and --unshare-* override the policy.
	for _, ns := range []struct {
		share, unshare bool
		set            func(bool) *hakoniwa.Container
	}{
		{o.shareNet, o.unshareNet, c.ShareNet},
		{o.shareUTS, o.unshareUTS, c.ShareUTS},
		{o.shareIPC, o.unshareIPC, c.ShareIPC},
		{o.shareCgroup, o.unshareCgroup, c.ShareCgroup},
	} {
		switch {
		case ns.share:
			ns.set(true)
		case ns.unshare || o.unshareAll:
			ns.set(false)
		}
	}
	if o.shareNet {
		c.UserNetwork("") // the host's network, not the policy's pasta
	}
	if o.hostnameSet {
		if o.hostname == "" || len(o.hostname) > 64 {
			return nil, usageError{fmt.Errorf("--hostname %q: want 1 to 64 bytes", o.hostname)}
		}
		c.Hostname(o.hostname)
	}
	for _, id := range []struct {
		flag, v string
		changed bool
		set     func(int64) *hakoniwa.Container
	}{{"--uid", o.uid, o.uidSet, c.UID}, {"--gid", o.gid, o.gidSet, c.GID}} {
		if !id.changed {
			continue
		}
		n, err := strconv.ParseInt(id.v, 10, 64)
		if err != nil || n < 0 || n > 1<<32-2 {
			return nil, usageError{fmt.Errorf("%s %q: want an id from 0 to 4294967294", id.flag, id.v)}
		}
		id.set(n)
	}
	if err := o.applyIDs(c); err != nil {
		return nil, err
	}
	for _, m := range o.mounts.list {
		c.AddMount(m)
	}
	for _, kv := range o.env {
		name, value, ok := strings.Cut(kv, "=")
		if name == "" {
			return nil, usageError{fmt.Errorf("--setenv %q: want NAME=VALUE or NAME", kv)}
		}
		if !ok {
			// -e NAME copies the host's value; an unset one stays unset.
			var set bool
			if value, set = os.LookupEnv(name); !set {
				continue
			}
		}
		c.Setenv(name, value)
	}
	for _, l := range limitFlags {
		s := *o.limits[l.name]
		if s == "" {
			continue
		}
		parse := parseCount
		if l.size {
			parse = parseSize
		}
		v, err := parse(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--limit-%s: %v", l.name, err)}
		}
		c.Rlimit(l.res, v)
	}
	if o.walltime != "" {
		secs, err := strconv.ParseFloat(o.walltime, 64)
		if err != nil || secs < 0 || secs > 1e9 || secs != secs {
			return nil, usageError{fmt.Errorf("--limit-walltime %q: want a number of seconds, such as 1.5", o.walltime)}
		}
		c.Walltime(time.Duration(secs * float64(time.Second)))
	}
	if err := o.applyCgroup(c); err != nil {
		return nil, err
	}
	c.RootRW(o.rootfsRW).AllowNewPrivs(o.allowNewPrivs)
	if len(o.capDrop) > 0 || len(o.capAdd) > 0 {
		caps := &hakoniwa.Caps{}
		for _, l := range []struct {
			flag string
			in   []string
			out  *[]int
		}{{"--cap-drop", o.capDrop, &caps.Drop}, {"--cap-add", o.capAdd, &caps.Add}} {
			for _, name := range l.in {
				if l.flag == "--cap-drop" && strings.EqualFold(name, "ALL") {
					caps.DropAll = true
					continue
				}
				n, err := hakoniwa.ParseCap(name)
				if err != nil {
					return nil, usageError{fmt.Errorf("%s: %v", l.flag, err)}
				}
				*l.out = append(*l.out, n)
			}
		}
		c.Caps(caps)
	}
	if ll, err := o.landlock(); err != nil {
		return nil, err
	} else if ll != nil {
		c.AddLandlock(ll) // on top of the policy's rules
	}
	if o.seccompLearn != "" {
		if o.seccomp != "" {
			return nil, usageError{errors.New("--seccomp-learn and --seccomp are exclusive: learning runs under a filter that records every call")}
		}
		o.learner = seccomp.NewLearner()
		c.SeccompLearn(o.learner)
		return c, nil
	}
	// --seccomp wins over the policy's; with neither, the default profile.
	name := o.seccomp
	if name == "" && pol.Seccomp == nil {
		name = "default"
	}
	if name != "" {
		prof, unknown, err := seccomp.Load(name)
		if err != nil {
			return nil, fmt.Errorf("--seccomp: %w", err)
		}
		if len(unknown) > 0 && log != nil {
			log.Debug(fmt.Sprintf("Seccomp: not on this machine, left out: %s", strings.Join(unknown, ", ")))
		}
		c.Seccomp(prof)
	}
	return c, nil
}

func (o *runOptions) run(c *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var log *slog.Logger
	if o.verbose > 0 {
		level := slog.LevelInfo
		if o.verbose > 1 {
			level = slog.LevelDebug
		}
		log = slog.New(&lineHandler{w: stderr, level: level, mu: new(sync.Mutex)})
	}
	if o.killGrace < 0 {
		return usageError{fmt.Errorf("--kill-grace %v: must not be negative", o.killGrace)}
	}
	// --keep-fd passes fds that the caller gave us. Every fd that the Go
	// runtime or this program opened is close-on-exec, and an inherited
	// one cannot be, so that flag tells them apart. A closed fd is refused
	// here too: by the time the sandbox starts, the runtime may have
	// opened one of its own under that number.
	for _, fd := range o.keepFds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if fd < 3 || err != nil || flags&unix.FD_CLOEXEC != 0 {
			return o.setupFailed(fmt.Errorf("--keep-fd %d: not a file descriptor inherited by hakoniwa", fd), nil, nil, log, stderr)
		}
	}
	// Open the report destination first: a bad one must fail before the run.
	report, err := o.openReport()
	if err != nil {
		return err
	}

	pol, err := o.loadPolicy()
	var ctr *hakoniwa.Container
	if err == nil {
		ctr, err = o.container(pol, log)
	}
	if err != nil {
		var uerr usageError
		if errors.As(err, &uerr) {
			return err
		}
		return o.setupFailed(err, nil, report, log, stderr)
	}
	var dir string
	if pc := pol.Command; pc != nil {
		dir = pc.Cwd
		if len(args) == 0 {
			args = pc.Cmdline
		}
	}
	if len(args) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		args = []string{sh}
	}
	switch {
	case strings.HasPrefix(o.workdir, ":"):
		dir = o.workdir[1:]
	case o.workdir != "":
		if !strings.HasPrefix(o.workdir, "/") {
			return usageError{fmt.Errorf("--workdir %q: the host directory must be an absolute path", o.workdir)}
		}
		ctr.BindRW(o.workdir, o.workdir)
		dir = o.workdir
	}
	if o.chdir != "" {
		dir = o.chdir
	}
	cmd := ctr.Command(args[0], args[1:]...)
	cmd.Stdin = stdin
	if f, ok := stdin.(*os.File); ok {
		cmd.Stdin = f // keep it a file, so the command gets the terminal itself
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.KeepFds = o.keepFds
	cmd.Dir = dir

	if o.dryRun {
		plan, err := cmd.Plan()
		if err != nil {
			return o.setupFailed(err, nil, report, log, stderr)
		}
		fmt.Fprint(stdout, plan)
		return nil
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		return o.setupFailed(err, cmd.Result, report, log, stderr)
	}
	if log == nil {
		// With -v the log has said it already.
		for _, w := range cmd.Result.Warnings {
			fmt.Fprintf(stderr, "hakoniwa: warning: %s\n", w)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		forwarded := false
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if log != nil {
					log.Info(fmt.Sprintf("Forwarding %v to the sandbox", sig))
				}
				if forwarded {
					cmd.Terminate(sig, 0)
				} else {
					cmd.Terminate(sig, o.killGrace)
				}
				forwarded = true
			}
		}
	}()
	cmd.Wait()
	cancel()
	r := cmd.Result
	o.finish(r, report, log, stderr)
	if o.learner != nil {
		if err := o.writeLearned(); err != nil {
			printError(stderr, err)
			if r.Status == hakoniwa.StatusOK {
				return exitCode(125)
			}
		} else if log != nil {
			log.Info(fmt.Sprintf("Seccomp: learned %s, written to %s", o.learner.Profile().Summary(), o.seccompLearn))
		}
	}
	if r.Status != hakoniwa.StatusOK {
		fmt.Fprintf(stderr, "hakoniwa: %s\n", r.Reason)
	}
	return exitCode(r.Code())
}

// landlock builds the Landlock rules of the --landlock-* flags, or nil.
func (o *runOptions) landlock() (*hakoniwa.Landlock, error) {
	ll := &hakoniwa.Landlock{Restrict: o.llRestrict, Strict: o.llStrict, Scope: o.llScope}
	for _, sc := range o.llScope {
		if sc != "signal" && sc != "abstract-unix" {
			return nil, usageError{fmt.Errorf("--landlock-scope %q: want signal or abstract-unix", sc)}
		}
	}
	for _, a := range []string{"ro", "rw", "rx", "rwx"} {
		access := map[string]string{"ro": "r--", "rw": "rw-", "rx": "r-x", "rwx": "rwx"}[a]
		for _, v := range *o.llFS[a] {
			paths := strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == ',' })
			if len(paths) == 0 {
				return nil, usageError{fmt.Errorf("--landlock-fs-%s %q: no path", a, v)}
			}
			for _, p := range paths {
				if !strings.HasPrefix(p, "/") {
					return nil, usageError{fmt.Errorf("--landlock-fs-%s %q: want absolute paths inside the sandbox", a, p)}
				}
				ll.FS = append(ll.FS, hakoniwa.LandlockPath{Path: p, Access: access})
			}
		}
	}
	for _, ports := range []struct {
		flag string
		in   []string
		out  *[]uint16
	}{{"--landlock-tcp-bind", o.llTCPBind, &ll.TCPBind}, {"--landlock-tcp-connect", o.llTCPConnect, &ll.TCPConnect}} {
		for _, p := range ports.in {
			lo, hi, isRange := strings.Cut(p, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.ParseUint(lo, 10, 16)
			b, err2 := strconv.ParseUint(hi, 10, 16)
			if err1 != nil || err2 != nil || a == 0 || b < a {
				return nil, usageError{fmt.Errorf("%s %q: want ports from 1 to 65535, or a range such as 8000-8100", ports.flag, p)}
			}
			for n := a; n <= b; n++ {
				*ports.out = append(*ports.out, uint16(n))
			}
		}
	}
	for _, r := range ll.Restrict {
		if r != "fs" && r != "tcp.bind" && r != "tcp.connect" {
			return nil, usageError{fmt.Errorf("--landlock-restrict %q: want fs, tcp.bind or tcp.connect", r)}
		}
	}
	if len(ll.Restrict) == 0 && len(ll.FS) == 0 && len(ll.TCPBind) == 0 && len(ll.TCPConnect) == 0 && len(ll.Scope) == 0 {
		return nil, nil
	}
	return ll, nil
}

// writeLearned writes what --seccomp-learn learned: a JSON profile, or
// the seed's [seccomp] section for a .toml file (an allowlist of names:
// that format has no argument checks). The file is written whole, by
// renaming a new one over it.
func (o *runOptions) writeLearned() error {
	p := o.learner.Profile()
	var data []byte
	var err error
	if strings.HasSuffix(o.seccompLearn, ".toml") {
		var names []string
		for _, r := range p.Rules {
			for _, n := range r.Names {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = policy.Quote(n)
		}
		data = []byte("# Learned by hakoniwa run --seccomp-learn.\n[seccomp]\ndismatch_action = \"kill_process\"\nsyscalls = [" + strings.Join(quoted, ", ") + "]\n")
	} else if data, err = p.JSON(); err != nil {
		return fmt.Errorf("--seccomp-learn: %w", err)
	}
	if err := replaceFile(o.seccompLearn, data); err != nil {
		return fmt.Errorf("--seccomp-learn: %w", err)
	}
	return nil
}

// replaceFile writes data to a new file beside path and renames it over
// path, so that path is never seen half-written, and a command that could
// reach path (through a read-write bind) cannot leave its own contents
// there instead.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hakoniwa-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// setupFailed reports a failure before the command ran.
func (o *runOptions) setupFailed(err error, r *hakoniwa.Result, report *report, log *slog.Logger, stderr io.Writer) error {
	code := 125
	var se *hakoniwa.SetupError
	if errors.As(err, &se) {
		code = se.ExitCode
	}
	if r == nil {
		r = &hakoniwa.Result{Status: hakoniwa.StatusSE, Reason: err.Error(), StartTime: time.Now().UTC()}
	}
	o.finish(r, report, log, stderr)
	printError(stderr, err)
	return exitCode(code)
}

// report is where the JSON report goes: a file, written at the end by
// renaming a new file over it, or an fd.
type report struct {
	path string
	fd   *os.File
}

// openReport checks the report destination before the run: a bad one must
// fail before anything runs.
func (o *runOptions) openReport() (*report, error) {
	switch {
	case o.reportFile != "" && o.reportFd >= 0:
		return nil, usageError{errors.New("--report-file and --report-fd are exclusive")}
	case o.reportFile != "":
		f, err := os.OpenFile(o.reportFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, usageError{fmt.Errorf("--report-file: %w", err)}
		}
		f.Close()
		return &report{path: o.reportFile}, nil
	case o.reportFd >= 0:
		if o.reportFd <= 2 {
			return nil, usageError{fmt.Errorf("--report-fd %d: use a fd above 2", o.reportFd)}
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(o.reportFd, &st); err != nil {
			return nil, usageError{fmt.Errorf("--report-fd %d: %w", o.reportFd, err)}
		}
		return &report{fd: os.NewFile(uintptr(o.reportFd), "report-fd")}, nil
	}
	return nil, nil
}

// write writes the report. A report file is written to a new file that is
// renamed over it, so that a command which could reach the file (through
// a read-write bind) cannot leave its own contents there instead.
func (r *report) write(js string) error {
	if r.fd != nil {
		_, err := r.fd.WriteString(js + "\n")
		return err
	}
	if err := replaceFile(r.path, []byte(js+"\n")); err != nil {
		return fmt.Errorf("--report-file: %w", err)
	}
	return nil
}

func (o *runOptions) finish(r *hakoniwa.Result, rep *report, log *slog.Logger, stderr io.Writer) {
	js := r.JSON()
	if log != nil {
		log.Info("Result: " + js)
	}
	if rep != nil {
		if err := rep.write(js); err != nil {
			fmt.Fprintf(stderr, "hakoniwa: %v\n", err)
		}
	}
}

// lineHandler is a compact slog handler: "[time LEVEL] message".
type lineHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *lineHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *lineHandler) WithGroup(string) slog.Handler                { return h }
func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s %s hakoniwa] %s", r.Time.UTC().Format("2006-01-02T15:04:05Z"), r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// applyCgroup applies the cgroup flags to c.
func (o *runOptions) applyCgroup(c *hakoniwa.Container) error {
	for _, f := range []struct {
		flag, v string
		parse   func(string) (uint64, error)
		set     func(uint64) *hakoniwa.Container
	}{
		{"--memory", o.memory, parseSize, c.Memory},
		{"--memory-swap", o.memorySwap, parseSize, c.MemorySwap},
		{"--pids", o.pids, parseCount, c.Pids},
		{"--cpu-weight", o.cpuWeight, parseCount, c.CPUWeight},
		{"--io-weight", o.ioWeight, parseCount, c.IOWeight},
	} {
		if f.v == "" {
			continue
		}
		v, err := f.parse(f.v)
		if err == nil && v == 0 {
			err = errors.New("want more than 0")
		}
		if err != nil {
			return usageError{fmt.Errorf("%s: %v", f.flag, err)}
		}
		f.set(v)
	}
	if o.cpus != "" {
		n, err := parseCPUs(o.cpus)
		if err != nil {
			return usageError{fmt.Errorf("--cpus: %v", err)}
		}
		c.CPUs(n)
	}
	if o.cgroupVersion != 0 && o.cgroupVersion != 1 && o.cgroupVersion != 2 {
		return usageError{fmt.Errorf("--cgroup-version %d: want 1 or 2", o.cgroupVersion)}
	}
	manager := o.cgroupManager
	switch manager {
	case "auto":
		manager = ""
	case "cgroupfs", "systemd":
	default:
		return usageError{fmt.Errorf("--cgroup-manager %s: want auto, cgroupfs or systemd", o.cgroupManager)}
	}
	parent := o.cgroupParent
	if manager == "systemd" && !o.cgroupParentSet {
		parent = "" // $HAKONIWA_CGROUP_PARENT is for cgroupfs; systemd places its scope
	}
	c.CgroupParent(parent).CgroupVersion(o.cgroupVersion).CgroupManager(manager)
	if o.useCgroup {
		c.Cgroup(true)
	}
	if err := c.CheckCgroup(); err != nil {
		return usageError{err}
	}
	return nil
}
