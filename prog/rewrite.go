package prog

import (
	"math/bits"
	"slices"
)

// The verifier's rewrites of the instruction stream that the JITs and the
// reference model see (kernel/bpf/verifier.c do_misc_fixups(), patched in
// with bpf_patch_insn_data()). Slot numbers after a rewritten instruction
// are those of the rewritten program, as bpftool's "xlated" dump shows.

// rewriteProgram applies the rewrites to every function of p and links
// the program again (bpf2bpf call offsets move with the slots). It
// reports whether anything changed: most programs need no rewrite, and
// then their analysis stands.
func rewriteProgram(p *Program, fx *Fixup, l Layout, opts FixupOptions) (bool, error) {
	changed := false
	for fi, f := range p.Funcs {
		// The fix-up's lookups are by the original index: count the
		// instructions added before each.
		added := 0
		for i := 0; i < len(f.Insns); i++ {
			patch := divModGuard(f.Insns[i])
			if patch == nil {
				patch = inlineJiffies(f.Insns[i])
			}
			// x86-64's JIT learned per-CPU loads in v6.10; 6.1 calls the helper.
			if patch == nil && opts.Arch == "x86_64" && opts.Kernel != Linux61 {
				patch = inlineSmpProcessorID(f.Insns[i])
			}
			if m := fx.Lookups[[2]int{fi, i - added}]; patch == nil && m != nil {
				patch = arrayMapGenLookup(f.Insns[i], m, l, opts.Unprivileged)
			}
			if patch != nil {
				// The C line heads the instructions that replace its own.
				src := f.Insns[i].Source
				for k := range patch {
					patch[k].Source = ""
				}
				patch[0].Source = src
				if err := f.replace(i, patch); err != nil {
					return false, err
				}
				i += len(patch) - 1
				added += len(patch) - 1
				changed = true
			}
		}
	}
	if changed {
		p.link()
	}
	return changed, nil
}

// jiffiesImm is JiffiesAddr as an ld_imm64's imm.
var jiffiesImm = func() int64 { a := uint64(JiffiesAddr); return int64(a) }()

// inlineJiffies is do_misc_fixups()' inlining of bpf_jiffies64() for a
// JIT on a 64-bit kernel (both modelled JITs): r0 = &jiffies ll; r0 =
// *(u64 *)(r0 + 0). Unlike the call, it leaves R1–R5 as they were; the
// verifier checked the program with the call, so nothing reads them.
func inlineJiffies(ins Instruction) []Instruction {
	if !ins.IsHelperCall() || ins.Imm != HelperJiffies64 {
		return nil
	}
	return []Instruction{
		{OpCode: LoadImm64(), Dst: R0, Imm: jiffiesImm, Line: ins.Line, Labels: ins.Labels, Comment: "bpf_jiffies64() inlined: r0 = &jiffies"},
		{OpCode: LoadMem(SizeDW), Dst: R0, Src: R0, Line: ins.Line, Comment: "r0 = jiffies"},
	}
}

// inlineSmpProcessorID is do_misc_fixups()' inlining of
// bpf_get_smp_processor_id() on x86-64 (CONFIG_SMP, a JIT with per-CPU
// instructions): r0 = (u32)&cpu_number, sign-extended to the symbol; r0 +=
// this CPU's per-CPU offset; r0 = *(u32 *)(r0 + 0). arm64's JIT inlines
// the call itself instead (jit/arm64).
func inlineSmpProcessorID(ins Instruction) []Instruction {
	if !ins.IsHelperCall() || ins.Imm != HelperSmpProcessorID {
		return nil
	}
	return []Instruction{
		{OpCode: ALU64(OpMov, SourceK), Dst: R0, Imm: Sext32(X86CPUNumber), Line: ins.Line, Labels: ins.Labels,
			Comment: "bpf_get_smp_processor_id() inlined: r0 = &cpu_number"},
		{OpCode: ALU64(OpMov, SourceX), Dst: R0, Src: R0, Off: AddrPercpu, Line: ins.Line, Comment: "r0 = this CPU's cpu_number"},
		{OpCode: LoadMem(SizeW), Dst: R0, Src: R0, Line: ins.Line, Comment: "r0 = the CPU number"},
	}
}

// arrayMapGenLookup is array_map_gen_lookup(), which do_misc_fixups()
// puts where a JITed program on a 64-bit kernel calls
// bpf_map_lookup_elem() on an array map it knows: r1 = &array->value[0];
// r0 = the key (a u32 the program points R2 at); out of bounds, NULL;
// else r0 = r1 + key * elem_size. An unprivileged program's map also
// masks the key (!bypass_spec_v1). R1 is moved and R2–R5 are left as
// they were; the program was verified with the call, so nothing reads
// them.
func arrayMapGenLookup(ins Instruction, m *ArrayMap, l Layout, unprivileged bool) []Instruction {
	c := func(ins Instruction, comment string) Instruction { ins.Comment = comment; return ins }
	out := []Instruction{
		c(Instruction{OpCode: ALU64(OpAdd, SourceK), Dst: R1, Imm: int64(l.Ptrs), Line: ins.Line, Labels: ins.Labels},
			"bpf_map_lookup_elem() inlined: r1 = &array->value[0]"),
		c(Instruction{OpCode: LoadMem(SizeW), Dst: R0, Src: R2, Line: ins.Line}, "r0 = the key"),
	}
	skip := int16(3)
	if unprivileged {
		skip = 4
	}
	out = append(out, c(Instruction{OpCode: Jmp(OpJGE, SourceK), Dst: R0, Off: skip, Imm: int64(int32(m.MaxEntries)), Line: ins.Line}, "out of bounds: NULL"))
	if unprivileged {
		out = append(out, c(Instruction{OpCode: ALU32(OpAnd, SourceK), Dst: R0, Imm: int64(int32(m.IndexMask())), Line: ins.Line}, "key &= index_mask"))
	}
	if es := m.ElemSize(); es&(es-1) == 0 {
		out = append(out, Instruction{OpCode: ALU64(OpLsh, SourceK), Dst: R0, Imm: int64(bits.TrailingZeros32(es)), Line: ins.Line})
	} else {
		out = append(out, Instruction{OpCode: ALU64(OpMul, SourceK), Dst: R0, Imm: int64(es), Line: ins.Line})
	}
	return append(out,
		c(Instruction{OpCode: ALU64(OpAdd, SourceX), Dst: R0, Src: R1, Line: ins.Line}, "r0 = &array->value[key * elem_size]"),
		Instruction{OpCode: Jmp(OpJA, SourceK), Off: 1, Line: ins.Line},
		Instruction{OpCode: ALU64(OpMov, SourceK), Dst: R0, Imm: 0, Line: ins.Line})
}

// divModGuard is the verifier's guard around a division or modulo by a
// register ("Make divide-by-zero exceptions impossible"): x / 0 is 0, and
// x % 0 is x (a 32-bit one zero-extended), as the interpreter computes
// them, so the JITs never meet a zero divisor. Nil when ins needs none.
func divModGuard(ins Instruction) []Instruction {
	op := ins.OpCode
	if !op.IsALU() || op.Source() != SourceX || op.ALUOp() != OpDiv && op.ALUOp() != OpMod {
		return nil
	}
	is64 := op.Class() == ClassALU64
	jmp := Jmp32
	if is64 {
		jmp = Jmp
	}
	at := func(i Instruction) Instruction {
		i.Line = ins.Line
		return i
	}
	ja := func(off int16) Instruction { return at(Instruction{OpCode: Jmp(OpJA, SourceK), Off: off}) }
	orig := ins
	orig.Labels = nil
	var patch []Instruction
	if op.ALUOp() == OpDiv {
		// [R,W]x div 0 -> 0
		patch = []Instruction{
			at(Instruction{OpCode: jmp(OpJNE, SourceK), Dst: ins.Src, Off: 2}),
			at(Instruction{OpCode: ALU32(OpXor, SourceX), Dst: ins.Dst, Src: ins.Dst}),
			ja(1),
			orig,
		}
	} else {
		// [R,W]x mod 0 -> [R,W]x
		off := int16(1)
		if !is64 {
			off = 2
		}
		patch = []Instruction{at(Instruction{OpCode: jmp(OpJEQ, SourceK), Dst: ins.Src, Off: off}), orig}
		if !is64 {
			patch = append(patch, ja(1), at(Instruction{OpCode: ALU32(OpMov, SourceX), Dst: ins.Dst, Src: ins.Dst}))
		}
	}
	// A jump to the rewritten instruction lands on the patch's start.
	patch[0].Labels = ins.Labels
	return patch
}

// replace puts with in the place of instruction i and moves every other
// jump's displacement as bpf_patch_insn_data() does: a jump to i lands on
// with's first instruction, one past i moves with what follows. with's
// own jumps are relative to it and stay.
func (f *Function) replace(i int, with []Instruction) error {
	oldPos, _ := f.Slots()
	added := 0
	for _, w := range with {
		added += w.Slots()
	}
	added -= f.Insns[i].Slots()
	// Old targets, as slot positions, of the jumps outside the patch.
	target := map[int]int{}
	for j, ins := range f.Insns {
		if j != i && ins.OpCode.HasJumpOffset() {
			target[j] = oldPos[j] + ins.Slots() + int(ins.Off)
		}
	}
	out := make([]Instruction, 0, len(f.Insns)+len(with)-1)
	out = append(out, f.Insns[:i]...)
	out = append(out, with...)
	out = append(out, f.Insns[i+1:]...)
	f.Insns = out
	newPos, _ := f.Slots()
	for j, t := range target {
		nj := j
		if j > i {
			nj = j + len(with) - 1
		}
		if t > oldPos[i] {
			t += added
		}
		off := t - (newPos[nj] + f.Insns[nj].Slots())
		if off != int(int16(off)) {
			// bpf_adj_branches() refuses it too: "insn %d cannot be
			// patched due to 16-bit range".
			return &PosError{Line: f.Insns[nj].Line, Msg: "cannot be patched due to 16-bit range: a jump's offset leaves it once the verifier's rewrites are in"}
		}
		f.Insns[nj].Off = int16(off)
	}
	return nil
}

// IndexMask is a prog array's index_mask, roundup_pow_of_two(max_entries)
// - 1 (array_map_alloc()).
func IndexMask(maxEntries uint32) uint32 {
	return uint32(uint64(1)<<bits.Len32(maxEntries-1) - 1)
}

// UnprivIndex is the slot an unprivileged tail call with R3 = r3 reads
// once the verifier's two instructions have run, and false when the
// first skips the call: it compares all of R3 with max_entries as a
// sign-extended imm.
func UnprivIndex(r3 uint64, maxEntries uint32) (uint32, bool) {
	if r3 >= uint64(int64(int32(maxEntries))) {
		return 0, false
	}
	return uint32(r3) & IndexMask(maxEntries), true
}

// unprivTailCalls is do_misc_fixups() on an unprivileged program's tail
// calls: a site two maps reach is refused ("tail_call abusing map_ptr"),
// and before every other one go
//
//	if r3 >= max_entries goto +2   (all 64 bits of R3: past the call)
//	w3 &= index_mask               (against out-of-bounds speculation)
//
// index_mask being roundup_pow_of_two(max_entries) - 1 (array_map_alloc()).
// So an index whose high half is set falls through where a privileged
// program's JIT would take slot (u32)index.
func unprivTailCalls(p *Program, fx *Fixup) error {
	// From the last site of each function, so earlier positions hold.
	sites := slices.Clone(fx.Sites)
	slices.SortFunc(sites, func(a, b *TailCallSite) int {
		if a.Func != b.Func {
			return a.Func - b.Func
		}
		return b.Insn - a.Insn
	})
	for _, s := range sites {
		if len(s.Maps) == 0 {
			continue
		}
		if s.Poisoned() {
			return &PosError{Line: s.Loc.Line, Msg: "tail_call abusing map_ptr (an unprivileged tail call must meet one map)"}
		}
		f := p.Funcs[s.Func]
		call := f.Insns[s.Insn]
		max := s.Maps[0].MaxEntries
		at := func(i Instruction) Instruction {
			i.Line = call.Line
			return i
		}
		patch := []Instruction{
			at(Instruction{OpCode: Jmp(OpJGE, SourceK), Dst: R3, Imm: int64(int32(max)), Off: 2}),
			at(Instruction{OpCode: ALU32(OpAnd, SourceK), Dst: R3, Imm: int64(int32(IndexMask(max)))}),
			call,
		}
		patch[0].Labels, patch[2].Labels = call.Labels, nil
		if err := f.replace(s.Insn, patch); err != nil {
			return err
		}
	}
	p.link()
	return nil
}
