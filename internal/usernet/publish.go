package usernet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Port is a port of the host forwarded to one of the sandbox's.
type Port struct {
	HostIP      string // "" for every address of the host
	HostPort    uint16
	SandboxPort uint16
	Proto       string // "tcp" or "udp"
}

// ParsePort parses [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp], an IPv6
// HOSTIP in brackets ([::1]:8080:80).
func ParsePort(s string) (Port, error) {
	p := Port{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto, rest = rest[i+1:], rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return p, fmt.Errorf("%q: want the protocol tcp or udp, not %q", s, p.Proto)
		}
	}
	bracketed := strings.HasPrefix(rest, "[")
	if bracketed {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return p, fmt.Errorf("%q: want [IPV6]:HOSTPORT:SANDBOXPORT", s)
		}
		p.HostIP, rest = rest[1:end], rest[end+2:]
	}
	parts := strings.Split(rest, ":")
	hasIP := bracketed
	if len(parts) == 3 && !bracketed {
		p.HostIP, parts, hasIP = parts[0], parts[1:], true
	}
	if len(parts) != 2 {
		return p, fmt.Errorf("%q: want [HOSTIP:]HOSTPORT:SANDBOXPORT[/tcp|/udp]", s)
	}
	if hasIP {
		ip := net.ParseIP(p.HostIP)
		switch {
		case ip == nil:
			return p, fmt.Errorf("%q: %q is not an IP address", s, p.HostIP)
		case bracketed != (ip.To4() == nil):
			return p, fmt.Errorf("%q: write an IPv6 address in brackets, and an IPv4 one without", s)
		}
	}
	for i, dst := range []*uint16{&p.HostPort, &p.SandboxPort} {
		n, err := strconv.ParseUint(parts[i], 10, 16)
		if err != nil || n == 0 {
			return p, fmt.Errorf("%q: want a port from 1 to 65535, not %q", s, parts[i])
		}
		*dst = uint16(n)
	}
	return p, nil
}

func (p Port) String() string {
	host := p.HostIP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if host != "" {
		host += ":"
	}
	return fmt.Sprintf("%s%d:%d/%s", host, p.HostPort, p.SandboxPort, p.Proto)
}

// pastaArgs are pasta's options that forward p: -t or -u, with the host
// address before a slash.
func (p Port) pastaArgs() []string {
	flag := "-t"
	if p.Proto == "udp" {
		flag = "-u"
	}
	spec := fmt.Sprintf("%d:%d", p.HostPort, p.SandboxPort)
	if p.HostIP != "" {
		spec = p.HostIP + "/" + spec
	}
	return []string{flag, spec}
}

// PastaOptions are pasta's options that forward ports.
func PastaOptions(ports []Port) []string {
	var opts []string
	for _, p := range ports {
		opts = append(opts, p.pastaArgs()...)
	}
	return opts
}

// slirpForward asks slirp4netns, on its API socket, to forward p to the
// sandbox's address guest. slirp4netns answers one request a connection,
// with {"return": ...} or {"error": {"desc": ...}}.
func slirpForward(socket string, p Port, guest netip.Addr) error {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	req, err := json.Marshal(map[string]any{
		"execute": "add_hostfwd",
		"arguments": map[string]any{
			"proto": p.Proto, "host_addr": host, "host_port": p.HostPort,
			"guest_addr": guest.String(), "guest_port": p.SandboxPort,
		},
	})
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", socket, startTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	if _, err := c.Write(req); err != nil {
		return err
	}
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(io.LimitReader(c, 64<<10))
	if err != nil {
		return err
	}
	var resp struct {
		Return *json.RawMessage
		Error  *struct{ Desc string }
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return fmt.Errorf("slirp4netns answered %s: %v", quote(string(b)), err)
	}
	if resp.Error != nil {
		return errors.New(quote(resp.Error.Desc))
	}
	if resp.Return == nil {
		return fmt.Errorf("slirp4netns answered %s", quote(string(b)))
	}
	return nil
}
