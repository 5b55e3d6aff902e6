package hakoniwa

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"golang.org/x/sys/unix"
)

// capNames are the capabilities by number.
var capNames = map[int]string{
	unix.CAP_CHOWN: "CAP_CHOWN", unix.CAP_DAC_OVERRIDE: "CAP_DAC_OVERRIDE", unix.CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER: "CAP_FOWNER", unix.CAP_FSETID: "CAP_FSETID", unix.CAP_KILL: "CAP_KILL", unix.CAP_SETGID: "CAP_SETGID",
	unix.CAP_SETUID: "CAP_SETUID", unix.CAP_SETPCAP: "CAP_SETPCAP", unix.CAP_LINUX_IMMUTABLE: "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE: "CAP_NET_BIND_SERVICE", unix.CAP_NET_BROADCAST: "CAP_NET_BROADCAST", unix.CAP_NET_ADMIN: "CAP_NET_ADMIN",
	unix.CAP_NET_RAW: "CAP_NET_RAW", unix.CAP_IPC_LOCK: "CAP_IPC_LOCK", unix.CAP_IPC_OWNER: "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE: "CAP_SYS_MODULE", unix.CAP_SYS_RAWIO: "CAP_SYS_RAWIO", unix.CAP_SYS_CHROOT: "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE: "CAP_SYS_PTRACE", unix.CAP_SYS_PACCT: "CAP_SYS_PACCT", unix.CAP_SYS_ADMIN: "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT: "CAP_SYS_BOOT", unix.CAP_SYS_NICE: "CAP_SYS_NICE", unix.CAP_SYS_RESOURCE: "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME: "CAP_SYS_TIME", unix.CAP_SYS_TTY_CONFIG: "CAP_SYS_TTY_CONFIG", unix.CAP_MKNOD: "CAP_MKNOD",
	unix.CAP_LEASE: "CAP_LEASE", unix.CAP_AUDIT_WRITE: "CAP_AUDIT_WRITE", unix.CAP_AUDIT_CONTROL: "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP: "CAP_SETFCAP", unix.CAP_MAC_OVERRIDE: "CAP_MAC_OVERRIDE", unix.CAP_MAC_ADMIN: "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG: "CAP_SYSLOG", unix.CAP_WAKE_ALARM: "CAP_WAKE_ALARM", unix.CAP_BLOCK_SUSPEND: "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ: "CAP_AUDIT_READ", unix.CAP_PERFMON: "CAP_PERFMON", unix.CAP_BPF: "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// ParseCap parses a capability by name: CAP_SYS_ADMIN, or sys_admin.
func ParseCap(s string) (int, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for n, v := range capNames {
		if v == name {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q", s)
}

// lastCap is the highest capability the kernel knows.
var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if n, err2 := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && err2 == nil {
		return n
	}
	return unix.CAP_CHECKPOINT_RESTORE
})

// Caps changes the command's capabilities: Drop (or all of them, with
// DropAll) are taken away, then Add are given, from the default: every
// capability for uid 0 inside, none for another uid, as Linux does. They
// reach only the sandbox's own namespaces. The bounding set is cut to the
// same, so nothing can get the others back; a non-zero uid keeps added
// capabilities across execve as ambient ones.
type Caps struct {
	DropAll   bool
	Drop, Add []int
}

// Caps sets the command's capabilities; nil, the default, changes nothing.
func (c *Container) Caps(caps *Caps) *Container { c.caps = caps; return c }

// capSet returns the capabilities the command ends with, for uid inside.
func (caps *Caps) capSet(uid int64) (map[int]bool, error) {
	last := lastCap()
	set := map[int]bool{}
	if uid == 0 && !caps.DropAll {
		for n := 0; n <= last; n++ {
			set[n] = true
		}
	}
	for _, n := range caps.Drop {
		delete(set, n)
	}
	for _, n := range caps.Add {
		if n < 0 || n > last {
			return nil, fmt.Errorf("cap-add %s: this kernel knows capabilities up to %d", capName(n), last)
		}
		set[n] = true
	}
	return set, nil
}

func capName(n int) string {
	if s, ok := capNames[n]; ok {
		return s
	}
	return "capability " + strconv.Itoa(n)
}

// capSets returns the sets the command ends with when it gets set.
func capSets(set map[int]bool, uid int64) *CapSets {
	names := []string{}
	for n := range set {
		names = append(names, capName(n))
	}
	sort.Strings(names)
	ambient := []string{}
	if uid != 0 {
		ambient = names
	}
	return &CapSets{Effective: names, Permitted: names, Bounding: names, Ambient: ambient}
}

// capNameList joins capability names for the log.
func capNameList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ",")
}

// compileCaps adds the steps that leave the command with set: every other
// capability is dropped from the bounding set; for a non-zero uid, set is
// made inheritable and raised as ambient, so execve keeps it.
func compileCaps(b *nsexec.Builder, set map[int]bool, uid int64) {
	for n := 0; n <= lastCap(); n++ {
		if !set[n] {
			b.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, "drop "+capName(n)+" from the bounding set")
		}
	}
	if uid == 0 || len(set) == 0 {
		return
	}
	var inh uint64
	for n := range set {
		inh |= 1 << uint(n)
	}
	b.CapsInheritable(inh)
	for n := 0; n <= lastCap(); n++ {
		if set[n] {
			b.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), "raise "+capName(n)+" as an ambient capability")
		}
	}
}
