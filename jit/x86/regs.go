// Package x86 is the x86-64 BPF JIT of arch/x86/net/bpf_jit_comp.c, for the
// instruction subset tailsim models, emitting the same bytes as bpf-next
// (late 2025) and as the "Eliminate max_entries and bpf_func access at
// runtime" series. Helpers carry the kernel's names so each has a findable
// twin: emit_bpf_tail_call_indirect is emitTailCallIndirect, and so on.
//
// The build configuration (Options.Config, docs/kernel.md §13) decides
// what the kernel's build and boot decide: IBT's landing pads, what ends an
// indirect jump (emitIndirectJump) and a return (emitReturn), and BMI2
// shifts. Not modelled: kCFI, the ITS thunk and call-depth accounting.
package x86

import "tailsim/prog"

// Extra registers beyond BPF's R0–R10, as the kernel numbers them.
const (
	regAX  = 11 // BPF_REG_AX: r10
	regAux = 12 // AUX_REG: r11
)

// reg2hex is the low three bits of each register's x86 number.
var reg2hex = [...]byte{
	prog.R0:  0, // rax
	prog.R1:  7, // rdi
	prog.R2:  6, // rsi
	prog.R3:  2, // rdx
	prog.R4:  1, // rcx
	prog.R5:  0, // r8
	prog.R6:  3, // rbx
	prog.R7:  5, // r13
	prog.R8:  6, // r14
	prog.R9:  7, // r15
	prog.R10: 5, // rbp
	regAX:    2, // r10
	regAux:   3, // r11
}

// isEreg reports registers that need a REX extension bit (r8–r15).
func isEreg(r int) bool {
	switch r {
	case int(prog.R5), int(prog.R7), int(prog.R8), int(prog.R9), regAX, regAux:
		return true
	}
	return false
}

// isEreg8l adds the registers whose low byte needs a REX prefix (dil, sil, bpl).
func isEreg8l(r int) bool {
	return isEreg(r) || r == int(prog.R1) || r == int(prog.R2) || r == int(prog.R10)
}

func add1mod(b byte, r int) byte {
	if isEreg(r) {
		b |= 1
	}
	return b
}

func add2mod(b byte, r1, r2 int) byte {
	if isEreg(r1) {
		b |= 1
	}
	if isEreg(r2) {
		b |= 4
	}
	return b
}

func add1reg(b byte, dst int) byte      { return b + reg2hex[dst] }
func add2reg(b byte, dst, src int) byte { return b + reg2hex[dst] + reg2hex[src]<<3 }

func isImm8(v int64) bool          { return v <= 127 && v >= -128 }
func isImm8JmpOffset(v int64) bool { return v <= 123 && v >= -128 }
func isSimm32(v int64) bool        { return v == int64(int32(v)) }
func isUimm32(v uint64) bool       { return v == uint64(uint32(v)) }

// simpleALUOpcodes maps BPF ops to the x86 opcode (reg,reg) or /r field.
var simpleALUOpcodes = map[prog.ALUOp]byte{
	prog.OpAdd: 0x01, prog.OpSub: 0x29, prog.OpAnd: 0x21, prog.OpOr: 0x09, prog.OpXor: 0x31,
	prog.OpLsh: 0xE0, prog.OpRsh: 0xE8, prog.OpArsh: 0xF8,
}

// Condition codes of the short Jcc forms.
const (
	jmpJE  = 0x74
	jmpJNE = 0x75
	jmpJA  = 0x77
	jmpJB  = 0x72
	jmpJAE = 0x73
	jmpJBE = 0x76
	jmpJG  = 0x7F
	jmpJL  = 0x7C
	jmpJGE = 0x7D
	jmpJLE = 0x7E
)

var jmpCond = map[prog.JumpOp]byte{
	prog.OpJEQ: jmpJE, prog.OpJSET: jmpJNE, prog.OpJNE: jmpJNE, prog.OpJGT: jmpJA, prog.OpJLT: jmpJB,
	prog.OpJGE: jmpJAE, prog.OpJLE: jmpJBE, prog.OpJSGT: jmpJG, prog.OpJSLT: jmpJL, prog.OpJSGE: jmpJGE,
	prog.OpJSLE: jmpJLE,
}

// Fixed sequences.
var (
	endbr64 = []byte{0xF3, 0x0F, 0x1E, 0xFA}
	nop5    = []byte{0x0F, 0x1F, 0x44, 0x00, 0x00}
	nops    = [][]byte{
		nil,
		{0x90},
		{0x66, 0x90},
		{0x0F, 0x1F, 0x00},
		{0x0F, 0x1F, 0x40, 0x00},
		{0x0F, 0x1F, 0x44, 0x00, 0x00},
	}
)

// X86PatchSize is the size of the fentry and poke sites.
const X86PatchSize = 5
