package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// label names a place in the program. Jumps in classic BPF only go
// forward, so a label is always marked after the jumps to it.
type label int

// item is one entry of the program being assembled: an instruction, a
// conditional jump to two labels, a jump to one, or a label's place.
type item struct {
	ins    bpf.Instruction // a plain instruction, or nil
	test   bpf.JumpTest    // a conditional jump: A test val
	val    uint32
	jt, jf label // its targets
	to     label // an unconditional jump's target (with isJump)
	isJump bool
	mark   label // a label placed here (with isMark)
	isMark bool
}

// asm assembles a program with labels, putting a trampoline (an
// unconditional jump, which can go far) behind a conditional jump whose
// target is further than its 8-bit offset reaches.
type asm struct {
	items  []item
	labels int
	rets   map[uint32]label // the shared return of each value
	order  []uint32         // the returns, in the order they were asked for
}

func (a *asm) newLabel() label {
	a.labels++
	return label(a.labels)
}

func (a *asm) mark(l label)           { a.items = append(a.items, item{mark: l, isMark: true}) }
func (a *asm) jumpTo(l label)         { a.items = append(a.items, item{to: l, isJump: true}) }
func (a *asm) load(off uint32)        { a.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }
func (a *asm) and(mask uint32)        { a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask}) }
func (a *asm) emit(i bpf.Instruction) { a.items = append(a.items, item{ins: i}) }

func (a *asm) jump(test bpf.JumpTest, val uint32, jt, jf label) {
	a.items = append(a.items, item{test: test, val: val, jt: jt, jf: jf})
}

// ret returns the label of the shared "return v", placed at the end of
// the program.
func (a *asm) ret(v uint32) label {
	if a.rets == nil {
		a.rets = map[uint32]label{}
	}
	if l, ok := a.rets[v]; ok {
		return l
	}
	l := a.newLabel()
	a.rets[v] = l
	a.order = append(a.order, v)
	return l
}

// assemble places the returns, resolves the labels and returns the
// instructions.
func (a *asm) assemble() ([]bpf.Instruction, error) {
	items := append([]item(nil), a.items...)
	for _, v := range a.order {
		items = append(items, item{mark: a.rets[v], isMark: true}, item{ins: bpf.RetConstant{Val: v}})
	}
	for {
		at, pos, err := addresses(items, a.labels)
		if err != nil {
			return nil, err
		}
		// Every conditional jump whose target is out of reach gets its
		// far target(s) through unconditional jumps placed right behind
		// it; a conditional jump names both its targets, so nothing else
		// falls into them. Inserting moves other targets further, so
		// repeat until everything is in reach.
		out := make([]item, 0, len(items)+len(items)/4)
		changed := false
		for i, it := range items {
			if it.isMark || it.ins != nil || it.isJump ||
				at[it.jt]-pos[i]-1 <= 255 && at[it.jf]-pos[i]-1 <= 255 {
				out = append(out, it)
				continue
			}
			changed = true
			var tramps []item
			for _, t := range []*label{&it.jt, &it.jf} {
				if at[*t]-pos[i]-1 > 255-2 {
					l := a.newLabel()
					tramps = append(tramps, item{mark: l, isMark: true}, item{to: *t, isJump: true})
					*t = l
				}
			}
			out = append(append(out, it), tramps...)
		}
		if !changed {
			return emit(items, at, pos), nil
		}
		items = out
	}
}

// addresses returns the instruction index of every label (indexed by
// label) and of every item, and checks that every jump goes to a placed
// label ahead of it.
func addresses(items []item, labels int) ([]int, []int, error) {
	at := make([]int, labels+1)
	for i := range at {
		at[i] = -1
	}
	pos := make([]int, len(items))
	n := 0
	for i := range items {
		pos[i] = n
		if items[i].isMark {
			at[items[i].mark] = n
			continue
		}
		n++
	}
	for i, it := range items {
		if it.isMark || it.ins != nil {
			continue
		}
		for _, t := range []label{it.jt, it.jf, it.to} {
			if t == 0 {
				continue
			}
			if int(t) >= len(at) || at[t] < 0 {
				return nil, nil, fmt.Errorf("seccomp: internal error: label %d not placed", t)
			}
			if at[t] <= pos[i] {
				return nil, nil, fmt.Errorf("seccomp: internal error: jump back to label %d", t)
			}
		}
	}
	return at, pos, nil
}

func emit(items []item, at []int, pos []int) []bpf.Instruction {
	var out []bpf.Instruction
	for i, it := range items {
		switch {
		case it.isMark:
		case it.ins != nil:
			out = append(out, it.ins)
		case it.isJump:
			out = append(out, bpf.Jump{Skip: uint32(at[it.to] - pos[i] - 1)})
		default:
			out = append(out, bpf.JumpIf{Cond: it.test, Val: it.val,
				SkipTrue: uint8(at[it.jt] - pos[i] - 1), SkipFalse: uint8(at[it.jf] - pos[i] - 1)})
		}
	}
	return out
}
