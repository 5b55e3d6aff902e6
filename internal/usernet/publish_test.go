package usernet

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  Port
		pasta []string
		err   string
	}{
		{in: "8080:80", want: Port{"", 8080, 80, "tcp"}, pasta: []string{"-t", "8080:80"}},
		{in: "127.0.0.1:8080:80", want: Port{"127.0.0.1", 8080, 80, "tcp"}, pasta: []string{"-t", "127.0.0.1/8080:80"}},
		{in: "53:5353/udp", want: Port{"", 53, 5353, "udp"}, pasta: []string{"-u", "53:5353"}},
		{in: "[::1]:8443:443/tcp", want: Port{"::1", 8443, 443, "tcp"}, pasta: []string{"-t", "::1/8443:443"}},
		{in: "80", err: "want [HOSTIP:]HOSTPORT:SANDBOXPORT"},
		{in: "1:2:3:4", err: "want [HOSTIP:]HOSTPORT:SANDBOXPORT"},
		{in: "8080:80/sctp", err: "want the protocol tcp or udp"},
		{in: "0:80", err: "want a port from 1 to 65535"},
		{in: "8080:70000", err: "want a port from 1 to 65535"},
		{in: "host:8080:80", err: `"host" is not an IP address`},
		{in: "[::1:8080:80", err: "want [IPV6]:HOSTPORT:SANDBOXPORT"},
		{in: "[]:8080:80", err: `"" is not an IP address`},
		{in: ":8080:80", err: `"" is not an IP address`},
		{in: "[1.2.3.4]:80:80", err: "write an IPv6 address in brackets, and an IPv4 one without"},
	} {
		got, err := ParsePort(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || !slices.Equal(got.pastaArgs(), tc.pasta) {
			t.Errorf("%q: %+v %q %v, want %+v %q", tc.in, got, got.pastaArgs(), err, tc.want, tc.pasta)
		}
		if again, err := ParsePort(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q does not parse back: %+v %v", tc.in, got.String(), again, err)
		}
	}
}

func TestHasOption(t *testing.T) {
	for _, tc := range []struct {
		opts        []string
		short, long string
		want        bool
	}{
		{[]string{"-t", "80"}, "-t", "--tcp-ports", true},
		{[]string{"-t80"}, "-t", "--tcp-ports", true},
		{[]string{"--tcp-ports=80"}, "-t", "--tcp-ports", true},
		{[]string{"--tcp-ports", "80"}, "-t", "--tcp-ports", true},
		{[]string{"-T", "80"}, "-t", "--tcp-ports", false},
		{[]string{"--tcp-ns", "80"}, "-t", "--tcp-ports", false},
		{[]string{"--no-map-gw"}, "--no-map-gw", "", true},
		{nil, "-u", "--udp-ports", false},
	} {
		if got := hasOption(tc.opts, tc.short, tc.long); got != tc.want {
			t.Errorf("hasOption(%q, %s) = %v", tc.opts, tc.short, got)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	for _, tc := range []struct {
		helper string
		opts   []string
		err    string
	}{
		{"pasta", []string{"-t", "8080:80", "--no-map-gw", "-t80", "--mtu=1500", "-D", "10.0.0.1"}, ""},
		{"pasta", []string{"--", "/bin/touch", "/tmp/x"}, `"--" is not an option`},
		{"pasta", []string{"/bin/sh"}, `"/bin/sh" is not an option`},
		{"pasta", []string{"-t", "80", "443"}, `"443" is not an option`},
		{"pasta", []string{""}, `"" is not an option`},
		{"pasta", []string{"--log-file", "/etc/x"}, "--log-file is set by hakoniwa, or reaches outside"},
		{"pasta", []string{"-P", "/tmp/p"}, "-P is set by hakoniwa"},
		{"pasta", []string{"--runas=0"}, "--runas is set by hakoniwa"},
		{"pasta", []string{"-t"}, "-t needs a value"},
		{"slirp4netns", []string{"--mtu=1500", "--cidr", "10.1.0.0/24"}, ""},
		{"slirp4netns", []string{"--api-socket", "/tmp/s"}, "--api-socket is set by hakoniwa"},
		{"slirp4netns", []string{"--exit-fd=9"}, "--exit-fd is set by hakoniwa"},
	} {
		err := CheckOptions(tc.helper, tc.opts)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s %q: %v, want %q", tc.helper, tc.opts, err, tc.err)
		}
	}
}

func TestDNSForwarder(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		options []string
		want    string // "" for none
	}{
		{"pasta", nil, "169.254.1.1"},
		{"pasta", []string{"--dns-forward", "10.53.0.1"}, "10.53.0.1"},
		{"pasta", []string{"--dns-forward=fd00::53"}, "fd00::53"},
		{"pasta", []string{"--dns-forward", "nonsense"}, ""},
		{"slirp4netns", nil, "10.0.2.3"},
		{"slirp4netns", []string{"--cidr=10.9.8.0/24"}, "10.9.8.3"},
		{"slirp4netns", []string{"--cidr", "10.9.8.77/16"}, "10.9.0.3"},
		{"slirp4netns", []string{"--cidr", "fd00::/64"}, ""},
		{"slirp4netns", []string{"--disable-dns"}, ""},
		{"vde", nil, ""},
	} {
		a, ok := DNSForwarder(tc.mode, tc.options)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("DNSForwarder(%s, %q) = %q, want %q", tc.mode, tc.options, got, tc.want)
		}
	}
}

func TestOptionValue(t *testing.T) {
	for _, tc := range []struct {
		options []string
		value   string
		wantOK  bool
	}{
		{[]string{"-m", "1500"}, "1500", true},
		{[]string{"-m1500"}, "1500", true},
		{[]string{"--mtu=1500"}, "1500", true},
		{[]string{"--mtu", "1400", "-m", "1500"}, "1500", true}, // the last wins
		{[]string{"--mtu"}, "", false},                          // no value
		{[]string{"--mtu-x", "1"}, "", false},
		{[]string{"-n", "1"}, "", false},
	} {
		v, ok := OptionValue(tc.options, "-m", "--mtu")
		if v != tc.value || ok != tc.wantOK {
			t.Errorf("OptionValue(%q) = %q, %v", tc.options, v, ok)
		}
	}
}

func TestQuote(t *testing.T) {
	slirp := "sent tapfd=7 for tap0\nreceived tapfd=7\nStarting slirp\n* MTU:             65520\n* Network:         10.0.2.0\nWARNING: Support for seccomp is experimental\nbind: Address in use\n"
	for in, want := range map[string]string{
		slirp: "bind: Address in use",
		"Failed to send 12 bytes to syslog\npasta: unrecognized option '--x'\n": "pasta: unrecognized option '--x'",
		"a\x1b[31mred\x7f\nb\nc\nd\n":                                           "a[31mred; b; c",
		"\n \n":                                                                 "(no output)",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParsePort: a port spec that parses writes back as one that parses
// the same.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80/udp", "[::1]:8080:80/tcp", "80", "[::1]8080:80", "1.2.3.4:0:80", "::1:80:80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if p.HostPort == 0 || p.SandboxPort == 0 || p.Proto != "tcp" && p.Proto != "udp" {
			t.Errorf("%q = %+v", s, p)
		}
		again, err := ParsePort(p.String())
		if err != nil || again != p {
			t.Errorf("%q = %+v, written %q, parsed again %+v, %v", s, p, p.String(), again, err)
		}
	})
}
