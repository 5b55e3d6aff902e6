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
	// The host may list more ranges for the caller than the tests'
	// own: what to expect comes from the files.
	uids, err := autoMaps("/etc/subuid", uint32(os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	gids, err := autoMaps("/etc/subgid", uint32(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	c := New().Rootfs("/").UserNSAuto(true).Tmpfs("/t", "").BindRW(dir, "/h")
	got := sh(t, c, "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u; touch /t/f /h/f && chown 1000:44 /t/f /h/f && stat -c '%u:%g' /t/f")
	var want strings.Builder
	for _, m := range append(selfMaps(uids), selfMaps(gids)...) {
		fmt.Fprintf(&want, " %d %d %d\n", m.Inside, m.Outside, m.Count) // as tr -s leaves the kernel's columns
	}
	want.WriteString("0\n1000:44\n")
	if got != want.String() {
		t.Errorf("got %q, want %q", got, want.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	hostUID, _ := outside(uids, 1000)
	hostGID, _ := outside(gids, 44)
	if st.Uid != hostUID || st.Gid != hostGID {
		t.Errorf("on the host the file is %d:%d, want %d:%d", st.Uid, st.Gid, hostUID, hostGID)
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

// TestCallerUnmapped maps ranges that leave out the caller's own ids (as
// podman does as root: 0 inside is a subordinate id): the sandbox becomes
// the lowest id inside, files it makes belong to the subordinate ids on
// the host, and none of the caller's groups is kept. The setup runs as
// that id: what it binds must be reachable by it.
func TestCallerUnmapped(t *testing.T) {
	haveSubIDs(t)
	dir, err := os.MkdirTemp("/tmp", "hakoniwa-unmapped-") // t.TempDir's and $TMPDIR's parents may be 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	c := New().Rootfs("/").UIDMaps(IDMap{0, subID(), 100}).GIDMaps(IDMap{0, subID(), 100}).BindRW(dir, "/h")
	got := sh(t, c, "id -u; id -g; id -G; touch /h/f")
	if got != "0\n0\n0\n" {
		t.Errorf("got %q", got)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil || st.Uid != subID() || st.Gid != subID() {
		t.Errorf("on the host the file is %d:%d (%v), want %d:%d", st.Uid, st.Gid, err, subID(), subID())
	}
}

// pySecurebits prints the securebits and the effective capabilities.
const pySecurebits = `import ctypes
print(ctypes.CDLL(None).prctl(27, 0, 0, 0, 0))  # PR_GET_SECUREBITS
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])
`

// TestSwitchLeavesNoSecurebits checks that the switch of uid leaves the
// command no securebits (SECBIT_NO_SETUID_FIXUP would let a root command
// that drops to another uid keep its capabilities).
func TestSwitchLeavesNoSecurebits(t *testing.T) {
	haveSubIDs(t)
	for _, tc := range []struct {
		c    *Container
		want string
	}{
		{New().Rootfs("/").UserNSAuto(true).User("1000:1000"), "0\n0000000000000000"},
		{New().Rootfs("/").UserNSAuto(true).User("0:0"), "0\n000001ffffffffff"},
		{New().Rootfs("/").UIDMaps(IDMap{0, subID(), 100}).GIDMaps(IDMap{0, subID(), 100}), "0\n000001ffffffffff"},
	} {
		out, err := tc.c.Command("/usr/bin/python3", "-c", pySecurebits).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("got %q (%v), want %q", got, err, tc.want)
		}
	}
}

// TestUserLookupSafe reads the sandbox's /etc/passwd as the sandbox would:
// an absolute symlink resolves inside the root, and a FIFO planted there
// is refused, not waited on.
func TestUserLookupSafe(t *testing.T) {
	haveSubIDs(t)
	root := busyboxRoot(t)
	passwd := filepath.Join(root, "etc/passwd")
	if err := os.Rename(passwd, passwd+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd.real", passwd); err != nil {
		t.Fatal(err)
	}
	out, err := New().Rootdir(root, false).UserNSAuto(true).User("bob").Command("/bin/id", "-u").Output()
	if err != nil || string(out) != "1001\n" {
		t.Errorf("through an absolute symlink: %q, %v", out, err)
	}
	os.Remove(passwd)
	if err := syscall.Mkfifo(passwd, 0o644); err != nil {
		t.Fatal(err)
	}
	err = New().Rootdir(root, false).UserNSAuto(true).User("bob").Command("/bin/true").Run()
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("a FIFO: %v", err)
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
		{New().UserNSAuto(true).Pids(1).CgroupParent(testutil.CgroupParent()), "pids 1: with several ids the setup forks a second process"},
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
		if err == nil || !strings.Contains(err.Error(), "gid range [0-10) -> [500000-500010) not allowed") || !strings.Contains(err.Error(), "/etc/subgid lists those you may map") {
			t.Errorf("err = %v, want newgidmap's own words", err)
		}
	}
	// Where the sandbox maps its own ids alone it may not set groups:
	// --user with none but the user's group still works.
	out, err := New().Rootdir(root, false).UID(0).GID(0).User("0:0").Command("/bin/id").Output()
	if err != nil || strings.TrimSpace(string(out)) != "uid=0(root) gid=0(root)" {
		t.Errorf("--user 0:0 with the caller's ids alone: %q, %v", out, err)
	}
	// The primary group given again as a supplementary one is set once.
	out, err = New().Rootdir(root, false).UserNSAuto(true).User("0:0:root,wheel,wheel").Command("/bin/id").Output()
	if err != nil || strings.TrimSpace(string(out)) != "uid=0(root) gid=0(root) groups=0(root),10(wheel)" {
		t.Errorf("--user 0:0:root,wheel,wheel: %q, %v", out, err)
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
