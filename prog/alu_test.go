package prog

import (
	"fmt"
	"testing"
)

// TestEvalALU follows kernel/bpf/core.c (___bpf_prog_run) and the verifier's
// division fix-up in do_misc_fixups(): x / 0 = 0; x % 0 = x for ALU64 and
// (u32)x for ALU32; 32-bit results are zero-extended; shift counts are
// masked to 63 / 31. Expected values are worked out by hand.
func TestEvalALU(t *testing.T) {
	const (
		hi    = 0xdead_beef_0000_0000 // garbage in the upper half
		minus = 0xffff_ffff_ffff_ffff // -1
		i64n  = 0x8000_0000_0000_0000 // INT64_MIN
	)
	tests := []struct {
		op       ALUOp
		is64     bool
		dst, src uint64
		want     uint64
	}{
		// add / sub / mul wrap.
		{OpAdd, true, minus, 1, 0},
		{OpAdd, true, 0xffff_ffff, 1, 0x1_0000_0000},
		{OpAdd, false, 0xffff_ffff, 1, 0},
		{OpAdd, false, hi | 5, 3, 8}, // upper half dropped
		{OpSub, true, 0, 1, minus},
		{OpSub, false, 0, 1, 0xffff_ffff}, // zero-extended, not sign-extended
		{OpMul, true, 0x1_0000_0000, 0x1_0000_0000, 0},
		{OpMul, false, 0x1_0000, 0x1_0000, 0},
		{OpMul, false, 0xffff_ffff, 0xffff_ffff, 1},
		// div and mod, unsigned.
		{OpDiv, true, 100, 7, 14},
		{OpDiv, true, minus, 2, 0x7fff_ffff_ffff_ffff},
		{OpDiv, false, minus, 2, 0x7fff_ffff},
		{OpDiv, true, 123, 0, 0},
		{OpDiv, false, hi | 123, 0, 0},
		{OpDiv, false, 10, 0x1_0000_0000, 0}, // src truncates to 0
		{OpMod, true, 100, 7, 2},
		{OpMod, false, 0x1_0000_0005, 3, 2}, // (u32)dst = 5
		{OpMod, true, hi | 123, 0, hi | 123},
		{OpMod, false, hi | 123, 0, 123},
		{OpMod, false, 0xffff_ffff, 0x1_0000_0000, 0xffff_ffff},
		// bitwise.
		{OpOr, true, 0xf0, 0x0f, 0xff},
		{OpOr, false, hi, 1, 1},
		{OpAnd, true, minus, 0x1234, 0x1234},
		{OpAnd, false, minus, minus, 0xffff_ffff},
		{OpXor, true, minus, 0xff, 0xffff_ffff_ffff_ff00},
		{OpXor, false, minus, 0xff, 0xffff_ff00},
		// shifts: counts are masked, not saturated.
		{OpLsh, true, 1, 63, i64n},
		{OpLsh, true, 1, 64, 1},
		{OpLsh, true, 1, 65, 2},
		{OpLsh, false, 1, 31, 0x8000_0000},
		{OpLsh, false, 1, 32, 1},
		{OpLsh, false, 0x8000_0000, 1, 0},
		{OpRsh, true, i64n, 63, 1},
		{OpRsh, true, i64n, 64, i64n},
		{OpRsh, false, hi | 0x8000_0000, 31, 1},
		{OpRsh, false, 0x8000_0000, 33, 0x4000_0000},
		// arsh: sign-filling from bit 63 / bit 31.
		{OpArsh, true, i64n, 63, minus},
		{OpArsh, true, i64n, 1, 0xc000_0000_0000_0000},
		{OpArsh, true, 0x4000_0000_0000_0000, 62, 1},
		{OpArsh, true, i64n, 64, i64n},
		{OpArsh, false, 0x8000_0000, 31, 0xffff_ffff},
		{OpArsh, false, 0x8000_0000, 4, 0xf800_0000},
		{OpArsh, false, 0x1_7fff_ffff, 4, 0x07ff_ffff}, // bit 32 is not the sign
		{OpArsh, false, 0x8000_0000, 32, 0x8000_0000},
		// neg and mov.
		{OpNeg, true, 1, 0, minus},
		{OpNeg, true, i64n, 0, i64n},
		{OpNeg, false, 1, 0, 0xffff_ffff},
		{OpNeg, false, hi, 0, 0},
		{OpMov, true, 5, minus, minus},
		{OpMov, false, 5, minus, 0xffff_ffff},
		{OpMov, false, minus, hi | 7, 7},
	}
	for _, tt := range tests {
		w := 32
		if tt.is64 {
			w = 64
		}
		if got := EvalALU(tt.op, tt.is64, tt.dst, tt.src); got != tt.want {
			t.Errorf("EvalALU(%v/%d, %#x, %#x) = %#x, want %#x", tt.op, w, tt.dst, tt.src, got, tt.want)
		}
	}
}

// TestEvalJump: unsigned and signed compares, JSET, and JMP32 seeing only the
// low halves.
func TestEvalJump(t *testing.T) {
	const minus = 0xffff_ffff_ffff_ffff
	tests := []struct {
		op   JumpOp
		is64 bool
		a, b uint64
		want bool
	}{
		{OpJA, true, 0, 1, true},
		{OpJEQ, true, 5, 5, true},
		{OpJEQ, true, 0x1_0000_0005, 5, false},
		{OpJEQ, false, 0x1_0000_0005, 5, true},
		{OpJEQ, false, 5, 0xffff_ffff_0000_0005, true},
		{OpJNE, true, 0x1_0000_0005, 5, true},
		{OpJNE, false, 0x1_0000_0005, 5, false},
		{OpJGT, true, minus, 0, true}, // unsigned: -1 is the largest
		{OpJGT, true, 1, 1, false},
		{OpJGT, false, 0x1_0000_0000, 1, false}, // low half 0
		{OpJGE, true, 1, 1, true},
		{OpJGE, false, 0xffff_ffff, 0x1_0000_0000, true},
		{OpJLT, true, 0, minus, true},
		{OpJLT, false, 0x2_0000_0001, 2, true},
		{OpJLE, true, 2, 2, true},
		{OpJLE, true, 3, 2, false},
		{OpJSGT, true, minus, 0, false}, // signed: -1 < 0
		{OpJSGT, true, 0, minus, true},
		{OpJSGT, false, 0x8000_0000, 0, false}, // INT32_MIN
		{OpJSGT, true, 0x8000_0000, 0, true},   // positive as 64 bits
		{OpJSGE, true, minus, minus, true},
		{OpJSGE, false, 0x1_ffff_ffff, 0, false}, // -1 as 32 bits
		{OpJSLT, true, 0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff, true},
		{OpJSLT, false, 0x8000_0000, 0, true},
		{OpJSLT, true, 0x8000_0000, 0, false},
		{OpJSLE, true, minus, minus, true},
		{OpJSLE, false, 0x7fff_ffff, 0xffff_ffff_8000_0000, false},
		{OpJSET, true, 0x1_0000_0000, 0x1_0000_0000, true},
		{OpJSET, false, 0x1_0000_0000, 0x1_0000_0000, false},
		{OpJSET, true, 6, 1, false},
	}
	for _, tt := range tests {
		if got := EvalJump(tt.op, tt.is64, tt.a, tt.b); got != tt.want {
			t.Errorf("EvalJump(%v/%v, %#x, %#x) = %v, want %v", tt.op, tt.is64, tt.a, tt.b, got, tt.want)
		}
	}
}

// TestOperand: K forms sign-extend imm to 64 bits, X forms read the register.
func TestOperand(t *testing.T) {
	var regs [11]uint64
	for i := range regs {
		regs[i] = 0x100 + uint64(i)
	}
	tests := []struct {
		ins  Instruction
		want uint64
	}{
		{Instruction{OpCode: ALU64(OpAdd, SourceK), Imm: -1}, 0xffff_ffff_ffff_ffff},
		{Instruction{OpCode: ALU64(OpAdd, SourceK), Imm: 0x7fff_ffff}, 0x7fff_ffff},
		{Instruction{OpCode: ALU32(OpAdd, SourceK), Imm: -2}, 0xffff_ffff_ffff_fffe},
		{Instruction{OpCode: Jmp(OpJEQ, SourceK), Imm: -2147483648}, 0xffff_ffff_8000_0000},
		{Instruction{OpCode: ALU64(OpAdd, SourceX), Src: R7, Imm: 99}, 0x107},
		{Instruction{OpCode: Jmp32(OpJEQ, SourceX), Src: R10}, 0x10a},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := tt.ins.Operand(&regs); got != tt.want {
				t.Errorf("Operand(%#02x imm %d) = %#x, want %#x", uint8(tt.ins.OpCode), tt.ins.Imm, got, tt.want)
			}
		})
	}
}
