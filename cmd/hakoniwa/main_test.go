package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"github.com/rogpeppe/go-internal/testscript"
)

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestMain(m *testing.M) {
	testscript.Main(testutil.Both{M: m}, map[string]func(){
		"hakoniwa": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. Besides the usual
// testscript commands they have:
//
//	status N PROG ARGS...   run PROG and check that it exits with code N
//	waitfile FILE           wait up to 10s for FILE to exist
//	mounttmpfs DIR          mount a tmpfs on DIR (root only), unmounted at the end
//	missing PROG            PROG, a toolchain a block needs, is missing: fail
//	                        under CI (which must install it, see .ci/run), else
//	                        log that the block is left out
//
// and the conditions [root] and [unprivileged], the latter true in the rerun
// as uid 65534.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("UID", strconv.Itoa(os.Getuid()))
			env.Setenv("GID", strconv.Itoa(os.Getgid()))
			subID := testutil.UnprivSubID // the tests' /etc/subuid range
			if os.Getuid() == 0 {
				subID = testutil.RootSubID
			}
			env.Setenv("SUBID", strconv.Itoa(subID))
			// CGROUP_PARENT is where the scripts' runs make their
			// cgroups: a cgroup delegated to the unprivileged rerun.
			env.Setenv("CGROUP_PARENT", cgroupParent())
			// HAKONIWA_BIN is the hakoniwa command of the scripts.
			for _, dir := range filepath.SplitList(env.Getenv("PATH")) {
				if p := filepath.Join(dir, "hakoniwa"); fileExists(p) {
					env.Setenv("HAKONIWA_BIN", p)
					break
				}
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "unprivileged":
				return testutil.Unprivileged(), nil
			case "root":
				return os.Getuid() == 0, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: status N PROG ARGS...")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("status: bad code %q", args[0])
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("status: %v", err)
				}
				if got != want {
					ts.Fatalf("exit code %d, want %d", got, want)
				}
			},
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				name := ts.MkAbs(args[0])
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if _, err := os.Stat(name); err == nil {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("waitfile: %s did not appear within 10s", args[0])
					}
				}
			},
			"missing": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: missing PROG")
				}
				if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
					ts.Fatalf("%s is missing, and CI=%s: .ci/run must install it", args[0], ci)
				}
				ts.Logf("%s is missing: the block that needs it is left out", args[0])
			},
			"mounttmpfs": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: mounttmpfs DIR")
				}
				dir := ts.MkAbs(args[0])
				ts.Check(syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0777"))
				ts.Defer(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
			},
		},
	})
}
