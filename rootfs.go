package hakoniwa

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hostRootfs are the host's top-level directories that Rootfs("/") binds.
var hostRootfs = []string{"bin", "etc", "lib", "lib32", "lib64", "sbin", "usr"}

// rootfsSkipped are the top-level directories of a Rootfs DIR that are not
// bound: the sandbox gets its own proc, and dev and sys are the host's
// business (--devfs makes a /dev).
var rootfsSkipped = map[string]bool{"proc": true, "dev": true, "sys": true}

// Rootfs fills the root with a base of read-only binds. "/" binds the
// host's bin, etc, lib, lib32, lib64, sbin and usr, those that exist; a
// top-level symlink such as bin -> usr/bin is made as the same symlink. A
// directory (an unpacked distribution, say) binds each of its top-level
// directories but proc, dev and sys, and makes its top-level symlinks.
// "none" or "" adds nothing. Other mounts at the same targets win.
func (c *Container) Rootfs(src string) *Container {
	if src == "none" {
		src = ""
	}
	c.rootfs = src
	return c
}

// rootfsMounts returns the entries of c's Rootfs.
func (c *Container) rootfsMounts(log *slog.Logger) ([]Mount, error) {
	src := c.rootfs
	if src == "" {
		return nil, nil
	}
	what := "rootfs " + src
	if !path.IsAbs(src) {
		return nil, configErr(what, "want /, an absolute directory, or none")
	}
	names := hostRootfs
	if src != "/" {
		fi, err := os.Stat(src)
		if err != nil {
			return nil, &ConfigError{What: what, Err: err}
		}
		if !fi.IsDir() {
			return nil, configErr(what, "not a directory")
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return nil, &ConfigError{What: what, Err: err}
		}
		names = nil
		for _, e := range entries {
			if !rootfsSkipped[e.Name()] {
				names = append(names, e.Name())
			}
		}
	}
	var out []Mount
	for _, name := range names {
		host := filepath.Join(src, name)
		fi, err := os.Lstat(host)
		switch {
		case errors.Is(err, fs.ErrNotExist) && src == "/":
			continue // /lib32 is not everywhere
		case err != nil:
			return nil, &ConfigError{What: what, Err: err}
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(host)
			if err != nil {
				return nil, &ConfigError{What: what, Err: err}
			}
			out = append(out, Mount{Kind: KindSymlink, Target: "/" + name, Link: link})
		case fi.IsDir():
			out = append(out, Mount{Kind: KindBind, Source: host, Target: "/" + name})
		default:
			if log != nil {
				log.Debug(fmt.Sprintf("Rootfs: skipped %s, which is not a directory or a symlink", host))
			}
		}
	}
	return out, nil
}

// rootdir is a host directory used as the root.
type rootdir struct {
	path    string
	real    string // path with symlinks resolved, for the log
	rw      bool
	overlay bool // a writable overlay of path, its writes on a tmpfs
}

// Rootdir uses the host directory dir as the root instead of a new tmpfs:
// read-only unless rw, nosuid and nodev. hakoniwa creates nothing in it:
// every mount point must exist there (a distribution tree has /proc, /dev,
// /tmp...), and what it adds (--devfs, --tmpfs, files over files) are
// mounts, gone with the run, so the same directory serves any number of
// runs. "" goes back to a tmpfs.
func (c *Container) Rootdir(dir string, rw bool) *Container {
	c.rootdir = nil
	if dir != "" {
		c.rootdir = &rootdir{path: dir, rw: rw}
	}
	return c
}

// RootdirOverlay uses a writable view of the host directory dir as the
// root: an overlay whose writes go to a tmpfs and vanish with the run, so
// that a package manager, say, can change a throwaway copy of a
// distribution tree. dir is never changed, and, the writes being the
// sandbox's own, mount points are made as needed.
func (c *Container) RootdirOverlay(dir string) *Container {
	c.rootdir = &rootdir{path: dir, overlay: true}
	return c
}

// setRootdir checks r and makes it the layout's root.
func (l *layout) setRootdir(r *rootdir) error {
	if r == nil {
		return nil
	}
	what := "rootdir " + r.path
	if !path.IsAbs(r.path) {
		return configErr(what, "must be an absolute path")
	}
	fi, err := os.Stat(r.path)
	if err != nil {
		return &ConfigError{What: what, Err: err}
	}
	if !fi.IsDir() {
		return configErr(what, "not a directory")
	}
	real, err := filepath.EvalSymlinks(r.path)
	if err != nil {
		return &ConfigError{What: what, Err: err}
	}
	attrs := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
	if !r.rw {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	rc := *r
	rc.real = real
	l.rootdir = &rc
	if r.overlay {
		return nil // its writes are the sandbox's: entries are made in it
	}
	l.rootEntry = &entry{Mount: Mount{Kind: KindBind, Source: r.path, Target: "/", RW: r.rw}, isDir: true, real: real, attrs: attrs}
	return nil
}
