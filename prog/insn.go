// Package prog models the BPF side of a tail-call scenario: the instruction
// subset, programs and their subprograms, prog arrays, structure layouts, the
// verifier-like fix-up of tail-call sites, and the outcome of a run. It is pure
// Go; the assembler lives in prog/asm and the reference interpreter in
// prog/interp.
package prog

import (
	"encoding/binary"
	"fmt"
)

// Register is a BPF register, R0–R10.
type Register uint8

const (
	R0 Register = iota
	R1
	R2
	R3
	R4
	R5
	R6
	R7
	R8
	R9
	R10
	// RFP is the read-only frame pointer.
	RFP = R10
)

func (r Register) String() string { return fmt.Sprintf("r%d", uint8(r)) }

// Class is the low three bits of an opcode.
type Class uint8

const (
	ClassLD    Class = 0x00
	ClassLDX   Class = 0x01
	ClassST    Class = 0x02
	ClassSTX   Class = 0x03
	ClassALU   Class = 0x04
	ClassJMP   Class = 0x05
	ClassJMP32 Class = 0x06
	ClassALU64 Class = 0x07
)

var classNames = [...]string{"ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64"}

func (c Class) String() string { return classNames[c&7] }

// Size is the width of a memory access.
type Size uint8

const (
	SizeW  Size = 0x00
	SizeH  Size = 0x08
	SizeB  Size = 0x10
	SizeDW Size = 0x18
)

// Bytes returns the access width in bytes.
func (s Size) Bytes() int {
	switch s {
	case SizeB:
		return 1
	case SizeH:
		return 2
	case SizeW:
		return 4
	}
	return 8
}

// String returns the C type name used by the assembly syntax.
func (s Size) String() string {
	switch s {
	case SizeB:
		return "u8"
	case SizeH:
		return "u16"
	case SizeW:
		return "u32"
	}
	return "u64"
}

// Mode selects the kind of load or store.
type Mode uint8

const (
	ModeIMM Mode = 0x00
	ModeMEM Mode = 0x60
)

// Source says whether the second operand is the immediate (K) or a register (X).
type Source uint8

const (
	SourceK Source = 0x00
	SourceX Source = 0x08
)

// ALUOp is the operation of an ALU or ALU64 instruction.
type ALUOp uint8

const (
	OpAdd  ALUOp = 0x00
	OpSub  ALUOp = 0x10
	OpMul  ALUOp = 0x20
	OpDiv  ALUOp = 0x30
	OpOr   ALUOp = 0x40
	OpAnd  ALUOp = 0x50
	OpLsh  ALUOp = 0x60
	OpRsh  ALUOp = 0x70
	OpNeg  ALUOp = 0x80
	OpMod  ALUOp = 0x90
	OpXor  ALUOp = 0xa0
	OpMov  ALUOp = 0xb0
	OpArsh ALUOp = 0xc0
)

var aluNames = map[ALUOp]string{
	OpAdd: "add", OpSub: "sub", OpMul: "mul", OpDiv: "div", OpOr: "or", OpAnd: "and",
	OpLsh: "lsh", OpRsh: "rsh", OpNeg: "neg", OpMod: "mod", OpXor: "xor", OpMov: "mov", OpArsh: "arsh",
}

func (op ALUOp) String() string {
	if s, ok := aluNames[op]; ok {
		return s
	}
	return fmt.Sprintf("alu(%#x)", uint8(op))
}

// JumpOp is the operation of a JMP or JMP32 instruction.
type JumpOp uint8

const (
	OpJA       JumpOp = 0x00
	OpJEQ      JumpOp = 0x10
	OpJGT      JumpOp = 0x20
	OpJGE      JumpOp = 0x30
	OpJSET     JumpOp = 0x40
	OpJNE      JumpOp = 0x50
	OpJSGT     JumpOp = 0x60
	OpJSGE     JumpOp = 0x70
	OpCall     JumpOp = 0x80
	OpExit     JumpOp = 0x90
	OpJLT      JumpOp = 0xa0
	OpJLE      JumpOp = 0xb0
	OpJSLT     JumpOp = 0xc0
	OpJSLE     JumpOp = 0xd0
	OpTailCall JumpOp = 0xf0
)

var jumpNames = map[JumpOp]string{
	OpJA: "ja", OpJEQ: "jeq", OpJGT: "jgt", OpJGE: "jge", OpJSET: "jset", OpJNE: "jne",
	OpJSGT: "jsgt", OpJSGE: "jsge", OpCall: "call", OpExit: "exit", OpJLT: "jlt", OpJLE: "jle",
	OpJSLT: "jslt", OpJSLE: "jsle", OpTailCall: "tail_call",
}

func (op JumpOp) String() string {
	if s, ok := jumpNames[op]; ok {
		return s
	}
	return fmt.Sprintf("jmp(%#x)", uint8(op))
}

// Conditional reports whether op compares two operands.
func (op JumpOp) Conditional() bool {
	switch op {
	case OpJA, OpCall, OpExit, OpTailCall:
		return false
	}
	_, ok := jumpNames[op]
	return ok
}

// OpCode is the first byte of struct bpf_insn.
type OpCode uint8

func (c OpCode) Class() Class   { return Class(c & 0x07) }
func (c OpCode) Size() Size     { return Size(c & 0x18) }
func (c OpCode) Mode() Mode     { return Mode(c & 0xe0) }
func (c OpCode) Source() Source { return Source(c & 0x08) }
func (c OpCode) ALUOp() ALUOp   { return ALUOp(c & 0xf0) }
func (c OpCode) JumpOp() JumpOp { return JumpOp(c & 0xf0) }

// IsALU reports whether c is an ALU or ALU64 instruction.
func (c OpCode) IsALU() bool { return c.Class() == ClassALU || c.Class() == ClassALU64 }

// IsJump reports whether c is a JMP or JMP32 instruction.
func (c OpCode) IsJump() bool { return c.Class() == ClassJMP || c.Class() == ClassJMP32 }

// Opcode constructors, named after the kernel's macros.
func ALU64(op ALUOp, src Source) OpCode  { return OpCode(uint8(ClassALU64) | uint8(op) | uint8(src)) }
func ALU32(op ALUOp, src Source) OpCode  { return OpCode(uint8(ClassALU) | uint8(op) | uint8(src)) }
func Jmp(op JumpOp, src Source) OpCode   { return OpCode(uint8(ClassJMP) | uint8(op) | uint8(src)) }
func Jmp32(op JumpOp, src Source) OpCode { return OpCode(uint8(ClassJMP32) | uint8(op) | uint8(src)) }
func LoadMem(sz Size) OpCode             { return OpCode(uint8(ClassLDX) | uint8(ModeMEM) | uint8(sz)) }
func StoreMem(sz Size) OpCode            { return OpCode(uint8(ClassSTX) | uint8(ModeMEM) | uint8(sz)) }
func StoreImm(sz Size) OpCode            { return OpCode(uint8(ClassST) | uint8(ModeMEM) | uint8(sz)) }
func LoadImm64() OpCode                  { return OpCode(uint8(ClassLD) | uint8(ModeIMM) | uint8(SizeDW)) }

func (c OpCode) String() string { return fmt.Sprintf("%#02x", uint8(c)) }

func (c OpCode) isJmp64(op JumpOp) bool { return c.Class() == ClassJMP && c.JumpOp() == op }

func (c OpCode) IsLoadImm64() bool { return c == LoadImm64() }
func (c OpCode) IsCall() bool      { return c.isJmp64(OpCall) }
func (c OpCode) IsExit() bool      { return c.isJmp64(OpExit) }
func (c OpCode) IsTailCall() bool  { return c.isJmp64(OpTailCall) }
func (c OpCode) IsJA() bool        { return c.IsJump() && c.JumpOp() == OpJA }
func (c OpCode) IsCondJump() bool  { return c.IsJump() && c.JumpOp().Conditional() }

// HasJumpOffset reports an instruction whose Off is a branch displacement.
func (c OpCode) HasJumpOffset() bool { return c.IsJA() || c.IsCondJump() }
func (c OpCode) IsMemLoad() bool     { return c.Class() == ClassLDX && c.Mode() == ModeMEM }
func (c OpCode) IsMemStore() bool {
	return (c.Class() == ClassSTX || c.Class() == ClassST) && c.Mode() == ModeMEM
}

// Pseudo source-register values with special meaning (uapi/linux/bpf.h).
const (
	PseudoMapFD = 1 // ld_imm64: imm is a map reference
	// PseudoMapValue (BPF_PSEUDO_MAP_VALUE): the ld_imm64 loads the
	// address of an array map's first value plus Imm (global data).
	PseudoMapValue = 2
	PseudoCall     = 1 // call: imm is a relative offset to a subprogram
)

// Helper IDs from include/uapi/linux/bpf.h used by the scenarios.
const (
	HelperTailCall = 12
)

// Instruction is one BPF instruction plus the metadata that listings and error
// messages need. A 64-bit immediate load is one Instruction that encodes to two
// struct bpf_insn slots.
type Instruction struct {
	OpCode OpCode
	Dst    Register
	Src    Register // a register, or a pseudo value (PseudoMapFD, PseudoCall)
	Off    int16    // jump offsets are in slots, as the kernel counts them
	Imm    int64    // 32-bit for everything but LoadImm64

	// Reference names what the instruction points at: the map of a map load,
	// the subprogram of a bpf2bpf call, or the label a jump goes to.
	Reference string
	// Labels defined on this instruction.
	Labels []string
	// Comment is carried into listings.
	Comment string
	// Source is the C source line an object's instruction came from
	// ("chain.bpf.c:38: bpf_tail_call(skb, &steps, key);"), on the first
	// instruction of each line; "" elsewhere.
	Source string
	// Line is the 1-based source line, 0 when built in code.
	Line int
}

// Slots is the number of struct bpf_insn the instruction occupies.
func (ins Instruction) Slots() int {
	if ins.OpCode.IsLoadImm64() {
		return 2
	}
	return 1
}

// IsHelperCall reports a call to a kernel helper (not a subprogram).
func (ins Instruction) IsHelperCall() bool {
	return ins.OpCode.IsCall() && ins.Src != PseudoCall
}

// IsSubprogCall reports a bpf2bpf call.
func (ins Instruction) IsSubprogCall() bool {
	return ins.OpCode.IsCall() && ins.Src == PseudoCall
}

// IsTailCall reports a tail call, before (call 12) or after fix-up.
func (ins Instruction) IsTailCall() bool {
	return ins.OpCode.IsTailCall() || (ins.IsHelperCall() && ins.Imm == HelperTailCall)
}

// IsMapLoad reports a 64-bit immediate load of a map reference.
func (ins Instruction) IsMapLoad() bool {
	return ins.OpCode.IsLoadImm64() && ins.Src == PseudoMapFD
}

// Encode appends the kernel's struct bpf_insn encoding (little endian).
func (ins Instruction) Encode(b []byte) []byte {
	put := func(code OpCode, dst, src Register, off int16, imm int32) {
		var s [8]byte
		s[0] = byte(code)
		s[1] = byte(dst&0xf) | byte(src&0xf)<<4
		binary.LittleEndian.PutUint16(s[2:], uint16(off))
		binary.LittleEndian.PutUint32(s[4:], uint32(imm))
		b = append(b, s[:]...)
	}
	put(ins.OpCode, ins.Dst, ins.Src, ins.Off, int32(ins.Imm))
	if ins.OpCode.IsLoadImm64() {
		put(0, 0, 0, 0, int32(uint64(ins.Imm)>>32))
	}
	return b
}

// Decode reads one instruction from b, returning it and the bytes consumed.
func Decode(b []byte) (Instruction, int, error) {
	if len(b) < 8 {
		return Instruction{}, 0, fmt.Errorf("truncated instruction: %d bytes", len(b))
	}
	ins := Instruction{
		OpCode: OpCode(b[0]),
		Dst:    Register(b[1] & 0xf),
		Src:    Register(b[1] >> 4),
		Off:    int16(binary.LittleEndian.Uint16(b[2:])),
		Imm:    int64(int32(binary.LittleEndian.Uint32(b[4:]))),
	}
	if !ins.OpCode.IsLoadImm64() {
		return ins, 8, nil
	}
	if len(b) < 16 {
		return Instruction{}, 0, fmt.Errorf("truncated 64-bit immediate load")
	}
	hi := binary.LittleEndian.Uint32(b[12:])
	ins.Imm = int64(uint64(uint32(ins.Imm)) | uint64(hi)<<32)
	return ins, 16, nil
}

// IsMovPercpuAddr reports the verifier's BPF_MOV64_PERCPU_REG: dst = src
// plus this CPU's per-CPU offset. Only the verifier emits it (a program
// that does is refused for its reserved off).
func (ins Instruction) IsMovPercpuAddr() bool {
	return ins.OpCode == ALU64(OpMov, SourceX) && ins.Off == AddrPercpu
}

// IsMapValueLoad reports a 64-bit immediate load of a map value's address
// (Reference names the array map, Imm is the offset into its value).
func (ins Instruction) IsMapValueLoad() bool {
	return ins.OpCode.IsLoadImm64() && ins.Src == PseudoMapValue
}

// Modelled reports why ins is outside the instruction subset tailsim
// models ("" when it is in it): a register past R10, or an opcode the
// JITs and the reference model do not know. The assembler writes only
// modelled instructions; an object may hold any bytes.
func (ins Instruction) Modelled() string {
	op := ins.OpCode
	regs := ins.Dst > R10 || ins.Src > R10
	switch {
	case op.IsALU():
		if _, ok := aluNames[op.ALUOp()]; !ok {
			return fmt.Sprintf("ALU operation %#x", uint8(op))
		}
		if op.ALUOp() == OpMov && op.Class() == ClassALU64 && op.Source() == SourceX && ins.Off != 0 && ins.Off != AddrPercpu {
			return fmt.Sprintf("a sign-extending mov (off %d)", ins.Off)
		}
	case op.IsLoadImm64():
		if ins.Dst > R10 || ins.Src > PseudoMapValue {
			return fmt.Sprintf("ld_imm64 with dst r%d, src %d", ins.Dst, ins.Src)
		}
		return ""
	case op.IsMemLoad(), op.IsMemStore():
	case op.IsCall(), op.IsTailCall(), op.IsExit():
		return ""
	case op.IsJump():
		if !op.JumpOp().Conditional() && op.JumpOp() != OpJA {
			return fmt.Sprintf("jump operation %#x", uint8(op))
		}
	default:
		return fmt.Sprintf("opcode %#02x (class %d, mode %#x)", uint8(op), op.Class(), uint8(op.Mode()))
	}
	if regs {
		return fmt.Sprintf("register r%d or r%d past r10", ins.Dst, ins.Src)
	}
	return ""
}
