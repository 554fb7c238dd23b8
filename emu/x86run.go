package emu

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
	"golang.org/x/arch/x86/x86asm"

	"tailsim/prog"
)

// Run implements prog.Machine.
func (m *x86Machine) Run(entry *prog.Program, ctx []byte) *prog.Result {
	m.res = &prog.Result{Path: []string{entry.Name}}
	m.pending, m.tccPtr = nil, 0
	m.event(prog.Event{Kind: prog.EvEnter, Prog: entry.Name})
	u := m.e.U
	if len(ctx) > 0 {
		u.MemWrite(CtxBase, ctx)
	}
	sp := uint64(StackHi - 0x100)
	var ret [8]byte
	binary.LittleEndian.PutUint64(ret[:], Sentinel)
	u.MemWrite(sp, ret[:])
	r1 := uint64(0)
	if ctx != nil {
		r1 = CtxBase
	}
	regs := []int{uc.X86_REG_RSP, uc.X86_REG_RDI, uc.X86_REG_RAX, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RCX, uc.X86_REG_R8}
	vals := []uint64{sp, r1, 0, 0, 0, 0, 0}
	for r, v := range x86Saved {
		regs, vals = append(regs, r), append(vals, v)
	}
	u.RegWriteBatch(regs, vals)

	out := m.e.Run(m.entry[entry], Sentinel, TimeLimit(m.o.Budget))
	res := m.res
	switch {
	case out.Fault != nil:
		kind := "access"
		if out.Fault.Fetch {
			kind = "fetch"
		}
		res.Fault = &prog.Fault{Kind: "access", Addr: out.Fault.Addr, Site: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("%s of %d bytes at %#x outside every object", map[bool]string{true: "write", false: "read"}[out.Fault.Write], out.Fault.Size, out.Fault.Addr)}
		if kind == "fetch" {
			res.Fault.Msg = fmt.Sprintf("instruction fetch at %#x outside the code", out.Fault.Addr)
		}
	case out.Err != nil || out.Exception != nil:
		msg := fmt.Sprint(out.Err)
		if out.Exception != nil {
			msg = fmt.Sprintf("CPU exception %d", *out.Exception)
		}
		res.Fault = &prog.Fault{Kind: "insn", Site: m.symbolize(out.PC), Insn: m.disasm(out.PC), Msg: msg}
	case out.Timeout:
		res.Fault = &prog.Fault{Kind: "budget", Site: m.symbolize(out.PC), Insn: m.disasm(out.PC),
			Msg: fmt.Sprintf("time budget of %v exhausted (budget %d)", TimeLimit(m.o.Budget), m.o.Budget)}
	default:
		m.checkReturn(sp)
		rax, _ := u.RegRead(uc.X86_REG_RAX)
		res.R0 = rax
		m.event(prog.Event{Kind: prog.EvExit, Value: rax})
	}
	if m.pending != nil && res.Fault == nil {
		m.violate("tail call resolves", m.pending.l.Addr+uint64(m.pending.s.Start), "the program returned while a tail call had neither reached a program nor its next instruction")
	}
	if m.tccPtr != 0 {
		res.Count = m.read64(m.tccPtr)
	}
	if ctx != nil {
		b, _ := u.MemRead(CtxBase, uint64(len(ctx)))
		copy(ctx, b)
		res.Ctx = append([]byte(nil), ctx...)
	}
	return res
}

func (m *x86Machine) event(e prog.Event) {
	if m.o.Trace {
		m.res.Trace = append(m.res.Trace, e)
	}
}

func (m *x86Machine) read64(addr uint64) uint64 {
	if err := m.e.U.MemReadInto(m.buf8[:], addr); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(m.buf8[:])
}

// TimeLimit is how long an emulated run may take for an instruction
// budget: 50 ns an instruction, at least 50 ms. Emulators bound runs by
// time because an instruction count costs more than the run (see Engine).
func TimeLimit(budget int) time.Duration {
	return max(50*time.Millisecond, time.Duration(budget)*50*time.Nanosecond)
}

// regs reads the registers a tail-call check needs in one call.
func (m *x86Machine) regs() []uint64 {
	v, _ := m.batch.ReadFast(m.e.U)
	return v
}

// checkReturn verifies the top-level return: the stack balanced and the
// callee-saved registers restored.
func (m *x86Machine) checkReturn(sp uint64) {
	rsp, _ := m.e.U.RegRead(uc.X86_REG_RSP)
	if rsp != sp+8 {
		m.violate("stack balanced at return", Sentinel, fmt.Sprintf("rsp = %#x, want %#x", rsp, sp+8))
	}
	for r, want := range x86Saved {
		if got, _ := m.e.U.RegRead(r); got != want {
			m.violate("callee-saved registers restored", Sentinel, fmt.Sprintf("%s = %#x, want %#x", x86RegName(r), got, want))
		}
	}
}

func x86RegName(r int) string {
	return map[int]string{uc.X86_REG_RBX: "rbx", uc.X86_REG_R13: "r13", uc.X86_REG_R14: "r14", uc.X86_REG_R15: "r15",
		uc.X86_REG_RBP: "rbp", uc.X86_REG_RDI: "rdi"}[r]
}

func (m *x86Machine) violate(property string, addr uint64, detail string) {
	m.res.Violations = append(m.res.Violations, prog.Violation{Property: property, Addr: addr, Where: m.symbolize(addr),
		Insn: m.disasm(addr), Detail: detail})
}

// onSite runs at the few addresses where tail calls start, jump, or fall
// through; nothing else is hooked.
func (m *x86Machine) onSite(u uc.Unicorn, addr uint64, size uint32) {
	for _, ev := range m.sites[addr] {
		if ev.kind == atOut {
			if p := m.pending; p != nil && p.s == ev.s && p.l == ev.l {
				m.fellThrough(addr)
			}
		}
	}
	for _, ev := range m.sites[addr] {
		switch ev.kind {
		case atStart:
			if m.pending != nil {
				m.violate("tail call resolves", addr, "a new tail call started while the previous one had not resolved")
			}
			p := &m.pend
			copy(p.regs[:], m.regs())
			ptr := m.read64(p.regs[pRBP] - 16 - uint64(ev.l.Img.StackSize))
			m.tccPtr = ptr
			p.l, p.s, p.count = ev.l, ev.s, m.read64(ptr)
			m.pending = p
		case atJump:
			if m.pending != nil && m.pending.s == ev.s {
				m.taken(addr, m.regs()[pRCX])
			}
		case atTarget:
			if m.pending != nil && m.pending.s == ev.s {
				code := m.buf8[:5]
				u.MemReadInto(code, addr)
				if code[0] == 0xE9 {
					m.taken(addr, addr+5+uint64(int64(int32(binary.LittleEndian.Uint32(code[1:])))))
				}
			}
		}
	}
}

// siteName is the BPF location and, after @, the machine code's.
func (m *x86Machine) siteName(p *pendingCall) string {
	return prog.SiteName(p.l.Prog, p.l.Fn, p.s.BPF) + " @" + m.symbolize(p.l.Addr+uint64(p.s.Start))
}

// taken checks a tail call about to jump to dest.
func (m *x86Machine) taken(addr, dest uint64) {
	p := m.pending
	m.pending = nil
	regs := m.regs()
	target := m.progAt[dest]
	if target == nil {
		m.violate("lands at the tail-call entry", addr, fmt.Sprintf("jumps to %#x (%s), which is no program's bpf_func + %d", dest, m.symbolize(dest), m.jo.TailCallOffset()))
	}
	if regs[pRDI] != p.regs[pRDI] {
		m.violate("R1 unchanged", addr, fmt.Sprintf("rdi = %#x, was %#x", regs[pRDI], p.regs[pRDI]))
	}
	if regs[pRSP] != regs[pRBP] || regs[pRBP] != p.regs[pRBP] {
		m.violate("stack pointer where the callee expects it", addr, fmt.Sprintf("rsp = %#x, rbp = %#x (was %#x): the callee at +%d expects rsp == rbp", regs[pRSP], regs[pRBP], p.regs[pRBP], m.jo.TailCallOffset()))
	}
	if n := m.read64(m.tccPtr); n != p.count+1 {
		m.violate("counter incremented by one", addr, fmt.Sprintf("counter %d, was %d", n, p.count))
	}
	m.event(prog.Event{Kind: prog.EvTailCall, Site: m.siteName(p), Index: p.regs[pRDX], Count: p.count, Via: p.s.Kind.String()})
	if target != nil {
		m.res.Path = append(m.res.Path, target.Name)
		m.event(prog.Event{Kind: prog.EvEnter, Prog: target.Name})
	}
}

// fellThrough checks a tail call that continued at the next instruction
// and works out why from the state it started with.
func (m *x86Machine) fellThrough(addr uint64) {
	p := m.pending
	m.pending = nil
	regs := m.regs()
	for _, i := range []int{pRBX, pR13, pR14, pR15, pRBP} {
		if regs[i] != p.regs[i] {
			m.violate("callee-saved registers kept on fall-through", addr, fmt.Sprintf("%s = %#x, was %#x", x86RegName(x86PendingRegs[i]), regs[i], p.regs[i]))
		}
	}
	if n := m.read64(m.tccPtr); n != p.count {
		m.violate("counter unchanged on fall-through", addr, fmt.Sprintf("counter %d, was %d", n, p.count))
	}
	index := uint32(p.regs[pRDX])
	var reason prog.Reason
	switch {
	case p.s.Kind == prog.Direct:
		if p.count >= prog.MaxTailCallCnt {
			reason = prog.FallLimit
		} else {
			reason = prog.FallEmpty
		}
	default:
		limit := uint32(0)
		if p.s.Kind == prog.Static {
			limit = p.s.Site.ImmMap.MaxEntries
		} else if b, err := m.e.U.MemRead(p.regs[pRSI]+uint64(m.w.Layout.MaxEntries), 4); err == nil {
			limit = binary.LittleEndian.Uint32(b)
		}
		switch {
		case index >= limit:
			reason = prog.FallBounds
		case p.count >= prog.MaxTailCallCnt:
			reason = prog.FallLimit
		default:
			reason = prog.FallEmpty
		}
	}
	m.res.Falls = append(m.res.Falls, reason)
	m.event(prog.Event{Kind: prog.EvTailCall, Site: m.siteName(p), Index: p.regs[pRDX], Count: p.count, Reason: reason, Via: p.s.Kind.String()})
}

// symbolize names an address: prog/func+0xoff in an image, or a region.
func (m *x86Machine) symbolize(addr uint64) string {
	i := sort.Search(len(m.images), func(i int) bool { return m.images[i].Addr+uint64(len(m.images[i].Img.Code)) > addr })
	if i < len(m.images) && m.images[i].Addr <= addr {
		l := m.images[i]
		name := l.Prog.Name
		if l.Fn != 0 {
			name += "/" + l.Prog.Funcs[l.Fn].Name
		}
		return fmt.Sprintf("%s+%#x", name, addr-l.Addr)
	}
	switch {
	case addr >= StubBase && addr < CodeBase:
		return "helper stubs"
	case addr >= StackLo && addr < StackHi:
		return "stack"
	}
	return fmt.Sprintf("%#x", addr)
}

// disasm decodes the instruction at addr, "?" when it cannot.
func (m *x86Machine) disasm(addr uint64) string {
	b, err := m.e.U.MemRead(addr, 15)
	if err != nil {
		return "?"
	}
	in, err := x86asm.Decode(b, 64)
	if err != nil {
		return "?"
	}
	return x86asm.IntelSyntax(in, addr, nil)
}
