package x86

import (
	"fmt"

	"tailsim/jit"
	"tailsim/prog"
)

func (c *compiler) emitALU(ins prog.Instruction, dst, src int, imm32 int64) error {
	op := ins.OpCode
	is64 := op.Class() == prog.ClassALU64
	aop := op.ALUOp()
	x := op.Source() == prog.SourceX
	w := "64"
	if !is64 {
		w = "32"
	}
	switch aop {
	case prog.OpAdd, prog.OpSub, prog.OpAnd, prog.OpOr, prog.OpXor:
		note := fmt.Sprintf("%s%s", aop, w)
		if x {
			c.emit(note, append(c.maybeEmitMod(dst, src, is64), simpleALUOpcodes[aop], add2reg(0xC0, dst, src))...)
			return nil
		}
		var b2, b3 byte
		switch aop {
		case prog.OpAdd:
			b3, b2 = 0xC0, 0x05
		case prog.OpSub:
			b3, b2 = 0xE8, 0x2D
		case prog.OpAnd:
			b3, b2 = 0xE0, 0x25
		case prog.OpOr:
			b3, b2 = 0xC8, 0x0D
		case prog.OpXor:
			b3, b2 = 0xF0, 0x35
		}
		pre := c.maybeEmit1Mod(dst, is64)
		switch {
		case isImm8(imm32):
			c.emit(note, append(pre, 0x83, add1reg(b3, dst), byte(imm32))...)
		case dst == int(prog.R0):
			c.emit(note+" (eax short form)", cat(pre, []byte{b2}, le32(imm32))...)
		default:
			c.emit(note, cat(pre, []byte{0x81, add1reg(b3, dst)}, le32(imm32))...)
		}
	case prog.OpNeg:
		c.emit("neg"+w, append(c.maybeEmit1Mod(dst, is64), 0xF7, add1reg(0xD8, dst))...)
	case prog.OpMov:
		if ins.IsMovPercpuAddr() {
			c.emitMovPercpuAddr(dst, src)
		} else if x {
			c.emitMovReg(is64, dst, src, "mov"+w)
		} else {
			c.emitMovImm32(is64, dst, uint32(imm32), "mov"+w+" imm")
		}
	case prog.OpMul:
		if x {
			c.emit("imul"+w, append(c.maybeEmitMod(src, dst, is64), 0x0F, 0xAF, add2reg(0xC0, src, dst))...)
		} else if isImm8(imm32) {
			c.emit("imul"+w+" imm8", append(c.maybeEmitMod(dst, dst, is64), 0x6B, add2reg(0xC0, dst, dst), byte(imm32))...)
		} else {
			c.emit("imul"+w+" imm32", cat(c.maybeEmitMod(dst, dst, is64), []byte{0x69, add2reg(0xC0, dst, dst)}, le32(imm32))...)
		}
	case prog.OpDiv, prog.OpMod:
		c.emitDivMod(ins, dst, src, imm32, is64)
	case prog.OpLsh, prog.OpRsh, prog.OpArsh:
		c.emitShift(ins, dst, src, imm32, is64)
	default:
		return fmt.Errorf("ALU op %s is outside the modelled subset", aop)
	}
	return nil
}

// emitMovReg is emit_mov_reg(): a 64-bit move to itself emits nothing.
func (c *compiler) emitMovReg(is64 bool, dst, src int, note string) {
	if is64 {
		if dst != src {
			c.emit(note, add2mod(0x48, dst, src), 0x89, add2reg(0xC0, dst, src))
		}
		return
	}
	var b []byte
	if isEreg(dst) || isEreg(src) {
		b = append(b, add2mod(0x40, dst, src))
	}
	c.emit(note, append(b, 0x89, add2reg(0xC0, dst, src))...)
}

// emitMovImm32 is emit_mov_imm32().
func (c *compiler) emitMovImm32(signPropagate bool, dst int, imm32 uint32, note string) {
	if signPropagate && int32(imm32) < 0 {
		c.emit(note+" (sign-extended)", cat([]byte{add1mod(0x48, dst), 0xC7, add1reg(0xC0, dst)}, le32(int64(imm32)))...)
		return
	}
	if imm32 == 0 {
		var b []byte
		if isEreg(dst) {
			b = append(b, add2mod(0x40, dst, dst))
		}
		c.emit(note+" 0 (xor)", append(b, 0x31, add2reg(0xC0, dst, dst))...)
		return
	}
	var b []byte
	if isEreg(dst) {
		b = append(b, add1mod(0x40, dst))
	}
	c.emit(note, cat(b, []byte{add1reg(0xB8, dst)}, le32(int64(imm32)))...)
}

// emitMovImm64 is emit_mov_imm64().
func (c *compiler) emitMovImm64(dst int, imm64 uint64, note string) {
	switch {
	case isUimm32(imm64):
		c.emitMovImm32(false, dst, uint32(imm64), note)
	case isSimm32(int64(imm64)) && c.o.Kernel != prog.Linux61:
		// A later form; 6.1 has only the two others.
		c.emitMovImm32(true, dst, uint32(imm64), note)
	default:
		b := []byte{add1mod(0x48, dst), add1reg(0xB8, dst)}
		b = append(b, le32(int64(uint32(imm64)))...)
		b = append(b, le32(int64(imm64>>32))...)
		c.emit("movabs "+note, b...)
	}
}

// emitDivMod is do_jit()'s BPF_DIV/BPF_MOD (unsigned: the subset has no
// sdiv/smod). The verifier's fix-ups for division by zero happen before
// the JIT in the kernel; tailsim's programs are assumed not to divide by
// zero on the emulated backends (the reference model defines it).
func (c *compiler) emitDivMod(ins prog.Instruction, dst, src int, imm32 int64, is64 bool) {
	r0, r3 := int(prog.R0), int(prog.R3)
	if dst != r0 {
		c.emit("push rax", 0x50)
	}
	if dst != r3 {
		c.emit("push rdx", 0x52)
	}
	if ins.OpCode.Source() == prog.SourceX {
		if src == r0 || src == r3 {
			c.emitMovReg(true, regAux, src, "mov r11, src")
			src = regAux
		}
	} else {
		c.emit("mov r11, imm32", cat([]byte{0x49, 0xC7, 0xC3}, le32(imm32))...)
		src = regAux
	}
	if dst != r0 {
		c.emitMovReg(is64, r0, dst, "mov rax, dst")
	}
	c.emit("xor edx, edx", 0x31, 0xD2)
	c.emit("div", append(c.maybeEmit1Mod(src, is64), 0xF7, add1reg(0xF0, src))...)
	if ins.OpCode.ALUOp() == prog.OpMod && dst != r3 {
		c.emitMovReg(is64, dst, r3, "mov dst, rdx: remainder")
	} else if ins.OpCode.ALUOp() == prog.OpDiv && dst != r0 {
		c.emitMovReg(is64, dst, r0, "mov dst, rax: quotient")
	}
	if dst != r3 {
		c.emit("pop rdx", 0x5A)
	}
	if dst != r0 {
		c.emit("pop rax", 0x58)
	}
}

// emitShift is do_jit()'s shifts: by an immediate, by a register with
// BMI2's shlx/shrx/sarx, or through cl.
func (c *compiler) emitShift(ins prog.Instruction, dst, src int, imm32 int64, is64 bool) {
	b3 := simpleALUOpcodes[ins.OpCode.ALUOp()]
	name := map[prog.ALUOp]string{prog.OpLsh: "shl", prog.OpRsh: "shr", prog.OpArsh: "sar"}[ins.OpCode.ALUOp()]
	r4 := int(prog.R4)
	if ins.OpCode.Source() == prog.SourceX && c.o.Kernel == prog.Linux61 {
		c.emitShiftCL61(name, b3, dst, src, is64)
		return
	}
	if ins.OpCode.Source() == prog.SourceX && c.o.has(prog.BMI2) && src != r4 {
		// Not when the count is already in rcx: there the cl form is as
		// short.
		pp := map[prog.ALUOp]byte{prog.OpLsh: 1, prog.OpRsh: 3, prog.OpArsh: 2}[ins.OpCode.ALUOp()]
		c.emit(name+"x dst, dst, src (BMI2)", emitShiftx(dst, src, is64, pp)...)
		return
	}
	if ins.OpCode.Source() == prog.SourceK {
		pre := c.maybeEmit1Mod(dst, is64)
		if imm32 == 1 {
			c.emit(name+" 1", append(pre, 0xD1, add1reg(b3, dst))...)
		} else {
			c.emit(name+" imm8", append(pre, 0xC1, add1reg(b3, dst), byte(imm32))...)
		}
		return
	}
	origDst := dst
	if src != r4 {
		if dst == r4 {
			c.emitMovReg(true, regAux, dst, "mov r11, rcx: dst is rcx")
			dst = regAux
		} else {
			c.emit("push rcx", 0x51)
		}
		c.emitMovReg(true, r4, src, "mov rcx, src: the count goes in cl")
	}
	c.emit(name+" cl", append(c.maybeEmit1Mod(dst, is64), 0xD3, add1reg(b3, dst))...)
	if src != r4 {
		if origDst == r4 {
			c.emitMovReg(true, origDst, regAux, "mov rcx, r11")
		} else {
			c.emit("pop rcx", 0x59)
		}
	}
}

// emitShiftCL61 is 6.1's shift by a register: no BMI2 form, and a dst in
// rcx always goes through r11, even when the count is rcx too; rcx is
// saved around the shift whenever the count is elsewhere.
func (c *compiler) emitShiftCL61(name string, b3 byte, dst, src int, is64 bool) {
	r4, origDst := int(prog.R4), dst
	if dst == r4 {
		c.emitMovReg(true, regAux, dst, "mov r11, rcx: dst is rcx")
		dst = regAux
	}
	if src != r4 {
		c.emit("push rcx", 0x51)
		c.emitMovReg(true, r4, src, "mov rcx, src: the count goes in cl")
	}
	c.emit(name+" cl", append(c.maybeEmit1Mod(dst, is64), 0xD3, add1reg(b3, dst))...)
	if src != r4 {
		c.emit("pop rcx", 0x59)
	}
	if origDst == r4 {
		c.emitMovReg(true, origDst, regAux, "mov rcx, r11")
	}
}

// emitInsnSuffix is emit_insn_suffix(): disp8 when it fits (also for 0).
func emitInsnSuffix(ptr, val int, off int64) []byte {
	if isImm8(off) {
		return []byte{add2reg(0x40, ptr, val), byte(off)}
	}
	return append([]byte{add2reg(0x80, ptr, val)}, le32(off)...)
}

// emitLdx is emit_ldx().
func (c *compiler) emitLdx(size prog.Size, dst, src int, off int64) {
	var b []byte
	switch size {
	case prog.SizeB:
		b = []byte{add2mod(0x48, src, dst), 0x0F, 0xB6}
	case prog.SizeH:
		b = []byte{add2mod(0x48, src, dst), 0x0F, 0xB7}
	case prog.SizeW:
		if isEreg(dst) || isEreg(src) {
			b = []byte{add2mod(0x40, src, dst), 0x8B}
		} else {
			b = []byte{0x8B}
		}
	case prog.SizeDW:
		b = []byte{add2mod(0x48, src, dst), 0x8B}
	}
	c.emit("load "+size.String(), append(b, emitInsnSuffix(src, dst, off)...)...)
}

// emitStx is emit_stx().
func (c *compiler) emitStx(size prog.Size, dst, src int, off int64) {
	var b []byte
	switch size {
	case prog.SizeB:
		if isEreg(dst) || isEreg8l(src) {
			b = []byte{add2mod(0x40, dst, src), 0x88}
		} else {
			b = []byte{0x88}
		}
	case prog.SizeH:
		if isEreg(dst) || isEreg(src) {
			b = []byte{0x66, add2mod(0x40, dst, src), 0x89}
		} else {
			b = []byte{0x66, 0x89}
		}
	case prog.SizeW:
		if isEreg(dst) || isEreg(src) {
			b = []byte{add2mod(0x40, dst, src), 0x89}
		} else {
			b = []byte{0x89}
		}
	case prog.SizeDW:
		b = []byte{add2mod(0x48, dst, src), 0x89}
	}
	c.emit("store "+size.String(), append(b, emitInsnSuffix(dst, src, off)...)...)
}

// emitSt is the BPF_ST | BPF_MEM case (store immediate).
func (c *compiler) emitSt(size prog.Size, dst int, off, imm32 int64) {
	var b []byte
	n := 4
	switch size {
	case prog.SizeB:
		n = 1
		if isEreg(dst) {
			b = []byte{0x41, 0xC6}
		} else {
			b = []byte{0xC6}
		}
	case prog.SizeH:
		n = 2
		if isEreg(dst) {
			b = []byte{0x66, 0x41, 0xC7}
		} else {
			b = []byte{0x66, 0xC7}
		}
	case prog.SizeW:
		if isEreg(dst) {
			b = []byte{0x41, 0xC7}
		} else {
			b = []byte{0xC7}
		}
	case prog.SizeDW:
		b = []byte{add1mod(0x48, dst), 0xC7}
	}
	if isImm8(off) {
		b = append(b, add1reg(0x40, dst), byte(off))
	} else {
		b = append(append(b, add1reg(0x80, dst)), le32(off)...)
	}
	b = append(b, le32(imm32)[:n]...)
	c.emit("store imm "+size.String(), b...)
}

// emitCall is the BPF_JMP | BPF_CALL case: helpers and bpf2bpf calls,
// "call rel32" from ip = image + addrs[i-1] (bpf-next late 2025).
func (c *compiler) emitCall(ins prog.Instruction, start int) error {
	ip := c.image + uint64(start)
	var fn uint64
	note := ""
	if c.o.Kernel == prog.Linux61 && c.tailCallReachable {
		// 6.1's RESTORE_TAIL_CALL_CNT, before every call, helpers too:
		// the callee's prologue pushes rax, so a subprogram starts with
		// a copy of the count.
		c.emit("mov rax, [rbp-8-stack]: the count, for the callee to push", cat([]byte{0x48, 0x8B, 0x85}, le32(int64(-jit.RoundUp(c.stackDepth, 8)-8)))...)
		ip += 7
	}
	if ins.IsSubprogCall() {
		callee := c.p.FuncIndex(ins.Reference)
		fn = c.res.Func(callee)
		note = "call subprogram " + ins.Reference
		if c.o.Kernel != prog.Linux61 && c.tailCallReachable {
			c.emit("mov rax, [rbp-16-stack]: pass tcc_ptr to the subprogram", cat([]byte{0x48, 0x8B, 0x85}, le32(c.tccPtrOff()))...)
			ip += 7
		}
	} else {
		addr, ok := c.res.Helper(int32(ins.Imm))
		if !ok {
			return fmt.Errorf("no address for helper %d", ins.Imm)
		}
		fn = addr
		note = "call helper"
		if h, ok := prog.HelperByID(int32(ins.Imm)); ok {
			note = "call bpf_" + h.Name
		}
	}
	off := int64(fn) - int64(ip+5)
	if !isSimm32(off) {
		return fmt.Errorf("call target %#x out of rel32 range from %#x", fn, ip)
	}
	c.emit(note, cat([]byte{0xE8}, le32(off))...)
	return nil
}

// emit3vex is emit_3vex(): the 3-byte VEX prefix. r, x and b extend the
// ModRM reg, SIB index and ModRM r/m fields as REX's bits do (stored
// inverted); m selects the opcode map (2: 0f38); w is REX.W; src2 is the
// extra source register in vvvv (inverted); l the vector length; pp the
// implied prefix (1: 66, 2: f3, 3: f2).
func emit3vex(r, x, b bool, m byte, w bool, src2 int, l bool, pp byte) []byte {
	bit := func(v bool) byte {
		if v {
			return 1
		}
		return 0
	}
	vvvv := reg2hex[src2]
	if isEreg(src2) {
		vvvv |= 1 << 3
	}
	b1 := (bit(!r) << 7) | (bit(!x) << 6) | (bit(!b) << 5) | (m & 0x1f)
	b2 := (bit(w) << 7) | ((^vvvv & 0xf) << 3) | (bit(l) << 2) | (pp & 3)
	return []byte{0xC4, b1, b2}
}

// emitShiftx is emit_shiftx(): shlx/shrx/sarx dst, dst, src, whose
// opcode (f7) the implied prefix pp tells apart.
func emitShiftx(dst, src int, is64 bool, pp byte) []byte {
	r := isEreg(dst)
	return append(emit3vex(r, false, r, 2, is64, src, false, pp), 0xF7, add2reg(0xC0, dst, dst))
}

// emitMovPercpuAddr is do_jit()'s BPF_MOV64_PERCPU_REG under CONFIG_SMP:
// mov dst, src (EMIT_mov, when they differ), then add dst, gs:[disp32]
// with disp32 = (u32)&this_cpu_off: the GS base is this CPU's per-CPU
// offset, so that reads this CPU's this_cpu_off, the same offset. The
// REX prefix is add_1mod(0x48, dst), as the kernel builds it (only R0
// reaches here: the verifier's inlining writes r0).
func (c *compiler) emitMovPercpuAddr(dst, src int) {
	if dst != src {
		c.emitMovReg(true, dst, src, "mov64")
	}
	rex := byte(0x48)
	if isEreg(dst) {
		rex |= 1
	}
	c.emit("add dst, gs:[this_cpu_off]: this CPU's copy", cat([]byte{0x65, rex, 0x03, add2reg(0x04, 0, dst), 0x25}, le32(prog.Sext32(prog.X86ThisCPUOff)))...)
}
