// Package usernet gives a sandbox's network namespace a user-mode network:
// it starts pasta (from the passt package) or slirp4netns on the sandbox's
// pid, waits until the helper has configured the namespace, and makes sure
// it is gone after the run.
package usernet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Helper is a running pasta or slirp4netns.
type Helper struct {
	// Cmdline is the command line the helper was started with.
	Cmdline []string
	cmd     *exec.Cmd
	out     *bytes.Buffer
	exitW   *os.File // slirp4netns quits when this is closed
	apiDir  string   // holds slirp4netns's API socket
	waitErr error    // how it ended, once Close has waited
}

// startTimeout bounds pasta's set-up.
const startTimeout = 10 * time.Second

// Pasta starts pasta for the network namespace of pid, as uid:gid (pasta
// would otherwise drop root to nobody, who cannot join the namespace),
// with options added to hakoniwa's defaults, and returns once the
// namespace is configured.
//
// The defaults are podman's: no port forwarding either way (-t, -u, -T and
// -U none, unless options give their own), and --no-map-gw, so that the
// gateway address does not reach the host's loopback services.
//
// pasta runs in the foreground, as our child: it is killed by Close, and
// by its parent-death signal if we die first (pasta does not quit by
// itself when the sandbox is gone).
//
// Once ctx is done, it stops waiting for pasta and kills it.
func Pasta(ctx context.Context, pid, uid, gid int, options []string) (*Helper, error) {
	path, err := exec.LookPath("pasta")
	if err != nil {
		return nil, errors.New("pasta is not installed (Debian and Ubuntu: apt-get install passt; Fedora: dnf install passt)")
	}
	if err := CheckOptions("pasta", options); err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	// pasta writes its pid into fd 3 once the namespace is configured.
	args := []string{"--config-net", "--foreground", "--quiet", "--runas", fmt.Sprintf("%d:%d", uid, gid), "--pid", "/proc/self/fd/3"}
	for _, flag := range [][2]string{{"-t", "--tcp-ports"}, {"-u", "--udp-ports"}, {"-T", "--tcp-ns"}, {"-U", "--udp-ns"}} {
		if !hasOption(options, flag[0], flag[1]) {
			args = append(args, flag[0], "none")
		}
	}
	if !hasOption(options, "--no-map-gw", "") {
		args = append(args, "--no-map-gw")
	}
	if !hasOption(options, "--dns-forward", "") {
		args = append(args, "--dns-forward", PastaDNSForward.String())
	}
	args = append(append(args, options...), strconv.Itoa(pid))
	h := &Helper{Cmdline: append([]string{path}, args...), out: &bytes.Buffer{}}
	h.cmd = exec.Command(path, args...)
	h.cmd.Stdout, h.cmd.Stderr = capped{h.out}, capped{h.out}
	h.cmd.WaitDelay = time.Second
	h.cmd.ExtraFiles = []*os.File{pw}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = startOnLauncher(h.cmd)
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	var buf [32]byte
	n, rerr := readReady(ctx, pr, buf[:])
	if got, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); rerr != nil || err != nil || got <= 0 {
		return nil, h.failed(ctx, "pasta", rerr)
	}
	return h, nil
}

// readReady reads the helper's word that it is ready from r, for up to
// startTimeout, or until ctx is done.
func readReady(ctx context.Context, r *os.File, buf []byte) (int, error) {
	r.SetReadDeadline(time.Now().Add(startTimeout))
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })
	defer stop()
	return r.Read(buf)
}

// failed stops a helper that did not get ready, and says why: ctx done,
// the start timeout, or the helper's own complaint.
func (h *Helper) failed(ctx context.Context, name string, rerr error) error {
	h.Close()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("stopped while %s was starting: %w", name, context.Cause(ctx))
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s did not set up the network within %v: %s", name, startTimeout, quote(h.out.String()))
	}
	return fmt.Errorf("%s failed (%v): %s", name, h.waitErr, tunHint(quote(h.out.String())))
}

// Slirp4netns starts slirp4netns for the network namespace of pid, with
// options added to hakoniwa's defaults, and returns once the namespace is
// configured (slirp4netns writes to its --ready-fd). The default
// --disable-host-loopback keeps the host's loopback services out of reach
// (10.0.2.2 would be the host's 127.0.0.1). slirp4netns quits when its
// --exit-fd is closed: by Close, or by the kernel when we die.
//
// Ports are forwarded through slirp4netns's API socket, in a directory of
// our own that Close removes; slirp4netns forwards IPv4 only.
func Slirp4netns(ctx context.Context, pid int, options []string, ports []Port) (*Helper, error) {
	path, err := exec.LookPath("slirp4netns")
	if err != nil {
		return nil, errors.New("slirp4netns is not installed (Debian and Ubuntu: apt-get install slirp4netns; Fedora: dnf install slirp4netns)")
	}
	if err := CheckOptions("slirp4netns", options); err != nil {
		return nil, err
	}
	guest, ok := slirpAddr(options, 100)
	for _, p := range ports {
		if strings.Contains(p.HostIP, ":") {
			return nil, fmt.Errorf("--publish %s: slirp4netns forwards IPv4 only", p)
		}
		if !ok {
			return nil, fmt.Errorf("--publish %s: the sandbox's address is not known (--cidr is not an IPv4 prefix)", p)
		}
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	// A seccomp filter of its own, and for root its own sandbox (a mount
	// namespace, dropped capabilities), which another user cannot make
	// from the host's user namespace: it parses the sandbox's traffic.
	args := []string{"--configure", "--mtu=65520", "--disable-host-loopback", "--enable-seccomp"}
	if os.Geteuid() == 0 {
		args = append(args, "--enable-sandbox")
	}
	args = append(args, "--ready-fd=3", "--exit-fd=4")
	h := &Helper{out: &bytes.Buffer{}, exitW: exitW}
	if len(ports) > 0 {
		// A socket's path has at most 107 bytes: a deep $TMPDIR
		// falls back to /tmp.
		tmp := os.TempDir()
		if len(tmp) > 60 {
			tmp = "/tmp"
		}
		if h.apiDir, err = os.MkdirTemp(tmp, "hakoniwa-slirp4netns-"); err != nil {
			for _, f := range []*os.File{readyW, exitR, exitW} {
				f.Close()
			}
			return nil, err
		}
		args = append(args, "--api-socket", filepath.Join(h.apiDir, "api.sock"))
	}
	args = append(append(args, options...), strconv.Itoa(pid), "tap0")
	h.Cmdline = append([]string{path}, args...)
	h.cmd = exec.Command(path, args...)
	h.cmd.Stdout, h.cmd.Stderr = capped{h.out}, capped{h.out}
	h.cmd.WaitDelay = time.Second
	h.cmd.ExtraFiles = []*os.File{readyW, exitR}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = startOnLauncher(h.cmd)
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		h.removeAPI()
		return nil, fmt.Errorf("start slirp4netns: %w", err)
	}
	var buf [1]byte
	if n, rerr := readReady(ctx, readyR, buf[:]); n != 1 || rerr != nil {
		return nil, h.failed(ctx, "slirp4netns", rerr)
	}
	err = h.forward(ports, guest)
	// slirp4netns keeps listening on its socket: once the ports are
	// forwarded, the socket is removed, so that nothing else (the
	// sandbox itself, given the directory through a bind) can ask it
	// for more.
	h.removeAPI()
	if err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// forward asks slirp4netns to forward ports to guest. It writes to its
// ready fd before it listens on its API socket: wait for the socket.
func (h *Helper) forward(ports []Port, guest netip.Addr) error {
	if len(ports) == 0 {
		return nil
	}
	socket := filepath.Join(h.apiDir, "api.sock")
	// The socket's file exists from its bind, before slirp4netns
	// listens: until then a connect is refused, or finds no file.
	deadline := time.Now().Add(startTimeout)
	for _, p := range ports {
		for {
			err := slirpForward(socket, p, guest)
			if err == nil {
				break
			}
			if (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)) && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			return fmt.Errorf("slirp4netns could not forward %s: %w", p, err)
		}
	}
	return nil
}

// removeAPI removes the directory of the API socket.
func (h *Helper) removeAPI() {
	if h.apiDir != "" {
		os.RemoveAll(h.apiDir)
		h.apiDir = ""
	}
}

// slirpAddr returns the address at offset in slirp4netns's network (its
// --cidr, 10.0.2.0/24 by default): the sandbox's is at 100, the DNS
// forwarder at 3.
func slirpAddr(options []string, offset byte) (netip.Addr, bool) {
	cidr := "10.0.2.0/24"
	if v, found := OptionValue(options, "", "--cidr"); found {
		cidr = v
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return netip.Addr{}, false
	}
	a := p.Masked().Addr().As4()
	a[3] += offset
	return netip.AddrFrom4(a), true
}

// The launcher is a goroutine locked to its thread for the life of the
// process, which starts every pasta: a parent-death signal fires when the
// thread that forked the child exits, and this one never does.
var launcher struct {
	once sync.Once
	reqs chan launch
}

type launch struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnLauncher(cmd *exec.Cmd) error {
	launcher.once.Do(func() {
		launcher.reqs = make(chan launch)
		go func() {
			runtime.LockOSThread() // never unlocked: see launcher
			for l := range launcher.reqs {
				l.done <- l.cmd.Start()
			}
		}()
	})
	l := launch{cmd: cmd, done: make(chan error, 1)}
	launcher.reqs <- l
	return <-l.done
}

// PastaDNSForward is the address at which pasta forwards DNS to the host's
// resolver, unless options give their own --dns-forward: podman's.
var PastaDNSForward = netip.MustParseAddr("169.254.1.1")

// DNSForwarder returns the address of the DNS forwarder that the helper
// of mode, with options, gives the sandbox: pasta's --dns-forward, or the
// third address of slirp4netns's --cidr (10.0.2.3 by default). ok is false
// when there is none (slirp4netns --disable-dns) or it cannot be told.
func DNSForwarder(mode string, options []string) (addr netip.Addr, ok bool) {
	switch mode {
	case "pasta":
		v, found := OptionValue(options, "", "--dns-forward")
		if !found {
			return PastaDNSForward, true
		}
		a, err := netip.ParseAddr(v)
		return a, err == nil
	case "slirp4netns":
		if hasOption(options, "", "--disable-dns") {
			return netip.Addr{}, false
		}
		return slirpAddr(options, 3)
	}
	return netip.Addr{}, false
}

// OptionValue returns the value of the last flag short or long in options:
// "-f V", "-fV", "--flag V" or "--flag=V".
func OptionValue(options []string, short, long string) (value string, found bool) {
	for i := 0; i < len(options); i++ {
		o := options[i]
		for _, f := range []string{short, long} {
			switch {
			case f == "":
			case o == f && i+1 < len(options):
				value, found = options[i+1], true
			case strings.HasPrefix(o, f+"="):
				value, found = o[len(f)+1:], true
			case len(f) == 2 && len(o) > 2 && strings.HasPrefix(o, f) && o[2] != '-':
				value, found = o[2:], true
			}
		}
	}
	return value, found
}

// hasOption reports whether options set the flag short or long, alone or
// with its value joined.
func hasOption(options []string, short, long string) bool {
	return slices.ContainsFunc(options, func(o string) bool {
		for _, f := range []string{short, long} {
			if f != "" && (o == f || strings.HasPrefix(o, f+"=") || len(f) == 2 && strings.HasPrefix(o, f) && len(o) > 2 && o[2] != '-') {
				return true
			}
		}
		return false
	})
}

// maxOutput bounds what is kept of a helper's output, which runs as long as
// the sandbox does.
const maxOutput = 64 << 10

// capped keeps the first maxOutput bytes written to a buffer, and drops the
// rest.
type capped struct{ b *bytes.Buffer }

func (c capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// quote is a helper's output for an error: its first lines, without the
// complaints that it could not reach the system logger, and without
// control characters.
func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Failed to send ") && strings.HasSuffix(l, " to syslog") || slirpChatter(l) {
			continue
		}
		if lines = append(lines, l); len(lines) == 3 {
			break
		}
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, "; ")
}

// slirpChatter reports whether l is one of the lines slirp4netns prints
// on every start, which would hide its complaint.
func slirpChatter(l string) bool {
	for _, p := range []string{"sent tapfd=", "received tapfd=", "Starting slirp", "* ", "WARNING: Support for seccomp is experimental"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// tunHint adds to a helper's complaint about the tun device why it may be.
func tunHint(msg string) string {
	if !strings.Contains(strings.ToLower(msg), "tun") {
		return msg
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return msg + fmt.Sprintf(" (this user cannot open /dev/net/tun: %v; distributions make it mode 0666)", err)
	}
	f.Close()
	return msg
}

// Close stops the helper, once the sandbox is gone, and waits for it.
func (h *Helper) Close() error {
	if h.cmd == nil {
		return nil
	}
	if h.exitW != nil {
		h.exitW.Close()
	}
	// The sandbox is gone, and the helper keeps nothing worth flushing:
	// SIGKILL is as good as SIGTERM, and pasta takes tens of ms over the
	// latter.
	h.cmd.Process.Kill()
	h.waitErr = h.cmd.Wait()
	h.cmd = nil
	h.removeAPI()
	return nil
}

// The options of each helper that take a value, and those hakoniwa sets
// itself or that would reach outside the sandbox's network (files written
// on the host as the helper's user, other namespaces, other fds).
var helperOptions = map[string]struct{ value, refused map[string]bool }{
	"pasta": {
		value: set("-l", "--log-file", "--log-size", "--runas", "-I", "--ns-ifname", "-F", "--fd", "-p", "--pcap",
			"-P", "--pid", "-m", "--mtu", "-a", "--address", "-n", "--netmask", "-M", "--mac-addr", "-g", "--gateway",
			"-i", "--interface", "-o", "--outbound", "--outbound-if4", "--outbound-if6", "-D", "--dns", "-S", "--search",
			"--dns-forward", "-t", "--tcp-ports", "-u", "--udp-ports", "-T", "--tcp-ns", "-U", "--udp-ns",
			"--userns", "--netns", "--ns-mac-addr"),
		refused: set("-l", "--log-file", "--runas", "-F", "--fd", "-p", "--pcap", "-P", "--pid",
			"--userns", "--netns", "--netns-only", "--no-netns-quit"),
	},
	"slirp4netns": {
		value: set("-e", "--exit-fd", "-r", "--ready-fd", "-m", "--mtu", "--cidr", "-a", "--api-socket",
			"--userns-path", "--netns-type", "--outbound-addr", "--outbound-addr6", "--macaddress", "--target-type"),
		refused: set("-e", "--exit-fd", "-r", "--ready-fd", "-a", "--api-socket", "--userns-path", "--netns-type",
			"--target-type"),
	},
}

func set(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// CheckOptions checks the options given for helper: flags, each value
// after the flag that takes it, and none of the flags hakoniwa sets or
// that reach outside the network. A word that is not a flag's value would
// be taken for a command to run on the host.
func CheckOptions(helper string, options []string) error {
	known := helperOptions[helper]
	for i := 0; i < len(options); i++ {
		o := options[i]
		name, _, joined := strings.Cut(o, "=")
		if len(name) > 2 && name[1] != '-' {
			name, joined = name[:2], true // -t80
		}
		switch {
		case o == "" || o == "--" || !strings.HasPrefix(o, "-"):
			return fmt.Errorf("--network %s: %q is not an option of %s (options are flags, each with its value after it; a word would be taken for a command to run on the host)", helper, o, helper)
		case known.refused[name]:
			return fmt.Errorf("--network %s: %s is set by hakoniwa, or reaches outside the sandbox's network, and cannot be given", helper, name)
		case known.value[name] && !joined:
			i++ // its value
			if i == len(options) {
				return fmt.Errorf("--network %s: %s needs a value", helper, name)
			}
		}
	}
	return nil
}
