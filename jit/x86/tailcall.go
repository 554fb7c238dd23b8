package x86

import (
	"fmt"

	"tailsim/jit"
	"tailsim/prog"
)

// DirectTailCalls is true: the x86-64 JIT turns the verifier's direct
// tail calls into jumps the map update code patches (poke descriptors).
const DirectTailCalls = true

// emitTailCall is the BPF_JMP | BPF_TAIL_CALL case: the imm, decoded as
// both JITs do (jit.DecodeTailCall), picks the emitter.
func (c *compiler) emitTailCall(k int, start int, ctx *jitContext) error {
	tc, err := jit.DecodeTailCall(c.fx, c.fn, k, c.o.Kernel, DirectTailCalls)
	if err != nil {
		return err
	}
	ts := jit.TailSite{Site: tc.Site, Kind: tc.Kind, Start: len(c.buf)}
	switch tc.Kind {
	case prog.Direct:
		c.emitTailCallDirect(&ts, start, ctx)
	case prog.Indirect:
		err = c.emitTailCallIndirect(&ts, false, true, 0, ctx)
	case prog.Dynamic:
		err = c.emitTailCallIndirect(&ts, true, true, 0, ctx)
	case prog.Static:
		err = c.emitTailCallIndirect(&ts, true, false, tc.Map.MaxEntries, ctx)
	}
	if err != nil {
		return err
	}
	ts.Out = len(c.buf)
	c.sites = append(c.sites, ts)
	return nil
}

// check records that the next instruction is the branch to out of the
// check guarding against reason.
func (c *compiler) check(ts *jit.TailSite, reason prog.Reason) {
	ts.Checks = append(ts.Checks, jit.Check{Off: len(c.buf), Guard: reason})
}

// rel8 is "label - (prog + 2 - start)": a short branch to the out label
// the previous emission of a sequence of this kind recorded.
func (c *compiler) rel8(label, start int) byte {
	return byte(label - (len(c.buf) + 2 - start))
}

// emitTailCallIndirect is emit_bpf_tail_call_indirect(). patched selects
// the series' form; dynArray its run-time path; maxEntries is the
// immediate of the static path.
func (c *compiler) emitTailCallIndirect(ts *jit.TailSite, patched, dynArray bool, maxEntries uint32, ctx *jitContext) error {
	l := c.o.Layout
	start := len(c.buf)
	label := ctx.tailCallIndirectLabel
	c.emit("mov edx, edx: index = (u32)R3", 0x89, 0xD2)
	switch {
	case !patched:
		c.emit("bounds check: cmp [rsi+max_entries], edx", 0x39, 0x56, byte(l.MaxEntries))
		c.check(ts, prog.FallBounds)
		c.emit("jbe out: index >= max_entries", 0x76, c.rel8(label, start))
	case dynArray:
		c.emit("bounds check: cmp edx, [rsi+max_entries] (dynamic array)", 0x3B, 0x56, byte(l.MaxEntries))
		c.check(ts, prog.FallBounds)
		c.emit("jae out: index >= max_entries", 0x73, c.rel8(label, start))
	default:
		c.emit(fmt.Sprintf("bounds check: cmp edx, %d (max_entries as an immediate)", maxEntries), cat([]byte{0x81, 0xFA}, le32(int64(maxEntries)))...)
		c.check(ts, prog.FallBounds)
		c.emit("jae out: index >= max_entries", 0x73, c.rel8(label, start))
	}
	if c.o.Kernel == prog.Linux61 {
		c.emitTailCallCount61(ts, label, start)
	} else {
		c.emitTailCallCountCheck(ts, label, start)
	}
	// The series computes the displacement in a C int: offsetof(ptrs) plus
	// max_entries * 8, truncated to 32 bits, emitted as disp32.
	if patched && !dynArray {
		disp := int64(int32(uint32(uint64(l.Ptrs) + uint64(maxEntries)*8)))
		c.emit("load cached target: mov rcx, [rsi+rdx*8+ptrs+max_entries*8]", cat([]byte{0x48, 0x8B, 0x8C, 0xD6}, le32(disp))...)
	} else {
		c.emit("load slot: mov rcx, [rsi+rdx*8+ptrs]", cat([]byte{0x48, 0x8B, 0x8C, 0xD6}, le32(int64(l.Ptrs)))...)
	}
	c.emit("empty-slot check: test rcx, rcx", 0x48, 0x85, 0xC9)
	c.check(ts, prog.FallEmpty)
	if c.o.Kernel == prog.Linux61 {
		c.emit("je out: empty slot (already counted)", 0x74, c.rel8(label, start))
		c.emitTailCallUnwind61()
	} else {
		c.emit("je out: empty slot, counter untouched", 0x74, c.rel8(label, start))
		c.emitTailCallUnwind()
	}
	if !patched || dynArray {
		c.emit("mov rcx, [rcx+bpf_func]", 0x48, 0x8B, 0x49, byte(l.BpfFunc))
		c.emit(fmt.Sprintf("add rcx, %d: skip to X86_TAIL_CALL_OFFSET", c.o.TailCallOffset()), 0x48, 0x83, 0xC1, byte(c.o.TailCallOffset()))
	}
	if err := c.emitIndirectJump(ts); err != nil {
		return err
	}
	ctx.tailCallIndirectLabel = len(c.buf) - start
	return nil
}

// emitTailCallDirect is emit_bpf_tail_call_direct(): two 5-byte sites the
// map update code patches (bpf_arch_poke_desc_update).
func (c *compiler) emitTailCallDirect(ts *jit.TailSite, insnStart int, ctx *jitContext) {
	start := len(c.buf)
	label := ctx.tailCallDirectLabel
	ip := c.image + uint64(insnStart)
	if c.o.Kernel == prog.Linux61 {
		c.emitTailCallCount61(ts, label, start)
	} else {
		c.emitTailCallCountCheck(ts, label, start)
	}
	bypass := ip + uint64(len(c.buf)-start)
	target := ip + uint64(label) - X86PatchSize
	ts.Bypass = len(c.buf)
	c.check(ts, prog.FallEmpty)
	jmp := emitJump(target+X86PatchSize, bypass)
	c.emit("poke site: bypass (jmp out while the slot is empty)", jmp[:]...)
	if c.o.Kernel == prog.Linux61 {
		c.emitTailCallUnwind61()
	} else {
		c.emitTailCallUnwind()
	}
	ts.Target = len(c.buf)
	c.emit("poke site: target (jmp bpf_func+X86_TAIL_CALL_OFFSET once filled)", nop5...)
	ctx.tailCallDirectLabel = len(c.buf) - start
}

// emitTailCallCountCheck is the part both emitters share before the slot:
// rax = tcc_ptr; if (*tcc_ptr >= MAX_TAIL_CALL_CNT) goto out.
func (c *compiler) emitTailCallCountCheck(ts *jit.TailSite, label, start int) {
	c.emit("mov rax, [rbp-16-stack]: rax = tcc_ptr", cat([]byte{0x48, 0x8B, 0x85}, le32(c.tccPtrOff()))...)
	c.emit("count check: cmp qword [rax], 33", 0x48, 0x83, 0x38, 0x21)
	c.check(ts, prog.FallLimit)
	c.emit("jae out: MAX_TAIL_CALL_CNT reached", 0x73, c.rel8(label, start))
}

// emitTailCallUnwind is the part both emitters share once the call is
// taken: count it, then undo the frame down to what the callee's
// prologue expects at X86_TAIL_CALL_OFFSET (rsp == rbp, rax = the count or
// the pointer).
func (c *compiler) emitTailCallUnwind() {
	c.emit("count++: add qword [rax], 1", 0x48, 0x83, 0x00, 0x01)
	c.popCalleeRegs()
	c.emit("pop rax: tcc_ptr", 0x58)
	c.emit("pop rax: count (main) or tcc_ptr (subprogram) for the callee", 0x58)
	if c.stackDepth != 0 {
		c.emit("add rsp, stack: unwind the BPF stack", cat([]byte{0x48, 0x81, 0xC4}, le32(int64(jit.RoundUp(c.stackDepth, 8))))...)
	}
}

// tccOff61 is 6.1's tcc_off, -4 - round_up(stack_depth, 8): the upper
// half of the rax the prologue pushed.
func (c *compiler) tccOff61() int64 { return int64(-4 - jit.RoundUp(c.stackDepth, 8)) }

// emitTailCallCount61 is 6.1's counter block, shared by both emitters:
// "if (tail_call_cnt++ >= MAX_TAIL_CALL_CNT) goto out", before the slot is
// looked at, so a call into an empty slot counts.
func (c *compiler) emitTailCallCount61(ts *jit.TailSite, label, start int) {
	c.emit("mov eax, [rbp-4-stack]: tail_call_cnt", cat([]byte{0x8B, 0x85}, le32(c.tccOff61()))...)
	c.emit("count check: cmp eax, 33", 0x83, 0xF8, 0x21)
	c.check(ts, prog.FallLimit)
	c.emit("jae out: MAX_TAIL_CALL_CNT reached", 0x73, c.rel8(label, start))
	c.emit("count++: add eax, 1", 0x83, 0xC0, 0x01)
	c.emit("mov [rbp-4-stack], eax", cat([]byte{0x89, 0x85}, le32(c.tccOff61()))...)
}

// emitTailCallUnwind61 is 6.1's unwind: the callee-saved registers, then
// the pushed rax (the count in its upper half, which the callee's prologue
// pushes again), then the BPF stack.
func (c *compiler) emitTailCallUnwind61() {
	c.popCalleeRegs()
	c.emit("pop rax: the count, for the callee to push", 0x58)
	if c.stackDepth != 0 {
		c.emit("add rsp, stack: unwind the BPF stack", cat([]byte{0x48, 0x81, 0xC4}, le32(int64(jit.RoundUp(c.stackDepth, 8))))...)
	}
}

// Thunks the code jumps to, by the names a Resolver gives addresses for.
// x86_return_thunk is a pointer the kernel sets at boot; __x86_return_thunk
// is its default value, the one named here.
const (
	ThunkRCX    = "__x86_indirect_thunk_rcx"
	ReturnThunk = "__x86_return_thunk"
)

// emitIndirectJump is emit_indirect_jump() for rcx, the register every
// tail call jumps through: what follows the jump depends on the Spectre v2
// mitigation the kernel booted with and on what it was built with. (The
// ITS thunk and the call-depth-tracking thunk are not modelled.)
func (c *compiler) emitIndirectJump(ts *jit.TailSite) error {
	switch {
	case c.o.has(prog.Lfence):
		c.emit("lfence: no speculation past here (spectre_v2=retpoline,lfence)", 0x0F, 0xAE, 0xE8)
		ts.Jump = len(c.buf)
		c.emit("jmp rcx: tail call", 0xFF, 0xE1)
	case c.o.has(prog.Thunk):
		ts.Jump, ts.Thunk = len(c.buf), ThunkRCX
		return c.emitJumpTo(ThunkRCX, "jmp "+ThunkRCX+": tail call through the retpoline")
	default:
		ts.Jump = len(c.buf)
		c.emit("jmp rcx: tail call", 0xFF, 0xE1)
		if c.o.has(prog.Retpoline | prog.SLS) {
			c.emit("int3: stops straight-line speculation past the jump", 0xCC)
		}
	}
	return nil
}

// emitReturn is emit_return(): ret, or a jump to the return thunk on a
// CPU that wants one.
func (c *compiler) emitReturn() error {
	if c.o.has(prog.Rethunk) {
		return c.emitJumpTo(ReturnThunk, "jmp "+ReturnThunk+": return through the return thunk")
	}
	c.emit("ret", 0xC3)
	if c.o.has(prog.SLS) {
		c.emit("int3: stops straight-line speculation past ret", 0xCC)
	}
	return nil
}

// emitJumpTo is emit_jump() to a thunk, from the current position.
func (c *compiler) emitJumpTo(thunk, note string) error {
	to, ok := c.res.Thunk(thunk)
	if !ok {
		return fmt.Errorf("no address for %s", thunk)
	}
	ip := c.image + uint64(len(c.buf))
	if !isSimm32(int64(to) - int64(ip+X86PatchSize)) {
		return fmt.Errorf("%s at %#x out of rel32 range from %#x", thunk, to, ip)
	}
	j := emitJump(to, ip)
	c.emit(note, j[:]...)
	return nil
}
