package x86

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
	// Config is the kernel build and CPU. This JIT takes IBT (endbr64 at
	// entry and at the tail-call landing pad), the Spectre v2 and SLS
	// options (emitIndirectJump, emitReturn) and BMI2 (shifts), and
	// ignores arm64's options.
	Config prog.Config
}

func (o Options) has(c prog.Config) bool { return o.Config&c != 0 }

// TailCallOffset is X86_TAIL_CALL_OFFSET: where tail calls land in
// bpf_func, past nop5, the counter's 3-byte "xor rax, rax" (2-byte "xor
// eax, eax" in 6.1), "push rbp; mov rbp, rsp", and endbr64 with IBT.
func (o Options) TailCallOffset() int {
	n := 12
	if o.Kernel == prog.Linux61 {
		n = 11
	}
	if o.has(prog.IBT) {
		n += 4
	}
	return n
}

// Passes, as in bpf_int_jit_compile().
const (
	maxPasses     = 20
	paddingPasses = maxPasses - 5
)

// jitContext is struct jit_context: state carried from pass to pass.
type jitContext struct {
	cleanupAddr           int
	tailCallDirectLabel   int
	tailCallIndirectLabel int
}

// compiler holds one function's compilation.
type compiler struct {
	o     Options
	p     *prog.Program
	fn    int
	f     *prog.Function
	fx    *prog.Fixup
	res   jit.Resolver
	image uint64 // where the code will live: calls and pokes are relative

	calleeRegsUsed    [4]bool
	tailCallReachable bool
	isSubprog         bool
	stackDepth        int

	// per pass
	buf   []byte
	insns []jit.Insn
	sites []jit.TailSite
	owner int
	// insnStart is where the current BPF instruction's code begins.
	insnStart int
}

// Compile JITs function fn of p, to be loaded at image. It follows
// bpf_int_jit_compile(): passes until the size settles (padding from pass
// 15 on), then the final pass.
func Compile(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, o Options) (*jit.Image, error) {
	if o.Layout.MaxEntries >= 128 || o.Layout.BpfFunc >= 128 {
		return nil, &prog.LayoutError{Arch: "x86_64", Layout: o.Layout, Msg: fmt.Sprintf("the JIT encodes offsetof(max_entries) = %#x and offsetof(bpf_func) = %#x as disp8; both must be below 0x80",
			o.Layout.MaxEntries, o.Layout.BpfFunc)}
	}
	f := p.Funcs[fn]
	c := &compiler{o: o, p: p, fn: fn, f: f, fx: fx, res: res, image: image, isSubprog: fn != 0, stackDepth: f.StackDepth}
	tailCallSeen := c.detectRegUsage()
	c.tailCallReachable = tailCallReachable(p, fn) || tailCallSeen

	pos, nslots := f.Slots()
	addrs := make([]int, nslots+1)
	proglen := 0
	for i := range addrs {
		proglen += 64
		addrs[i] = proglen
	}
	ctx := &jitContext{cleanupAddr: proglen}
	oldproglen := 0
	padding := false
	for pass := 0; pass < maxPasses; pass++ {
		if !padding && pass >= paddingPasses {
			padding = true
		}
		n, err := c.doJIT(pos, addrs, ctx, padding, false, oldproglen)
		if err != nil {
			return nil, err
		}
		if n == oldproglen {
			// The image is allocated; one more pass writes it and must
			// reproduce every address.
			if m, err := c.doJIT(pos, addrs, ctx, padding, true, oldproglen); err != nil {
				return nil, err
			} else if m != oldproglen {
				return nil, fmt.Errorf("x86: proglen=%d != oldproglen=%d", m, oldproglen)
			}
			return &jit.Image{Func: f, Code: c.buf, Insns: c.insns, TailEntry: o.TailCallOffset(), Sites: c.sites,
				StackSize: jit.RoundUp(c.stackDepth, 8)}, nil
		}
		oldproglen = n
	}
	return nil, fmt.Errorf("x86: %s did not converge in %d passes", f.Name, maxPasses)
}

// detectRegUsage is detect_reg_usage(): callee-saved registers named in any
// instruction, and whether the function contains a tail call.
func (c *compiler) detectRegUsage() bool {
	seen := false
	for _, ins := range c.f.Insns {
		if ins.IsTailCall() {
			seen = true
		}
		for _, r := range []prog.Register{ins.Dst, ins.Src} {
			if r >= prog.R6 && r <= prog.R9 {
				c.calleeRegsUsed[r-prog.R6] = true
			}
		}
	}
	return seen
}

// tailCallReachable is the verifier's mark for function fn, as v6.18's
// check_max_stack_depth_subprog() (kernel/bpf/verifier.c) computes it: a
// depth-first walk of the calls from the main function, in instruction
// order, with one flag that is set on entering a callee that contains a
// tail call and is never cleared. Whenever the walk reaches a function's
// end with the flag set, the callers on the current chain (frames 0 to
// frame-1, not the function just finished) are marked. So once a
// tail-calling subprogram has been called, every function that calls
// another afterwards is marked too, whether or not it can reach a tail
// call; a leaf is not (it is marked only if it holds a tail call itself:
// the JIT's tail_call_seen, see Compile).
func tailCallReachable(p *prog.Program, fn int) bool {
	marked := make([]bool, len(p.Funcs))
	sticky := false
	var walk func(idx int, callers []int)
	walk = func(idx int, callers []int) {
		for _, ins := range p.Funcs[idx].Insns {
			if !ins.IsSubprogCall() {
				continue
			}
			callee := p.FuncIndex(ins.Reference)
			if p.Funcs[callee].HasTailCall() {
				sticky = true
			}
			walk(callee, append(callers, idx))
		}
		if sticky {
			for _, f := range callers {
				marked[f] = true
			}
		}
	}
	walk(0, nil)
	return marked[fn]
}

// emit appends one machine instruction with its annotation.
func (c *compiler) emit(note string, b ...byte) {
	c.insns = append(c.insns, jit.Insn{Off: len(c.buf), Len: len(b), BPF: c.owner, Note: note})
	c.buf = append(c.buf, b...)
}

func le32(v int64) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return b[:]
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// emitNops is emit_nops() for the lengths padding needs (at most 5).
func (c *compiler) emitNops(n int, note string) {
	if n > 0 {
		c.emit(note, nops[n]...)
	}
}

// emitPrologue is emit_prologue() for a program that is not classic BPF
// and not an exception callback.
func (c *compiler) emitPrologue() {
	if c.o.has(prog.IBT) {
		c.emit("endbr64: indirect-branch target", endbr64...)
	}
	c.emit("nop5: fentry/trampoline patch site", nop5...)
	entry := c.tailCallReachable && !c.isSubprog
	switch {
	case c.o.Kernel == prog.Linux61 && entry:
		c.emit("xor eax, eax: tail_call_cnt = 0 (entry of the tail-call context)", 0x31, 0xC0)
	case c.o.Kernel == prog.Linux61:
		c.emit("nop2: keeps X86_TAIL_CALL_OFFSET fixed", 0x66, 0x90)
	case entry:
		c.emit("xor rax, rax: tail-call count = 0 (entry of the tail-call context)", 0x48, 0x31, 0xC0)
	default:
		c.emit("nop3: keeps X86_TAIL_CALL_OFFSET fixed", 0x0F, 0x1F, 0x00)
	}
	c.emit("push rbp", 0x55)
	c.emit("mov rbp, rsp", 0x48, 0x89, 0xE5)
	if c.o.has(prog.IBT) {
		c.emit(fmt.Sprintf("endbr64: tail calls land here (X86_TAIL_CALL_OFFSET %d)", c.o.TailCallOffset()), endbr64...)
	}
	if c.stackDepth != 0 {
		c.emit(fmt.Sprintf("sub rsp, %d: BPF stack", jit.RoundUp(c.stackDepth, 8)), cat([]byte{0x48, 0x81, 0xEC}, le32(int64(jit.RoundUp(c.stackDepth, 8))))...)
	}
	switch {
	case c.tailCallReachable && c.o.Kernel == prog.Linux61:
		c.emit("push rax: tail_call_cnt in the upper half, below the BPF stack", 0x50)
	case c.tailCallReachable:
		c.emitPrologueTailCall()
	}
	c.pushCalleeRegs()
}

// emitPrologueTailCall is emit_prologue_tail_call(): rax holds a count
// (<= 33) or a pointer to the counter; the frame gets the count and tcc_ptr.
func (c *compiler) emitPrologueTailCall() {
	if !c.isSubprog {
		c.emit("cmp rax, 33: a count or a pointer to one?", 0x48, 0x83, 0xF8, 0x21)
		c.emit("ja +6: a pointer, keep it", 0x77, 0x06)
		c.emit("push rax: the count", 0x50)
		c.emit("mov rax, rsp: rax = &count", 0x48, 0x89, 0xE0)
		c.emit("jmp +1", 0xEB, 0x01)
		c.emit("push rax: the pointer, twice", 0x50)
		c.emit("push rax: tcc_ptr", 0x50)
		return
	}
	c.emit("push rax: tcc_ptr from the caller", 0x50)
	c.emit("push rax: tcc_ptr", 0x50)
}

var calleeRegs = [...]int{int(prog.R6), int(prog.R7), int(prog.R8), int(prog.R9)}

// pushCalleeRegs is push_callee_regs().
func (c *compiler) pushCalleeRegs() {
	for i, r := range calleeRegs {
		if !c.calleeRegsUsed[i] {
			continue
		}
		note := fmt.Sprintf("push %s: callee-saved", x86Name(r))
		if isEreg(r) {
			c.emit(note, 0x41, add1reg(0x50, r))
		} else {
			c.emit(note, add1reg(0x50, r))
		}
	}
}

// popCalleeRegs is pop_callee_regs().
func (c *compiler) popCalleeRegs() {
	for i := len(calleeRegs) - 1; i >= 0; i-- {
		r := calleeRegs[i]
		if !c.calleeRegsUsed[i] {
			continue
		}
		note := fmt.Sprintf("pop %s: callee-saved", x86Name(r))
		if isEreg(r) {
			c.emit(note, 0x41, add1reg(0x58, r))
		} else {
			c.emit(note, add1reg(0x58, r))
		}
	}
}

func x86Name(r int) string {
	return [...]string{"rax", "rdi", "rsi", "rdx", "rcx", "r8", "rbx", "r13", "r14", "r15", "rbp", "r10", "r11"}[r]
}

// tccPtrOff is BPF_TAIL_CALL_CNT_PTR_STACK_OFF(stack).
func (c *compiler) tccPtrOff() int64 { return int64(-16 - jit.RoundUp(c.stackDepth, 8)) }

// doJIT is one pass of do_jit(). It returns the program length.
func (c *compiler) doJIT(pos []int, addrs []int, ctx *jitContext, padding, final bool, oldproglen int) (int, error) {
	c.buf, c.insns, c.sites = c.buf[:0], nil, nil
	c.owner = jit.Prologue
	c.emitPrologue()
	addrs[0] = len(c.buf)
	proglen := len(c.buf)
	seenExit := false
	for k, ins := range c.f.Insns {
		i := pos[k] + 1 // the kernel's 1-based slot counter
		c.owner = k
		start := len(c.buf)
		c.insnStart = start
		if err := c.emitInsn(k, ins, i, addrs, ctx, padding, &seenExit, proglen); err != nil {
			return 0, fmt.Errorf("x86: %s: %w", c.p.Loc(c.fn, k), err)
		}
		if ins.OpCode.IsLoadImm64() {
			i++
		}
		ilen := len(c.buf) - start
		if final && (proglen+ilen > oldproglen || proglen+ilen != addrs[i]) {
			return 0, fmt.Errorf("x86: %s: fatal error: the instruction moved in the final pass", c.p.Loc(c.fn, k))
		}
		proglen += ilen
		addrs[i] = proglen
	}
	return proglen, nil
}

func (c *compiler) imm(ins prog.Instruction) int64 { return int64(int32(ins.Imm)) }

func (c *compiler) emitInsn(k int, ins prog.Instruction, i int, addrs []int, ctx *jitContext, padding bool, seenExit *bool, proglen int) error {
	op := ins.OpCode
	dst, src := int(ins.Dst), int(ins.Src)
	imm32 := c.imm(ins)
	insnSzDiff := func() int { return (addrs[i] - addrs[i-1]) - (len(c.buf) - c.insnStart) }
	switch {
	case op.IsALU():
		return c.emitALU(ins, dst, src, imm32)
	case ins.IsMapLoad():
		c.emitMovImm64(dst, c.res.Map(ins.Reference), "map["+ins.Reference+"]")
	case ins.IsMapValueLoad():
		// convert_pseudo_ld_imm64() wrote &array->value[0] + off.
		c.emitMovImm64(dst, c.res.Map(ins.Reference)+uint64(c.o.Layout.Ptrs)+uint64(ins.Imm), fmt.Sprintf("map_value[%s]+%d", ins.Reference, ins.Imm))
	case op.IsLoadImm64():
		c.emitMovImm64(dst, uint64(ins.Imm), "imm64")
	case op.IsMemLoad():
		c.emitLdx(op.Size(), dst, src, int64(ins.Off))
	case op.IsMemStore() && op.Class() == prog.ClassSTX:
		c.emitStx(op.Size(), dst, src, int64(ins.Off))
	case op.IsMemStore():
		c.emitSt(op.Size(), dst, int64(ins.Off), imm32)
	case op.IsTailCall() || ins.IsTailCall():
		return c.emitTailCall(k, addrs[i-1], ctx)
	case op.IsCall():
		return c.emitCall(ins, addrs[i-1])
	case op.IsExit():
		if *seenExit {
			return c.emitJmp(int64(ctx.cleanupAddr-addrs[i]), padding, insnSzDiff, "jmp to the epilogue")
		}
		*seenExit = true
		ctx.cleanupAddr = proglen
		c.owner = jit.Epilogue
		c.popCalleeRegs()
		c.emit("leave", 0xC9)
		if err := c.emitReturn(); err != nil {
			return err
		}
	case op.IsJA():
		var off int64
		if ins.Off == -1 {
			off = -2
		} else {
			off = int64(addrs[i+int(ins.Off)] - addrs[i])
		}
		if off == 0 {
			if padding {
				n := insnSzDiff()
				if n != 0 && n != 2 && n != 5 {
					return fmt.Errorf("unexpected nop jump padding: %d bytes", n)
				}
				c.emitNops(n, "padding: a jump that became empty")
			}
			return nil
		}
		return c.emitJmp(off, padding, insnSzDiff, "goto")
	case op.IsCondJump():
		return c.emitCondJmp(ins, dst, src, imm32, addrs, i, padding, insnSzDiff)
	default:
		return fmt.Errorf("opcode %#02x is outside the modelled subset", uint8(op))
	}
	return nil
}

// emitJmp is the emit_jmp: part of do_jit().
func (c *compiler) emitJmp(off int64, padding bool, szDiff func() int, note string) error {
	switch {
	case isImm8JmpOffset(off):
		if padding {
			n := szDiff() - 2
			if n != 0 && n != 3 {
				return fmt.Errorf("unexpected jump padding: %d bytes", n)
			}
			c.emitNops(n, "padding: the jump was 5 bytes in an earlier pass")
		}
		c.emit(note, 0xEB, byte(off))
	case isSimm32(off):
		c.emit(note, cat([]byte{0xE9}, le32(off))...)
	default:
		return fmt.Errorf("jmp gen bug %#x", off)
	}
	return nil
}

func (c *compiler) emitCondJmp(ins prog.Instruction, dst, src int, imm32 int64, addrs []int, i int, padding bool, szDiff func() int) error {
	op := ins.OpCode
	is64 := op.Class() == prog.ClassJMP
	jop := op.JumpOp()
	var cmp []byte
	note := "compare"
	switch {
	case op.Source() == prog.SourceX && jop == prog.OpJSET:
		cmp = append(c.maybeEmitMod(dst, src, is64), 0x85, add2reg(0xC0, dst, src))
		note = "test"
	case op.Source() == prog.SourceX:
		cmp = append(c.maybeEmitMod(dst, src, is64), 0x39, add2reg(0xC0, dst, src))
	case jop == prog.OpJSET:
		cmp = cat(c.maybeEmit1Mod(dst, is64), []byte{0xF7, add1reg(0xC0, dst)}, le32(imm32))
		note = "test"
	case imm32 == 0:
		cmp = append(c.maybeEmitMod(dst, dst, is64), 0x85, add2reg(0xC0, dst, dst))
		note = "test reg, reg: compare with 0"
	case isImm8(imm32):
		cmp = append(c.maybeEmit1Mod(dst, is64), 0x83, add1reg(0xF8, dst), byte(imm32))
	default:
		cmp = cat(c.maybeEmit1Mod(dst, is64), []byte{0x81, add1reg(0xF8, dst)}, le32(imm32))
	}
	c.emit(note, cmp...)
	cond := jmpCond[jop]
	off := int64(addrs[i+int(ins.Off)] - addrs[i])
	switch {
	case isImm8JmpOffset(off):
		if padding {
			n := szDiff() - 2
			if n != 0 && n != 4 {
				return fmt.Errorf("unexpected jmp_cond padding: %d bytes", n)
			}
			c.emitNops(n, "padding: the branch was 6 bytes in an earlier pass")
		}
		c.emit("conditional branch", cond, byte(off))
	case isSimm32(off):
		c.emit("conditional branch", cat([]byte{0x0F, cond + 0x10}, le32(off))...)
	default:
		return fmt.Errorf("cond_jmp gen bug %#x", off)
	}
	return nil
}

// maybeEmitMod returns the REX prefix maybe_emit_mod() would emit.
func (c *compiler) maybeEmitMod(dst, src int, is64 bool) []byte {
	if is64 {
		return []byte{add2mod(0x48, dst, src)}
	}
	if isEreg(dst) || isEreg(src) {
		return []byte{add2mod(0x40, dst, src)}
	}
	return nil
}

// maybeEmit1Mod is maybe_emit_1mod().
func (c *compiler) maybeEmit1Mod(reg int, is64 bool) []byte {
	if is64 {
		return []byte{add1mod(0x48, reg)}
	}
	if isEreg(reg) {
		return []byte{add1mod(0x40, reg)}
	}
	return nil
}
