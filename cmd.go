package hakoniwa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hakoniwa-go/hakoniwa/internal/cgroup"
	"github.com/hakoniwa-go/hakoniwa/internal/nsexec"
	"golang.org/x/sys/unix"
)

// Cmd is a command to run in a sandbox. It is used like an exec.Cmd: set its
// fields, then call Run, or Start and Wait, or Output.
type Cmd struct {
	// Path is the program to run, as a path inside the sandbox.
	Path string
	// Args holds the command line, Args[0] included.
	Args []string
	// Env is added to the container's environment, and wins over it.
	// Nothing of the caller's environment is passed unless put here.
	Env []string
	// Dir is the working directory inside the sandbox; "" means /.
	Dir string

	// Stdin, Stdout and Stderr work as in exec.Cmd: nil means /dev/null,
	// an *os.File is passed as is, and anything else is copied through a
	// pipe.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// KeepFds are the caller's fds, beyond 0-2, that the command keeps
	// under the same numbers. Every other fd is closed.
	KeepFds []int

	// Result is the report of the run, set when Wait returns or when
	// Start fails.
	Result *Result

	c     *Container
	ctx   context.Context
	kmsg  *kmsg       // the kernel's log, to name a syscall seccomp killed for
	learn *supervisor // answers a learning filter's notifications

	mu        sync.Mutex
	proc      *nsexec.Process
	stop      stopCause
	started   bool
	start     time.Time
	closeLate []io.Closer
	copyErrs  chan error
	copies    int
	pending   []func() error // copies to start once the command runs
	stopCtx   func() bool
	timer     *time.Timer
	waited    bool
	sharedOut *os.File

	group      *cgroup.Group // the run's cgroup, if it has one
	pidsDenied *uint64       // forks the pids limit refused
	attachErr  error         // moving the child into its cgroup failed
	net        *netJoin      // the user-mode network, if any
	netErr     error         // starting its helper failed
	ids        *idJoin       // hakoniwa writes the id maps, if it may have to
	idErr      error         // writing them failed

	watchStop, watchStopped chan struct{} // the cpu watcher's, if any
}

// Command returns a Cmd that runs name with args in the sandbox. A name
// without a slash is looked up when the command starts: inside the sandbox,
// in the PATH of the sandbox's environment, as execvp would there; or, when
// that environment has no PATH, in the caller's PATH, like exec.Command,
// and the path found is used inside the sandbox.
func (c *Container) Command(name string, args ...string) *Cmd {
	return c.CommandContext(context.Background(), name, args...)
}

// CommandContext is like Command, but the sandbox is killed when ctx is done
// before the command exits.
func (c *Container) CommandContext(ctx context.Context, name string, args ...string) *Cmd {
	if ctx == nil {
		panic("hakoniwa: nil Context")
	}
	return &Cmd{Path: name, Args: append([]string{name}, args...), c: c.Clone(), ctx: ctx}
}

// SetupError is returned by Start when the sandbox could not be built or the
// command could not be executed.
type SetupError struct {
	Step     string // the step that failed, in words
	Err      error
	ExitCode int // 125, or 126/127 when the command could not be executed
}

func (e *SetupError) Error() string {
	if e.Step == "" {
		return e.Err.Error()
	}
	return e.Step + ": " + e.Err.Error()
}

func (e *SetupError) Unwrap() error { return e.Err }

// ExitError is returned by Wait when the command did not exit with code 0.
type ExitError struct {
	Result *Result
	Stderr []byte // the captured stderr, set by Output
}

func (e *ExitError) Error() string { return e.Result.Reason }

// ExitCode is the exit code for the CLI: the command's code or 128+signal.
func (e *ExitError) ExitCode() int { return e.Result.Code() }

func (cmd *Cmd) fail(err *SetupError) error {
	r := cmd.Result
	if r == nil {
		r = &Result{StartTime: time.Now().UTC()}
		cmd.Result = r
	}
	r.Status = StatusSE
	r.Reason = err.Error()
	if err.ExitCode != 125 {
		r.ExitCode = intp(err.ExitCode)
	}
	for _, c := range cmd.closeLate {
		c.Close()
	}
	cmd.closeLate, cmd.pending = nil, nil
	cmd.closeNet()
	if cerr := cmd.closeCgroup(nil); cerr != nil {
		r.Warnings = append(r.Warnings, cerr.Error())
	}
	return err
}

// Start builds the sandbox and starts the command in it. It returns once
// the command has been executed; failures are *SetupError or *ConfigError.
func (cmd *Cmd) Start() error {
	cmd.mu.Lock()
	if cmd.started {
		cmd.mu.Unlock()
		return errors.New("hakoniwa: already started")
	}
	cmd.started = true
	cmd.mu.Unlock()
	cmd.start = time.Now()
	cmd.Result = &Result{StartTime: cmd.start.UTC(), Limits: cmd.c.limitsInForce()}

	if err := cmd.ctx.Err(); err != nil {
		return cmd.fail(&SetupError{Err: err, ExitCode: 125})
	}
	var join *cgroupJoin
	var err error
	if cmd.c.usesCgroup() {
		if err := cmd.newCgroup(); err != nil {
			return cmd.fail(err.(*SetupError))
		}
		if join, err = joinOf(cmd.group); err != nil {
			return cmd.fail(&SetupError{Step: "set up the cgroup", Err: err, ExitCode: 125})
		}
		defer join.closeGo()
	}
	if cmd.c.mayMapOthers() {
		g, err := newGoAhead()
		if err != nil {
			return cmd.fail(&SetupError{Step: "map the ids", Err: err, ExitCode: 125})
		}
		cmd.ids = &idJoin{goAhead: g}
		defer cmd.ids.close()
	}
	if cmd.c.usernet != nil {
		if cmd.net, err = newNetJoin(); err != nil {
			return cmd.fail(&SetupError{Step: "set up the network", Err: err, ExitCode: 125})
		}
		defer cmd.net.closeGo()
	}
	p, err := cmd.compileWith(join)
	if err != nil {
		var se *SetupError
		if !errors.As(err, &se) {
			se = &SetupError{Err: err, ExitCode: 125}
		}
		return cmd.fail(se)
	}

	var fds [3]int
	var closeNow []io.Closer
	cmd.copyErrs = make(chan error, 3)
	for i := 0; i < 3; i++ {
		f, err := cmd.stdio(i)
		if err != nil {
			for _, c := range closeNow {
				c.Close()
			}
			return cmd.fail(&SetupError{Step: "set up stdio", Err: err, ExitCode: 125})
		}
		fds[i] = int(f.Fd())
		closeNow = append(closeNow, f)
	}

	if cmd.c.seccomp != nil && cmd.c.learner == nil {
		// To name the syscall if the filter kills the command.
		cmd.kmsg = openKmsg()
	}
	if cmd.c.learner != nil {
		cmd.learn = newSupervisor(cmd.c.learner)
		p.Started = cmd.learn.start
	}
	if cmd.net != nil {
		p.Started = cmd.netHook(cmd.net, p.Started)
	}
	if cmd.ids != nil && cmd.ids.plan.parentWrites {
		// Before the network: pasta joins the user namespace.
		p.Started = cmd.idHook(cmd.ids, cmd.ids.plan, p.Started)
	}
	if join != nil && join.attach {
		p.Started = cmd.attachHook(join, p.Started) // first: the child waits for it first
	}
	proc, err := nsexec.Start(p, fds)
	join.closeGo()
	cmd.net.closeGo()
	if cmd.ids != nil {
		cmd.ids.close()
	}
	// A task of the Started hooks that failed: the child was killed
	// while it waited, which its error pipe tells as end of file, like an
	// execve. A child that failed before it waited for its network left
	// the helper no process: then its own error is the one.
	var hookStep string
	var hookErr error
	var early *nsexec.StepError
	switch {
	case cmd.attachErr != nil:
		hookStep, hookErr = "move the sandbox into its cgroup", cmd.attachErr
	case cmd.idErr != nil:
		hookStep, hookErr = "map the ids", cmd.idErr
	case cmd.netErr != nil && !(errors.As(err, &early) && early.Kind != nsexec.OpWaitGo):
		hookStep, hookErr = "set up the network with "+cmd.c.usernet.mode, cmd.netErr
	}
	if hookErr != nil {
		if err == nil {
			proc.Signal(unix.SIGKILL)
			proc.Wait()
		}
		err = hookErr
	}
	for _, c := range closeNow {
		c.Close()
	}
	if err != nil && cmd.kmsg != nil {
		cmd.kmsg.close()
		cmd.kmsg = nil
	}
	if err != nil && cmd.learn != nil {
		cmd.learn.startDone() // the clone failed, or the child before its execve
		cmd.learn = nil
	}
	if hookErr != nil {
		cmd.pending = nil
		return cmd.fail(&SetupError{Step: hookStep, Err: hookErr, ExitCode: 125})
	}
	if err != nil {
		var se *nsexec.StepError
		code := 125
		step := ""
		if errors.As(err, &se) {
			step = se.Desc
			if se.Kind == nsexec.OpExec || se.Kind == nsexec.OpCheckProgram || se.Kind == nsexec.OpSearch {
				code = 126
				if se.Errno == unix.ENOENT {
					code = 127
				}
			}
			err = se.Errno
			if se.Kind == nsexec.OpSearch && se.Errno == unix.ENOENT {
				err = errors.New("command not found")
			}
			if se.Kind == nsexec.OpExec && se.Errno == unix.ENOENT {
				err = fmt.Errorf("%w: the program, or the interpreter it needs (its #! line's, or an ELF loader such as /lib64/ld-linux-x86-64.so.2), is missing inside the sandbox", se.Errno)
			}
			if code == 125 && (se.Errno == unix.EPERM || se.Errno == unix.EACCES) && apparmorRestrictsUserns() {
				err = fmt.Errorf("%w: AppArmor restricts unprivileged user namespaces on this host (kernel.apparmor_restrict_unprivileged_userns = 1), which takes a program's capabilities in them away unless a profile allows it; install contrib/apparmor/hakoniwa (`hakoniwa doctor` says how)", se.Errno)
			}
			if (se.Kind == nsexec.OpCheckProgram || se.Kind == nsexec.OpSearch) && se.Errno == unix.ELOOP {
				err = fmt.Errorf("the program or its #! interpreter goes through a magic link such as /proc/self/exe, which could name a file outside the sandbox (%w)", se.Errno)
			}
			if se.Kind == nsexec.OpOpen && se.Errno == unix.ELOOP {
				err = fmt.Errorf("a symlink is in the way; symlinks are never followed while the root is built (%w)", se.Errno)
			}
		}
		cmd.pending = nil // fail closes the pipes; no copy was started
		err = explainClone(err, join)
		return cmd.fail(&SetupError{Step: step, Err: err, ExitCode: code})
	}
	for _, copy := range cmd.pending {
		cmd.copies++
		go func() { cmd.copyErrs <- copy() }()
	}
	cmd.pending = nil
	cmd.Result.SetupTime = durp(time.Since(cmd.start))
	cmd.Result.Pid = proc.Pid
	if cmd.group != nil {
		cmd.Result.Cgroup = cmd.group.Path() // a scope's is known once attached
	}
	cmd.mu.Lock()
	cmd.proc = proc
	cmd.mu.Unlock()

	if d := cmd.c.walltime; d > 0 {
		cmd.timer = time.AfterFunc(d, func() { cmd.kill(stopCause{walltime: d}) })
	}
	if s, ok := cmd.c.rlimits[RlimitCPU]; ok && join != nil {
		switch {
		case !join.watchesCPU:
			cmd.c.logAt(slog.LevelInfo)("cgroup: no cpu usage to watch (no cpuacct hierarchy); the cpu-time limit is RLIMIT_CPU's, per process")
		case s > 0 && s < maxWatchedCPU:
			cmd.watchCPU(time.Duration(s) * time.Second)
		}
	}
	if cmd.ctx.Done() != nil {
		cmd.stopCtx = context.AfterFunc(cmd.ctx, func() {
			cmd.kill(stopCause{reason: "context: " + context.Cause(cmd.ctx).Error()})
		})
	}
	return nil
}

// stdio returns the file for fd i of the command. The caller closes it after
// the start; pipes' other ends are closed by Wait.
func (cmd *Cmd) stdio(i int) (*os.File, error) {
	if i == 0 {
		switch r := cmd.Stdin.(type) {
		case nil:
			return os.Open(os.DevNull)
		case *os.File:
			return dupFile(r)
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			cmd.startCopy(pw, func() error {
				_, err := io.Copy(pw, r)
				pw.Close()
				if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
					return nil // the command did not read all its input
				}
				return err
			})
			return pr, nil
		}
	}
	w := cmd.Stdout
	if i == 2 {
		w = cmd.Stderr
		if w != nil && sameWriter(w, cmd.Stdout) {
			// One pipe for both keeps their interleaving.
			if f, ok := w.(*os.File); ok {
				return dupFile(f)
			}
			return cmd.sharedOut, nil
		}
	}
	switch w := w.(type) {
	case nil:
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	case *os.File:
		return dupFile(w)
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		cmd.startCopy(pr, func() error {
			_, err := io.Copy(w, pr)
			pr.Close()
			return err
		})
		if i == 1 && sameWriter(cmd.Stderr, cmd.Stdout) {
			dup, err := dupFile(pw)
			if err != nil {
				pw.Close()
				return nil, err
			}
			cmd.sharedOut = dup
		}
		return pw, nil
	}
}

// apparmorRestrictsUserns reports whether AppArmor takes the capabilities
// of unprivileged programs' user namespaces away (Ubuntu 23.10 and later).
func apparmorRestrictsUserns() bool {
	b, _ := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
	return os.Geteuid() != 0 && strings.TrimSpace(string(b)) == "1"
}

// explainClone adds what the user can do to a failure to create the
// namespaces, which is most often the host forbidding user namespaces.
func explainClone(err error, join *cgroupJoin) error {
	var ce *nsexec.CloneError
	switch {
	case !errors.As(err, &ce):
		return err
	case join != nil && join.into && ce.Errno != unix.ENOSPC && ce.Errno != unix.EUSERS && ce.Errno != unix.ENOSYS:
		return fmt.Errorf("create the namespaces in the cgroup %s: %w: either the cgroup refused the process (not delegated to this user, or a controller's rule), or this host does not let this user create user namespaces", join.path, err)
	case ce.Errno == unix.EPERM, ce.Errno == unix.EACCES:
		return fmt.Errorf("create the namespaces: %w: this host does not let this user create user namespaces (see the sysctls kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns, or an AppArmor profile; `hakoniwa doctor` says which, and how to fix it)", err)
	case ce.Errno == unix.ENOSPC, ce.Errno == unix.EUSERS:
		return fmt.Errorf("create the namespaces: %w: the limit of user or other namespaces is reached (see the sysctls user.max_user_namespaces and user.max_*_namespaces; inside a hakoniwa sandbox run as root, new namespaces are forbidden; `hakoniwa doctor` checks them)", err)
	case ce.Errno == unix.ENOSYS:
		return fmt.Errorf("create the namespaces: %w: clone3 is missing or forbidden (a seccomp filter such as hakoniwa's default or Docker's refuses it; run the outer sandbox with --seccomp unconfined)", err)
	}
	return fmt.Errorf("create the namespaces: %w", err)
}

// startCopy arranges for copy to run in a goroutine once the command has
// started, which Wait waits for; our end of its pipe is closed by Wait, or
// at once if the start fails. Starting the copies only then means a failed
// start never waits for a reader that may never return.
func (cmd *Cmd) startCopy(end io.Closer, copy func() error) {
	cmd.closeLate = append(cmd.closeLate, end)
	cmd.pending = append(cmd.pending, copy)
}

// sameWriter reports whether a and b are the same writer, also for writers
// of types that cannot be compared.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// kill stops the command with SIGKILL and records why.
func (cmd *Cmd) kill(why stopCause) {
	cmd.mu.Lock()
	if cmd.stop == (stopCause{}) {
		cmd.stop = why
	}
	proc := cmd.proc
	cmd.mu.Unlock()
	if proc != nil {
		proc.Signal(unix.SIGKILL)
	}
}

// Signal sends sig to the command. The command is PID 1 of its pid
// namespace, so a signal it has no handler for is ignored, except SIGKILL.
func (cmd *Cmd) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("hakoniwa: unsupported signal %v", sig)
	}
	cmd.mu.Lock()
	proc := cmd.proc
	cmd.mu.Unlock()
	if proc == nil {
		return errors.New("hakoniwa: not started")
	}
	return proc.Signal(unix.Signal(s))
}

// Terminate sends sig to the command, and SIGKILL if it is still running
// after grace. It returns at once.
func (cmd *Cmd) Terminate(sig os.Signal, grace time.Duration) error {
	if err := cmd.Signal(sig); err != nil {
		return err
	}
	cmd.mu.Lock()
	proc := cmd.proc
	cmd.mu.Unlock()
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-proc.Done():
		case <-t.C:
			cmd.kill(stopCause{reason: fmt.Sprintf("still running %v after %v", grace, sig)})
		}
	}()
	return nil
}

// Wait waits for the command to exit and for its output to be copied, and
// fills Result. It returns an *ExitError if the command did not exit with
// code 0.
func (cmd *Cmd) Wait() error {
	cmd.mu.Lock()
	proc := cmd.proc
	if proc == nil {
		cmd.mu.Unlock()
		return errors.New("hakoniwa: not started")
	}
	if cmd.waited {
		cmd.mu.Unlock()
		return errors.New("hakoniwa: Wait was already called")
	}
	cmd.waited = true
	cmd.mu.Unlock()

	ws, ru, werr := proc.Wait()
	end := time.Now()
	cmd.closeNet()
	if cmd.learn != nil {
		// Every process of the sandbox is gone with PID 1, so the
		// supervisor sees its filter lose its last user.
		if err := <-cmd.learn.done; err != nil && werr == nil {
			werr = err
		}
	}

	if cmd.timer != nil {
		cmd.timer.Stop()
	}
	if cmd.stopCtx != nil {
		cmd.stopCtx()
	}
	var copyErr error
	for i := 0; i < cmd.copies; i++ {
		if err := <-cmd.copyErrs; err != nil && copyErr == nil {
			copyErr = err
		}
	}
	for _, c := range cmd.closeLate {
		c.Close()
	}
	cmd.closeLate = nil

	r := cmd.Result
	r.RealTime = durp(end.Sub(cmd.start))
	cmd.stopWatch()
	if werr != nil {
		r.Status = StatusUK
		r.Reason = "wait: " + werr.Error()
		if err := cmd.closeCgroup(nil); err != nil {
			r.Warnings = append(r.Warnings, err.Error())
		}
		return &ExitError{Result: r}
	}
	cmd.mu.Lock()
	stop := cmd.stop
	cmd.mu.Unlock()
	_, fsize := cmd.c.rlimits[RlimitFsize]
	r.finish(ws, &ru, cmd.c.rlimits[RlimitCPU], fsize, stop)
	if err := cmd.closeCgroup(r); err != nil {
		r.Warnings = append(r.Warnings, err.Error())
	}
	r.judgeCgroup(cmd.c.cg.limits, cmd.pidsDenied, stop)
	if cmd.kmsg != nil {
		if r.Status == StatusRFE {
			if call := cmd.kmsg.killedBy(r.Pid); call != "" {
				r.Reason = "killed with SIGSYS: seccomp refused " + call
			}
		}
		cmd.kmsg.close()
		cmd.kmsg = nil
	}
	if r.Status != StatusOK || *r.ExitCode != 0 {
		return &ExitError{Result: r}
	}
	if copyErr != nil {
		return copyErr
	}
	return nil
}

// Run starts the command and waits for it.
func (cmd *Cmd) Run() error {
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
}

// Output runs the command and returns its standard output. If Stderr is nil
// it is captured into the *ExitError.
func (cmd *Cmd) Output() ([]byte, error) {
	if cmd.Stdout != nil {
		return nil, errors.New("hakoniwa: Stdout already set")
	}
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	captureErr := cmd.Stderr == nil
	if captureErr {
		cmd.Stderr = &errb
	}
	err := cmd.Run()
	var ee *ExitError
	if captureErr && errors.As(err, &ee) {
		ee.Stderr = errb.Bytes()
	}
	return out.Bytes(), err
}

// CombinedOutput runs the command and returns its standard output and
// standard error together.
func (cmd *Cmd) CombinedOutput() ([]byte, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("hakoniwa: Stdout or Stderr already set")
	}
	var b bytes.Buffer
	cmd.Stdout = &b
	cmd.Stderr = &b
	err := cmd.Run()
	return b.Bytes(), err
}

// Plan compiles the sandbox without running it and returns the steps the
// child would run, one a line.
func (cmd *Cmd) Plan() (string, error) {
	p, err := cmd.compile()
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// compile compiles the sandbox for this command. A program name without a
// slash is looked up in the caller's PATH here when the sandbox's
// environment has no PATH; with one, the child looks it up inside.
func (cmd *Cmd) compile() (*nsexec.Program, error) {
	var join *cgroupJoin
	if cmd.c.usesCgroup() {
		// Made only when the run starts; the plan shows where it is joined.
		join = &cgroupJoin{plan: true, watchesCPU: true}
	}
	return cmd.compileWith(join)
}

// compileWith compiles the sandbox for this command, entering the cgroup
// join says.
func (cmd *Cmd) compileWith(join *cgroupJoin) (*nsexec.Program, error) {
	env := dedupEnv(append(cmd.c.Env(), cmd.Env...))
	path := cmd.Path
	if _, sandboxPath := envValue(env, "PATH"); !strings.Contains(path, "/") && !sandboxPath {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, &SetupError{Step: "look up " + path + " in PATH", Err: errors.New("command not found"), ExitCode: 127}
		}
		path = p
	}
	return cmd.c.compile(command{path: path, argv: cmd.Args, env: env, dir: cmd.Dir, keep: cmd.KeepFds, result: cmd.Result, cgroup: join, net: cmd.net, ids: cmd.ids}, cmd.c.logger)
}

// envValue returns the value that env gives the variable name (the last
// one, as execve's environment would), and whether it sets it.
func envValue(env []string, name string) (value string, ok bool) {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			value, ok = v, true
		}
	}
	return value, ok
}
