package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/internal/doctor"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newDoctorCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what hakoniwa needs of this host, and say how to fix what is missing",
		Long: `Check, as the user who runs it, what hakoniwa needs of this host: user
namespaces (the sysctls kernel.unprivileged_userns_clone and
user.max_user_namespaces, Ubuntu's AppArmor restriction, and a real
sandbox), Landlock, seccomp, cgroup limits and their delegation (a real
cgroup), /etc/subuid and /etc/subgid, pasta and slirp4netns, and overlayfs
in a user namespace. Each line says ok, warn (a feature is missing) or
FAIL (hakoniwa cannot run), and what to do. The exit status is 1 when a
check failed.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			checks := doctor.Run(realHost())
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				report := struct {
					OK     bool           `json:"ok"`
					Checks []doctor.Check `json:"checks"`
				}{!doctor.Failed(checks), checks}
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				for _, c := range checks {
					status := string(c.Status)
					if c.Status == doctor.Fail {
						status = "FAIL"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", status, c.Name, c.Detail)
					if c.Fix != "" {
						fmt.Fprintf(w, "\t\tfix: %s\n", c.Fix)
					}
				}
				w.Flush()
			}
			if doctor.Failed(checks) {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `write the result as JSON: {"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`)
	return cmd
}

// realHost is this host, probed by running real sandboxes.
func realHost() doctor.Host {
	uid := os.Getuid()
	return doctor.Host{
		ProcSys: "/proc/sys", Etc: "/etc", UID: uid, User: doctor.CurrentUser(uid),
		LookPath: exec.LookPath,
		ProbeUserns: func() error {
			return probe(hakoniwa.New().Rootfs("/"))
		},
		LandlockABI: func() (int, error) {
			abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
			if errno != 0 {
				return 0, errno
			}
			return int(abi), nil
		},
		SeccompModes: func() (string, error) {
			b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
			return strings.TrimSpace(string(b)), err
		},
		ProbeCgroup: func() (string, error) {
			cmd := hakoniwa.New().Rootfs("/").Pids(1 << 20).CgroupParent(os.Getenv("HAKONIWA_CGROUP_PARENT")).Command("/bin/true")
			if err := cmd.Run(); err != nil {
				return "", err
			}
			return cmd.Result.Cgroup, nil
		},
		ProbeOverlay: func(tmp bool) error {
			dir, err := os.MkdirTemp("", "hakoniwa-doctor-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
			for _, d := range []string{lower, upper, work} {
				if err := os.Mkdir(d, 0o755); err != nil {
					return err
				}
			}
			c := hakoniwa.New().Rootfs("/")
			if tmp {
				c.TmpOverlay(lower, "/tmp")
			} else {
				c.Overlay(lower, upper, work, "/tmp")
			}
			return probe(c)
		},
		OpenTun: func() error {
			f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
	}
}

// probe runs /bin/true in c.
func probe(c *hakoniwa.Container) error {
	return c.Command("/bin/true").Run()
}
