package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var allLimits = []Limit{
	{"as", 1 << 30}, {"core", 0}, {"cpu", 2}, {"fsize", 1 << 20},
	{"nofile", 64}, {"nproc", 16}, {"stack", 8 << 20}, {"walltime", 5},
	{"memory", 256 << 20}, {"memory_swap", 512 << 20}, {"pids", 64}, {"cpus", 0.5},
}

// TestEveryKey1 loads a file that sets every 1.x key this version accepts.
func TestEveryKey1(t *testing.T) {
	p, err := Load("testdata/every1.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Files:  []string{"testdata/every1.toml"},
		Format: Format1,
		Namespaces: []Namespace{
			{"cgroup", true}, {"ipc", false}, {"network", true}, {"uts", false},
		},
		Mounts: []Mount{
			{Source: "/usr"},
			{Source: "/srv/data", Destination: "/data", RW: true},
			{Source: "/lib64", Optional: true},
			{Type: "tmpfs", Destination: "/tmp", Options: "size=64M,mode=1777"},
			{Type: "tmpfs", Destination: "/run", RW: true},
			{Type: "devfs", Destination: "/dev"},
			{Type: "proc", Destination: "/proc"},
		},
		Filesystem: &Filesystem{
			Files: []File{
				{"/etc/hosts", "127.0.0.1\tlocalhost\n"},
				{"/etc/empty", ""},
			},
			Dirs:     []Dir{{"/work", "0755"}, {"/d", ""}},
			Symlinks: []Symlink{{Original: "usr/bin", Link: "/bin"}},
		},
		Envs: []Env{
			{Name: "LANG"}, {Name: "HOME", Value: ptr("/tmp")}, {Name: "EMPTY", Value: ptr("")},
		},
		Network: &Network{Mode: "host"},
		Landlock: &Landlock{Resources: []LandlockResource{
			{"fs", true}, {"tcp.bind", true}, {"tcp.connect", true},
		}},
		UIDMaps:  []IDMap{{ContainerID: 0}},
		GIDMaps:  []IDMap{{ContainerID: 100}},
		Hostname: ptr("judge"),
		Limits:   allLimits,
		Seccomp:  &Seccomp{Path: "unconfined"},
		Command:  &Command{Cmdline: []string{"/bin/sh", "-c", "echo hi"}, Cwd: "/work"},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	shares := map[string]bool{"cgroup": true, "ipc": false, "network": true, "uts": false}
	if got := p.Shares(); !reflect.DeepEqual(got, shares) {
		t.Errorf("Shares() = %v, want %v", got, shares)
	}
}

// TestEveryKey05 loads a 0.5 policy that sets every key, and checks how
// it converts to the 1.x schema.
func TestEveryKey05(t *testing.T) {
	p, err := Load("testdata/every05.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Files:      []string{"testdata/every05.toml"},
		Format:     Format05,
		Namespaces: []Namespace{{"network", true}, {"uts", false}},
		UIDMaps:    []IDMap{{ContainerID: 0}},
		GIDMaps:    []IDMap{{ContainerID: 100}},
		Hostname:   ptr("judge"),
		Mounts: []Mount{
			{Source: "/usr"},
			{Source: "/lib64", Optional: true},
			{Source: "/srv/data", Destination: "/data", RW: true},
			{Type: "tmpfs", Destination: "/tmp"},
			{Type: "tmpfs", Destination: "/ro", Options: "ro"},
			{Source: "/etc"},
		},
		Filesystem: &Filesystem{Files: []File{{"/etc/motd", "hello\n"}, {"/etc/empty", ""}}},
		// [env] comes out sorted by name.
		Envs: []Env{
			{Name: "EMPTY", Value: ptr("")}, {Name: "LANG", Value: ptr("C.UTF-8")},
			{Name: "TERM", Value: ptr("xterm")}, {Name: "lower.dot", Value: ptr("x")},
		},
		// [limits] comes out in the order of LimitTypes, not the file's.
		Limits: allLimits,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %s\nwant %s", dump(p), dump(want))
	}
	var types []string
	for _, l := range p.Limits {
		types = append(types, l.Type)
	}
	if !reflect.DeepEqual(types, LimitTypes) {
		t.Errorf("limit order %v, want LimitTypes %v", types, LimitTypes)
	}
}

// TestKeys1 parses one 1.x key at a time, in the ways TOML can write it.
func TestKeys1(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	tests := []struct {
		name string
		text string
		want Policy
	}{
		{"empty", "", Policy{}},
		{"comment only", "# nothing\n", Policy{}},
		{"empty include list", `"@include" = []`, Policy{}},
		{"namespace share defaults to false", `namespaces = [{ type = "ipc" }]`,
			Policy{Namespaces: []Namespace{{"ipc", false}}}},
		{"namespaces as [[tables]]", "[[namespaces]]\ntype = \"uts\"\nshare = true\n[[namespaces]]\ntype = \"cgroup\"\n",
			Policy{Namespaces: []Namespace{{"uts", true}, {"cgroup", false}}}},
		{"bind", `mounts = [{ source = "/usr" }]`, Policy{Mounts: []Mount{{Source: "/usr"}}}},
		{"bind elsewhere rw", `mounts = [{ source = "/srv", destination = "/data", rw = true }]`,
			Policy{Mounts: []Mount{{Source: "/srv", Destination: "/data", RW: true}}}},
		{"explicit empty type", `mounts = [{ source = "/a", type = "", rw = false, optional = false }]`,
			Policy{Mounts: []Mount{{Source: "/a"}}}},
		{"tmpfs with options", `mounts = [{ type = "tmpfs", destination = "/tmp", options = "size=1M" }]`,
			Policy{Mounts: []Mount{{Type: "tmpfs", Destination: "/tmp", Options: "size=1M"}}}},
		{"mounts as [[tables]], order kept", "[[mounts]]\nsource = \"/z\"\n[[mounts]]\ntype = \"proc\"\ndestination = \"/proc\"\n[[mounts]]\nsource = \"/a\"\n",
			Policy{Mounts: []Mount{{Source: "/z"}, {Type: "proc", Destination: "/proc"}, {Source: "/a"}}}},
		{"filesystem dotted", `filesystem.dirs = [{ destination = "/x", mode = "700" }]`,
			Policy{Filesystem: &Filesystem{Dirs: []Dir{{"/x", "700"}}}}},
		{"filesystem [[tables]]", "[[filesystem.symlinks]]\noriginal = \"/a\"\nlink = \"/b\"\n[[filesystem.files]]\ndestination = \"/f\"\ncontents = '''\nraw\\n'''\n",
			Policy{Filesystem: &Filesystem{Symlinks: []Symlink{{"/a", "/b"}}, Files: []File{{"/f", `raw\n`}}}}},
		{"empty filesystem table", "[filesystem]\n", Policy{Filesystem: &Filesystem{}}},
		{"env without value", `envs = [{ name = "TERM" }]`, Policy{Envs: []Env{{Name: "TERM"}}}},
		{"env with empty value", `envs = [{ name = "X", value = "" }]`, Policy{Envs: []Env{{Name: "X", Value: ptr("")}}}},
		{"network none", `network = { mode = "none" }`, Policy{Network: &Network{Mode: "none"}}},
		{"network loopback", "[network]\nmode = \"loopback\"\n", Policy{Network: &Network{Mode: "loopback"}}},
		{"network host", `network.mode = "host"`, Policy{Network: &Network{Mode: "host"}}},
		{"rootfs and rootdir", "rootfs = \"/\"\nrootdir = { path = \"/srv/root\", rw = true }\n", Policy{Rootfs: ptr("/"), Rootdir: &Rootdir{Path: "/srv/root", RW: true}}},
		{"network pasta, all keys", `network = { mode = "pasta", options = ["-m", "1500"], dns = ["192.0.2.53"], publish = ["8080:80"], allow_connect = ["192.0.2.0/24:443", "db.example"] }`,
			Policy{Network: &Network{Mode: "pasta", Options: []string{"-m", "1500"}, DNS: []string{"192.0.2.53"}, Publish: []string{"8080:80"}, AllowConnect: []string{"192.0.2.0/24:443", "db.example"}}}},
		{"network loopback, network unshared", "namespaces = [{ type = \"network\" }]\nnetwork = { mode = \"loopback\" }\n",
			Policy{Namespaces: []Namespace{{"network", false}}, Network: &Network{Mode: "loopback"}}},
		{"landlock unrestricted", `landlock = { resources = [{ type = "fs", unrestrict = true }] }`,
			Policy{Landlock: &Landlock{Resources: []LandlockResource{{"fs", true}}}}},
		{"uidmap of the caller", fmt.Sprintf("uidmaps = [{ container_id = 0, host_id = %d, count = 1 }]", uid),
			Policy{UIDMaps: []IDMap{{ContainerID: 0, HostID: ptr(uint32(uid)), Count: ptr(uint32(1))}}}},
		{"gidmap of the caller", fmt.Sprintf("gidmaps = [{ container_id = 4294967294, host_id = %d }]", gid),
			Policy{GIDMaps: []IDMap{{ContainerID: 4294967294, HostID: ptr(uint32(gid))}}}},
		{"hostname", `hostname = "h"`, Policy{Hostname: ptr("h")}},
		{"hostname of 64 bytes", `hostname = "` + strings.Repeat("h", 64) + `"`, Policy{Hostname: ptr(strings.Repeat("h", 64))}},
		{"hostname literal string", `hostname = 'a\b'`, Policy{Hostname: ptr(`a\b`)}},
		{"limits as [[tables]]", "[[limits]]\ntype = \"nofile\"\nvalue = 10\n", Policy{Limits: []Limit{{"nofile", 10}}}},
		{"limits order kept and repeats kept", `limits = [{ type = "cpu", value = 3 }, { type = "as", value = 9223372036854775807 }, { type = "cpu", value = 1 }]`,
			Policy{Limits: []Limit{{"cpu", 3}, {"as", 9223372036854775807}, {"cpu", 1}}}},
		{"largest walltime", `limits = [{ type = "walltime", value = 1000000000 }]`, Policy{Limits: []Limit{{"walltime", 1e9}}}},
		{"seccomp unconfined", `seccomp = { path = "unconfined" }`, Policy{Seccomp: &Seccomp{Path: "unconfined"}}},
		{"command", "[command]\ncmdline = [\"/bin/true\"]\n", Policy{Command: &Command{Cmdline: []string{"/bin/true"}}}},
		{"command with later empty arg", `command = { cmdline = ["/bin/echo", ""], cwd = "/" }`,
			Policy{Command: &Command{Cmdline: []string{"/bin/echo", ""}, Cwd: "/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, "t.toml", tt.text)
			tt.want.Files = []string{"t.toml"}
			tt.want.Format = Format1
			if !reflect.DeepEqual(p, &tt.want) {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.text, dump(p), dump(&tt.want))
			}
		})
	}
}

// TestKeys05 parses 0.5 policies and checks their conversion to the 1.x
// schema.
func TestKeys05(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Policy
	}{
		{"share_net true", "share_net = true", Policy{Namespaces: []Namespace{{"network", true}}}},
		{"share_net false", "share_net = false", Policy{Namespaces: []Namespace{{"network", false}}}},
		{"share_uts", "share_uts = true", Policy{Namespaces: []Namespace{{"uts", true}}}},
		{"network before uts", "share_uts = false\nshare_net = false", Policy{Namespaces: []Namespace{{"network", false}, {"uts", false}}}},
		{"uid", "uid = 1000", Policy{UIDMaps: []IDMap{{ContainerID: 1000}}}},
		{"largest gid", "gid = 4294967294", Policy{GIDMaps: []IDMap{{ContainerID: 4294967294}}}},
		{"hostname with share_uts false", "share_uts = false\nhostname = \"h\"",
			Policy{Namespaces: []Namespace{{"uts", false}}, Hostname: ptr("h")}},
		{"bind at its own path loses destination", `mounts = [{ source = "/usr", target = "/usr" }]`,
			Policy{Mounts: []Mount{{Source: "/usr"}}}},
		{"bind elsewhere keeps destination", `mounts = [{ source = "/srv", target = "/data", rw = true }]`,
			Policy{Mounts: []Mount{{Source: "/srv", Destination: "/data", RW: true}}}},
		{"bind without target", `mounts = [{ source = "/srv", fstype = "" }]`,
			Policy{Mounts: []Mount{{Source: "/srv"}}}},
		{"optional bind", `mounts = [{ source = "/lib64", target = "/lib64", optional = true }]`,
			Policy{Mounts: []Mount{{Source: "/lib64", Optional: true}}}},
		{"tmpfs rw", `mounts = [{ fstype = "tmpfs", target = "/tmp", rw = true }]`,
			Policy{Mounts: []Mount{{Type: "tmpfs", Destination: "/tmp"}}}},
		{"tmpfs read-only", `mounts = [{ fstype = "tmpfs", target = "/tmp" }]`,
			Policy{Mounts: []Mount{{Type: "tmpfs", Destination: "/tmp", Options: "ro"}}}},
		{"tmpfs rw = false", `mounts = [{ fstype = "tmpfs", target = "/tmp", rw = false }]`,
			Policy{Mounts: []Mount{{Type: "tmpfs", Destination: "/tmp", Options: "ro"}}}},
		{"mounts as [[tables]]", "[[mounts]]\nsource = \"/a\"\ntarget = \"/b\"\n[[mounts]]\nfstype = \"tmpfs\"\ntarget = \"/t\"\nrw = true\n",
			Policy{Mounts: []Mount{{Source: "/a", Destination: "/b"}, {Type: "tmpfs", Destination: "/t"}}}},
		{"files", "files = [{ target = \"/x\", contents = \"\"\"\na\nb\"\"\" }]",
			Policy{Filesystem: &Filesystem{Files: []File{{"/x", "a\nb"}}}}},
		{"env sorted", "[env]\nb = \"2\"\nA = \"1\"\n_ = \"\"\n",
			Policy{Envs: []Env{{Name: "A", Value: ptr("1")}, {Name: "_", Value: ptr("")}, {Name: "b", Value: ptr("2")}}}},
		{"limits in LimitTypes order", "[limits]\nwalltime = 1\nas = 2\nnproc = 3\n",
			Policy{Limits: []Limit{{"as", 2}, {"nproc", 3}, {"walltime", 1}}}},
		{"dotted limits", "limits.cpu = 3", Policy{Limits: []Limit{{"cpu", 3}}}},
		{"inline limits", "limits = { nofile = 10, nproc = 2 }", Policy{Limits: []Limit{{"nofile", 10}, {"nproc", 2}}}},
		{"largest limit", "[limits]\nas = 9223372036854775807", Policy{Limits: []Limit{{"as", 9223372036854775807}}}},
		{"largest walltime", "[limits]\nwalltime = 1000000000", Policy{Limits: []Limit{{"walltime", 1e9}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, "t.toml", tt.text)
			tt.want.Files = []string{"t.toml"}
			tt.want.Format = Format05
			if !reflect.DeepEqual(p, &tt.want) {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.text, dump(p), dump(&tt.want))
			}
		})
	}
}

// TestFormatDetection checks which format a file is read as, by its keys.
func TestFormatDetection(t *testing.T) {
	tests := []struct {
		text string
		want Format
	}{
		{"", Format1},
		{`hostname = "h"`, Format1},
		{`mounts = [{ source = "/a" }]`, Format1},
		{`mounts = [{ source = "/a", target = "/a" }]`, Format05},
		{`mounts = [{ fstype = "tmpfs", target = "/t" }]`, Format05},
		{`mounts = [{ type = "tmpfs", destination = "/t" }]`, Format1},
		{"[limits]\ncpu = 1", Format05},
		{"limits = []", Format1},
		{`limits = [{ type = "cpu", value = 1 }]`, Format1},
		{"[env]\n", Format05},
		{"envs = []", Format1},
		{"uid = 0", Format05},
		{"uidmaps = [{ container_id = 0 }]", Format1},
		{`seccomp = { path = "unconfined" }`, Format1},
		{`command = { cmdline = ["x"] }`, Format1},
	}
	for _, tt := range tests {
		p := mustParse(t, "t.toml", tt.text)
		if p.Format != tt.want {
			t.Errorf("Parse(%q).Format = %v, want %v", tt.text, p.Format, tt.want)
		}
	}
	for f, s := range map[Format]string{Format1: "1.x", Format05: "0.5", 0: "unknown", 7: "unknown"} {
		if f.String() != s {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), f.String(), s)
		}
	}
}

func TestDefault(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LANGUAGE", `en "GB" \ x`)
	t.Setenv("LC_ALL", "")
	t.Setenv("TERM", "xterm-256color")
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Files:  []string{DefaultName},
		Format: Format05,
		Mounts: []Mount{
			{Source: "/bin"}, {Source: "/lib"}, {Source: "/lib64", Optional: true}, {Source: "/usr"},
			{Source: "/dev/null", RW: true}, {Source: "/dev/random", RW: true},
			{Source: "/dev/urandom", RW: true}, {Source: "/dev/zero", RW: true},
		},
		Envs: []Env{
			{Name: "LANG", Value: ptr("C.UTF-8")}, {Name: "LANGUAGE", Value: ptr(`en "GB" \ x`)},
			{Name: "LC_ALL", Value: ptr("")}, {Name: "TERM", Value: ptr("xterm-256color")},
		},
	}
	if DefaultName != "KISS-policy.toml" {
		t.Errorf("DefaultName = %q", DefaultName)
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Default():\n got %s\nwant %s", dump(p), dump(want))
	}
}

func TestDefaultText(t *testing.T) {
	onDisk, err := os.ReadFile(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	a := DefaultText()
	if string(a) != string(onDisk) {
		t.Errorf("DefaultText() is not %s", DefaultName)
	}
	if !strings.Contains(string(a), `{{ os_env "LANG" }}`) {
		t.Errorf("DefaultText is not the template source:\n%s", a)
	}
	a[0] ^= 0xff
	if b := DefaultText(); b[0] == a[0] {
		t.Error("DefaultText returns a shared slice")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"good.toml": "hostname = \"h\"\nmounts = [{ source = \"/usr\" }]\n",
		"bad.toml":  "hostname = \"h\"\n[limits]\nrss = 1\n",
		"tmpl.toml": "x = {{ nope }}",
	})
	good := filepath.Join(dir, "good.toml")
	p, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{Files: []string{good}, Format: Format1, Hostname: ptr("h"), Mounts: []Mount{{Source: "/usr"}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Load = %s, want %s", dump(p), dump(want))
	}

	bad := filepath.Join(dir, "bad.toml")
	_, err = Load(bad)
	wantOne(t, entries(t, err), place{bad, 3, 1, "limits.rss"}, "unknown key")

	tmpl := filepath.Join(dir, "tmpl.toml")
	_, err = Load(tmpl)
	wantOne(t, entries(t, err), place{tmpl, 1, 1, "template"}, `function "nope" not defined`)

	missing := filepath.Join(dir, "missing.toml")
	p, err = Load(missing)
	if err == nil || p != nil {
		t.Fatalf("Load(missing) = %v, %v", p, err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) error %q is not ErrNotExist naming the file", err)
	}
	if _, err = Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(dir) error = %v", err)
	}
}

func TestMountTarget(t *testing.T) {
	for _, tt := range []struct {
		m    Mount
		want string
	}{
		{Mount{Source: "/a"}, "/a"},
		{Mount{Source: "/a", Destination: "/b"}, "/b"},
		{Mount{Type: "tmpfs", Destination: "/t"}, "/t"},
		{Mount{}, ""},
	} {
		if got := tt.m.Target(); got != tt.want {
			t.Errorf("%+v.Target() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestShares(t *testing.T) {
	tests := []struct {
		p    Policy
		want map[string]bool
	}{
		{Policy{}, map[string]bool{}},
		{Policy{Namespaces: []Namespace{{"uts", true}, {"uts", false}}}, map[string]bool{"uts": false}},
		{Policy{Namespaces: []Namespace{{"ipc", true}}, Network: &Network{Mode: "host"}}, map[string]bool{"ipc": true, "network": true}},
		{Policy{Network: &Network{Mode: "loopback"}}, map[string]bool{}},
	}
	for _, tt := range tests {
		if got := tt.p.Shares(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Shares() of %s = %v, want %v", dump(&tt.p), got, tt.want)
		}
	}
}
