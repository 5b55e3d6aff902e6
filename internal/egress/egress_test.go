package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(applyAndList(os.Getenv(childEnv)))
	}
	os.Exit(testutil.Both{M: m}.Run())
}

// noLookup fails every host name lookup.
func noLookup(host string) ([]netip.Addr, error) { return nil, errors.New("no lookups in this test") }

// fakeLookup knows one name.
func fakeLookup(host string) ([]netip.Addr, error) {
	if host == "db.example" {
		return []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("::ffff:192.0.2.11"), netip.MustParseAddr("2001:db8::10")}, nil
	}
	if host == "empty.example" {
		return nil, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"192.0.2.1", "192.0.2.1/32 (every port)"},
		{"192.0.2.0/24", "192.0.2.0/24 (every port)"},
		{"0.0.0.0/0:53", "0.0.0.0/0 port 53"},
		{"192.0.2.1:80,443,8000-8100", "192.0.2.1/32 port 80,443,8000-8100"},
		{"2001:db8::1", "2001:db8::1/128 (every port)"},
		{"2001:db8::/32", "2001:db8::/32 (every port)"},
		{"[2001:db8::/32]:443", "2001:db8::/32 port 443"},
		{"[2001:db8::1]", "2001:db8::1/128 (every port)"},
		{"::ffff:192.0.2.1", "192.0.2.1/32 (every port)"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24 (every port)"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0 (every port)"},
		{"db.example:5432", "192.0.2.10/32,192.0.2.11/32,2001:db8::10/128 port 5432"},
		{"db.example", "192.0.2.10/32,192.0.2.11/32,2001:db8::10/128 (every port)"},
		{"192.0.2.1:65535-65535", "192.0.2.1/32 port 65535"},
	} {
		r, err := Parse(tc.spec, fakeLookup)
		if err != nil || r.String() != tc.want || r.Spec != tc.spec {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.spec, r, err, tc.want)
		}
	}
	for _, tc := range []struct {
		spec, want string
	}{
		{"", `"": no host`},
		{":80", `":80": no host`},
		{"192.0.2.1:", "no ports after the colon"},
		{"192.0.2.1:0", `want a port from 1 to 65535, not "0"`},
		{"192.0.2.1:65536", `not "65536"`},
		{"192.0.2.1:http", `not "http"`},
		{"192.0.2.1:90-80", "port range 90-80 ends before it starts"},
		{"192.0.2.1:80,", `not ""`},
		{"192.0.2.1/8", "192.0.2.1/8 has bits set past /8 (did you mean 192.0.0.0/8?)"},
		{"192.0.2.0/33", "prefix length out of range"},
		{"[192.0.2.1]:80", "brackets are for IPv6 addresses"},
		{"[2001:db8::1", "no closing bracket"},
		{"[2001:db8::1]80", "want [IPV6]:PORTS after the bracket"},
		{"[2001:db8::1]:", "no ports after the colon"},
		{"2001:db8::1:80:x", "is neither an IP address, a CIDR prefix nor a host name"},
		{"fe80::1%eth0", "is neither"},
		{"bad_host!", "is neither"},
		{"-leading.example", "is neither"},
		{"nowhere.example", "look up nowhere.example: lookup nowhere.example: no such host"},
		{"empty.example", "empty.example has no address"},
		{"::ffff:0.0.0.0/64", "has bits set past /64 (did you mean ::/64?)"},
	} {
		if r, err := Parse(tc.spec, fakeLookup); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want an error with %q", tc.spec, r, err, tc.want)
		}
	}
	// An address is never looked up.
	if _, err := Parse("192.0.2.1:80", noLookup); err != nil {
		t.Error(err)
	}
}

// messages walks a batch's netlink messages, and returns their types and
// the indexes of those that ask for an acknowledgement.
func messages(t *testing.T, b []byte) (types []uint16, acks []int) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			t.Fatalf("%d bytes left over", len(b))
		}
		n := binary.NativeEndian.Uint32(b)
		if n < unix.NLMSG_HDRLEN || int(n) > len(b) || n%4 != 0 {
			t.Fatalf("bad message length %d of %d", n, len(b))
		}
		types = append(types, binary.NativeEndian.Uint16(b[4:]))
		if binary.NativeEndian.Uint16(b[6:])&unix.NLM_F_ACK != 0 {
			acks = append(acks, len(types)-1)
		}
		b = b[n:]
	}
	return types, acks
}

// TestBatchShape checks the batches' netlink messages: each begins and
// ends a batch, asks for exactly one acknowledgement, on its last rule,
// and every length adds up; a long allowlist is split into batches that
// each fit a netlink send, the first making the table and chain.
func TestBatchShape(t *testing.T) {
	rule := uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE)
	r, _ := Parse("192.0.2.0/24:80,443", noLookup)
	bs := Batches([]Rule{r}, []Published{{8080, "tcp"}})
	if len(bs) != 1 {
		t.Fatalf("%d batches", len(bs))
	}
	types, acks := messages(t, bs[0])
	// begin, table, chain, 2 fixed rules, 1 published, 2 protocols x 2 ports, 2 rejects, end
	if len(types) != 1+1+1+2+1+4+2+1 || types[0] != unix.NFNL_MSG_BATCH_BEGIN || types[len(types)-1] != unix.NFNL_MSG_BATCH_END ||
		types[len(types)-2] != rule {
		t.Errorf("message types %v", types)
	}
	if len(acks) != 1 || acks[0] != len(types)-2 {
		t.Errorf("acknowledgements asked for by messages %v, want only the last rule, %d", acks, len(types)-2)
	}

	var ports []string
	for p := 1; p <= 1000; p++ {
		ports = append(ports, strconv.Itoa(p*2))
	}
	r, _ = Parse("192.0.2.0/24:"+strings.Join(ports, ","), noLookup)
	bs = Batches([]Rule{r}, nil)
	if len(bs) < 2 {
		t.Fatalf("2000 rules in %d batch", len(bs))
	}
	rules := 0
	for i, b := range bs {
		if len(b) > maxBatch {
			t.Errorf("batch %d has %d bytes", i, len(b))
		}
		types, acks := messages(t, b)
		if types[0] != unix.NFNL_MSG_BATCH_BEGIN || types[len(types)-1] != unix.NFNL_MSG_BATCH_END || len(acks) != 1 || acks[0] != len(types)-2 {
			t.Errorf("batch %d: types %v, acks %v", i, types, acks)
		}
		if (types[1] == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE) != (i == 0) {
			t.Errorf("batch %d: makes the table: %v", i, types[1])
		}
		for _, typ := range types {
			if typ == rule {
				rules++
			}
		}
	}
	if want := 2 + 2000 + 2; rules != want {
		t.Errorf("%d rules in all, want %d", rules, want)
	}
}

// childEnv makes the test binary apply the batch of the rules in it, in
// the new network namespace it was started in, and print the ruleset.
const childEnv = "HAKONIWA_EGRESS_TEST_CHILD"

func applyAndList(specs string) int {
	var rules []Rule
	for _, s := range strings.Fields(specs) {
		r, err := Parse(s, noLookup)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		rules = append(rules, r)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	batches := Batches(rules, []Published{{8080, "tcp"}, {5353, "udp"}})
	for _, b := range batches {
		if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		buf := make([]byte, 4096)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < 20 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
			fmt.Fprintln(os.Stderr, "no acknowledgement:", err, n)
			return 2
		}
		if e := int32(binary.NativeEndian.Uint32(buf[16:])); e != 0 {
			fmt.Fprintln(os.Stderr, "the kernel refused the batch:", syscall.Errno(-e))
			return 2
		}
	}
	fmt.Printf("applied %d\n", len(batches))
	if len(rules) > 10 {
		return 0 // too long to compare
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command(nft, "list", "ruleset").CombinedOutput()
		fmt.Print(string(out))
		if err != nil {
			return 2
		}
	}
	return 0
}

// inNetns runs the test binary in a user and network namespace of its
// own, to apply the rules in specs.
func inNetns(t *testing.T, specs string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+specs)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// TestBatchApplied has the kernel apply a batch in a network namespace of
// the test's own, and, where nft is installed, reads the rules back; and
// a long allowlist, in several batches.
func TestBatchApplied(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("10.%d.0.0/16:80,443,1000-2000,5000", i))
	}
	if got := inNetns(t, strings.Join(many, " ")); !strings.HasPrefix(got, "applied ") || got == "applied 1\n" {
		t.Errorf("40 rules with 4 port ranges: %q", got)
	}
	got := inNetns(t, "192.0.2.0/24:443,8000-8100 [2001:db8::/32]:53 10.1.2.3 0.0.0.0/0:25")
	if !strings.HasPrefix(got, "applied 1\n") {
		t.Fatalf("got %q", got)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("under CI, nft (Debian's nftables) must be there to read the rules back")
		}
		t.Skip("nft is not installed: the rules were applied, but are not read back")
	}
	want := `applied 1
table inet hakoniwa {
	chain egress {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		icmpv6 type 133-137 accept
		ct direction reply tcp sport 8080 accept
		ct direction reply udp sport 5353 accept
		ip daddr 192.0.2.0/24 tcp dport 443 accept
		ip daddr 192.0.2.0/24 tcp dport 8000-8100 accept
		ip daddr 192.0.2.0/24 udp dport 443 accept
		ip daddr 192.0.2.0/24 udp dport 8000-8100 accept
		ip6 daddr 2001:db8::/32 tcp dport 53 accept
		ip6 daddr 2001:db8::/32 udp dport 53 accept
		ip daddr 10.1.2.3 accept
		meta nfproto ipv4 tcp dport 25 accept
		meta nfproto ipv4 udp dport 25 accept
		meta l4proto tcp reject with tcp reset
		reject
	}
}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// FuzzParse: an allowlist entry that parses has addresses and ports in
// range, and its rules build a batch of well-formed netlink messages.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.0/24:80,443,8000-8100", "[2001:db8::/32]:53", "db.example:5432", "::ffff:10.0.0.0/104", "1.2.3.4/8", "[::1]", "a..b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s, fakeLookup)
		if err != nil {
			return
		}
		if len(r.Prefixes) == 0 {
			t.Fatalf("%q: no prefix", s)
		}
		for _, p := range r.Prefixes {
			if !p.IsValid() || p.Masked() != p {
				t.Errorf("%q: prefix %v", s, p)
			}
		}
		for _, pr := range r.Ports {
			if pr.From == 0 || pr.To < pr.From {
				t.Errorf("%q: ports %v", s, pr)
			}
		}
		for _, b := range Batches([]Rule{r}, nil) {
			messages(t, b)
		}
	})
}
