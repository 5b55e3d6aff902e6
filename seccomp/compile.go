package seccomp

import (
	"fmt"
	"sort"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
const maxInsns = 4096

// The offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Compile compiles p into a BPF program for the machine this runs on.
func Compile(p *Profile) ([]unix.SockFilter, error) {
	insns, err := compile(p)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// compile returns p's program as x/net/bpf instructions, which its VM can
// run in tests.
func compile(p *Profile) ([]bpf.Instruction, error) {
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	a := asm{items: make([]item, 0, 2048)}
	arches := p.arches()
	listed := map[Arch]bool{}
	for _, arch := range arches {
		listed[arch] = true
	}
	kill := a.ret(KillProcess.ret())

	// Which ABI: one section for each audit arch. x86_64 and x32 share
	// one, told apart by the x32 bit.
	a.load(offArch)
	sections := map[uint32]label{}
	var order []uint32
	for _, arch := range arches {
		au := arch.audit()
		if _, ok := sections[au]; !ok {
			sections[au] = a.newLabel()
			order = append(order, au)
		}
	}
	for _, au := range order {
		next := a.newLabel()
		a.jump(bpf.JumpEqual, au, sections[au], next)
		a.mark(next)
	}
	a.jumpTo(kill)

	for _, au := range order {
		a.mark(sections[au])
		a.load(offNr)
		if au == auditArchX86_64 {
			// [x32Bit, 1<<31) is x32; above is no ABI's (such as -1),
			// which the native search sends to the default.
			high, x32, native := a.newLabel(), a.newLabel(), a.newLabel()
			a.jump(bpf.JumpGreaterOrEqual, x32Bit, high, native)
			a.mark(high)
			a.jump(bpf.JumpGreaterOrEqual, 1<<31, native, x32)
			a.mark(x32)
			if listed[X32] {
				a.search(p, X32)
			} else {
				a.jumpTo(kill)
			}
			a.mark(native)
			if listed[X86_64] {
				a.search(p, X86_64)
			} else {
				a.jumpTo(kill)
			}
			continue
		}
		for _, arch := range arches {
			if arch.audit() == au {
				a.search(p, arch)
				break
			}
		}
	}
	insns, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(insns) > maxInsns {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, more than the kernel's %d", len(insns), maxInsns)
	}
	return insns, nil
}

// segment is a range of syscall numbers [start, next segment's start)
// that one block handles.
type segment struct {
	start uint32
	block label
}

// search emits the syscall dispatch of one ABI: a binary search over
// ranges of numbers that go to the same place, then a block for each
// syscall that has conditions. The syscall number is in A.
func (a *asm) search(p *Profile, arch Arch) {
	def := a.ret(p.Default.ret())
	// The rules of each syscall number (by index into p.Rules), in order.
	rules := make(map[uint32][]int, 512)
	table := arch.table()
	for i, r := range p.Rules {
		for _, name := range r.Names {
			if nr, ok := table[name]; ok {
				rules[uint32(nr)] = append(rules[uint32(nr)], i)
			}
		}
	}
	nrs := make([]uint32, 0, len(rules))
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })

	// Each syscall's block: a return when its first rule has no
	// conditions, else a chain of conditions (emitted after the search).
	type pending struct {
		at    label
		rules []int
	}
	var blocks []pending
	blockOf := make(map[uint32]label, len(nrs))
	for _, nr := range nrs {
		rs := rules[nr]
		if first := p.Rules[rs[0]]; len(first.Conds) == 0 {
			blockOf[nr] = a.ret(first.Action.ret())
			continue
		}
		l := a.newLabel()
		blockOf[nr] = l
		blocks = append(blocks, pending{l, rs})
	}
	// Segments: each syscall's number, and the gaps between them, which
	// go to the default; neighbours that go to the same place merge.
	var segs []segment
	add := func(start uint32, block label) {
		if n := len(segs); n > 0 && segs[n-1].block == block {
			return
		}
		segs = append(segs, segment{start, block})
	}
	add(0, def)
	for _, nr := range nrs {
		add(nr, blockOf[nr])
		if nr < ^uint32(0) {
			if _, next := blockOf[nr+1]; !next {
				add(nr+1, def)
			}
		}
	}
	// An ABI's numbers start at 0, or at x32Bit for x32: the search only
	// sees numbers that reached this section.
	a.tree(segs)
	for _, b := range blocks {
		a.mark(b.at)
		for _, ri := range b.rules {
			r := &p.Rules[ri]
			next := a.newLabel()
			for _, c := range r.Conds {
				a.cond(c, next)
			}
			a.jumpTo(a.ret(r.Action.ret()))
			a.mark(next)
		}
		a.jumpTo(def)
	}
}

// tree emits a binary search over segs: it jumps to the block of the
// segment that holds the number in A.
func (a *asm) tree(segs []segment) {
	if len(segs) == 1 {
		a.jumpTo(segs[0].block)
		return
	}
	mid := len(segs) / 2
	right, left := a.newLabel(), a.newLabel()
	a.jump(bpf.JumpGreaterOrEqual, segs[mid].start, right, left)
	a.mark(left)
	a.tree(segs[:mid])
	a.mark(right)
	a.tree(segs[mid:])
}

// cond emits a test of one condition over the argument's two 32-bit
// halves; it goes on when the condition holds, and jumps to fail when it
// does not. The low half is at the argument's offset, the high one 4
// bytes after it (both supported ABIs are little-endian).
func (a *asm) cond(c Cond, fail label) {
	lo := uint32(offArgs + 8*int(c.Index))
	hi := lo + 4
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	ok := a.newLabel()
	switch c.Op {
	case OpEQ, OpMaskedEQ:
		a.load(hi)
		if c.Op == OpMaskedEQ {
			a.and(uint32(c.Mask >> 32))
		}
		next := a.newLabel()
		a.jump(bpf.JumpEqual, vhi, next, fail)
		a.mark(next)
		a.load(lo)
		if c.Op == OpMaskedEQ {
			a.and(uint32(c.Mask))
		}
		a.jump(bpf.JumpEqual, vlo, ok, fail)
	case OpNE:
		a.load(hi)
		next := a.newLabel()
		a.jump(bpf.JumpEqual, vhi, next, ok)
		a.mark(next)
		a.load(lo)
		a.jump(bpf.JumpEqual, vlo, fail, ok)
	case OpGT, OpGE:
		// hi > vhi: holds; hi < vhi: fails; equal: compare the low half.
		a.load(hi)
		notGreater, equal := a.newLabel(), a.newLabel()
		a.jump(bpf.JumpGreaterThan, vhi, ok, notGreater)
		a.mark(notGreater)
		a.jump(bpf.JumpEqual, vhi, equal, fail)
		a.mark(equal)
		a.load(lo)
		test := bpf.JumpGreaterThan
		if c.Op == OpGE {
			test = bpf.JumpGreaterOrEqual
		}
		a.jump(test, vlo, ok, fail)
	case OpLT, OpLE:
		// hi < vhi: holds; hi > vhi: fails; equal: compare the low half.
		a.load(hi)
		notLess, equal := a.newLabel(), a.newLabel()
		a.jump(bpf.JumpGreaterOrEqual, vhi, notLess, ok)
		a.mark(notLess)
		a.jump(bpf.JumpGreaterThan, vhi, fail, equal)
		a.mark(equal)
		a.load(lo)
		test := bpf.JumpGreaterOrEqual // lo >= vlo fails LT
		if c.Op == OpLE {
			test = bpf.JumpGreaterThan // lo > vlo fails LE
		}
		a.jump(test, vlo, fail, ok)
	}
	a.mark(ok)
}
