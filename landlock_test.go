package hakoniwa

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeBuilder records what compileLandlock asks for.
type fakeBuilder struct{ calls []string }

func (f *fakeBuilder) LandlockCreate(fs, net, scoped uint64, size uintptr, desc string) int32 {
	f.calls = append(f.calls, fmt.Sprintf("create fs=%#x net=%#x", fs, net))
	if scoped != 0 && size != 24 || scoped == 0 && size != 16 {
		f.calls = append(f.calls, fmt.Sprintf("BAD SIZE %d", size))
	}
	return 7
}
func (f *fakeBuilder) LandlockPath(ruleset int32, path string, access, fileAccess uint64, desc string) {
	f.calls = append(f.calls, fmt.Sprintf("path %s %#x", path, access))
}
func (f *fakeBuilder) LandlockPort(ruleset int32, port uint16, access uint64, desc string) {
	f.calls = append(f.calls, fmt.Sprintf("port %d %#x", port, access))
}
func (f *fakeBuilder) LandlockRestrict(ruleset int32, desc string) {
	f.calls = append(f.calls, "restrict")
}
func (f *fakeBuilder) Close(slot int32) { f.calls = append(f.calls, "close") }

// TestCompileLandlockABI compiles the same rules for simulated older
// kernels: best effort leaves out what the ABI lacks and says so;
// Strict makes that an error.
func TestCompileLandlockABI(t *testing.T) {
	rules := func(strict bool) *Landlock {
		return &Landlock{FS: []LandlockPath{{"/usr", "r-x"}, {"/tmp", "rw-"}}, TCPConnect: []uint16{443}, Strict: strict}
	}
	tests := []struct {
		abi     int
		strict  bool
		calls   string
		missing string
		err     string
	}{
		{7, false, "create fs=0xffff net=0x2|path /usr 0xd|path /tmp 0xfffe|port 443 0x2|restrict|close", "", ""},
		{5, true, "create fs=0xffff net=0x2|path /usr 0xd|path /tmp 0xfffe|port 443 0x2|restrict|close", "", ""},
		// ABI 3: no ioctl_dev, no TCP.
		{3, false, "create fs=0x7fff net=0x0|path /usr 0xd|path /tmp 0x7ffe|restrict|close", "file system rights 0x8000 (ABI 3)|tcp.connect (needs ABI 4)", ""},
		{3, true, "", "", "cannot enforce file system rights 0x8000 (ABI 3), tcp.connect (needs ABI 4)"},
		// ABI 1: no refer or truncate either.
		{1, false, "create fs=0x1fff net=0x0|path /usr 0xd|path /tmp 0x1ffe|restrict|close", "file system rights 0xe000 (ABI 1)|tcp.connect (needs ABI 4)", ""},
		// No Landlock at all.
		{0, false, "", "all of Landlock (the kernel has none)", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("abi%d-strict%v", tt.abi, tt.strict), func(t *testing.T) {
			var b fakeBuilder
			missing, err := compileLandlock(&b, rules(tt.strict), tt.abi)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(b.calls, "|"); got != tt.calls {
				t.Errorf("calls\n got %s\nwant %s", got, tt.calls)
			}
			if got := strings.Join(missing, "|"); got != tt.missing {
				t.Errorf("missing %q, want %q", got, tt.missing)
			}
		})
	}
	// Scopes: ABI 6.
	var b fakeBuilder
	if _, err := compileLandlock(&b, &Landlock{Scope: []string{"signal", "abstract-unix"}}, 7); err != nil || strings.Join(b.calls, "|") != "create fs=0x0 net=0x0|restrict|close" {
		t.Errorf("scope on ABI 7: %v, %v", b.calls, err)
	}
	if missing, err := compileLandlock(&fakeBuilder{}, &Landlock{Scope: []string{"signal"}}, 5); err != nil || len(missing) != 1 || !strings.Contains(missing[0], "needs ABI 6") {
		t.Errorf("scope on ABI 5: %v, %v", missing, err)
	}
	if _, err := compileLandlock(&fakeBuilder{}, &Landlock{Scope: []string{"signal"}, Strict: true}, 5); err == nil {
		t.Error("strict scope on ABI 5: no error")
	}
	if _, err := compileLandlock(&fakeBuilder{}, &Landlock{Scope: []string{"ptrace"}}, 7); err == nil {
		t.Error("unknown scope: no error")
	}

	// The rights of r, w and x.
	for access, want := range map[string]uint64{"r--": llRead, "-w-": llWrite, "--x": llExec, "rwx": llRead | llWrite | llExec, "R-X": llRead | llExec} {
		if got, err := parseAccess(access); err != nil || got != want {
			t.Errorf("parseAccess(%q) = %#x, %v; want %#x", access, got, err, want)
		}
	}
	for _, bad := range []string{"", "rwz", "read"} {
		if _, err := parseAccess(bad); err == nil {
			t.Errorf("parseAccess(%q): no error", bad)
		}
	}
	if llFile&unix.LANDLOCK_ACCESS_FS_READ_DIR != 0 {
		t.Error("llFile has a directory right")
	}
}
