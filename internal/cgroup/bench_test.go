package cgroup

import (
	"os"
	"testing"
)

// BenchmarkNewClose makes and removes a run's cgroup on this host, as
// root: the cost a cgroup adds to a run, without the run.
func BenchmarkNewClose(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"v1 memory+pids+cpuacct", Config{Version: 1, Limits: Limits{Memory: 256 << 20, Pids: 64}}},
		{"v1 pids+cpuacct only", Config{Version: 1, Limits: Limits{Pids: 64}}},
		{"v2 no controllers", Config{Version: 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := os.Stat("/sys/fs/cgroup/memory/cgroup.procs"); err != nil && bc.cfg.Version == 1 {
				b.Skip("no cgroup v1 memory hierarchy")
			}
			for b.Loop() {
				g, err := New(bc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
