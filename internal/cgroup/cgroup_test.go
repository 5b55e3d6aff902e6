package cgroup

import (
	"errors"
	"math"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
	"golang.org/x/sys/unix"
)

// testPid is the pid of the fake hosts, the one in run-PID-XXXXXXXX.
const testPid = 4242

var runNameRE = regexp.MustCompile(`^hakoniwa-run-4242-[0-9a-f]{8}$`)

// v2All are the controllers of a typical cgroup v2 host's top cgroup.
var v2All = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

const (
	mib = uint64(1) << 20
	top = "/sys/fs/cgroup"
)

// resetSwept forgets which parents this process swept: the tests' fake
// hosts all use the same paths.
func resetSwept(t *testing.T) {
	clear := func() {
		swept.Range(func(k, _ any) bool { swept.Delete(k); return true })
	}
	clear()
	t.Cleanup(clear)
}

func v2Mounts() []mount { return []mount{{dir: top, root: "/", v2: true}} }

// hybridMounts is systemd's hybrid layout: an empty cgroup2 at
// /sys/fs/cgroup/unified and a v1 hierarchy for each controller.
func hybridMounts(more ...mount) []mount {
	ms := []mount{
		{dir: top + "/unified", root: "/", v2: true},
		{dir: top + "/memory", root: "/", controllers: []string{"memory"}},
		{dir: top + "/pids", root: "/", controllers: []string{"pids"}},
		{dir: top + "/cpu", root: "/", controllers: []string{"cpu"}},
		{dir: top + "/cpuacct", root: "/", controllers: []string{"cpuacct"}},
	}
	return append(ms, more...)
}

var blkioMount = mount{dir: top + "/blkio", root: "/", controllers: []string{"blkio"}}

// newHost is a fake host, as root in the top cgroup of every hierarchy,
// with PID 1 systemd and no D-Bus (bus nil: no test reaches a real bus);
// the v2 tops have rootCtl and enable nothing yet.
func newHost(t *testing.T, mounts []mount, rootCtl ...string) (*host, *fakeFS) {
	resetSwept(t)
	f := newFakeFS(t, mounts, rootCtl...)
	self := map[string]string{"": "/"}
	for _, m := range mounts {
		for _, c := range m.controllers {
			self[c] = "/"
		}
	}
	return &host{fs: f, mounts: mounts, self: self, euid: 0, pid: testPid, systemd: true, bus: nil}, f
}

// newOK makes a group and closes it at the end of the test.
func newOK(t *testing.T, h *host, cfg Config) *Group {
	t.Helper()
	g, err := newGroup(h, cfg)
	if err != nil {
		t.Fatalf("newGroup: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// collect returns a Log function and what it was told.
func collect() (func(string), *[]string) {
	var msgs []string
	return func(s string) { msgs = append(msgs, s) }, &msgs
}

func anyContains(msgs []string, sub string) bool {
	return slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, sub) })
}

func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// isLocked says whether someone holds a flock on the directory.
func isLocked(t *testing.T, f *fakeFS, dir string) bool {
	t.Helper()
	fd, err := unix.Open(f.real(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil && err != unix.EWOULDBLOCK {
		t.Fatal(err)
	}
	return err != nil
}

// lock holds a flock on dir until the end of the test, or until the
// returned function is called.
func lock(t *testing.T, f *fakeFS, dir string, how int) func() {
	t.Helper()
	fd, err := unix.Open(f.real(dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, how|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			unix.Close(fd)
			done = true
		}
	}
	t.Cleanup(release)
	return release
}

// sameFile says whether fd is the file at p of the fake.
func sameFile(t *testing.T, f *fakeFS, fd int, p string) bool {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	if err := unix.Stat(f.real(p), &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []mount
	}{{
		name: "hybrid: unified, one hierarchy a controller, name=systemd ignored",
		in: `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu
31 25 0:29 / /sys/fs/cgroup/cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuacct
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
34 25 0:32 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,blkio
40 28 0:40 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
`,
		want: []mount{
			{dir: "/sys/fs/cgroup/unified", root: "/", v2: true},
			{dir: "/sys/fs/cgroup/cpu", root: "/", controllers: []string{"cpu"}},
			{dir: "/sys/fs/cgroup/cpuacct", root: "/", controllers: []string{"cpuacct"}},
			{dir: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}},
			{dir: "/sys/fs/cgroup/pids", root: "/", controllers: []string{"pids"}},
			{dir: "/sys/fs/cgroup/blkio", root: "/", controllers: []string{"blkio"}},
		},
	}, {
		name: "co-mounted cpu,cpuacct and net_cls,net_prio",
		in: `30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
`,
		want: []mount{
			{dir: "/sys/fs/cgroup/cpu,cpuacct", root: "/", controllers: []string{"cpu", "cpuacct"}},
			{dir: "/sys/fs/cgroup/net_cls,net_prio", root: "/", controllers: []string{"net_cls", "net_prio"}},
		},
	}, {
		name: "pure v2 in a container, rooted below the top, no optional fields",
		in:   "1234 1200 0:26 /docker/0123abcd /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n",
		want: []mount{{dir: "/sys/fs/cgroup", root: "/docker/0123abcd", v2: true}},
	}, {
		name: "escaped mount point and root",
		in:   `50 25 0:33 /my\040group /mnt/my\040cgroups\134x rw,relatime shared:20 - cgroup2 cgroup2 rw` + "\n",
		want: []mount{{dir: `/mnt/my cgroups\x`, root: "/my group", v2: true}},
	}, {
		name: "malformed lines are skipped",
		in:   "garbage\n1 2 3 - cgroup2\n26 25 0:24 / /sys/fs/cgroup rw shared:10 - cgroup2 cgroup2 rw\n",
		want: []mount{{dir: "/sys/fs/cgroup", root: "/", v2: true}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseMountinfo([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMountinfo:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:       "/plain",
		`/a\040b`:      "/a b",
		`/a\011b\012c`: "/a\tb\nc",
		`/a\134b`:      `/a\b`,
		`/end\040`:     "/end ",
		`/short\04`:    `/short\04`,
		`/not\089`:     `/not\089`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{{
		name: "pure v2",
		in:   "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n",
		want: map[string]string{"": "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope"},
	}, {
		name: "hybrid, co-mounted cpu,cpuacct, named hierarchy",
		in: `12:pids:/user.slice/user-1000.slice/session-3.scope
11:memory:/user.slice/user-1000.slice/session-3.scope
10:blkio:/user.slice
5:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-3.scope
0::/user.slice/user-1000.slice/session-3.scope
`,
		want: map[string]string{
			"pids":         "/user.slice/user-1000.slice/session-3.scope",
			"memory":       "/user.slice/user-1000.slice/session-3.scope",
			"blkio":        "/user.slice",
			"cpu":          "/user.slice",
			"cpuacct":      "/user.slice",
			"name=systemd": "/user.slice/user-1000.slice/session-3.scope",
			"":             "/user.slice/user-1000.slice/session-3.scope",
		},
	}, {
		name: "a colon in the path, and a malformed line",
		in:   "junk\n0::/odd:name\n",
		want: map[string]string{"": "/odd:name"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseProcCgroup([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseProcCgroup:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestFSPath(t *testing.T) {
	atTop := mount{dir: top, root: "/", v2: true}
	inBox := mount{dir: top, root: "/docker/abc", v2: true}
	tests := []struct {
		m       mount
		cg      string
		want    string
		wantErr bool
	}{
		{atTop, "/", top, false},
		{atTop, "/hakoniwa", top + "/hakoniwa", false},
		{inBox, "/docker/abc", top, false},
		{inBox, "/docker/abc/x/y", top + "/x/y", false},
		{inBox, "/docker/abcd", "", true},
		{inBox, "/hakoniwa", "", true},
	}
	for _, tt := range tests {
		got, err := fsPath(tt.m, tt.cg)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("fsPath(root %s, %s) = %q, %v; want %q, error %v", tt.m.root, tt.cg, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestChooseVersion(t *testing.T) {
	mem := Limits{Memory: 256 * mib}
	tests := []struct {
		name    string
		mounts  []mount
		rootCtl []string
		want    int
		l       Limits
		version int
		err     []string // what the error must say, if one is wanted
	}{
		{name: "pure v2 with the controllers", mounts: v2Mounts(), rootCtl: v2All, l: mem, want: 2},
		{name: "pure v2, no limits", mounts: v2Mounts(), rootCtl: v2All, want: 2},
		{name: "hybrid: v2 without controllers", mounts: hybridMounts(), l: mem, want: 1},
		{name: "hybrid, no limits", mounts: hybridMounts(), want: 1},
		{name: "hybrid, --cgroup-version 1", mounts: hybridMounts(), l: mem, version: 1, want: 1},
		{name: "pure v2, --cgroup-version 2", mounts: v2Mounts(), rootCtl: v2All, l: mem, version: 2, want: 2},
		{
			name: "hybrid, --cgroup-version 2 with --memory", mounts: hybridMounts(), l: mem, version: 2,
			err: []string{"--cgroup-version 2", "/sys/fs/cgroup/unified", "lacks the memory controller",
				"(it has none: they are bound to cgroup v1 hierarchies)"},
		},
		{
			name: "pure v2, --cgroup-version 1", mounts: v2Mounts(), rootCtl: v2All, l: mem, version: 1,
			err: []string{"--cgroup-version 1", "no cgroup v1 hierarchy of memory"},
		},
		{
			name: "v2 lacking io, --io-weight, no v1", mounts: v2Mounts(), rootCtl: []string{"cpu", "memory", "pids"},
			l:   Limits{IOWeight: 100},
			err: []string{"io controller", "--io-weight", "lacks the io controller", "no cgroup v1 hierarchy of blkio"},
		},
		{
			name: "v2 lacking io, --cgroup-version 2 --io-weight", mounts: v2Mounts(), rootCtl: []string{"memory"},
			l: Limits{IOWeight: 100}, version: 2, err: []string{"--cgroup-version 2", "lacks the io controller"},
		},
		{name: "version 3", mounts: v2Mounts(), rootCtl: v2All, l: mem, version: 3, err: []string{"--cgroup-version 3", "want 1 or 2"}},
		{
			name: "nothing mounted", l: mem,
			err: []string{"memory controller", "--memory", "no cgroup2 file system is mounted", "no cgroup v1 hierarchy of memory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHost(t, tt.mounts, tt.rootCtl...)
			got, why, err := h.chooseVersion(tt.version, tt.l)
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatalf("chooseVersion: %v", err)
			}
			if got != tt.want {
				t.Errorf("version %d (%s), want %d", got, why, tt.want)
			}
			if why == "" {
				t.Error("no reason given")
			}
		})
	}
}

// The forced-v2 error names the controller missing, and why v2 has none.
func TestChooseVersion2OnHybridNamesMissingController(t *testing.T) {
	h, _ := newHost(t, hybridMounts())
	_, _, err := h.chooseVersion(2, Limits{Memory: 256 * mib, Pids: 8})
	wantErr(t, err, "--cgroup-version 2: the cgroup v2 hierarchy at /sys/fs/cgroup/unified lacks the memory and pids controllers (it has none: they are bound to cgroup v1 hierarchies)")

	// With some controllers, but not the one needed.
	h, _ = newHost(t, v2Mounts(), "cpu", "pids")
	_, _, err = h.chooseVersion(2, Limits{Memory: 256 * mib})
	wantErr(t, err, "lacks the memory controller (bound to cgroup v1 here, or not enabled)")
	if strings.Contains(err.Error(), "it has none") {
		t.Errorf("error %q says v2 has no controllers", err)
	}
}

func TestChooseVersionNothingMountedNoLimits(t *testing.T) {
	h, _ := newHost(t, nil)
	_, _, err := h.chooseVersion(0, Limits{})
	wantErr(t, err, "no cgroup hierarchy to run in: no cgroup2 file system is mounted; and no cgroup v1 hierarchy of memory or pids is mounted")
	for _, bad := range []string{"needed needed", "by :", "of  is"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q contains %q", err, bad)
		}
	}
}

// Why v1 was chosen names what v2 lacks: here memory, to measure the run,
// not its controllers, as it has the pids the limit needs.
func TestChooseVersionWhyV1(t *testing.T) {
	ms := []mount{
		{dir: "/sys/fs/cgroup/unified", root: "/", v2: true},
		{dir: top + "/memory", root: "/", controllers: []string{"memory"}},
		{dir: top + "/pids", root: "/", controllers: []string{"pids"}},
	}
	h, _ := newHost(t, ms, "cpu", "pids")
	v, why, err := h.chooseVersion(0, Limits{Pids: 8})
	if err != nil || v != 1 {
		t.Fatalf("chooseVersion: %d, %v", v, err)
	}
	if strings.Contains(why, "has no controllers") || !strings.Contains(why, "memory") {
		t.Errorf("why: %q", why)
	}
}

func TestLimitsCheck(t *testing.T) {
	bad := []struct {
		l    Limits
		flag string
	}{
		{Limits{Memory: 1000}, "--memory"},
		{Limits{Memory: mib - 1}, "--memory"},
		{Limits{MemorySwap: 512 * mib}, "--memory-swap"},
		{Limits{Memory: 512 * mib, MemorySwap: 256 * mib}, "--memory-swap"},
		{Limits{Memory: Unlimited, MemorySwap: 512 * mib}, "--memory-swap"},
		{Limits{CPUs: -1}, "--cpus"},
		{Limits{CPUs: math.NaN()}, "--cpus"},
		{Limits{CPUs: math.Inf(1)}, "--cpus"},
		{Limits{CPUs: 0.005}, "--cpus"},
		{Limits{CPUs: 1 << 21}, "--cpus"},
		{Limits{CPUWeight: 10001}, "--cpu-weight"},
		{Limits{IOWeight: 10001}, "--io-weight"},
	}
	for _, tt := range bad {
		err := tt.l.Check()
		if err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%+v.Check() = %v, want an error naming %s", tt.l, err, tt.flag)
		}
	}
	good := []Limits{
		{},
		{Memory: mib},
		{Memory: Unlimited},
		{Memory: 256 * mib, MemorySwap: 256 * mib},
		{Memory: 256 * mib, MemorySwap: Unlimited},
		{Memory: Unlimited, MemorySwap: Unlimited},
		{Pids: Unlimited},
		{CPUs: 0.01},
		{CPUs: 64},
		{CPUWeight: 1},
		{CPUWeight: 10000},
		{IOWeight: 10000},
	}
	for _, l := range good {
		if err := l.Check(); err != nil {
			t.Errorf("%+v.Check() = %v, want nil", l, err)
		}
	}
}

func TestNewChecksLimitsFirst(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	_, err := newGroup(h, Config{Limits: Limits{CPUWeight: 20000}})
	wantErr(t, err, "--cpu-weight")
	if len(f.ops) != 0 {
		t.Errorf("ops after a bad limit: %q", f.ops)
	}
}

func TestV2AsRoot(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	log, msgs := collect()
	dbg, debug := collect()
	g := newOK(t, h, Config{
		Limits: Limits{Memory: 256 * mib, Pids: 64, CPUs: 0.5, CPUWeight: 200, IOWeight: 300},
		Log:    log, Debug: dbg,
	})
	if g.Version() != 2 {
		t.Errorf("version %d, want 2", g.Version())
	}
	if d, name := path.Split(g.Path()); d != "/hakoniwa/" || !runNameRE.MatchString(name) {
		t.Fatalf("path %q, want /hakoniwa/hakoniwa-run-%d-XXXXXXXX", g.Path(), testPid)
	}
	run := top + g.Path()
	leaf := run + "/" + leafName
	hak := top + "/hakoniwa"
	// Every write, in order: the parent, then each controller enabled top
	// down (the top's subtree_control before /hakoniwa's), then the run's
	// cgroup, then its limits, then the leaf the command is cloned into,
	// made only once the limits are there.
	want := []string{"mkdir " + hak}
	for _, c := range []string{"memory", "pids", "cpu", "io"} {
		want = append(want,
			"write "+top+"/cgroup.subtree_control +"+c,
			"write "+hak+"/cgroup.subtree_control +"+c)
	}
	want = append(want,
		"mkdir "+run,
		"write "+run+"/memory.max 268435456",
		"write "+run+"/memory.swap.max 0",
		"write "+run+"/memory.oom.group 1",
		"write "+run+"/pids.max 64",
		"write "+run+"/cpu.max 50000 100000",
		"write "+run+"/cpu.weight 200",
		"write "+run+"/io.weight default 300",
		"write "+run+"/cgroup.max.depth 8",
		"write "+run+"/cgroup.max.descendants 64",
		"mkdir "+leaf,
	)
	if !slices.Equal(f.ops, want) {
		t.Errorf("ops:\n got %q\nwant %q", f.ops, want)
	}
	for file, v := range map[string]string{
		"memory.max": "268435456", "memory.swap.max": "0", "memory.oom.group": "1", "pids.max": "64",
		"cpu.max": "50000 100000", "cpu.weight": "200", "io.weight": "default 300",
	} {
		if got := f.read(run + "/" + file); got != v {
			t.Errorf("%s = %q, want %q", file, got, v)
		}
	}
	if got := f.read(hak + "/cgroup.subtree_control"); got != "memory pids cpu io" {
		t.Errorf("/hakoniwa's subtree_control = %q", got)
	}
	// The command is cloned into the leaf; the limits are on the run's
	// cgroup above it, which the leaf's own files cannot lift.
	if !sameFile(t, f, g.CloneFD(), leaf) {
		t.Error("CloneFD is not the leaf's directory")
	}
	if sameFile(t, f, g.CloneFD(), run) {
		t.Error("CloneFD is the run's cgroup, where the limits are")
	}
	if got := f.read(leaf + "/cgroup.controllers"); got != "" {
		t.Errorf("the leaf has controllers %q: the command could set its own limits there", got)
	}
	if !isLocked(t, f, run) {
		t.Error("the run's cgroup is not locked")
	}
	if g.JoinFiles() != nil {
		t.Errorf("JoinFiles on v2: %v", g.JoinFiles())
	}
	if !anyContains(*msgs, "running as root") || !anyContains(*msgs, "made /hakoniwa/hakoniwa-run-") {
		t.Errorf("log: %q", *msgs)
	}
	if !slices.Contains(*debug, "cgroup: "+run+"/memory.max = 268435456") {
		t.Errorf("debug: %q", *debug)
	}

	// A second run finds /hakoniwa made and its controllers enabled.
	f.resetOps()
	g2 := newOK(t, h, Config{Limits: Limits{Memory: 256 * mib}})
	if g2.Path() == g.Path() {
		t.Fatalf("two runs in %s", g.Path())
	}
	run2 := top + g2.Path()
	want = []string{
		"mkdir " + run2,
		"write " + run2 + "/memory.max 268435456",
		"write " + run2 + "/memory.swap.max 0",
		"write " + run2 + "/memory.oom.group 1",
		"write " + run2 + "/cgroup.max.depth 8",
		"write " + run2 + "/cgroup.max.descendants 64",
		"mkdir " + run2 + "/" + leafName,
	}
	if !slices.Equal(f.ops, want) {
		t.Errorf("second run's ops:\n got %q\nwant %q", f.ops, want)
	}
}

func TestV2ControllersAlreadyEnabledAtTop(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		f.mustWrite(top+"/cgroup.subtree_control", "+"+c)
	}
	f.resetOps()
	newOK(t, h, Config{Limits: Limits{Pids: 10}})
	for _, op := range f.ops {
		if strings.HasPrefix(op, "write "+top+"/cgroup.subtree_control") {
			t.Errorf("wrote the top's subtree_control again: %q", op)
		}
	}
	hak := top + "/hakoniwa/cgroup.subtree_control"
	// memory for the report, then pids for the limit.
	if i, j := f.index("write "+hak+" +memory"), f.index("write "+hak+" +pids"); i < 0 || j < i {
		t.Errorf("ops: %q", f.ops)
	}
}

func TestV2MemorySwap(t *testing.T) {
	tests := []struct {
		name     string
		l        Limits
		mem, swp string
	}{
		{"no --memory-swap: no swap", Limits{Memory: 256 * mib}, "268435456", "0"},
		{"--memory-swap 512M: 256M of swap", Limits{Memory: 256 * mib, MemorySwap: 512 * mib}, "268435456", "268435456"},
		{"--memory-swap equal to --memory", Limits{Memory: 256 * mib, MemorySwap: 256 * mib}, "268435456", "0"},
		{"--memory-swap unlimited", Limits{Memory: 256 * mib, MemorySwap: Unlimited}, "268435456", "max"},
		{"--memory unlimited", Limits{Memory: Unlimited}, "max", "max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newHost(t, v2Mounts(), v2All...)
			g := newOK(t, h, Config{Limits: tt.l})
			run := top + g.Path()
			if got := f.read(run + "/memory.max"); got != tt.mem {
				t.Errorf("memory.max = %q, want %q", got, tt.mem)
			}
			if got := f.read(run + "/memory.swap.max"); got != tt.swp {
				t.Errorf("memory.swap.max = %q, want %q", got, tt.swp)
			}
		})
	}
}

// Without swap accounting memory.swap.max is missing: fine unless
// --memory-swap asks for it.
func TestV2NoSwapAccounting(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	f.noSwap = true
	g := newOK(t, h, Config{Limits: Limits{Memory: 256 * mib}})
	if got := f.read(top + g.Path() + "/memory.max"); got != "268435456" {
		t.Errorf("memory.max = %q", got)
	}

	_, err := newGroup(h, Config{Limits: Limits{Memory: 256 * mib, MemorySwap: 512 * mib}})
	wantErr(t, err, "--memory-swap", "memory.swap.max", "swap accounting is off on this host")
	if runs := f.runDirs(top + "/hakoniwa"); len(runs) != 1 || "/hakoniwa/"+runs[0] != g.Path() {
		t.Errorf("runs left: %v, want only %s", runs, g.Path())
	}
}

func TestV2NoInternalProcessRule(t *testing.T) {
	tests := []struct {
		name   string
		self   string // the caller's cgroup
		parent string
		dir    string // the parent's directory
		l      Limits
		flag   string
	}{
		{"absolute --cgroup-parent", "/", "/busy", top + "/busy", Limits{Memory: 64 * mib}, "--memory"},
		{"directory --cgroup-parent", "/", top + "/busy", top + "/busy", Limits{Pids: 8}, "--pids"},
		{"relative --cgroup-parent under the caller's own busy cgroup", "/busy", "sub", top + "/busy/sub", Limits{CPUs: 1}, "--cpus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newHost(t, v2Mounts(), v2All...)
			for _, c := range []string{"cpu", "memory", "pids"} {
				f.mustWrite(top+"/cgroup.subtree_control", "+"+c)
			}
			f.mkcg(top + "/busy")
			f.mustWrite(top+"/busy/cgroup.procs", "5000001")
			f.resetOps()
			h.self[""] = tt.self
			_, err := newGroup(h, Config{Parent: tt.parent, Limits: tt.l})
			wantErr(t, err, tt.flag, "only a cgroup without processes", "--cgroup-parent")
			if !errors.Is(err, unix.EBUSY) {
				t.Errorf("error %v is not EBUSY", err)
			}
			if runs := f.runDirs(tt.dir); len(runs) > 0 {
				t.Errorf("runs left in %s: %v", tt.dir, runs)
			}
			for _, op := range f.ops {
				if strings.Contains(op, "/hakoniwa-run-") {
					t.Errorf("op on a run cgroup: %q", op)
				}
			}
		})
	}

	t.Run("the same parent without processes", func(t *testing.T) {
		h, f := newHost(t, v2Mounts(), v2All...)
		f.mustWrite(top+"/cgroup.subtree_control", "+memory")
		f.mkcg(top + "/idle")
		g := newOK(t, h, Config{Parent: "/idle", Limits: Limits{Memory: 64 * mib}})
		if d := path.Dir(g.Path()); d != "/idle" {
			t.Errorf("path %s", g.Path())
		}
	})
}

// userScene is a systemd host: the user's manager user@1000.service and
// everything below it delegated to uid 1000, the rest root's. The user
// slice gives the user's manager the controllers userCtl.
func userScene(t *testing.T, self string, userCtl ...string) (*host, *fakeFS) {
	h, f := newHost(t, v2Mounts(), v2All...)
	all := []string{"cpu", "io", "memory", "pids"}
	for _, c := range all {
		f.mustWrite(top+"/cgroup.subtree_control", "+"+c)
	}
	us := top + "/user.slice"
	svc := us + "/user-1000.slice/user@1000.service"
	f.mkcg(us, all...)
	f.mkcg(us+"/user-1000.slice", userCtl...)
	f.mkcg(us + "/user-1000.slice/session-3.scope")
	f.mustWrite(us+"/user-1000.slice/session-3.scope/cgroup.procs", "5000001")
	f.mkcg(svc, userCtl...)
	f.mkcg(svc + "/init.scope")
	f.mustWrite(svc+"/init.scope/cgroup.procs", "5000002")
	f.mkcg(svc+"/app.slice", userCtl...)
	f.mkcg(svc + "/app.slice/x.scope")
	f.mustWrite(svc+"/app.slice/x.scope/cgroup.procs", "5000003")
	f.setWritable(top, false)
	f.setWritable(svc, true)
	f.resetOps()
	h.euid = 1000
	h.self[""] = self
	return h, f
}

const (
	userSvc   = "/user.slice/user-1000.slice/user@1000.service"
	userScope = userSvc + "/app.slice/x.scope"
	session   = "/user.slice/user-1000.slice/session-3.scope"
)

func TestV2UnprivilegedDelegated(t *testing.T) {
	h, f := userScene(t, userScope, "cpu", "io", "memory", "pids")
	log, msgs := collect()
	g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib, Pids: 32}, Log: log})
	if d, name := path.Split(g.Path()); d != userSvc+"/hakoniwa/" || !runNameRE.MatchString(name) {
		t.Fatalf("path %q, want %s/hakoniwa/hakoniwa-run-...", g.Path(), userSvc)
	}
	if got := f.read(top + g.Path() + "/memory.max"); got != "67108864" {
		t.Errorf("memory.max = %q", got)
	}
	if !anyContains(*msgs, "delegated to uid 1000") {
		t.Errorf("log: %q", *msgs)
	}
	for _, op := range f.ops {
		if !strings.Contains(op, top+userSvc+"/") || strings.Contains(op, ": ") {
			t.Errorf("op outside the delegated subtree, or failed: %q", op)
		}
	}
}

// Not root, no --cgroup-parent, and the caller's cgroup not delegated: the
// error says why, why no systemd scope either, and what to do. The scope's
// D-Bus conversation itself is systemd_test.go's.
func TestV2UnprivilegedNotDelegated(t *testing.T) {
	busErr := errors.New("dial unix /run/user/1000/bus: connect: connection refused")
	tests := []struct {
		name    string
		systemd bool
		bus     func(t *testing.T) (func() (*dbus.Conn, error), *int)
		why     string // why no systemd scope
		calls   int    // of the bus
	}{
		{name: "systemd, no D-Bus", systemd: true, why: "no D-Bus"},
		{
			name: "PID 1 not systemd: the bus is not tried", systemd: false, why: "PID 1 is not systemd",
			bus: func(t *testing.T) (func() (*dbus.Conn, error), *int) { return noBus(t), new(int) },
		},
		{
			name: "systemd, the bus fails", systemd: true, why: busErr.Error(), calls: 1,
			bus: func(*testing.T) (func() (*dbus.Conn, error), *int) { return failBus(busErr) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := userScene(t, session, "cpu", "io", "memory", "pids")
			h.systemd = tt.systemd
			calls := new(int)
			if tt.bus != nil {
				h.bus, calls = tt.bus(t)
			}
			_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib}})
			wantErr(t, err,
				"no cgroup for /sys/fs/cgroup: not root, and the caller's cgroup "+session+" is not delegated to it (not writable)",
				"; and no systemd transient scope: "+tt.why+"; "+unprivilegedHelp)
			var nd *notDelegated
			if !errors.As(err, &nd) {
				t.Errorf("error %v is not a *notDelegated", err)
			}
			if *calls != tt.calls {
				t.Errorf("the bus was tried %d times, want %d", *calls, tt.calls)
			}
			if len(f.ops) != 0 {
				t.Errorf("ops: %q", f.ops)
			}
		})
	}

	t.Run("no limits: the same error", func(t *testing.T) {
		h, _ := userScene(t, session, "memory", "pids")
		_, err := newGroup(h, Config{})
		wantErr(t, err, "not delegated", "no systemd transient scope: no D-Bus", "--cgroup-parent")
	})
}

// Where a cgroup is delegated, or as root, or with --cgroup-parent, no
// systemd scope is asked for.
func TestNoScopeWhenNotNeeded(t *testing.T) {
	t.Run("delegated", func(t *testing.T) {
		h, _ := userScene(t, userScope, "cpu", "io", "memory", "pids")
		h.bus = noBus(t)
		if g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}}); g.Attaches() {
			t.Error("a delegated cgroup attaches")
		}
	})
	t.Run("root", func(t *testing.T) {
		h, _ := newHost(t, v2Mounts(), v2All...)
		h.bus = noBus(t)
		if g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}}); g.Attaches() {
			t.Error("root's cgroup attaches")
		}
	})
	t.Run("unprivileged --cgroup-parent not writable", func(t *testing.T) {
		h, _ := userScene(t, session, "cpu", "io", "memory", "pids")
		h.bus = noBus(t)
		_, err := newGroup(h, Config{Parent: "/mine", Limits: Limits{Memory: 64 * mib}})
		wantErr(t, err, "permission denied")
		if strings.Contains(err.Error(), "systemd") {
			t.Errorf("error %q speaks of systemd for a --cgroup-parent", err)
		}
	})
}

// An unprivileged --cgroup-parent outside the delegated subtree: the
// error says why.
func TestV2UnprivilegedParentNotWritable(t *testing.T) {
	h, f := userScene(t, userScope, "cpu", "io", "memory", "pids")
	_, err := newGroup(h, Config{Parent: "/mine", Limits: Limits{Memory: 64 * mib}})
	wantErr(t, err, top+"/mine", "permission denied", "not delegated to this user")
	if f.exists(top + "/mine") {
		t.Error("made /mine")
	}
}

func TestV2Parent(t *testing.T) {
	tests := []struct {
		parent string
		want   string // the run's parent cgroup
	}{
		{"sub", "/system.slice/foo.service/sub"},
		{"../bar.service", "/system.slice/bar.service"},
		{"sub/../../bar.service/x", "/system.slice/bar.service/x"},
		{"/x/y", "/x/y"},
		{"/x//y/./", "/x/y"},
		{top + "/x", "/x"},
		{top + "/x/", "/x"},
		{top, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.parent, func(t *testing.T) {
			h, f := newHost(t, v2Mounts(), v2All...)
			f.mustWrite(top+"/cgroup.subtree_control", "+memory")
			f.mkcg(top+"/system.slice", "memory")
			// The caller is not in the fake's cgroup.procs: see
			// TestV2NoInternalProcessRule for when it is.
			f.mkcg(top + "/system.slice/foo.service")
			h.self[""] = "/system.slice/foo.service"
			log, msgs := collect()
			g := newOK(t, h, Config{Parent: tt.parent, Limits: Limits{Memory: 64 * mib}, Log: log})
			if d, name := path.Split(g.Path()); path.Clean(d) != tt.want || !runNameRE.MatchString(name) {
				t.Errorf("path %q, want %s/hakoniwa-run-...", g.Path(), tt.want)
			}
			if !f.isCgroup(top+g.Path()) || f.read(top+g.Path()+"/memory.max") != "67108864" {
				t.Errorf("no cgroup with its limit at %s", top+g.Path())
			}
			if !anyContains(*msgs, "--cgroup-parent") {
				t.Errorf("log: %q", *msgs)
			}
		})
	}

	t.Run("relative, the caller's cgroup unknown", func(t *testing.T) {
		h, _ := newHost(t, v2Mounts(), v2All...)
		delete(h.self, "")
		_, err := newGroup(h, Config{Parent: "sub", Limits: Limits{Memory: 64 * mib}})
		wantErr(t, err, "--cgroup-parent sub", "unknown")
	})
	t.Run("default as root on a hierarchy mounted from below its top", func(t *testing.T) {
		ms := []mount{{dir: top, root: "/docker/abc", v2: true}}
		h, _ := newHost(t, ms, v2All...)
		_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib}})
		wantErr(t, err, "/hakoniwa", "outside")
	})
}

// An absolute --cgroup-parent with ".." is refused before anything is
// made: "/sys/fs/cgroup/../x" once escaped the mount.
func TestParentDotDot(t *testing.T) {
	for _, parent := range []string{top + "/../x", "/x/../z/", "/..", "/hakoniwa/..", top + "/memory/../../fs/x"} {
		for _, v := range []struct {
			name    string
			mounts  []mount
			rootCtl []string
		}{{"v2", v2Mounts(), v2All}, {"v1", hybridMounts(), nil}} {
			t.Run(v.name+" "+parent, func(t *testing.T) {
				h, f := newHost(t, v.mounts, v.rootCtl...)
				_, err := newGroup(h, Config{Parent: parent, Limits: Limits{Memory: 64 * mib}})
				wantErr(t, err, "--cgroup-parent "+parent+": want a path without ..")
				if len(f.ops) != 0 {
					t.Errorf("ops: %q", f.ops)
				}
				if f.exists("/sys/fs/x") || f.exists("/z") {
					t.Error("made a cgroup outside the hierarchy")
				}
			})
		}
	}
	// A name with dots that is not "..".
	h, _ := newHost(t, v2Mounts(), v2All...)
	g := newOK(t, h, Config{Parent: "/a..b/...", Limits: Limits{Memory: 64 * mib}})
	if d := path.Dir(g.Path()); d != "/a..b/..." {
		t.Errorf("path %s", g.Path())
	}
}

// mkdirAll makes nothing outside its mount, whatever it is given.
func TestMkdirAllOutsideMount(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	m := v2Mounts()[0]
	for _, dir := range []string{"/sys/fs/x", "/sys/fs/cgroupx/y", "/", "/sys/fs"} {
		err := h.mkdirAll(m, dir)
		wantErr(t, err, "make the cgroup "+dir+": outside the hierarchy mounted at "+top)
	}
	if len(f.ops) != 0 {
		t.Errorf("ops: %q", f.ops)
	}
	if err := h.mkdirAll(m, top); err != nil || len(f.ops) != 0 {
		t.Errorf("mkdirAll of the top: %v, ops %q", err, f.ops)
	}
	if err := h.mkdirAll(m, top+"/a/b"); err != nil || !f.isCgroup(top+"/a/b") {
		t.Errorf("mkdirAll /a/b: %v", err)
	}
	if want := []string{"mkdir " + top + "/a", "mkdir " + top + "/a/b"}; !slices.Equal(f.ops, want) {
		t.Errorf("ops %q, want %q", f.ops, want)
	}
}

func TestMissingController(t *testing.T) {
	t.Run("v2: no io controller anywhere", func(t *testing.T) {
		h, f := newHost(t, v2Mounts(), "cpu", "memory", "pids")
		_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, IOWeight: 200}})
		wantErr(t, err, "--io-weight", "io controller")
		if len(f.ops) != 0 {
			t.Errorf("ops: %q", f.ops)
		}
	})
	t.Run("v2 unprivileged: io not delegated", func(t *testing.T) {
		h, f := userScene(t, userScope, "cpu", "memory", "pids")
		_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, IOWeight: 200}})
		wantErr(t, err, "--io-weight", "enable io", "not delegated")
		if runs := f.runDirs(top + userSvc + "/hakoniwa"); len(runs) > 0 {
			t.Errorf("runs left: %v", runs)
		}
	})
	t.Run("v1: no blkio hierarchy", func(t *testing.T) {
		h, f := newHost(t, hybridMounts())
		_, err := newGroup(h, Config{Limits: Limits{IOWeight: 200}})
		wantErr(t, err, "--io-weight", "blkio")
		if len(f.ops) != 0 {
			t.Errorf("ops: %q", f.ops)
		}
	})
	t.Run("v2: a limit's controller missing, the others only measured", func(t *testing.T) {
		h, f := newHost(t, v2Mounts(), "cpu", "pids")
		log, msgs := collect()
		g := newOK(t, h, Config{Limits: Limits{Pids: 10}, Log: log})
		if !anyContains(*msgs, "memory not enabled, so not measured") {
			t.Errorf("log: %q", *msgs)
		}
		s := g.Stats()
		if s.MemoryPeak != nil || s.OOMKills != nil {
			t.Errorf("memory measured without the memory controller: %+v", s)
		}
		if s.PidsPeak == nil || f.read(top+g.Path()+"/pids.max") != "10" {
			t.Errorf("pids: %+v, pids.max %q", s, f.read(top+g.Path()+"/pids.max"))
		}
	})
}

func TestV2StatsAndClose(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	g, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, Pids: 16, CPUs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	run := top + g.Path()
	leaf := run + "/" + leafName
	f.mustWrite(leaf+"/cgroup.procs", "5000001") // the sandbox
	// v2 counts the leaf's in the run's cgroup, where the stats are read.
	f.set(run+"/memory.peak", "1234567\n")
	f.set(run+"/memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 2\noom_group_kill 1\n")
	f.set(run+"/pids.peak", "7\n")
	f.set(run+"/pids.events", "max 5\n")
	f.set(run+"/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n")

	s := g.Stats()
	u := func(p *uint64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	d := func(p *time.Duration) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for name, c := range map[string][2]any{
		"MemoryPeak": {u(s.MemoryPeak), uint64(1234567)},
		"OOMKills":   {u(s.OOMKills), uint64(2)},
		"PidsPeak":   {u(s.PidsPeak), uint64(7)},
		"PidsDenied": {u(s.PidsDenied), uint64(5)},
		"CPUTotal":   {d(s.CPUTotal), 1500 * time.Microsecond},
		"CPUUser":    {d(s.CPUUser), 1000 * time.Microsecond},
		"CPUSystem":  {d(s.CPUSystem), 500 * time.Microsecond},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if used, ok := g.CPUUsage(); !ok || used != 1500*time.Microsecond {
		t.Errorf("CPUUsage = %v, %v", used, ok)
	}

	f.resetOps()
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"write " + run + "/cgroup.kill 1", "rmdir " + leaf, "rmdir " + run}
	if !slices.Equal(f.ops, want) {
		t.Errorf("Close's ops: %q, want %q", f.ops, want)
	}
	if f.exists(run) {
		t.Error("the run's cgroup is still there")
	}
	if runs := f.runDirs(top + "/hakoniwa"); len(runs) != 0 {
		t.Errorf("runs left: %q", runs)
	}
	if g.CloneFD() != -1 {
		t.Errorf("CloneFD after Close: %d", g.CloneFD())
	}
	f.resetOps()
	if err := g.Close(); err != nil || len(f.ops) != 0 {
		t.Errorf("second Close: %v, ops %q", err, f.ops)
	}
}

// The sandbox may make cgroups of its own inside its leaf (in its cgroup
// namespace, the leaf is its top). Close kills the whole subtree and
// removes it, deepest first.
func TestV2CloseWithChildCgroups(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	g, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib}})
	if err != nil {
		t.Fatal(err)
	}
	run := top + g.Path()
	leaf := run + "/" + leafName
	f.mkcg(leaf + "/a")
	f.mkcg(leaf + "/a/deep")
	f.mkcg(leaf + "/b")
	f.mustWrite(leaf+"/a/deep/cgroup.procs", "5000001")
	f.mustWrite(leaf+"/b/cgroup.procs", "5000002")
	f.resetOps()
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	want := []string{
		"write " + run + "/cgroup.kill 1",
		"rmdir " + leaf + "/a/deep", "rmdir " + leaf + "/a", "rmdir " + leaf + "/b",
		"rmdir " + leaf, "rmdir " + run,
	}
	if !slices.Equal(f.ops, want) {
		t.Errorf("Close's ops:\n got %q\nwant %q", f.ops, want)
	}
	if f.exists(run) {
		t.Error("the run's cgroup is still there")
	}
}

// Before Linux 5.14 there is no cgroup.kill: the subtree is emptied
// cgroup by cgroup (through pidfds: no process is left here, see
// fake_test.go), and removed deepest first all the same.
func TestV2CloseWithoutCgroupKill(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	f.noKill = true
	g, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib}})
	if err != nil {
		t.Fatal(err)
	}
	run := top + g.Path()
	leaf := run + "/" + leafName
	f.mkcg(leaf + "/a")
	f.resetOps()
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	want := []string{
		"write " + run + "/cgroup.kill 1: open " + run + "/cgroup.kill: no such file or directory",
		"rmdir " + leaf + "/a", "rmdir " + leaf, "rmdir " + run,
	}
	if !slices.Equal(f.ops, want) {
		t.Errorf("Close's ops:\n got %q\nwant %q", f.ops, want)
	}
}

func TestSweep(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	f.mustWrite(top+"/cgroup.subtree_control", "+memory")
	hak := top + "/hakoniwa"
	f.mkcg(hak, "memory")
	// A stale run as a killed hakoniwa leaves it: its leaf, and a cgroup
	// the command made there, still running.
	stale := hak + "/hakoniwa-run-99-deadbeef"
	f.mkcg(stale)
	f.mkcg(stale + "/" + leafName)
	f.mkcg(stale + "/" + leafName + "/inner")
	f.mustWrite(stale+"/"+leafName+"/cgroup.procs", "5000001")
	f.mustWrite(stale+"/"+leafName+"/inner/cgroup.procs", "5000002")
	held := hak + "/hakoniwa-run-98-0badcafe"
	f.mkcg(held)
	f.mkcg(held + "/" + leafName)
	f.mustWrite(held+"/"+leafName+"/cgroup.procs", "5000003")
	lock(t, f, held, unix.LOCK_EX)
	keep := hak + "/keep"
	f.mkcg(keep)
	f.resetOps()

	log, msgs := collect()
	g1 := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}, Log: log})
	if f.exists(stale) {
		t.Error("the stale run's cgroup is still there")
	}
	want := []string{
		"write " + stale + "/cgroup.kill 1",
		"rmdir " + stale + "/" + leafName + "/inner",
		"rmdir " + stale + "/" + leafName,
		"rmdir " + stale,
	}
	if got := f.opsUnder(stale); !slices.Equal(got, want) {
		t.Errorf("the stale run's ops:\n got %q\nwant %q", got, want)
	}
	if f.read(held+"/"+leafName+"/cgroup.procs") != "5000003\n" || f.opsUnder(held) != nil {
		t.Errorf("touched the held run: %q", f.opsUnder(held))
	}
	if !anyContains(*msgs, "removed the stale cgroup "+stale) {
		t.Errorf("log: %q", *msgs)
	}
	if !f.isCgroup(held) || !f.isCgroup(keep) {
		t.Error("removed a held run's cgroup, or one not of a run")
	}

	// Once per parent and process: a later stale cgroup stays.
	stale2 := hak + "/hakoniwa-run-97-feedface"
	f.mkcg(stale2)
	newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
	if !f.isCgroup(stale2) {
		t.Error("swept twice")
	}

	// A new process sweeps it, and leaves the live runs alone.
	resetSwept(t)
	g3 := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
	if f.exists(stale2) {
		t.Error("not swept")
	}
	for _, g := range []*Group{g1, g3} {
		if !f.isCgroup(top + g.Path()) {
			t.Errorf("swept the live run %s", g.Path())
		}
	}
	if !f.isCgroup(held) || !f.isCgroup(keep) {
		t.Error("removed a held run's cgroup, or one not of a run")
	}
}

// While another hakoniwa is making its run's cgroup (it holds the parent
// shared), no sweep: the one it made may not be locked yet.
func TestSweepWaitsForMakers(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	hak := top + "/hakoniwa"
	f.mkcg(hak)
	stale := hak + "/hakoniwa-run-99-deadbeef"
	f.mkcg(stale)
	release := lock(t, f, hak, unix.LOCK_SH)
	newOK(t, h, Config{Limits: Limits{Pids: 8}})
	if !f.isCgroup(stale) {
		t.Fatal("swept while the parent was held")
	}
	release()
	newOK(t, h, Config{Limits: Limits{Pids: 8}})
	if f.exists(stale) {
		t.Error("not swept once the parent was free")
	}
}

func TestV1(t *testing.T) {
	tests := []struct {
		name   string
		mounts []mount
		l      Limits
		join   []string          // the controllers of JoinFiles, in order
		files  map[string]string // under /sys/fs/cgroup/HIERARCHY/RUN
		absent []string          // hierarchies without a run cgroup
	}{{
		name: "memory, pids, cpus and cpu weight",
		l:    Limits{Memory: 256 * mib, Pids: 64, CPUs: 0.5, CPUWeight: 100},
		join: []string{"memory", "pids", "cpu", "cpuacct"},
		files: map[string]string{
			"memory/memory.limit_in_bytes":       "268435456",
			"memory/memory.memsw.limit_in_bytes": "268435456",
			"pids/pids.max":                      "64",
			"cpu/cpu.cfs_period_us":              "100000",
			"cpu/cpu.cfs_quota_us":               "50000",
			"cpu/cpu.shares":                     "1024",
		},
		absent: []string{"unified"},
	}, {
		name:   "memory only: cpu and blkio not used",
		mounts: hybridMounts(blkioMount),
		l:      Limits{Memory: 256 * mib},
		join:   []string{"memory", "pids", "cpuacct"},
		files: map[string]string{
			"memory/memory.limit_in_bytes":       "268435456",
			"memory/memory.memsw.limit_in_bytes": "268435456",
			"pids/pids.max":                      "max",
		},
		absent: []string{"cpu", "blkio", "unified"},
	}, {
		name:  "--memory-swap 512M",
		l:     Limits{Memory: 256 * mib, MemorySwap: 512 * mib},
		join:  []string{"memory", "pids", "cpuacct"},
		files: map[string]string{"memory/memory.memsw.limit_in_bytes": "536870912"},
	}, {
		name:  "--memory-swap unlimited",
		l:     Limits{Memory: 256 * mib, MemorySwap: Unlimited},
		join:  []string{"memory", "pids", "cpuacct"},
		files: map[string]string{"memory/memory.memsw.limit_in_bytes": "-1"},
	}, {
		name:   "--io-weight in blkio, --cpu-weight in shares",
		mounts: hybridMounts(blkioMount),
		l:      Limits{IOWeight: 500, CPUWeight: 50},
		join:   []string{"memory", "pids", "cpu", "cpuacct", "blkio"},
		files: map[string]string{
			"blkio/blkio.weight":           "50",
			"cpu/cpu.shares":               "512",
			"cpu/cpu.cfs_quota_us":         "-1",
			"memory/memory.limit_in_bytes": "9223372036854771712",
		},
	}, {
		name: "co-mounted cpu,cpuacct",
		mounts: []mount{
			{dir: top + "/memory", root: "/", controllers: []string{"memory"}},
			{dir: top + "/pids", root: "/", controllers: []string{"pids"}},
			{dir: top + "/cpu,cpuacct", root: "/", controllers: []string{"cpu", "cpuacct"}},
		},
		l:     Limits{CPUs: 2},
		join:  []string{"memory", "pids", "cpu,cpuacct"},
		files: map[string]string{"cpu,cpuacct/cpu.cfs_quota_us": "200000"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mounts := tt.mounts
			if mounts == nil {
				mounts = hybridMounts()
			}
			h, f := newHost(t, mounts)
			g := newOK(t, h, Config{Limits: tt.l})
			if g.Version() != 1 || g.CloneFD() != -1 {
				t.Errorf("version %d, CloneFD %d", g.Version(), g.CloneFD())
			}
			if d, name := path.Split(g.Path()); d != "/hakoniwa/" || !runNameRE.MatchString(name) {
				t.Fatalf("path %q", g.Path())
			}
			// The child joins the leaf of each hierarchy; the run's
			// cgroup above it, with the limits, is locked.
			var join []string
			for _, j := range g.JoinFiles() {
				join = append(join, j.Controller)
				if !sameFile(t, f, j.FD, top+"/"+j.Controller+g.Path()+"/"+leafName+"/cgroup.procs") {
					t.Errorf("the %s join file is not the leaf's cgroup.procs", j.Controller)
				}
			}
			if !slices.Equal(join, tt.join) {
				t.Errorf("JoinFiles for %q, want %q", join, tt.join)
			}
			for _, c := range tt.join {
				run := top + "/" + c + g.Path()
				if !isLocked(t, f, run) {
					t.Errorf("the %s cgroup is not locked", c)
				}
				// Made after the limits; nothing written in it.
				ops := f.opsUnder(run)
				if len(ops) == 0 || ops[len(ops)-1] != "mkdir "+run+"/"+leafName {
					t.Errorf("%s: the leaf is not made last: %q", c, ops)
				}
				if got := f.opsUnder(run + "/" + leafName); len(got) != 1 {
					t.Errorf("%s: ops in the leaf: %q", c, got)
				}
			}
			for _, c := range tt.absent {
				if f.exists(top + "/" + c + g.Path()) {
					t.Errorf("a run cgroup in %s", c)
				}
			}
			for file, v := range tt.files {
				h, name := path.Split(file)
				if got := f.read(top + "/" + h + g.Path() + "/" + name); got != v {
					t.Errorf("%s = %q, want %q", file, got, v)
				}
			}
			// The memory limit before memsw, the period before the quota.
			for _, pair := range [][2]string{
				{"memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes"},
				{"cpu/cpu.cfs_period_us", "cpu/cpu.cfs_quota_us"},
			} {
				var at [2]int
				for i, file := range pair {
					h, name := path.Split(file)
					at[i] = slices.IndexFunc(f.ops, func(op string) bool {
						return strings.HasPrefix(op, "write "+top+"/"+h+g.Path()+"/"+name+" ")
					})
				}
				if at[1] >= 0 && at[0] > at[1] || at[0] < 0 && at[1] >= 0 {
					t.Errorf("%s not written before %s: %q", pair[0], pair[1], f.ops)
				}
			}
			cg := g.Path()
			f.resetOps()
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.join {
				run := top + "/" + c + cg
				if f.exists(run) {
					t.Errorf("the %s run cgroup is left", c)
				}
				want := []string{"rmdir " + run + "/" + leafName, "rmdir " + run}
				if got := f.opsUnder(run); !slices.Equal(got, want) {
					t.Errorf("%s: Close's ops %q, want %q", c, got, want)
				}
			}
			if g.JoinFiles() != nil {
				t.Errorf("JoinFiles after Close: %v", g.JoinFiles())
			}
		})
	}
}

// Every write on v1, in order: each hierarchy in turn, its parent, the
// run's cgroup, its limits (use_hierarchy first, memory before memsw, the
// period before the quota), and then the leaf.
func TestV1WriteOrder(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	g := newOK(t, h, Config{Limits: Limits{Memory: 256 * mib, MemorySwap: 512 * mib, CPUs: 0.5}})
	var want []string
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct"} {
		run := top + "/" + c + g.Path()
		want = append(want, "mkdir "+top+"/"+c+"/hakoniwa", "mkdir "+run)
		switch c {
		case "memory":
			want = append(want, "write "+run+"/memory.use_hierarchy 1",
				"write "+run+"/memory.limit_in_bytes 268435456", "write "+run+"/memory.memsw.limit_in_bytes 536870912")
		case "cpu":
			want = append(want, "write "+run+"/cpu.cfs_period_us 100000", "write "+run+"/cpu.cfs_quota_us 50000")
		}
		want = append(want, "mkdir "+run+"/"+leafName)
	}
	if !slices.Equal(f.ops, want) {
		t.Errorf("ops:\n got %q\nwant %q", f.ops, want)
	}
}

// v1 counts an OOM kill in the victim's memory cgroup and a refused fork
// in the forker's pids cgroup, not in their parents: the stats take the
// larger of the run's cgroup's and its leaf's (which is right both where
// the kernel counts in every ancestor and where it does not). The peaks
// and cpu usage are hierarchical, read in the run's cgroup.
func TestV1Stats(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
	at := func(c, file string) string { return top + "/" + c + g.Path() + "/" + file }
	leaf := func(c, file string) string { return at(c, leafName+"/"+file) }
	f.set(at("memory", "memory.max_usage_in_bytes"), "1048576\n")
	f.set(at("memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	f.set(leaf("memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n")
	f.set(leaf("memory", "memory.max_usage_in_bytes"), "999\n") // not added: R's is hierarchical
	f.set(at("pids", "pids.peak"), "5\n")
	f.set(leaf("pids", "pids.events"), "max 2\n")
	f.set(at("cpuacct", "cpuacct.usage"), "3000000\n")
	f.set(at("cpuacct", "cpuacct.usage_user"), "2000000\n")
	f.set(at("cpuacct", "cpuacct.usage_sys"), "1000000\n")
	s := g.Stats()
	if s.MemoryPeak == nil || *s.MemoryPeak != 1048576 || s.OOMKills == nil || *s.OOMKills != 2 ||
		s.PidsPeak == nil || *s.PidsPeak != 5 || s.PidsDenied == nil || *s.PidsDenied != 2 ||
		s.CPUTotal == nil || *s.CPUTotal != 3*time.Millisecond ||
		s.CPUUser == nil || *s.CPUUser != 2*time.Millisecond || s.CPUSystem == nil || *s.CPUSystem != time.Millisecond {
		t.Errorf("stats %+v", s)
	}
	if used, ok := g.CPUUsage(); !ok || used != 3*time.Millisecond {
		t.Errorf("CPUUsage = %v, %v", used, ok)
	}
	f.set(at("pids", "pids.events"), "max 4\n")
	if s := g.Stats(); s.PidsDenied == nil || *s.PidsDenied != 4 {
		t.Errorf("PidsDenied = %s, want the larger of 4 in the run's cgroup and 2 in its leaf", u64str(s.PidsDenied))
	}
}

func TestV1Failures(t *testing.T) {
	t.Run("no swap accounting, --memory-swap asked: nothing left", func(t *testing.T) {
		h, f := newHost(t, hybridMounts())
		f.noSwap = true
		g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
		if f.exists(top + "/memory" + g.Path() + "/memory.memsw.limit_in_bytes") {
			t.Fatal("the fake made memsw without swap accounting")
		}
		g.Close()
		_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, MemorySwap: 128 * mib}})
		wantErr(t, err, "--memory-swap", "memory.memsw.limit_in_bytes")
		for _, c := range []string{"memory", "pids", "cpuacct"} {
			if runs := f.runDirs(top + "/" + c + "/hakoniwa"); len(runs) > 0 {
				t.Errorf("runs left in %s: %v", c, runs)
			}
		}
	})
	t.Run("a required hierarchy fails: the ones made are removed", func(t *testing.T) {
		h, f := newHost(t, hybridMounts())
		f.setWritable(top+"/pids", false)
		_, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, Pids: 8}})
		wantErr(t, err, "/sys/fs/cgroup/pids/hakoniwa", "permission denied")
		if runs := f.runDirs(top + "/memory/hakoniwa"); len(runs) > 0 {
			t.Errorf("runs left in memory: %v", runs)
		}
		if !slices.ContainsFunc(f.ops, func(op string) bool { return strings.HasPrefix(op, "rmdir "+top+"/memory/hakoniwa/hakoniwa-run-") }) {
			t.Errorf("the memory run cgroup was never made and removed: %q", f.ops)
		}
	})
	t.Run("a hierarchy only measured fails: used without it", func(t *testing.T) {
		h, f := newHost(t, hybridMounts())
		f.setWritable(top+"/cpuacct", false)
		log, msgs := collect()
		g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}, Log: log})
		var join []string
		for _, j := range g.JoinFiles() {
			join = append(join, j.Controller)
		}
		if !slices.Equal(join, []string{"memory", "pids"}) {
			t.Errorf("JoinFiles for %q", join)
		}
		if !anyContains(*msgs, "cpuacct not used") {
			t.Errorf("log: %q", *msgs)
		}
		if _, ok := g.CPUUsage(); ok {
			t.Error("CPUUsage known without cpuacct")
		}
	})
}

// A stale v1 run is removed with its leaf and what the command made
// there, deepest first. (Its processes are gone: see fake_test.go on
// killing on v1.)
func TestV1Sweep(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	stale := top + "/memory/hakoniwa/hakoniwa-run-99-deadbeef"
	f.mkcg(top + "/memory/hakoniwa")
	f.mkcg(stale)
	f.mkcg(stale + "/" + leafName)
	f.mkcg(stale + "/" + leafName + "/inner")
	f.resetOps()
	newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
	if f.exists(stale) {
		t.Error("the stale v1 cgroup is still there")
	}
	want := []string{"rmdir " + stale + "/" + leafName + "/inner", "rmdir " + stale + "/" + leafName, "rmdir " + stale}
	if got := f.opsUnder(stale); !slices.Equal(got, want) {
		t.Errorf("the stale run's ops %q, want %q", got, want)
	}
}

// The command may make cgroups in its leaf, in every hierarchy: Close
// removes them, deepest first.
func TestV1CloseWithChildCgroups(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	g, err := newGroup(h, Config{Limits: Limits{Memory: 64 * mib, CPUs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cs := []string{"memory", "pids", "cpu", "cpuacct"}
	for _, c := range cs {
		leaf := top + "/" + c + g.Path() + "/" + leafName
		f.mkcg(leaf + "/a")
		f.mkcg(leaf + "/a/deep")
	}
	cg := g.Path()
	f.resetOps()
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, c := range cs {
		run := top + "/" + c + cg
		want := []string{"rmdir " + run + "/" + leafName + "/a/deep", "rmdir " + run + "/" + leafName + "/a", "rmdir " + run + "/" + leafName, "rmdir " + run}
		if got := f.opsUnder(run); !slices.Equal(got, want) {
			t.Errorf("%s: Close's ops %q, want %q", c, got, want)
		}
		if f.exists(run) {
			t.Errorf("%s: the run's cgroup is still there", c)
		}
	}
}

// On older kernels v1's memory controller may be non-hierarchical
// (memory.use_hierarchy 0, where nothing set it as systemd does): the
// limit on the run's cgroup would then not bind its leaf, where the
// command runs.
func TestV1MemoryHierarchical(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	f.set(top+"/memory/memory.use_hierarchy", "0")
	g := newOK(t, h, Config{Limits: Limits{Memory: 64 * mib}})
	leaf := top + "/memory" + g.Path() + "/" + leafName
	if got := f.read(leaf + "/memory.use_hierarchy"); got != "1" {
		t.Errorf("the leaf's memory.use_hierarchy = %q: the run's limit does not bind it", got)
	}
}

// A --cgroup-parent under /sys/fs/cgroup that is in no mounted hierarchy
// (such as a v2 path on a v1 host) is an error naming the mounts, and no
// hierarchy takes it for a cgroup path.
func TestV1DirectoryParentNotMounted(t *testing.T) {
	for _, parent := range []string{top + "/user.slice/hk", top, top + "/systemd/x"} {
		t.Run(parent, func(t *testing.T) {
			h, f := newHost(t, hybridMounts())
			_, err := newGroup(h, Config{Parent: parent, Limits: Limits{Memory: 64 * mib}})
			wantErr(t, err, "--cgroup-parent "+parent+": not in a mounted cgroup hierarchy (those are "+
				top+"/unified, "+top+"/memory, "+top+"/pids, "+top+"/cpu, "+top+"/cpuacct)", "such as /hakoniwa")
			if len(f.ops) != 0 {
				t.Errorf("ops: %q", f.ops)
			}
			for _, c := range []string{"memory", "pids", "cpuacct"} {
				if f.exists(top + "/" + c + "/sys") {
					t.Errorf("made %s/%s/sys/...", top, c)
				}
			}
		})
	}
	t.Run("pure v2: the hierarchy is there", func(t *testing.T) {
		h, _ := newHost(t, v2Mounts(), v2All...)
		g := newOK(t, h, Config{Parent: top + "/user.slice/hk", Limits: Limits{Memory: 64 * mib}})
		if d := path.Dir(g.Path()); d != "/user.slice/hk" {
			t.Errorf("path %s", g.Path())
		}
	})
}

// A directory of one v1 hierarchy names the same cgroup in all of them:
// /sys/fs/cgroup/memory/x is /x in memory, pids, cpu and cpuacct alike.
func TestV1DirectoryParent(t *testing.T) {
	tests := []struct {
		name   string
		root   string // of every hierarchy's mount
		parent string
		want   string // the parent cgroup
		dir    string // its directory, under /sys/fs/cgroup/HIERARCHY
	}{
		{"memory's directory", "/", top + "/memory/x", "/x", "/x"},
		{"pids' directory, deeper", "/", top + "/pids/x/y/", "/x/y", "/x/y"},
		{"a hierarchy's top", "/", top + "/cpuacct", "/", ""},
		{"the unified hierarchy's directory", "/", top + "/unified/x", "/x", "/x"},
		{"mounted from below the top (a container)", "/docker/abc", top + "/memory/x", "/docker/abc/x", "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms []mount
			for _, m := range hybridMounts() {
				m.root = tt.root
				ms = append(ms, m)
			}
			h, f := newHost(t, ms)
			log, msgs := collect()
			g := newOK(t, h, Config{Parent: tt.parent, Limits: Limits{Memory: 64 * mib, CPUs: 1}, Log: log})
			if d, name := path.Split(g.Path()); path.Clean(d) != tt.want || !runNameRE.MatchString(name) {
				t.Fatalf("path %q, want %s/hakoniwa-run-... in every hierarchy", g.Path(), tt.want)
			}
			name := path.Base(g.Path())
			for _, c := range []string{"memory", "pids", "cpu", "cpuacct"} {
				if leaf := top + "/" + c + tt.dir + "/" + name + "/" + leafName; !f.isCgroup(leaf) {
					t.Errorf("no run cgroup at %s", leaf)
				}
				if f.exists(top + "/" + c + "/sys") {
					t.Errorf("made %s/%s/sys/...", top, c)
				}
				if !anyContains(*msgs, "cgroup: "+c+": parent "+tt.want+" (--cgroup-parent)") {
					t.Errorf("log: %q", *msgs)
				}
			}
			if got := f.read(top + "/memory" + tt.dir + "/" + name + "/memory.limit_in_bytes"); got != "67108864" {
				t.Errorf("memory.limit_in_bytes = %q", got)
			}
		})
	}
}

// Not root on v1, nothing delegated: no systemd scope either, whatever PID
// 1 is, as systemd makes them for users on v2 only; the bus is not tried.
func TestV1UnprivilegedNotDelegated(t *testing.T) {
	for _, l := range []Limits{{Memory: 64 * mib}, {Pids: 8}, {CPUs: 1}} {
		for _, systemd := range []bool{true, false} {
			h, f := newHost(t, hybridMounts())
			f.setWritable(top, false)
			h.euid = 1000
			for c := range h.self {
				h.self[c] = session
			}
			h.systemd = systemd
			h.bus = noBus(t)
			_, err := newGroup(h, Config{Limits: l})
			wantErr(t, err, "not root, and the caller's cgroup "+session+" is not delegated to it (not writable)",
				"; and no systemd transient scope: systemd makes them for users on cgroup v2 only; "+unprivilegedHelp)
			var nd *notDelegated
			if !errors.As(err, &nd) {
				t.Errorf("error %v is not a *notDelegated", err)
			}
			if len(f.ops) != 0 {
				t.Errorf("ops: %q", f.ops)
			}
		}
	}
}

// With no limit (--cgroup, for the figures), nothing delegated on v1 is
// as much an error as on v2, and it should say why as well.
func TestV1UnprivilegedNoLimitsSaysWhy(t *testing.T) {
	h, f := newHost(t, hybridMounts())
	f.setWritable(top, false)
	h.euid = 1000
	for c := range h.self {
		h.self[c] = session
	}
	_, err := newGroup(h, Config{})
	wantErr(t, err, "not delegated", "cgroup v2 only", "--cgroup-parent")
}

// The fake keeps the kernel's rules that the tests above rely on.
func TestFakeFS(t *testing.T) {
	_, f := newHost(t, v2Mounts(), "memory", "pids")
	a := top + "/a"
	f.mkcg(a)
	if err := f.Mkdir(a); !errors.Is(err, os.ErrExist) {
		t.Errorf("Mkdir of an existing cgroup: %v", err)
	}
	if err := f.WriteFile(a+"/memory.max", "1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write to a controller's file before it is enabled: %v", err)
	}
	if err := f.WriteFile(top+"/cgroup.subtree_control", "+io"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("enable a controller the cgroup lacks: %v", err)
	}
	f.mustWrite(top+"/cgroup.procs", "5000009") // the top may have processes
	f.mustWrite(top+"/cgroup.subtree_control", "+memory")
	if got := f.read(a + "/cgroup.controllers"); got != "memory" || !f.isFile(a+"/memory.max") {
		t.Errorf("a child after +memory: controllers %q, memory.max %v", got, f.isFile(a+"/memory.max"))
	}
	f.mustWrite(a+"/cgroup.procs", "5000001")
	if got := f.read(a + "/cgroup.events"); got != "populated 1\nfrozen 0\n" {
		t.Errorf("cgroup.events with a process: %q", got)
	}
	if err := f.WriteFile(a+"/cgroup.subtree_control", "+memory"); !errors.Is(err, unix.EBUSY) {
		t.Errorf("enable in a cgroup with processes: %v", err)
	}
	f.mkcg(a + "/b")
	if err := f.Rmdir(a); !errors.Is(err, unix.EBUSY) {
		t.Errorf("rmdir of a cgroup with a child and processes: %v", err)
	}
	f.mustWrite(a+"/b/cgroup.procs", "5000002")
	f.mustWrite(a+"/cgroup.kill", "1")
	for _, d := range []string{a, a + "/b"} {
		if f.read(d+"/cgroup.procs") != "" || f.read(d+"/cgroup.events") != "populated 0\nfrozen 0\n" {
			t.Errorf("%s after cgroup.kill: procs %q, events %q", d, f.read(d+"/cgroup.procs"), f.read(d+"/cgroup.events"))
		}
	}
	f.mustWrite(a+"/cgroup.subtree_control", "+memory")
	if err := f.WriteFile(a+"/cgroup.procs", "5000003"); !errors.Is(err, unix.EBUSY) {
		t.Errorf("a process into a cgroup that gives controllers: %v", err)
	}
	f.setWritable(a, false)
	if f.Writable(a+"/b/cgroup.procs") || !f.Writable(top+"/cgroup.procs") {
		t.Error("Writable does not follow setWritable")
	}
	if err := f.Rmdir(a + "/b"); !errors.Is(err, unix.EACCES) {
		t.Errorf("rmdir in a cgroup not writable: %v", err)
	}
	f.setWritable(a, true)
	for _, d := range []string{a + "/b", a} {
		if err := f.Rmdir(d); err != nil {
			t.Fatal(err)
		}
	}
	if f.exists(a) {
		t.Error("rmdir left the directory")
	}
	if !strings.HasPrefix(f.ops[0], "mkdir "+a) || !strings.HasSuffix(f.ops[len(f.ops)-1], "rmdir "+a) {
		t.Errorf("log: %q", f.ops)
	}

	// v1's memory.use_hierarchy: inherited at mkdir; fixed below a
	// parent that has it; settable where it is 0 only without children.
	_, f = newHost(t, hybridMounts())
	mem := top + "/memory"
	if got := f.read(mem + "/memory.use_hierarchy"); got != "1" {
		t.Errorf("the top's memory.use_hierarchy = %q", got)
	}
	f.mkcg(mem + "/h")
	if err := f.WriteFile(mem+"/h/memory.use_hierarchy", "0"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("use_hierarchy 0 below 1: %v", err)
	}
	f.mustWrite(mem+"/h/memory.use_hierarchy", "1")
	f.set(mem+"/memory.use_hierarchy", "0")
	f.mkcg(mem + "/flat")
	f.mkcg(mem + "/flat/child")
	if got := f.read(mem + "/flat/child/memory.use_hierarchy"); got != "0" {
		t.Errorf("inherited memory.use_hierarchy = %q", got)
	}
	if err := f.WriteFile(mem+"/flat/memory.use_hierarchy", "1"); !errors.Is(err, unix.EBUSY) {
		t.Errorf("use_hierarchy of a cgroup with children: %v", err)
	}
	f.mustWrite(mem+"/flat/child/memory.use_hierarchy", "1")
	if got := f.read(mem + "/flat/child/memory.use_hierarchy"); got != "1" {
		t.Errorf("memory.use_hierarchy after writing 1: %q", got)
	}
}

// u64str writes a counted number, or "none".
func u64str(p *uint64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatUint(*p, 10)
}
