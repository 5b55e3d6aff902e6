package dbus_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/dbus"
	"github.com/hakoniwa-go/hakoniwa/internal/dbus/dbustest"
)

// TestAgainstTheDaemon sends a call that no one answers to a real
// dbus-daemon: the daemon checks the message and replies with its own
// error. It also checks that the daemon refuses to authenticate us as
// another uid.
func TestAgainstTheDaemon(t *testing.T) {
	sock := dbustest.StartBus(t)
	conn, err := dbus.Dial(sock, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Call("org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "KillUnit", "ssi", func(e *dbus.Encoder) {
		e.Str("x.scope")
		e.Str("all")
		e.U32(9)
	})
	var de *dbus.Error
	if !errors.As(err, &de) || de.Name != "org.freedesktop.DBus.Error.ServiceUnknown" || de.Msg == "" {
		t.Fatalf("err = %v, want ServiceUnknown from the daemon", err)
	}
	// A method of the daemon's own, with a reply to read.
	body, err := conn.Call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &dbus.Decoder{B: body}
	if id := d.Str(); d.Err != nil || len(id) != 32 {
		t.Errorf("GetId = %q, %v", id, d.Err)
	}
	if _, err := dbus.Dial(filepath.Join(t.TempDir(), "none"), os.Getuid()); err == nil {
		t.Error("dialled a missing socket")
	}
	if _, err := dbus.Dial(sock, os.Getuid()+1); err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Errorf("authenticating as another uid: %v, want a refusal", err)
	}
}

func TestSessionBusAddress(t *testing.T) {
	for _, tc := range []struct{ env, want, err string }{
		{"unix:path=/run/user/1000/bus", "/run/user/1000/bus", ""},
		{"unix:abstract=/tmp/dbus-x,guid=1", "@/tmp/dbus-x", ""},
		{"tcp:host=localhost,port=1;unix:path=/b", "/b", ""},
		{"tcp:host=localhost,port=1", "", "has no unix path"},
	} {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", tc.env)
		got, err := dbus.SessionBusAddress()
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.env, got, err, tc.want, tc.err)
		}
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := dbus.SessionBusAddress(); err == nil || !strings.Contains(err.Error(), "no session bus") {
		t.Errorf("no bus socket: %v", err)
	}
}

// TestReadMessageRefusesGarbage feeds ReadMessage what a hostile or broken
// peer could send.
func TestReadMessageRefusesGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      []byte("l\x02\x00\x01"),
		"big-endian": append([]byte("B\x02\x00\x01"), make([]byte, 12)...),
		"huge body":  []byte("l\x02\x00\x01\xff\xff\xff\x7f\x01\x00\x00\x00\x00\x00\x00\x00"),
		"truncated":  []byte("l\x02\x00\x01\x08\x00\x00\x00\x01\x00\x00\x00\x10\x00\x00\x00\x05\x01u\x00"),
		"bad field":  []byte("l\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00\x05\x05zzzzzz"),
	} {
		if m, err := dbus.ReadMessage(bufio.NewReader(bytes.NewReader(b))); err == nil {
			t.Errorf("%s: read %+v", name, m)
		}
	}
}

func TestDecoderBounds(t *testing.T) {
	d := &dbus.Decoder{B: []byte{5, 0, 0, 0, 'a', 'b'}}
	if s := d.Str(); s != "" || d.Err == nil {
		t.Errorf("a string past the end read as %q, %v", s, d.Err)
	}
	d = &dbus.Decoder{B: []byte{0xff, 0xff, 0xff, 0x7f}}
	if end := d.ArrayEnd(4); d.Err == nil || end > len(d.B) {
		t.Errorf("an array past the end: end %d, %v", end, d.Err)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("l\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00\x05\x01u\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dbus.ReadMessage(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && len(m.Body) > len(b) {
			t.Fatalf("a body of %d bytes from %d", len(m.Body), len(b))
		}
	})
}
