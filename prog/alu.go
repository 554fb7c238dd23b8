package prog

// EvalALU computes dst op src with the kernel interpreter's semantics:
// 32-bit operations work on the low halves and zero-extend, division by zero
// yields 0, modulo by zero leaves dst unchanged, shift counts are masked.
// src is already the operand value (a sign-extended imm for ALU64 K forms).
func EvalALU(op ALUOp, is64 bool, dst, src uint64) uint64 {
	if !is64 {
		d, s := uint32(dst), uint32(src)
		var r uint32
		switch op {
		case OpAdd:
			r = d + s
		case OpSub:
			r = d - s
		case OpMul:
			r = d * s
		case OpDiv:
			if s != 0 {
				r = d / s
			}
		case OpMod:
			r = d
			if s != 0 {
				r = d % s
			}
		case OpOr:
			r = d | s
		case OpAnd:
			r = d & s
		case OpXor:
			r = d ^ s
		case OpLsh:
			r = d << (s & 31)
		case OpRsh:
			r = d >> (s & 31)
		case OpArsh:
			r = uint32(int32(d) >> (s & 31))
		case OpNeg:
			r = -d
		case OpMov:
			r = s
		}
		return uint64(r)
	}
	switch op {
	case OpAdd:
		return dst + src
	case OpSub:
		return dst - src
	case OpMul:
		return dst * src
	case OpDiv:
		if src == 0 {
			return 0
		}
		return dst / src
	case OpMod:
		if src == 0 {
			return dst
		}
		return dst % src
	case OpOr:
		return dst | src
	case OpAnd:
		return dst & src
	case OpXor:
		return dst ^ src
	case OpLsh:
		return dst << (src & 63)
	case OpRsh:
		return dst >> (src & 63)
	case OpArsh:
		return uint64(int64(dst) >> (src & 63))
	case OpNeg:
		return -dst
	case OpMov:
		return src
	}
	return dst
}

// EvalJump decides a conditional jump. For JMP32 only the low halves compare.
func EvalJump(op JumpOp, is64 bool, a, b uint64) bool {
	if !is64 {
		a, b = uint64(uint32(a)), uint64(uint32(b))
		sa, sb := int64(int32(a)), int64(int32(b))
		return cmp(op, a, b, sa, sb)
	}
	return cmp(op, a, b, int64(a), int64(b))
}

func cmp(op JumpOp, a, b uint64, sa, sb int64) bool {
	switch op {
	case OpJA:
		return true
	case OpJEQ:
		return a == b
	case OpJNE:
		return a != b
	case OpJGT:
		return a > b
	case OpJGE:
		return a >= b
	case OpJLT:
		return a < b
	case OpJLE:
		return a <= b
	case OpJSGT:
		return sa > sb
	case OpJSGE:
		return sa >= sb
	case OpJSLT:
		return sa < sb
	case OpJSLE:
		return sa <= sb
	case OpJSET:
		return a&b != 0
	}
	return false
}

// Operand returns the second operand of an ALU or jump instruction: the
// register's value for X forms, the immediate sign-extended to 64 bits for K.
func (ins Instruction) Operand(regs *[11]uint64) uint64 {
	if ins.OpCode.Source() == SourceX {
		return regs[ins.Src]
	}
	return uint64(int64(int32(ins.Imm)))
}
