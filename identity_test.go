package hakoniwa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
)

// subID is the first id of the caller's /etc/subuid and /etc/subgid
// range, which testutil gives both kinds of caller.
func subID() uint32 {
	if os.Getuid() == 0 {
		return testutil.RootSubID
	}
	return testutil.UnprivSubID
}

// haveSubIDs skips where the caller has no range of subordinate ids (the
// tests' setup adds them when it runs as root), or newuidmap is missing.
func haveSubIDs(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile("/etc/subuid")
	_, err := os.Stat("/usr/bin/newuidmap")
	if !strings.Contains(string(b), fmt.Sprintf(":%d:%d", subID(), testutil.SubIDCount)) || err != nil && os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI the tests' /etc/subuid range and newuidmap (Debian's uidmap) must be there: %q, %v", b, err)
		}
		t.Skip("no /etc/subuid range for the tests (run them as root) or no newuidmap")
	}
}

// TestUserNSAuto maps 0 to the caller and 1 up to its subordinate ids: the
// sandbox sees the ranges (in the nested namespace that locks the mounts,
// which maps them to themselves), chown to a mapped id works in a tmpfs,
// and lands on the host as the subordinate id in a rw bind.
func TestUserNSAuto(t *testing.T) {
	haveSubIDs(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	c := New().Rootfs("/").UserNSAuto(true).Tmpfs("/t", "").BindRW(dir, "/h")
	got := sh(t, c, "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u; touch /t/f /h/f && chown 1000:44 /t/f /h/f && stat -c '%u:%g' /t/f")
	want := " 0 0 1\n 1 1 65536\n 0 0 1\n 1 1 65536\n0\n1000:44\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != subID()+999 || st.Gid != subID()+43 {
		t.Errorf("on the host the file is %d:%d, want %d:%d", st.Uid, st.Gid, subID()+999, subID()+43)
	}
}

// TestMultiRangeMaps gives the maps explicitly.
func TestMultiRangeMaps(t *testing.T) {
	haveSubIDs(t)
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	c := New().Rootfs("/").
		UIDMaps(IDMap{0, uid, 1}, IDMap{1000, subID(), 10}).
		GIDMaps(IDMap{0, gid, 1}, IDMap{1000, subID(), 10}).
		Tmpfs("/t", "")
	got := sh(t, c, "cat /proc/self/uid_map | tr -s ' '; touch /t/f && chown 1009:1009 /t/f && stat -c '%u:%g' /t/f; chown 1010 /t/f 2>/dev/null || echo 1010 unmapped")
	if want := " 0 0 1\n 1000 1000 10\n1009:1009\n1010 unmapped\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestUser switches to users and groups of a busybox tree's own
// /etc/passwd and /etc/group, and checks id's output exactly.
func TestUser(t *testing.T) {
	haveSubIDs(t)
	root := busyboxRoot(t)
	for _, tc := range []struct{ user, want string }{
		{"root", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"},
		{"root:root", "uid=0(root) gid=0(root) groups=0(root)"},
		{"root:root:wheel,video", "uid=0(root) gid=0(root) groups=0(root),10(wheel),44(video)"},
		{"alice", "uid=1000(alice) gid=1000(alice) groups=10(wheel),44(video),1000(alice)"}, // the kernel sorts them
		{"bob", "uid=1001(bob) gid=1001(bob) groups=1001(bob)"},
		{"1001:44", "uid=1001(bob) gid=44(video) groups=44(video)"},
		{"alice:bob:video", "uid=1000(alice) gid=1001(bob) groups=44(video),1001(bob)"},
	} {
		c := New().Rootdir(root, false).UserNSAuto(true).User(tc.user)
		out, err := c.Command("/bin/id").Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("--user %s: got %q (%v), want %q", tc.user, got, err, tc.want)
		}
	}
	// A user other than root has no capabilities; root inside has them.
	for user, want := range map[string]string{"alice": "0000000000000000", "root": "000001ffffffffff"} {
		c := New().Rootdir(root, false).UserNSAuto(true).User(user)
		if got := sh(t, c, "while read k v; do [ $k = CapEff: ] && echo $v; done < /proc/self/status; true"); strings.TrimSpace(got) != want {
			t.Errorf("--user %s: CapEff %q, want %q", user, got, want)
		}
	}
}

func TestIdentityErrors(t *testing.T) {
	haveSubIDs(t)
	root := busyboxRoot(t)
	uid := uint32(os.Getuid())
	tests := []struct {
		c    *Container
		want string
	}{
		{New().Rootdir(root, false).User("alice"), "user alice: uid 1000 is not mapped"},
		{New().Rootdir(root, false).UserNSAuto(true).User("carol"), `user carol: no user "carol" in the sandbox's /etc/passwd`},
		{New().Rootdir(root, false).UserNSAuto(true).User("alice:staff"), `user alice:staff: no group "staff" in the sandbox's /etc/group`},
		{New().Rootdir(root, false).UserNSAuto(true).User("5000"), "uid 5000 has no entry in the sandbox's /etc/passwd to take a group from"},
		{New().UserNSAuto(true).User("alice"), "user alice: the sandbox's /etc/passwd: not in the sandbox"},
		{New().UIDMaps(IDMap{0, uid, 1}, IDMap{0, subID(), 10}), "overlap inside"},
		{New().UIDMaps(IDMap{0, uid, 1}, IDMap{1, uid, 10}), "overlap on the host"},
		{New().UIDMaps(IDMap{0, uid, 0}), "has no ids"},
		{New().UserNSAuto(true).UID(0), "userns auto: cannot be given with uid or gid maps"},
	}
	if os.Getuid() != 0 {
		// newgidmap refuses what /etc/subgid does not give: quoted.
		tests = append(tests, struct {
			c    *Container
			want string
		}{New().GIDMaps(IDMap{0, 500000, 10}), "map the ids: newgidmap"})
	}
	for _, tc := range tests {
		cmd := tc.c.Command("/bin/true")
		err := cmd.Run()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
			continue
		}
		var se *SetupError
		var ce *ConfigError
		if !errors.As(err, &se) && !errors.As(err, &ce) || cmd.Result.Status != StatusSE {
			t.Errorf("%v: %T, status %s", err, err, cmd.Result.Status)
		}
	}
	if os.Getuid() != 0 {
		err := New().GIDMaps(IDMap{0, 500000, 10}).Command("/bin/true").Run()
		if err == nil || !strings.Contains(err.Error(), "gid range [0-10) -> [500000-500010) not allowed") {
			t.Errorf("err = %v, want newgidmap's own words", err)
		}
	}
}

func TestAutoMaps(t *testing.T) {
	dir := t.TempDir()
	name := userName(os.Getuid())
	file := filepath.Join(dir, "subuid")
	uid := uint32(os.Getuid())
	for _, tc := range []struct {
		contents string
		want     string // maps, or an error
	}{
		{fmt.Sprintf("%s:100000:65536\n", name), fmt.Sprintf("0:%d:1,1:100000:65536", uid)},
		{fmt.Sprintf("%d:100000:10\nother:5:5\n%s:200000:5\n", uid, name), fmt.Sprintf("0:%d:1,1:100000:10,11:200000:5", uid)},
		{fmt.Sprintf("%d:100000:10\n%s:100000:10\n", uid, name), fmt.Sprintf("0:%d:1,1:100000:10", uid)}, // the same range twice
		{"other:100000:65536\n", "has no range for"},
		{fmt.Sprintf("%s:bad:10\n", name), "has no range for"},
	} {
		if err := os.WriteFile(file, []byte(tc.contents), 0o644); err != nil {
			t.Fatal(err)
		}
		maps, err := autoMaps(file, uid)
		got := mapsString(maps)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.contents, got, tc.want)
		}
	}
	if _, err := autoMaps(filepath.Join(dir, "missing"), uid); err == nil || !strings.Contains(err.Error(), "uidmap package") {
		t.Errorf("missing file: %v", err)
	}
}

// userName is the name of uid, or the number.
func userName(uid int) string {
	b, _ := os.ReadFile("/etc/passwd")
	for _, rec := range records(b) {
		if len(rec) > 2 && rec[2] == fmt.Sprint(uid) {
			return rec[0]
		}
	}
	return fmt.Sprint(uid)
}
