package hakoniwa_test

import (
	"fmt"
	"os"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/policy"
)

// This is the Go form of the seed's Rust example: the KISS policy, then the
// shell, with the sandbox's result printed at the end. It is almost the same
// as `hakoniwa run --policy-file KISS-policy.toml -- $SHELL`.
func Example() {
	p, err := policy.Parse("KISS-policy.toml", []byte(`
mounts = [
  { source = "/bin"        , target = "/bin" },
  { source = "/lib"        , target = "/lib" },
  { source = "/lib64"      , target = "/lib64", optional = true },
  { source = "/usr"        , target = "/usr" },
  { source = "/dev/null"   , target = "/dev/null"   , rw = true },
  { source = "/dev/random" , target = "/dev/random" , rw = true },
  { source = "/dev/urandom", target = "/dev/urandom", rw = true },
  { source = "/dev/zero"   , target = "/dev/zero"   , rw = true },
]
[env]
LANG     = {{ os_env "LANG" }}
LANGUAGE = {{ os_env "LANGUAGE" }}
LC_ALL   = {{ os_env "LC_ALL" }}
TERM     = {{ os_env "TERM" }}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	sandbox, err := hakoniwa.FromPolicy(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	// sandbox.BindRO("/etc", "/myetc")          // --ro-bind /etc:/myetc
	// sandbox.BindRW("/data", "/data")          // --rw-bind /data
	// sandbox.Rlimit(hakoniwa.RlimitCPU, 2)     // --limit-cpu 2
	// sandbox.Walltime(5 * time.Second)         // --limit-walltime 5

	prog := os.Getenv("SHELL")
	if prog == "" {
		prog = "/bin/sh"
	}
	// The example runs a script rather than an interactive shell, so that
	// its output can be checked.
	cmd := sandbox.Command(prog, "-c", "ls /; echo hello from $(hostname)")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.Result.Status, *cmd.Result.ExitCode)
	// Output:
	// bin
	// dev
	// lib
	// lib64
	// proc
	// usr
	// hello from hakoniwa
	// OK 0
}

// A judge's run: 64M of memory, 16 processes and 1 s of cpu time for every
// process together, in a cgroup of the run's own (as root, or in a cgroup
// delegated to the caller; see docs/cgroups.md). The report says which
// limit stopped it, with the cgroup's own counts.
func ExampleContainer_Memory() {
	p, err := policy.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	sandbox, err := hakoniwa.FromPolicy(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	sandbox.Memory(64<<20).Pids(16).Rlimit(hakoniwa.RlimitCPU, 1)
	cmd := sandbox.Command("/bin/sh", "-c", "head -c 1G /dev/zero | tail -n 1")
	if err := cmd.Run(); err != nil {
		fmt.Println(err) // memory limit of 64M exceeded: the OOM killer killed 1 process; ...
	}
	r := cmd.Result
	fmt.Println(r.Status) // MLE
	if r.MemoryPeak != nil && r.OOMKill != nil {
		fmt.Println(*r.MemoryPeak, *r.OOMKill) // 67108864 1
	}
}
