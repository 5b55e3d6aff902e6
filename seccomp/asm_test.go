package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
)

// interp runs the assembler's input, a's items and its returns, by
// labels, with no offsets and so no trampolines: what the assembled
// program must do.
func interp(t *testing.T, a *asm, data []byte) uint32 {
	t.Helper()
	items := append([]item(nil), a.items...)
	for _, v := range a.order {
		items = append(items, item{mark: a.rets[v], isMark: true}, item{ins: bpf.RetConstant{Val: v}})
	}
	at := map[label]int{}
	for i, it := range items {
		if it.isMark {
			at[it.mark] = i
		}
	}
	var A uint32
	for pc := 0; pc < len(items); {
		it := items[pc]
		switch {
		case it.isMark:
			pc++
		case it.isJump:
			pc = at[it.to]
		case it.ins != nil:
			switch ins := it.ins.(type) {
			case bpf.LoadAbsolute:
				A = binary.BigEndian.Uint32(data[ins.Off:])
			case bpf.ALUOpConstant:
				A &= ins.Val
			case bpf.LoadConstant:
			case bpf.RetConstant:
				return ins.Val
			default:
				t.Fatalf("interp: %T", ins)
			}
			pc++
		default:
			var holds bool
			switch it.test {
			case bpf.JumpEqual:
				holds = A == it.val
			case bpf.JumpGreaterThan:
				holds = A > it.val
			case bpf.JumpGreaterOrEqual:
				holds = A >= it.val
			default:
				t.Fatalf("interp: test %v", it.test)
			}
			if holds {
				pc = at[it.jt]
			} else {
				pc = at[it.jf]
			}
		}
	}
	t.Fatal("interp: ran off the end")
	return 0
}

// filler emits n instructions that do nothing to A.
func (a *asm) filler(n int) {
	for i := range n {
		a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(i)})
	}
}

// TestAsmJumpDistances puts the targets of one conditional jump at
// every distance around the 8-bit limit, each and both.
func TestAsmJumpDistances(t *testing.T) {
	distances := []int{0, 1, 100}
	for d := 245; d <= 265; d++ {
		distances = append(distances, d)
	}
	distances = append(distances, 509, 510, 511, 512, 513, 1000)
	for _, dt := range distances {
		for _, df := range distances {
			var a asm
			a.load(offNr)
			jt, jf := a.newLabel(), a.newLabel()
			a.jump(bpf.JumpEqual, 1, jt, jf)
			// The nearer target is placed first, after its filler.
			first, second, d1, d2 := jt, jf, dt, df
			v1, v2 := uint32(1), uint32(2)
			if df < dt {
				first, second, d1, d2 = jf, jt, df, dt
				v1, v2 = 2, 1
			}
			a.filler(d1)
			a.mark(first)
			a.jumpTo(a.ret(v1))
			a.filler(d2 - d1)
			a.mark(second)
			a.jumpTo(a.ret(v2))
			insns, err := a.assemble()
			if err != nil {
				t.Fatalf("%d/%d: %v", dt, df, err)
			}
			vm := newVM(t, insns)
			for nr, want := range map[uint32]uint32{1: 1, 0: 2, 7: 2} {
				got, err := vm.Run(seccompData(call{X86_64, nr, [6]uint64{}}))
				if err != nil || uint32(got) != want {
					t.Errorf("jt at %d, jf at %d, nr %d: got %d, %v; want %d", dt, df, nr, got, err, want)
				}
			}
		}
	}
}

// TestAsmRandom is a property test of the assembler: random programs of
// forward jumps, short and far, do in the VM what their items say.
func TestAsmRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	tests := []bpf.JumpTest{bpf.JumpEqual, bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual}
	programs := 200
	if testing.Short() {
		programs = 30
	}
	for p := range programs {
		var a asm
		steps := 50 + r.IntN(900)
		// Each label's step, in order; a jump at step i goes to a label
		// placed after i, or to a return.
		nlabels := 1 + r.IntN(steps/3+1)
		type pending struct {
			l    label
			step int
		}
		var labels []pending
		for range nlabels {
			labels = append(labels, pending{a.newLabel(), r.IntN(steps)})
		}
		target := func(step int) label {
			var after []label
			for _, pl := range labels {
				if pl.step > step {
					after = append(after, pl.l)
				}
			}
			if len(after) == 0 || r.IntN(8) == 0 {
				return a.ret(uint32(r.IntN(6)))
			}
			// Mostly near labels, sometimes far ones.
			if r.IntN(2) == 0 {
				return after[0]
			}
			return after[r.IntN(len(after))]
		}
		for step := range steps {
			for _, pl := range labels {
				if pl.step == step {
					a.mark(pl.l)
				}
			}
			switch k := r.IntN(10); {
			case k < 3:
				a.load(uint32([]int{offNr, offArch, offArgs, offArgs + 4, offArgs + 8}[r.IntN(5)]))
			case k < 4:
				a.and(r.Uint32())
			case k < 7:
				a.jump(tests[r.IntN(len(tests))], []uint32{0, 1, 5, 0x80000000, r.Uint32()}[r.IntN(5)], target(step), target(step))
			case k < 8:
				a.jumpTo(target(step))
			default:
				a.filler(1 + r.IntN(3))
			}
		}
		for _, pl := range labels {
			if pl.step >= steps {
				a.mark(pl.l)
			}
		}
		a.jumpTo(a.ret(99))
		insns, err := a.assemble()
		if err != nil {
			t.Fatalf("program %d: %v", p, err)
		}
		vm := newVM(t, insns)
		for range 30 {
			c := call{X86_64, []uint32{0, 1, 5, r.Uint32()}[r.IntN(4)], [6]uint64{}}
			c.args[0] = r.Uint64()
			c.args[1] = uint64(r.IntN(7))
			data := seccompData(c)
			want := interp(t, &a, data)
			got, err := vm.Run(data)
			if err != nil || uint32(got) != want {
				t.Fatalf("program %d (%d instructions), nr %d: got %d, %v; want %d", p, len(insns), c.nr, got, err, want)
			}
		}
	}
}

// TestAsmErrors: a jump to a label never placed, or placed before it,
// is an internal error, not a wrong program.
func TestAsmErrors(t *testing.T) {
	var a asm
	l := a.newLabel()
	a.jumpTo(l)
	if _, err := a.assemble(); err == nil {
		t.Error("a jump to a label never placed assembled")
	}
	var b asm
	m := b.newLabel()
	b.mark(m)
	b.load(offNr)
	b.jump(bpf.JumpEqual, 0, m, b.ret(1))
	if _, err := b.assemble(); err == nil {
		t.Error("a jump back assembled")
	}
}
