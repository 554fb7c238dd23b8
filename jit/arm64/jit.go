package arm64

import (
	"encoding/binary"
	"fmt"

	"tailsim/jit"
	"tailsim/prog"
)

// Options configure the JIT the way a kernel build and version would.
type Options struct {
	Kernel prog.Kernel
	Layout prog.Layout
	BTI    bool // CONFIG_ARM64_BTI_KERNEL: bti jc at entry, bti j at the tail-call landing pad
	PAC    bool // CONFIG_ARM64_PTR_AUTH_KERNEL: paciasp / autiasp
}

// PrologueOffset is PROLOGUE_OFFSET: the instruction index, counted from
// bpf_func, where tail calls land (BTI_INSNS + 2 + PAC_INSNS + 4). 6.1's
// is BTI_INSNS + 2 + PAC_INSNS + 8: its four callee-saved pairs, "mov
// x25, sp" and "mov x26, #0" come before the landing.
func (o Options) PrologueOffset() int {
	n := 2 + 4
	if o.Kernel == prog.Linux61 {
		n = 2 + 8
	}
	if o.BTI {
		n++
	}
	if o.PAC {
		n++
	}
	return n
}

// PokeOffset is POKE_OFFSET: the index of the nop the trampoline code
// patches (BTI_INSNS + 1).
func (o Options) PokeOffset() int {
	if o.BTI {
		return 2
	}
	return 1
}

// TailCallOffset is bpf_arch_tail_call_prologue_offset() of the series:
// PROLOGUE_OFFSET in bytes.
func (o Options) TailCallOffset() int { return 4 * o.PrologueOffset() }

// InsnSize is AARCH64_INSN_SIZE.
const InsnSize = 4

// compiler is struct jit_ctx plus what bpf_int_jit_compile() keeps across
// passes.
type compiler struct {
	o     Options
	p     *prog.Program
	fn    int
	f     *prog.Function
	fx    *prog.Fixup
	res   jit.Resolver
	image uint64 // where the code will live (ro_image = bpf_func: no kCFI)

	isSubprog bool // bpf_is_subprog(): func_idx != 0
	isFunc    bool // prog->is_func: the program has subprograms
	extraPass bool

	// struct jit_ctx
	idx            int
	epilogueOffset int
	offset         []int // per BPF slot, prog->len + 1
	usedCalleeReg  []int
	fpUsed         bool
	fpbOffset      int // 6.1's ctx->fpb_offset
	stackSize      int
	hasImage       bool   // ctx->image != NULL
	roImage        uint64 // ctx->ro_image, 0 before the image is allocated
	write          bool

	// The RW image: one word and one annotation per instruction index.
	words []uint32
	ann   []jit.Insn
	sites []jit.TailSite
	owner int
	pos   []int // slot of each Function.Insns entry
	err   error
}

// Compile JITs function fn of p, to be loaded at image. It follows
// bpf_int_jit_compile(): pass 1 sizes the image with every call indirect;
// pass 2 writes the prologue and recomputes ctx->offset[] against the real
// address; pass 3 writes the body with exact branches, then the epilogue
// and the PLT. A program with subprograms (prog->is_func) then gets the
// extra pass, passes 2 and 3 again with the subprograms' addresses, which
// may turn bpf2bpf calls into bl and only shrink the image.
func Compile(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, o Options) (*jit.Image, error) {
	f := p.Funcs[fn]
	pos, nslots := f.Slots()
	c := &compiler{o: o, p: p, fn: fn, f: f, fx: fx, res: res, image: image,
		isSubprog: fn != 0, isFunc: len(p.Funcs) > 1, pos: pos, offset: make([]int, nslots+1)}

	// Pass 1: estimate the maximum image size.
	if err := c.buildPrologue(); err != nil {
		return nil, err
	}
	if err := c.buildBody(); err != nil {
		return nil, err
	}
	c.epilogueOffset = c.idx
	c.buildEpilogue()
	c.buildPlt()
	allocated := c.idx
	c.words = make([]uint32, allocated)
	for k := range c.words {
		c.words[k] = aarch64BreakFault // jit_fill_hole
	}
	c.ann = make([]jit.Insn, allocated)
	c.hasImage, c.roImage = true, image

	if err := c.passes23(allocated); err != nil {
		return nil, err
	}
	if c.isFunc {
		firstRound := c.idx
		c.extraPass = true
		if err := c.passes23(allocated); err != nil {
			return nil, err
		}
		if c.idx > firstRound {
			return nil, fmt.Errorf("arm64: %s: multi-func JIT bug %d > %d", f.Name, c.idx, firstRound)
		}
	}
	code := make([]byte, InsnSize*c.idx)
	for k := 0; k < c.idx; k++ {
		binary.LittleEndian.PutUint32(code[InsnSize*k:], c.words[k])
	}
	insns := append([]jit.Insn(nil), c.ann[:c.idx]...)
	return &jit.Image{Func: f, Code: code, Insns: insns, TailEntry: o.TailCallOffset(), Sites: c.sites,
		StackSize: c.stackSize}, nil
}

// passes23 is bpf_int_jit_compile() from skip_init_ctx to validate_ctx().
func (c *compiler) passes23(allocated int) error {
	c.idx = 0
	c.write = true
	if err := c.buildPrologue(); err != nil {
		return err
	}
	bodyIdx := c.idx
	// Don't write body instructions to memory for now.
	c.write = false
	if err := c.buildBody(); err != nil {
		return err
	}
	c.epilogueOffset = c.idx
	c.idx = bodyIdx
	c.write = true
	// Pass 3: adjust jump offsets and write the final image.
	if err := c.buildBody(); err != nil {
		return err
	}
	if c.idx != c.epilogueOffset {
		return fmt.Errorf("arm64: %s: body is %d instructions in pass 3, %d in pass 2", c.f.Name, c.idx-bodyIdx, c.epilogueOffset-bodyIdx)
	}
	c.buildEpilogue()
	c.buildPlt()
	if c.err != nil {
		return c.err
	}
	if c.idx > allocated {
		return fmt.Errorf("arm64: %s: %d instructions overflow the %d allocated in pass 1", c.f.Name, c.idx, allocated)
	}
	return c.validateCode()
}

// validateCode is validate_code(): an encoding failure left a BRK.
func (c *compiler) validateCode() error {
	for k := 0; k < c.idx; k++ {
		if c.words[k] == aarch64BreakFault {
			a := c.ann[k]
			where := "the prologue of " + c.f.Name
			switch {
			case a.BPF == jit.Epilogue:
				where = "the epilogue of " + c.f.Name
			case a.BPF >= 0:
				where = c.p.Loc(c.fn, a.BPF).String()
			}
			return fmt.Errorf("arm64: %s (%s) cannot be encoded: AARCH64_BREAK_FAULT at +%#x", where, a.Note, InsnSize*k)
		}
	}
	return nil
}

// emit is emit(): the word is stored only when the image exists and the
// pass writes.
func (c *compiler) emit(insn uint32, note string) {
	if c.hasImage && c.write {
		if c.idx >= len(c.words) {
			if c.err == nil {
				c.err = fmt.Errorf("arm64: %s: instruction %d beyond the image allocated in pass 1", c.f.Name, c.idx)
			}
		} else {
			c.words[c.idx] = insn
			c.ann[c.idx] = jit.Insn{Off: InsnSize * c.idx, Len: InsnSize, BPF: c.owner, Note: note}
		}
	}
	c.idx++
}

// patch writes a placeholder's final word, as the tail-call fix-up does
// through its branch pointer: whenever the image exists, whatever the pass.
func (c *compiler) patch(at int, insn uint32) {
	if c.hasImage && at < len(c.words) {
		c.words[at] = insn
	}
}

// emitA64MovI is emit_a64_mov_i(): a 32-bit value, sign-extended to 64 bits
// when is64.
func (c *compiler) emitA64MovI(is64 bool, r int, val int32, note string) {
	hi := uint16(uint32(val) >> 16)
	lo := uint16(uint32(val))
	if hi&0x8000 != 0 {
		if hi == 0xffff {
			c.emit(a64Movn(is64, r, uint64(^lo), 0), note+" (movn)")
		} else {
			c.emit(a64Movn(is64, r, uint64(^hi), 16), note+" (movn)")
			if lo != 0xffff {
				c.emit(a64Movk(is64, r, uint64(lo), 0), note+" (movk)")
			}
		}
	} else {
		c.emit(a64Movz(is64, r, uint64(lo), 0), note+" (movz)")
		if hi != 0 {
			c.emit(a64Movk(is64, r, uint64(hi), 16), note+" (movk)")
		}
	}
}

// i64I16Blocks is i64_i16_blocks().
func i64I16Blocks(val uint64, inverse bool) int {
	fill := uint64(0)
	if inverse {
		fill = 0xffff
	}
	n := 0
	for s := 0; s < 64; s += 16 {
		if val>>s&0xffff != fill {
			n++
		}
	}
	return n
}

// fls64 is the 1-based index of the highest set bit, 0 for 0.
func fls64(v uint64) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

// emitA64MovI64 is emit_a64_mov_i64(): values below 2^32 take the 32-bit
// emit_a64_mov_i(); others a movz or movn from the highest differing
// 16-bit chunk, then movk for the chunks that are not the fill value.
func (c *compiler) emitA64MovI64(r int, val uint64, note string) {
	nrm, rev := val, ^val
	if nrm>>32 == 0 {
		c.emitA64MovI(false, r, int32(uint32(val)), note)
		return
	}
	inverse := i64I16Blocks(nrm, true) < i64I16Blocks(nrm, false)
	var shift int
	if inverse {
		shift = max((fls64(rev)-1)/16*16, 0)
		c.emit(a64Movn(true, r, rev>>shift&0xffff, shift), note+" (movn)")
	} else {
		shift = max((fls64(nrm)-1)/16*16, 0)
		c.emit(a64Movz(true, r, nrm>>shift&0xffff, shift), note+" (movz)")
	}
	fill := uint64(0)
	if inverse {
		fill = 0xffff
	}
	for shift -= 16; shift >= 0; shift -= 16 {
		if nrm>>shift&0xffff != fill {
			c.emit(a64Movk(true, r, nrm>>shift&0xffff, shift), note+" (movk)")
		}
	}
}

// emitAddrMovI64 is emit_addr_mov_i64(): always movn + movk + movk, which
// is right for kernel (vmalloc) addresses, whose bits 48–63 are all ones.
func (c *compiler) emitAddrMovI64(r int, val uint64, note string) {
	tmp := val
	shift := 0
	c.emit(a64Movn(true, r, ^tmp&0xffff, shift), note+" (movn)")
	for shift < 32 {
		tmp >>= 16
		shift += 16
		c.emit(a64Movk(true, r, tmp&0xffff, shift), note+" (movk)")
	}
}

// isAddsubImm is is_addsub_imm(): imm12 or imm12 << 12.
func isAddsubImm(imm uint32) bool { return imm&^0xfff == 0 || imm&^0xfff000 == 0 }

// emitA64AddI is emit_a64_add_i(): the s32 imm as an add or sub immediate
// when it encodes, else through tmp (sign-extended when is64).
func (c *compiler) emitA64AddI(is64 bool, dst, src, tmp int, imm int32, note string) {
	switch {
	case isAddsubImm(uint32(imm)):
		c.emit(a64AddI(is64, dst, src, int64(imm)), note)
	case isAddsubImm(-uint32(imm)):
		c.emit(a64SubI(is64, dst, src, int64(negS32(imm))), note+" (sub)")
	default:
		c.emitA64MovI(is64, tmp, imm, note+": tmp = imm")
		c.emit(a64Add(is64, dst, src, tmp), note+": add tmp")
	}
}

// negS32 is C's -imm on an s32 (wrapping, as the kernel is built).
func negS32(v int32) int32 { return int32(-uint32(v)) }

// isLsiOffset is is_lsi_offset(): a non-negative, scaled, aligned imm12.
func isLsiOffset(offset, scale int) bool {
	switch {
	case offset < 0:
		return false
	case offset > 0xfff<<scale:
		return false
	case offset&(1<<scale-1) != 0:
		return false
	}
	return true
}

// prepareBPFTailCallCnt is prepare_bpf_tail_call_cnt().
func (c *compiler) prepareBPFTailCallCnt() {
	ptr := bpf2a64[tcCntPtr]
	if !c.isSubprog {
		c.emit(a64Push(regZR, ptr, regSP), "stp xzr, x26, [sp, #-16]!: tail_call_cnt = 0, save the caller's x26")
		c.emit(a64Mov(true, ptr, regSP), "mov x26, sp: x26 = &tail_call_cnt")
		return
	}
	c.emit(a64Push(ptr, ptr, regSP), "stp x26, x26, [sp, #-16]!: keep the main program's tail_call_cnt_ptr")
}

// findUsedCalleeRegs is find_used_callee_regs(): the callee-saved
// registers named as dst or src of any instruction, in the order x19,
// x20, x21, x22, x25 (FP). It reads the raw register fields, as the
// kernel does, after the verifier's rewrites (a map ld_imm64's src is 0
// by then; a bpf2bpf call's src is 1).
func (c *compiler) findUsedCalleeRegs() {
	used := 0
	for _, ins := range c.f.Insns {
		src := ins.Src
		if ins.IsMapLoad() || ins.IsMapValueLoad() {
			src = 0 // convert_pseudo_ld_imm64()
		}
		for k, r := range []prog.Register{prog.R6, prog.R7, prog.R8, prog.R9} {
			if ins.Dst == r || src == r {
				used |= 1 << k
			}
		}
		if ins.Dst == prog.R10 || src == prog.R10 {
			c.fpUsed = true
			used |= 16
		}
	}
	c.usedCalleeReg = c.usedCalleeReg[:0]
	for k, r := range []prog.Register{prog.R6, prog.R7, prog.R8, prog.R9, prog.R10} {
		if used&(1<<k) != 0 {
			c.usedCalleeReg = append(c.usedCalleeReg, bpf2a64[r])
		}
	}
}

// pushCalleeRegs is push_callee_regs(): pairs, the odd one out with xzr.
func (c *compiler) pushCalleeRegs() {
	c.findUsedCalleeRegs()
	n := len(c.usedCalleeReg)
	i := 0
	for ; i+1 < n; i += 2 {
		r1, r2 := c.usedCalleeReg[i], c.usedCalleeReg[i+1]
		c.emit(a64Push(r1, r2, regSP), fmt.Sprintf("stp x%d, x%d, [sp, #-16]!: callee-saved", r1, r2))
	}
	if i < n {
		r1 := c.usedCalleeReg[i]
		c.emit(a64Push(r1, regZR, regSP), fmt.Sprintf("stp x%d, xzr, [sp, #-16]!: callee-saved (xzr keeps sp 16-byte aligned)", r1))
	}
}

// popCalleeRegs is pop_callee_regs().
func (c *compiler) popCalleeRegs() {
	n := len(c.usedCalleeReg)
	i := n - 1
	if n%2 != 0 {
		r1 := c.usedCalleeReg[i]
		c.emit(a64Pop(r1, regZR, regSP), fmt.Sprintf("ldp x%d, xzr, [sp], #16: callee-saved", r1))
		i--
	}
	for i > 0 {
		r1, r2 := c.usedCalleeReg[i-1], c.usedCalleeReg[i]
		c.emit(a64Pop(r1, r2, regSP), fmt.Sprintf("ldp x%d, x%d, [sp], #16: callee-saved", r1, r2))
		i -= 2
	}
}

// buildPrologue is build_prologue() for an eBPF program that is neither an
// exception callback nor using a private stack or an arena.
func (c *compiler) buildPrologue() error {
	if c.o.Kernel == prog.Linux61 {
		return c.buildPrologue61()
	}
	c.owner = jit.Prologue
	idx0 := c.idx
	c.emitFrameRecord()
	c.prepareBPFTailCallCnt()
	if !c.isSubprog {
		if cur := c.idx - idx0; cur != c.o.PrologueOffset() {
			return fmt.Errorf("arm64: PROLOGUE_OFFSET = %d, expected %d", cur, c.o.PrologueOffset())
		}
		if c.o.BTI {
			c.emit(a64BtiJ, fmt.Sprintf("bti j: tail calls land here (PROLOGUE_OFFSET %d) with br", c.o.PrologueOffset()))
		}
	}
	c.pushCalleeRegs()
	// Stack must be multiples of 16B.
	c.stackSize = jit.RoundUp(c.f.StackDepth, 16)
	if c.fpUsed {
		c.emit(a64Mov(true, bpf2a64[prog.R10], regSP), "mov x25, sp: BPF frame pointer")
	}
	if c.stackSize != 0 {
		c.emit(a64SubI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("sub sp, sp, #%d: BPF stack (round_up(%d, 16))", c.stackSize, c.f.StackDepth))
	}
	return nil
}

// emitFrameRecord is the start of build_prologue() every version shares:
// the landing pad, the trampoline's nop, lr signed, the frame record.
func (c *compiler) emitFrameRecord() {
	if c.o.BTI {
		c.emit(a64BtiJC, "bti jc: entry reached by bl, br or blr")
	}
	c.emit(a64Mov(true, 9, regLR), "mov x9, lr: the return address for a trampoline")
	c.emit(a64Nop, "nop: poke site (POKE_OFFSET) for fentry/freplace trampolines")
	if c.o.PAC {
		c.emit(a64Paciasp, "paciasp: sign lr")
	}
	c.emit(a64Push(regFP, regLR, regSP), "stp x29, lr, [sp, #-16]!: frame record")
	c.emit(a64Mov(true, regFP, regSP), "mov x29, sp")
}

// buildEpilogue is build_epilogue() for an eBPF program.
func (c *compiler) buildEpilogue() {
	if c.o.Kernel == prog.Linux61 {
		c.buildEpilogue61()
		return
	}
	c.owner = jit.Epilogue
	if c.stackSize != 0 {
		c.emit(a64AddI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("add sp, sp, #%d: done with the BPF stack", c.stackSize))
	}
	c.popCalleeRegs()
	c.emit(a64Pop(regZR, bpf2a64[tcCntPtr], regSP), "ldp xzr, x26, [sp], #16: drop the counter slot, restore x26")
	c.emit(a64Pop(regFP, regLR, regSP), "ldp x29, lr, [sp], #16: frame record")
	c.emit(a64Mov(true, 0, bpf2a64[prog.R0]), "mov x0, x7: return BPF R0")
	if c.o.PAC {
		c.emit(a64Autiasp, "autiasp: authenticate lr")
	}
	c.emit(a64Ret(regLR), "ret")
}

// buildPlt is build_plt(): "ldr x10, target; br x10" for long-jump
// trampolines, after a nop when needed to 8-byte align the target. The
// 8-byte target (.quad dummy_tramp) follows the code; it is not part of
// prog_size (jited_len), so it is not part of Code either.
func (c *compiler) buildPlt() {
	c.owner = jit.Epilogue
	tmp := bpf2a64[tmpReg1]
	// Make sure the target is 64-bit aligned (PLT_TARGET_OFFSET is 8).
	if (c.idx+8/InsnSize)%2 != 0 {
		c.emit(a64Nop, "nop: aligns the PLT target")
	}
	c.emit(a64Ldr64Lit(tmp, 2*InsnSize), "PLT: ldr x10, target (the quad after the code: dummy_tramp or a trampoline)")
	c.emit(a64Br(tmp), "PLT: br x10")
}

// buildBody is build_body(): ctx->offset[i] is the instruction index where
// BPF slot i starts; a 64-bit immediate load's second slot gets the index
// after it; offset[len] is the end of the body.
func (c *compiler) buildBody() error {
	c.sites = c.sites[:0]
	for k, ins := range c.f.Insns {
		i := c.pos[k]
		c.offset[i] = c.idx
		c.owner = k
		if err := c.buildInsn(k, ins, i); err != nil {
			return fmt.Errorf("arm64: %s: %w", c.p.Loc(c.fn, k), err)
		}
		if ins.OpCode.IsLoadImm64() {
			c.offset[i+1] = c.idx
		}
	}
	c.offset[len(c.offset)-1] = c.idx
	return nil
}

// MovSequence is the words emit_a64_mov_i64() (addr false) or
// emit_addr_mov_i64() (addr true) emits to load val into x<r>: the
// kernel oracle masks an address's value but checks the form of the
// instructions that build it.
func MovSequence(r int, val uint64, addr bool) []uint32 {
	n := 4
	c := &compiler{hasImage: true, write: true, words: make([]uint32, n), ann: make([]jit.Insn, n), f: &prog.Function{}}
	if addr {
		c.emitAddrMovI64(r, val, "")
	} else {
		c.emitA64MovI64(r, val, "")
	}
	return c.words[:c.idx]
}
