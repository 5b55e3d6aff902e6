// Package egress limits where a sandbox may connect: it parses an allowlist
// (HOST_OR_CIDR[:PORTS]) and compiles it into an nftables ruleset for the
// sandbox's own network namespace, as one netlink batch that the sandbox's
// child sends before it runs the command.
//
// The rules filter the namespace's output hook, which every packet a
// program in the namespace sends goes through. Whoever owns the namespace
// (the sandbox's first user namespace) can change them; the command runs in
// a nested user namespace, which does not, so it can neither change the
// rules nor send raw packets past them.
package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Rule is one entry of the allowlist: connections to any of Prefixes, on
// Ports (TCP and UDP) or, with no ports, on every port and protocol.
type Rule struct {
	Spec     string // as given, for errors and the log
	Prefixes []netip.Prefix
	Ports    []PortRange
}

// PortRange is an inclusive range of ports.
type PortRange struct{ From, To uint16 }

func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

func (r Rule) String() string {
	var dst []string
	for _, p := range r.Prefixes {
		dst = append(dst, p.String())
	}
	s := strings.Join(dst, ",")
	if len(r.Ports) == 0 {
		return s + " (every port)"
	}
	var ports []string
	for _, p := range r.Ports {
		ports = append(ports, p.String())
	}
	return s + " port " + strings.Join(ports, ",")
}

// Resolver looks up the addresses of a host name.
type Resolver func(host string) ([]netip.Addr, error)

// LookupHost resolves a host name with the system's resolver (files, then
// DNS), bounded to a few seconds.
func LookupHost(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Parse parses HOST_OR_CIDR[:PORTS]: an IP address, a CIDR prefix, or a
// host name (looked up now, with resolve; every address it has is
// allowed), then optionally a colon and comma-separated ports or port
// ranges (443, 8000-8100). An IPv6 address or prefix with ports goes in
// brackets: [2001:db8::/32]:443.
func Parse(spec string, resolve Resolver) (Rule, error) {
	r := Rule{Spec: spec}
	host, ports := spec, ""
	switch {
	case strings.HasPrefix(spec, "["):
		end := strings.IndexByte(spec, ']')
		if end < 0 {
			return r, fmt.Errorf("%q: no closing bracket", spec)
		}
		host, ports = spec[1:end], spec[end+1:]
		if ports != "" {
			if !strings.HasPrefix(ports, ":") {
				return r, fmt.Errorf("%q: want [IPV6]:PORTS after the bracket", spec)
			}
			ports = ports[1:]
			if ports == "" {
				return r, fmt.Errorf("%q: no ports after the colon", spec)
			}
		}
		if !strings.Contains(host, ":") {
			return r, fmt.Errorf("%q: brackets are for IPv6 addresses", spec)
		}
	case strings.Count(spec, ":") > 1:
		// An IPv6 address or prefix, without ports.
	default:
		var found bool
		host, ports, found = strings.Cut(spec, ":")
		if found && ports == "" {
			return r, fmt.Errorf("%q: no ports after the colon", spec)
		}
	}
	if host == "" {
		return r, fmt.Errorf("%q: no host", spec)
	}
	if p, err := parsePrefix(host); err == nil {
		r.Prefixes = []netip.Prefix{p}
	} else if strings.Contains(host, "/") {
		return r, fmt.Errorf("%q: %v", spec, err)
	} else if strings.Contains(host, ":") || !validHostName(host) {
		return r, fmt.Errorf("%q: %q is neither an IP address, a CIDR prefix nor a host name", spec, host)
	} else {
		addrs, err := resolve(host)
		if err != nil {
			return r, fmt.Errorf("%q: look up %s: %w", spec, host, err)
		}
		if len(addrs) == 0 {
			return r, fmt.Errorf("%q: %s has no address", spec, host)
		}
		for _, a := range addrs {
			a = a.Unmap()
			r.Prefixes = append(r.Prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	if ports != "" {
		for _, p := range strings.Split(ports, ",") {
			pr, err := parsePortRange(p)
			if err != nil {
				return r, fmt.Errorf("%q: %v", spec, err)
			}
			r.Ports = append(r.Ports, pr)
		}
	}
	return r, nil
}

// parsePrefix parses an address (a prefix of its full length) or a CIDR
// prefix, which must not have bits set past its length.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%s has bits set past /%d (did you mean %s?)", s, p.Bits(), p.Masked())
	}
	if a := p.Addr(); a.Is4In6() {
		// Masked, so at least /96: the ffff is in bits 80-95.
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// validHostName reports whether s looks like a DNS name.
func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func parsePortRange(s string) (PortRange, error) {
	port := func(s string) (uint16, error) {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("want a port from 1 to 65535, not %q", s)
		}
		return uint16(n), nil
	}
	from, to, isRange := strings.Cut(s, "-")
	a, err := port(from)
	if err != nil {
		return PortRange{}, err
	}
	b := a
	if isRange {
		if b, err = port(to); err != nil {
			return PortRange{}, err
		}
		if b < a {
			return PortRange{}, fmt.Errorf("port range %s ends before it starts", s)
		}
	}
	return PortRange{a, b}, nil
}
