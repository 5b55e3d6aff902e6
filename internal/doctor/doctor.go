// Package doctor checks what hakoniwa needs of the host (user namespaces,
// Landlock, seccomp, cgroups, subordinate ids, the network helpers,
// overlayfs), and says in plain words what is missing and how to fix it.
package doctor

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Status is how a check came out.
type Status string

// The statuses: ok, a warning (a feature is missing; runs without it
// work), or a failure (hakoniwa cannot run).
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is the result of one check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Host is what the checks read and try. Files are read below ProcSys and
// Etc; the probes run the real thing.
type Host struct {
	ProcSys string // /proc/sys
	Etc     string // /etc
	UID     int    // the caller
	User    string // the caller's name, "" if none

	LookPath     func(file string) (string, error)
	ProbeUserns  func() error           // make a user namespace
	LandlockABI  func() (int, error)    // the kernel's Landlock ABI
	SeccompModes func() (string, error) // /proc/sys/kernel/seccomp/actions_avail, or an error
	ProbeCgroup  func() (string, error) // make a cgroup with limits: where, or why not
	ProbeOverlay func(tmp bool) error   // an overlay in a sandbox (tmp: its writes on a tmpfs)
	OpenTun      func() error           // open /dev/net/tun
}

// Run runs every check.
func Run(h Host) []Check {
	return []Check{
		userNamespaces(h),
		landlock(h),
		seccomp(h),
		cgroups(h),
		subIDs(h),
		helper(h, "pasta", "passt"),
		helper(h, "slirp4netns", "slirp4netns"),
		overlay(h),
	}
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// sysctl reads a sysctl below ProcSys: its value, or "" where it does not
// exist.
func (h Host) sysctl(name string) string {
	b, err := os.ReadFile(filepath.Join(h.ProcSys, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func userNamespaces(h Host) Check {
	c := Check{Name: "user namespaces"}
	const persist = " (and in /etc/sysctl.d/ to keep it)"
	if h.sysctl("kernel.unprivileged_userns_clone") == "0" && h.UID != 0 {
		c.Status, c.Detail = Fail, "the kernel lets only root make user namespaces (kernel.unprivileged_userns_clone = 0)"
		c.Fix = "sysctl -w kernel.unprivileged_userns_clone=1" + persist
		return c
	}
	if h.sysctl("user.max_user_namespaces") == "0" {
		c.Status, c.Detail = Fail, "no process may make a user namespace (user.max_user_namespaces = 0)"
		c.Fix = "sysctl -w user.max_user_namespaces=15000" + persist
		return c
	}
	err := h.ProbeUserns()
	restricted := h.sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1" && h.UID != 0
	switch {
	case err != nil && restricted:
		c.Status, c.Detail = Fail, fmt.Sprintf("AppArmor keeps unprivileged programs from using user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): %v", err)
	case err != nil:
		c.Status, c.Detail = Fail, fmt.Sprintf("making a user namespace failed: %v", err)
		c.Fix = "check the sysctls above and any security module (SELinux, AppArmor) that may refuse it"
		return c
	case restricted:
		// The namespace is made, but AppArmor takes its capabilities
		// away unless a profile allows hakoniwa: mounts then fail.
		c.Status, c.Detail = Warn, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): a program without a profile that allows them gets no capabilities in them, and hakoniwa's mounts fail"
	default:
		c.Status, c.Detail = OK, "this user can make user namespaces"
		if m := h.sysctl("user.max_user_namespaces"); m != "" {
			c.Detail += " (user.max_user_namespaces = " + m + ")"
		}
		return c
	}
	c.Fix = "install the AppArmor profile that ships with hakoniwa: cp contrib/apparmor/hakoniwa /etc/apparmor.d/ && apparmor_parser -r /etc/apparmor.d/hakoniwa (it names /usr/bin/hakoniwa and /usr/local/bin/hakoniwa; edit the path for another place), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
	return c
}

func landlock(h Host) Check {
	c := Check{Name: "landlock"}
	abi, err := h.LandlockABI()
	switch {
	case err == nil && abi > 0:
		c.Status, c.Detail = OK, fmt.Sprintf("Landlock ABI %d", abi)
		if abi < 4 {
			c.Detail += ": the TCP rules need ABI 4 (Linux 6.7)"
		}
	case err != nil && strings.Contains(err.Error(), "not supported"):
		c.Status, c.Detail = Warn, "the kernel has Landlock but it is not enabled: --landlock-* rules cannot be enforced"
		c.Fix = "add landlock to the lsm= kernel parameter (for example lsm=landlock,lockdown,yama,apparmor,bpf) and reboot"
	default:
		c.Status, c.Detail = Warn, fmt.Sprintf("no Landlock (%v): --landlock-* rules cannot be enforced", err)
		c.Fix = "a kernel of 5.13 or later built with CONFIG_SECURITY_LANDLOCK"
	}
	return c
}

func seccomp(h Host) Check {
	c := Check{Name: "seccomp"}
	actions, err := h.SeccompModes()
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("no seccomp filters: %v", err)
		c.Fix = "a kernel built with CONFIG_SECCOMP_FILTER (every distribution's is); or run with --seccomp unconfined"
		return c
	}
	c.Status, c.Detail = OK, "seccomp filters, with the actions "+actions
	for _, need := range []string{"errno", "kill_process", "user_notif"} {
		if !strings.Contains(" "+actions+" ", " "+need+" ") {
			c.Status = Warn
			c.Detail += "; " + need + " is missing (--seccomp-learn needs user_notif)"
		}
	}
	return c
}

func cgroups(h Host) Check {
	c := Check{Name: "cgroups"}
	where, err := h.ProbeCgroup()
	if err != nil {
		c.Status, c.Detail = Warn, "limits of the whole sandbox (--memory, --pids, --cpus) are not available to this user: "+err.Error()
		c.Fix = "see docs/cgroups.md: run inside a cgroup delegated to you (systemd-run --user --scope -p Delegate=yes hakoniwa run ...), or have root make one, chown it to you and name it with --cgroup-parent"
		return c
	}
	c.Status, c.Detail = OK, "limits of the whole sandbox work: "+where
	return c
}

func subIDs(h Host) Check {
	c := Check{Name: "subordinate ids"}
	var found []string
	for _, file := range []string{"subuid", "subgid"} {
		n, err := countRanges(filepath.Join(h.Etc, file), h.UID, h.User)
		if err != nil || n == 0 {
			c.Status = Warn
			c.Detail = fmt.Sprintf("/etc/%s has no range for %s: --userns auto and id maps beyond your own id need one", file, who(h))
			c.Fix = fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (as root)", who(h))
			return c
		}
		found = append(found, fmt.Sprintf("/etc/%s: %d ids", file, n))
	}
	c.Status, c.Detail = OK, strings.Join(found, ", ")
	if h.UID != 0 {
		for _, helper := range []string{"newuidmap", "newgidmap"} {
			if _, err := h.LookPath(helper); err != nil {
				c.Status, c.Detail = Warn, helper+" is missing: maps beyond your own id cannot be written"
				c.Fix = "apt-get install uidmap (Fedora: dnf install shadow-utils)"
			}
		}
	}
	return c
}

func who(h Host) string {
	if h.User != "" {
		return h.User
	}
	return strconv.Itoa(h.UID)
}

// countRanges counts the ids that file grants the user, named by uid or
// name.
func countRanges(file string, uid int, name string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || fields[0] != strconv.Itoa(uid) && (name == "" || fields[0] != name) {
			continue
		}
		if count, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
			n += count
		}
	}
	return n, sc.Err()
}

func helper(h Host, name, pkg string) Check {
	c := Check{Name: name}
	path, err := h.LookPath(name)
	if err != nil {
		c.Status, c.Detail = Warn, name+" is not installed: --network "+name+" cannot run"
		c.Fix = "apt-get install " + pkg
		return c
	}
	c.Status, c.Detail = OK, path
	if err := h.OpenTun(); err != nil {
		c.Status = Warn
		c.Detail += fmt.Sprintf("; but this user cannot open /dev/net/tun (%v)", err)
		c.Fix = "chmod 0666 /dev/net/tun, as distributions ship it (a udev rule keeps it)"
	}
	return c
}

func overlay(h Host) Check {
	c := Check{Name: "overlayfs"}
	if err := h.ProbeOverlay(false); err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("overlayfs in a user namespace failed: %v: --overlay, --tmp-overlay and --rootdir DIR:overlay cannot run", err)
		c.Fix = "Linux 5.11 or later, with overlayfs (CONFIG_OVERLAY_FS)"
		return c
	}
	if err := h.ProbeOverlay(true); err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("overlayfs works in a user namespace, but not with its layers given by fd (%v): --tmp-overlay and --rootdir DIR:overlay need Linux 6.13", err)
		return c
	}
	c.Status, c.Detail = OK, "overlayfs works in a user namespace, with its layers by path and by fd"
	return c
}

// CurrentUser is the caller's name, or "".
func CurrentUser(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return ""
}
