package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
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
	warn   func(string)
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
	return &scope{h: h, m: m, limits: cfg.Limits, log: log, warn: orNop(cfg.Warn), bus: bus}, nil
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
	s.unit = name + ".scope"
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
		ps = append(ps, u64("MemoryMax", l.Memory), u64("MemorySwapMax", s.swap()))
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

// swap is the swap the limits allow beyond memory.
func (s *scope) swap() uint64 {
	l := s.limits
	switch {
	case l.MemorySwap == Unlimited || l.Memory == Unlimited:
		return Unlimited
	case l.MemorySwap != 0:
		return l.MemorySwap - l.Memory
	}
	return 0
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
			if s.dir, err = fsPath(s.m, cg); err != nil {
				return err
			}
			if err := s.verify(); err != nil {
				return err
			}
			return s.intoLeaf(pid)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("systemd did not move the child into the scope %s within 5s (it is in %s)", s.unit, cg)
		}
		time.Sleep(wait)
	}
}

// verify checks that systemd applied every limit: it accepts a property
// for a controller it was not given and then ignores it (a user's systemd
// often lacks cpu and io).
func (s *scope) verify() error {
	fs, l := s.h.fs, s.limits
	read := func(file, prop string) (string, error) {
		b, err := fs.ReadFile(path.Join(s.dir, file))
		if err != nil {
			return "", fmt.Errorf("systemd made the scope %s without %s (no %s: the controller is not delegated to this systemd; see docs/cgroups.md): %w", s.unit, prop, file, err)
		}
		v, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return v, nil
	}
	// A size reads back rounded down to a whole page.
	size := func(file, prop string, want uint64) error {
		got, err := read(file, prop)
		if err != nil {
			return err
		}
		page := uint64(os.Getpagesize())
		n, perr := strconv.ParseUint(got, 10, 64)
		if got == v2Value(want) || perr == nil && want != Unlimited && n <= want && want-n < page {
			return nil
		}
		return fmt.Errorf("systemd set %s to %s in the scope %s, not %s (%s)", file, got, s.unit, v2Value(want), prop)
	}
	exact := func(file, prop, want string) error {
		got, err := read(file, prop)
		if err == nil && got != want {
			err = fmt.Errorf("systemd set %s to %q in the scope %s, not %q (%s)", file, got, s.unit, want, prop)
		}
		return err
	}
	var errs []error
	if l.Memory != 0 {
		errs = append(errs, size("memory.max", "MemoryMax", l.Memory), size("memory.swap.max", "MemorySwapMax", s.swap()))
	}
	if l.Pids != 0 {
		errs = append(errs, exact("pids.max", "TasksMax", v2Value(l.Pids)))
	}
	if l.CPUs != 0 {
		got, err := read("cpu.max", "CPUQuotaPerSecUSec")
		if err == nil {
			var quota, period float64
			if _, serr := fmt.Sscanf(got, "%g %g", &quota, &period); serr != nil || period == 0 || math.Abs(quota/period-l.CPUs) > l.CPUs/100 {
				err = fmt.Errorf("systemd set cpu.max to %q in the scope %s, not %v cpus (CPUQuotaPerSecUSec)", got, s.unit, l.CPUs)
			}
		}
		errs = append(errs, err)
	}
	if l.CPUWeight != 0 {
		errs = append(errs, exact("cpu.weight", "CPUWeight", fmt.Sprint(l.CPUWeight)))
	}
	if l.IOWeight != 0 {
		errs = append(errs, exact("io.weight", "IOWeight", fmt.Sprintf("default %d", l.IOWeight)))
	}
	return errors.Join(errs...)
}

// intoLeaf moves the child on into the scope's leaf, below the limits and
// out of the command's reach (the scope is delegated to the caller).
func (s *scope) intoLeaf(pid int) error {
	leaf := path.Join(s.dir, leafName)
	if err := s.h.fs.Mkdir(leaf); err != nil {
		return fmt.Errorf("make the cgroup %s: %w", leaf, explainWrite(err))
	}
	if err := s.h.fs.WriteFile(path.Join(leaf, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("move the child into %s: %w", leaf, explainWrite(err))
	}
	return nil
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

// stats reads the scope's figures. systemd stops a scope, and removes its
// cgroup, as soon as it is empty, which races with this read at the end of
// a run: the figures may be gone, which the report then says.
func (s *scope) stats() Stats {
	if s.dir == "" {
		return Stats{}
	}
	st := v2Stats(s.h.fs, s.dir)
	if st.CPUTotal == nil {
		s.warn("systemd removed the scope " + s.unit + " as it emptied, before its figures could be read")
	}
	return st
}

// destroy has systemd kill whatever is left in the scope, and waits until
// it is empty; systemd then removes it.
func (s *scope) destroy() error {
	defer s.bus.Close()
	if s.dir == "" {
		return nil
	}
	events := path.Join(s.dir, "cgroup.events")
	if n, ok := readKey(s.h.fs, events, "populated"); !ok || n == 0 {
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
		if n, ok := readKey(s.h.fs, events, "populated"); !ok || n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes are still in the scope %s 10s after systemd killed it", s.unit)
		}
		time.Sleep(wait)
	}
}
