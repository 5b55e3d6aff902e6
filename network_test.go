package hakoniwa

import (
	"bufio"
	"context"
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

// TestUserNetPublish forwards a host port to a server in the sandbox, on
// the host's loopback only, with each helper (slirp4netns through its API
// socket), and with an allowlist that does not list the client: answers
// to a connection made to the sandbox are allowed.
func TestUserNetPublish(t *testing.T) {
	for _, tc := range []struct {
		helper string
		allow  []string
	}{{"pasta", nil}, {"slirp4netns", nil}, {"pasta", []string{"192.0.2.1:9"}}, {"slirp4netns", []string{"192.0.2.1:9"}}} {
		helper := tc.helper
		t.Run(fmt.Sprintf("%s allow %q", helper, tc.allow), func(t *testing.T) {
			haveHelper(t, helper)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hostPort := ln.Addr().(*net.TCPAddr).Port
			ln.Close() // a free port, for the helper
			server := `import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen()
c, _ = s.accept()
c.sendall(b"hello from the sandbox\n")
c.close()
`
			cmd := kiss(t).UserNetwork(helper).Publish(fmt.Sprintf("127.0.0.1:%d:8080", hostPort)).AllowConnect(tc.allow...).
				Walltime(10*time.Second).Command("/usr/bin/python3", "-c", server)
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
			if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "hakoniwa-slirp4netns-*")); len(dirs) > 0 {
				t.Errorf("API socket directories left: %q", dirs)
			}
		})
	}
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
		{New().Publish("8080:80"), "publish 8080:80: needs --network pasta or slirp4netns (there is no user-mode network)"},
		{New().UserNetwork("slirp4netns").Publish("[::1]:8080:80"), "publish [::1]:8080:80: slirp4netns forwards IPv4 only"},
		{New().AllowConnect("192.0.2.1"), "allow-connect 192.0.2.1: needs --network pasta or slirp4netns"},
		{New().ShareNet(true).AllowConnect("192.0.2.1"), "allow-connect 192.0.2.1: needs --network pasta or slirp4netns"},
		{New().UserNetwork("pasta").AllowConnect("192.0.2.1/8"), "allow-connect 192.0.2.1/8: 192.0.2.1/8 has bits set past /8 (did you mean 192.0.0.0/8?)"},
		{New().UserNetwork("pasta").AllowConnect("192.0.2.1:0"), `allow-connect 192.0.2.1:0: want a port from 1 to 65535, not "0"`},
		{New().UserNetwork("pasta").AllowConnect("no-such-host.invalid"), "allow-connect no-such-host.invalid: look up no-such-host.invalid"},
		{New().DNS("1.2.3.4"), "dns 1.2.3.4: the sandbox has no network to reach a name server with (--network none)"},
		{New().Loopback(true).DNS("1.2.3.4"), "(--network loopback)"},
		{New().ShareNet(true).DNS("example.com"), "dns example.com: not an IP address"},
		{New().ShareNet(true).DNS("none", "192.0.2.53"), "dns none: means no name server, and cannot be given with others"},
		{New().ShareNet(true).DNS("192.0.2.53").BindRO(t.TempDir(), "/etc"), "has no resolv.conf to put the name servers over"},
		{New().UserNetwork("pasta", "-T", "18081").AllowConnect("192.0.2.1"), "allow-connect 192.0.2.1: cannot be used with pasta's -T 18081"},
		{New().UserNetwork("pasta", "--udp-ns=53").AllowConnect("192.0.2.1"), "cannot be used with pasta's -U 53"},
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

// pyProbe connects to HOST:PORT over TCP and then sends a datagram to
// HOST:PORT+1 over UDP, and prints what each got back, or the error.
const pyProbe = `import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
start = time.monotonic()
try:
    s = socket.create_connection((host, port), 3)
    print("tcp", s.recv(100).decode().strip())
except Exception as e:
    print("tcp error:", type(e).__name__)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.connect((host, port + 1))
    u.send(b"ping")
    print("udp", u.recv(100).decode().strip())
except Exception as e:
    print("udp error:", type(e).__name__)
print("slow" if time.monotonic() - start > 2 else "fast")
`

// hostServers starts a TCP server on a free port of addr and a UDP echo
// server on the next port, and returns the TCP port.
func hostServers(t *testing.T, addr, line string) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", addr, port+1))
		if err != nil {
			ln.Close()
			continue
		}
		t.Cleanup(func() { ln.Close(); pc.Close() })
		go serve(ln, line)
		go func() {
			buf := make([]byte, 100)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(line+" "+string(buf[:n])), from)
			}
		}()
		return port
	}
	t.Fatal("no free pair of ports")
	return 0
}

// TestAllowConnect checks the egress allowlist with each helper: an
// allowed destination works over TCP and UDP, and one off the list is
// refused at once (ECONNREFUSED), not left to time out.
func TestAllowConnect(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			addr := haveHelper(t, helper)
			a := hostServers(t, addr, "server A")
			b := hostServers(t, addr, "server B")
			ports := func(p int) string { return fmt.Sprintf("%d,%d", p, p+1) }
			for _, tc := range []struct {
				allow        []string
				wantA, wantB string
			}{
				{[]string{addr + ":" + ports(a)}, "tcp server A\nudp server A ping\nfast", "tcp error: ConnectionRefusedError\nudp error: PermissionError\nfast"},
				{[]string{addr + "/32:" + ports(b)}, "tcp error: ConnectionRefusedError\nudp error: PermissionError\nfast", "tcp server B\nudp server B ping\nfast"},
				{[]string{addr + ":" + strconv.Itoa(min(a, b)) + "-" + strconv.Itoa(max(a, b)+1)}, "tcp server A\nudp server A ping\nfast", "tcp server B\nudp server B ping\nfast"},
				{[]string{"192.0.2.0/24", addr[:strings.LastIndexByte(addr, '.')] + ".0/24"}, "tcp server A\nudp server A ping\nfast", "tcp server B\nudp server B ping\nfast"},
				{[]string{"192.0.2.0/24"}, "tcp error: ConnectionRefusedError\nudp error: PermissionError\nfast", "tcp error: ConnectionRefusedError\nudp error: PermissionError\nfast"},
			} {
				c := kiss(t).UserNetwork(helper).AllowConnect(tc.allow...)
				for port, want := range map[int]string{a: tc.wantA, b: tc.wantB} {
					out, r := pastaRun(t, c, pyProbe, addr, strconv.Itoa(port))
					if out != want || r.Status != StatusOK {
						t.Errorf("allow %q, to port %d: got\n%s\nwant\n%s", tc.allow, port, out, want)
					}
				}
			}
		})
	}
}

// pyNftDelete tries to lift the allowlist from inside: it asks the
// kernel, over nftables netlink, to delete hakoniwa's table, and then
// opens a packet socket, which would send past the rules. It prints the
// kernel's answers.
const pyNftDelete = `import socket, struct, errno
def msg(typ, flags, family, seq, attrs=b"", res=0):
    body = struct.pack("BBH", family, 0, socket.htons(res)) + attrs
    return struct.pack("=IHHII", 16 + len(body), typ, flags, seq, 0) + body
name = b"hakoniwa\0"
attr = struct.pack("=HH", 4 + len(name), 1) + name + b"\0" * (-len(name) % 4)
NLM_F_REQUEST, NLM_F_ACK = 1, 4
batch = (msg(0x10, NLM_F_REQUEST, 0, 1, res=10) +
         msg(10 << 8 | 2, NLM_F_REQUEST | NLM_F_ACK, 1, 2, attr) +
         msg(0x11, NLM_F_REQUEST, 0, 3, res=10))
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.send(batch)
err, = struct.unpack("=i", s.recv(4096)[16:20])
print("delete table:", errno.errorcode.get(-err, err))
for name, args in (("packet", (socket.AF_PACKET, socket.SOCK_RAW)), ("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))):
    try:
        socket.socket(*args)
        print(name, "socket: opened")
    except OSError as e:
        print(name, "socket:", errno.errorcode[e.errno])
import fcntl
try:
    fcntl.ioctl(socket.socket(), 0x8914, struct.pack("16sH14x", b"lo", 0))  # SIOCSIFFLAGS: lo down
    print("interface: changed")
except OSError as e:
    print("interface:", errno.errorcode[e.errno])
`

// pyNewNetns moves into a network namespace of its own (with a user
// namespace, if it is not root inside), which has no rules and no way out,
// then tries the connection.
const pyNewNetns = `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
flags = 0x40000000 | (0 if os.getuid() == 0 else 0x10000000)  # CLONE_NEWNET, CLONE_NEWUSER
print("unshare:", libc.unshare(flags) == 0 or os.strerror(ctypes.get_errno()))
`

// TestAllowConnectCannotBeLifted is the attack on the allowlist: a command
// that is root inside, with every capability and no seccomp filter, cannot
// delete the rules nor send raw packets, and is still refused.
func TestAllowConnectCannotBeLifted(t *testing.T) {
	addr := havePasta(t)
	a := hostServers(t, addr, "server A")
	b := hostServers(t, addr, "server B")
	c := kiss(t).UserNetwork("pasta").AllowConnect(fmt.Sprintf("%s:%d", addr, a)).UID(0).GID(0).Seccomp(nil)
	out, _ := pastaRun(t, c, pyNftDelete+"\n"+pyConnect, addr, strconv.Itoa(b))
	want := "delete table: EPERM\npacket socket: EPERM\nraw socket: EPERM\ninterface: EPERM\nerror: ConnectionRefusedError"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// A network namespace of its own has no rules, and no way out. (As
	// the host's root the nested namespace forbids new ones: then the
	// unshare fails.)
	for _, uid := range []int64{0, 1000} {
		out, _ = pastaRun(t, kiss(t).UserNetwork("pasta").AllowConnect(fmt.Sprintf("%s:%d", addr, a)).UID(uid).GID(uid).Seccomp(nil),
			pyNewNetns+"\n"+pyConnect, addr, strconv.Itoa(b))
		want := "unshare: True\nerror: OSError" // ENETUNREACH: no interface but lo
		if os.Getuid() == 0 {
			want = "unshare: No space left on device\nerror: ConnectionRefusedError" // max_net_namespaces 0
		}
		if out != want {
			t.Errorf("uid %d in a new network namespace: got %q, want %q", uid, out, want)
		}
	}
	// The same script, without the allowlist, deletes nothing (there is
	// no table) and reaches the server: the attack is real.
	out, _ = pastaRun(t, kiss(t).UserNetwork("pasta").UID(0).GID(0).Seccomp(nil), pyNftDelete+"\n"+pyConnect, addr, strconv.Itoa(b))
	if !strings.HasSuffix(out, "server B") {
		t.Errorf("without the allowlist: %s", out)
	}
}

// TestResolvConf checks the /etc/resolv.conf that the sandbox gets: the
// helper's DNS forwarder, or the servers given, in a root without /etc
// (the file alone is made) and over a bound /etc (the host's file is left
// alone); a file of the caller's own wins.
func TestResolvConf(t *testing.T) {
	const head = "# Written by hakoniwa for this sandbox.\n"
	hostConf, hostErr := os.ReadFile("/etc/resolv.conf")
	for _, tc := range []struct {
		name   string
		helper string
		c      func() *Container
		want   string
	}{
		{"pasta", "pasta", func() *Container { return kiss(t).UserNetwork("pasta") }, head + "nameserver 169.254.1.1\n"},
		{"pasta's own forwarder", "pasta", func() *Container { return kiss(t).UserNetwork("pasta", "--dns-forward", "10.53.0.1") }, head + "nameserver 10.53.0.1\n"},
		{"slirp4netns", "slirp4netns", func() *Container { return kiss(t).UserNetwork("slirp4netns") }, head + "nameserver 10.0.2.3\n"},
		{"slirp4netns --cidr", "slirp4netns", func() *Container { return kiss(t).UserNetwork("slirp4netns", "--cidr=10.9.0.0/24") }, head + "nameserver 10.9.0.3\n"},
		{"slirp4netns --disable-dns", "slirp4netns", func() *Container { return kiss(t).UserNetwork("slirp4netns", "--disable-dns") }, "none\n"},
		{"--dns", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").DNS("192.0.2.53", "2001:db8::53") }, head + "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"},
		{"--dns, host network", "", func() *Container { return kiss(t).ShareNet(true).DNS("::ffff:192.0.2.53") }, head + "nameserver 192.0.2.53\n"},
		{"over a bound /etc", "pasta", func() *Container { return kiss(t).BindRO("/etc", "/etc").UserNetwork("pasta") }, head + "nameserver 169.254.1.1\n"},
		{"the caller's own file", "pasta", func() *Container {
			return kiss(t).UserNetwork("pasta").File("/etc/resolv.conf", []byte("nameserver 192.0.2.1\n"))
		}, "nameserver 192.0.2.1\n"},
		{"--dns none", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").DNS("none") }, "none\n"},
		{"read-only /etc", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").Tmpfs("/etc", "ro") }, "none\n"},
		{"/etc a symlink", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").Symlink("/usr/share", "/etc") }, "none\n"},
		{"bound /etc without the file", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").BindRO(t.TempDir(), "/etc") }, "none\n"},
		{"--dns, writable /etc tmpfs", "pasta", func() *Container { return kiss(t).UserNetwork("pasta").Tmpfs("/etc", "").DNS("192.0.2.53") }, head + "nameserver 192.0.2.53\n"},
		{"no network", "", func() *Container { return kiss(t) }, "none\n"},
		{"host network", "", func() *Container { return kiss(t).ShareNet(true) }, "none\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.helper != "" {
				haveHelper(t, tc.helper)
			}
			if got := sh(t, tc.c(), "cat /etc/resolv.conf 2>/dev/null || echo none"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if b, err := os.ReadFile("/etc/resolv.conf"); string(b) != string(hostConf) || (err == nil) != (hostErr == nil) {
		t.Errorf("the host's /etc/resolv.conf changed: %q", b)
	}
}

// dnsServer answers every A query on addr:53 (UDP) with ip, and returns
// once it listens.
func dnsServer(t *testing.T, addr string, ip net.IP) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr+":53")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			// The header with QR, RD and RA set, one question, one
			// answer; the question as asked; the answer pointing at it.
			resp := append([]byte{buf[0], buf[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, buf[12:n]...)
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
			pc.WriteTo(append(resp, ip.To4()...), from)
		}
	}()
}

// TestDNSQuery resolves a name in the sandbox through a name server that
// the test runs on the host, given with DNS, with an allowlist that does
// not list it (name servers stay allowed on port 53). Binding port 53 on
// the host needs root.
func TestDNSQuery(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("binding the host's port 53 needs root; the root run covers it")
	}
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			addr := haveHelper(t, helper)
			dnsServer(t, addr, net.IPv4(192, 0, 2, 77))
			c := kiss(t).UserNetwork(helper).DNS(addr).AllowConnect("192.0.2.1:443")
			out, _ := pastaRun(t, c, `import socket; print(socket.gethostbyname("sandbox.test"))`)
			if out != "192.0.2.77" {
				t.Errorf("the sandbox resolved sandbox.test to %q, want the test's answer", out)
			}
		})
	}
}

// TestUserNetStartCancelled cancels the run's context while the helper
// (a fake one that never gets ready) starts: the run stops at once, says
// why, and the helper is gone.
func TestUserNetStartCancelled(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			dir := t.TempDir()
			fake := filepath.Join(dir, helper)
			pidFile := filepath.Join(dir, "pid")
			if err := os.WriteFile(fake, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 60\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			cmd := kiss(t).UserNetwork(helper).CommandContext(ctx, "/bin/echo", "ran")
			out, err := cmd.Output()
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the run took %v to stop", took)
			}
			want := "stopped while " + helper + " was starting: context deadline exceeded"
			if err == nil || !strings.Contains(err.Error(), want) || len(out) != 0 {
				t.Fatalf("out %q, err %v; want %q", out, err, want)
			}
			b, err := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				t.Fatalf("the fake %s did not run: %v %q", helper, err, b)
			}
			if testutil.Alive(pid) {
				t.Errorf("the fake %s, pid %d, is left", helper, pid)
			}
		})
	}
}

// pyBackchannel binds a UDP port, sends from it to a name server (allowed
// on port 53, and pasta then keeps that port open on the host for
// answers from anyone), and answers whatever comes in.
const pyBackchannel = `import socket, sys, errno
port, ns = int(sys.argv[1]), sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
u.sendto(b"query", (ns, 53))
print("ready", flush=True)
u.settimeout(4)
try:
    data, peer = u.recvfrom(100)
except socket.timeout:
    print("nothing came in")
    sys.exit()
try:
    u.sendto(b"EXFIL", peer)
    print("answered")
except OSError as e:
    print("answer:", errno.errorcode[e.errno])
`

// TestAllowConnectNoBackchannel is the attack on answers: a peer off the
// list sends to the host port that the helper opened for the sandbox's
// allowed UDP traffic, and the sandbox answers it. Without the allowlist
// the answer arrives (pasta passes datagrams from anyone in); with it, the
// answer is refused, as answers pass only from published ports.
func TestAllowConnectNoBackchannel(t *testing.T) {
	for _, helper := range helpers {
		t.Run(helper, func(t *testing.T) {
			addr := haveHelper(t, helper)
			// slirp4netns passes in only what the flow's own peer
			// sends: the control would show nothing.
			if helper == "pasta" {
				if got := backchannel(t, kiss(t).UserNetwork(helper).DNS(addr), addr); got != "EXFIL" {
					t.Errorf("without an allowlist the peer got %q: the attack does not reach the sandbox, so the test shows nothing", got)
				}
			}
			if got := backchannel(t, kiss(t).UserNetwork(helper).DNS(addr).AllowConnect("192.0.2.1:9"), addr); got != "" {
				t.Errorf("with an allowlist, the peer off it got %q from the sandbox", got)
			}
		})
	}
}

// backchannel runs pyBackchannel in c, sends to it from a peer on addr,
// and returns what the peer got back.
func backchannel(t *testing.T, c *Container, addr string) string {
	t.Helper()
	peer, err := net.ListenPacket("udp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	free, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close() // for the helper to take
	cmd := c.Walltime(10*time.Second).Command("/usr/bin/python3", "-c", pyBackchannel, strconv.Itoa(port), addr)
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Wait()
		t.Fatalf("the sandbox said %q", lines.Text())
	}
	to := &net.UDPAddr{IP: net.ParseIP(addr), Port: port}
	var got string
	buf := make([]byte, 100)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && got == ""; {
		peer.WriteTo([]byte("hello"), to)
		peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := peer.ReadFrom(buf); err == nil {
			got = string(buf[:n])
		}
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	cmd.Wait()
	t.Logf("the sandbox: %q; the peer got %q", rest, got)
	return got
}

// TestNetworkModes connects to a listener on the host's 127.0.0.1 from
// each mode without a helper: only the host's network reaches it; with
// none, lo is down and any connect fails; with loopback, 127.0.0.1 is the
// sandbox's own.
func TestNetworkModes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, "the host's listener")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	lo := `import fcntl, socket, struct
flags, = struct.unpack_from("16xH", fcntl.ioctl(socket.socket(), 0x8913, struct.pack("16s16x", b"lo")))  # SIOCGIFFLAGS
print("lo", "up" if flags & 1 else "down")
`
	for _, tc := range []struct {
		name string
		c    *Container
		want string
	}{
		{"none", kiss(t), "lo down\nerror: OSError"}, // ENETUNREACH
		{"loopback", kiss(t).Loopback(true), "lo up\nerror: ConnectionRefusedError"},
		{"host", kiss(t).ShareNet(true), "lo up\nthe host's listener"},
	} {
		if out, _ := pastaRun(t, tc.c, lo+pyConnect, "127.0.0.1", port); out != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, out, tc.want)
		}
	}
}

// TestUserNetMissingHelper names the package to install.
func TestUserNetMissingHelper(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for helper, want := range map[string]string{"pasta": "apt-get install passt", "slirp4netns": "apt-get install slirp4netns"} {
		cmd := kiss(t).UserNetwork(helper).Command("/bin/true")
		err := cmd.Run()
		if err == nil || !strings.Contains(err.Error(), helper+" is not installed (Debian and Ubuntu: "+want) || cmd.Result.Status != StatusSE {
			t.Errorf("%s: %v", helper, err)
		}
	}
}
