package hakoniwa

import (
	"log/slog"
	"os"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"github.com/hakoniwa-go/hakoniwa/internal/usernet"
)

// userNet is a user-mode network for the sandbox's namespace.
type userNet struct {
	mode    string   // "pasta" or "slirp4netns"
	options []string // the helper's own options
}

// UserNetwork gives the sandbox's own network namespace a user-mode network
// stack, started on it before the command runs: "pasta" (from the passt
// package) or "slirp4netns", with options passed on to the helper. By
// default pasta forwards no port either way and does not map the gateway
// address to the host's loopback (podman's defaults); options such as
// "-t", "8080:80" change that. slirp4netns runs with
// --disable-host-loopback. Use "" to turn it off.
func (c *Container) UserNetwork(mode string, options ...string) *Container {
	if mode == "" {
		c.usernet = nil
		return c
	}
	c.usernet = &userNet{mode: mode, options: append([]string(nil), options...)}
	return c
}

// Publish forwards a port of the host to one of the sandbox's, with the
// user-mode network of pasta: "[HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]",
// an IPv6 HOSTIP in brackets. A bad spec is an error when the command
// starts.
func (c *Container) Publish(spec string) *Container {
	c.publish = append(c.publish, spec)
	return c
}

// ports parses the published ports.
func (c *Container) ports() ([]usernet.Port, error) {
	var ports []usernet.Port
	for _, spec := range c.publish {
		p, err := usernet.ParsePort(spec)
		if err != nil {
			return nil, configErr("publish "+spec, "%v", err)
		}
		if c.usernet == nil || c.usernet.mode != "pasta" {
			how := "there is no user-mode network"
			if c.usernet != nil {
				how = c.usernet.mode + " forwards ports through its API socket, which hakoniwa does not drive yet"
			}
			return nil, configErr("publish "+spec, "needs --network pasta (%s)", how)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// netJoin is how the child waits for its network: on the go-ahead pipe,
// which the parent writes once the helper has configured the namespace.
type netJoin struct {
	goAhead
	helper *usernet.Helper
}

func newNetJoin() (*netJoin, error) {
	g, err := newGoAhead()
	return &netJoin{goAhead: g}, err
}

// closeGo closes what is left of the go-ahead pipe.
func (j *netJoin) closeGo() {
	if j != nil {
		j.goAhead.close()
	}
}

// addNetSteps has the child, with its ids mapped, wait until the helper
// has set up its network.
func (c *Container) addNetSteps(b *nsexec.Builder, j *netJoin) error {
	if _, err := c.ports(); err != nil {
		return err
	}
	n := c.usernet
	if n == nil {
		return nil
	}
	if n.mode != "pasta" && n.mode != "slirp4netns" {
		return configErr("network "+n.mode, "want pasta or slirp4netns")
	}
	if c.shareNet {
		return configErr("network "+n.mode, "needs a network namespace of the sandbox's own, but the host's is shared")
	}
	if err := usernet.CheckOptions(n.mode, n.options); err != nil {
		return configErr("network "+n.mode, "%v", err)
	}
	if j == nil {
		j = &netJoin{goAhead: noGoAhead} // for Plan
	}
	// The parent starts the helper between the clone and the execve,
	// so the child cannot hold it in a vfork.
	b.P.ShareMemory = false
	b.WaitGo(j.r, j.w, "wait for "+n.mode+" to set up the network")
	return nil
}

// netHook wraps the program's Started hook so that pasta is started on the
// child and the child let go on; a failure is kept in cmd.netErr, and the
// waiting child is killed.
func (cmd *Cmd) netHook(j *netJoin, next func(pid, pidfd int)) func(pid, pidfd int) {
	n := cmd.c.usernet
	ports, _ := cmd.c.ports() // checked by compile
	return func(pid, pidfd int) {
		if cmd.attachErr != nil {
			// The child was killed for it: nothing to start the
			// network on.
			j.goAhead.close()
			if next != nil {
				next(pid, pidfd)
			}
			return
		}
		var h *usernet.Helper
		var err error
		if n.mode == "slirp4netns" {
			h, err = usernet.Slirp4netns(pid, n.options)
		} else {
			h, err = usernet.Pasta(pid, os.Geteuid(), os.Getegid(), append(n.options, usernet.PastaOptions(ports)...))
		}
		if err == nil {
			j.helper = h
			cmd.c.logAt(slog.LevelInfo)("Network: " + strings.Join(h.Cmdline, " "))
		}
		cmd.netErr = err
		j.give(err, pidfd)
		if next != nil {
			next(pid, pidfd)
		}
	}
}

// closeNet stops the network helper, if any.
func (cmd *Cmd) closeNet() {
	if j := cmd.net; j != nil && j.helper != nil {
		j.helper.Close()
		j.helper = nil
	}
}
