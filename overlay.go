package hakoniwa

import (
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// checkOverlay checks an overlay's directories: absolute, existing
// directories, the upper and work given together, and none inside another.
func checkOverlay(m Mount) error {
	what := "overlay " + m.Source + ":" + m.Target
	if (m.Upper == "") != (m.Work == "") {
		return configErr(what, "give both the upper and the work directory, or neither (a tmpfs)")
	}
	dirs := []string{m.Source}
	if m.Upper != "" {
		what = "overlay " + m.Source + ":" + m.Upper + ":" + m.Work + ":" + m.Target
		dirs = append(dirs, m.Upper, m.Work)
	}
	for _, d := range dirs {
		if !path.IsAbs(d) {
			return configErr(what, "%s: not an absolute path", d)
		}
		fi, err := os.Stat(d)
		if err != nil {
			return &ConfigError{What: what, Err: err}
		}
		if !fi.IsDir() {
			return configErr(what, "%s: not a directory", d)
		}
	}
	within := func(a, b string) bool {
		return strings.HasPrefix(path.Clean(b)+"/", strings.TrimSuffix(path.Clean(a), "/")+"/")
	}
	for i, a := range dirs {
		for _, b := range dirs[i+1:] {
			if within(a, b) || within(b, a) {
				return configErr(what, "%s and %s overlap: overlayfs wants separate directories", a, b)
			}
		}
	}
	return nil
}

// overlay adds the steps that make a detached overlay mount of lower,
// with its writes in upper (work beside it), or on a tmpfs of its own
// when upper is "", and returns its slot.
func (l *layout) overlay(lower, upper, work string, attrs uint64, desc string) int32 {
	b := l.b
	if upper != "" {
		return b.Overlay(lower, upper, work, -1, -1, attrs, desc)
	}
	t := b.NewMount("tmpfs", [][2]string{{"mode", "0755"}}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, "create a tmpfs for the writes of "+desc)
	b.Mkdir(t, "upper", 0o755, false, "mkdir upper on that tmpfs")
	b.Mkdir(t, "work", 0o755, false, "mkdir work on that tmpfs")
	up := b.Open(t, "upper", unix.O_RDONLY|unix.O_DIRECTORY, 0, resolveInRoot, "open upper")
	wk := b.Open(t, "work", unix.O_RDONLY|unix.O_DIRECTORY, 0, resolveInRoot, "open work")
	m := b.Overlay(lower, "", "", up, wk, attrs, desc)
	b.Close(up)
	b.Close(wk)
	b.Close(t)
	return m
}
