package emu

import (
	"encoding/binary"
	"fmt"
	"math"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/jit"
	"tailsim/prog"
	"tailsim/prog/asm"
)

// stepRegs is an arch's register file as a stepped run reports it: the
// registers, their names with the BPF register each holds, and which of
// them hold BPF's R0 and the machine's frame pointer (stack slots are
// named from it).
type stepRegs struct {
	ids    []int
	names  []string
	r0, fp int // indexes into ids
}

// stepper records a stepped run (prog.LoadOptions.Step) instruction by
// instruction: a code hook on every instruction and a memory hook on
// every access, on an engine of its own (Backend.Load never pools it), so
// no translation made without the hooks is ever run.
type stepper struct {
	m     *machine
	regs  stepRegs
	batch *uc.RegBatch
	prev  []uint64 // the registers before the last recorded instruction
	info  map[uint64]*pcInfo
	last  *pcInfo // the last recorded instruction's
	// checks are the tail-call check branches, by address.
	checks map[uint64]checkAt
	// unread are reads the memory hook could not read at once.
	unread []int
	// deciding is the check the last recorded instruction makes, with its
	// operands as the tail call started; the next PC decides it.
	deciding *deciding
	budget   int
	// all keeps every instruction (Step); without it only those of the
	// tail call being measured are kept, and dropped once it is (Cost).
	all bool
	// executed counts the run's instructions.
	executed int
	// quiet: the run is not recorded (Record(false)), only counted.
	quiet bool
	// exhausted: the run reached its budget and was halted.
	exhausted bool
	// open is a taken tail call whose cost waits for its jump to be
	// recorded.
	open *openCost
	// jump is the index in Execs of a taken tail call's jump: the change
	// of image after it is not a call or a return. lastAt is last's.
	jump, lastAt int
	// memRegs are the address registers of the instruction recorded last
	// (a thunk's too, which last skips).
	memRegs []string
	buf     [8]byte
}

type checkAt struct {
	l *Loaded
	s *jit.TailSite
	c jit.Check
}

type deciding struct {
	out  uint64 // the site's out label
	next uint64 // the instruction after the branch
	d    prog.CheckDecision
}

type openCost struct {
	l          *Loaded
	s          *jit.TailSite
	start, end int // the call's instructions: Execs[start:end]
}

// pcInfo is what does not change between two executions of an address.
type pcInfo struct {
	l       *Loaded // nil outside the images
	machine string
	at      prog.Loc
	bpf     string
	source  string // the C line the BPF instruction heads
	part    string
	insn    string
	note    string
	regs    []string // the registers its memory operand's address is made of
	loads   []string // the registers it loads
	helper  int32    // the helper whose stub starts here, 0 if none
}

func newStepper(m *machine, budget int, all bool) (*stepper, error) {
	st := &stepper{m: m, regs: m.spec.stepRegs, info: map[uint64]*pcInfo{}, checks: map[uint64]checkAt{}, budget: budget, all: all}
	var err error
	if st.batch, err = uc.NewRegBatch(st.regs.ids); err != nil {
		return nil, err
	}
	for _, l := range m.images {
		for i := range l.Img.Sites {
			s := &l.Img.Sites[i]
			for _, c := range s.Checks {
				st.checks[l.Addr+uint64(c.Off)] = checkAt{l, s, c}
			}
		}
	}
	// Every instruction when stepping; when only measuring, the tail
	// calls' own (start to out) and where they land, where a measurement
	// ends: no per-instruction Go callback for the rest of the code (the
	// memory hook below still sees every load and store).
	at := m.spec.at
	ranges := [][2]uint64{{at.stubs, at.stubs + pageSize - 1}, {at.code, at.codeEnd() - 1}}
	if !all {
		ranges = ranges[:0]
		for _, l := range m.images {
			for _, s := range l.Img.Sites {
				ranges = append(ranges, [2]uint64{l.Addr + uint64(s.Start), l.Addr + uint64(s.Out)})
				if t, ok := at.thunkAddr(s.Thunk); ok && s.Thunk != "" {
					// The thunk the jump goes through runs in the call.
					ranges = append(ranges, [2]uint64{t, t})
				}
			}
		}
		for _, at := range m.entry {
			ranges = append(ranges, [2]uint64{at + uint64(m.tailEntry), at + uint64(m.tailEntry)})
		}
		// The budget is the block counter's alone: this one sees few
		// instructions.
		st.budget = math.MaxInt
	}
	return st, m.e.addStepHooks(ranges, st.onInsn, st.onMem)
}

// reset starts a run.
func (st *stepper) reset() {
	st.prev, st.last, st.deciding, st.open = nil, nil, nil, nil
	st.unread = st.unread[:0]
	st.exhausted, st.jump = false, -1
	st.executed = 0
}

// recording reports whether the current instruction is kept: always with
// Step, inside a tail call being measured with Cost.
func (st *stepper) recording() bool {
	return st.all || st.m.pending != nil || st.open != nil
}

// pcInfo describes addr, once.
func (st *stepper) pcInfo(addr uint64) *pcInfo {
	if in := st.info[addr]; in != nil {
		return in
	}
	m := st.m
	in := &pcInfo{machine: m.symbolize(addr), insn: m.disasm(addr)}
	if b, err := m.e.memRead(addr, 16); err == nil {
		in.regs, in.loads = m.spec.operands(b)
	}
	if l, ji := m.insnAt(addr); l != nil {
		in.l = l
		if ji != nil {
			in.note = jit.TrimNote(ji.Note, in.insn)
			switch {
			case ji.BPF >= 0:
				in.at = l.Prog.Loc(l.Fn, ji.BPF)
				in.bpf = asm.Format(l.Prog.Funcs[l.Fn].Insns[ji.BPF])
				in.source = l.Prog.Funcs[l.Fn].Insns[ji.BPF].Source
			case ji.BPF == jit.Epilogue:
				in.part = "epilogue"
			default:
				in.part = "prologue"
			}
		}
	} else if name, ok := m.spec.at.thunkAt(addr); ok && m.spec.arch == archX86 {
		in.part = "thunk"
		for _, t := range thunks {
			if t.name == name {
				in.note = t.note
			}
		}
	} else if stubs := m.spec.at.stubs; addr >= stubs && addr < stubs+uint64(len(prog.Helpers))*stubSize {
		in.part = "helper"
		if h, ok := m.spec.at.helperAt(addr); ok {
			in.helper = h.ID
		}
	}
	st.info[addr] = in
	return in
}

// onInsn runs before every instruction: it completes the record of the
// one before (its register changes, reads not yet read, the check it
// decided), notes calls, returns and helper calls, and records this one.
func (st *stepper) onInsn(addr uint64, size uint32) {
	m := st.m
	res := m.res
	now, _ := m.e.regBatchRead(st.batch)
	if st.prev == nil {
		st.prev = append([]uint64(nil), now...)
	}
	st.finish(now, addr)
	if st.exhausted {
		return
	}
	if st.executed >= st.budget {
		st.exhausted = true
		m.e.halt()
		return
	}
	st.executed++
	if st.quiet {
		return
	}
	if !st.recording() {
		if len(res.Execs) > 0 && st.deciding == nil {
			res.Execs = res.Execs[:0] // the last call is measured
		}
		st.last = nil
		return
	}
	in := st.pcInfo(addr)
	st.memRegs = in.regs
	if in.part == "thunk" {
		// Between a jump and where the thunk goes on: the change of image
		// is judged from the jump (a tail call, or a return).
		res.Execs = append(res.Execs, prog.Exec{PC: addr, Machine: in.machine, Part: in.part, Insn: in.insn, Note: in.note, Loads: in.loads})
		st.closeCost()
		return
	}
	if prev := st.last; prev != nil && st.lastAt != st.jump {
		switch {
		case in.helper != 0 && prev.part != "helper":
			m.event(prog.Event{Kind: prog.EvHelper, Helper: in.helper, At: prev.at, Machine: prev.machine, Step: len(res.Execs)})
			// An emulated helper's result, recorded by the hook at the
			// stub before this instruction, follows its call.
			if n := len(res.Trace); n >= 2 && res.Trace[n-2].Kind == prog.EvHelperDone {
				res.Trace[n-2], res.Trace[n-1] = res.Trace[n-1], res.Trace[n-2]
			}
		case in.l != nil && in.l.Fn != 0 && addr == in.l.Addr && prev.l != in.l:
			m.event(prog.Event{Kind: prog.EvCall, Prog: in.l.Prog.Name, Func: in.l.Prog.Funcs[in.l.Fn].Name, At: prev.at, Machine: prev.machine, Step: len(res.Execs)})
		case prev.l != nil && in.l != nil && in.l != prev.l && addr != in.l.Addr:
			// A return into a caller: from a subprogram, or from a program
			// a subprogram tail-called, which took the subprogram's frame.
			m.event(prog.Event{Kind: prog.EvReturn, Func: prev.l.Prog.Funcs[prev.l.Fn].Name, Value: now[st.regs.r0], Step: len(res.Execs)})
		}
	}
	if c, ok := st.checks[addr]; ok && m.pending != nil && m.pending.s == c.s {
		p := m.pending
		d := prog.CheckDecision{Check: c.c.Guard, Index: uint32(p.regs[m.spec.r3]), Count: p.count}
		if c.c.Guard == prog.FallBounds {
			d.MaxEntries = m.limitOf(p)
		}
		st.deciding = &deciding{out: c.l.Addr + uint64(c.s.Out), next: addr + uint64(size), d: d}
	}
	res.Execs = append(res.Execs, prog.Exec{PC: addr, Machine: in.machine, At: in.at, Part: in.part, BPF: in.bpf, Source: in.source, Insn: in.insn, Note: in.note, Loads: in.loads})
	st.last, st.lastAt = in, len(res.Execs)-1
}

// finish completes the last recorded instruction, now that the CPU is at
// next with registers now.
func (st *stepper) finish(now []uint64, next uint64) {
	res := st.m.res
	if len(res.Execs) == 0 {
		return
	}
	e := &res.Execs[len(res.Execs)-1]
	for i, v := range now {
		if v != st.prev[i] {
			e.Regs = append(e.Regs, prog.RegChange{Name: st.regs.names[i], Old: st.prev[i], New: v})
			st.prev[i] = v
		}
	}
	for _, i := range st.unread {
		a := &e.Mem[i]
		a.Value = st.read(a.Addr, a.Size)
	}
	st.unread = st.unread[:0]
	if dc := st.deciding; dc != nil {
		// The branch decides: not taken, the check passed; taken, it
		// failed, and the code should now be at out.
		dc.d.Passed = next == dc.next
		if !dc.d.Passed && next != dc.out {
			dc.d.Astray = fmt.Sprintf("jumps to %s, not to out (%s)", st.m.symbolize(next), st.m.symbolize(dc.out))
		}
		e.Checks = append(e.Checks, dc.d)
		st.deciding = nil
	}
	st.closeCost()
}

// closeCost measures the open taken call once its last instruction (the
// jump, or the thunk's) is recorded.
func (st *stepper) closeCost() {
	if o := st.open; o != nil && len(st.m.res.Execs) >= o.end {
		st.cost(o.l, o.s, true, o.start, o.end)
		st.open = nil
	}
}

// end completes the last instruction once the run is over.
func (st *stepper) end() {
	now, _ := st.m.e.regBatchRead(st.batch)
	if st.prev == nil {
		return
	}
	st.finish(now, st.m.e.pc())
}

func (st *stepper) read(addr uint64, size int) uint64 {
	b := st.buf[:min(size, 8)]
	if err := st.m.e.memReadInto(b, addr); err != nil {
		return 0
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// onMem records an access of the current instruction.
func (st *stepper) onMem(write bool, addr uint64, size int, value int64) {
	res := st.m.res
	if len(res.Execs) == 0 || st.exhausted || st.last == nil {
		return
	}
	e := &res.Execs[len(res.Execs)-1]
	a := prog.MemAccess{Write: write, Addr: addr, Size: size, Regs: st.memRegs}
	if write {
		a.Value = uint64(value)
		if size < 8 {
			a.Value &= 1<<(8*size) - 1
		}
	} else {
		b := st.buf[:min(size, 8)]
		if err := st.m.e.memReadInto(b, addr); err == nil {
			a.Value = st.read(addr, size)
		} else {
			// A lazily mapped page: the engine maps it, and the access
			// is made again; read the value once the instruction is done.
			for _, i := range st.unread {
				if e.Mem[i].Addr == addr && e.Mem[i].Size == size {
					return
				}
			}
			st.unread = append(st.unread, len(e.Mem))
		}
	}
	st.m.nameAddr(&a, st.prev[st.regs.fp])
	e.Mem = append(e.Mem, a)
}

// tailCallStarted notes where a tail call's instructions begin.
func (st *stepper) tailCallStarted(p *pendingCall) { p.stepStart = len(st.m.res.Execs) }

// Record implements prog.Recorder.
func (m *machine) Record(on bool) {
	if m.step != nil {
		m.step.quiet = !on
	}
}

// tailCallTaken opens the cost of a taken call: its jump is the next
// instruction recorded.
func (st *stepper) tailCallTaken(p *pendingCall) {
	if st.quiet {
		return
	}
	// The cost ends with the jump, or with the thunk it goes through.
	st.open = &openCost{l: p.l, s: p.s, start: p.stepStart, end: len(st.m.res.Execs) + 1 + thunkInsns(p.s)}
	st.jump = len(st.m.res.Execs)
}

// tailCallFellThrough measures a call that continued at out.
func (st *stepper) tailCallFellThrough(p *pendingCall) {
	if st.quiet {
		return
	}
	st.cost(p.l, p.s, false, p.stepStart, len(st.m.res.Execs))
}

func (st *stepper) cost(l *Loaded, s *jit.TailSite, taken bool, start, end int) {
	res := st.m.res
	if start < 0 || end > len(res.Execs) || start > end {
		return
	}
	res.Costs = append(res.Costs, prog.MeasureTailCost(s.Site.Loc, s.Kind, taken, res.Execs[start:end], s.Out-s.Start))
}

// nameAddr names memory for a trace (a.Obj, a.What, and as data a.Of,
// a.Field and a.Slot): the objects of the world by their fields, the
// counter, ctx, and the stack relative to the BPF frame pointer fp.
// a.Value is what a read returned, so that a stack slot holding the
// counter's address reads as tcc_ptr.
func (m *machine) nameAddr(a *prog.MemAccess, fp uint64) {
	a.Obj, a.What = m.name(a, fp)
}

func (m *machine) name(a *prog.MemAccess, fp uint64) (prog.Object, string) {
	addr, value := a.Addr, a.Value
	for pa, ai := range m.arrays {
		if addr < ai.base || addr >= ai.end() {
			continue
		}
		off := addr - ai.base
		a.Of = pa.Name
		switch ptrs := uint64(ai.layout.Ptrs); {
		case off == uint64(ai.layout.MaxEntries):
			a.Field = prog.FieldMaxEntries
			return prog.ObjArray, pa.Name + "->map.max_entries"
		case off >= ptrs:
			i := (off - ptrs) / 8
			if i < uint64(pa.MaxEntries) {
				a.Field, a.Slot = prog.FieldPtrs, int64(i)
				return prog.ObjArray, fmt.Sprintf("%s->ptrs[%d]", pa.Name, i)
			}
			a.Field, a.Slot = prog.FieldCached, int64(i-uint64(pa.MaxEntries))
			return prog.ObjArray, fmt.Sprintf("%s->ptrs[%d] (cached[%d])", pa.Name, i, i-uint64(pa.MaxEntries))
		}
		return prog.ObjArray, fmt.Sprintf("struct bpf_array %s+%#x", pa.Name, off)
	}
	for p, at := range m.structs {
		if addr >= at && addr < at+pageSize {
			a.Of = p.Name
			if addr-at == uint64(m.w.Layout.BpfFunc) {
				a.Field = prog.FieldBpfFunc
				return prog.ObjProg, fmt.Sprintf("prog %s->bpf_func", p.Name)
			}
			return prog.ObjProg, fmt.Sprintf("struct bpf_prog %s+%#x", p.Name, addr-at)
		}
	}
	at := m.spec.at
	inStack := addr >= at.stackLo() && addr < at.stackHi
	if inStack {
		// From the frame pointer once a prologue has set it, from the
		// stack pointer the run began with before.
		a.Of, a.Slot = "fp", int64(addr-fp)
		if fp < at.stackLo() || fp >= at.stackHi {
			a.Of, a.Slot = "sp0", int64(addr-at.runSP())
		}
	}
	switch {
	case m.counter.size > 0 && addr == m.counter.addr:
		a.Field = prog.FieldCount
		return prog.ObjCounter, "tail_call_cnt"
	case addr >= ctxBase && addr < ctxBase+uint64(len(m.ctxSaved)):
		return prog.ObjCtx, fmt.Sprintf("ctx+%d", addr-ctxBase)
	case inStack:
		if m.counter.size > 0 && !m.v.CounterByValue() && value == m.counter.addr {
			a.Field = prog.FieldTccPtr
			return prog.ObjCounter, fmt.Sprintf("tcc_ptr (&tail_call_cnt) at %s%+#x", a.Of, a.Slot)
		}
		return prog.ObjStack, fmt.Sprintf("stack %s%+#x", a.Of, a.Slot)
	case addr >= at.threadInfo && addr < at.threadInfo+pageSize:
		return prog.ObjOther, fmt.Sprintf("thread_info+%#x", addr-at.threadInfo)
	}
	for _, o := range prog.KernelObjects() {
		if addr >= o.Addr && addr < o.Addr+uint64(len(o.Value)) {
			return prog.ObjOther, o.Name
		}
	}
	return prog.ObjOther, m.symbolize(addr)
}

// limitOf is the max_entries a pending tail call's bounds check compares
// with: the immediate on the static path, the array's field in memory on
// the others (none at a direct site).
func (m *machine) limitOf(p *pendingCall) uint32 {
	switch p.s.Kind {
	case prog.Static:
		return p.s.Site.ImmMap.MaxEntries
	case prog.Indirect, prog.Dynamic:
		var b [4]byte
		if err := m.e.memReadInto(b[:], p.regs[m.spec.r2]+uint64(m.w.Layout.MaxEntries)); err == nil {
			return binary.LittleEndian.Uint32(b[:])
		}
	}
	return 0
}

// thunkInsns is how many instructions the emulated thunk a site's jump
// goes through runs before the target (see thunks).
func thunkInsns(s *jit.TailSite) int {
	if s.Thunk != "" {
		return 1
	}
	return 0
}
