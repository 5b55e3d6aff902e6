// Command hkbench compares hakoniwa with bubblewrap (bwrap) on the same
// sandbox: new user, mount, pid, ipc, net, uts and cgroup namespaces, a tmpfs
// root made read-only, ro binds of /bin /lib /lib64 /usr, rw binds of four
// device files, a new /proc, a new session and die-with-parent.
//
// It measures two things:
//
//  1. The CLI: `hakoniwa run -- /bin/true` against the equivalent
//     `bwrap ... /bin/true`, run alternately (ABBA order) N times each. Each
//     run's wall time and cpu time (user+sys of the child and everything it
//     waited for, from wait4's rusage) are recorded; the medians, p90s and
//     the ratios hakoniwa/bwrap are printed.
//  2. The library: spawns per second of /bin/true through
//     hakoniwa.FromPolicy(default policy), then Command(...).Run(), against
//     spawning `bwrap ... /bin/true` with os/exec, sequentially and with
//     -parallel workers, in alternating rounds.
//
// The results are printed as markdown tables, ready for docs/BENCHMARKS.md.
// See bench/run.sh for how it is built and run.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hakoniwa-go/hakoniwa"
	"github.com/hakoniwa-go/hakoniwa/policy"
)

var (
	flagN        = flag.Int("n", 200, "CLI runs per side (hakoniwa and bwrap each)")
	flagWarmup   = flag.Int("warmup", 10, "untimed CLI runs per side before timing")
	flagHakoniwa = flag.String("hakoniwa", "./hakoniwa", "path to the hakoniwa CLI")
	flagBwrap    = flag.String("bwrap", "bwrap", "path to bwrap")
	flagDuration = flag.Duration("duration", 2*time.Second, "length of one library round")
	flagRounds   = flag.Int("rounds", 3, "library rounds per configuration (alternating)")
	flagParallel = flag.Int("parallel", runtime.NumCPU(), "workers of the parallel library measurement")
	flagSkipCLI  = flag.Bool("skip-cli", false, "skip the CLI comparison")
	flagSkipLib  = flag.Bool("skip-lib", false, "skip the library comparison")
	flagBaseline = flag.Bool("baseline", true, "also time a plain exec of /bin/true, without any sandbox")
	flagCPUProf  = flag.String("cpuprofile", "", "write a CPU profile of the sequential library loop to this file")
	flagLabel    = flag.String("label", "", "label for this run in the output (default: root or uid N)")
	flagLimits   = flag.String("limits", "", "also time hakoniwa run with these space-separated flags, such as \"--memory 256M --pids 64\" (a cgroup per run)")
	flagBreak    = flag.Bool("breakdown", false, "also measure sequential library spawns with the net namespace, and then all but user/mount/pid, shared")
)

// bwrapArgs is the bwrap command line that matches hakoniwa's default
// policy. --hostname matches hakoniwa's default hostname; bwrap always sets
// no_new_privs, as hakoniwa does by default.
func bwrapArgs(prog ...string) []string {
	args := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net",
		"--unshare-uts", "--unshare-cgroup",
		"--hostname", "hakoniwa",
		"--tmpfs", "/",
		"--ro-bind", "/bin", "/bin",
		"--ro-bind", "/lib", "/lib",
	}
	if _, err := os.Stat("/lib64"); err == nil {
		args = append(args, "--ro-bind", "/lib64", "/lib64")
	}
	args = append(args,
		"--ro-bind", "/usr", "/usr",
		"--dev-bind", "/dev/null", "/dev/null",
		"--dev-bind", "/dev/random", "/dev/random",
		"--dev-bind", "/dev/urandom", "/dev/urandom",
		"--dev-bind", "/dev/zero", "/dev/zero",
		"--proc", "/proc",
		"--new-session",
		"--die-with-parent",
		"--remount-ro", "/",
	)
	return append(args, prog...)
}

func hakoniwaArgs(prog ...string) []string {
	return append([]string{"run", "--"}, prog...)
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hkbench:", err)
		os.Exit(1)
	}
}

func run() error {
	hk, err := filepath.Abs(*flagHakoniwa)
	if err != nil {
		return err
	}
	bw, err := exec.LookPath(*flagBwrap)
	if err != nil {
		return fmt.Errorf("bwrap not found (%v); run bench/run.sh, or apt-get install bubblewrap", err)
	}
	label := *flagLabel
	if label == "" {
		if os.Geteuid() == 0 {
			label = "root"
		} else {
			label = fmt.Sprintf("uid %d", os.Geteuid())
		}
	}

	printHeader(label, hk, bw)

	// Check that both sandboxes work, and show what each looks like from
	// inside, so that a difference in isolation is visible in the output.
	if err := checkParity(hk, bw); err != nil {
		return err
	}

	if !*flagSkipCLI {
		if err := benchCLI(label, hk, bw); err != nil {
			return err
		}
	}
	if !*flagSkipLib {
		if err := benchLib(label, bw); err != nil {
			return err
		}
	}
	if *flagBreak {
		if err := breakdown(label, bw); err != nil {
			return err
		}
	}
	fmt.Printf("\nload average at end: %s\n", loadavg())
	return nil
}

func printHeader(label, hk, bw string) {
	out, _ := exec.Command(bw, "--version").Output()
	hkv, _ := exec.Command(hk, "--version").Output()
	fmt.Printf("# hkbench (%s)\n\n", label)
	fmt.Printf("- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("- user: %s (euid %d)\n", label, os.Geteuid())
	fmt.Printf("- cpus: %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("- kernel: Linux %s\n", readTrim("/proc/sys/kernel/osrelease"))
	fmt.Printf("- go: %s\n", runtime.Version())
	fmt.Printf("- hakoniwa: %s (%s)\n", strings.TrimSpace(string(hkv)), hk)
	fmt.Printf("- bwrap: %s (%s)\n", strings.TrimSpace(string(out)), bw)
	fmt.Printf("- load average at start: %s\n", loadavg())
	fmt.Printf("- bwrap command: `%s %s /bin/true`\n", bw, strings.Join(bwrapArgs(), " "))
	fmt.Printf("- hakoniwa command: `%s %s`\n", hk, strings.Join(hakoniwaArgs("/bin/true"), " "))
}

func readTrim(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// probe prints what the sandbox looks like from inside.
const probe = `echo "hostname=$(hostname) uid=$(id -u) pid=$$ root=[$(ls / | tr '\n' ' ')]"; ` +
	`grep -E '^(NoNewPrivs|CapEff)' /proc/self/status | tr '\t\n' '  '; echo; ` +
	`echo "mounts=$(wc -l < /proc/self/mountinfo) sid=$(cut -d' ' -f6 /proc/self/stat) pids=[$(ls /proc | grep '^[0-9]' | tr '\n' ' ')] pid1=$(cat /proc/1/comm)"; ` +
	`touch /x 2>/dev/null && echo "root WRITABLE" || echo "root read-only"`

func checkParity(hk, bw string) error {
	fmt.Printf("\n## Sanity check\n\n")
	for _, c := range []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"hakoniwa", exec.Command(hk, hakoniwaArgs("/bin/true")...)},
		{"bwrap", exec.Command(bw, bwrapArgs("/bin/true")...)},
	} {
		var stderr bytes.Buffer
		c.cmd.Stderr = &stderr
		if err := c.cmd.Run(); err != nil {
			return fmt.Errorf("%s does not run /bin/true: %v\n%s", c.name, err, stderr.Bytes())
		}
	}
	fmt.Println("Both commands exit 0. What each sandbox looks like from inside (`/bin/sh -c PROBE`):")
	fmt.Println()
	fmt.Println("```")
	for _, c := range []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"hakoniwa", exec.Command(hk, hakoniwaArgs("/bin/sh", "-c", probe)...)},
		{"bwrap", exec.Command(bw, bwrapArgs("/bin/sh", "-c", probe)...)},
	} {
		out, err := c.cmd.CombinedOutput()
		if err != nil {
			fmt.Printf("%s: probe failed: %v\n", c.name, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fmt.Printf("%-8s | %s\n", c.name, l)
		}
	}
	fmt.Println("```")
	return nil
}

// sample is one timed run.
type sample struct {
	wall, cpu time.Duration
}

func timeCmd(path string, args []string) (sample, error) {
	cmd := exec.Command(path, args...)
	// Stdin, Stdout and Stderr stay nil: /dev/null for both sides.
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", path, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu}, nil
}

type side struct {
	name    string
	path    string
	args    []string
	samples []sample
}

func benchCLI(label, hk, bw string) error {
	sides := []*side{
		{name: "hakoniwa run", path: hk, args: hakoniwaArgs("/bin/true")},
		{name: "bwrap", path: bw, args: bwrapArgs("/bin/true")},
	}
	if *flagBaseline {
		sides = append(sides, &side{name: "/bin/true (no sandbox)", path: "/bin/true"})
	}
	var limited *side
	if *flagLimits != "" && os.Geteuid() != 0 && os.Getenv("HAKONIWA_CGROUP_PARENT") == "" {
		fmt.Fprintln(os.Stderr, "hkbench: -limits skipped: not root, and no delegated cgroup in $HAKONIWA_CGROUP_PARENT")
	} else if *flagLimits != "" {
		limited = &side{name: "hakoniwa run " + *flagLimits, path: hk,
			args: append([]string{"run"}, append(strings.Fields(*flagLimits), "--", "/bin/true")...)}
		sides = append(sides, limited)
	}
	for i := 0; i < *flagWarmup; i++ {
		for _, s := range sides {
			if _, err := timeCmd(s.path, s.args); err != nil {
				return err
			}
		}
	}
	t0 := time.Now()
	order := make([]*side, len(sides))
	for i := 0; i < *flagN; i++ {
		// ABBA: alternate which side goes first, so that neither
		// always runs right after the other.
		copy(order, sides)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			smp, err := timeCmd(s.path, s.args)
			if err != nil {
				return err
			}
			s.samples = append(s.samples, smp)
		}
	}
	elapsed := time.Since(t0)

	hs, bs := sides[0].samples, sides[1].samples
	fmt.Printf("\n## CLI: one sandboxed /bin/true, %s (N=%d per side, interleaved, %.1fs)\n\n", label, *flagN, elapsed.Seconds())
	fmt.Println("| command | median wall | p90 wall | min wall | median cpu (user+sys) | p90 cpu |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, s := range sides {
		w, c := walls(s.samples), cpus(s.samples)
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", s.name,
			ms(pct(w, 50)), ms(pct(w, 90)), ms(pct(w, 0)), ms(pct(c, 50)), ms(pct(c, 90)))
	}
	hw, bwl := pct(walls(hs), 50), pct(walls(bs), 50)
	hc, bc := pct(cpus(hs), 50), pct(cpus(bs), 50)
	var pairW []float64
	for i := range hs {
		pairW = append(pairW, float64(hs[i].wall)/float64(bs[i].wall))
	}
	slices.Sort(pairW)
	fmt.Println()
	fmt.Println("| ratio hakoniwa/bwrap | value |")
	fmt.Println("|---|---:|")
	fmt.Printf("| median wall | **%.2fx** |\n", float64(hw)/float64(bwl))
	fmt.Printf("| median of per-pair wall ratios | %.2fx |\n", pairW[len(pairW)/2])
	fmt.Printf("| p90 wall | %.2fx |\n", float64(pct(walls(hs), 90))/float64(pct(walls(bs), 90)))
	fmt.Printf("| median cpu | %.2fx |\n", float64(hc)/float64(bc))
	verdict := "met"
	if hw > bwl {
		verdict = fmt.Sprintf("MISSED by %.0f%%", 100*(float64(hw)/float64(bwl)-1))
	}
	if limited != nil {
		lw := pct(walls(limited.samples), 50)
		fmt.Printf("| median wall, with %s | %.2fx (%s more than without) |\n", *flagLimits, float64(lw)/float64(bwl), ms(lw-hw))
	}
	fmt.Printf("\nTarget: CLI median wall <= 1.0x bwrap: %s (%.2fx).\n", verdict, float64(hw)/float64(bwl))
	return nil
}

func walls(s []sample) []time.Duration {
	var d []time.Duration
	for _, x := range s {
		d = append(d, x.wall)
	}
	return d
}

func cpus(s []sample) []time.Duration {
	var d []time.Duration
	for _, x := range s {
		d = append(d, x.cpu)
	}
	return d
}

// pct returns the p-th percentile (nearest rank) of d.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// A spawner runs /bin/true in a sandbox once.
type spawner struct {
	name  string
	spawn func() error
}

// rate is the outcome of one library round.
type rate struct {
	perSec   float64
	cpuPer   time.Duration // cpu of this process and its reaped children per spawn
	spawns   int
	duration time.Duration
}

// defaultContainer is a Container with the embedded default policy.
func defaultContainer() (*hakoniwa.Container, error) {
	p, err := policy.Default()
	if err != nil {
		return nil, err
	}
	return hakoniwa.FromPolicy(p)
}

func benchLib(label, bw string) error {
	c, err := defaultContainer()
	if err != nil {
		return err
	}
	spawners := []spawner{
		{"hakoniwa library", func() error { return c.Command("/bin/true").Run() }},
		{"bwrap via os/exec", func() error { return exec.Command(bw, bwrapArgs("/bin/true")...).Run() }},
	}
	if *flagBaseline {
		spawners = append(spawners, spawner{"/bin/true via os/exec (no sandbox)", func() error { return exec.Command("/bin/true").Run() }})
	}
	for _, s := range spawners {
		if err := s.spawn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	if *flagCPUProf != "" {
		f, err := os.Create(*flagCPUProf)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		_, err = measure(spawners[0], 1, 3**flagDuration)
		pprof.StopCPUProfile()
		f.Close()
		if err != nil {
			return err
		}
		fmt.Printf("\nwrote a CPU profile of %v of sequential library spawns to %s\n", 3**flagDuration, *flagCPUProf)
	}

	conc := []int{1}
	if *flagParallel > 1 {
		conc = append(conc, *flagParallel)
	}
	results := map[string]map[int][]rate{}
	for _, s := range spawners {
		results[s.name] = map[int][]rate{}
	}
	t0 := time.Now()
	for r := 0; r < *flagRounds; r++ {
		for _, n := range conc {
			order := slices.Clone(spawners)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				rt, err := measure(s, n, *flagDuration)
				if err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				results[s.name][n] = append(results[s.name][n], rt)
			}
		}
	}
	elapsed := time.Since(t0)

	fmt.Printf("\n## Library: spawns of /bin/true per second, %s (%d rounds of %v per cell, alternating, %.0fs)\n\n",
		label, *flagRounds, *flagDuration, elapsed.Seconds())
	fmt.Println("| spawner | workers | spawns/s (median of rounds) | min–max of rounds | cpu per spawn |")
	fmt.Println("|---|---:|---:|---:|---:|")
	med := map[string]map[int]float64{}
	for _, n := range conc {
		for _, s := range spawners {
			rs := results[s.name][n]
			var v []float64
			var cpu []time.Duration
			for _, x := range rs {
				v = append(v, x.perSec)
				cpu = append(cpu, x.cpuPer)
			}
			slices.Sort(v)
			m := v[len(v)/2]
			if med[s.name] == nil {
				med[s.name] = map[int]float64{}
			}
			med[s.name][n] = m
			fmt.Printf("| %s | %d | %.0f | %.0f–%.0f | %s |\n", s.name, n, m, v[0], v[len(v)-1], ms(pct(cpu, 50)))
		}
	}
	fmt.Println()
	fmt.Println("| ratio library/bwrap spawns/s | value |")
	fmt.Println("|---|---:|")
	for _, n := range conc {
		r := med[spawners[0].name][n] / med[spawners[1].name][n]
		verdict := "met"
		if r < 2 {
			verdict = fmt.Sprintf("missed (%.0f%% of 2x)", 100*r/2)
		}
		fmt.Printf("| %d worker(s) | **%.2fx** (target >= 2x: %s) |\n", n, r, verdict)
	}
	return nil
}

// measure runs s with n workers for d and returns the rate.
func measure(s spawner, n int, d time.Duration) (rate, error) {
	var count atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ru0 := usage()
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := s.spawn(); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	cpu := usage() - ru0
	if firstErr != nil {
		return rate{}, describe(firstErr)
	}
	k := int(count.Load())
	if k == 0 {
		return rate{}, errors.New("no spawn completed")
	}
	return rate{perSec: float64(k) / el.Seconds(), cpuPer: cpu / time.Duration(k), spawns: k, duration: el}, nil
}

func describe(err error) error {
	var ee *hakoniwa.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%v (%s)", err, ee.Result.JSON())
	}
	return err
}

// usage is the cpu time of this process and of all its reaped children.
func usage() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// breakdown measures sequential spawns with fewer namespaces, to show what
// the namespaces cost on each side.
func breakdown(label, bw string) error {
	full, err := defaultContainer()
	if err != nil {
		return err
	}
	noNet := full.Clone().ShareNet(true)
	minimal := full.Clone().ShareNet(true).ShareIPC(true).ShareUTS(true).ShareCgroup(true)
	drop := func(args []string, flags ...string) []string {
		var out []string
		for i := 0; i < len(args); i++ {
			if slices.Contains(flags, args[i]) {
				if args[i] == "--hostname" {
					i++
				}
				continue
			}
			out = append(out, args[i])
		}
		return out
	}
	bwFull := bwrapArgs("/bin/true")
	bwNoNet := drop(bwFull, "--unshare-net")
	bwMinimal := drop(bwFull, "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup", "--hostname")
	spawners := []spawner{
		{"hakoniwa library, all 7 namespaces", func() error { return full.Command("/bin/true").Run() }},
		{"hakoniwa library, host net", func() error { return noNet.Command("/bin/true").Run() }},
		{"hakoniwa library, only user+mount+pid", func() error { return minimal.Command("/bin/true").Run() }},
		{"bwrap, all 7 namespaces", func() error { return exec.Command(bw, bwFull...).Run() }},
		{"bwrap, host net", func() error { return exec.Command(bw, bwNoNet...).Run() }},
		{"bwrap, only user+mount+pid", func() error { return exec.Command(bw, bwMinimal...).Run() }},
	}
	res := make([][]rate, len(spawners))
	for r := 0; r < *flagRounds; r++ {
		for i, s := range spawners {
			rt, err := measure(s, 1, *flagDuration)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			res[i] = append(res[i], rt)
		}
	}
	fmt.Printf("\n## Breakdown: sequential spawns with fewer namespaces, %s (%d rounds of %v)\n\n", label, *flagRounds, *flagDuration)
	fmt.Println("| spawner | spawns/s (median) | time per spawn | cpu per spawn |")
	fmt.Println("|---|---:|---:|---:|")
	for i, s := range spawners {
		var v []float64
		var cpu []time.Duration
		for _, x := range res[i] {
			v = append(v, x.perSec)
			cpu = append(cpu, x.cpuPer)
		}
		slices.Sort(v)
		m := v[len(v)/2]
		fmt.Printf("| %s | %.0f | %s | %s |\n", s.name, m, ms(time.Duration(float64(time.Second)/m)), ms(pct(cpu, 50)))
	}
	return nil
}
