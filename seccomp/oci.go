package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerCaps are the capabilities of a default Docker container. A
// profile's rules that include or exclude capabilities (its "includes"
// and "excludes") are resolved for them, as Docker does, so that a profile
// means here what it means in Docker.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func dockerSpec() *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: dockerCaps}}}
}

// Docker returns Docker's default profile (from github.com/moby/profiles),
// resolved for this machine and for a default container's capabilities.
func Docker() (*Profile, error) {
	spec, err := moby.GetDefaultProfile(dockerSpec())
	if err != nil {
		return nil, fmt.Errorf("seccomp: docker profile: %w", err)
	}
	p, _, err := fromSpec(spec)
	return p, err
}

// ParseJSON parses a Docker/OCI JSON profile: defaultAction,
// defaultErrnoRet, architectures or archMap, and syscalls with names,
// action, errnoRet, args, includes and excludes. Unknown keys are errors.
// It also returns the syscall names that no ABI of the profile has (a
// profile may name the syscalls of other machines); they are left out.
func ParseJSON(data []byte) (*Profile, []string, error) {
	var check moby.Seccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&check); err != nil {
		return nil, nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("seccomp profile: more than one JSON value")
	}
	if check.DefaultAction == "" {
		return nil, nil, errors.New("seccomp profile: no defaultAction")
	}
	for i, sc := range check.Syscalls {
		if sc == nil {
			return nil, nil, fmt.Errorf("seccomp profile: syscalls[%d] is null", i)
		}
	}
	// Keys that the OCI format has and hakoniwa does not do: refused,
	// never ignored.
	switch {
	case len(check.Flags) > 0:
		return nil, nil, fmt.Errorf("seccomp profile: flags %v: filter flags are not supported", check.Flags)
	case check.ListenerPath != "" || check.ListenerMetadata != "":
		return nil, nil, errors.New("seccomp profile: listenerPath: hakoniwa does not hand notifications to another program (--seccomp-learn records a run instead)")
	}
	spec, err := moby.LoadProfile(string(data), dockerSpec())
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return fromSpec(spec)
}

var ociOps = map[specs.LinuxSeccompOperator]Op{
	specs.OpEqualTo: OpEQ, specs.OpNotEqual: OpNE, specs.OpLessThan: OpLT,
	specs.OpLessEqual: OpLE, specs.OpGreaterThan: OpGT, specs.OpGreaterEqual: OpGE,
	specs.OpMaskedEqual: OpMaskedEQ,
}

// fromSpec turns an OCI profile into ours, for the ABIs of this machine.
func fromSpec(s *specs.LinuxSeccomp) (*Profile, []string, error) {
	def, err := ParseAction(string(s.DefaultAction), s.DefaultErrnoRet)
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp profile: defaultAction: %w", err)
	}
	if def.Kind == ActNotify {
		return nil, nil, errors.New("seccomp profile: defaultAction: SCMP_ACT_NOTIFY needs a supervisor, which a profile cannot name")
	}
	p := &Profile{Default: def}
	native, others := NativeArch()
	mine := append([]Arch{native}, others...)
	for _, name := range s.Architectures {
		// Another machine's ABI (SCMP_ARCH_PPC64LE…) cannot apply here.
		a, err := ParseArch(string(name))
		if err != nil && !strings.HasPrefix(string(name), "SCMP_ARCH_") {
			return nil, nil, fmt.Errorf("seccomp profile: %w", err)
		}
		if err == nil && slices.Contains(mine, a) && !slices.Contains(p.Arches, a) {
			p.Arches = append(p.Arches, a)
		}
	}
	if len(p.Arches) > 0 && p.Arches[0] != native {
		p.Arches = append([]Arch{native}, slices.DeleteFunc(p.Arches, func(a Arch) bool { return a == native })...)
	}
	arches := p.arches()
	var unknown []string
	for i, sc := range s.Syscalls {
		act, err := ParseAction(string(sc.Action), sc.ErrnoRet)
		if err != nil {
			return nil, nil, fmt.Errorf("seccomp profile: syscalls[%d]: %w", i, err)
		}
		if act.Kind == ActNotify {
			return nil, nil, fmt.Errorf("seccomp profile: syscalls[%d]: SCMP_ACT_NOTIFY needs a supervisor, which a profile cannot name", i)
		}
		var names []string
		for _, name := range sc.Names {
			known := false
			for _, a := range arches {
				if _, ok := a.Number(name); ok {
					known = true
				}
			}
			if known {
				names = append(names, name)
			} else if !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
		var conds []Cond
		indexes := map[uint]bool{}
		repeated := false
		for _, arg := range sc.Args {
			op, ok := ociOps[arg.Op]
			if !ok {
				return nil, nil, fmt.Errorf("seccomp profile: syscalls[%d]: unknown op %q", i, arg.Op)
			}
			if arg.Index > 5 {
				return nil, nil, fmt.Errorf("seccomp profile: syscalls[%d]: argument index %d: want 0 to 5", i, arg.Index)
			}
			c := Cond{Index: uint8(arg.Index), Op: op, Value: arg.Value}
			if op == OpMaskedEQ {
				c.Mask, c.Value = arg.Value, arg.ValueTwo
			}
			conds = append(conds, c)
			repeated = repeated || indexes[arg.Index]
			indexes[arg.Index] = true
		}
		if len(names) == 0 {
			continue
		}
		if !repeated {
			p.Rules = append(p.Rules, Rule{Names: names, Action: act, Conds: conds})
			continue
		}
		// As runc: when an argument is named twice, each condition is a
		// rule of its own, so that either can match.
		for _, c := range conds {
			p.Rules = append(p.Rules, Rule{Names: names, Action: act, Conds: []Cond{c}})
		}
	}
	if err := p.Check(); err != nil {
		return nil, nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return p, unknown, nil
}
