package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
)

// scope is a run's cgroup as a transient scope of the caller's systemd
// user manager, for a caller to whom no cgroup is delegated: systemd moves
// the child into it after the clone (the child waits), and the limits are
// the scope's properties. systemd removes the scope when it is empty.
type scope struct {
	h      *host
	m      mount
	limits Limits
	log    func(string)
	bus    *dbus.Conn
	unit   string
	cg     string // the scope's cgroup path, once attached
	dir    string
}

// systemd's D-Bus names.
const (
	systemdDest  = "org.freedesktop.systemd1"
	systemdPath  = "/org/freedesktop/systemd1"
	systemdIface = "org.freedesktop.systemd1.Manager"
)

// newScope connects to the user's bus, where systemd --user listens.
func newScope(h *host, m mount, cfg Config, log func(string)) (*scope, error) {
	if h.bus == nil {
		return nil, errors.New("no D-Bus")
	}
	bus, err := h.bus()
	if err != nil {
		return nil, err
	}
	return &scope{h: h, m: m, limits: cfg.Limits, log: log, bus: bus}, nil
}

// systemBus is where the system's systemd answers, for root.
const systemBus = "/run/dbus/system_bus_socket"

// dialUserBus connects to the bus of the caller's systemd: the session
// bus, or for root without one, the system bus.
func dialUserBus(uid int) (*dbus.Conn, error) {
	addr, err := dbus.SessionBusAddress()
	if err != nil && uid == 0 && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		addr, err = systemBus, nil
	}
	if err != nil {
		return nil, err
	}
	return dbus.Dial(addr, uid)
}

func (s *scope) create(name string) error {
	s.unit = "hakoniwa-" + name + ".scope"
	return nil
}

func (s *scope) path() string {
	if s.cg == "" {
		return "(the systemd scope " + s.unit + ")"
	}
	return s.cg
}

func (s *scope) cloneFD() int        { return -1 }
func (s *scope) joinFDs() []JoinFile { return nil }
func (s *scope) attaches() bool      { return true }

// properties are the scope's properties: the child, delegation, and the
// limits.
func (s *scope) properties(pid int) []func(*dbus.Encoder) {
	l := s.limits
	prop := func(name, sig string, value func(*dbus.Encoder)) func(*dbus.Encoder) {
		return func(e *dbus.Encoder) {
			e.Align(8)
			e.Str(name)
			e.Variant(sig, func() { value(e) })
		}
	}
	u64 := func(name string, v uint64) func(*dbus.Encoder) {
		return prop(name, "t", func(e *dbus.Encoder) { e.U64(v) })
	}
	ps := []func(*dbus.Encoder){
		prop("Description", "s", func(e *dbus.Encoder) { e.Str("hakoniwa sandbox") }),
		prop("PIDs", "au", func(e *dbus.Encoder) { e.Array(4, func() { e.U32(uint32(pid)) }) }),
		prop("Delegate", "b", func(e *dbus.Encoder) { e.Bool(true) }),
		prop("CollectMode", "s", func(e *dbus.Encoder) { e.Str("inactive-or-failed") }),
	}
	if l.Memory != 0 {
		ps = append(ps, u64("MemoryMax", l.Memory))
		swap := uint64(0)
		switch {
		case l.MemorySwap == Unlimited || l.Memory == Unlimited:
			swap = Unlimited
		case l.MemorySwap != 0:
			swap = l.MemorySwap - l.Memory
		}
		ps = append(ps, u64("MemorySwapMax", swap))
	}
	if l.Pids != 0 {
		ps = append(ps, u64("TasksMax", l.Pids))
	}
	if l.CPUs != 0 {
		ps = append(ps, u64("CPUQuotaPerSecUSec", uint64(l.CPUs*1e6)))
	}
	if l.CPUWeight != 0 {
		ps = append(ps, u64("CPUWeight", l.CPUWeight))
	}
	if l.IOWeight != 0 {
		ps = append(ps, u64("IOWeight", l.IOWeight))
	}
	return ps
}

// attach asks systemd to start the scope with the child in it, and waits
// until the child is there.
func (s *scope) attach(pid int) error {
	props := s.properties(pid)
	_, err := s.bus.Call(systemdDest, systemdPath, systemdIface, "StartTransientUnit", "ssa(sv)a(sa(sv))", func(e *dbus.Encoder) {
		e.Str(s.unit)
		e.Str("fail")
		e.Array(8, func() {
			for _, p := range props {
				p(e)
			}
		})
		e.Array(8, func() {})
	})
	if err != nil {
		return fmt.Errorf("ask systemd for the scope %s: %w", s.unit, err)
	}
	s.log("cgroup: systemd started the scope " + s.unit)
	// The scope's start job moves the child; wait until it has.
	deadline := time.Now().Add(5 * time.Second)
	for wait := 100 * time.Microsecond; ; wait = min(wait*2, 20*time.Millisecond) {
		cg, err := s.h.cgroupOf(pid)
		if err != nil {
			return fmt.Errorf("the child of the scope %s: %w", s.unit, err)
		}
		if path.Base(cg) == s.unit {
			s.cg = cg
			s.dir, err = fsPath(s.m, cg)
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("systemd did not move the child into the scope %s within 5s (it is in %s)", s.unit, cg)
		}
		time.Sleep(wait)
	}
}

// cgroupOf reads the v2 cgroup of pid.
func (h *host) cgroupOf(pid int) (string, error) {
	b, err := h.fs.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if cg, ok := strings.CutPrefix(string(line), "0::"); ok {
			return cg, nil
		}
	}
	return "", errors.New("no cgroup v2 line in /proc/PID/cgroup")
}

func (s *scope) cpuUsage() (time.Duration, bool) {
	if s.dir == "" {
		return 0, false
	}
	return v2CPUUsage(s.h.fs, s.dir)
}

func (s *scope) stats() Stats {
	if s.dir == "" {
		return Stats{}
	}
	return v2Stats(s.h.fs, s.dir)
}

// destroy has systemd kill whatever is left in the scope, and waits until
// it is empty; systemd then removes it.
func (s *scope) destroy() error {
	defer s.bus.Close()
	if s.dir == "" {
		return nil
	}
	procs := path.Join(s.dir, "cgroup.procs")
	if ps, err := pids(s.h.fs, procs); err != nil || len(ps) == 0 {
		return nil
	}
	_, err := s.bus.Call(systemdDest, systemdPath, systemdIface, "KillUnit", "ssi", func(e *dbus.Encoder) {
		e.Str(s.unit)
		e.Str("all")
		e.U32(9) // SIGKILL
	})
	if err != nil {
		return fmt.Errorf("ask systemd to kill the scope %s: %w", s.unit, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for wait := 100 * time.Microsecond; ; wait = min(wait*2, 50*time.Millisecond) {
		ps, err := pids(s.h.fs, procs)
		if err != nil && errors.Is(err, os.ErrNotExist) || len(ps) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes are still in the scope %s 10s after systemd killed it", s.unit)
		}
		time.Sleep(wait)
	}
}
