package arm64

import (
	"fmt"

	"tailsim/jit"
	"tailsim/prog"
)

// 6.1's arm64 JIT (Debian 12's 6.1.x): the frame saves every callee-saved
// pair whatever the program uses, x26 is the tail-call counter itself
// (so a subprogram's prologue saves its caller's count and its epilogue
// brings it back), stack accesses go through x27 = x25 - fpb_offset,
// every call is "blr" through x10, and no helper is inlined.

// regFPB is FP_BOTTOM, x27: the bottom of the part of the BPF stack the
// program addresses (find_fpb_offset()).
const regFPB = 27

// findFpbOffset is find_fpb_offset(): 0 when R10 may change at run time
// (a load, an ALU result or an atomic fetch into it), else the deepest
// R10-relative access of a load or store, as a positive number aligned
// down to 8.
func findFpbOffset(f *prog.Function) int {
	offset := 0
	for _, ins := range f.Insns {
		op := ins.OpCode
		switch op.Class() {
		case prog.ClassSTX, prog.ClassST:
			if op.IsMemStore() && ins.Dst == prog.R10 && int(ins.Off) < offset {
				offset = int(ins.Off)
			}
		case prog.ClassJMP, prog.ClassJMP32:
		case prog.ClassLDX, prog.ClassLD:
			if ins.Dst == prog.R10 {
				return 0
			}
			if op.IsMemLoad() && ins.Src == prog.R10 && int(ins.Off) < offset {
				offset = int(ins.Off)
			}
		default:
			if ins.Dst == prog.R10 {
				return 0
			}
		}
	}
	if offset < 0 {
		offset = -offset &^ 7
	}
	return offset
}

// buildPrologue61 is 6.1's build_prologue() for an eBPF program.
func (c *compiler) buildPrologue61() error {
	c.owner = jit.Prologue
	idx0 := c.idx
	fp, tcc := bpf2a64[prog.R10], bpf2a64[tcCntPtr]
	c.emitFrameRecord()
	for _, pair := range callee61 {
		c.emit(a64Push(pair[0], pair[1], regSP), fmt.Sprintf("stp x%d, x%d, [sp, #-16]!: callee-saved", pair[0], pair[1]))
	}
	c.emit(a64Mov(true, fp, regSP), "mov x25, sp: BPF frame pointer")
	if !c.isSubprog {
		c.emit(a64Movz(true, tcc, 0, 0), "mov x26, #0: tail_call_cnt = 0")
		if cur := c.idx - idx0; cur != c.o.PrologueOffset() {
			return fmt.Errorf("arm64: PROLOGUE_OFFSET = %d, expected %d", cur, c.o.PrologueOffset())
		}
		if c.o.BTI {
			c.emit(a64BtiJ, fmt.Sprintf("bti j: tail calls land here (PROLOGUE_OFFSET %d) with br", c.o.PrologueOffset()))
		}
	}
	c.fpbOffset = findFpbOffset(c.f)
	c.emit(a64SubI(true, regFPB, fp, int64(c.fpbOffset)), fmt.Sprintf("sub x27, x25, #%d: fp bottom, the base of stack accesses", c.fpbOffset))
	// Stack must be multiples of 16B.
	c.stackSize = jit.RoundUp(c.f.StackDepth, 16)
	c.emit(a64SubI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("sub sp, sp, #%d: BPF stack (round_up(%d, 16))", c.stackSize, c.f.StackDepth))
	return nil
}

// callee61 are the pairs 6.1 always saves, in push order: R6/R7, R8/R9,
// the frame pointer with the counter, x27 (FP_BOTTOM) with x28.
var callee61 = [...][2]int{{19, 20}, {21, 22}, {25, 26}, {27, 28}}

// buildEpilogue61 is 6.1's build_epilogue() for an eBPF program.
func (c *compiler) buildEpilogue61() {
	c.owner = jit.Epilogue
	c.emit(a64AddI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("add sp, sp, #%d: done with the BPF stack", c.stackSize))
	for k := len(callee61) - 1; k >= 0; k-- {
		pair := callee61[k]
		note := fmt.Sprintf("ldp x%d, x%d, [sp], #16: callee-saved", pair[0], pair[1])
		if pair[1] == 26 {
			note += " (x26: the caller's tail_call_cnt comes back)"
		}
		c.emit(a64Pop(pair[0], pair[1], regSP), note)
	}
	c.emit(a64Pop(regFP, regLR, regSP), "ldp x29, lr, [sp], #16: frame record")
	c.emit(a64Mov(true, 0, bpf2a64[prog.R0]), "mov x0, x7: return BPF R0")
	if c.o.PAC {
		c.emit(a64Autiasp, "autiasp: authenticate lr")
	}
	c.emit(a64Ret(regLR), "ret")
}

// emitBPFTailCall61 is 6.1's emit_bpf_tail_call(): the counter in x26 is
// tested and incremented before the slot is loaded, so a call into an
// empty slot counts; a taken call unwinds only the BPF stack, since the
// callee, entered past its prologue's saves, reuses the frame.
func (c *compiler) emitBPFTailCall61(ts *jit.TailSite) {
	tmp, prg, tcc := bpf2a64[tmpReg1], bpf2a64[tmpReg2], bpf2a64[tcCntPtr]
	branch1 := c.emitBoundsCheck(ts, true, 0)

	c.emitA64MovI64(tmp, prog.MaxTailCallCnt, "count check: w10 = MAX_TAIL_CALL_CNT (33)")
	c.emit(a64Cmp(true, tcc, tmp), "count check: cmp x26, x10")
	branch2 := c.idx
	c.check(ts, prog.FallLimit)
	c.emit(a64Nop, "branch placeholder fixed up: b.cs out (tail_call_cnt >= MAX_TAIL_CALL_CNT)")
	c.emit(a64AddI(true, tcc, tcc, 1), "count++: add x26, x26, #1 (before the slot is looked at)")

	c.emitSlotLoad()
	branch3 := c.idx
	c.check(ts, prog.FallEmpty)
	c.emit(a64Nop, "branch placeholder fixed up: cbz x11, out (empty slot, already counted)")

	c.emitTargetAddr()
	c.emit(a64AddI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("add sp, sp, #%d: unwind the BPF stack", c.stackSize))
	ts.Jump = InsnSize * c.idx
	c.emit(a64Br(tmp), "tail call: br x10")

	if c.hasImage {
		c.patch(branch1, a64BCond(condCS, c.idx-branch1))
		c.patch(branch2, a64BCond(condCS, c.idx-branch2))
		c.patch(branch3, a64Cbz(true, prg, c.idx-branch3))
	}
}
