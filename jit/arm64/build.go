package arm64

import (
	"fmt"

	"tailsim/prog"
)

// checkImm is check_imm(bits, imm): the signed value fits bits+1 bits.
func checkImm(bits uint, imm int) error {
	if (imm > 0 && imm>>bits != 0) || (imm < 0 && (^imm)>>bits != 0) {
		return fmt.Errorf("imm=%d(%#x) out of range", imm, uint32(imm))
	}
	return nil
}

// bpf2a64Offset is bpf2a64_offset(): the branch displacement, in
// instructions, from the branch (the last instruction of BPF slot i) to
// the first instruction of slot i + 1 + off.
func (c *compiler) bpf2a64Offset(i, off int) (int, error) {
	i++
	t := i + off
	if t < 0 || t >= len(c.offset) {
		return 0, fmt.Errorf("jump to slot %d outside the function", t)
	}
	return c.offset[t] - (c.offset[i] - 1), nil
}

// epilogueOffsetFrom is epilogue_offset().
func (c *compiler) epilogueOffsetFrom() int { return c.epilogueOffset - c.idx }

var jmpCond = map[prog.JumpOp]uint32{
	prog.OpJEQ: condEQ, prog.OpJGT: condHI, prog.OpJLT: condCC, prog.OpJGE: condCS, prog.OpJLE: condLS,
	prog.OpJSET: condNE, prog.OpJNE: condNE, prog.OpJSGT: condGT, prog.OpJSLT: condLT, prog.OpJSGE: condGE,
	prog.OpJSLE: condLE,
}

var condName = map[uint32]string{
	condEQ: "eq", condNE: "ne", condCS: "cs", condCC: "cc", condHI: "hi", condLS: "ls",
	condGE: "ge", condLT: "lt", condGT: "gt", condLE: "le",
}

// ldstSize maps BPF access sizes to the A64 size field (and scale).
var ldstSize = map[prog.Size]uint{prog.SizeB: ldstSize8, prog.SizeH: ldstSize16, prog.SizeW: ldstSize32, prog.SizeDW: ldstSize64}

// buildInsn is build_insn() for the modelled subset; i is the BPF slot.
func (c *compiler) buildInsn(k int, ins prog.Instruction, i int) error {
	op := ins.OpCode
	dst, src := bpf2a64[ins.Dst], bpf2a64[ins.Src&0xf]
	tmp := bpf2a64[tmpReg1]
	tmp2 := bpf2a64[tmpReg2]
	fp := bpf2a64[prog.R10]
	off := int(ins.Off)
	imm := int32(ins.Imm)
	is64 := op.Class() == prog.ClassALU64 || op.Class() == prog.ClassJMP
	w := "32"
	if is64 {
		w = "64"
	}
	switch {
	case op.IsALU():
		return c.buildALU(ins, dst, src, tmp, tmp2, off, imm, is64, w)

	case op.IsTailCall() || ins.IsTailCall():
		return c.emitTailCall(k)

	case op.IsCall():
		return c.buildCall(ins)

	case op.IsExit():
		// Optimization: when the last instruction is EXIT, simply fall
		// through to the epilogue.
		if i == len(c.offset)-2 {
			return nil
		}
		jmpOffset := c.epilogueOffsetFrom()
		if err := checkImm(26, jmpOffset); err != nil {
			return err
		}
		c.emit(a64B(jmpOffset), "exit: b epilogue")

	case ins.IsMapLoad():
		// The verifier has replaced the map reference by the map's address.
		c.emitA64MovI64(dst, c.res.Map(ins.Reference), fmt.Sprintf("x%d = &map[%s]", dst, ins.Reference))
	case ins.IsMapValueLoad():
		// ... and a value reference by &array->value[0] + off.
		c.emitA64MovI64(dst, c.res.Map(ins.Reference)+uint64(c.o.Layout.Ptrs)+uint64(ins.Imm), fmt.Sprintf("x%d = &map_value[%s]+%d", dst, ins.Reference, ins.Imm))
	case op.IsLoadImm64():
		c.emitA64MovI64(dst, uint64(ins.Imm), fmt.Sprintf("x%d = %#x ll", dst, uint64(ins.Imm)))

	case op.IsMemLoad():
		return c.buildLdx(op.Size(), dst, src, tmp, fp, off)
	case op.IsMemStore() && op.Class() == prog.ClassST:
		return c.buildSt(op.Size(), dst, tmp, tmp2, fp, off, imm)
	case op.IsMemStore():
		return c.buildStx(op.Size(), dst, src, tmp, fp, off)

	case op.IsJA():
		o := off
		if op.Class() == prog.ClassJMP32 {
			o = int(imm) // gotol: the 32-bit offset is in imm
		}
		jmpOffset, err := c.bpf2a64Offset(i, o)
		if err != nil {
			return err
		}
		if err := checkImm(26, jmpOffset); err != nil {
			return err
		}
		c.emit(a64B(jmpOffset), "goto")

	case op.IsCondJump():
		jop := op.JumpOp()
		cond, ok := jmpCond[jop]
		if !ok {
			return fmt.Errorf("jump op %s is outside the modelled subset", jop)
		}
		switch {
		case op.Source() == prog.SourceX && jop == prog.OpJSET:
			c.emit(a64Tst(is64, dst, src), "jset: tst")
		case op.Source() == prog.SourceX:
			c.emit(a64Cmp(is64, dst, src), "cmp"+w)
		case jop == prog.OpJSET:
			if a := a64TstI(is64, dst, imm); a != aarch64BreakFault {
				c.emit(a, fmt.Sprintf("jset: tst #%#x (bitmask immediate)", uint32(imm)))
			} else {
				c.emitA64MovI(is64, tmp, imm, "jset: tmp = imm (no bitmask encoding)")
				c.emit(a64Tst(is64, dst, tmp), "jset: tst tmp")
			}
		case isAddsubImm(uint32(imm)):
			c.emit(a64CmpI(is64, dst, int64(imm)), fmt.Sprintf("cmp%s #%d", w, imm))
		case isAddsubImm(-uint32(imm)):
			c.emit(a64CmnI(is64, dst, int64(negS32(imm))), fmt.Sprintf("cmn%s #%d: compare with %d", w, negS32(imm), imm))
		default:
			c.emitA64MovI(is64, tmp, imm, fmt.Sprintf("tmp = %d", imm))
			c.emit(a64Cmp(is64, dst, tmp), "cmp"+w+" tmp")
		}
		jmpOffset, err := c.bpf2a64Offset(i, off)
		if err != nil {
			return err
		}
		if err := checkImm(19, jmpOffset); err != nil {
			return err
		}
		c.emit(a64BCond(cond, jmpOffset), fmt.Sprintf("%s: b.%s", jop, condName[cond]))

	default:
		return fmt.Errorf("opcode %#02x is outside the modelled subset", uint8(op))
	}
	return nil
}

// buildALU is build_insn()'s BPF_ALU and BPF_ALU64 cases. W registers
// zero the upper half, so 32-bit operations need no explicit zext.
func (c *compiler) buildALU(ins prog.Instruction, dst, src, tmp, tmp2, off int, imm int32, is64 bool, w string) error {
	op := ins.OpCode
	aop := op.ALUOp()
	note := aop.String() + w
	if op.Source() == prog.SourceX {
		switch aop {
		case prog.OpMov:
			switch off {
			case 0:
				c.emit(a64Mov(is64, dst, src), note)
			case 8:
				c.emit(a64Sxtb(is64, dst, src), note+" sxtb")
			case 16:
				c.emit(a64Sxth(is64, dst, src), note+" sxth")
			case 32:
				c.emit(a64Sxtw(is64, dst, src), note+" sxtw")
			default:
				return fmt.Errorf("mov with off %d", off)
			}
		case prog.OpAdd:
			c.emit(a64Add(is64, dst, dst, src), note)
		case prog.OpSub:
			c.emit(a64Sub(is64, dst, dst, src), note)
		case prog.OpAnd:
			c.emit(a64And(is64, dst, dst, src), note)
		case prog.OpOr:
			c.emit(a64Orr(is64, dst, dst, src), note)
		case prog.OpXor:
			c.emit(a64Eor(is64, dst, dst, src), note)
		case prog.OpMul:
			c.emit(a64Mul(is64, dst, dst, src), note)
		case prog.OpDiv:
			if off == 0 {
				c.emit(a64Udiv(is64, dst, dst, src), note+" udiv")
			} else {
				c.emit(a64Sdiv(is64, dst, dst, src), note+" sdiv")
			}
		case prog.OpMod:
			if off == 0 {
				c.emit(a64Udiv(is64, tmp, dst, src), note+": tmp = dst / src (udiv)")
			} else {
				c.emit(a64Sdiv(is64, tmp, dst, src), note+": tmp = dst / src (sdiv)")
			}
			c.emit(a64Msub(is64, dst, dst, tmp, src), note+": dst -= tmp * src (msub)")
		case prog.OpLsh:
			c.emit(a64Lslv(is64, dst, dst, src), note)
		case prog.OpRsh:
			c.emit(a64Lsrv(is64, dst, dst, src), note)
		case prog.OpArsh:
			c.emit(a64Asrv(is64, dst, dst, src), note)
		case prog.OpNeg:
			c.emit(a64Neg(is64, dst, dst), note)
		default:
			return fmt.Errorf("ALU op %s is outside the modelled subset", aop)
		}
		return nil
	}
	note += " imm"
	logic := func(a uint32, reg func(bool, int, int, int) uint32) {
		if a != aarch64BreakFault {
			c.emit(a, note+" (bitmask immediate)")
			return
		}
		c.emitA64MovI(is64, tmp, imm, note+": tmp = imm (no bitmask encoding)")
		c.emit(reg(is64, dst, dst, tmp), note+": register form")
	}
	switch aop {
	case prog.OpMov:
		c.emitA64MovI(is64, dst, imm, note)
	case prog.OpAdd:
		c.emitA64AddI(is64, dst, dst, tmp, imm, note)
	case prog.OpSub:
		switch {
		case isAddsubImm(uint32(imm)):
			c.emit(a64SubI(is64, dst, dst, int64(imm)), note)
		case isAddsubImm(-uint32(imm)):
			c.emit(a64AddI(is64, dst, dst, int64(negS32(imm))), note+" (add)")
		default:
			c.emitA64MovI(is64, tmp, imm, note+": tmp = imm")
			c.emit(a64Sub(is64, dst, dst, tmp), note+": sub tmp")
		}
	case prog.OpAnd:
		logic(a64AndI(is64, dst, dst, imm), a64And)
	case prog.OpOr:
		logic(a64OrrI(is64, dst, dst, imm), a64Orr)
	case prog.OpXor:
		logic(a64EorI(is64, dst, dst, imm), a64Eor)
	case prog.OpMul:
		c.emitA64MovI(is64, tmp, imm, note+": tmp = imm")
		c.emit(a64Mul(is64, dst, dst, tmp), note+": mul tmp")
	case prog.OpDiv:
		c.emitA64MovI(is64, tmp, imm, note+": tmp = imm")
		if off == 0 {
			c.emit(a64Udiv(is64, dst, dst, tmp), note+": udiv tmp")
		} else {
			c.emit(a64Sdiv(is64, dst, dst, tmp), note+": sdiv tmp")
		}
	case prog.OpMod:
		c.emitA64MovI(is64, tmp2, imm, note+": tmp2 = imm")
		if off == 0 {
			c.emit(a64Udiv(is64, tmp, dst, tmp2), note+": tmp = dst / tmp2 (udiv)")
		} else {
			c.emit(a64Sdiv(is64, tmp, dst, tmp2), note+": tmp = dst / tmp2 (sdiv)")
		}
		c.emit(a64Msub(is64, dst, dst, tmp, tmp2), note+": dst -= tmp * tmp2 (msub)")
	case prog.OpLsh:
		c.emit(a64Lsl(is64, dst, dst, imm), note)
	case prog.OpRsh:
		c.emit(a64Lsr(is64, dst, dst, imm), note)
	case prog.OpArsh:
		c.emit(a64Asr(is64, dst, dst, imm), note)
	case prog.OpNeg:
		c.emit(a64Neg(is64, dst, dst), aop.String()+w)
	default:
		return fmt.Errorf("ALU op %s is outside the modelled subset", aop)
	}
	return nil
}

// rebase is the FP case of the loads and stores: R10 accesses go through
// SP with off + stack_size (x25 == sp + stack_size), so the usual negative
// offsets become positive scaled immediates.
func (c *compiler) rebase(base, fp, off int) (int, int) {
	if c.o.Kernel == prog.Linux61 {
		// 6.1: through x27 = x25 - fpb_offset, when the function has one.
		if c.fpbOffset > 0 && base == fp {
			return regFPB, off + c.fpbOffset
		}
		return base, off
	}
	if base == fp {
		return regSP, off + c.stackSize
	}
	return base, off
}

// rebaseNote says where a rebased R10 access went: sp (v6.18) or x27,
// 6.1's fp-bottom register.
func rebaseNote(base, offAdj, off int) string {
	name := "sp"
	if base == regFPB {
		name = "x27"
	}
	return fmt.Sprintf(" [%s, #%d]: fp%+d rebased on %s", name, offAdj, off, name)
}

// buildLdx is the BPF_LDX | BPF_MEM case: the unsigned-offset immediate
// form when the (rebased) offset encodes, else the register-offset form
// with the unadjusted base and off in tmp.
func (c *compiler) buildLdx(size prog.Size, dst, src, tmp, fp, off int) error {
	sz := ldstSize[size]
	srcAdj, offAdj := c.rebase(src, fp, off)
	note := "load " + size.String()
	if isLsiOffset(offAdj, int(sz)) {
		if srcAdj != src {
			note += rebaseNote(srcAdj, offAdj, off)
		}
		c.emit(a64LdrImm(dst, srcAdj, int64(offAdj), sz), note)
		return nil
	}
	c.emitA64MovI(true, tmp, int32(off), note+": tmp = off")
	c.emit(a64LdrReg(dst, src, tmp, sz), note+" [base, tmp]")
	return nil
}

// buildSt is the BPF_ST | BPF_MEM case: the immediate goes through tmp,
// the fallback offset through tmp2.
func (c *compiler) buildSt(size prog.Size, dst, tmp, tmp2, fp, off int, imm int32) error {
	sz := ldstSize[size]
	dstAdj, offAdj := c.rebase(dst, fp, off)
	note := "store imm " + size.String()
	c.emitA64MovI(true, tmp, imm, note+": tmp = imm")
	if isLsiOffset(offAdj, int(sz)) {
		if dstAdj != dst {
			note += rebaseNote(dstAdj, offAdj, off)
		}
		c.emit(a64StrImm(tmp, dstAdj, int64(offAdj), sz), note)
		return nil
	}
	c.emitA64MovI(true, tmp2, int32(off), note+": tmp2 = off")
	c.emit(a64StrReg(tmp, dst, tmp2, sz), note+" [base, tmp2]")
	return nil
}

// buildStx is the BPF_STX | BPF_MEM case.
func (c *compiler) buildStx(size prog.Size, dst, src, tmp, fp, off int) error {
	sz := ldstSize[size]
	dstAdj, offAdj := c.rebase(dst, fp, off)
	note := "store " + size.String()
	if isLsiOffset(offAdj, int(sz)) {
		if dstAdj != dst {
			note += rebaseNote(dstAdj, offAdj, off)
		}
		c.emit(a64StrImm(src, dstAdj, int64(offAdj), sz), note)
		return nil
	}
	c.emitA64MovI(true, tmp, int32(off), note+": tmp = off")
	c.emit(a64StrReg(src, dst, tmp, sz), note+" [base, tmp]")
	return nil
}

// buildCall is the BPF_JMP | BPF_CALL case: helpers the JIT inlines, then
// emit_call() to the address bpf_jit_get_func_addr() gives (a bpf2bpf
// callee's is unknown, 0, until the extra pass), then mov x7, x0.
func (c *compiler) buildCall(ins prog.Instruction) error {
	r0 := bpf2a64[prog.R0]
	tmp, tmp2 := bpf2a64[tmpReg1], bpf2a64[tmpReg2]
	var target uint64
	note := ""
	if ins.IsSubprogCall() {
		callee := c.p.FuncIndex(ins.Reference)
		if callee < 0 {
			return fmt.Errorf("call to unknown subprogram %q", ins.Reference)
		}
		if c.extraPass {
			target = c.res.Func(callee)
		}
		note = "call subprogram " + ins.Reference
	} else {
		id := int32(ins.Imm)
		inline := c.o.Kernel != prog.Linux61 // 6.1's JIT inlines no helper
		switch {
		case inline && id == funcGetSmpProcessorID:
			cpuOffset := ThreadInfoCPU
			c.emit(a64MrsSPEL0(tmp), "bpf_get_smp_processor_id inlined: x10 = current (sp_el0)")
			if isLsiOffset(cpuOffset, 2) {
				c.emit(a64LdrImm(r0, tmp, int64(cpuOffset), ldstSize32), "bpf_get_smp_processor_id inlined: w7 = current_thread_info()->cpu")
			} else {
				c.emitA64MovI(true, tmp2, int32(cpuOffset), "tmp2 = offsetof(struct thread_info, cpu)")
				c.emit(a64LdrReg(r0, tmp, tmp2, ldstSize32), "bpf_get_smp_processor_id inlined: w7 = current_thread_info()->cpu")
			}
			return nil
		case inline && (id == funcGetCurrentTask || id == funcGetCurrentTaskBTF):
			c.emit(a64MrsSPEL0(r0), "bpf_get_current_task inlined: x7 = current (sp_el0)")
			return nil
		}
		addr, ok := c.res.Helper(id)
		if !ok {
			return fmt.Errorf("no address for helper %d", id)
		}
		target = addr
		note = fmt.Sprintf("call helper %d", id)
		if h, ok := prog.HelperByID(id); ok {
			note = "call bpf_" + h.Name
		}
	}
	c.emitCall(target, note)
	c.emit(a64Mov(true, r0, 0), "mov x7, x0: BPF R0 = return value")
	return nil
}

// shouldEmitIndirectCall is should_emit_indirect_call(): no image yet, an
// unknown target, or one out of bl's ±128 MiB.
func (c *compiler) shouldEmitIndirectCall(target uint64) bool {
	if c.o.Kernel == prog.Linux61 {
		return true // 6.1's emit_call() has no bl form
	}
	if c.roImage == 0 || target == 0 {
		return true
	}
	off := int64(target) - int64(c.roImage+uint64(InsnSize*c.idx))
	return off < -sz128M || off >= sz128M
}

// emitCall is emit_call().
func (c *compiler) emitCall(target uint64, note string) {
	if c.shouldEmitIndirectCall(target) {
		// emit_indirect_call()
		tmp := bpf2a64[tmpReg1]
		c.emitAddrMovI64(tmp, target, note+": x10 = target")
		c.emit(a64Blr(tmp), note+": blr x10")
		return
	}
	// emit_direct_call()
	pc := c.roImage + uint64(InsnSize*c.idx)
	c.emit(aarch64InsnGenBranchImm(pc, target, true), note+": bl")
}
