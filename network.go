package hakoniwa

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/internal/egress"
	"github.com/hakoniwa-go/hakoniwa/internal/mountopt"
	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"github.com/hakoniwa-go/hakoniwa/internal/usernet"
	"golang.org/x/sys/unix"
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

// Publish forwards ports of the host to the sandbox's, with the user-mode
// network of pasta or slirp4netns (IPv4 only), each
// "[HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]", an IPv6 HOSTIP in brackets.
// A bad spec is an error when the command starts. Publish with no specs
// drops those given before.
func (c *Container) Publish(specs ...string) *Container {
	if len(specs) == 0 {
		c.publish = nil
	}
	c.publish = append(c.publish, specs...)
	return c
}

// DNS adds name servers (IP addresses) for the sandbox's /etc/resolv.conf,
// or, with "none" alone, asks for no /etc/resolv.conf and, under
// AllowConnect, no name server allowed. With a user-mode network and no
// DNS, /etc/resolv.conf lists the helper's DNS forwarder (pasta's
// --dns-forward address, 169.254.1.1 by default; slirp4netns's 10.0.2.3),
// which passes queries on to the host's resolver. The file is put over
// the one of a bound /etc, or created where the root has none; a mount of
// the caller's own at /etc/resolv.conf wins, and the forwarder's file is
// left out where /etc is not a directory it can be made in (a symlink, a
// file, a read-only tmpfs). DNS with no servers drops those given before.
func (c *Container) DNS(servers ...string) *Container {
	if len(servers) == 0 {
		c.dns = nil
	}
	c.dns = append(c.dns, servers...)
	return c
}

// AllowConnect limits where the sandbox's user-mode network lets it send
// to the destinations listed, each HOST_OR_CIDR[:PORTS]: an address, a
// CIDR prefix or a host name (looked up when the command starts), and
// optionally TCP and UDP ports or port ranges, comma-separated
// ("192.0.2.0/24:80,443", "[2001:db8::1]:53", "example.com:8000-8100").
// Anything else is refused at once: a TCP connect with ECONNREFUSED, any
// other send with EPERM. The sandbox's own loopback, answers from its
// published ports, and the name servers of the /etc/resolv.conf that
// hakoniwa writes (on port 53) stay allowed. The rules are nftables rules
// of the sandbox's network namespace, made before the command runs in a
// user namespace that cannot change them. AllowConnect with no specs
// drops those given before.
func (c *Container) AllowConnect(specs ...string) *Container {
	if len(specs) == 0 {
		c.allowConnect = nil
	}
	c.allowConnect = append(c.allowConnect, specs...)
	return c
}

// resolvConf decides the /etc/resolv.conf that hakoniwa writes: the name
// servers it lists, none if it writes none (see DNS), and why not, for the
// log.
func (c *Container) resolvConf() (servers []netip.Addr, why string, err error) {
	if len(c.dns) == 1 && c.dns[0] == "none" {
		return nil, "--dns none", nil
	}
	for _, s := range c.dns {
		a, err := netip.ParseAddr(s)
		if s == "none" {
			return nil, "", configErr("dns none", "means no name server, and cannot be given with others")
		}
		if err != nil || a.Zone() != "" {
			return nil, "", configErr("dns "+s, "not an IP address (or \"none\")")
		}
		servers = append(servers, a.Unmap())
	}
	implicit := len(servers) == 0
	if !implicit && !c.shareNet && c.usernet == nil {
		how := "none"
		if c.loopback {
			how = "loopback"
		}
		return nil, "", configErr("dns "+c.dns[0], "the sandbox has no network to reach a name server with (--network %s)", how)
	}
	if implicit && c.usernet != nil && !c.shareNet {
		if a, ok := usernet.DNSForwarder(c.usernet.mode, c.usernet.options); ok {
			servers = []netip.Addr{a}
		}
	}
	if len(servers) == 0 {
		return nil, "no name server to list", nil
	}
	var etc *Mount
	for i := range c.mounts {
		switch path.Clean(c.mounts[i].Target) {
		case "/etc/resolv.conf":
			return nil, "a mount of the caller's own is there", nil
		case "/etc":
			etc = &c.mounts[i]
		}
	}
	// In a directory of the host's, the file goes over an existing one.
	hostEtc := ""
	switch {
	case etc != nil && etc.Kind == KindBind:
		hostEtc = etc.Source
	case etc == nil && c.rootdir != nil:
		hostEtc = path.Join(c.rootdir.path, "etc")
	}
	if hostEtc != "" {
		dir, err := os.Lstat(hostEtc)
		file, err2 := os.Lstat(path.Join(hostEtc, "resolv.conf"))
		if err != nil || !dir.IsDir() || err2 != nil || file.IsDir() {
			if implicit {
				return nil, hostEtc + " has no resolv.conf to put it over", nil
			}
			return nil, "", configErr("dns "+c.dns[0], "%s has no resolv.conf to put the name servers over (hakoniwa does not create files on the host)", hostEtc)
		}
	}
	if implicit && etc != nil {
		// The forwarder's file is a convenience: left out, with a log
		// line, where the caller's /etc could not take it.
		switch etc.Kind {
		case KindBind:
			if fi, err := os.Stat(etc.Source); err == nil && !fi.IsDir() {
				return nil, "/etc is a bind of a file", nil
			}
		case KindTmpfs:
			if _, ro, err := mountopt.Tmpfs(etc.Options); err == nil && ro {
				return nil, "/etc is a read-only tmpfs", nil
			}
		case KindDir, KindDevfs:
		default:
			return nil, "/etc is a " + etc.Kind.String(), nil
		}
	}
	return servers, "", nil
}

// resolvConfFile is the /etc/resolv.conf that lists servers.
func resolvConfFile(servers []netip.Addr) []byte {
	var b strings.Builder
	b.WriteString("# Written by hakoniwa for this sandbox.\n")
	for _, a := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	return []byte(b.String())
}

// egressRules parses the allowlist, with the name servers that hakoniwa
// lists in /etc/resolv.conf allowed on port 53.
func (c *Container) egressRules() ([]egress.Rule, error) {
	var rules []egress.Rule
	for _, spec := range c.allowConnect {
		r, err := egress.Parse(spec, egress.LookupHost)
		if err != nil {
			return nil, configErr("allow-connect "+spec, "%v", strings.TrimPrefix(err.Error(), fmt.Sprintf("%q: ", spec)))
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, nil
	}
	servers, _, err := c.resolvConf()
	if err != nil {
		return nil, err
	}
	for _, a := range servers {
		rules = append(rules, egress.Rule{Spec: "name server " + a.String(), Prefixes: []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, Ports: []egress.PortRange{{From: 53, To: 53}}})
	}
	return rules, nil
}

// ports parses the published ports.
func (c *Container) ports() ([]usernet.Port, error) {
	var ports []usernet.Port
	for _, spec := range c.publish {
		p, err := usernet.ParsePort(spec)
		if err != nil {
			return nil, configErr("publish "+spec, "%v", err)
		}
		if c.usernet == nil {
			return nil, configErr("publish "+spec, "needs --network pasta or slirp4netns (there is no user-mode network)")
		}
		if c.usernet.mode == "slirp4netns" && strings.Contains(p.HostIP, ":") {
			return nil, configErr("publish "+spec, "slirp4netns forwards IPv4 only: use pasta for an IPv6 host address")
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
func (c *Container) addNetSteps(b *nsexec.Builder, j *netJoin, log *slog.Logger) error {
	ports, err := c.ports()
	if err != nil {
		return err
	}
	n := c.usernet
	if n == nil {
		if len(c.allowConnect) > 0 {
			return configErr("allow-connect "+c.allowConnect[0], "needs --network pasta or slirp4netns (with none or loopback nothing leaves the sandbox; with host it is the host's network, which hakoniwa does not filter)")
		}
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
	rules, err := c.egressRules()
	if err != nil || rules == nil {
		return err
	}
	if n.mode == "pasta" {
		// pasta's -T and -U forward ports of the sandbox's loopback,
		// which the rules let through, to the host's.
		for _, f := range [][2]string{{"-T", "--tcp-ns"}, {"-U", "--udp-ns"}} {
			if v, ok := usernet.OptionValue(n.options, f[0], f[1]); ok && v != "none" {
				return configErr("allow-connect "+c.allowConnect[0], "cannot be used with pasta's %s %s, which forwards the sandbox's loopback to the host's past the allowlist", f[0], v)
			}
		}
	}
	var published []egress.Published
	for _, p := range ports {
		published = append(published, egress.Published{Port: p.SandboxPort, Proto: p.Proto})
	}
	// Made by the namespace's owner, the first user namespace; the
	// command runs in a nested one, which cannot change them.
	batches := egress.Batches(rules, published)
	for i, batch := range batches {
		desc := fmt.Sprintf("set up the egress allowlist (nftables table inet %s in the sandbox's network namespace)", egress.Table)
		if len(batches) > 1 {
			desc += fmt.Sprintf(", part %d of %d", i+1, len(batches))
		}
		b.Netlink(unix.NETLINK_NETFILTER, batch, desc)
	}
	if log != nil {
		for _, r := range rules {
			log.Info("Network: allow connections to " + r.String())
		}
		log.Info("Network: refuse connections anywhere else")
	}
	return nil
}

// netHook wraps the program's Started hook so that pasta is started on the
// child and the child let go on; a failure is kept in cmd.netErr, and the
// waiting child is killed.
func (cmd *Cmd) netHook(j *netJoin, next func(pid, pidfd int)) func(pid, pidfd int) {
	n := cmd.c.usernet
	ports, _ := cmd.c.ports() // checked by compile
	return func(pid, pidfd int) {
		if cmd.attachErr != nil || cmd.idErr != nil {
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
			h, err = usernet.Slirp4netns(cmd.ctx, pid, n.options, ports)
		} else {
			h, err = usernet.Pasta(cmd.ctx, pid, os.Geteuid(), os.Getegid(), append(n.options, usernet.PastaOptions(ports)...))
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
