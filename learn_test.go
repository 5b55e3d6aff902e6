package hakoniwa

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hakoniwa-go/hakoniwa/seccomp"
)

// TestSeccompLearnConcurrent learns two runs at once in one process: each
// supervisor takes its own child's listener, not the other's, which the
// children inherit; both runs end, and each learned its own calls.
func TestSeccompLearnConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	scripts := []string{"mkdir -p /tmp/a && echo a", "echo b"}
	learners := make([]*seccomp.Learner, len(scripts))
	for i, script := range scripts {
		learners[i] = seccomp.NewLearner()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := kiss(t).Tmpfs("/tmp", "").SeccompLearn(learners[i])
			for j := 0; j < 5; j++ {
				if out, err := c.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
					t.Errorf("%s: %v: %s", script, err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	has := func(l *seccomp.Learner, name string) bool {
		for _, r := range l.Profile().Rules {
			for _, n := range r.Names {
				if n == name && r.Action == seccomp.Allow {
					return true
				}
			}
		}
		return false
	}
	if !has(learners[0], "mkdir") && !has(learners[0], "mkdirat") {
		t.Errorf("the first run's profile lacks mkdir")
	}
	if has(learners[1], "mkdir") || has(learners[1], "mkdirat") {
		t.Errorf("the second run's profile has mkdir, which only the first made")
	}
}

// TestSeccompSetters checks that Seccomp and SeccompLearn replace each
// other, and that learning needs a copy of memory.
func TestSeccompSetters(t *testing.T) {
	var ce *ConfigError
	err := kiss(t).SeccompLearn(seccomp.NewLearner()).CopyMemory(false).Command("/bin/true").Run()
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "needs CopyMemory(true)") {
		t.Errorf("learning without CopyMemory: %v", err)
	}
	// Seccomp after SeccompLearn: the profile, not the learner.
	p, err := seccomp.FromSeed([]string{"mkdir", "mkdirat"}, "allow")
	if err != nil {
		t.Fatal(err)
	}
	c := kiss(t).SeccompLearn(seccomp.NewLearner()).Seccomp(p)
	cmd := c.Command("/bin/mkdir", "/x")
	cmd.Run()
	if cmd.Result.Status != StatusRFE {
		t.Errorf("Seccomp after SeccompLearn: %+v", cmd.Result)
	}
	// SeccompLearn(nil) leaves no filter.
	if out, err := kiss(t).Seccomp(p).SeccompLearn(nil).Command("/bin/sh", "-c", "echo ok").Output(); err != nil || string(out) != "ok\n" {
		t.Errorf("SeccompLearn(nil): %q, %v", out, err)
	}
}
