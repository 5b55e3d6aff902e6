package main

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa"
)

func TestSizeParse(t *testing.T) {
	const bad = "bad size"
	tests := []struct {
		in      string
		want    uint64
		wantErr string // a substring of the error; "" for success
	}{
		{"0", 0, ""},
		{"1", 1, ""},
		{"4096", 4096, ""},
		{"1K", 1 << 10, ""},
		{"1Ki", 1 << 10, ""},
		{"4k", 4 << 10, ""},
		{"64M", 64 << 20, ""},
		{"64Mi", 64 << 20, ""},
		{"64m", 64 << 20, ""},
		{"2G", 2 << 30, ""},
		{"2Gi", 2 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1Ti", 1 << 40, ""},
		{"0K", 0, ""},
		{"007", 7, ""},
		{"16777215T", 16777215 << 40, ""},
		{"18446744073709551615", math.MaxUint64, ""},
		{"unlimited", math.MaxUint64, ""},
		{"infinity", math.MaxUint64, ""},

		{"", 0, bad},
		{"1.5M", 0, bad},
		{"1.5", 0, bad},
		{"-1", 0, bad},
		{"-1K", 0, bad},
		{"+1", 0, bad},
		{"12X", 0, bad},
		{"12 M", 0, bad},
		{" 12", 0, bad},
		{"M", 0, bad},
		{"Ki", 0, bad},
		{"1MK", 0, bad},
		{"1KM", 0, bad},
		{"1P", 0, bad},
		{"1iK", 0, bad},
		{"0x10", 0, bad},
		{"1_000", 0, bad},
		{"Unlimited", 0, bad},
		{"99999999999T", 0, "too large"},
		{"16777216T", 0, "too large"},
		{"17179869184G", 0, "too large"},
		{"18446744073709551616", 0, bad},
		// "i" alone is none of the documented suffixes (K, M, G, T, Ki,
		// Mi, Gi, Ti), so it must not be silently read as bytes.
		{"1i", 0, bad},
		{"64iB", 0, bad},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("parseSize(%q) error %q does not contain %q and the input", tt.in, err, tt.wantErr)
		}
	}
}

func TestCountParse(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"42", 42, true},
		{"0042", 42, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"unlimited", math.MaxUint64, true},
		{"infinity", math.MaxUint64, true},

		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{"1K", 0, false},
		{"64M", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"abc", 0, false},
		{"18446744073709551616", 0, false},
	}
	for _, tt := range tests {
		got, err := parseCount(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("parseCount(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("parseCount(%q) = %d, want an error", tt.in, got)
		} else if !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("parseCount(%q) error %q does not name the input", tt.in, err)
		}
	}
}

// checkMount compares a parser's result with want, or checks its error.
func checkMount(t *testing.T, fn, in string, got hakoniwa.Mount, err error, want *hakoniwa.Mount, wantErr string) {
	t.Helper()
	if want == nil {
		if err == nil {
			t.Errorf("%s(%q) = %+v, want an error", fn, in, got)
		} else if !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s(%q) error %q does not contain %q", fn, in, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Errorf("%s(%q) error: %v", fn, in, err)
		return
	}
	// Compare Contents as strings: nil and empty are the same file.
	g, w := got, *want
	gc, wc := string(g.Contents), string(w.Contents)
	g.Contents, w.Contents = nil, nil
	if !reflect.DeepEqual(g, w) || gc != wc {
		t.Errorf("%s(%q) = %+v (contents %q), want %+v (contents %q)", fn, in, g, gc, w, wc)
	}
}

func TestBindParser(t *testing.T) {
	bind := func(src, dst string, rw, opt bool) *hakoniwa.Mount {
		return &hakoniwa.Mount{Kind: hakoniwa.KindBind, Source: src, Target: dst, RW: rw, Optional: opt}
	}
	tests := []struct {
		in      string
		rw, opt bool
		want    *hakoniwa.Mount
		wantErr string
	}{
		{in: "/usr", want: bind("/usr", "/usr", false, false)},
		{in: "/usr", rw: true, want: bind("/usr", "/usr", true, false)},
		{in: "/usr", opt: true, want: bind("/usr", "/usr", false, true)},
		{in: "/usr", rw: true, opt: true, want: bind("/usr", "/usr", true, true)},
		{in: "/usr:/opt/usr", want: bind("/usr", "/opt/usr", false, false)},
		{in: "/srv/data:/data", rw: true, want: bind("/srv/data", "/data", true, false)},
		{in: "/usr:", want: bind("/usr", "/usr", false, false)},
		{in: "/dev/null:/dev/null", rw: true, want: bind("/dev/null", "/dev/null", true, false)},
		{in: "/", want: bind("/", "/", false, false)},
		{in: "/a b:/c d", want: bind("/a b", "/c d", false, false)},

		{in: "", wantErr: "SRC[:DST]"},
		{in: ":", wantErr: "SRC[:DST]"},
		{in: ":/usr", wantErr: "SRC[:DST]"},
		{in: "usr", wantErr: "absolute"},
		{in: "./usr", wantErr: "absolute"},
		{in: "usr:/usr", wantErr: "absolute"},
		{in: "/usr:usr", wantErr: "absolute"},
		{in: "~/x", wantErr: "absolute"},
	}
	for _, tt := range tests {
		got, err := bindParser(tt.rw, tt.opt)(tt.in)
		checkMount(t, "bindParser", tt.in, got, err, tt.want, tt.wantErr)
	}
}

func TestTmpfsParse(t *testing.T) {
	tmpfs := func(dst, opts string) *hakoniwa.Mount {
		return &hakoniwa.Mount{Kind: hakoniwa.KindTmpfs, Target: dst, Options: opts}
	}
	tests := []struct {
		in      string
		want    *hakoniwa.Mount
		wantErr string
	}{
		{"/tmp", tmpfs("/tmp", ""), ""},
		{"/tmp:", tmpfs("/tmp", ""), ""},
		{"/tmp:size=64M", tmpfs("/tmp", "size=64M"), ""},
		{"/tmp:size=64M,mode=1777", tmpfs("/tmp", "size=64M,mode=1777"), ""},
		{"/run/user/1000:mode=700", tmpfs("/run/user/1000", "mode=700"), ""},

		{"", nil, "absolute"},
		{"tmp", nil, "absolute"},
		{"tmp:size=1M", nil, "absolute"},
		{":size=1M", nil, "absolute"},
	}
	for _, tt := range tests {
		got, err := parseTmpfs(tt.in)
		checkMount(t, "parseTmpfs", tt.in, got, err, tt.want, tt.wantErr)
	}
}

func TestDirParse(t *testing.T) {
	dir := func(dst string, mode uint32) *hakoniwa.Mount {
		return &hakoniwa.Mount{Kind: hakoniwa.KindDir, Target: dst, Mode: mode}
	}
	tests := []struct {
		in      string
		want    *hakoniwa.Mount
		wantErr string
	}{
		{"/d", dir("/d", 0o700), ""}, // 0700 by default, as in hakoniwa
		{"/d:755", dir("/d", 0o755), ""},
		{"/d:0755", dir("/d", 0o755), ""},
		{"/d:1777", dir("/d", 0o1777), ""},
		{"/d:7777", dir("/d", 0o7777), ""},
		{"/d:1", dir("/d", 0o1), ""},
		{"/a/b/c:700", dir("/a/b/c", 0o700), ""},

		{"/d:0", nil, "mode 0"},
		{"/d:000", nil, "mode 0"},
		{"/d:", nil, "bad mode"},
		{"/d:8", nil, "bad mode"},
		{"/d:789", nil, "bad mode"},
		{"/d:rwx", nil, "bad mode"},
		{"/d:-1", nil, "bad mode"},
		{"/d:+755", nil, "bad mode"},
		{"/d:0o755", nil, "bad mode"},
		{"/d:10000", nil, "bad mode"},
		{"/d:77777777777", nil, "bad mode"},
		{"/d:755:x", nil, "bad mode"},
		{"", nil, "absolute"},
		{"d", nil, "absolute"},
		{"d:755", nil, "absolute"},
	}
	for _, tt := range tests {
		got, err := parseDir(tt.in)
		checkMount(t, "parseDir", tt.in, got, err, tt.want, tt.wantErr)
	}
}

func TestSymlinkParse(t *testing.T) {
	link := func(target, path string) *hakoniwa.Mount {
		return &hakoniwa.Mount{Kind: hakoniwa.KindSymlink, Link: target, Target: path}
	}
	tests := []struct {
		in      string
		want    *hakoniwa.Mount
		wantErr string
	}{
		{"/usr/bin/python3:/bin/python", link("/usr/bin/python3", "/bin/python"), ""},
		{"python3:/usr/bin/python", link("python3", "/usr/bin/python"), ""},
		{"../lib:/lib64", link("../lib", "/lib64"), ""},
		{"/proc/self/fd:/dev/fd", link("/proc/self/fd", "/dev/fd"), ""},

		{"", nil, "TARGET:LINK"},
		{"/a", nil, "TARGET:LINK"},
		{":/a", nil, "TARGET:LINK"},
		{"/a:", nil, "TARGET:LINK"},
		{"/a:b", nil, "absolute"},
		{"/a:b/c", nil, "absolute"},
	}
	for _, tt := range tests {
		got, err := parseSymlink(tt.in)
		checkMount(t, "parseSymlink", tt.in, got, err, tt.want, tt.wantErr)
	}
}

func TestFileParse(t *testing.T) {
	file := func(dst, contents string) *hakoniwa.Mount {
		return &hakoniwa.Mount{Kind: hakoniwa.KindFile, Target: dst, Contents: []byte(contents)}
	}
	tests := []struct {
		in      string
		want    *hakoniwa.Mount
		wantErr string
	}{
		{"/etc/motd:hello", file("/etc/motd", "hello"), ""},
		{"/etc/empty:", file("/etc/empty", ""), ""},
		{"/etc/x:a:b:c", file("/etc/x", "a:b:c"), ""},
		{"/etc/url:http://example.com:8080/", file("/etc/url", "http://example.com:8080/"), ""},
		{"/etc/passwd:root:x:0:0::/root:/bin/sh\n", file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"), ""},
		{"/etc/c::", file("/etc/c", ":"), ""},
		{"/x:multi\nline\ttext ☃", file("/x", "multi\nline\ttext ☃"), ""},

		{"", nil, "DST:CONTENTS"},
		{"/etc/motd", nil, "DST:CONTENTS"},
		{"etc/motd:hello", nil, "absolute"},
		{":hello", nil, "absolute"},
	}
	for _, tt := range tests {
		got, err := parseFile(tt.in)
		checkMount(t, "parseFile", tt.in, got, err, tt.want, tt.wantErr)
	}
}

// TestFlagMountOrder checks that mount flags of different kinds share one
// list in command-line order, and that a bad value adds nothing.
func TestFlagMountOrder(t *testing.T) {
	var all mountFlags
	ro := &mountValue{all: &all, parse: bindParser(false, false)}
	rw := &mountValue{all: &all, parse: bindParser(true, false)}
	tmp := &mountValue{all: &all, parse: parseTmpfs}
	file := &mountValue{all: &all, parse: parseFile}
	steps := []struct {
		v  *mountValue
		s  string
		ok bool
	}{
		{tmp, "/tmp", true},
		{ro, "/usr", true},
		{ro, "relative", false},
		{file, "/tmp/x:a:b", true},
		{rw, "/srv:/data", true},
		{tmp, "tmp", false},
		{ro, "/usr:/usr2", true},
	}
	for i, s := range steps {
		err := s.v.Set(s.s)
		if (err == nil) != s.ok {
			t.Errorf("step %d, %q: error %v, want ok=%v", i, s.s, err, s.ok)
		}
	}
	want := []hakoniwa.Mount{
		{Kind: hakoniwa.KindTmpfs, Target: "/tmp"},
		{Kind: hakoniwa.KindBind, Source: "/usr", Target: "/usr"},
		{Kind: hakoniwa.KindFile, Target: "/tmp/x", Contents: []byte("a:b")},
		{Kind: hakoniwa.KindBind, Source: "/srv", Target: "/data", RW: true},
		{Kind: hakoniwa.KindBind, Source: "/usr", Target: "/usr2"},
	}
	if !reflect.DeepEqual(all.list, want) {
		t.Errorf("mounts in order:\n got %+v\nwant %+v", all.list, want)
	}
	if ro.Type() != "string" || ro.String() != "" {
		t.Errorf("Type() = %q, String() = %q", ro.Type(), ro.String())
	}
}
