package nsexec

import (
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
