package emu

import (
	"tailsim/jit"
	"tailsim/prog"
)

// archSpec is what differs between the emulated arches; everything else —
// memory layout, arrays, slot changes, hooks and checks — is shared.
type archSpec struct {
	// helperArgs are the registers of R1–R5 at a helper call, helperRet
	// the one a helper returns in (x86 rax; arm64 x0, which the JIT then
	// moves to R0's x7).
	helperArgs []int
	helperRet  int
	name       string
	arch       arch
	tailEntry  func(prog.Kernel) int // where tail calls land in bpf_func
	compile    func(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, v prog.Kernel, l prog.Layout) (*jit.Image, error)
	stubs      func(at addrMap) []byte // the helper stubs page, with the sentinel
	at         addrMap                 // where the kernel objects are

	// Registers read at every tail-call hook, their names, and the roles
	// some of them play (indexes into regs).
	regs           []int
	names          []string
	r1, r2, r3, sp int
	kept           []int // R6–R9 and the BPF frame pointer: unchanged on fall-through
	// expectedSP is where the stack pointer must be when a tail call jumps.
	expectedSP func(v prog.Kernel, regs []uint64) (uint64, string)
	// counter finds the tail-call counter a call at a site of img is
	// about to read, from the registers at the site (m.v says which
	// kernel's convention).
	counter func(m *machine, regs []uint64, img *jit.Image) counterLoc
	// jumpTarget is the register a non-direct tail call jumps through.
	jumpTarget func(regs []uint64, kind prog.SiteKind) uint64

	spReg, r1Reg, r0Reg int
	scratch             []int // zeroed before each run
	// saved are the ABI callee-saved registers, given these values on
	// entry and checked at the return.
	saved      map[int]uint64
	savedNames map[int]string
	// enter prepares the return to the sentinel; it returns the stack
	// pointer to start with and the one expected after the return.
	enter func(m *machine, sp uint64) (start, after uint64)
	// stepRegs are the registers a stepped run reports; operands names
	// the registers an instruction's memory operand is made of and those
	// it loads (as in stepRegs, before the BPF role).
	stepRegs stepRegs
	operands func(code []byte) (addr, loads []string)
	// directTailCalls is the JIT's (x86: direct calls with poke sites).
	directTailCalls bool
	disasm          func(code []byte, pc uint64) string
	// setup prepares, once per engine, what the arch's inlined code reads
	// besides the world.
	setup func(e *engine) error
	// locateFault corrects the PC Unicorn reports for a bad access.
	locateFault func(m *machine, pc uint64, f *access) uint64
	// landingPad is set when the code is built for indirect-branch
	// tracking (x86 IBT, arm64 BTI), which Unicorn does not enforce: it
	// reports whether the instruction at the start of code is a landing
	// pad an indirect jump may reach, and names the one it wants.
	landingPad func(code []byte) (ok bool, want string)
	// pac is set when the code signs its return addresses (arm64 PAC):
	// Unicorn runs paciasp and autiasp as nops, so the machine keeps the
	// signed (lr, sp) pairs itself.
	pac bool
}

// counterLoc is where a tail call's counter lives: a cell in memory
// (v6.18's, behind tcc_ptr; 6.1 x86's upper half of the pushed rax) or a
// register (6.1 arm64's x26).
type counterLoc struct {
	addr uint64
	size int // bytes at addr; 0: the register
	reg  int // index into archSpec.regs when size is 0
}

// readCounter reads the counter at loc now.
func (m *machine) readCounter(loc counterLoc) uint64 {
	switch loc.size {
	case 0:
		v, _ := m.e.regRead(m.spec.regs[loc.reg])
		return v
	case 4:
		return m.read64(loc.addr) & 0xffff_ffff
	}
	return m.read64(loc.addr)
}
