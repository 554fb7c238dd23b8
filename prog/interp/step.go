package interp

import (
	"fmt"
	"strings"

	"tailsim/prog"
	"tailsim/prog/asm"
)

// beginExec records the instruction about to run (stepped runs).
func (r *run) beginExec(f *frame, ins prog.Instruction) {
	r.before = r.regs
	text := asm.Format(ins)
	r.res.Execs = append(r.res.Execs, prog.Exec{At: f.p.Loc(f.fn, f.pc), BPF: text, Insn: text, Source: ins.Source})
}

// finishExec completes the last recorded instruction with the registers
// it changed.
func (r *run) finishExec() {
	if len(r.res.Execs) == 0 {
		return
	}
	e := &r.res.Execs[len(r.res.Execs)-1]
	if e.Regs != nil {
		return // already finished
	}
	e.Regs = []prog.RegChange{}
	for i, v := range r.regs {
		if v != r.before[i] {
			e.Regs = append(e.Regs, prog.RegChange{Name: prog.Register(i).String(), Old: r.before[i], New: v})
		}
	}
	r.before = r.regs
}

// access records a load or store of the current instruction (stepped runs).
func (r *run) access(write bool, addr uint64, b []byte) {
	if !r.cfg.Step || len(r.res.Execs) == 0 {
		return
	}
	e := &r.res.Execs[len(r.res.Execs)-1]
	a := prog.MemAccess{Write: write, Addr: addr, Size: len(b), Value: load(b)}
	a.Obj, a.What = r.name(&a)
	e.Mem = append(e.Mem, a)
}

// name names model memory: ctx by offset, the stack by its frame pointer
// (as data too: a.Of and a.Slot).
func (r *run) name(a *prog.MemAccess) (prog.Object, string) {
	addr := a.Addr
	if r.ctx != nil && addr >= prog.CtxBase && addr < prog.CtxBase+uint64(len(r.ctx)) {
		return prog.ObjCtx, fmt.Sprintf("ctx+%d", addr-prog.CtxBase)
	}
	cur := r.frames[len(r.frames)-1]
	for _, f := range r.frames {
		if addr < f.top-uint64(len(f.stack)) || addr >= f.top {
			continue
		}
		a.Of, a.Slot = "fp", int64(addr-f.top)
		if f != cur {
			a.Of += " of " + f.p.Funcs[f.fn].Name
		}
		return prog.ObjStack, fmt.Sprintf("stack fp%+#x", a.Slot) + strings.TrimPrefix(a.Of, "fp")
	}
	return prog.ObjOther, fmt.Sprintf("%#x", addr)
}

// decide records the checks a tail call made, in the order its rule makes
// them, up to the first that failed (stepped runs).
func (r *run) decide(kind prog.SiteKind, index, maxEntries uint32, count uint64, empty bool) {
	if !r.cfg.Step || len(r.res.Execs) == 0 {
		return
	}
	order := []prog.Reason{prog.FallBounds, prog.FallLimit, prog.FallEmpty}
	if kind == prog.Direct && r.cfg.Rule == prog.RuleJIT {
		order = order[1:]
	}
	e := &r.res.Execs[len(r.res.Execs)-1]
	for _, c := range order {
		d := prog.CheckDecision{Check: c, Index: index, MaxEntries: maxEntries, Count: count, Passed: true}
		switch c {
		case prog.FallBounds:
			d.Passed = index < maxEntries
		case prog.FallLimit:
			d.Passed = count < prog.MaxTailCallCnt
		case prog.FallEmpty:
			d.Passed = !empty
		}
		e.Checks = append(e.Checks, d)
		if !d.Passed {
			return
		}
	}
}
