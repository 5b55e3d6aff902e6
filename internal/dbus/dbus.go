// Package dbus is a minimal D-Bus client: enough to ask systemd for a
// transient scope (method calls with strings, booleans, integers, arrays of
// them and variants) and to read replies, plus what a test needs to answer
// calls. It speaks the wire format of the D-Bus specification,
// little-endian, over a unix socket with EXTERNAL authentication. A full
// client library would be a large dependency for a few method calls.
package dbus

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// callTimeout bounds the authentication and each call.
const callTimeout = 10 * time.Second

// Conn is a connection to a message bus.
type Conn struct {
	c      net.Conn
	r      *bufio.Reader
	serial uint32
}

// busAddress finds the user's session bus: $DBUS_SESSION_BUS_ADDRESS, or
// the socket systemd makes in $XDG_RUNTIME_DIR.
func SessionBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		for _, part := range strings.Split(a, ";") {
			kind, rest, _ := strings.Cut(part, ":")
			if kind != "unix" {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				switch k, v, _ := strings.Cut(kv, "="); k {
				case "path":
					return v, nil
				case "abstract":
					return "@" + v, nil
				}
			}
		}
		return "", fmt.Errorf("DBUS_SESSION_BUS_ADDRESS %q has no unix path", a)
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = "/run/user/" + strconv.Itoa(os.Geteuid())
	}
	p := dir + "/bus"
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no session bus: DBUS_SESSION_BUS_ADDRESS is unset and %w", err)
	}
	return p, nil
}

// dialBus connects to the bus at the socket path addr (@ for an abstract
// one), authenticates as the caller and says Hello.
func Dial(addr string, uid int) (*Conn, error) {
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(callTimeout))
	d := &Conn{c: c, r: bufio.NewReader(c)}
	if err := d.auth(uid); err != nil {
		c.Close()
		return nil, fmt.Errorf("authenticate to the bus %s: %w", addr, err)
	}
	if _, err := d.Call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("hello to the bus %s: %w", addr, err)
	}
	return d, nil
}

func (d *Conn) auth(uid int) error {
	id := hex.EncodeToString([]byte(strconv.Itoa(uid)))
	if _, err := d.c.Write([]byte("\x00AUTH EXTERNAL " + id + "\r\n")); err != nil {
		return err
	}
	line, err := d.r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "OK ") {
		return fmt.Errorf("the bus refused: %q", strings.TrimSpace(line))
	}
	_, err = d.c.Write([]byte("BEGIN\r\n"))
	return err
}

func (d *Conn) Close() { d.c.Close() }

// Error is an error reply: its name, such as
// org.freedesktop.DBus.Error.ServiceUnknown, and its message.
type Error struct{ Name, Msg string }

func (e *Error) Error() string { return e.Name + ": " + e.Msg }

// Call calls a method whose arguments, of signature sig, body encodes, and
// returns the body of the reply, or an *Error.
func (d *Conn) Call(dest, path, iface, member, sig string, body func(*Encoder)) ([]byte, error) {
	d.c.SetDeadline(time.Now().Add(callTimeout))
	d.serial++
	msg := encodeMessage(1, d.serial, []field{
		{1, "o", func(e *Encoder) { e.Str(path) }},
		{2, "s", func(e *Encoder) { e.Str(iface) }},
		{3, "s", func(e *Encoder) { e.Str(member) }},
		{6, "s", func(e *Encoder) { e.Str(dest) }},
	}, sig, body)
	if _, err := d.c.Write(msg); err != nil {
		return nil, err
	}
	for {
		m, err := ReadMessage(d.r)
		if err != nil {
			return nil, err
		}
		if m.ReplySerial != d.serial {
			continue // a signal, such as NameAcquired
		}
		if m.Type == 3 {
			e := &Error{Name: m.ErrorName}
			if strings.HasPrefix(m.Signature, "s") {
				e.Msg, _ = decodeStringAt(m.Body, 0)
			}
			return nil, e
		}
		return m.Body, nil
	}
}

// Read reads the next message, for a connection that answers calls.
func (d *Conn) Read() (*Message, error) { return ReadMessage(d.r) }

// Reply answers the call m: with a return whose body, of signature sig,
// body writes; or, when errName is set, with that error.
func (d *Conn) Reply(m *Message, errName, sig string, body func(*Encoder)) error {
	d.serial++
	fields := []field{
		{5, "u", func(e *Encoder) { e.U32(m.Serial) }},
		{6, "s", func(e *Encoder) { e.Str(m.Sender) }},
	}
	typ := byte(2)
	if errName != "" {
		typ = 3
		fields = append(fields, field{4, "s", func(e *Encoder) { e.Str(errName) }})
	}
	_, err := d.c.Write(encodeMessage(typ, d.serial, fields, sig, body))
	return err
}

// SetDeadline sets the deadline of the connection's reads and writes.
func (d *Conn) SetDeadline(t time.Time) error { return d.c.SetDeadline(t) }

// field is a header field: its code, the type of its value, and how to
// write it.
type field struct {
	code  byte
	typ   string
	value func(*Encoder)
}

// encodeMessage encodes a message of type typ: its header with fields (and
// the signature of the body, if any), padded to 8 bytes, then the body.
func encodeMessage(typ byte, serial uint32, fields []field, sig string, body func(*Encoder)) []byte {
	var b Encoder
	if body != nil {
		body(&b)
	}
	if sig != "" {
		fields = append(fields, field{8, "g", func(e *Encoder) { e.Sig(sig) }})
	}
	var h Encoder
	h.buf = append(h.buf, 'l', typ, 0, 1)
	h.U32(uint32(len(b.buf)))
	h.U32(serial)
	h.Array(8, func() {
		for _, f := range fields {
			h.Align(8)
			h.buf = append(h.buf, f.code)
			h.Sig(f.typ)
			f.value(&h)
		}
	})
	h.Align(8)
	return append(h.buf, b.buf...)
}

// Encoder writes D-Bus values; offsets count from the start of the
// message or body, both 8-aligned.
type Encoder struct{ buf []byte }

// Bytes returns what was written.
func (e *Encoder) Bytes() []byte { return e.buf }

// Align pads to a multiple of n bytes.
func (e *Encoder) Align(n int) {
	for len(e.buf)%n != 0 {
		e.buf = append(e.buf, 0)
	}
}

// U32 writes a uint32 (u).
func (e *Encoder) U32(v uint32) {
	e.Align(4)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
}

// U64 writes a uint64 (t).
func (e *Encoder) U64(v uint64) {
	e.Align(8)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
}

// Bool writes a boolean (b).
func (e *Encoder) Bool(v bool) {
	if v {
		e.U32(1)
	} else {
		e.U32(0)
	}
}

// Str writes a string (s) or an object path (o).
func (e *Encoder) Str(s string) {
	e.U32(uint32(len(s)))
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, 0)
}

// Sig writes a signature (g).
func (e *Encoder) Sig(s string) {
	e.buf = append(e.buf, byte(len(s)))
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, 0)
}

// Array writes an array whose elements align to elemAlign, as elems
// writes them.
func (e *Encoder) Array(elemAlign int, elems func()) {
	e.U32(0)
	at := len(e.buf) - 4
	e.Align(elemAlign)
	start := len(e.buf)
	elems()
	binary.LittleEndian.PutUint32(e.buf[at:], uint32(len(e.buf)-start))
}

// Variant writes a variant of signature sig.
func (e *Encoder) Variant(sig string, value func()) {
	e.Sig(sig)
	value()
}

// Message is a received message.
type Message struct {
	Type        byte // 1 method call, 2 method return, 3 error, 4 signal
	Serial      uint32
	ReplySerial uint32
	Path        string
	Member      string
	Sender      string
	ErrorName   string
	Signature   string
	Body        []byte
}

// maxMessage bounds a message, as the specification does (128 MiB); ours
// are small.
const maxMessage = 1 << 20

func ReadMessage(r *bufio.Reader) (*Message, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, err
	}
	if fixed[0] != 'l' {
		return nil, errors.New("a big-endian message, which this client does not read")
	}
	bodyLen := binary.LittleEndian.Uint32(fixed[4:])
	fieldsLen := binary.LittleEndian.Uint32(fixed[12:])
	if bodyLen > maxMessage || fieldsLen > maxMessage {
		return nil, errors.New("a Message too large")
	}
	headLen := (16 + int(fieldsLen) + 7) &^ 7
	rest := make([]byte, headLen-16+int(bodyLen))
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	m := &Message{Type: fixed[1], Serial: binary.LittleEndian.Uint32(fixed[8:]), Body: rest[headLen-16:]}
	// Header fields, each a struct (byte, variant) aligned to 8 from the
	// start of the message.
	full := append(fixed[:], rest[:headLen-16]...)
	off := 16
	end := 16 + int(fieldsLen)
	for off < end {
		off = (off + 7) &^ 7
		if off+2 > end {
			break
		}
		code := full[off]
		n := int(full[off+1])
		if off+2+n+1 > end {
			return nil, errors.New("a bad header field")
		}
		typ := string(full[off+2 : off+2+n])
		off += 2 + n + 1
		switch typ {
		case "s", "o":
			s, next := decodeStringAt(full, off)
			if next < 0 {
				return nil, errors.New("a bad header string")
			}
			switch code {
			case 1:
				m.Path = s
			case 3:
				m.Member = s
			case 4:
				m.ErrorName = s
			case 7:
				m.Sender = s
			}
			off = next
		case "g":
			if off >= len(full) {
				return nil, errors.New("a bad header signature")
			}
			l := int(full[off])
			if off+1+l+1 > len(full) {
				return nil, errors.New("a bad header signature")
			}
			if code == 8 {
				m.Signature = string(full[off+1 : off+1+l])
			}
			off += 1 + l + 1
		case "u":
			off = (off + 3) &^ 3
			if off+4 > len(full) {
				return nil, errors.New("a bad header integer")
			}
			if code == 5 {
				m.ReplySerial = binary.LittleEndian.Uint32(full[off:])
			}
			off += 4
		default:
			return nil, fmt.Errorf("a header field of type %q", typ)
		}
	}
	return m, nil
}

// decodeStringAt reads the string at off of b, and returns it and the
// offset after it, or -1 when b is too short.
func decodeStringAt(b []byte, off int) (string, int) {
	off = (off + 3) &^ 3
	if off+4 > len(b) {
		return "", -1
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	if n > len(b) || off+4+n+1 > len(b) {
		return "", -1
	}
	return string(b[off+4 : off+4+n]), off + 4 + n + 1
}

// Decoder reads the D-Bus values of a body. The first value it cannot
// read sets Err; the rest then read as zero.
type Decoder struct {
	B   []byte
	Off int
	Err error
}

func (d *Decoder) fail(what string) {
	if d.Err == nil {
		d.Err = fmt.Errorf("bad %s at byte %d", what, d.Off)
	}
}

// Align skips to a multiple of n bytes.
func (d *Decoder) Align(n int) { d.Off = (d.Off + n - 1) / n * n }

// fixed reads n bytes aligned to n, or zeros past the end.
func (d *Decoder) fixed(n int, what string) []byte {
	d.Align(n)
	if d.Off+n > len(d.B) {
		d.fail(what)
		return make([]byte, n)
	}
	d.Off += n
	return d.B[d.Off-n : d.Off]
}

// U32 reads a uint32 (u, b).
func (d *Decoder) U32() uint32 { return binary.LittleEndian.Uint32(d.fixed(4, "uint32")) }

// U64 reads a uint64 (t).
func (d *Decoder) U64() uint64 { return binary.LittleEndian.Uint64(d.fixed(8, "uint64")) }

// Str reads a string (s) or an object path (o).
func (d *Decoder) Str() string {
	s, next := decodeStringAt(d.B, d.Off)
	if next < 0 || d.B[next-1] != 0 {
		d.fail("string")
		return ""
	}
	d.Off = next
	return s
}

// Sig reads a signature (g).
func (d *Decoder) Sig() string {
	if d.Off >= len(d.B) || d.Off+1+int(d.B[d.Off])+1 > len(d.B) {
		d.fail("signature")
		return ""
	}
	n := int(d.B[d.Off])
	s := string(d.B[d.Off+1 : d.Off+1+n])
	d.Off += n + 2
	return s
}

// ArrayEnd reads an array's length and returns where its elements end.
func (d *Decoder) ArrayEnd(elemAlign int) int {
	n := int(d.U32())
	d.Align(elemAlign)
	if d.Off+n > len(d.B) {
		d.fail("array")
		return d.Off
	}
	return d.Off + n
}

// Variant reads a variant of the types a scope's properties use: s, b, t
// and au.
func (d *Decoder) Variant() any {
	switch s := d.Sig(); s {
	case "s":
		return d.Str()
	case "b":
		return d.U32() != 0
	case "t":
		return d.U64()
	case "au":
		var v []uint32
		for end := d.ArrayEnd(4); d.Off < end && d.Err == nil; {
			v = append(v, d.U32())
		}
		return v
	default:
		d.fail("variant of " + s)
		return nil
	}
}
