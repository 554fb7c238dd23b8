package emu

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"tailsim/jit"
	"tailsim/jit/x86"
	"tailsim/prog"
)

// timeLimit is the wall-clock safety net of a run whose budget is
// budget blocks: a microsecond a block, at least a second, twenty times
// what a block takes on a loaded machine here. The budget itself is
// counted (budget.go), so only a machine far too slow meets this limit,
// and that is reported as such, never as a finding.
func timeLimit(budget int) time.Duration {
	return max(time.Second, time.Duration(budget)*time.Microsecond)
}

// Run implements prog.Machine. The budget counts blocks, so a runaway
// loop is a budget fault whatever the machine's load. A run that meets the
// wall-clock safety net first is run again from the same ctx with four
// times the time (Unicorn sometimes spends tens of milliseconds inside one
// Start on its own: a translation-cache flush, or the host descheduling
// us) before it is reported as a slow machine.
func (m *machine) Run(entry *prog.Program, ctx []byte) *prog.Result {
	m.ctxSaved = append(m.ctxSaved[:0], ctx...) // no allocation per run
	limit := timeLimit(m.o.Budget)
	if m.step != nil {
		// The hooks make a step cost microseconds; the budget is counted
		// exactly, the time is only a backstop.
		return m.run(entry, ctx, 1000*limit)
	}
	r := m.run(entry, ctx, limit)
	if r.Fault != nil && r.Fault.Kind == prog.FaultSlow {
		copy(ctx, m.ctxSaved)
		r = m.run(entry, ctx, 4*limit)
	}
	return r
}

// engineRun is engine.run; tests replace it to simulate a stall.
var engineRun = (*engine).run

// prepare puts the CPU at a call of the world's entry: the saved CPU
// state back after a wild run, ctx written, the stack pointer, R1, the
// scratch and the callee-saved registers set. It returns the stack
// pointer expected after the return.
func (m *machine) prepare(ctx []byte) (after uint64, err error) {
	if err := m.e.restoreCPU(); err != nil {
		return 0, err
	}
	if len(ctx) > 0 {
		if err := m.e.memWrite(ctxBase, ctx); err != nil {
			return 0, err
		}
	}
	sp, after := m.spec.enter(m, m.spec.at.runSP())
	m.entryVals[0], m.entryVals[1] = sp, 0
	if ctx != nil {
		m.entryVals[1] = ctxBase
	}
	return after, m.e.regBatchWrite(m.entryBatch, m.entryVals)
}

func (m *machine) run(entry *prog.Program, ctx []byte, limit time.Duration) *prog.Result {
	m.res = &prog.Result{Path: []string{entry.Name}}
	m.pending, m.counter, m.lastCount, m.counted, m.presetDone = nil, counterLoc{}, 0, false, false
	m.signed = m.signed[:0]
	if m.step != nil {
		m.step.reset()
	}
	m.event(prog.Event{Kind: prog.EvEnter, Prog: entry.Name})
	spec := m.spec
	after, err := m.prepare(ctx)
	if err != nil {
		m.res.Fault = &prog.Fault{Kind: prog.FaultInsn, Msg: err.Error()}
		return m.res
	}

	out := engineRun(m.e, m.entry[entry], m.spec.at.sentinel(), uint64(m.o.Budget), limit)
	res := m.res
	defer func() {
		m.e.ran(m.code, res.Fault != nil || len(res.Violations) > 0)
	}()
	if m.step != nil {
		m.step.end()
		res.Steps = m.step.executed
		if !m.step.all {
			res.Execs = nil // measured; only the costs are wanted
			res.Steps = 0   // not counted: only the tail calls are hooked
		}
	}
	switch {
	case m.step != nil && m.step.exhausted:
		res.Fault = &prog.Fault{Kind: prog.FaultBudget, At: m.bpfLoc(out.PC), Machine: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("instruction budget of %d exhausted", m.o.Budget)}
	case out.Fault != nil:
		if spec.locateFault != nil && !out.Fault.Fetch {
			out.PC = spec.locateFault(m, out.PC, out.Fault)
		}
		op := "read"
		if out.Fault.Write {
			op = "write"
		}
		res.Fault = &prog.Fault{Kind: prog.FaultAccess, Addr: out.Fault.Addr, At: m.bpfLoc(out.PC), Machine: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("%s of %d bytes at %#x outside every object", op, out.Fault.Size, out.Fault.Addr)}
		if out.Fault.ReadOnly {
			res.Fault.Msg = fmt.Sprintf("write of %d bytes at %#x, which the code may only read", out.Fault.Size, out.Fault.Addr)
		}
		if out.Fault.Fetch {
			res.Fault.Msg = fmt.Sprintf("instruction fetch at %#x outside the code", out.Fault.Addr)
		}
	case out.Err != nil || out.Exception != nil:
		msg := fmt.Sprint(out.Err)
		if out.Exception != nil {
			msg = fmt.Sprintf("CPU exception %d", *out.Exception)
		}
		res.Fault = &prog.Fault{Kind: prog.FaultInsn, At: m.bpfLoc(out.PC), Machine: m.symbolize(out.PC), Insn: m.disasm(out.PC), Msg: msg}
	case out.Budget:
		res.Fault = &prog.Fault{Kind: prog.FaultBudget, At: m.bpfLoc(out.PC), Machine: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("budget of %d blocks exhausted", m.o.Budget)}
	case out.Timeout:
		res.Fault = &prog.Fault{Kind: prog.FaultSlow, At: m.bpfLoc(out.PC), Machine: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("the machine is too slow: %v of wall time without reaching the budget of %d blocks", limit, m.o.Budget)}
	default:
		vals, err := m.e.regBatchRead(m.retBatch)
		if err != nil {
			res.Fault = &prog.Fault{Kind: prog.FaultInsn, Msg: err.Error()}
			break
		}
		m.checkReturn(after, vals)
		r0 := vals[0]
		res.R0 = r0
		m.event(prog.Event{Kind: prog.EvExit, Value: r0})
	}
	if m.pending != nil && res.Fault == nil {
		m.violatef(prog.PropResolves, m.pending.s.Site.Loc, m.pending.l.Addr+uint64(m.pending.s.Start), "the program returned while a tail call had neither reached a program nor its next instruction")
	}
	// The counter as the last tail call left it: once the frame that holds
	// it is reused by a callee without tail-call slots, its memory is gone.
	res.Count = m.lastCount
	if ctx != nil {
		_ = m.e.memReadInto(ctx, ctxBase)
		res.Ctx = append([]byte(nil), ctx...)
	}
	if len(m.w.Maps) > 0 {
		res.Maps = map[string][]byte{}
		for k, a := range m.w.Maps {
			v := make([]byte, len(a.Values))
			_ = m.e.memReadInto(v, prog.ArrayMapAddr(k)+uint64(m.w.Layout.Ptrs))
			res.Maps[a.Name] = v
		}
	}
	return res
}

func (m *machine) event(e prog.Event) {
	if m.step != nil && e.Step == 0 {
		e.Step = len(m.res.Execs)
	}
	if m.o.Trace {
		m.res.Trace = append(m.res.Trace, e)
	}
}

func (m *machine) read64(addr uint64) uint64 {
	if err := m.e.memReadInto(m.buf8[:], addr); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(m.buf8[:])
}

// presetCounter writes a preset counter into the cell the first tail call
// is about to read. Only on the stack, where the JITs keep the counter: a
// host write bypasses the write guards, so a broken tcc_ptr pointing at a
// struct bpf_prog page would otherwise corrupt it for later runs. A cell
// elsewhere keeps its value, and the run's count then differs from the
// model's, which reports it.
func (m *machine) presetCounter(loc counterLoc, v uint64) {
	if loc.size == 0 {
		_ = m.e.regWrite(m.spec.regs[loc.reg], v)
		return
	}
	if loc.addr < m.spec.at.stackLo() || loc.addr+uint64(loc.size) > m.spec.at.stackHi {
		return
	}
	binary.LittleEndian.PutUint64(m.buf8[:], v)
	_ = m.e.memWrite(loc.addr, m.buf8[:loc.size])
}

// PresetCount implements prog.CountPresetter.
func (m *machine) PresetCount(n uint64) { m.preset = n }

// regs reads the registers a tail-call check needs in one call.
func (m *machine) regs() []uint64 {
	v, _ := m.e.regBatchRead(m.batch)
	return v
}

// checkReturn verifies the top-level return: the stack balanced, the
// callee-saved registers restored, and (PAC) every signed return address
// authenticated. vals are retBatch's.
func (m *machine) checkReturn(wantSP uint64, vals []uint64) {
	if n := len(m.signed); n > 0 {
		m.violatef(prog.PropAuthenticated, prog.Loc{}, m.spec.at.sentinel(), "%d return address(es) signed and never authenticated (the last: lr = %#x, sp = %#x)", n, m.signed[n-1][0], m.signed[n-1][1])
	}
	if sp := vals[1]; sp != wantSP {
		m.violatef(prog.PropStackBalanced, prog.Loc{}, m.spec.at.sentinel(), "sp = %#x, want %#x", sp, wantSP)
	}
	for i, r := range m.retRegs[2:] {
		if got, want := vals[2+i], m.spec.saved[r]; got != want {
			m.violatef(prog.PropCalleeSaved, prog.Loc{}, m.spec.at.sentinel(), "%s = %#x, want %#x", m.spec.savedNames[r], got, want)
		}
	}
}

// maxViolations bounds the violations a run records of each property: a
// check broken at every tail call of a run that loops to its budget (a
// broken limit check) recorded one each time, hundreds of MB in a fuzz
// campaign. Every broken property is still recorded, so a finding's
// signature does not change.
const maxViolations = 16

// violatef records a broken property; at is the tail call's BPF
// instruction for the checks made at one.
func (m *machine) violatef(property prog.Property, at prog.Loc, addr uint64, format string, args ...any) {
	// A runaway loop breaks the same property on every turn: past the
	// cap nothing is formatted.
	n := 0
	for _, v := range m.res.Violations {
		if v.Property == property {
			n++
		}
	}
	if n >= maxViolations {
		return
	}
	if m.step != nil {
		// Told where it happened, among the instructions.
		defer func() {
			m.event(prog.Event{Kind: prog.EvNote, Text: "broken: " + m.res.Violations[len(m.res.Violations)-1].String()})
		}()
	}
	m.res.Violations = append(m.res.Violations, prog.Violation{Property: property, At: at, Addr: addr, Machine: m.symbolize(addr),
		Insn: m.disasm(addr), Detail: fmt.Sprintf(format, args...)})
}

// onSite runs at the few addresses where tail calls start, jump, or fall
// through; nothing else is hooked.
func (m *machine) onSite(addr uint64) {
	evs := m.sites[addr]
	for _, ev := range evs {
		if ev.kind == atOut {
			if p := m.pending; p != nil && p.s == ev.s && p.l == ev.l {
				m.fellThrough(addr)
			}
		}
	}
	for _, ev := range evs {
		switch ev.kind {
		case atStart:
			if m.pending != nil {
				m.violatef(prog.PropResolves, m.pending.s.Site.Loc, addr, "a new tail call started while the previous one had not resolved")
			}
			p := &m.pend
			copy(p.regs[:], m.regs())
			loc := m.spec.counter(m, p.regs[:], ev.l.Img)
			// v6.18's counter is shared by the whole invocation: after
			// the first tail call its value is the one the last call left
			// (checked there), so only a new counter is read. 6.1 passes
			// it by value, so a return from a subprogram brings back the
			// caller's: it is read at every call.
			if loc != m.counter || !m.counted || m.v.CounterByValue() {
				if !m.counted && m.preset != 0 && !m.presetDone {
					// The run's first tail call, about to read the counter
					// its prologue initialised: leave what a chain would.
					m.presetCounter(loc, m.preset)
					m.event(prog.Event{Kind: prog.EvPreset, Count: m.preset})
				}
				m.counter, m.lastCount, m.counted = loc, m.readCounter(loc), true
			}
			p.l, p.s, p.count = ev.l, ev.s, m.lastCount
			m.pending = p
			if m.step != nil {
				m.step.tailCallStarted(p)
			}
		case atJump:
			if m.pending != nil && m.pending.s == ev.s {
				m.taken(addr, m.spec.jumpTarget(m.regs(), ev.s.Kind))
			}
		case atTarget:
			if m.pending != nil && m.pending.s == ev.s {
				code := m.buf8[:x86.X86PatchSize]
				m.e.memReadInto(code, addr)
				if dest, ok := x86.JumpDest(code, addr); ok {
					m.taken(addr, dest)
				}
			}
		case atBody:
			if m.preset != 0 && !m.presetDone && !m.counted {
				// The entry's first body instruction, before any tail call.
				m.presetCounter(m.spec.counter(m, m.regs(), ev.l.Img), m.preset)
				m.event(prog.Event{Kind: prog.EvPreset, Count: m.preset})
			}
			m.presetDone = true
		case atSign, atAuth:
			m.pac(addr, ev.kind)
		case atHelper:
			m.callHelper(ev.helper)
		}
	}
}

// pac keeps PAC's signed return addresses, which Unicorn does not: paciasp
// signs lr with sp as the modifier, autiasp authenticates lr with the sp
// it finds, and a real CPU faults when the two differ (or returns to a
// corrupt address). A tail call reuses the frame and its signed lr: the
// first program's paciasp is paired with the last one's autiasp.
func (m *machine) pac(addr uint64, kind siteKind) {
	// The code as it is now: a poke or a test may have changed it since
	// the load found the instruction.
	want := uint32(a64Paciasp)
	if kind == atAuth {
		want = a64Autiasp
	}
	if err := m.e.memReadInto(m.buf8[:4], addr); err != nil || binary.LittleEndian.Uint32(m.buf8[:4]) != want {
		return
	}
	v, err := m.e.regBatchRead(m.pacBatch)
	if err != nil {
		return
	}
	lr, sp := v[0], v[1]
	if kind == atSign {
		m.signed = append(m.signed, [2]uint64{lr, sp})
		return
	}
	n := len(m.signed)
	if n == 0 {
		m.violatef(prog.PropAuthenticated, m.bpfLoc(addr), addr, "autiasp with lr = %#x, sp = %#x, which no paciasp signed", lr, sp)
		return
	}
	if top := m.signed[n-1]; top != [2]uint64{lr, sp} {
		m.violatef(prog.PropAuthenticated, m.bpfLoc(addr), addr, "autiasp with lr = %#x, sp = %#x; paciasp signed lr = %#x with sp = %#x", lr, sp, top[0], top[1])
	}
	m.signed = m.signed[:n-1]
}

// taken checks a tail call about to jump to dest.
func (m *machine) taken(addr, dest uint64) {
	p := m.pending
	m.pending = nil
	spec := m.spec
	regs := m.regs()
	target := m.progAt[dest]
	if target == nil {
		m.violatef(prog.PropLands, p.s.Site.Loc, addr, "jumps to %#x (%s), which is no program's bpf_func + %d", dest, m.symbolize(dest), m.tailEntry)
	}
	if spec.landingPad != nil && p.s.Kind != prog.Direct && p.s.Thunk == "" {
		// (A direct call's jmp rel32 needs no landing pad, nor a jump
		// through a retpoline thunk: the thunk reaches the target with
		// "ret", which indirect-branch tracking does not check.)
		code := m.buf8[:4]
		if err := m.e.memReadInto(code, dest); err == nil {
			if ok, want := spec.landingPad(code); !ok {
				m.violatef(prog.PropLandingPad, p.s.Site.Loc, addr, "jumps to %#x (%s), which is not %s", dest, m.symbolize(dest), want)
			}
		}
	}
	if regs[spec.r1] != p.regs[spec.r1] {
		m.violatef(prog.PropR1, p.s.Site.Loc, addr, "%s = %#x, was %#x", spec.names[spec.r1], regs[spec.r1], p.regs[spec.r1])
	}
	if want, rule := spec.expectedSP(m.v, regs); regs[spec.sp] != want {
		m.violatef(prog.PropSP, p.s.Site.Loc, addr, "%s = %#x, want %#x (%s)", spec.names[spec.sp], regs[spec.sp], want, rule)
	} else if was, _ := spec.expectedSP(m.v, p.regs[:]); want != was {
		m.violatef(prog.PropSP, p.s.Site.Loc, addr, "the frame moved: %#x, was %#x", want, was)
	}
	n := m.readCounter(m.counter)
	if n != p.count+1 {
		m.violatef(prog.PropCountedOnce, p.s.Site.Loc, addr, "counter %d, was %d", n, p.count)
	}
	m.lastCount = n
	m.res.Calls = prog.Record(m.res.Calls, prog.TailOutcome{Path: p.s.Kind, Count: p.count})
	if m.step != nil {
		m.step.tailCallTaken(p)
	}
	// In a stepped run the call and the entry follow the jump, which is
	// the next instruction recorded.
	after := 0
	if m.step != nil {
		after = len(m.res.Execs) + 1 + thunkInsns(p.s)
	}
	if m.o.Trace {
		m.event(prog.Event{Kind: prog.EvTailCall, At: p.s.Site.Loc, Machine: m.symbolize(p.l.Addr + uint64(p.s.Start)), Index: p.regs[spec.r3], Count: p.count, Path: p.s.Kind, Step: after})
	}
	if target != nil {
		m.res.Path = prog.Record(m.res.Path, target.Name)
		m.event(prog.Event{Kind: prog.EvEnter, Prog: target.Name, Step: after})
	}
}

// fellThrough checks a tail call that continued at the next instruction
// and works out why from the state it started with.
func (m *machine) fellThrough(addr uint64) {
	p := m.pending
	m.pending = nil
	spec := m.spec
	regs := m.regs()
	for _, i := range spec.kept {
		if m.counter.size == 0 && i == m.counter.reg {
			continue // 6.1 arm64's counter, checked below
		}
		if regs[i] != p.regs[i] {
			m.violatef(prog.PropCalleeSavedKept, p.s.Site.Loc, addr, "%s = %#x, was %#x", spec.names[i], regs[i], p.regs[i])
		}
	}
	// Why: the check whose branch the machine took to out. The model gives
	// its own reason, so a JIT whose branch lets a call past a check shows
	// as a different fall-through.
	reason := m.failedCheck(p)
	n, want := m.readCounter(m.counter), p.count
	if reason == prog.FallEmpty && m.v.CountsBeforeSlot() {
		want++ // 6.1 counted before it loaded the slot
	}
	if n != want {
		if want != p.count {
			m.violatef(prog.PropCountKept, p.s.Site.Loc, addr, "counter %d, want %d (%d before the call, which %s counts before an empty slot)", n, want, p.count, m.v)
		} else {
			m.violatef(prog.PropCountKept, p.s.Site.Loc, addr, "counter %d, was %d", n, p.count)
		}
	}
	m.lastCount = n
	m.res.Falls = prog.Record(m.res.Falls, reason)
	m.res.Calls = prog.Record(m.res.Calls, prog.TailOutcome{Path: p.s.Kind, Count: p.count, Reason: reason})
	if m.step != nil {
		m.step.tailCallFellThrough(p)
	}
	if m.o.Trace {
		m.event(prog.Event{Kind: prog.EvTailCall, At: p.s.Site.Loc, Machine: m.symbolize(p.l.Addr + uint64(p.s.Start)), Index: p.regs[spec.r3], Count: p.count, Reason: reason, Path: p.s.Kind})
	}
}

// failedCheck is the guard of the check whose branch took the pending call
// to out: the check whose branch is the last instruction of the block the
// machine came from (a block ends at the branch it takes). When out was
// not reached by a branch (broken code ran into it) or by none of the
// checks', it is the reason the checks in the JITs' order give for the
// state the call started with.
func (m *machine) failedCheck(p *pendingCall) prog.Reason {
	if end := m.e.budget.cameFrom(); m.e.budget.entered() == p.l.Addr+uint64(p.s.Out) {
		insns := p.l.Img.Insns
		for _, ch := range p.s.Checks {
			i := sort.Search(len(insns), func(i int) bool { return insns[i].Off >= ch.Off })
			if i < len(insns) && insns[i].Off == ch.Off && p.l.Addr+uint64(ch.Off+insns[i].Len) == end {
				return ch.Guard
			}
		}
	}
	return prog.FallReason(p.s.Kind, uint32(p.regs[m.spec.r3]), m.limitOf(p), p.count, true)
}

// image finds the function image holding addr, nil when none does.
func (m *machine) image(addr uint64) *Loaded {
	i := sort.Search(len(m.images), func(i int) bool { return m.images[i].Addr+uint64(len(m.images[i].Img.Code)) > addr })
	if i < len(m.images) && m.images[i].Addr <= addr {
		return m.images[i]
	}
	return nil
}

// insnAt finds the image holding addr and the emitted instruction there
// (nil between instructions or past the last).
func (m *machine) insnAt(addr uint64) (*Loaded, *jit.Insn) {
	l := m.image(addr)
	if l == nil {
		return nil, nil
	}
	off := int(addr - l.Addr)
	ins := l.Img.Insns
	i := sort.Search(len(ins), func(i int) bool { return ins[i].Off+ins[i].Len > off })
	if i == len(ins) || ins[i].Off > off {
		return l, nil
	}
	return l, &ins[i]
}

// bpfLoc names the BPF instruction whose machine code holds addr, so a
// fault is reported under the name traces and listings use; zero in the
// prologue, the epilogue or outside the code.
func (m *machine) bpfLoc(addr uint64) prog.Loc {
	l, in := m.insnAt(addr)
	if in == nil || in.BPF < 0 {
		return prog.Loc{}
	}
	return l.Prog.Loc(l.Fn, in.BPF)
}

// symbolize names an address: prog/func+0xoff in an image, or a region.
func (m *machine) symbolize(addr uint64) string {
	if l := m.image(addr); l != nil {
		name := l.Prog.Name
		if l.Fn != 0 {
			name += "/" + l.Prog.Funcs[l.Fn].Name
		}
		return fmt.Sprintf("%s+%#x", name, addr-l.Addr)
	}
	for p, at := range m.structs {
		if addr >= at && addr < at+pageSize {
			return fmt.Sprintf("struct bpf_prog %s+%#x", p.Name, addr-at)
		}
	}
	for a, ai := range m.arrays {
		if addr >= ai.base && addr < ai.end() {
			return fmt.Sprintf("struct bpf_array %s+%#x", a.Name, addr-ai.base)
		}
	}
	if name, ok := m.spec.at.thunkAt(addr); ok && m.spec.arch == archX86 {
		if at, _ := m.spec.at.thunkAddr(name); addr != at {
			return fmt.Sprintf("%s+%#x", name, addr-at)
		}
		return name
	}
	switch {
	case addr >= m.spec.at.stubs && addr < m.spec.at.stubs+pageSize:
		return "helper stubs"
	case addr >= m.spec.at.stackLo() && addr < m.spec.at.stackHi:
		return "stack"
	}
	return fmt.Sprintf("%#x", addr)
}

// disasm decodes the instruction at addr, "?" when it cannot.
func (m *machine) disasm(addr uint64) string {
	b, err := m.e.memRead(addr, 16)
	if err != nil {
		return "?"
	}
	return m.spec.disasm(b, addr)
}
