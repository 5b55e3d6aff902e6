package nsexec

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.Both{M: m}.Run())
}

// program builds a minimal program: new user and mount namespaces, then
// the given steps, then execve of /bin/true.
func program(shareMemory bool, steps func(b *Builder)) *Program {
	b := NewBuilder(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)
	b.P.ShareMemory = shareMemory
	steps(b)
	b.DupStdio()
	b.CloseFds(nil)
	b.Exec("/bin/true", []string{"true"}, nil)
	return b.P
}

func stdio(t *testing.T) [3]int {
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fd := int(f.Fd())
	return [3]int{fd, fd, fd}
}

func TestStartAndWait(t *testing.T) {
	for _, share := range []bool{false, true} {
		p := program(share, func(*Builder) {})
		pr, err := Start(p, stdio(t))
		if err != nil {
			t.Fatalf("share %v: %v", share, err)
		}
		ws, ru, err := pr.Wait()
		if err != nil || !ws.Exited() || ws.ExitStatus() != 0 || ru.Maxrss <= 0 {
			t.Errorf("share %v: %v %v %+v", share, err, ws, ru)
		}
		if err := pr.Signal(unix.SIGKILL); !errors.Is(err, ErrDone) {
			t.Errorf("Signal after reaping: %v", err)
		}
	}
}

// TestStepError checks that a failing step is reported by index, words
// and errno, and that the child is reaped.
func TestStepError(t *testing.T) {
	for _, share := range []bool{false, true} {
		var want int
		p := program(share, func(b *Builder) {
			want = len(b.P.Steps)
			b.Chdir("/no/such/dir", "chdir /no/such/dir")
		})
		_, err := Start(p, stdio(t))
		var se *StepError
		if !errors.As(err, &se) || se.Index != want || se.Kind != OpChdir || se.Errno != syscall.ENOENT {
			t.Fatalf("share %v: %v (%+v)", share, err, se)
		}
		if got := err.Error(); got != "chdir /no/such/dir: no such file or directory" {
			t.Errorf("message %q", got)
		}
	}
}

func TestCloneError(t *testing.T) {
	// CLONE_NEWUSER with CLONE_FS is refused by the kernel.
	p := program(false, func(*Builder) {})
	p.CloneFlags |= unix.CLONE_FS
	if _, err := Start(p, stdio(t)); err == nil || !strings.Contains(err.Error(), "clone3: invalid argument") {
		t.Errorf("err = %v", err)
	}
}

func TestNoExec(t *testing.T) {
	b := NewBuilder(0)
	b.Setsid()
	if _, err := Start(b.P, stdio(t)); err == nil || !strings.Contains(err.Error(), "does not end in execve") {
		t.Errorf("err = %v", err)
	}
}

func TestString(t *testing.T) {
	p := program(false, func(b *Builder) { b.Sethostname("box") })
	got := p.String()
	for _, want := range []string{"clone flags new user,mount namespaces\n", "sethostname box\n", `execve /bin/true ["true"]`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, " close\n") {
		t.Errorf("close steps are not printed:\n%s", got)
	}
}

// nftMsg is one nftables netlink message with the given attributes.
func nftMsg(typ, flags uint16, family byte, attrs []byte) []byte {
	body := append([]byte{family, 0, 0, 10}, attrs...) // NFNETLINK_V0, res_id NFNL_SUBSYS_NFTABLES
	h := make([]byte, 16)
	binary.NativeEndian.PutUint32(h, uint32(16+len(body)))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	return append(h, body...)
}

// TestNetlink sends nftables batches from the child, in a network
// namespace of its own: one the kernel applies, and one it refuses (a
// table without a name), whose errno the step reports.
func TestNetlink(t *testing.T) {
	name := []byte("t\x00\x00\x00")
	tableName := append([]byte{8, 0, unix.NFTA_TABLE_NAME, 0}, name...)
	batch := func(table []byte) []byte {
		b := nftMsg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nil)
		b = append(b, nftMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_ACK, unix.NFPROTO_INET, table)...)
		return append(b, nftMsg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nil)...)
	}
	for _, tc := range []struct {
		table []byte
		errno syscall.Errno
	}{
		{tableName, 0},
		{nil, syscall.EINVAL},
	} {
		for _, share := range []bool{false, true} {
			var want int
			p := program(share, func(b *Builder) {
				b.P.CloneFlags |= unix.CLONE_NEWNET
				want = len(b.P.Steps)
				b.Netlink(unix.NETLINK_NETFILTER, batch(tc.table), "make an nftables table")
			})
			pr, err := Start(p, stdio(t))
			if tc.errno == 0 {
				if err != nil {
					t.Fatalf("share %v: %v", share, err)
				}
				pr.Wait()
				continue
			}
			var se *StepError
			if !errors.As(err, &se) || se.Index != want || se.Kind != OpNetlink || se.Errno != tc.errno {
				t.Errorf("share %v: %v (%+v), want %v", share, err, se, tc.errno)
			}
		}
	}
}

// TestUnlink removes a file the child made, and fails on one that is not
// there.
func TestUnlink(t *testing.T) {
	dir := t.TempDir()
	p := program(false, func(b *Builder) {
		d := b.Open(AtCWD, dir, unix.O_PATH|unix.O_DIRECTORY, 0, 0, "open the test's directory")
		f := b.Open(d, "f", unix.O_WRONLY|unix.O_CREAT, 0o600, 0, "create f")
		b.Close(f)
		b.Unlink(d, "f", 0, "remove f")
		b.Unlink(d, "f", 0, "remove f again")
	})
	_, err := Start(p, stdio(t))
	var se *StepError
	if !errors.As(err, &se) || se.Kind != OpUnlink || se.Errno != syscall.ENOENT || err.Error() != "remove f again: no such file or directory" {
		t.Errorf("%v (%+v)", err, se)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the directory: %v", entries)
	}
}
