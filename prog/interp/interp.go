// Package interp is the reference model: a direct interpreter of the prog
// subset with the tail-call semantics of docs/kernel.md §1. Every emulated result
// is compared with what it computes.
package interp

import (
	"encoding/binary"
	"fmt"
	"slices"

	"tailsim/prog"
	"tailsim/prog/asm"
)

// Address map of the model's memory (ctx is at prog.CtxBase). Only ctx and
// the stack frames are readable; map objects have addresses so R2 can carry
// them, nothing more.
const (
	StackBase = 0x2000_0000 // frame k occupies StackBase + k*FrameSize
	FrameSize = 0x1000
	MapBase   = 0x3000_0000 // array k is at MapBase + k*MapStride
	MapStride = 0x1000
)

// DefaultBudget bounds the instructions of one invocation.
const DefaultBudget = 1_000_000

// Config selects the semantics of a run.
type Config struct {
	Kernel prog.Kernel
	Rule   prog.CountRule
	// NoDirectTailCalls models a JIT without the capability
	// (Backend.DirectTailCalls): direct sites read ptrs[] like indirect
	// ones, as on arm64. The zero Config has direct tail calls, as x86-64
	// and scenarios.Ref{} do.
	NoDirectTailCalls bool
	Budget            int
	Trace             bool
	// Step records each BPF instruction executed (Result.Execs), with the
	// registers it changed, the memory it touched and, at a tail call,
	// the checks it decided; it implies Trace.
	Step bool
}

type frame struct {
	p      *prog.Program
	fn, pc int
	saved  [5]uint64 // caller's R6–R10
	// count is the caller's tail-call count, which a kernel that passes
	// the counter by value (prog.Kernel.CounterByValue) gives back to the
	// caller when the function returns.
	count uint64
	// stack is the function's frame, [top-len(stack), top): its declared
	// depth rounded up to 8, so a stray access is a fault, not a silent hit.
	stack []byte
	top   uint64
}

// resize gives the frame the stack of function fn of p, keeping the bytes
// nearest the frame pointer: a tail call reuses the frame.
func (f *frame) resize(p *prog.Program, fn int) {
	size := (p.Funcs[fn].StackDepth + 7) &^ 7
	st := make([]byte, size)
	n := min(size, len(f.stack))
	copy(st[size-n:], f.stack[len(f.stack)-n:])
	f.stack = st
}

// Machine interprets the programs of one world; it holds no state between
// runs other than the world's arrays, which the caller changes.
type Machine struct {
	w      *prog.World
	cfg    Config
	arrays map[uint64]*prog.ProgArray
	addrOf map[*prog.ProgArray]uint64
	preset uint64 // PresetCount's n
	// values are this machine's copies of the array maps' values, which
	// its runs change (at prog.ArrayMapAddr, as on every backend).
	values [][]byte
}

// WriteMap performs an EffectMapWrite on this machine's values.
func (m *Machine) WriteMap(e prog.Effect) {
	for k, a := range m.w.Maps {
		if a == e.Map {
			copy(m.values[k][e.Off:], e.Bytes)
		}
	}
}

// PresetCount implements prog.CountPresetter.
func (m *Machine) PresetCount(n uint64) { m.preset = n }

// New prepares a machine for w; w must be fixed up (World.Fix).
func New(w *prog.World, cfg Config) *Machine {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	cfg.Trace = cfg.Trace || cfg.Step
	m := &Machine{w: w, cfg: cfg, arrays: map[uint64]*prog.ProgArray{}, addrOf: map[*prog.ProgArray]uint64{}}
	for i, a := range w.Arrays {
		addr := uint64(MapBase + i*MapStride)
		m.arrays[addr], m.addrOf[a] = a, addr
	}
	for _, a := range w.Maps {
		m.values = append(m.values, append([]byte(nil), a.Values...))
	}
	return m
}

type run struct {
	*Machine
	res    *prog.Result
	ctx    []byte
	frames []*frame
	regs   [11]uint64
	count  uint64
	// last is the counter as the last tail call left it, the run's
	// Result.Count (with a counter passed by value, a return may since
	// have brought back the caller's).
	last uint64
	// before are the registers as the recorded instruction found them
	// (stepped runs).
	before [11]uint64
}

// Run invokes entry once with ctx (nil: R1 = 0). ctx is updated in place, so
// repeated runs see the state earlier runs left, as lib/test_bpf's are.
func (m *Machine) Run(entry *prog.Program, ctx []byte) *prog.Result {
	r := &run{Machine: m, res: &prog.Result{}, ctx: ctx}
	if ctx != nil {
		r.regs[prog.R1] = prog.CtxBase
	}
	if m.preset > 0 && m.cfg.Kernel.CounterByValue() {
		// 6.1: the entry's own counter, which its subprograms copy, is
		// where a chain would have left the count.
		r.count = m.preset
	}
	r.push(entry, 0)
	r.enter(entry)
	if m.preset > 0 && m.cfg.Kernel.CounterByValue() {
		r.event(prog.Event{Kind: prog.EvPreset, Count: m.preset})
	}
	r.loop()
	r.res.Count = r.last
	if ctx != nil {
		r.res.Ctx = append([]byte(nil), ctx...)
	}
	if len(m.values) > 0 {
		r.res.Maps = map[string][]byte{}
		for k, a := range m.w.Maps {
			r.res.Maps[a.Name] = append([]byte(nil), m.values[k]...)
		}
	}
	return r.res
}

func (r *run) push(p *prog.Program, fn int) {
	f := &frame{p: p, fn: fn, top: uint64(StackBase+len(r.frames)*FrameSize) + prog.MaxStackDepth}
	f.resize(p, fn)
	copy(f.saved[:], r.regs[prog.R6:])
	f.count = r.count
	r.frames = append(r.frames, f)
	r.regs[prog.R10] = f.top
}

func (r *run) enter(p *prog.Program) {
	r.res.Path = prog.Record(r.res.Path, p.Name)
	r.event(prog.Event{Kind: prog.EvEnter, Prog: p.Name})
}

func (r *run) event(e prog.Event) {
	e.Step = len(r.res.Execs)
	if r.cfg.Trace || r.cfg.Step {
		r.res.Trace = append(r.res.Trace, e)
	}
}

func (r *run) fault(kind prog.FaultKind, addr uint64, msg string) {
	f := r.frames[len(r.frames)-1]
	ins := f.p.Funcs[f.fn].Insns[f.pc]
	r.res.Fault = &prog.Fault{Kind: kind, Addr: addr, At: f.p.Loc(f.fn, f.pc), Insn: asm.Format(ins), Msg: msg}
}

// mem returns the bytes at [addr, addr+n) if a readable region holds them.
func (r *run) mem(addr uint64, n int) []byte {
	if r.ctx != nil && addr >= prog.CtxBase && addr+uint64(n) <= prog.CtxBase+uint64(len(r.ctx)) && addr+uint64(n) > addr {
		return r.ctx[addr-prog.CtxBase:][:n]
	}
	for _, f := range r.frames {
		base := f.top - uint64(len(f.stack))
		if addr >= base && addr+uint64(n) <= f.top && addr+uint64(n) > addr {
			return f.stack[addr-base:][:n]
		}
	}
	for k, v := range r.values {
		base := prog.ArrayMapAddr(k) + uint64(r.w.Layout.Ptrs)
		if addr >= base && addr+uint64(n) <= base+uint64(len(v)) && addr+uint64(n) > addr {
			return v[addr-base:][:n]
		}
	}
	return nil
}

func load(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func store(b []byte, v uint64) {
	switch len(b) {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

func (r *run) loop() {
	if r.cfg.Step {
		defer r.finishExec()
	}
	for {
		if r.cfg.Step {
			r.finishExec()
		}
		if r.res.Steps >= r.cfg.Budget {
			r.fault(prog.FaultBudget, 0, fmt.Sprintf("instruction budget of %d exhausted", r.cfg.Budget))
			return
		}
		r.res.Steps++
		f := r.frames[len(r.frames)-1]
		insns := f.p.Funcs[f.fn].Insns
		ins := insns[f.pc]
		op := ins.OpCode
		next := f.pc + 1
		if r.cfg.Step {
			r.beginExec(f, ins)
		}
		if writesR0(ins) {
			r.res.R0Dead = false
		}
		switch {
		case ins.IsMovPercpuAddr():
			// x86's per-CPU mov: runs are on CPU 0.
			r.regs[ins.Dst] = r.regs[ins.Src] + prog.X86PerCPUOffset()
		case op.IsALU():
			r.regs[ins.Dst] = prog.EvalALU(op.ALUOp(), op.Class() == prog.ClassALU64, r.regs[ins.Dst], ins.Operand(&r.regs))
		case op.IsLoadImm64():
			switch k := slices.IndexFunc(r.w.Maps, func(a *prog.ArrayMap) bool { return a.Name == ins.Reference }); {
			case ins.IsMapValueLoad():
				r.regs[ins.Dst] = prog.ArrayMapAddr(k) + uint64(r.w.Layout.Ptrs) + uint64(ins.Imm)
			case ins.IsMapLoad() && k >= 0:
				r.regs[ins.Dst] = prog.ArrayMapAddr(k)
			case ins.IsMapLoad():
				r.regs[ins.Dst] = r.addrOf[r.w.Array(ins.Reference)]
			default:
				r.regs[ins.Dst] = uint64(ins.Imm)
			}
		case op.IsMemLoad():
			addr := r.regs[ins.Src] + uint64(int64(ins.Off))
			b := r.mem(addr, op.Size().Bytes())
			if kb, ok := prog.KernelRead(addr, op.Size().Bytes()); b == nil && ok {
				// What an inlined helper reads (prog/rewrite.go); read only.
				b = kb
			}
			if b == nil {
				r.fault(prog.FaultAccess, addr, fmt.Sprintf("read of %d bytes at %#x outside ctx and the stack frames", op.Size().Bytes(), addr))
				return
			}
			r.regs[ins.Dst] = load(b)
			r.access(false, addr, b)
		case op.IsMemStore():
			addr := r.regs[ins.Dst] + uint64(int64(ins.Off))
			b := r.mem(addr, op.Size().Bytes())
			if b == nil {
				r.fault(prog.FaultAccess, addr, fmt.Sprintf("write of %d bytes at %#x outside ctx and the stack frames", op.Size().Bytes(), addr))
				return
			}
			v := uint64(int64(int32(ins.Imm)))
			if op.Class() == prog.ClassSTX {
				v = r.regs[ins.Src]
			}
			store(b, v)
			r.access(true, addr, b)
		case ins.IsTailCall():
			target, ok := r.tailCall(f)
			if !ok {
				return
			}
			if target != nil {
				f.p, f.fn, next = target, 0, 0
				f.resize(target, 0)
				r.enter(target)
			}
		case ins.IsSubprogCall():
			callee := f.p.FuncIndex(ins.Reference)
			if r.cfg.Trace {
				r.event(prog.Event{Kind: prog.EvCall, Prog: f.p.Name, Func: ins.Reference, At: f.p.Loc(f.fn, f.pc)})
			}
			f.pc = next
			r.push(f.p, callee)
			continue
		case op.IsCall():
			h, ok := prog.HelperByID(int32(ins.Imm))
			if !ok {
				r.fault(prog.FaultInsn, 0, fmt.Sprintf("unknown helper %d", ins.Imm))
				return
			}
			if r.cfg.Trace {
				r.event(prog.Event{Kind: prog.EvHelper, Helper: h.ID, At: f.p.Loc(f.fn, f.pc)})
			}
			r.regs[prog.R0] = h.Ret
			if prog.Emulated(h.ID) {
				var args [5]uint64
				copy(args[:], r.regs[prog.R1:prog.R6])
				r.regs[prog.R0] = prog.CallHelper(h.ID, args, r.w, helperMemory{r})
				if r.cfg.Trace {
					r.event(prog.Event{Kind: prog.EvHelperDone, Helper: h.ID, Text: prog.HelperNote(h.ID, args, r.regs[prog.R0])})
				}
			}
			for reg := prog.R1; reg <= prog.R5; reg++ {
				r.regs[reg] = prog.ClobberValue(reg)
			}
		case op.IsExit():
			if len(r.frames) == 1 {
				r.res.R0 = r.regs[prog.R0]
				r.event(prog.Event{Kind: prog.EvExit, Value: r.res.R0})
				return
			}
			r.event(prog.Event{Kind: prog.EvReturn, Func: f.p.Funcs[f.fn].Name, Value: r.regs[prog.R0]})
			copy(r.regs[prog.R6:], f.saved[:])
			if r.cfg.Kernel.CounterByValue() && r.cfg.Rule == prog.RuleJIT {
				// 6.1: the callee counted in its own copy (x86's pushed
				// rax, arm64's saved x26).
				r.count = f.count
			}
			r.frames = r.frames[:len(r.frames)-1]
			continue
		case op.HasJumpOffset():
			if prog.EvalJump(op.JumpOp(), op.Class() == prog.ClassJMP, r.regs[ins.Dst], ins.Operand(&r.regs)) {
				pos, _ := f.p.Funcs[f.fn].Slots()
				to := pos[f.pc] + 1 + int(ins.Off)
				for i, s := range pos {
					if s == to {
						next = i
					}
				}
			}
		default:
			r.fault(prog.FaultInsn, 0, fmt.Sprintf("opcode %#02x is outside the modelled subset", uint8(op)))
			return
		}
		if next >= len(insns) {
			r.fault(prog.FaultInsn, 0, "execution ran off the end of the function")
			return
		}
		f.pc = next
	}
}

// tailCall performs the checks of docs/kernel.md §1 for the site's kind and the
// configured counting rule. It returns the target (nil: fall through) and
// false when the run faulted.
func (r *run) tailCall(f *frame) (*prog.Program, bool) {
	site := r.w.Fixups[f.p].Site(f.fn, f.pc)
	arr := r.arrays[r.regs[prog.R2]]
	if arr == nil || site == nil {
		r.fault(prog.FaultInsn, r.regs[prog.R2], "tail call with R2 not pointing at a prog array")
		return nil, false
	}
	if len(r.res.Calls) == 0 && !r.cfg.Kernel.CounterByValue() { // the run's first tail call: the preset applies
		r.count = r.preset
		if r.preset > 0 {
			r.event(prog.Event{Kind: prog.EvPreset, Count: r.preset})
		}
	}
	index := uint32(r.regs[prog.R3])
	ev := prog.Event{Kind: prog.EvTailCall, Prog: f.p.Name, At: site.Loc, Index: r.regs[prog.R3], Count: r.count}
	r.regs[prog.R3] = uint64(index) // the JITs' "mov edx, edx" / "add w2, w2, #0"
	kind := site.Kind(r.cfg.Kernel, !r.cfg.NoDirectTailCalls)
	var target *prog.Program
	reason := prog.Reason(0)
	// What the checks compared, for a stepped run's record of them.
	count, limit, empty := r.count, arr.MaxEntries, false
	countFirst := r.cfg.Rule == prog.RuleInterp || r.cfg.Kernel.CountsBeforeSlot()
	switch {
	case countFirst && kind == prog.Direct && r.cfg.Rule == prog.RuleJIT:
		// 6.1's x86 direct call: the counter block, then the bypass poke
		// site; the verifier bounded the key.
		switch {
		case r.count >= prog.MaxTailCallCnt:
			reason = prog.FallLimit
		default:
			r.count++
			if !arr.Bypassed(uint32(site.Key)) {
				target = arr.Poked(uint32(site.Key))
			}
			if empty = target == nil; empty {
				reason = prog.FallEmpty
			}
		}
	case countFirst:
		// kernel/bpf/core.c, and 6.1's JITs: bounds, limit, count++, then
		// the empty check.
		empty = index < arr.MaxEntries && arr.Ptr(index) == nil
		switch {
		case index >= arr.MaxEntries:
			reason = prog.FallBounds
		case r.count >= prog.MaxTailCallCnt:
			reason = prog.FallLimit
		default:
			r.count++
			if target = arr.Ptr(index); target == nil {
				reason = prog.FallEmpty
			}
		}
	case kind == prog.Direct:
		// The key is the verifier's constant; the bounds check happened at
		// verification. The bypass jump skips the call while the slot is
		// empty, and in the windows of an update before its bypass poke and
		// of a delete after it; the target jump is what it reaches.
		if !arr.Bypassed(uint32(site.Key)) {
			// (A target that is a nop with the bypass one too is a state
			// the kernel's poke order never makes; the emulators check
			// what such code does.)
			target = arr.Poked(uint32(site.Key))
		}
		empty = target == nil
		if reason = prog.FallReason(kind, index, arr.MaxEntries, r.count, empty); reason != 0 {
			target = nil
		}
	default:
		slot := arr.Ptr
		if kind == prog.Static {
			limit, slot = site.ImmMap.MaxEntries, arr.Cached
		}
		if index < limit {
			target = slot(index)
		}
		empty = target == nil
		if reason = prog.FallReason(kind, index, limit, r.count, empty); reason != 0 {
			target = nil
		}
	}
	r.decide(kind, index, limit, count, empty)
	if target != nil && !countFirst {
		r.count++
	}
	r.last = r.count
	ev.Reason, ev.Path, ev.Rule = reason, kind, r.cfg.Rule
	r.event(ev)
	r.res.Calls = prog.Record(r.res.Calls, prog.TailOutcome{Path: kind, Count: count, Reason: reason})
	if reason != 0 {
		r.res.Falls = prog.Record(r.res.Falls, reason)
		// A failed tail call is a helper call that returns nothing: R0 is
		// dead, and the JITs leave different values in it (x86 the counter
		// pointer, arm64 the old R0). R1 and R2 survive in both JITs and R3
		// is truncated, so the model keeps them.
		r.regs[prog.R0] = prog.ClobberValue(prog.R0)
		r.res.R0Dead = true
		return nil, true
	}
	return target, true
}

// writesR0 reports instructions that give R0 a defined value.
func writesR0(ins prog.Instruction) bool {
	op := ins.OpCode
	switch {
	case op.IsALU(), op.IsLoadImm64(), op.IsMemLoad():
		return ins.Dst == prog.R0
	case op.IsCall() && !ins.IsTailCall():
		return true // helpers return a value; a subprogram's exit sets R0
	}
	return false
}

// helperMemory is the model's memory as an emulated helper sees it: the
// regions mem knows, all writable (ctx, the stack frames, array values).
type helperMemory struct{ r *run }

func (h helperMemory) Read(addr uint64, n int) ([]byte, bool) {
	b := h.r.mem(addr, n)
	if b == nil {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (h helperMemory) Write(addr uint64, b []byte) bool {
	dst := h.r.mem(addr, len(b))
	if dst == nil {
		return false
	}
	copy(dst, b)
	return true
}
