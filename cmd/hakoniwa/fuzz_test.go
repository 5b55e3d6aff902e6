package main

import (
	"bytes"
	"strings"
	"testing"
)

// unsafeForFuzzing are what a fuzzed command line must not reach: the
// report goes to a file or fd of the test's, the learner writes a file, a
// host name given to --allow-connect is looked up in the DNS, and a config
// file such as /dev/stdin or a FIFO would block the reading.
var unsafeForFuzzing = []string{"report", "learn", "allow", "-l", "/dev", "/proc", "/sys", "/run", "/tmp"}

// FuzzRunFlags parses fuzzed flags for `run --dry-run`: never a panic, an
// exit code of 0 (a plan printed), 2 (a usage error), 125 (a setup
// error), or 126 and 127 (a word taken for the command, which cannot run
// or is not found), and a message for every error.
func FuzzRunFlags(f *testing.F) {
	for _, s := range []string{
		"--ro-bind /usr --tmpfs /tmp:size=1M,mode=1777 --devfs /dev",
		"-u 0:0:1 -u 1:100000:65536 -g 0 --userns auto --user root:root:wheel",
		"--network pasta:-t,80 -p 127.0.0.1:8080:80/udp --dns 192.0.2.1 --dns none",
		"--rootfs / --rootdir /nonexistent:overlay --overlay /a:/b:/c:/d --tmp-overlay /usr:/o",
		"--limit-as 1G --limit-walltime 0.5 --memory 64Mi --pids 10 --cpus 0.5 --cpu-weight 100",
		"--seccomp docker --landlock-fs-ro /usr --landlock-tcp-connect 80,443 --cap-drop ALL --cap-add net_raw",
		"--file /etc/x:hello --symlink /usr/bin:/bin --dir /d:0700 -e A=1 -e B --hostname h --chdir /",
		"--network slirp4netns:--cidr=10.9.0.0/24 --share-uts --unshare-all",
		"-v --uid 4294967295 --gidmap x --network bogus --tmpfs relative",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		for _, a := range args {
			for _, bad := range unsafeForFuzzing {
				if strings.Contains(a, bad) {
					t.Skip()
				}
			}
		}
		var stdout, stderr bytes.Buffer
		code := run(append(append([]string{"run", "--dry-run"}, args...), "--", "/bin/true"), strings.NewReader(""), &stdout, &stderr)
		switch code {
		case 0:
			if stdout.Len() == 0 {
				t.Errorf("%q: exit 0 and no plan", args)
			}
		case 2, 125, 126, 127:
			if !strings.Contains("\n"+stderr.String(), "\nhakoniwa: ") { // after -v's log, if any
				t.Errorf("%q: exit %d with %q", args, code, stderr.String())
			}
		default:
			t.Errorf("%q: exit %d: %s", args, code, stderr.String())
		}
	})
}

// FuzzParseSize: a size that parses is the same size written in bytes.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64M", "1Gi", "4096", "unlimited", "1.5G", "-1", "18446744073709551615", "99999999999T", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if s == "unlimited" || s == "infinity" {
			return
		}
		if m, err := parseSize(strings.TrimSpace(strconvU(n))); err != nil || m != n {
			t.Errorf("%q = %d, but %d parses as %d, %v", s, n, n, m, err)
		}
	})
}

// FuzzParseIDMap: a map that parses has a count, and writes back as
// C:H:N that parses the same.
func FuzzParseIDMap(f *testing.F) {
	for _, s := range []string{"0", "0:1000", "1:100000:65536", "4294967294", "0:0:0", "a:b:c", "1:2:3:4", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseIDMap(s, 1000)
		if err != nil {
			return
		}
		if m.Count == 0 {
			t.Errorf("%q: a map of no ids", s)
		}
		again, err := parseIDMap(m.String(), 1000)
		if err != nil || again != m {
			t.Errorf("%q = %v, written %q, parsed again %v, %v", s, m, m.String(), again, err)
		}
	})
}

func strconvU(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
