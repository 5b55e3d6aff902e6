package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
	"github.com/hakoniwa-go/hakoniwa/internal/dbus/dbustest"
)

// TestScopeOverDBus asks a fake systemd, on a real dbus-daemon, for a
// scope: the properties it receives, the child it moves into a real cgroup
// v2 cgroup (and hakoniwa on into the scope's leaf), the KillUnit of Close,
// an error of systemd's, and limits that systemd accepted but could not
// apply (this host's cgroup v2 hierarchy has no memory or pids controller,
// as a user's systemd may lack cpu and io).
func TestScopeOverDBus(t *testing.T) {
	h, err := readHost()
	if err != nil {
		t.Fatal(err)
	}
	m2, ok := h.v2Mount()
	if !ok || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal("no cgroup v2 hierarchy under CI")
		}
		t.Skip("needs root (to play systemd, which moves processes) and a cgroup v2 hierarchy")
	}
	sock := dbustest.StartBus(t)
	slice := dbustest.Slice(t, m2.dir)
	sd := dbustest.StartSystemd(t, sock, slice)
	h.bus = func() (*dbus.Conn, error) { return dbus.Dial(sock, os.Getuid()) }

	var log []string
	cfg := Config{}
	newRun := func() (*Group, *scope) {
		s, err := newScope(h, m2, cfg, func(m string) { log = append(log, m) })
		if err != nil {
			t.Fatal(err)
		}
		if err := s.create(h.runName()); err != nil {
			t.Fatal(err)
		}
		return &Group{d: s, version: 2}, s
	}

	g, s := newRun()
	if !g.Attaches() || g.CloneFD() != -1 || len(g.JoinFiles()) != 0 {
		t.Fatal("a scope must be attached after the clone, not cloned or joined into")
	}
	child := exec.Command("/bin/sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	pid := child.Process.Pid
	if err := g.Attach(pid); err != nil {
		t.Fatalf("attach: %v\nlog: %q", err, log)
	}
	cg, err := h.cgroupOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(slice, m2.dir) + "/" + s.unit; cg != want+"/"+leafName || g.Path() != want {
		t.Errorf("the child is in %s, the group says %s, want %s and its leaf", cg, g.Path(), want)
	}
	if !strings.HasPrefix(s.unit, "hakoniwa-run-") || path.Ext(s.unit) != ".scope" {
		t.Errorf("unit name %q", s.unit)
	}
	starts := sd.Starts()
	if len(starts) != 1 {
		t.Fatalf("%d StartTransientUnit calls", len(starts))
	}
	st := starts[0]
	want := map[string]any{
		"Description": "hakoniwa sandbox", "PIDs": []uint32{uint32(pid)}, "Delegate": true,
		"CollectMode": "inactive-or-failed",
	}
	if st.Name != s.unit || st.Mode != "fail" || st.AuxLen != 0 {
		t.Errorf("StartTransientUnit(%q, %q, ..., aux of %d bytes)", st.Name, st.Mode, st.AuxLen)
	}
	if fmt.Sprint(st.Props) != fmt.Sprint(want) {
		t.Errorf("properties\n%v\nwant\n%v", st.Props, want)
	}
	if _, ok := g.CPUUsage(); !ok {
		t.Error("no cpu usage from the scope's cpu.stat")
	}
	// Close with the child still in the scope: systemd is asked to kill it.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	werr := child.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the child ended with %v, want SIGKILL", werr)
	}
	if kills := sd.Kills(); len(kills) != 1 || kills[0] != s.unit+" all 9" {
		t.Errorf("KillUnit calls %q", kills)
	}

	// systemd refusing the scope: the error says what systemd said.
	sd.Fail("org.freedesktop.systemd1.UnitExists")
	g2, _ := newRun()
	err = g2.Attach(os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "org.freedesktop.systemd1.UnitExists: Unit hakoniwa-run-") {
		t.Errorf("attach error %v, want systemd's UnitExists", err)
	}
	if err := g2.Close(); err != nil {
		t.Errorf("close of a scope never started: %v", err)
	}
	sd.Fail("")

	// Limits that systemd takes as properties but cannot apply here.
	cfg = Config{Limits: Limits{Memory: 64 << 20, Pids: 16, CPUs: 0.5, CPUWeight: 200, IOWeight: 300}}
	g3, s3 := newRun()
	child3 := exec.Command("/bin/sleep", "30")
	if err := child3.Start(); err != nil {
		t.Fatal(err)
	}
	defer child3.Process.Kill()
	err = g3.Attach(child3.Process.Pid)
	for _, want := range []string{"without MemoryMax (no memory.max", "without TasksMax", "without CPUQuotaPerSecUSec", "without CPUWeight", "without IOWeight", "docs/cgroups.md"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("attach error %v, want %q", err, want)
		}
	}
	starts = sd.Starts()
	st = starts[len(starts)-1]
	want = map[string]any{
		"Description": "hakoniwa sandbox", "PIDs": []uint32{uint32(child3.Process.Pid)}, "Delegate": true,
		"CollectMode": "inactive-or-failed", "MemoryMax": uint64(64 << 20), "MemorySwapMax": uint64(0),
		"TasksMax": uint64(16), "CPUQuotaPerSecUSec": uint64(500000), "CPUWeight": uint64(200), "IOWeight": uint64(300),
	}
	if st.Name != s3.unit || fmt.Sprint(st.Props) != fmt.Sprint(want) {
		t.Errorf("StartTransientUnit(%q) properties\n%v\nwant\n%v", st.Name, st.Props, want)
	}
	child3.Process.Kill()
	child3.Wait()
	if err := g3.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestScopeVerify checks the read-back of the limits systemd applied, on
// the fake cgroupfs: a size reads back rounded down to a page.
func TestScopeVerify(t *testing.T) {
	h, f := newHost(t, v2Mounts(), v2All...)
	// The scope's parent gives it the controllers, as systemd's slice does.
	for _, c := range []string{"memory", "pids", "cpu", "io"} {
		if err := h.fs.WriteFile(top+"/cgroup.subtree_control", "+"+c); err != nil {
			t.Fatal(err)
		}
	}
	dir := top + "/x.scope"
	if err := h.fs.Mkdir(dir); err != nil {
		t.Fatal(err)
	}
	l := Limits{Memory: 100000000, Pids: 16, CPUs: 1.5, CPUWeight: 200, IOWeight: 300}
	s := &scope{h: h, dir: dir, unit: "x.scope", limits: l}
	good := map[string]string{
		"memory.max": "99999744", "memory.swap.max": "0", "pids.max": "16",
		"cpu.max": "150000 100000", "cpu.weight": "200", "io.weight": "default 300\n8:0 100",
	}
	for file, v := range good {
		f.set(dir+"/"+file, v)
	}
	if err := s.verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for file, bad := range map[string]string{
		"memory.max": "max", "memory.swap.max": "max", "pids.max": "15",
		"cpu.max": "max 100000", "cpu.weight": "100", "io.weight": "default 100",
	} {
		f.set(dir+"/"+file, bad)
		err := s.verify()
		if err == nil || !strings.Contains(err.Error(), "systemd set "+file) {
			t.Errorf("%s = %q: verify gave %v", file, bad, err)
		}
		f.set(dir+"/"+file, good[file])
	}
}

// TestScopeProperties checks the swap arithmetic of the scope's limits.
func TestScopeProperties(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		swap any
	}{
		{Limits{Memory: 1 << 30}, uint64(0)},
		{Limits{Memory: 1 << 30, MemorySwap: 3 << 30}, uint64(2 << 30)},
		{Limits{Memory: 1 << 30, MemorySwap: Unlimited}, uint64(Unlimited)},
		{Limits{Pids: 5}, nil},
	} {
		s := &scope{limits: tc.l}
		var e dbus.Encoder
		e.Array(8, func() {
			for _, p := range s.properties(7) {
				p(&e)
			}
		})
		d := &dbus.Decoder{B: e.Bytes()}
		props := map[string]any{}
		for end := d.ArrayEnd(8); d.Off < end && d.Err == nil; {
			d.Align(8)
			name := d.Str()
			props[name] = d.Variant()
		}
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		if got := props["MemorySwapMax"]; fmt.Sprint(got) != fmt.Sprint(tc.swap) {
			t.Errorf("%+v: MemorySwapMax = %v, want %v", tc.l, got, tc.swap)
		}
	}
}
