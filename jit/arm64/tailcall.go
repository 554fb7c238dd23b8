package arm64

import (
	"fmt"

	"tailsim/jit"
	"tailsim/prog"
)

// emitTailCall is the BPF_JMP | BPF_TAIL_CALL case. arm64 has no direct
// tail calls (DirectTailCalls): upstream ignores imm, and the series
// decodes only its map index and dynamic flag, so a site the verifier made
// direct takes the static path (jit.DecodeTailCall).
func (c *compiler) emitTailCall(k int) error {
	tc, err := jit.DecodeTailCall(c.fx, c.fn, k, c.o.Kernel, DirectTailCalls)
	if err != nil {
		return err
	}
	ts := jit.TailSite{Site: tc.Site, Kind: tc.Kind, Start: InsnSize * c.idx}
	switch {
	case c.o.Kernel == prog.Linux61:
		c.emitBPFTailCall61(&ts)
	case tc.Kind == prog.Static:
		c.emitBPFTailCall(&ts, false, tc.Map.MaxEntries)
	default:
		c.emitBPFTailCall(&ts, true, 0)
	}
	ts.Out = InsnSize * c.idx
	c.sites = append(c.sites, ts)
	return nil
}

// check records that the next word is the branch to out of the check
// guarding against reason.
func (c *compiler) check(ts *jit.TailSite, reason prog.Reason) {
	ts.Checks = append(ts.Checks, jit.Check{Off: InsnSize * c.idx, Guard: reason})
}

// emitBPFTailCall is the series' emit_bpf_tail_call(ctx, map_index,
// dyn_array); its dynamic path (dynArray) is upstream's code unchanged, so
// upstream is dynArray = true. maxEntries is used_maps[map_index]'s, for
// the static path. The three branches to out are nop
// placeholders, rewritten once out is known.
func (c *compiler) emitBPFTailCall(ts *jit.TailSite, dynArray bool, maxEntries uint32) {
	l := c.o.Layout
	r2 := bpf2a64[prog.R2]
	r3 := bpf2a64[prog.R3]
	tmp := bpf2a64[tmpReg1]
	prg := bpf2a64[tmpReg2]
	tcc := bpf2a64[tmpReg3]
	ptr := bpf2a64[tcCntPtr]

	branch1 := c.emitBoundsCheck(ts, dynArray, maxEntries)

	// if ((*tail_call_cnt_ptr) >= MAX_TAIL_CALL_CNT) goto out;
	c.emitA64MovI64(tmp, prog.MaxTailCallCnt, "count check: w10 = MAX_TAIL_CALL_CNT (33)")
	c.emit(a64LdrImm(tcc, ptr, 0, ldstSize64), "count check: ldr x12, [x26]: x12 = *tail_call_cnt_ptr")
	c.emit(a64Cmp(true, tcc, tmp), "count check: cmp x12, x10")
	branch2 := c.idx
	c.check(ts, prog.FallLimit)
	c.emit(a64Nop, "branch placeholder fixed up: b.cs out (count >= MAX_TAIL_CALL_CNT)")

	// (*tail_call_cnt_ptr)++;
	c.emit(a64AddI(true, tcc, tcc, 1), "count++: add x12, x12, #1 (stored only for a populated slot)")

	if dynArray {
		c.emitSlotLoad()
	} else {
		// tgt = array->ptrs[max_entries + index]; if (tgt == 0) goto out;
		c.emit(a64Lsl(true, prg, r3, 3), "load cached target: lsl x11, x2, #3: x11 = index * 8")
		// size_t off = offsetof(ptrs) + max_entries * sizeof(void *),
		// passed to emit_a64_add_i()'s s32 imm: the low 32 bits, signed.
		wide := uint64(l.Ptrs) + uint64(maxEntries)*8
		off := int32(uint32(wide))
		note := fmt.Sprintf("load cached target: x11 += ptrs + max_entries*8 = %#x", wide)
		if int64(off) != int64(wide) {
			note += fmt.Sprintf(", as s32 %d", off)
		}
		c.emitA64AddI(true, prg, prg, tmp, off, note)
		c.emit(a64LdrReg(prg, r2, prg, ldstSize64), "load cached target: ldr x11, [x1, x11]: x11 = array->ptrs[max_entries + index]")
	}
	branch3 := c.idx
	c.check(ts, prog.FallEmpty)
	empty := "branch placeholder fixed up: cbz x11, out (empty slot: counter untouched)"
	if !dynArray {
		empty = "branch placeholder fixed up: cbz x11, out (no cached target: counter untouched)"
	}
	c.emit(a64Nop, empty)

	// Update tail_call_cnt if the slot is populated.
	c.emit(a64StrImm(tcc, ptr, 0, ldstSize64), "count++: str x12, [x26]")

	// restore SP
	if c.stackSize != 0 {
		c.emit(a64AddI(true, regSP, regSP, int64(c.stackSize)), fmt.Sprintf("add sp, sp, #%d: unwind the BPF stack", c.stackSize))
	}
	c.popCalleeRegs()

	if dynArray {
		c.emitTargetAddr()
		ts.Jump = InsnSize * c.idx
		c.emit(a64Br(tmp), "tail call: br x10")
	} else {
		// goto *tgt;
		ts.Jump = InsnSize * c.idx
		c.emit(a64Br(prg), "tail call: br x11 (cached bpf_func + PROLOGUE_OFFSET*4)")
	}

	if c.hasImage {
		c.patch(branch1, a64BCond(condCS, c.idx-branch1))
		c.patch(branch2, a64BCond(condCS, c.idx-branch2))
		c.patch(branch3, a64Cbz(true, prg, c.idx-branch3))
	}
}

// emitBoundsCheck is emit_bpf_tail_call()'s first check, from max_entries
// in the array (dynArray, and every version before the series) or as an
// immediate; it returns the index of its branch placeholder.
func (c *compiler) emitBoundsCheck(ts *jit.TailSite, dynArray bool, maxEntries uint32) int {
	l := c.o.Layout
	r2, r3, tmp := bpf2a64[prog.R2], bpf2a64[prog.R3], bpf2a64[tmpReg1]
	// if (index >= array->map.max_entries) goto out;
	if dynArray {
		c.emitA64MovI64(tmp, uint64(l.MaxEntries), fmt.Sprintf("bounds check: w10 = offsetof(struct bpf_array, map.max_entries) = %#x", l.MaxEntries))
		c.emit(a64LdrReg(tmp, r2, tmp, ldstSize32), "bounds check: ldr w10, [x1, x10]: w10 = array->map.max_entries")
	} else {
		c.emitA64MovI64(tmp, uint64(maxEntries), fmt.Sprintf("bounds check: w10 = max_entries = %d (immediate, static path)", maxEntries))
	}
	c.emit(a64Mov(false, r3, r3), "mov w2, w2: index = (u32)R3")
	c.emit(a64Cmp(false, r3, tmp), "bounds check: cmp w2, w10")
	branch := c.idx
	c.check(ts, prog.FallBounds)
	c.emit(a64Nop, "branch placeholder fixed up: b.cs out (index >= max_entries)")
	return branch
}

// emitSlotLoad is "prog = array->ptrs[index]" into x11.
func (c *compiler) emitSlotLoad() {
	l := c.o.Layout
	r2, r3, tmp, prg := bpf2a64[prog.R2], bpf2a64[prog.R3], bpf2a64[tmpReg1], bpf2a64[tmpReg2]
	c.emitA64MovI64(tmp, uint64(l.Ptrs), fmt.Sprintf("load slot: x10 = offsetof(struct bpf_array, ptrs) = %#x", l.Ptrs))
	c.emit(a64Add(true, tmp, r2, tmp), "load slot: add x10, x1, x10: x10 = array->ptrs")
	c.emit(a64Lsl(true, prg, r3, 3), "load slot: lsl x11, x2, #3: x11 = index * 8")
	c.emit(a64LdrReg(prg, tmp, prg, ldstSize64), "load slot: ldr x11, [x10, x11]: x11 = array->ptrs[index]")
}

// emitTargetAddr is "x10 = prog->bpf_func + PROLOGUE_OFFSET * 4".
func (c *compiler) emitTargetAddr() {
	l := c.o.Layout
	tmp, prg := bpf2a64[tmpReg1], bpf2a64[tmpReg2]
	c.emitA64MovI64(tmp, uint64(l.BpfFunc), fmt.Sprintf("x10 = offsetof(struct bpf_prog, bpf_func) = %#x", l.BpfFunc))
	c.emit(a64LdrReg(tmp, prg, tmp, ldstSize64), "ldr x10, [x11, x10]: x10 = prog->bpf_func")
	c.emit(a64AddI(true, tmp, tmp, int64(InsnSize*c.o.PrologueOffset())),
		fmt.Sprintf("add x10, x10, #%d: skip to PROLOGUE_OFFSET", InsnSize*c.o.PrologueOffset()))
}
