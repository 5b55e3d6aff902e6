package hakoniwa

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hakoniwa-go/hakoniwa/seccomp"
	"golang.org/x/sys/unix"
)

// kmsg follows the kernel's log from a point on, to find the audit record
// the kernel writes when seccomp kills a process ("type=1326 … pid=N …
// sig=31 arch=c000003e syscall=83"): it names the syscall, which the wait
// status does not. Reading /dev/kmsg needs root, or kernel.dmesg_restrict
// = 0; without it the reason stays general. The record's pid is in the
// kernel's first pid namespace, so hakoniwa running in a container of its
// own does not find it either.
type kmsg struct{ f *os.File }

// openKmsg opens the kernel's log at its end, or returns nil.
func openKmsg() *kmsg {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil
	}
	return &kmsg{os.NewFile(uintptr(fd), "/dev/kmsg")}
}

// Compiled on first use: every run of hakoniwa would pay for it at start-up.
var seccompRecord = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`type=1326 .* pid=(\d+) .* sig=(\d+) arch=([0-9a-f]+) syscall=(\d+)`)
})

// killedBy returns the syscall that seccomp killed pid for, as "name
// (number)", waiting a little for the record, which the kernel's audit
// thread writes after the fact; "" if there is none.
func (k *kmsg) killedBy(pid int) string {
	buf := make([]byte, 8192)
	deadline := time.Now().Add(50 * time.Millisecond)
	for !time.Now().After(deadline) {
		n, err := unix.Read(int(k.f.Fd()), buf)
		switch {
		case err == unix.EAGAIN:
			time.Sleep(2 * time.Millisecond)
			continue
		case err == unix.EPIPE:
			continue // records were overwritten; go on with the next
		case err != nil:
			return ""
		}
		if call, ok := seccompKill(buf[:n], pid); ok {
			return call
		}
	}
	return ""
}

// seccompKill reads one record of the kernel's log: if it is seccomp's
// audit record of a kill of pid, it returns the syscall.
func seccompKill(record []byte, pid int) (string, bool) {
	// A record is "PRIO,SEQ,TIME,FLAGS;TEXT": the kernel's have facility
	// 0, so PRIO < 8; one that a program wrote to /dev/kmsg has not.
	prio, _, ok := strings.Cut(string(record), ",")
	if p, err := strconv.Atoi(prio); !ok || err != nil || p >= 8 {
		return "", false
	}
	m := seccompRecord().FindSubmatch(record)
	if m == nil || string(m[1]) != strconv.Itoa(pid) || string(m[2]) == "0" {
		return "", false // not pid's, or not a kill (sig=0: a logged call)
	}
	nr, _ := strconv.Atoi(string(m[4]))
	return syscallName(string(m[3]), nr), true
}

func (k *kmsg) close() { k.f.Close() }

// syscallName names syscall nr of the ABI with the audit arch in hex.
func syscallName(arch string, nr int) string {
	var a seccomp.Arch
	switch arch {
	case "c000003e":
		a = seccomp.X86_64
		if nr&0x40000000 != 0 {
			a = seccomp.X32
		}
	case "40000003":
		a = seccomp.X86
	case "c00000b7":
		a = seccomp.AARCH64
	}
	if name := a.Name(nr); name != "" {
		return fmt.Sprintf("%s (%d)", name, nr)
	}
	return fmt.Sprintf("number %d (arch %s)", nr, arch)
}
