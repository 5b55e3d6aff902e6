package hakoniwa

import "testing"

// BenchmarkRun measures one sandboxed /bin/true on the default policy,
// start to reaped. bench/run.sh compares it with bubblewrap.
func BenchmarkRun(b *testing.B) {
	c := kiss(b)
	for b.Loop() {
		if err := c.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunParallel is BenchmarkRun from GOMAXPROCS goroutines at once.
func BenchmarkRunParallel(b *testing.B) {
	c := kiss(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Command("/bin/true").Run(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPlan measures the parent's share of a run: checking the
// container and compiling it into the child's steps.
func BenchmarkPlan(b *testing.B) {
	c := kiss(b).Devfs("/dev").Tmpfs("/tmp", "size=64M")
	for b.Loop() {
		if _, err := c.Command("/bin/true").Plan(); err != nil {
			b.Fatal(err)
		}
	}
}
