package hakoniwa

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"golang.org/x/sys/unix"
)

// IDMap maps Count ids from Inside, in the sandbox, to the host's ids from
// Outside.
type IDMap struct{ Inside, Outside, Count uint32 }

func (m IDMap) String() string { return fmt.Sprintf("%d:%d:%d", m.Inside, m.Outside, m.Count) }

// UIDMaps maps the sandbox's uids with these ranges instead of the caller's
// uid alone (UID). A single map of the caller's own uid is written by the
// sandbox itself; any other is written by hakoniwa while the sandbox
// waits: directly for root, and otherwise through the setuid newuidmap of
// Debian's uidmap package, which allows the ranges of /etc/subuid. No maps
// goes back to the caller's uid alone. UIDMaps and UID replace each
// other.
func (c *Container) UIDMaps(maps ...IDMap) *Container {
	c.uidMaps, c.uid = append([]IDMap(nil), maps...), nil
	return c
}

// GIDMaps is UIDMaps for gids, with newgidmap and /etc/subgid.
func (c *Container) GIDMaps(maps ...IDMap) *Container {
	c.gidMaps, c.gid = append([]IDMap(nil), maps...), nil
	return c
}

// UserNSAuto maps 0 to the caller and 1 up to the caller's ranges in
// /etc/subuid and /etc/subgid (matched by name or uid), as podman's
// --userns=auto does with a whole range: root inside is the caller, and a
// distribution's users and groups have ids of their own.
func (c *Container) UserNSAuto(on bool) *Container { c.usernsAuto = on; return c }

// User runs the command as USER[:GROUP[:SUPP,...]], looked up in the
// sandbox's own /etc/passwd and /etc/group (a name or a number each),
// not the host's. Without GROUP, the user's primary group and every group
// that lists the user; with GROUP, that group and SUPP only. The ids must
// be mapped (UIDMaps, GIDMaps, UserNSAuto).
func (c *Container) User(spec string) *Container { c.user = spec; return c }

// idPlan is how the sandbox's ids are mapped, and who the command is.
type idPlan struct {
	uid, gid []IDMap
	// parentWrites: the maps are written by hakoniwa, not by the
	// sandbox itself (which may only map the caller's own id).
	parentWrites bool
	cmdUID       uint32 // the command's uid, gid and groups inside
	cmdGID       uint32
	groups       []uint32
	setGroups    bool   // set the groups (User)
	startUID     uint32 // the sandbox's uid and gid inside before it switches
	startGID     uint32
}

// hostRoot reports whether the sandbox can become the host's root: a
// uid or gid of the maps is the host's 0.
func (p *idPlan) hostRoot() bool {
	for _, maps := range [][]IDMap{p.uid, p.gid} {
		for _, m := range maps {
			if m.Outside == 0 {
				return true
			}
		}
	}
	return false
}

// commandIsHostRoot reports whether the command's uid is the host's root.
func (p *idPlan) commandIsHostRoot() bool {
	host, ok := outside(p.uid, p.cmdUID)
	return ok && host == 0
}

// maps returns c's uid and gid maps.
func (c *Container) maps() (uid, gid []IDMap, err error) {
	callerUID, callerGID := uint32(os.Getuid()), uint32(os.Getgid())
	uid, gid = c.uidMaps, c.gidMaps
	if c.usernsAuto {
		if len(uid) > 0 || len(gid) > 0 || c.uid != nil || c.gid != nil {
			return nil, nil, configErr("userns auto", "cannot be given with uid or gid maps")
		}
		if uid, err = autoMaps("/etc/subuid", callerUID); err != nil {
			return nil, nil, err
		}
		if gid, err = autoMaps("/etc/subgid", callerGID); err != nil {
			return nil, nil, err
		}
		return uid, gid, nil
	}
	if len(uid) == 0 {
		inside := callerUID
		if c.uid != nil {
			inside = uint32(*c.uid)
		}
		uid = []IDMap{{inside, callerUID, 1}}
	}
	if len(gid) == 0 {
		inside := callerGID
		if c.gid != nil {
			inside = uint32(*c.gid)
		}
		gid = []IDMap{{inside, callerGID, 1}}
	}
	for _, m := range []struct {
		what string
		maps []IDMap
	}{{"uidmap", uid}, {"gidmap", gid}} {
		if err := checkMaps(m.maps); err != nil {
			return nil, nil, configErr(m.what+" "+mapsString(m.maps), "%v", err)
		}
	}
	return uid, gid, nil
}

func mapsString(maps []IDMap) string {
	var s []string
	for _, m := range maps {
		s = append(s, m.String())
	}
	return strings.Join(s, ",")
}

// checkMaps checks ranges as the kernel would: non-empty, within the id
// space, and overlapping neither inside nor outside.
func checkMaps(maps []IDMap) error {
	if len(maps) > 340 {
		return fmt.Errorf("%d ranges: the kernel takes at most 340", len(maps))
	}
	for i, m := range maps {
		if m.Count == 0 {
			return fmt.Errorf("range %s has no ids", m)
		}
		if uint64(m.Inside)+uint64(m.Count) > maxID+1 || uint64(m.Outside)+uint64(m.Count) > maxID+1 {
			return fmt.Errorf("range %s goes past id %d", m, uint64(maxID))
		}
		for _, o := range maps[:i] {
			if m.Inside < o.Inside+o.Count && o.Inside < m.Inside+m.Count {
				return fmt.Errorf("ranges %s and %s overlap inside", o, m)
			}
			if m.Outside < o.Outside+o.Count && o.Outside < m.Outside+m.Count {
				return fmt.Errorf("ranges %s and %s overlap on the host", o, m)
			}
		}
	}
	return nil
}

// inside returns the id inside that the host's id maps to.
func inside(maps []IDMap, host uint32) (uint32, bool) {
	for _, m := range maps {
		if host >= m.Outside && host-m.Outside < m.Count {
			return m.Inside + (host - m.Outside), true
		}
	}
	return 0, false
}

// outside returns the host's id that the id inside maps to.
func outside(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.Inside && id-m.Inside < m.Count {
			return m.Outside + (id - m.Inside), true
		}
	}
	return 0, false
}

// mapped reports whether the id inside is mapped.
func mapped(maps []IDMap, id uint32) bool {
	_, ok := outside(maps, id)
	return ok
}

// ownOnly reports whether maps map the caller's id alone, which the
// sandbox may write itself; none counts as that too.
func ownOnly(maps []IDMap, caller int) bool {
	return len(maps) == 0 || len(maps) == 1 && maps[0].Outside == uint32(caller) && maps[0].Count == 1
}

// startID is the id the sandbox starts as: what the caller maps to, or,
// unmapped, the lowest id inside.
func startID(maps []IDMap, caller int) uint32 {
	if id, ok := inside(maps, uint32(caller)); ok {
		return id
	}
	return slices.MinFunc(maps, func(a, b IDMap) int { return int(a.Inside) - int(b.Inside) }).Inside
}

// autoMaps maps 0 to the caller and 1 up to the caller's ranges in file
// (/etc/subuid or /etc/subgid), found by the caller's name or number.
func autoMaps(file string, caller uint32) ([]IDMap, error) {
	what := "userns auto"
	// Both files are keyed by the user, by name or uid, as newuidmap
	// and newgidmap read them.
	names := []string{strconv.Itoa(os.Getuid())}
	if u, err := user.LookupId(names[0]); err == nil {
		names = append(names, u.Username)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, configErr(what, "%v (it lists the ids each user may map; Debian's uidmap package and useradd make it)", err)
	}
	defer f.Close()
	maps := []IDMap{{0, caller, 1}}
	next := uint32(1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || !slices.Contains(names, fields[0]) {
			continue
		}
		start, err1 := strconv.ParseUint(fields[1], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		if uint64(next)+count > maxID+1 {
			count = maxID + 1 - uint64(next)
		}
		if slices.ContainsFunc(maps[1:], func(m IDMap) bool { return m.Outside == uint32(start) && m.Count == uint32(count) }) {
			continue // listed under the name and the uid
		}
		maps = append(maps, IDMap{next, uint32(start), uint32(count)})
		next += uint32(count)
		if next > maxID {
			break
		}
	}
	if len(maps) == 1 {
		return nil, configErr(what, "%s has no range for %s (add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s)", file, strings.Join(names[:min(2, len(names))], " or "), names[len(names)-1])
	}
	if err := checkMaps(maps); err != nil {
		return nil, configErr(what, "%s: %v", file, err)
	}
	return maps, nil
}

// idPlan works out the maps and the command's identity; entries are the
// sandbox's, to read its /etc/passwd and /etc/group.
func (c *Container) idPlan(entries []entry) (*idPlan, error) {
	uid, gid, err := c.maps()
	if err != nil {
		return nil, err
	}
	p := &idPlan{
		uid: uid, gid: gid,
		parentWrites: !ownOnly(uid, os.Getuid()) || !ownOnly(gid, os.Getgid()),
		startUID:     startID(uid, os.Getuid()),
		startGID:     startID(gid, os.Getgid()),
	}
	p.cmdUID, p.cmdGID = p.startUID, p.startGID
	if c.user != "" {
		if err := p.lookupUser(c.user, entries, c.rootdir); err != nil {
			return nil, err
		}
		if !mapped(uid, p.cmdUID) {
			return nil, configErr("user "+c.user, "uid %d is not mapped (maps %s; --userns=auto or --uidmap maps more)", p.cmdUID, mapsString(uid))
		}
		for _, g := range append([]uint32{p.cmdGID}, p.groups...) {
			if !mapped(gid, g) {
				return nil, configErr("user "+c.user, "gid %d is not mapped (maps %s; --userns=auto or --gidmap maps more)", g, mapsString(gid))
			}
		}
		// Where the groups cannot be set, the maps hold one gid, the
		// user's: there are no others to set.
		p.setGroups = p.setgroupsAllowed()
	}
	return p, nil
}

// lookupUser resolves USER[:GROUP[:SUPP,...]] in the sandbox's
// /etc/passwd and /etc/group.
func (p *idPlan) lookupUser(spec string, entries []entry, root *rootdir) error {
	what := "user " + spec
	parts := strings.SplitN(spec, ":", 3)
	passwd, err := sandboxFile("/etc/passwd", entries, root)
	if err != nil && !isNumber(parts[0]) {
		return configErr(what, "the sandbox's /etc/passwd: %v", err)
	}
	group, gerr := sandboxFile("/etc/group", entries, root)
	name := ""
	if isNumber(parts[0]) {
		n, _ := strconv.ParseUint(parts[0], 10, 32)
		p.cmdUID = uint32(n)
		if rec := findRecord(passwd, 2, parts[0]); rec != nil {
			name = rec[0]
			g, err := strconv.ParseUint(rec[3], 10, 32)
			if err != nil {
				return configErr(what, "the sandbox's /etc/passwd has a bad entry for %s", name)
			}
			p.cmdGID = uint32(g)
		} else if len(parts) == 1 {
			return configErr(what, "uid %s has no entry in the sandbox's /etc/passwd to take a group from; give USER:GROUP", parts[0])
		}
	} else {
		rec := findRecord(passwd, 0, parts[0])
		if rec == nil {
			return configErr(what, "no user %q in the sandbox's /etc/passwd", parts[0])
		}
		name = rec[0]
		u, err1 := strconv.ParseUint(rec[2], 10, 32)
		g, err2 := strconv.ParseUint(rec[3], 10, 32)
		if err1 != nil || err2 != nil {
			return configErr(what, "the sandbox's /etc/passwd has a bad entry for %s", name)
		}
		p.cmdUID, p.cmdGID = uint32(u), uint32(g)
	}
	groupID := func(s string) (uint32, error) {
		if isNumber(s) {
			n, _ := strconv.ParseUint(s, 10, 32)
			return uint32(n), nil
		}
		if gerr != nil {
			return 0, fmt.Errorf("the sandbox's /etc/group: %v", gerr)
		}
		rec := findRecord(group, 0, s)
		if rec == nil {
			return 0, fmt.Errorf("no group %q in the sandbox's /etc/group", s)
		}
		n, err := strconv.ParseUint(rec[2], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("the sandbox's /etc/group has a bad entry for %s", s)
		}
		return uint32(n), nil
	}
	if len(parts) >= 2 {
		g, err := groupID(parts[1])
		if err != nil {
			return configErr(what, "%v", err)
		}
		p.cmdGID = g
		if len(parts) == 3 && parts[2] != "" {
			for _, s := range strings.Split(parts[2], ",") {
				g, err := groupID(s)
				if err != nil {
					return configErr(what, "%v", err)
				}
				if g != p.cmdGID && !slices.Contains(p.groups, g) {
					p.groups = append(p.groups, g)
				}
			}
		}
	} else if name != "" && gerr == nil {
		// The groups that list the user.
		for _, rec := range records(group) {
			if len(rec) == 4 && slices.Contains(strings.Split(rec[3], ","), name) {
				if n, err := strconv.ParseUint(rec[2], 10, 32); err == nil && uint32(n) != p.cmdGID {
					p.groups = append(p.groups, uint32(n))
				}
			}
		}
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// records splits an /etc/passwd or /etc/group into its fields.
func records(b []byte) [][]string {
	var out [][]string
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		out = append(out, strings.Split(string(line), ":"))
	}
	return out
}

// findRecord returns the first record whose field i is v.
func findRecord(b []byte, i int, v string) []string {
	for _, rec := range records(b) {
		if len(rec) > max(i, 3) && rec[i] == v {
			return rec
		}
	}
	return nil
}

// sandboxFile reads the file at p in the sandbox, before it is made: from
// the file entry or the bind that holds it, or from the root directory.
// Symlinks are resolved as inside the bind or the root (RESOLVE_IN_ROOT),
// and only a regular file is read: a FIFO put there would block.
func sandboxFile(p string, entries []entry, root *rootdir) ([]byte, error) {
	var owner *entry
	for i := range entries {
		e := &entries[i]
		if e.Target == p || strings.HasPrefix(p, e.Target+"/") {
			owner = e // sorted: the deepest comes last
		}
	}
	var dir, rel string
	switch {
	case owner != nil && owner.Kind == KindFile && owner.Target == p:
		return owner.Contents, nil
	case owner != nil && owner.Kind == KindBind && owner.Target == p:
		dir, rel = path.Dir(owner.real), path.Base(owner.real) // symlinks resolved when it was checked
	case owner != nil && owner.Kind == KindBind:
		dir, rel = owner.real, strings.TrimPrefix(p, owner.Target+"/")
	case owner == nil && root != nil:
		dir, rel = root.path, strings.TrimPrefix(p, "/")
	default:
		return nil, errors.New("not in the sandbox")
	}
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(d)
	fd, err := unix.Openat2(d, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path.Join(dir, rel), Err: err}
	}
	f := os.NewFile(uintptr(fd), path.Join(dir, rel))
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.Name())
	}
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// mapLines is a map as the kernel reads it.
func mapLines(maps []IDMap) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.Inside, m.Outside, m.Count)
	}
	return b.String()
}

// selfMaps maps every id inside to itself: the nested namespace's maps.
func selfMaps(maps []IDMap) []IDMap {
	out := make([]IDMap, len(maps))
	for i, m := range maps {
		out[i] = IDMap{m.Inside, m.Inside, m.Count}
	}
	return out
}

// writeMaps writes the maps of the sandbox pid: directly as root, else
// with newuidmap and newgidmap, whose complaint is quoted.
func (p *idPlan) writeMaps(pid int) error {
	if os.Geteuid() == 0 {
		for _, f := range []struct {
			name string
			maps []IDMap
		}{{"uid_map", p.uid}, {"gid_map", p.gid}} {
			name := fmt.Sprintf("/proc/%d/%s", pid, f.name)
			if err := os.WriteFile(name, []byte(mapLines(f.maps)), 0); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
		return nil
	}
	for _, h := range []struct {
		helper string
		maps   []IDMap
	}{{"newuidmap", p.uid}, {"newgidmap", p.gid}} {
		path, err := exec.LookPath(h.helper)
		if err != nil {
			return fmt.Errorf("%s is not installed (Debian and Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils): it maps ranges other than your own id", h.helper)
		}
		args := []string{strconv.Itoa(pid)}
		for _, m := range h.maps {
			args = append(args, strconv.FormatUint(uint64(m.Inside), 10), strconv.FormatUint(uint64(m.Outside), 10), strconv.FormatUint(uint64(m.Count), 10))
		}
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = "(no output)"
			}
			file := "/etc/subuid"
			if h.helper == "newgidmap" {
				file = "/etc/subgid"
			}
			return fmt.Errorf("%s %s failed (%v): %s (the ranges come from --uidmap and --gidmap, config uidmaps and gidmaps, or --userns auto; %s lists those you may map)", h.helper, strings.Join(args, " "), err, strings.ReplaceAll(msg, "\n", "; "), file)
		}
	}
	return nil
}

// idJoin is how the child waits for hakoniwa to write its maps.
type idJoin struct {
	goAhead
	plan *idPlan // set by compile
}

// idHook wraps the program's Started hook so that the maps are written
// and the child let go on; a failure is kept in cmd.idErr, and the child
// is killed.
func (cmd *Cmd) idHook(j *idJoin, plan *idPlan, next func(pid, pidfd int)) func(pid, pidfd int) {
	return func(pid, pidfd int) {
		if cmd.attachErr != nil {
			j.goAhead.close()
		} else {
			cmd.idErr = plan.writeMaps(pid)
			j.give(cmd.idErr, pidfd)
		}
		if next != nil {
			next(pid, pidfd)
		}
	}
}

// addIDSteps maps the sandbox's ids: the child writes a map of the
// caller's own id, or waits for hakoniwa to write the others.
func addIDSteps(b *nsexec.Builder, plan *idPlan, j *idJoin) {
	if !plan.parentWrites {
		writeIDMaps(b, nsexec.AtCWD, "/proc/self/", [2]int64{int64(plan.uid[0].Inside), int64(plan.uid[0].Outside)}, [2]int64{int64(plan.gid[0].Inside), int64(plan.gid[0].Outside)})
		return
	}
	if j == nil {
		j = &idJoin{goAhead: noGoAhead} // for Plan
	}
	b.P.ShareMemory = false // the parent works between the clone and the execve
	b.WaitGo(j.r, j.w, fmt.Sprintf("wait for hakoniwa to write the uid map %s and the gid map %s", mapsString(plan.uid), mapsString(plan.gid)))
	// The caller's supplementary groups still count for access to host
	// files, mapped or not: none are kept where the maps allow.
	if plan.setgroupsAllowed() {
		b.Setgroups(nil, "drop the caller's supplementary groups")
	}
	addUnmappedSwitch(b, plan)
}

// addUnmappedSwitch makes a sandbox whose caller's ids are not mapped the
// lowest ids inside, right after its maps are written: an id that has no
// meaning inside can make neither a file nor a user namespace there. So
// the whole setup runs as that id, and the host's paths it binds must be
// reachable by it, as with podman's user namespaces.
func addUnmappedSwitch(b *nsexec.Builder, plan *idPlan) {
	if callerMapped(plan) {
		return
	}
	b.Syscall(unix.SYS_SETRESGID, uintptr(plan.startGID), uintptr(plan.startGID), uintptr(plan.startGID), fmt.Sprintf("become gid %d, as the caller's ids are not mapped", plan.startGID))
	b.Prctl(unix.PR_SET_SECUREBITS, secbitNoSetuidFixup, 0, "keep the capabilities across the change of uid")
	b.Syscall(unix.SYS_SETRESUID, uintptr(plan.startUID), uintptr(plan.startUID), uintptr(plan.startUID), fmt.Sprintf("become uid %d, as the caller's ids are not mapped", plan.startUID))
	b.Prctl(unix.PR_SET_SECUREBITS, 0, 0, "clear the securebits")
	// The change made the process not dumpable, which gives its /proc
	// files to the host's root; execve sets it again anyway.
	b.Prctl(unix.PR_SET_DUMPABLE, 1, 0, "make the process dumpable again")
}

// setgroupsAllowed reports whether the sandbox may set its groups: the
// kernel denies it where the sandbox maps its own gid alone, and so does
// newgidmap where it maps the caller's own gid alone.
func (p *idPlan) setgroupsAllowed() bool {
	return p.parentWrites && (os.Geteuid() == 0 || !ownOnly(p.gid, os.Getgid()))
}

// callerMapped reports whether the caller's uid and gid are both mapped.
func callerMapped(plan *idPlan) bool {
	_, u := inside(plan.uid, uint32(os.Getuid()))
	_, g := inside(plan.gid, uint32(os.Getgid()))
	return u && g
}

// The mounts are locked by moving into a nested user and mount namespace:
// they become locked mounts of a more privileged namespace, which even a
// command with every capability inside cannot unmount, or remount writable
// or without nosuid. The ids map to themselves.
//
// A namespace may map only its creator's own id unless the writer has
// CAP_SETUID in the parent namespace, which a process inside the nested
// one has not. So with several ids, a forked process makes the nested
// namespace (forkNested), this one writes its maps from outside, and later
// joins it and kills the other (enterNested).

// forkNested forks the process that makes the nested user namespace, and
// writes its maps, when there are several ids; it returns the slot of its
// pidfd, or -1.
func forkNested(b *nsexec.Builder, plan *idPlan) int32 {
	if !plan.parentWrites {
		return -1
	}
	// The sandbox is pid 1 of its pid namespace: the forked process,
	// the first, is pid 2 there, as a proc of that namespace shows it.
	proc := b.NewMount("proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, "make a proc of the sandbox's pid namespace, detached, to write the nested namespace's maps")
	pidfd := b.ForkUserns(2, "fork a process into a nested user namespace")
	for _, f := range []struct {
		name string
		maps []IDMap
	}{{"uid_map", selfMaps(plan.uid)}, {"gid_map", selfMaps(plan.gid)}} {
		fd := b.Open(proc, "2/"+f.name, unix.O_WRONLY, 0, 0, "open the nested namespace's "+f.name)
		b.Write(fd, []byte(mapLines(f.maps)), fmt.Sprintf("write %q to the nested namespace's %s", strings.TrimSpace(mapLines(f.maps)), f.name))
		b.Close(fd)
	}
	b.Close(proc)
	return pidfd
}

// enterNested moves into the nested user namespace, and a new mount
// namespace of its own.
func enterNested(b *nsexec.Builder, plan *idPlan, pidfd, hostProc int32) {
	if pidfd < 0 {
		b.Unshare(unix.CLONE_NEWUSER|unix.CLONE_NEWNS, "lock the mounts in a nested user and mount namespace")
		writeIDMaps(b, hostProc, "self/", [2]int64{int64(plan.startUID), int64(plan.startUID)}, [2]int64{int64(plan.startGID), int64(plan.startGID)})
		return
	}
	b.Setns(pidfd, unix.CLONE_NEWUSER, "join the nested user namespace")
	b.Unshare(unix.CLONE_NEWNS, "lock the mounts in a nested mount namespace")
	b.Reap(pidfd, "stop the process that made the nested user namespace")
	b.Close(pidfd)
}

// addSwitchSteps makes the sandbox the command's identity: groups, gid,
// uid. The uid changes under SECBIT_NO_SETUID_FIXUP, which keeps the
// capabilities the rest of the setup needs (a switch away from uid 0 would
// clear them); the bit is cleared again right away, so the command
// starts with the kernel's usual rules, and execve gives a uid other than
// 0 none but the ambient ones, as for a sandbox that starts as that uid.
func addSwitchSteps(b *nsexec.Builder, plan *idPlan) {
	if plan.setGroups {
		groups := make([]uint32, len(plan.groups)+1)
		groups[0] = plan.cmdGID
		copy(groups[1:], plan.groups)
		b.Setgroups(groups, fmt.Sprintf("set the groups to %v", groups))
	}
	if plan.setGroups || plan.cmdGID != plan.startGID {
		b.Syscall(unix.SYS_SETRESGID, uintptr(plan.cmdGID), uintptr(plan.cmdGID), uintptr(plan.cmdGID), fmt.Sprintf("set the gid to %d", plan.cmdGID))
	}
	if plan.cmdUID != plan.startUID {
		b.Prctl(unix.PR_SET_SECUREBITS, secbitNoSetuidFixup, 0, "keep the capabilities across the change of uid")
		b.Syscall(unix.SYS_SETRESUID, uintptr(plan.cmdUID), uintptr(plan.cmdUID), uintptr(plan.cmdUID), fmt.Sprintf("set the uid to %d", plan.cmdUID))
		b.Prctl(unix.PR_SET_SECUREBITS, 0, 0, "clear the securebits")
	}
}

// secbitNoSetuidFixup is SECBIT_NO_SETUID_FIXUP: a change of uid leaves
// the capabilities alone.
const secbitNoSetuidFixup = 1 << 2

// mayMapOthers reports whether hakoniwa may have to write the maps: some
// were asked for beyond the caller's own ids.
func (c *Container) mayMapOthers() bool {
	return c.usernsAuto || !ownOnly(c.uidMaps, os.Getuid()) || !ownOnly(c.gidMaps, os.Getgid())
}
