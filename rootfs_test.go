package hakoniwa

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// busybox is the static busybox of Debian's busybox-static, which .ci/run
// installs.
const busybox = "/bin/busybox"

// busyboxRoot builds a small root file system from busybox: /bin with the
// applets as symlinks, a lib -> usr/lib symlink, /etc with a passwd and
// group of several users, and the usual empty mount points. It is made
// fresh by each test, never committed.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath(busybox); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI, %s (Debian's busybox-static) must be there", busybox)
		}
		t.Skipf("%s is missing (apt-get install busybox-static)", busybox)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "dev", "tmp", "usr/lib", "home/alice", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "ls", "cat", "id", "echo", "touch", "mkdir", "chown", "stat", "readlink", "find", "sort", "rm"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n",
		"etc/group":       "root:x:0:\nwheel:x:10:alice,root\nvideo:x:44:alice\nalice:x:1000:\nbob:x:1001:\n",
		"etc/resolv.conf": "nameserver 192.0.2.99\n",
		"etc/os-release":  "NAME=busybox-test\n",
	}
	for name, contents := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(contents), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// tree lists everything under dir, with modes, for comparing before and
// after.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, strings.TrimPrefix(p, dir)+" "+fi.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestRootdir runs on a busybox tree as the root, read-only and then
// read-write, each twice in a row, with a devfs, a tmpfs and a file over
// its resolv.conf: the tree is unchanged but for what the command wrote.
func TestRootdir(t *testing.T) {
	root := busyboxRoot(t)
	before := tree(t, root)
	for i := range 2 {
		c := New().Rootdir(root, false).Devfs("/dev").Tmpfs("/tmp", "").File("/etc/resolv.conf", []byte("nameserver 192.0.2.1\n"))
		got := sh(t, c, "cat /etc/os-release /etc/resolv.conf; ls /; ls /dev | wc -l; touch /tmp/ok && echo tmp ok; touch /x 2>/dev/null || echo read-only")
		want := "NAME=busybox-test\nnameserver 192.0.2.1\nbin\ndev\netc\nhome\nlib\nproc\nroot\ntmp\nusr\n14\ntmp ok\nread-only\n"
		if got != want {
			t.Errorf("run %d, read-only: got %q, want %q", i, got, want)
		}
		if after := tree(t, root); after != before {
			t.Fatalf("run %d changed the root directory:\n%s\nwas\n%s", i, after, before)
		}
	}
	for i := range 2 {
		c := New().Rootdir(root, true).Devfs("/dev")
		if got := sh(t, c, "echo hi > /home/alice/note && cat /home/alice/note"); got != "hi\n" {
			t.Errorf("run %d, read-write: got %q", i, got)
		}
		if b, err := os.ReadFile(filepath.Join(root, "home/alice/note")); err != nil || string(b) != "hi\n" {
			t.Errorf("run %d: the write did not reach the directory: %q %v", i, b, err)
		}
	}
	os.Remove(filepath.Join(root, "home/alice/note"))
	if after := tree(t, root); after != before {
		t.Errorf("the read-write runs left more than the note:\n%s\nwas\n%s", after, before)
	}
}

// TestRootfs builds the root from a directory's top-level entries, from
// the host's /, and from nothing.
func TestRootfs(t *testing.T) {
	root := busyboxRoot(t)
	// proc and dev are not bound; lib -> usr/lib is kept as a symlink.
	got := sh(t, New().Rootfs(root), "ls /; readlink /lib; readlink /bin/sh; cat /etc/os-release; touch /etc/x 2>/dev/null || echo read-only")
	if want := "bin\netc\nhome\nlib\nproc\nroot\ntmp\nusr\nusr/lib\nbusybox\nNAME=busybox-test\nread-only\n"; got != want {
		t.Errorf("rootfs DIR: got %q, want %q", got, want)
	}
	// The host's /: its top-level symlinks stay symlinks.
	var want []string
	for _, name := range hostRootfs {
		fi, err := os.Lstat("/" + name)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ := os.Readlink("/" + name)
			want = append(want, name+" -> "+link)
		} else {
			want = append(want, name+" dir")
		}
	}
	script := `for f in bin etc lib lib32 lib64 sbin usr; do if [ -L /$f ]; then echo "$f -> $(readlink /$f)"; elif [ -d /$f ]; then echo "$f dir"; fi; done`
	if got := sh(t, New().Rootfs("/"), script); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("rootfs /: got %q, want %q", got, want)
	}
	// none: only what is asked for.
	c := New().Rootfs("none").BindRO(filepath.Join(root, "bin/busybox"), "/busybox")
	out, err := c.Command("/busybox", "ls", "/").Output()
	if err != nil || string(out) != "busybox\nproc\n" {
		t.Errorf("rootfs none: %q, %v", out, err)
	}
	// A mount of the caller's own at the same target wins.
	if got := sh(t, New().Rootfs(root).Tmpfs("/etc", ""), "ls /etc | wc -l"); strings.TrimSpace(got) != "0" {
		t.Errorf("a tmpfs over the rootfs's /etc: %q", got)
	}
}

func TestRootErrors(t *testing.T) {
	root := busyboxRoot(t)
	file := filepath.Join(root, "etc/passwd")
	for _, tc := range []struct {
		c    *Container
		want string
	}{
		{New().Rootdir("rel", false), "rootdir rel: must be an absolute path"},
		{New().Rootdir("/no/such/dir", false), "rootdir /no/such/dir: stat /no/such/dir: no such file or directory"},
		{New().Rootdir(file, false), "rootdir " + file + ": not a directory"},
		{New().Rootdir(root, false).Tmpfs("/srv", ""), "/srv: lies in the bind of " + root + " at /, and " + root + "/srv does not exist"},
		{New().Rootdir(root, false).File("/new", nil), "file /new: lies in the bind of " + root + " at /, and " + root + "/new does not exist"},
		{New().Rootdir(root, false).Dir("/d", 0), "dir /d: lies inside the bind of " + root + " at /"},
		{New().Rootfs("rel"), "rootfs rel: want /, an absolute directory, or none"},
		{New().Rootfs("/no/such/dir"), "rootfs /no/such/dir: stat /no/such/dir: no such file or directory"},
		{New().Rootfs(file), "rootfs " + file + ": not a directory"},
	} {
		err := tc.c.Command("/bin/true").Run()
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
