package oracle

import (
	"fmt"
	"slices"

	"tailsim/oracle/job"
	"tailsim/prog"
	"tailsim/scenarios"
)

// placeCtx returns a copy of sc as the kernel runs it, and where its ctx
// bytes go in struct __sk_buff. A ctx of at most job.CbSize bytes stands
// for cb[]: its accesses move by job.CbOffset. A longer one is __sk_buff
// itself, as a C program sees it: its accesses must be to cb[] already,
// and its other bytes zero (BPF_PROG_TEST_RUN takes few other fields in).
// The accesses are found as the verifier finds them, by following the ctx
// pointer: R1 at a program's entry, copied by moves, spilled to an 8-byte
// stack slot and filled back, passed in R1–R5 to subprograms, lost when
// overwritten or clobbered by a call. A ctx access outside cb[] or
// misaligned, or ctx stored anywhere but a stack slot, is an error: the
// kernel would refuse or rewrite it otherwise, or the guest cannot follow
// it.
func placeCtx(sc *scenarios.Scenario) (*scenarios.Scenario, int, error) {
	out := *sc
	out.Progs = slices.Clone(sc.Progs)
	out.Subprogs = slices.Clone(sc.Subprogs)
	decls, marks, err := findCtx(&out)
	if err != nil {
		return nil, 0, err
	}
	ctxAt, lo, hi := job.CbOffset, 0, job.CbSize
	if len(sc.Ctx) > job.CbSize {
		ctxAt, lo, hi = 0, job.CbOffset, job.CbOffset+job.CbSize
		if len(sc.Ctx) > hi {
			return nil, 0, fmt.Errorf("a ctx of %d bytes: the guest passes cb[] (%d bytes), or struct __sk_buff up to its end (%d)", len(sc.Ctx), job.CbSize, hi)
		}
		for i, b := range sc.Ctx[:min(len(sc.Ctx), job.CbOffset)] {
			if b != 0 {
				return nil, 0, fmt.Errorf("ctx+%d is not zero: as struct __sk_buff, only cb[] (ctx+%d to ctx+%d) is the scenario's", i, lo, hi)
			}
		}
	}
	for _, st := range sc.Steps {
		if st.Kind == scenarios.StepSet && st.Set.Key == scenarios.KeyCtx && (st.Set.Off < lo || st.Set.Off+len(setBytes(st.Set)) > hi) {
			return nil, 0, fmt.Errorf("line %d: a set step outside cb[]", st.Line)
		}
	}
	for _, d := range decls {
		insns := slices.Clone(d.Insns)
		for i, isCtx := range marks[d] {
			if !isCtx {
				continue
			}
			ins := &insns[i]
			size := ins.OpCode.Size().Bytes()
			if off := int(ins.Off); off < lo || off+size > hi || off%size != 0 {
				return nil, 0, fmt.Errorf("line %d: a ctx access at +%d of %d bytes, outside cb[] or misaligned", ins.Line, off, size)
			}
			if ctxAt != 0 {
				ins.Off += job.CbOffset
			}
		}
		d.Insns = insns
	}
	return &out, ctxAt, nil
}

// findCtx marks each function's instructions that access ctx.
func findCtx(out *scenarios.Scenario) ([]*scenarios.FuncDecl, map[*scenarios.FuncDecl][]bool, error) {
	subIndex := map[string]int{}
	for i, d := range out.Subprogs {
		subIndex[d.Name] = i
	}
	var decls []*scenarios.FuncDecl
	for i := range out.Progs {
		decls = append(decls, &out.Progs[i])
	}
	for i := range out.Subprogs {
		decls = append(decls, &out.Subprogs[i])
	}
	// Which registers hold ctx when each subprogram is entered; iterate
	// until they settle (calls may come from subprograms found later).
	subEntry := make([]uint16, len(out.Subprogs))
	var marks map[*scenarios.FuncDecl][]bool
	for changed := true; changed; {
		changed = false
		marks = map[*scenarios.FuncDecl][]bool{}
		for k, d := range decls {
			entry := uint16(1 << prog.R1)
			if k >= len(out.Progs) {
				entry = subEntry[k-len(out.Progs)]
			}
			m, calls, err := ctxFlow(d, entry)
			if err != nil {
				return nil, nil, err
			}
			marks[d] = m
			for name, regs := range calls {
				if i, ok := subIndex[name]; ok && subEntry[i]|regs != subEntry[i] {
					subEntry[i] |= regs
					changed = true
				}
			}
		}
	}
	return decls, marks, nil
}

// ctxFlow marks the instructions of d that access memory through a
// register holding ctx (the scenario parsed, so the verifier's ctx rules
// hold: an immediate is never stored through ctx, nor an access made
// through a moved ctx pointer), given the registers that hold it on
// entry, and returns what each subprogram call passes on. Like the
// verifier, it follows ctx through an 8-byte spill to the stack at a
// fixed offset from R10 and back.
func ctxFlow(d *scenarios.FuncDecl, entry uint16) ([]bool, map[string]uint16, error) {
	insns := d.Insns
	pos := make([]int, len(insns))
	bySlot := map[int]int{}
	n := 0
	for i, ins := range insns {
		pos[i], bySlot[n] = n, i
		n += ins.Slots()
	}
	// regs has a bit per register holding ctx; spills a bit per 8-byte
	// stack slot holding it (bit k: r10 - 8*(k+1)).
	type state struct {
		regs   uint16
		spills uint64
	}
	in := make([]state, len(insns))
	seen := make([]bool, len(insns))
	marks := make([]bool, len(insns))
	calls := map[string]uint16{}
	work := []int{0}
	in[0], seen[0] = state{regs: entry}, true
	const clobbered = 1<<prog.R0 | 1<<prog.R1 | 1<<prog.R2 | 1<<prog.R3 | 1<<prog.R4 | 1<<prog.R5
	// slot is the spill slot an 8-byte access at r10+off is, or -1.
	slot := func(off int16) int {
		if off >= 0 || off < -prog.MaxStackDepth || off%8 != 0 {
			return -1
		}
		return int(-off)/8 - 1
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		ins, cur := insns[i], in[i]
		regs := cur.regs
		op := ins.OpCode
		has := func(r prog.Register) bool { return regs&(1<<r) != 0 }
		out := cur
		var next []int
		switch {
		case op.IsMemLoad():
			marks[i] = marks[i] || has(ins.Src)
			if cur.spills != 0 && ins.Src != prog.R10 && op.Size() == prog.SizeDW && !has(ins.Src) {
				// Perhaps a fill through a copy of r10, which the
				// verifier follows and this does not.
				return nil, nil, fmt.Errorf("line %d: an 8-byte load through r%d while ctx is spilled, which may fill it back where the guest's translation does not follow", ins.Line, ins.Src)
			}
			out.regs &^= 1 << ins.Dst
			if k := slot(ins.Off); ins.Src == prog.R10 && op.Size() == prog.SizeDW && k >= 0 && cur.spills>>k&1 != 0 {
				out.regs |= 1 << ins.Dst // ctx, filled from its spill
			}
		case op.IsMemStore():
			marks[i] = marks[i] || has(ins.Dst)
			if ins.Dst == prog.R10 {
				// Any store into a slot ends the spill there; an 8-byte
				// store of ctx makes one.
				lo, hi := int(ins.Off), int(ins.Off)+op.Size().Bytes()
				for k := 0; k < 64; k++ {
					if sLo := -8 * (k + 1); sLo < hi && sLo+8 > lo {
						out.spills &^= 1 << k
					}
				}
				if k := slot(ins.Off); op.Class() == prog.ClassSTX && has(ins.Src) && op.Size() == prog.SizeDW && k >= 0 {
					out.spills |= 1 << k
					break
				}
			}
			if op.Class() == prog.ClassSTX && has(ins.Src) {
				return nil, nil, fmt.Errorf("line %d: the ctx pointer is stored to memory other than an 8-byte stack slot at a fixed offset from r10, where the guest cannot follow it", ins.Line)
			}
		case op.IsALU() && op.ALUOp() == prog.OpMov && op.Class() == prog.ClassALU64 && op.Source() == prog.SourceX && ins.Off == 0:
			out.regs = regs&^(1<<ins.Dst) | (regs>>ins.Src&1)<<ins.Dst
		case op.IsALU() && op.ALUOp() != prog.OpMov && (has(ins.Dst) || op.Source() == prog.SourceX && has(ins.Src)):
			// ctx moved and moved back may be accessed (the verifier
			// takes it), and the translation follows plain copies only.
			return nil, nil, fmt.Errorf("line %d: arithmetic on the ctx pointer, which the guest's translation does not follow", ins.Line)
		case op.IsALU() || op.IsLoadImm64():
			out.regs &^= 1 << ins.Dst
		case ins.IsSubprogCall():
			if cur.spills != 0 {
				return nil, nil, fmt.Errorf("line %d: a call while ctx is spilled: the callee may fill it through a pointer, which the guest's translation does not follow", ins.Line)
			}
			calls[ins.Reference] |= regs & (clobbered &^ (1 << prog.R0))
			out.regs &^= clobbered
		case op.IsCall() || op.IsTailCall():
			out.regs &^= clobbered
		}
		switch {
		case op.IsExit():
		case op.HasJumpOffset():
			if t, ok := bySlot[pos[i]+1+int(ins.Off)]; ok {
				next = append(next, t)
			}
			if !op.IsJA() {
				next = append(next, i+1)
			}
		default:
			next = append(next, i+1)
		}
		for _, j := range next {
			if j >= len(insns) {
				continue
			}
			merged := state{in[j].regs | out.regs, in[j].spills | out.spills}
			if !seen[j] || merged != in[j] {
				seen[j] = true
				in[j] = merged
				work = append(work, j)
			}
		}
	}
	return marks, calls, nil
}
