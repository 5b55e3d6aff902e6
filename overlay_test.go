package hakoniwa

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOverlay writes through each kind of overlay: the write is visible
// inside and never reaches the lower directory; with an upper directory,
// the upper holds it (a deletion as a whiteout), and the next run sees it.
func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "a"), []byte("lower's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lowerTree := tree(t, lower)

	got := sh(t, kiss(t).TmpOverlay(lower, "/o"), "echo new > /o/b && echo more >> /o/a && rm /o/a && ls -A /o")
	if got != "b\n" || tree(t, lower) != lowerTree {
		t.Errorf("tmp overlay: got %q; lower now %s", got, tree(t, lower))
	}
	if entries, _ := os.ReadDir(upper); len(entries) != 0 {
		t.Errorf("the tmp overlay wrote to %s", upper)
	}

	c := kiss(t).Overlay(lower, upper, work, "/o")
	if got := sh(t, c, "echo new > /o/b && rm /o/a && ls -A /o"); got != "b\n" {
		t.Errorf("overlay: got %q", got)
	}
	if tree(t, lower) != lowerTree {
		t.Errorf("the overlay changed its lower directory: %s", tree(t, lower))
	}
	if b, err := os.ReadFile(filepath.Join(upper, "b")); err != nil || string(b) != "new\n" {
		t.Errorf("upper/b: %q, %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(upper, "a")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("upper/a should be a whiteout: %v %v", fi, err)
	}
	// The next run sees the upper's state.
	if got := sh(t, kiss(t).Overlay(lower, upper, work, "/o"), "ls -A /o; cat /o/b"); got != "b\nnew\n" {
		t.Errorf("second run: got %q", got)
	}
}

// TestRootdirOverlay changes a throwaway copy of a busybox tree, as a
// package manager would, with mount points made in it; the tree is
// unchanged, run after run.
func TestRootdirOverlay(t *testing.T) {
	root := busyboxRoot(t)
	before := tree(t, root)
	for i := range 2 {
		c := New().RootdirOverlay(root).Tmpfs("/var/cache", "").Devfs("/dev")
		got := sh(t, c, "echo installed >> /etc/os-release && mkdir -p /usr/lib/pkg && touch /usr/lib/pkg/x && rm /bin/ls && cat /etc/os-release && ls /var/cache | wc -l; ls /bin/ls 2>/dev/null || echo gone")
		if want := "NAME=busybox-test\ninstalled\n0\ngone\n"; got != want {
			t.Errorf("run %d: got %q, want %q", i, got, want)
		}
		if after := tree(t, root); after != before {
			t.Fatalf("run %d changed the tree:\n%s\nwas\n%s", i, after, before)
		}
	}
}

func TestOverlayErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		c    *Container
		want string
	}{
		{New().TmpOverlay("rel", "/o"), "overlay rel:/o: rel: not an absolute path"},
		{New().TmpOverlay("/no/such/dir", "/o"), "overlay /no/such/dir:/o: stat /no/such/dir: no such file or directory"},
		{New().TmpOverlay(file, "/o"), "not a directory"},
		{New().Overlay(dir, dir+"/u", "", "/o"), "give both the upper and the work directory, or neither"},
		{New().Overlay(dir, dir, dir, "/o"), "overlap: overlayfs wants separate directories"},
		{New().Overlay("/usr", dir, "/usr/lib", "/o"), "/usr and /usr/lib overlap"},
	} {
		err := tc.c.Command("/bin/true").Run()
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
