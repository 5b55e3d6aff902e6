package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ActionKind is what a filter does with a system call.
type ActionKind uint8

// The actions, as in seccomp(2).
const (
	ActAllow       ActionKind = iota + 1 // let it run
	ActErrno                             // fail it with Action.Errno
	ActKillProcess                       // kill the process with SIGSYS
	ActKillThread                        // kill the thread with SIGSYS
	ActTrap                              // send SIGSYS
	ActLog                               // let it run, and log it
	ActTrace                             // hand it to a ptrace tracer, with Action.Errno as data
	ActNotify                            // hand it to a user-space supervisor
)

// Action is an action with its errno (for ActErrno) or data (ActTrace).
type Action struct {
	Kind  ActionKind
	Errno uint16
}

// The actions that take no value.
var (
	Allow       = Action{Kind: ActAllow}
	KillProcess = Action{Kind: ActKillProcess}
	KillThread  = Action{Kind: ActKillThread}
	Trap        = Action{Kind: ActTrap}
	Log         = Action{Kind: ActLog}
	Notify      = Action{Kind: ActNotify}
)

// Errno returns the action that fails a call with errno e.
func Errno(e uint16) Action { return Action{Kind: ActErrno, Errno: e} }

// ret returns the filter's return value for a.
func (a Action) ret() uint32 {
	switch a.Kind {
	case ActAllow:
		return 0x7fff0000
	case ActErrno:
		return 0x00050000 | uint32(a.Errno)
	case ActKillProcess:
		return 0x80000000
	case ActKillThread:
		return 0x00000000
	case ActTrap:
		return 0x00030000
	case ActLog:
		return 0x7ffc0000
	case ActTrace:
		return 0x7ff00000 | uint32(a.Errno)
	case ActNotify:
		return 0x7fc00000
	}
	return 0x80000000
}

func (a Action) String() string {
	switch a.Kind {
	case ActAllow:
		return "allow"
	case ActErrno:
		return "errno(" + strconv.Itoa(int(a.Errno)) + ")"
	case ActKillProcess:
		return "kill_process"
	case ActKillThread:
		return "kill_thread"
	case ActTrap:
		return "trap"
	case ActLog:
		return "log"
	case ActTrace:
		return "trace(" + strconv.Itoa(int(a.Errno)) + ")"
	case ActNotify:
		return "notify"
	}
	return "invalid"
}

// ParseAction parses an action by our name (allow, errno, kill_process,
// kill, kill_thread, trap, log, trace, notify) or by the OCI one
// (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO…). errno is the value of errno and
// trace; nil means EPERM for errno and 0 for trace.
func ParseAction(s string, errno *uint) (Action, error) {
	name := strings.ToLower(strings.TrimPrefix(s, "SCMP_ACT_"))
	var a Action
	switch name {
	case "allow":
		a = Allow
	case "errno":
		a = Errno(1) // EPERM
	case "kill", "kill_process":
		a = KillProcess
	case "kill_thread":
		a = KillThread
	case "trap":
		a = Trap
	case "log":
		a = Log
	case "trace":
		a = Action{Kind: ActTrace}
	case "notify":
		a = Notify
	default:
		return Action{}, fmt.Errorf("unknown action %q (want allow, errno, kill_process, kill_thread, trap, log, trace or notify)", s)
	}
	if errno != nil {
		if a.Kind != ActErrno && a.Kind != ActTrace {
			return Action{}, fmt.Errorf("action %s takes no errno", s)
		}
		if *errno > 4095 {
			return Action{}, fmt.Errorf("errno %d: want 0 to 4095", *errno)
		}
		a.Errno = uint16(*errno)
	}
	return a, nil
}

// Op compares a system call's argument.
type Op uint8

// The comparisons, over the full 64 bits of the argument.
const (
	OpEQ       Op = iota + 1 // arg == Value
	OpNE                     // arg != Value
	OpLT                     // arg < Value
	OpLE                     // arg <= Value
	OpGT                     // arg > Value
	OpGE                     // arg >= Value
	OpMaskedEQ               // arg & Mask == Value
)

var opNames = map[Op]string{OpEQ: "==", OpNE: "!=", OpLT: "<", OpLE: "<=", OpGT: ">", OpGE: ">=", OpMaskedEQ: "&=="}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "invalid"
}

// Cond is a condition on argument Index (0 to 5) of a system call.
type Cond struct {
	Index uint8
	Op    Op
	Value uint64
	Mask  uint64 // for OpMaskedEQ
}

func (c Cond) String() string {
	if c.Op == OpMaskedEQ {
		return fmt.Sprintf("arg%d & %#x == %#x", c.Index, c.Mask, c.Value)
	}
	return fmt.Sprintf("arg%d %s %#x", c.Index, c.Op, c.Value)
}

// Rule gives the system calls Names the Action when every one of Conds
// holds. For one system call, rules are tried in order; the first that
// holds decides, and when none does the profile's default does.
type Rule struct {
	Names  []string
	Action Action
	Conds  []Cond
}

func (r Rule) String() string {
	s := strings.Join(r.Names, ",") + " -> " + r.Action.String()
	for _, c := range r.Conds {
		s += " if " + c.String()
	}
	return s
}

// Profile is a seccomp filter: a default action, the ABIs it lets
// through (calls through any other are killed), and rules.
type Profile struct {
	Default Action
	Arches  []Arch // the native ABI first; empty means the native one alone
	Rules   []Rule
}

// Check reports what is wrong with p: an action or condition out of
// range, or a syscall name that none of its ABIs has.
func (p *Profile) Check() error {
	var errs []error
	if p.Default.Kind < ActAllow || p.Default.Kind > ActNotify {
		errs = append(errs, errors.New("no default action, or an invalid one"))
	}
	arches := p.arches()
	for _, a := range arches {
		if a.table() == nil {
			errs = append(errs, fmt.Errorf("architecture %s: no syscall table for it", a))
		}
	}
	for i, r := range p.Rules {
		if r.Action.Kind < ActAllow || r.Action.Kind > ActNotify {
			errs = append(errs, fmt.Errorf("rule %d: no action, or an invalid one", i))
		}
		for _, c := range r.Conds {
			if c.Index > 5 {
				errs = append(errs, fmt.Errorf("rule %d: argument %d: want 0 to 5", i, c.Index))
			}
			if c.Op < OpEQ || c.Op > OpMaskedEQ {
				errs = append(errs, fmt.Errorf("rule %d: bad comparison", i))
			}
		}
		for _, name := range r.Names {
			known := false
			for _, a := range arches {
				if _, ok := a.Number(name); ok {
					known = true
				}
			}
			if !known {
				errs = append(errs, fmt.Errorf("unknown syscall %q", name))
			}
		}
	}
	return errors.Join(errs...)
}

// AllowsExecve reports an error if p refuses execve outright on the
// machine's own ABI: the filter is loaded right before the command's
// execve, which would then fail or be killed, with nothing to say that the
// filter did it. A rule with conditions on execve is taken to allow it.
func (p *Profile) AllowsExecve() error {
	native, _ := NativeArch()
	if !slices.Contains(p.arches(), native) {
		return fmt.Errorf("the profile does not list the machine's ABI (%s), so the command could not even start", native)
	}
	act := p.Default
	for _, r := range p.Rules {
		if slices.Contains(r.Names, "execve") {
			if len(r.Conds) > 0 {
				return nil
			}
			act = r.Action
			break
		}
	}
	switch act.Kind {
	case ActAllow, ActLog:
		return nil
	}
	return fmt.Errorf("the profile gives execve %s, so the command could not start (the filter is loaded right before its execve): allow execve", act)
}

// arches returns the ABIs p lets through, the native one first.
func (p *Profile) arches() []Arch {
	native, _ := NativeArch()
	if len(p.Arches) == 0 {
		return []Arch{native}
	}
	out := []Arch{}
	seen := map[Arch]bool{}
	for _, a := range append([]Arch{}, p.Arches...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// Summary says what p is in a line: "N rules, arches(x86_64), default errno(1)".
func (p *Profile) Summary() string {
	names := make([]string, 0, len(p.arches()))
	for _, a := range p.arches() {
		names = append(names, string(a))
	}
	return fmt.Sprintf("%d rules, arches(%s), default %s", len(p.Rules), strings.Join(names, ","), p.Default)
}
