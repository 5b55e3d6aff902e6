package hakoniwa

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// These tests give sandboxes a user-mode network with pasta and with
// slirp4netns, and reach only this machine: servers of the test's own, on an address of a dummy
// interface that testutil gives the host (not loopback, which is the
// sandbox's own, and not the host's default-route address, which pasta
// copies into the sandbox), or on the host's loopback.

// helpers are the user-mode network helpers.
var helpers = []string{"pasta", "slirp4netns"}

// havePasta skips the test where pasta or the test's host address is
// missing, and fails it under CI, which has both.
func havePasta(t *testing.T) string { return haveHelper(t, "pasta") }

// haveHelper skips the test where the helper or the test's host address is
// missing, and fails it under CI, which has them.
func haveHelper(t *testing.T, helper string) string {
	t.Helper()
	_, err := exec.LookPath(helper)
	addr := testutil.HostAddr()
	if err != nil || addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI, %s (%v) and a host address for the tests (%q) must be there", helper, err, addr)
		}
		t.Skipf("%s (%v) or the test's host address (%q) is missing", helper, err, addr)
	}
	return addr
}

// serve answers every connection to ln with line, and returns when ln is
// closed.
func serve(ln net.Listener, line string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, line)
		c.Close()
	}
}

// pyConnect is a python script that connects to HOST:PORT and prints what
// it reads, or the error.
const pyConnect = `import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)
    print(s.recv(100).decode().strip())
except Exception as e:
    print("error:", type(e).__name__)
`

// pastaRun runs the python script in a sandbox with pasta and returns its
// output and report.
func pastaRun(t *testing.T, c *Container, script string, args ...string) (string, *Result) {
	t.Helper()
	cmd := c.Command("/usr/bin/python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v\n%s", err, out)
	}
	checkNoHelper(t, cmd.Result.Pid)
	return strings.TrimSpace(string(out)), cmd.Result
}

// checkNoHelper checks that no pasta or slirp4netns is left for the
// sandbox of pid.
func checkNoHelper(t *testing.T, pid int) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if h := filepath.Base(args[0]); (h == "pasta" || h == "slirp4netns") && slices.Contains(args[1:], strconv.Itoa(pid)) {
			t.Errorf("%s is left after the run: %s %q", h, filepath.Dir(p), args)
		}
	}
}

func TestUserNetOutbound(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			addr := haveHelper(t, helper)
			ln, err := net.Listen("tcp", addr+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go serve(ln, "hello from the host")
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			out, r := pastaRun(t, kiss(t).UserNetwork(helper), pyConnect, addr, port)
			if out != "hello from the host" || r.Status != StatusOK {
				t.Errorf("the sandbox got %q (%s), want the host's server", out, r.Reason)
			}
			// Without the helper, the same sandbox reaches nothing.
			out, _ = pastaRun(t, kiss(t), pyConnect, addr, port)
			if !strings.HasPrefix(out, "error:") {
				t.Errorf("without a network the sandbox got %q", out)
			}
		})
	}
}

// TestPastaNoHostLoopback checks the default that keeps the host's
// loopback services out of reach: the gateway address is not mapped to
// the host, and the sandbox's 127.0.0.1 is its own.
func TestUserNetNoHostLoopback(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) { testNoHostLoopback(t, helper) })
	}
}

func testNoHostLoopback(t *testing.T, helper string) {
	haveHelper(t, helper)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, "a host-only service")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	gateway := `import socket, struct
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        print(socket.inet_ntoa(struct.pack("<L", int(f[2], 16))))
`
	// slirp4netns's gateway, 10.0.2.2, is its own, and would be the host's
	// loopback without --disable-host-loopback. pasta's, with
	// --no-map-gw, is the host's real router: not probed, as the tests
	// reach only this machine (the script checks the option instead).
	targets := []string{"127.0.0.1"}
	if helper == "slirp4netns" {
		gw, _ := pastaRun(t, kiss(t).UserNetwork(helper), gateway)
		if gw != "10.0.2.2" {
			t.Fatalf("slirp4netns's gateway is %q, want 10.0.2.2", gw)
		}
		targets = append(targets, gw)
	}
	for _, to := range targets {
		out, _ := pastaRun(t, kiss(t).UserNetwork(helper), pyConnect, to, port)
		if !strings.HasPrefix(out, "error:") {
			t.Errorf("through %s the sandbox reached the host's loopback: %q", to, out)
		}
	}
}

// TestPastaPublish forwards a host port to a server in the sandbox, on the
// host's loopback only.
func TestPastaPublish(t *testing.T) {
	havePasta(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // a free port, for pasta
	server := `import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen()
c, _ = s.accept()
c.sendall(b"hello from the sandbox\n")
c.close()
`
	cmd := kiss(t).UserNetwork("pasta").Publish(fmt.Sprintf("127.0.0.1:%d:8080", hostPort)).Walltime(10*time.Second).
		Command("/usr/bin/python3", "-c", server)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort), time.Second)
		if err != nil {
			continue
		}
		got, _ = bufio.NewReader(c).ReadString('\n')
		c.Close()
		if got != "" {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the sandbox's server: %v\n%s", err, stderr.String())
	}
	if strings.TrimSpace(got) != "hello from the sandbox" {
		t.Errorf("the host got %q through the forwarded port", got)
	}
	checkNoHelper(t, cmd.Result.Pid)
}

// TestUserNetFailure gives the helper an option it refuses: the run fails
// before the command runs, quoting the helper, and leaves nothing behind.
func TestUserNetFailure(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			haveHelper(t, helper)
			cmd := kiss(t).UserNetwork(helper, "--no-such-option").Command("/bin/echo", "ran")
			out, err := cmd.Output()
			var se *SetupError
			if !errors.As(err, &se) || se.Step != "set up the network with "+helper ||
				!strings.Contains(err.Error(), "unrecognized option '--no-such-option'") || strings.Contains(err.Error(), "syslog") {
				t.Fatalf("err = %v, want %s's refusal", err, helper)
			}
			if len(out) != 0 || cmd.Result.Status != StatusSE || cmd.Result.Code() != 125 {
				t.Errorf("out %q, status %s, code %d", out, cmd.Result.Status, cmd.Result.Code())
			}
			// (Not pgrep: the CLI tests run hakoniwa with the same option.)
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				b, _ := os.ReadFile(p)
				args := strings.Split(string(b), "\x00")
				if filepath.Base(args[0]) == helper && slices.Contains(args, "--no-such-option") {
					t.Errorf("%s left: %s %q", helper, p, args)
				}
			}
		})
	}
}

func TestPastaConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		c    *Container
		want string
	}{
		{New().UserNetwork("vde"), "network vde: want pasta or slirp4netns"},
		{New().Publish("8080:80"), "publish 8080:80: needs --network pasta (there is no user-mode network)"},
		{New().UserNetwork("slirp4netns").Publish("8080:80"), "publish 8080:80: needs --network pasta (slirp4netns forwards ports through its API socket"},
		{New().UserNetwork("pasta").Publish("8080"), "publish 8080: \"8080\": want [HOSTIP:]HOSTPORT:SANDBOXPORT"},
		{New().ShareNet(true).UserNetwork("pasta"), "network pasta: needs a network namespace of the sandbox's own"},
	} {
		err := tc.c.Command("/bin/true").Run()
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
