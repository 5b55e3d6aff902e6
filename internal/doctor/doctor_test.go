package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeHost is a host where everything works, with sysctls and /etc files
// in temporary directories that a test changes.
func fakeHost(t *testing.T) Host {
	t.Helper()
	dir := t.TempDir()
	h := Host{
		ProcSys: filepath.Join(dir, "sys"), Etc: filepath.Join(dir, "etc"), UID: 1000, User: "alice",
		LookPath:     func(f string) (string, error) { return "/usr/bin/" + f, nil },
		ProbeUserns:  func() error { return nil },
		LandlockABI:  func() (int, error) { return 7, nil },
		SeccompModes: func() (string, error) { return "kill_process kill_thread trap errno user_notif trace log allow", nil },
		ProbeCgroup:  func() (string, error) { return "/user.slice/x/hakoniwa-run-1", nil },
		ProbeOverlay: func(bool) error { return nil },
		OpenTun:      func() error { return nil },
	}
	write(t, h.ProcSys, "user/max_user_namespaces", "63000")
	write(t, h.Etc, "subuid", "alice:100000:65536\n")
	write(t, h.Etc, "subgid", "1000:100000:65536\n")
	return h
}

func write(t *testing.T, dir, name, contents string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
}

// find returns the named check.
func find(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %v", name, checks)
	return Check{}
}

func TestAllWell(t *testing.T) {
	checks := Run(fakeHost(t))
	for _, c := range checks {
		if c.Status != OK || c.Fix != "" {
			t.Errorf("%s: %s %q (fix %q)", c.Name, c.Status, c.Detail, c.Fix)
		}
	}
	if Failed(checks) || len(checks) != 8 {
		t.Errorf("%d checks, failed %v", len(checks), Failed(checks))
	}
	if d := find(t, checks, "subordinate ids").Detail; d != "/etc/subuid: 65536 ids, /etc/subgid: 65536 ids" {
		t.Errorf("subordinate ids: %q", d)
	}
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, h *Host)
		check  string
		status Status
		detail string // a part of the detail
		fix    string // a part of the fix
	}{
		{"unprivileged_userns_clone 0", func(t *testing.T, h *Host) { write(t, h.ProcSys, "kernel/unprivileged_userns_clone", "0\n") },
			"user namespaces", Fail, "kernel.unprivileged_userns_clone = 0", "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"unprivileged_userns_clone 0, root", func(t *testing.T, h *Host) {
			write(t, h.ProcSys, "kernel/unprivileged_userns_clone", "0\n")
			h.UID = 0
		}, "user namespaces", OK, "this user can make user namespaces", ""},
		{"max_user_namespaces 0", func(t *testing.T, h *Host) { write(t, h.ProcSys, "user/max_user_namespaces", "0") },
			"user namespaces", Fail, "user.max_user_namespaces = 0", "sysctl -w user.max_user_namespaces=15000"},
		{"AppArmor, namespace refused", func(t *testing.T, h *Host) {
			write(t, h.ProcSys, "kernel/apparmor_restrict_unprivileged_userns", "1")
			h.ProbeUserns = func() error { return errors.New("make every mount private: permission denied") }
		}, "user namespaces", Fail, "AppArmor keeps unprivileged programs", "contrib/apparmor/hakoniwa"},
		{"AppArmor, namespace made", func(t *testing.T, h *Host) { write(t, h.ProcSys, "kernel/apparmor_restrict_unprivileged_userns", "1") },
			"user namespaces", Warn, "a program without a profile", "apparmor_parser -r /etc/apparmor.d/hakoniwa"},
		{"probe fails", func(t *testing.T, h *Host) { h.ProbeUserns = func() error { return syscall.EPERM } },
			"user namespaces", Fail, "making a user namespace failed: operation not permitted", "security module"},
		{"Landlock off", func(t *testing.T, h *Host) { h.LandlockABI = func() (int, error) { return 0, syscall.EOPNOTSUPP } },
			"landlock", Warn, "not enabled", "lsm="},
		{"no Landlock", func(t *testing.T, h *Host) { h.LandlockABI = func() (int, error) { return 0, syscall.ENOSYS } },
			"landlock", Warn, "no Landlock", "5.13"},
		{"old Landlock", func(t *testing.T, h *Host) { h.LandlockABI = func() (int, error) { return 3, nil } },
			"landlock", OK, "the TCP rules need ABI 4", ""},
		{"no seccomp", func(t *testing.T, h *Host) {
			h.SeccompModes = func() (string, error) { return "", os.ErrNotExist }
		}, "seccomp", Fail, "no seccomp filters", "CONFIG_SECCOMP_FILTER"},
		{"no user_notif", func(t *testing.T, h *Host) {
			h.SeccompModes = func() (string, error) { return "kill_process errno allow", nil }
		},
			"seccomp", Warn, "user_notif is missing", ""},
		{"no cgroup", func(t *testing.T, h *Host) {
			h.ProbeCgroup = func() (string, error) { return "", errors.New("no cgroup for /sys/fs/cgroup/pids") }
		}, "cgroups", Warn, "not available to this user: no cgroup for", "Delegate=yes"},
		{"no subuid", func(t *testing.T, h *Host) { write(t, h.Etc, "subuid", "bob:100000:65536\n") },
			"subordinate ids", Warn, "/etc/subuid has no range for alice", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"no subgid file", func(t *testing.T, h *Host) { os.Remove(filepath.Join(h.Etc, "subgid")) },
			"subordinate ids", Warn, "/etc/subgid has no range", "usermod"},
		{"no newuidmap", func(t *testing.T, h *Host) {
			h.LookPath = func(f string) (string, error) {
				if f == "newuidmap" {
					return "", errors.New("not found")
				}
				return "/usr/bin/" + f, nil
			}
		}, "subordinate ids", Warn, "newuidmap is missing", "apt-get install uidmap"},
		{"no pasta", func(t *testing.T, h *Host) {
			h.LookPath = func(f string) (string, error) {
				if f == "pasta" {
					return "", errors.New("not found")
				}
				return "/usr/bin/" + f, nil
			}
		}, "pasta", Warn, "pasta is not installed", "apt-get install passt"},
		{"no tun", func(t *testing.T, h *Host) { h.OpenTun = func() error { return syscall.EACCES } },
			"slirp4netns", Warn, "cannot open /dev/net/tun", "chmod 0666 /dev/net/tun"},
		{"no overlayfs", func(t *testing.T, h *Host) { h.ProbeOverlay = func(bool) error { return syscall.EPERM } },
			"overlayfs", Warn, "overlayfs in a user namespace failed", "5.11"},
		{"no layers by fd", func(t *testing.T, h *Host) {
			h.ProbeOverlay = func(tmp bool) error {
				if tmp {
					return syscall.EINVAL
				}
				return nil
			}
		}, "overlayfs", Warn, "need Linux 6.13", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fakeHost(t)
			tc.setup(t, &h)
			checks := Run(h)
			c := find(t, checks, tc.check)
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("got %s %q, fix %q; want %s %q, fix with %q", c.Status, c.Detail, c.Fix, tc.status, tc.detail, tc.fix)
			}
			if Failed(checks) != (tc.status == Fail) {
				t.Errorf("Failed = %v", Failed(checks))
			}
		})
	}
}
