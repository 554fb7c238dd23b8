package prog

import (
	"fmt"
	"slices"
	"strings"
)

// Limits of the patched series' tail-call imm fields.
const (
	MaxUsedMaps = 64   // MAX_USED_MAPS: map index ≤ 63
	MaxPokes    = 1024 // poke table size: poke index + 1 ≤ 1024
)

// MaxInsns is the size limit bpf_prog_load() puts on a privileged program:
// BPF_COMPLEXITY_LIMIT_INSNS instructions (struct bpf_insn slots, main
// function and subprograms together; an unprivileged program gets
// BPF_MAXINSNS, 4096). The verifier's limit of a million processed
// instructions is not modelled: tailsim does not walk every path.
const MaxInsns = 1_000_000

// SiteKind is how a JIT reaches the target of one tail-call site.
type SiteKind uint8

//go:generate go tool stringer -type=SiteKind -linecomment -output=sitekind_string.go

const (
	// Indirect: upstream's run-time loads of max_entries, ptrs[i] and bpf_func.
	Indirect SiteKind = iota + 1 // indirect
	// Direct: x86's patched jump, chosen by the verifier for a constant key.
	Direct // direct
	// Static: the patched series' path with max_entries as an immediate and
	// the target read from the cached slot.
	Static // static
	// Dynamic: the patched series' path for a poisoned map pointer; the same
	// run-time loads as Indirect.
	Dynamic // dynamic
)

// TailCallSite is what the verifier-like fix-up learned about one tail call,
// and its decision: whether the call is direct, and so which path each
// variant's JIT takes (Kind).
type TailCallSite struct {
	Func, Insn int // position in Program.Funcs and Function.Insns
	Loc        Loc
	// Maps are the prog arrays that can reach R2 here; more than one means
	// the verifier's map pointer is poisoned.
	Maps []*ProgArray
	// KeyConst is set when R3 holds the same constant, below max_entries, on
	// every path (the verifier's map key state is not poisoned).
	KeyConst bool
	Key      uint64
	// Direct is set when the verifier turns the site into a direct call.
	Direct    bool
	PokeIndex int // index into the poke table; -1 unless Direct
	MapIndex  int // index of Maps[0] in the program's used_maps
	// ImmMap is the array whose max_entries the patched static path encodes
	// (used_maps[MapIndex]).
	ImmMap *ProgArray
}

// Poisoned reports whether more than one map reaches the site.
func (s *TailCallSite) Poisoned() bool { return len(s.Maps) > 1 }

// Kind is how the given variant's JIT implements the site: the one place
// the path is decided. directTailCalls is the backend's capability
// (Backend.DirectTailCalls): the verifier marks a site direct for every
// arch, and a JIT without poke support (arm64) ignores the mark and takes
// the path the variant gives a non-direct site.
func (s *TailCallSite) Kind(v Kernel, directTailCalls bool) SiteKind {
	switch {
	case s.Direct && directTailCalls:
		return Direct
	case !v.Series():
		return Indirect
	case s.Poisoned():
		return Dynamic
	}
	return Static
}

// Imm returns the imm the verifier leaves in the tail-call instruction for
// the given variant.
func (s *TailCallSite) Imm(v Kernel) (int32, error) {
	poke := 0
	if s.Direct {
		poke = s.PokeIndex + 1
	}
	if !v.Series() {
		return int32(poke), nil
	}
	dyn := 0
	if s.Poisoned() {
		dyn = 1
	}
	return EncodeTailCallImm(s.MapIndex, dyn, poke)
}

// EncodeTailCallImm packs the patched series' imm: bits 0–7 the map index,
// bits 8–15 the dynamic flag, bits 16–31 the poke index + 1.
func EncodeTailCallImm(mapIndex, dynamic, pokePlusOne int) (int32, error) {
	switch {
	case mapIndex < 0 || mapIndex >= MaxUsedMaps:
		return 0, fmt.Errorf("tail-call imm: map index %d outside 0..%d", mapIndex, MaxUsedMaps-1)
	case dynamic != 0 && dynamic != 1:
		return 0, fmt.Errorf("tail-call imm: dynamic flag %d is not 0 or 1", dynamic)
	case pokePlusOne < 0 || pokePlusOne > MaxPokes:
		return 0, fmt.Errorf("tail-call imm: poke index + 1 = %d outside 0..%d", pokePlusOne, MaxPokes)
	}
	return int32(uint32(mapIndex) | uint32(dynamic)<<8 | uint32(pokePlusOne)<<16), nil
}

// DecodeTailCallImm is the inverse of EncodeTailCallImm; it rejects values
// whose fields exceed their limits.
func DecodeTailCallImm(imm int32) (mapIndex, dynamic, pokePlusOne int, err error) {
	u := uint32(imm)
	mapIndex, dynamic, pokePlusOne = int(u&0xff), int(u>>8&0xff), int(u>>16)
	_, err = EncodeTailCallImm(mapIndex, dynamic, pokePlusOne)
	return
}

// FixupOptions model the conditions the verifier's do_misc_fixups() tests.
type FixupOptions struct {
	// NoVerifier models lib/test_bpf, which builds programs without the
	// verifier: upstream sites stay indirect (imm 0); patched sites take the
	// static path with map index 0.
	NoVerifier bool
	// NoDirect models a blinded program: no direct calls.
	NoDirect bool
	// Unprivileged models a program loaded without CAP_BPF (the
	// verifier's env->bypass_spec_v1 false): no direct calls, and before
	// each tail call a bounds check of all of R3 and a mask of the index
	// (see World.Fix); a site two maps reach is refused.
	Unprivileged bool
	// Arch is the arch whose kernel verifies the programs ("x86_64",
	// "arm64"; "" for the reference model alone): the verifier inlines
	// some helpers on some arches only.
	Arch string
	// Kernel is the version whose verifier runs: what it inlines differs.
	Kernel Kernel
}

// Fixup is the verifier-like analysis of one program's tail-call sites.
type Fixup struct {
	// UsedMaps is the verifier's used_maps[]: every map the program
	// loads, prog arrays and array maps, in the order it first does.
	UsedMaps []Map
	Sites    []*TailCallSite
	// Lookups are the bpf_map_lookup_elem() calls whose R1 holds one array
	// map on every path: the verifier inlines them (map_gen_lookup).
	Lookups map[[2]int]*ArrayMap
}

// Site returns the site at a function and instruction index, or nil.
func (fx *Fixup) Site(fn, insn int) *TailCallSite {
	for _, s := range fx.Sites {
		if s.Func == fn && s.Insn == insn {
			return s
		}
	}
	return nil
}

// FixupProgram runs the analysis: which maps reach R2 and which keys reach
// R3 at every tail call, merged over all paths and all call sites of each
// subprogram, then the direct/indirect and imm decisions.
func FixupProgram(p *Program, maps map[string]*ProgArray, opts FixupOptions) (*Fixup, error) {
	return FixupProgramWith(p, maps, nil, opts)
}

// FixupProgramWith is FixupProgram for a program that may also use array
// maps.
func FixupProgramWith(p *Program, maps map[string]*ProgArray, arrays map[string]*ArrayMap, opts FixupOptions) (*Fixup, error) {
	size := 0
	for _, f := range p.Funcs {
		_, n := f.Slots()
		size += n
	}
	if size > MaxInsns {
		return nil, &PosError{Line: p.Line, Msg: fmt.Sprintf("program %s has %d instructions, more than the kernel's limit of %d (BPF_COMPLEXITY_LIMIT_INSNS; bpf_prog_load() returns E2BIG)", p.Name, size, MaxInsns)}
	}
	if !opts.NoVerifier {
		if err := checkRefusals(p); err != nil {
			return nil, err
		}
	}
	fx := &Fixup{}
	for _, f := range p.Funcs {
		for _, ins := range f.Insns {
			if !ins.IsMapLoad() && !ins.IsMapValueLoad() {
				continue
			}
			var m Map
			if a, ok := maps[ins.Reference]; ok {
				m = a
			} else if a, ok := arrays[ins.Reference]; ok {
				m = a
			} else {
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("unknown map %q", ins.Reference)}
			}
			if a, ok := m.(*ArrayMap); ins.IsMapValueLoad() && (!ok || a.MaxEntries != 1 || uint64(ins.Imm) >= uint64(a.ValueSize)) {
				// resolve_pseudo_ldimm64(): map_direct_value_addr() is
				// array_map_direct_value_addr(), for an array of one
				// element (global data), then the offset check.
				switch {
				case !ok:
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("map_value[%s]: %s is a prog array, whose values a program cannot address (no direct value access)", ins.Reference, ins.Reference)}
				case a.MaxEntries != 1:
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("map_value[%s]: direct value access needs an array of one element, not %d (ENOTSUPP)", ins.Reference, a.MaxEntries)}
				}
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("map_value[%s] + %d: invalid access to map value pointer, value_size=%d off=%d", ins.Reference, ins.Imm, a.ValueSize, ins.Imm)}
			}
			if !slices.Contains(fx.UsedMaps, m) {
				if len(fx.UsedMaps) == MaxUsedMaps {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("program %s uses more than %d maps", p.Name, MaxUsedMaps)}
				}
				fx.UsedMaps = append(fx.UsedMaps, m)
			}
		}
	}
	states, err := analyseReturns(p, !opts.NoVerifier, opts.Kernel)
	if err != nil {
		return nil, err
	}
	if !opts.NoVerifier {
		if err := checkMaxStackDepth(p, opts.Kernel.frameRound, 0, 0, 0, p.Funcs[0].Line); err != nil {
			return nil, err
		}
	}
	if !opts.NoVerifier {
		// check_cfg() rejects unreachable instructions, so the JITs never
		// see a site the analysis could not reach.
		for fi, f := range p.Funcs {
			for ii, st := range states[fi] {
				if st == nil {
					return nil, &PosError{Line: f.Insns[ii].Line, Msg: fmt.Sprintf("unreachable instruction in %s (the verifier rejects dead code)", f.Name)}
				}
			}
		}
	}
	if !opts.NoVerifier {
		// check_map_func_compatibility(): a prog array is for
		// bpf_tail_call only.
		for fi, f := range p.Funcs {
			for ii, ins := range f.Insns {
				if !ins.IsHelperCall() || ins.Imm < HelperMapLookup || ins.Imm > HelperMapDelete {
					continue
				}
				if r1 := states[fi][ii][R1]; r1.kind == aMaps {
					for _, name := range r1.maps {
						if maps[name] != nil {
							h, _ := HelperByID(int32(ins.Imm))
							return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("cannot pass map_type 3 into func bpf_%s#%d (%s is a prog array)", h.Name, ins.Imm, name)}
						}
					}
				}
			}
		}
		// do_misc_fixups() inlines a lookup whose map it knows (not
		// poisoned by two maps reaching the call).
		for fi, f := range p.Funcs {
			for ii, ins := range f.Insns {
				if !ins.IsHelperCall() || ins.Imm != HelperMapLookup {
					continue
				}
				if r1 := states[fi][ii][R1]; r1.kind == aMaps && len(r1.maps) == 1 && arrays[r1.maps[0]] != nil {
					if fx.Lookups == nil {
						fx.Lookups = map[[2]int]*ArrayMap{}
					}
					fx.Lookups[[2]int{fi, ii}] = arrays[r1.maps[0]]
				}
			}
		}
	}
	for fi, f := range p.Funcs {
		for ii, ins := range f.Insns {
			if !ins.IsTailCall() {
				continue
			}
			st := states[fi][ii]
			site := &TailCallSite{Func: fi, Insn: ii, Loc: p.Loc(fi, ii), PokeIndex: -1}
			fx.Sites = append(fx.Sites, site)
			if opts.NoVerifier {
				if len(fx.UsedMaps) == 0 {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("tail call at %s in a program that loads no map", site.Loc)}
				}
				i := slices.IndexFunc(fx.UsedMaps, func(m Map) bool { _, ok := m.(*ProgArray); return ok })
				if i < 0 {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("tail call at %s in a program that loads no prog array", site.Loc)}
				}
				site.Maps = []*ProgArray{fx.UsedMaps[i].(*ProgArray)}
				site.ImmMap = site.Maps[0]
				continue
			}
			r2, r3 := st[R2], st[R3]
			if r2.kind != aMaps {
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("tail call at %s: R2 does not hold a prog array on every path", site.Loc)}
			}
			for _, name := range r2.maps {
				a, ok := maps[name]
				if !ok {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("tail call at %s: R2 may hold array map %s, not a prog array (the verifier: cannot pass map_type 2 into func bpf_tail_call#12)", site.Loc, name)}
				}
				site.Maps = append(site.Maps, a)
			}
			if site.Poisoned() {
				// The verifier keeps the map of the last path it explored
				// to this site; the patched imm encodes its index.
				if last := lastExploredMap(p.Funcs[fi], ii); last != "" {
					i := slices.IndexFunc(site.Maps, func(m *ProgArray) bool { return m.Name == last })
					if i > 0 {
						site.Maps[0], site.Maps[i] = site.Maps[i], site.Maps[0]
					}
				}
			}
			site.MapIndex = slices.Index(fx.UsedMaps, Map(site.Maps[0]))
			site.ImmMap = site.Maps[0]
			if !site.Poisoned() && r3.kind == aConst && r3.c < uint64(site.Maps[0].MaxEntries) {
				site.KeyConst, site.Key = true, r3.c
			}
			if site.KeyConst && !opts.NoDirect && !opts.Unprivileged {
				n := 0
				for _, s := range fx.Sites {
					if s.Direct {
						n++
					}
				}
				if n == MaxPokes {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("tail call at %s: more than %d direct tail calls", site.Loc, MaxPokes)}
				}
				site.Direct, site.PokeIndex = true, n
			}
		}
	}
	return fx, nil
}

// The abstract values of the analysis: unknown, one constant, or a set of maps.
type akind uint8

const (
	aUnknown akind = iota
	aConst
	aMaps
	aUninit // never written on some path: reading it is the verifier's "!read_ok"
	// aStack is the function's frame pointer plus c (two's complement):
	// R10, and copies of it moved by constants, so that stack accesses
	// through them are checked as the verifier checks them.
	aStack
	// aCtx is the ctx pointer plus c:
	// R1 at the main function's entry, followed as the verifier follows
	// PTR_TO_CTX (ctxcheck.go).
	aCtx
)

type aval struct {
	kind akind
	c    uint64
	maps []string // sorted
}

func join(a, b aval) aval {
	switch {
	case a.kind == aUninit || b.kind == aUninit:
		return aval{kind: aUninit}
	case (a.kind == aConst || a.kind == aStack || a.kind == aCtx) && a.kind == b.kind && a.c == b.c:
		return a
	case a.kind == aMaps && b.kind == aMaps:
		m := slices.Clone(a.maps)
		for _, x := range b.maps {
			if !slices.Contains(m, x) {
				m = append(m, x)
			}
		}
		slices.Sort(m)
		return aval{kind: aMaps, maps: m}
	}
	return aval{}
}

func (a aval) equal(b aval) bool {
	return a.kind == b.kind && a.c == b.c && slices.Equal(a.maps, b.maps)
}

type astate = *[11]aval

// analyse computes, for every instruction of every function, the join of the
// register states on entry; nil marks unreachable instructions. With strict
// set it also rejects reads of registers that are not written on every path
// (R0 after a tail call, R1–R5 after any call), as the verifier does; that
// is what lets backends disagree about dead registers without it mattering.
// analyseReturns is analyse with what each subprogram leaves in R0: a
// subprogram may exit with R0 unset (only the main function's return
// value is checked), and then its caller finds R0 unset after the call
// (prepare_func_exit() copies the callee's R0), which reading refuses. The
// functions that may return R0 unset are found by analysing again until
// they stop changing, at most once per function.
func analyseReturns(p *Program, strict bool, kernel Kernel) ([][]astate, error) {
	unsetR0 := map[int]bool{}
	for {
		states, err := analyse(p, strict, kernel, unsetR0)
		if err != nil {
			return nil, err
		}
		changed := false
		for fi, f := range p.Funcs {
			for ii, ins := range f.Insns {
				if st := states[fi][ii]; fi != 0 && st != nil && ins.OpCode.IsExit() && st[R0].kind == aUninit && !unsetR0[fi] {
					unsetR0[fi], changed = true, true
				}
			}
		}
		if !changed {
			return states, nil
		}
	}
}

// analyse runs the abstract interpretation for kernel's verifier; unsetR0
// holds the functions that may return with R0 unset.
func analyse(p *Program, strict bool, kernel Kernel, unsetR0 map[int]bool) ([][]astate, error) {
	states := make([][]astate, len(p.Funcs))
	for i, f := range p.Funcs {
		states[i] = make([]astate, len(f.Insns))
	}
	type item struct{ fn, insn int }
	var work []item
	merge := func(fn, insn int, in *[11]aval) {
		cur := states[fn][insn]
		if cur == nil {
			cp := *in
			states[fn][insn] = &cp
			work = append(work, item{fn, insn})
			return
		}
		changed := false
		for r := range cur {
			j := join(cur[r], in[r])
			if !j.equal(cur[r]) {
				cur[r], changed = j, true
			}
		}
		if changed {
			work = append(work, item{fn, insn})
		}
	}
	uninit := aval{kind: aUninit}
	entry := [11]aval{}
	for r := range entry {
		entry[r] = uninit
	}
	entry[R1], entry[R10] = aval{}, aval{kind: aStack}
	if strict {
		entry[R1] = aval{kind: aCtx}
	}
	merge(0, 0, &entry)
	// Each function's slot positions, computed once: recomputing them per
	// work item made the analysis quadratic (40 000 instructions: 78 s).
	slotPos := make([][]int, len(p.Funcs))
	slotIndex := make([]map[int]int, len(p.Funcs))
	for fi, f := range p.Funcs {
		slotPos[fi], _ = f.Slots()
		slotIndex[fi] = make(map[int]int, len(f.Insns))
		for i, s := range slotPos[fi] {
			slotIndex[fi][s] = i
		}
	}
	for len(work) > 0 {
		it := work[len(work)-1]
		work = work[:len(work)-1]
		f := p.Funcs[it.fn]
		if len(f.Insns) == 0 {
			continue
		}
		ins := f.Insns[it.insn]
		st := *states[it.fn][it.insn]
		next := it.insn + 1
		pos := slotPos[it.fn]
		// clobber models a call: R1–R5 dead, R0 the result (dead after a
		// tail call, which returns nothing).
		clobber := func(r0 akind) {
			for r := R1; r <= R5; r++ {
				st[r] = uninit
			}
			st[R0] = aval{kind: r0}
		}
		if strict {
			for _, r := range readsOf(ins) {
				// A subprogram may return without setting R0
				// (process_bpf_exit_full() checks the return value of
				// the main function only): clang drops the value of a
				// static function whose callers ignore it.
				if r == R0 && ins.OpCode.IsExit() && it.fn != 0 {
					continue
				}
				if st[r].kind == aUninit {
					return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("%s is read before it is written on some path (verifier: R%d !read_ok)", r, r)}
				}
			}
		}
		switch op := ins.OpCode; {
		case op.IsALU():
			d := &st[ins.Dst]
			is64 := op.Class() == ClassALU64
			var src aval
			if op.Source() == SourceX {
				src = st[ins.Src]
			} else {
				src = aval{kind: aConst, c: uint64(int64(int32(ins.Imm)))}
			}
			if v, ok, err := ctxALU(ins, *d, src); err != nil && strict {
				return nil, err
			} else if ok {
				*d = v
				break
			}
			switch {
			case op.ALUOp() == OpMov && is64:
				*d = src
			case d.kind == aStack && src.kind == aConst && is64 && (op.ALUOp() == OpAdd || op.ALUOp() == OpSub):
				c := src.c
				if op.ALUOp() == OpSub {
					c = -c
				}
				*d = aval{kind: aStack, c: d.c + c}
			case op.ALUOp() == OpDiv || op.ALUOp() == OpMod:
				// v6.18's verifier tracks no value through a division or
				// modulo (adjust_scalar_min_max_vals() marks the result
				// unknown), so a key computed by one is never constant.
				*d = aval{}
			case src.kind == aConst && (d.kind == aConst || op.ALUOp() == OpMov):
				*d = aval{kind: aConst, c: EvalALU(op.ALUOp(), is64, d.c, src.c)}
			case op.ALUOp() == OpNeg && d.kind == aConst:
				*d = aval{kind: aConst, c: EvalALU(OpNeg, is64, d.c, 0)}
			default:
				*d = aval{}
			}
		case op.IsLoadImm64():
			if ins.IsMapLoad() {
				st[ins.Dst] = aval{kind: aMaps, maps: []string{ins.Reference}}
			} else if ins.IsMapValueLoad() {
				st[ins.Dst] = aval{} // a pointer the analysis does not follow
			} else {
				st[ins.Dst] = aval{kind: aConst, c: uint64(ins.Imm)}
			}
		case op.IsMemLoad():
			if err := checkStackAccess(f, ins, st[ins.Src], ins.Src, "read from", strict); err != nil {
				return nil, err
			}
			if err := checkCtxAccess(ins, st[ins.Src], ins.Src, kernel); err != nil && strict {
				return nil, err
			}
			st[ins.Dst] = aval{}
		case op.IsMemStore():
			if err := checkStackAccess(f, ins, st[ins.Dst], ins.Dst, "write to", strict); err != nil {
				return nil, err
			}
			if err := checkCtxAccess(ins, st[ins.Dst], ins.Dst, kernel); err != nil && strict {
				return nil, err
			}
		case ins.IsSubprogCall():
			callee := p.FuncIndex(ins.Reference)
			if callee < 0 {
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("call to unknown subprogram %q", ins.Reference)}
			}
			if len(p.Funcs[callee].Insns) > 0 {
				entry := [11]aval{}
				for r := range entry {
					entry[r] = uninit
				}
				copy(entry[R1:R6], st[R1:R6])
				for r := R1; r <= R5; r++ {
					if entry[r].kind == aStack {
						entry[r] = aval{} // the caller's frame: not followed
					}
				}
				entry[R10] = aval{kind: aStack}
				merge(callee, 0, &entry)
			}
			if unsetR0[callee] {
				clobber(aUninit)
			} else {
				clobber(aUnknown)
			}
		case ins.IsTailCall():
			if err := checkTailCallCtx(ins, st[R1]); err != nil && strict {
				return nil, err
			}
			clobber(aUninit)
		case op.IsCall():
			clobber(aUnknown)
		case op.IsExit():
			continue
		case op.HasJumpOffset():
			target, ok := slotIndex[it.fn][pos[it.insn]+1+int(ins.Off)]
			if !ok {
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("jump to slot %+d lands outside function %s or inside a 64-bit load", ins.Off, f.Name)}
			}
			merge(it.fn, target, &st)
			if op.IsJA() {
				continue
			}
		}
		if next >= len(f.Insns) {
			return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("function %s falls off its end (last instruction must be exit or goto)", f.Name)}
		}
		merge(it.fn, next, &st)
	}
	return states, nil
}

// Describe is a one-line account of the site for listings and traces, as a
// JIT with or without direct tail calls implements it.
func (s *TailCallSite) Describe(v Kernel, directTailCalls bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", s.Kind(v, directTailCalls))
	if len(s.Maps) > 0 {
		names := make([]string, len(s.Maps))
		for i, m := range s.Maps {
			names[i] = m.Name
		}
		fmt.Fprintf(&b, " map=%s", strings.Join(names, "|"))
	}
	if s.KeyConst {
		fmt.Fprintf(&b, " key=%d", s.Key)
	}
	if s.Direct {
		fmt.Fprintf(&b, " poke=%d", s.PokeIndex)
	}
	if imm, err := s.Imm(v); err == nil {
		fmt.Fprintf(&b, " imm=%#x", uint32(imm))
	}
	return b.String()
}

// readsOf lists the registers an instruction reads. Helper arguments other
// than the tail call's are not modelled.
func readsOf(ins Instruction) []Register {
	op := ins.OpCode
	switch {
	case op.IsALU():
		var rs []Register
		if op.ALUOp() != OpMov {
			rs = append(rs, ins.Dst)
		}
		if op.Source() == SourceX && op.ALUOp() != OpNeg {
			rs = append(rs, ins.Src)
		}
		return rs
	case op.IsMemLoad():
		return []Register{ins.Src}
	case op.IsMemStore():
		if op.Class() == ClassSTX {
			return []Register{ins.Dst, ins.Src}
		}
		return []Register{ins.Dst}
	case ins.IsTailCall():
		return []Register{R1, R2, R3}
	case op.IsExit():
		return []Register{R0}
	case op.IsCondJump():
		if op.Source() == SourceX {
			return []Register{ins.Dst, ins.Src}
		}
		return []Register{ins.Dst}
	}
	return nil
}

// lastExploredMap follows the verifier's path exploration inside one
// function — the fall-through of a branch first, the pushed branch targets
// last in, first out — and returns the map R2 holds on the last visit to
// the tail call at site, or "" when R2 is not loaded in the function. A
// (instruction, map) pair is explored once, as state pruning would.
func lastExploredMap(f *Function, site int) string {
	pos, _ := f.Slots()
	at := map[int]int{}
	for i, s := range pos {
		at[s] = i
	}
	type state struct {
		insn int
		r2   string
	}
	seen := map[state]bool{}
	stack := []state{{0, ""}}
	last := ""
	for len(stack) > 0 {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for st.insn >= 0 && st.insn < len(f.Insns) && !seen[st] {
			seen[st] = true
			ins := f.Insns[st.insn]
			if st.insn == site {
				last = st.r2
			}
			switch op := ins.OpCode; {
			case ins.IsMapLoad() && ins.Dst == R2:
				st.r2 = ins.Reference
			case (op.IsALU() || op.IsLoadImm64() || op.IsMemLoad()) && ins.Dst == R2, op.IsCall():
				st.r2 = ""
			case op.IsExit():
				st.insn = -1
				continue
			case op.IsJA():
				st.insn = at[pos[st.insn]+1+int(ins.Off)]
				continue
			case op.IsCondJump():
				stack = append(stack, state{at[pos[st.insn]+1+int(ins.Off)], st.r2})
			}
			st.insn++
		}
	}
	return last
}

// checkMaxStackDepth is check_max_stack_depth() for a JITed program:
// frames rounded up as the kernel version does (round) may add up to
// MAX_BPF_STACK along any call chain, and a subprogram that
// makes tail calls may not be called while its callers' frames hold 256
// bytes or more. A tail call unwinds only the current frame, so each of up
// to 33 tail calls could otherwise keep its callers' stack: the limit keeps
// the worst case near 8 KiB. depth is the callers' frames, fn the function
// entered, line where (the call instruction, or main's start).
func checkMaxStackDepth(p *Program, round func(int) int, fn, depth, frame, line int) error {
	f := p.Funcs[fn]
	if fn != 0 && f.HasTailCall() && depth >= 256 {
		return &PosError{Line: line, Msg: fmt.Sprintf("tail_calls are not allowed when call stack of previous frames is %d bytes. Too large", depth)}
	}
	depth += round(f.StackDepth)
	if depth > MaxStackDepth {
		return &PosError{Line: line, Msg: fmt.Sprintf("combined stack size of %d calls is %d. Too large", frame+1, depth)}
	}
	for _, ins := range f.Insns {
		if !ins.IsSubprogCall() {
			continue
		}
		callee := p.FuncIndex(ins.Reference)
		if callee < 0 {
			continue // linking reports it
		}
		if frame+1 >= MaxCallFrames {
			return &PosError{Line: ins.Line, Msg: fmt.Sprintf("the call stack of %d frames is too deep", frame+1)}
		}
		if err := checkMaxStackDepth(p, round, callee, depth, frame+1, ins.Line); err != nil {
			return err
		}
	}
	return nil
}

// checkRefusals refuses what the verifier refuses instruction by
// instruction, with its messages (kernel/bpf/verifier.c), before any
// backend could report the program's behaviour as a JIT's:
//   - a write to R10: check_reg_arg(), "frame pointer is read only";
//   - an R10-relative access at or above the frame pointer:
//     check_stack_access_within_bounds(), "invalid write to stack R10
//     off=8 size=8" (below the 512-byte stack the scenario parser says
//     so already);
//   - division or modulo by the constant 0: check_alu_op(), "div by zero".
func checkRefusals(p *Program) error {
	for _, f := range p.Funcs {
		for _, ins := range f.Insns {
			op := ins.OpCode
			writesDst := op.IsALU() || op.IsMemLoad() || op.IsLoadImm64()
			switch {
			case writesDst && ins.Dst == R10:
				return &PosError{Line: ins.Line, Msg: "frame pointer is read only (the verifier refuses a write to r10)"}
			case op.IsALU() && op.Source() == SourceK && (op.ALUOp() == OpDiv || op.ALUOp() == OpMod) && ins.Imm == 0:
				return &PosError{Line: ins.Line, Msg: "div by zero (the verifier refuses a division or modulo by the constant 0)"}
			}
			var base Register
			var kind string
			switch {
			case op.IsMemLoad():
				base, kind = ins.Src, "read from"
			case op.IsMemStore():
				base, kind = ins.Dst, "write to"
			default:
				continue
			}
			if base != R10 {
				continue
			}
			size := op.Size().Bytes()
			if err := stackAlignment(ins, 0, int64(ins.Off), int64(size)); err != nil {
				return err
			}
			if int(ins.Off)+size > 0 {
				return &PosError{Line: ins.Line, Msg: fmt.Sprintf("invalid %s stack R10 off=%d size=%d (the frame is below r10)", kind, ins.Off, size)}
			}
		}
	}
	return nil
}

// checkStackAccess refuses, as the verifier does, an access through a
// copy of R10 outside the frame: at or above the frame pointer or past
// the 512-byte stack (check_stack_access_within_bounds()), or below the
// depth the function declares (the verifier would have sized the frame
// from it; the JITs and the model use the declared one). R10 itself is
// checked by checkRefusals and the scenario parser.
func checkStackAccess(f *Function, ins Instruction, base aval, reg Register, kind string, strict bool) error {
	if !strict || base.kind != aStack || reg == R10 {
		return nil
	}
	off := int64(base.c) + int64(ins.Off)
	size := int64(ins.OpCode.Size().Bytes())
	if err := stackAlignment(ins, int64(base.c), int64(ins.Off), size); err != nil {
		return err
	}
	switch {
	case off+size > 0 || off < -MaxStackDepth:
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("invalid %s stack %s off=%d size=%d (through a copy of r10: the frame is below r10)", kind, reg, off, size)}
	case -off > int64(f.StackDepth):
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("%s touches r10 - %d through %s, below the %d-byte frame it declares (stack=%d)", f.Name, -off, reg, f.StackDepth, f.StackDepth)}
	}
	return nil
}

// stackAlignment is check_generic_ptr_alignment() for the stack, which the
// verifier checks strictly whatever the arch (its spill tracking relies
// on it) and before the bounds: an access of 2, 4 or 8 bytes whose offset
// from the frame pointer (the pointer's own, regOff, plus the
// instruction's) is not a multiple of its size is refused.
func stackAlignment(ins Instruction, regOff, off, size int64) error {
	if size == 1 || (regOff+off)%size == 0 {
		return nil
	}
	return &PosError{Line: ins.Line, Msg: fmt.Sprintf("misaligned stack access off (0x0; 0x0)+%d+%d size %d (the verifier refuses a stack access not aligned to its size)", regOff, off, size)}
}
