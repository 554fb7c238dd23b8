package emu

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
	"golang.org/x/arch/x86/x86asm"

	"tailsim/jit"
	"tailsim/jit/x86"
	"tailsim/prog"
)

// x86Options are the parts of a prog.Config the x86-64 JIT takes.
const x86Options = prog.IBT | prog.Retpoline | prog.SLS | prog.Thunk | prog.Lfence | prog.Rethunk | prog.BMI2

// NewX86 is the emulated x86-64 backend for the build c (its x86 part);
// loads may ask for more (prog.LoadOptions.Config).
func NewX86(c prog.Config) *Backend {
	return newBackend(c, x86Options, x86Spec)
}

// Indexes into x86Regs.
const (
	xRDI = iota
	xRSI
	xRDX
	xRBX
	xR13
	xR14
	xR15
	xRBP
	xRSP
	xRCX
	xRAX
)

var x86Regs = []int{uc.X86_REG_RDI, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RBX, uc.X86_REG_R13,
	uc.X86_REG_R14, uc.X86_REG_R15, uc.X86_REG_RBP, uc.X86_REG_RSP, uc.X86_REG_RCX, uc.X86_REG_RAX}

func x86Spec(c prog.Config) *archSpec {
	ibt := c&prog.IBT != 0
	o := func(v prog.Kernel, l prog.Layout) x86.Options { return x86.Options{Kernel: v, Layout: l, Config: c} }
	spec := &archSpec{
		name:      "x86_64",
		arch:      archX86,
		tailEntry: func(v prog.Kernel) int { return o(v, prog.Layout{}).TailCallOffset() },
		compile: func(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, v prog.Kernel, l prog.Layout) (*jit.Image, error) {
			return x86.Compile(p, fn, fx, image, res, o(v, l))
		},
		stubs: x86Stubs,
		at:    x86Addrs,
		regs:  x86Regs,
		names: []string{"rdi", "rsi", "rdx", "rbx", "r13", "r14", "r15", "rbp", "rsp", "rcx", "rax"},
		r1:    xRDI, r2: xRSI, r3: xRDX, sp: xRSP,
		kept: []int{xRBX, xR13, xR14, xR15, xRBP},
		// The callee, entered past "push rbp; mov rbp, rsp", reuses the frame.
		expectedSP: func(_ prog.Kernel, r []uint64) (uint64, string) { return r[xRBP], "rsp == rbp" },
		counter: func(m *machine, r []uint64, img *jit.Image) counterLoc {
			if m.v.CounterByValue() {
				// 6.1: the upper half of the rax the prologue pushed
				// below the BPF stack (tcc_off).
				return counterLoc{addr: r[xRBP] - 4 - uint64(img.StackSize), size: 4}
			}
			// The cell tcc_ptr, saved below the BPF stack, points at.
			return counterLoc{addr: m.read64(r[xRBP] - 16 - uint64(img.StackSize)), size: 8}
		},
		jumpTarget: func(r []uint64, _ prog.SiteKind) uint64 { return r[xRCX] },
		helperArgs: []int{uc.X86_REG_RDI, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RCX, uc.X86_REG_R8},
		helperRet:  uc.X86_REG_RAX,
		spReg:      uc.X86_REG_RSP,
		r1Reg:      uc.X86_REG_RDI,
		r0Reg:      uc.X86_REG_RAX,
		scratch:    []int{uc.X86_REG_RAX, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RCX, uc.X86_REG_R8},
		saved: map[int]uint64{
			uc.X86_REG_RBX: 0x5a5a_0000_0000_0006, uc.X86_REG_R13: 0x5a5a_0000_0000_0007,
			uc.X86_REG_R14: 0x5a5a_0000_0000_0008, uc.X86_REG_R15: 0x5a5a_0000_0000_0009,
			uc.X86_REG_RBP: 0x5a5a_0000_0000_000a,
		},
		savedNames: map[int]string{uc.X86_REG_RBX: "rbx", uc.X86_REG_R13: "r13", uc.X86_REG_R14: "r14",
			uc.X86_REG_R15: "r15", uc.X86_REG_RBP: "rbp"},
		// The return address is pushed: "call" into bpf_func.
		enter: func(m *machine, sp uint64) (uint64, uint64) {
			var ret [8]byte
			binary.LittleEndian.PutUint64(ret[:], m.spec.at.sentinel())
			m.e.memWrite(sp, ret[:])
			return sp, sp + 8
		},
		directTailCalls: x86.DirectTailCalls,
		locateFault:     locateX86Fault,
		// The BPF registers as jit/x86 maps them (reg2hex), then the
		// JIT's own.
		stepRegs: stepRegs{
			ids: []int{uc.X86_REG_RAX, uc.X86_REG_RDI, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RCX, uc.X86_REG_R8,
				uc.X86_REG_RBX, uc.X86_REG_R13, uc.X86_REG_R14, uc.X86_REG_R15, uc.X86_REG_RBP,
				uc.X86_REG_R9, uc.X86_REG_R10, uc.X86_REG_R11, uc.X86_REG_R12, uc.X86_REG_RSP},
			names: []string{"rax (R0)", "rdi (R1)", "rsi (R2)", "rdx (R3)", "rcx (R4)", "r8 (R5)",
				"rbx (R6)", "r13 (R7)", "r14 (R8)", "r15 (R9)", "rbp (R10)",
				"r9", "r10 (AX)", "r11 (AUX)", "r12", "rsp"},
			r0: 0, fp: 10,
		},
		disasm: x86Disasm,
		operands: func(code []byte) ([]string, []string) {
			in, _ := x86.Decode(code, 0, x86.Intel)
			return in.AddrRegs, in.Loads
		},
	}
	// GS holds this CPU's per-CPU offset, which the inlined
	// bpf_get_smp_processor_id() adds (prog/rewrite.go): runs are on
	// CPU 0.
	spec.setup = func(e *engine) error { return e.regWrite(uc.X86_REG_GS_BASE, prog.X86PerCPUOffset()) }
	if ibt {
		// IBT: an indirect jump must land on endbr64 (ENDBR64 is
		// F3 0F 1E FA), or the CPU raises #CP.
		spec.landingPad = func(code []byte) (bool, string) {
			return bytes.HasPrefix(code, []byte{0xF3, 0x0F, 0x1E, 0xFA}), "endbr64"
		}
	}
	return spec
}

// x86Stubs builds the helper stubs: rax = the stub's return value, the
// caller-saved argument registers clobbered, ret. The sentinel is a hlt.
func x86Stubs(addrMap) []byte {
	page := make([]byte, pageSize)
	for i, h := range prog.Helpers {
		code := page[i*stubSize:]
		n := 0
		mov := func(prefix, op byte, v uint64) {
			code[n], code[n+1] = prefix, op
			binary.LittleEndian.PutUint64(code[n+2:], v)
			n += 10
		}
		if !prog.Emulated(h.ID) {
			mov(0x48, 0xB8, h.Ret) // rax; an emulated helper's is set at the stub (callHelper)
		}
		mov(0x48, 0xBF, prog.ClobberValue(prog.R1)) // rdi
		mov(0x48, 0xBE, prog.ClobberValue(prog.R2)) // rsi
		mov(0x48, 0xBA, prog.ClobberValue(prog.R3)) // rdx
		mov(0x48, 0xB9, prog.ClobberValue(prog.R4)) // rcx
		mov(0x49, 0xB8, prog.ClobberValue(prog.R5)) // r8
		code[n] = 0xC3
	}
	for _, t := range thunks {
		copy(page[t.off:], t.code)
	}
	page[sentinelOff] = 0xF4
	return page
}

func x86Disasm(code []byte, pc uint64) string {
	in, err := x86.Decode(code, pc, x86.Intel)
	if err != nil {
		return "?"
	}
	return in.Text
}

// CompileX86 JITs every function of w at the address the emulator loads it
// at, exactly as Load does, without an engine: for listings.
func CompileX86(w *prog.World, v prog.Kernel, c prog.Config) ([]*Loaded, error) {
	return compileWorld(x86Spec(c&x86Options), w, v)
}

// locateX86Fault finds the instruction that made a bad access. At an
// unmapped access Unicorn's PC is where it last synced it (the previous
// memory access: "push r15" for a load three instructions later,
// measured), but the registers are those of the access. So the
// instructions from there to the end of the block are read, and a
// candidate is one whose memory operand (explicit, or the stack's for
// push, pop, call, ret and leave), computed with those registers, covers
// the fault. An earlier candidate that did not fault ran before the
// registers took their values: one of the registers its address uses is
// written after it and before a later candidate (a load through r3
// before "r3 = 0x1000"). The first candidate not so spoiled is the one.
func locateX86Fault(m *machine, pc uint64, f *access) uint64 {
	if len(f.Regs) < 16 {
		return pc
	}
	// gpr is the 0..15 index of a general register of any width.
	gpr := func(r x86asm.Reg) int {
		switch {
		case r >= x86asm.RAX && r <= x86asm.R15:
			return int(r - x86asm.RAX)
		case r >= x86asm.EAX && r <= x86asm.R15L:
			return int(r - x86asm.EAX)
		case r >= x86asm.AX && r <= x86asm.R15W:
			return int(r - x86asm.AX)
		case r >= x86asm.AL && r <= x86asm.R15B:
			if r >= x86asm.SPB && r <= x86asm.DIB {
				return int(r-x86asm.SPB) + 4
			}
			if r >= x86asm.R8B {
				return int(r-x86asm.R8B) + 8
			}
			return int(r - x86asm.AL)
		}
		return -1
	}
	value := func(r x86asm.Reg) (uint64, bool) {
		n := gpr(r)
		if n < 0 {
			return 0, false
		}
		if r >= x86asm.EAX && r <= x86asm.R15L {
			return uint64(uint32(f.Regs[n])), true
		}
		return f.Regs[n], true
	}
	const rsp, rbp, rax, rdx = 4, 5, 0, 2
	// The block's instructions from pc: where each is, the registers it
	// writes, and, for a candidate, those its address uses.
	type step struct {
		at     uint64
		writes []int
		cand   bool
		uses   []int
	}
	var steps []step
	code := make([]byte, 16)
	for at := pc; at < pc+512; {
		if err := m.e.memReadInto(code, at); err != nil {
			break
		}
		in, err := x86asm.Decode(code, 64)
		if err != nil {
			break
		}
		next := at + uint64(in.Len)
		if !couldHaveRun(in, f.Regs, gpr) {
			// A constant its register does not hold: the run never got
			// here, so the fault is before.
			break
		}
		type operand struct {
			ea   uint64
			uses []int
		}
		var ops []operand
		var writes []int
		switch in.Op {
		case x86asm.PUSH, x86asm.CALL:
			ops = append(ops, operand{f.Regs[rsp] - 8, []int{rsp}})
			writes = append(writes, rsp)
		case x86asm.POP, x86asm.RET:
			ops = append(ops, operand{f.Regs[rsp], []int{rsp}})
			writes = append(writes, rsp)
		case x86asm.LEAVE:
			ops = append(ops, operand{f.Regs[rbp], []int{rbp}})
			writes = append(writes, rsp, rbp)
		case x86asm.MUL, x86asm.DIV, x86asm.IMUL, x86asm.IDIV, x86asm.CQO, x86asm.CDQ:
			writes = append(writes, rax, rdx)
		}
		for _, a := range in.Args {
			mem, ok := a.(x86asm.Mem)
			if !ok {
				continue
			}
			o := operand{ea: uint64(mem.Disp)}
			if mem.Base == x86asm.RIP {
				o.ea += next
			} else if mem.Base != 0 {
				v, vok := value(mem.Base)
				o.ea, o.uses, ok = o.ea+v, append(o.uses, gpr(mem.Base)), vok
			}
			if mem.Index != 0 {
				v, vok := value(mem.Index)
				o.ea, o.uses, ok = o.ea+v*uint64(mem.Scale), append(o.uses, gpr(mem.Index)), ok && vok
			}
			if ok {
				ops = append(ops, o)
			}
		}
		// The destination register, for the instructions that write one.
		switch in.Op {
		case x86asm.CMP, x86asm.TEST, x86asm.PUSH, x86asm.JMP, x86asm.CALL, x86asm.RET, x86asm.NOP:
		default:
			if r, ok := in.Args[0].(x86asm.Reg); ok && gpr(r) >= 0 {
				writes = append(writes, gpr(r))
			}
			if r, ok := in.Args[1].(x86asm.Reg); ok && in.Op == x86asm.XCHG && gpr(r) >= 0 {
				writes = append(writes, gpr(r))
			}
		}
		st := step{at: at, writes: writes}
		for _, o := range ops {
			if f.Addr+uint64(f.Size) > o.ea && f.Addr < o.ea+16 {
				st.cand, st.uses = true, o.uses
				break
			}
		}
		steps = append(steps, st)
		if strings.HasPrefix(in.Op.String(), "J") || in.Op == x86asm.CALL || in.Op == x86asm.RET {
			break // the block ends: the fault is in it
		}
		at = next
	}
	for j, c := range steps {
		if !c.cand {
			continue
		}
		// The first write to c's address registers after it...
		p := len(steps)
		for k := j + 1; k < len(steps) && p == len(steps); k++ {
			if slices.ContainsFunc(steps[k].writes, func(r int) bool { return slices.Contains(c.uses, r) }) {
				p = k
			}
		}
		// ...spoils it if a later candidate comes after that write.
		if !slices.ContainsFunc(steps[min(p+1, len(steps)):], func(s step) bool { return s.cand }) {
			return c.at
		}
	}
	return pc
}

// couldHaveRun is false for an instruction that sets a register to a
// constant the register does not hold at the fault (mov r, imm; xor r, r):
// the run stopped before it.
func couldHaveRun(in x86asm.Inst, regs []uint64, gpr func(x86asm.Reg) int) bool {
	r, ok := in.Args[0].(x86asm.Reg)
	if !ok || gpr(r) < 0 {
		return true
	}
	cur := regs[gpr(r)]
	switch {
	case in.Op == x86asm.MOV && r >= x86asm.RAX && r <= x86asm.R15:
		if imm, ok := in.Args[1].(x86asm.Imm); ok {
			return cur == uint64(imm)
		}
	case in.Op == x86asm.MOV && r >= x86asm.EAX && r <= x86asm.R15L:
		if imm, ok := in.Args[1].(x86asm.Imm); ok {
			return cur == uint64(uint32(imm))
		}
	case in.Op == x86asm.XOR && in.Args[1] == in.Args[0] && (r >= x86asm.EAX && r <= x86asm.R15L || r >= x86asm.RAX && r <= x86asm.R15):
		return cur == 0
	}
	return true
}
