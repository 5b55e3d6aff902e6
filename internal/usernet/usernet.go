// Package usernet gives a sandbox's network namespace a user-mode network:
// it starts pasta (from the passt package) on the sandbox's pid, waits
// until pasta has configured the namespace, and makes sure pasta is gone
// after the run.
package usernet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Helper is a running pasta.
type Helper struct {
	// Cmdline is the command line pasta was started with.
	Cmdline []string
	cmd     *exec.Cmd
	out     *bytes.Buffer
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
func Pasta(pid, uid, gid int, options []string) (*Helper, error) {
	path, err := exec.LookPath("pasta")
	if err != nil {
		return nil, errors.New("pasta is not installed (Debian and Ubuntu: apt-get install passt; Fedora: dnf install passt)")
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
	args = append(append(args, options...), strconv.Itoa(pid))
	h := &Helper{Cmdline: append([]string{path}, args...), out: &bytes.Buffer{}}
	h.cmd = exec.Command(path, args...)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	h.cmd.ExtraFiles = []*os.File{pw}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = startOnLauncher(h.cmd)
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	pr.SetReadDeadline(time.Now().Add(startTimeout))
	var buf [32]byte
	n, rerr := pr.Read(buf[:])
	if got, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); rerr != nil || err != nil || got <= 0 {
		h.cmd.Process.Kill()
		werr := h.cmd.Wait()
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("pasta did not set up the network within %v: %s", startTimeout, quote(h.out.String()))
		}
		msg := quote(h.out.String())
		if strings.Contains(msg, "tun") {
			if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
				msg += fmt.Sprintf(" (this user cannot open /dev/net/tun: %v; distributions make it mode 0666)", err)
			} else {
				f.Close()
			}
		}
		return nil, fmt.Errorf("pasta failed (%v): %s", werr, msg)
	}
	return h, nil
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

// quote is pasta's output for an error: its first lines, without the
// complaints that it could not reach the system logger.
func quote(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Failed to send ") && strings.HasSuffix(l, " to syslog") {
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

// Pid is pasta's pid.
func (h *Helper) Pid() int { return h.cmd.Process.Pid }

// Close stops pasta, once the sandbox is gone, and waits for it.
func (h *Helper) Close() error {
	if h.cmd == nil {
		return nil
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(time.Second, func() { h.cmd.Process.Kill() })
	h.cmd.Wait()
	t.Stop()
	h.cmd = nil
	return nil
}
