// Package dbustest runs a private message bus (a real dbus-daemon, which
// checks every message it passes on against the D-Bus specification) and a
// fake systemd on it, for tests of hakoniwa's systemd scopes.
//
// The fake does what systemd --user does for StartTransientUnit with a
// scope: it makes the scope's cgroup in a slice directory, writes the limit
// properties it was given into it where the controllers let it, moves the
// PIDs into it, kills them on KillUnit, and removes the cgroup once it is
// empty. Moving processes needs root.
package dbustest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
)

// busConfig is a session bus on which anyone may own names.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a private dbus-daemon, stopped when the test ends, and
// returns its socket. It skips the test where dbus-daemon is missing, and
// fails it under CI, whose .ci/run installs it.
func StartBus(t testing.TB) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon is missing under CI (.ci/run installs it)")
		}
		t.Skip("no dbus-daemon")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--nopidfile")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The socket exists once bound, which may be before the daemon
	// listens: wait until it answers.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("dbus-daemon did not listen on its socket within 5s")
		}
	}
}

// Systemd is a fake systemd, owning org.freedesktop.systemd1 on a bus.
type Systemd struct {
	t     testing.TB
	conn  *dbus.Conn
	slice string

	mu     sync.Mutex
	starts []Start
	kills  []string
	fail   string
}

// Start is what StartTransientUnit was asked.
type Start struct {
	Name, Mode string
	Props      map[string]any
	AuxLen     uint32 // the byte length of the aux array
}

// StartSystemd connects a fake systemd to the bus at sock; scopes are made
// in the cgroup directory slice.
func StartSystemd(t testing.TB, sock, slice string) *Systemd {
	t.Helper()
	conn, err := dbus.Dial(sock, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	body, err := conn.Call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su", func(e *dbus.Encoder) {
		e.Str("org.freedesktop.systemd1")
		e.U32(0)
	})
	if d := (&dbus.Decoder{B: body}); err != nil || d.U32() != 1 {
		t.Fatalf("RequestName: %v", err)
	}
	conn.SetDeadline(time.Time{})
	s := &Systemd{t: t, conn: conn, slice: slice}
	go s.serve()
	t.Cleanup(conn.Close)
	return s
}

// Starts are the StartTransientUnit calls so far.
func (s *Systemd) Starts() []Start {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Start(nil), s.starts...)
}

// Kills are the KillUnit calls so far, as "UNIT WHOM SIGNAL".
func (s *Systemd) Kills() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.kills...)
}

// Fail makes StartTransientUnit answer with the error name (a unit that
// exists already), or succeed again for "".
func (s *Systemd) Fail(name string) {
	s.mu.Lock()
	s.fail = name
	s.mu.Unlock()
}

func (s *Systemd) serve() {
	for {
		m, err := s.conn.Read()
		if err != nil {
			return
		}
		if m.Type != 1 {
			continue
		}
		switch m.Member {
		case "StartTransientUnit":
			s.start(m)
		case "KillUnit":
			s.kill(m)
		default:
			s.replyErr(m, "org.freedesktop.DBus.Error.UnknownMethod", "no method "+m.Member)
		}
	}
}

func (s *Systemd) replyErr(m *dbus.Message, name, msg string) {
	s.conn.Reply(m, name, "s", func(e *dbus.Encoder) { e.Str(msg) })
}

func (s *Systemd) start(m *dbus.Message) {
	if m.Signature != "ssa(sv)a(sa(sv))" {
		s.replyErr(m, "org.freedesktop.DBus.Error.InvalidArgs", "signature "+m.Signature)
		return
	}
	d := &dbus.Decoder{B: m.Body}
	st := Start{Name: d.Str(), Mode: d.Str(), Props: map[string]any{}}
	for end := d.ArrayEnd(8); d.Off < end && d.Err == nil; {
		d.Align(8)
		name := d.Str()
		st.Props[name] = d.Variant()
	}
	end := d.ArrayEnd(8)
	st.AuxLen = uint32(end - d.Off)
	d.Off = end
	if d.Err == nil && d.Off != len(d.B) {
		d.Err = fmt.Errorf("%d bytes after the arguments", len(d.B)-d.Off)
	}
	s.mu.Lock()
	s.starts = append(s.starts, st)
	fail := s.fail
	s.mu.Unlock()
	if d.Err != nil {
		s.replyErr(m, "org.freedesktop.DBus.Error.InvalidArgs", d.Err.Error())
		return
	}
	if fail != "" {
		s.replyErr(m, fail, "Unit "+st.Name+" already exists.")
		return
	}
	dir := filepath.Join(s.slice, st.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		s.replyErr(m, "org.freedesktop.systemd1.Error", err.Error())
		return
	}
	// The limits, where this hierarchy has the controllers.
	for prop, file := range map[string]string{"MemoryMax": "memory.max", "TasksMax": "pids.max"} {
		if v, ok := st.Props[prop].(uint64); ok {
			os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatUint(v, 10)), 0)
		}
	}
	pids, _ := st.Props["PIDs"].([]uint32)
	for _, pid := range pids {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(int(pid))), 0); err != nil {
			s.replyErr(m, "org.freedesktop.systemd1.Error", err.Error())
			return
		}
	}
	s.conn.Reply(m, "", "o", func(e *dbus.Encoder) { e.Str("/org/freedesktop/systemd1/job/1") })
	go collect(dir)
}

// collect removes a scope's cgroup, and those made below it, once its
// processes are gone, as systemd does with a transient scope.
func collect(dir string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			return
		}
		if strings.Contains(string(b), "populated 0") && removeAll(dir) == nil {
			return
		}
	}
}

// removeAll removes a cgroup and those below it, deepest first.
func removeAll(dir string) error {
	subs, _ := os.ReadDir(dir)
	for _, e := range subs {
		if e.IsDir() {
			removeAll(filepath.Join(dir, e.Name()))
		}
	}
	return syscall.Rmdir(dir)
}

func (s *Systemd) kill(m *dbus.Message) {
	d := &dbus.Decoder{B: m.Body}
	name, whom, sig := d.Str(), d.Str(), d.U32()
	s.mu.Lock()
	s.kills = append(s.kills, fmt.Sprintf("%s %s %d", name, whom, sig))
	s.mu.Unlock()
	// Every process of the unit's cgroup and below.
	filepath.WalkDir(filepath.Join(s.slice, name), func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			syscall.Kill(pid, syscall.Signal(sig))
		}
		return nil
	})
	s.conn.Reply(m, "", "", nil)
}

// Slice makes a slice directory for the fake's scopes at the top of the
// cgroup v2 hierarchy mounted at mountDir, and removes it, with the scopes
// left in it, when the test ends. It returns the directory.
func Slice(t testing.TB, mountDir string) string {
	t.Helper()
	slice := filepath.Join(mountDir, fmt.Sprintf("hakoniwa-test-%d.slice", os.Getpid()))
	if err := os.Mkdir(slice, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// systemd removes a scope once it is empty; so does this.
		subs, _ := os.ReadDir(slice)
		for _, e := range subs {
			if e.IsDir() {
				removeAll(filepath.Join(slice, e.Name()))
			}
		}
		if err := rmdirWait(slice); err != nil {
			t.Errorf("remove %s: %v", slice, err)
		}
	})
	return slice
}

func rmdirWait(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = syscall.Rmdir(dir); err != syscall.EBUSY {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}
