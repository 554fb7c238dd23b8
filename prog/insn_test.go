package prog

import (
	"encoding/hex"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestOpcodes checks the constructors and accessors against the uapi values
// (include/uapi/linux/bpf_common.h, bpf.h), composed by hand:
// class | op | source, or class | mode | size.
func TestOpcodes(t *testing.T) {
	tests := []struct {
		name  string
		got   OpCode
		want  uint8
		class Class
	}{
		{"ALU64|ADD|K", ALU64(OpAdd, SourceK), 0x07, ClassALU64},
		{"ALU64|ADD|X", ALU64(OpAdd, SourceX), 0x0f, ClassALU64},
		{"ALU64|MOV|K", ALU64(OpMov, SourceK), 0xb7, ClassALU64},
		{"ALU64|MOV|X", ALU64(OpMov, SourceX), 0xbf, ClassALU64},
		{"ALU64|ARSH|X", ALU64(OpArsh, SourceX), 0xcf, ClassALU64},
		{"ALU64|NEG", ALU64(OpNeg, SourceK), 0x87, ClassALU64},
		{"ALU|MOV|K", ALU32(OpMov, SourceK), 0xb4, ClassALU},
		{"ALU|MOD|X", ALU32(OpMod, SourceX), 0x9c, ClassALU},
		{"ALU|XOR|K", ALU32(OpXor, SourceK), 0xa4, ClassALU},
		{"JMP|JA", Jmp(OpJA, SourceK), 0x05, ClassJMP},
		{"JMP|JEQ|K", Jmp(OpJEQ, SourceK), 0x15, ClassJMP},
		{"JMP|JSLE|X", Jmp(OpJSLE, SourceX), 0xdd, ClassJMP},
		{"JMP|CALL", Jmp(OpCall, SourceK), 0x85, ClassJMP},
		{"JMP|EXIT", Jmp(OpExit, SourceK), 0x95, ClassJMP},
		{"JMP|TAIL_CALL", Jmp(OpTailCall, SourceK), 0xf5, ClassJMP},
		{"JMP32|JNE|K", Jmp32(OpJNE, SourceK), 0x56, ClassJMP32},
		{"JMP32|JSET|X", Jmp32(OpJSET, SourceX), 0x4e, ClassJMP32},
		{"LDX|MEM|W", LoadMem(SizeW), 0x61, ClassLDX},
		{"LDX|MEM|H", LoadMem(SizeH), 0x69, ClassLDX},
		{"LDX|MEM|B", LoadMem(SizeB), 0x71, ClassLDX},
		{"LDX|MEM|DW", LoadMem(SizeDW), 0x79, ClassLDX},
		{"STX|MEM|W", StoreMem(SizeW), 0x63, ClassSTX},
		{"STX|MEM|DW", StoreMem(SizeDW), 0x7b, ClassSTX},
		{"ST|MEM|B", StoreImm(SizeB), 0x72, ClassST},
		{"ST|MEM|H", StoreImm(SizeH), 0x6a, ClassST},
		{"LD|IMM|DW", LoadImm64(), 0x18, ClassLD},
	}
	for _, tt := range tests {
		if uint8(tt.got) != tt.want {
			t.Errorf("%s = %#02x, want %#02x", tt.name, uint8(tt.got), tt.want)
		}
		if c := OpCode(tt.want).Class(); c != tt.class {
			t.Errorf("%s: Class() = %v, want %v", tt.name, c, tt.class)
		}
	}
}

// TestOpcodePredicates classifies raw opcode bytes.
func TestOpcodePredicates(t *testing.T) {
	type preds struct {
		alu, jump, ldImm64, call, exit, tail, ja, cond, load, store bool
	}
	tests := []struct {
		code uint8
		want preds
	}{
		{0x07, preds{alu: true}},
		{0xc4, preds{alu: true}},
		{0x18, preds{ldImm64: true}},
		{0x05, preds{jump: true, ja: true}},
		{0x15, preds{jump: true, cond: true}},
		{0xde, preds{jump: true, cond: true}},
		{0x45, preds{jump: true, cond: true}},
		{0x85, preds{jump: true, call: true}},
		{0x95, preds{jump: true, exit: true}},
		{0xf5, preds{jump: true, tail: true}},
		{0x86, preds{jump: true}}, // JMP32|CALL is not a call
		{0x96, preds{jump: true}}, // JMP32|EXIT is not an exit
		{0x61, preds{load: true}},
		{0x79, preds{load: true}},
		{0x63, preds{store: true}},
		{0x7a, preds{store: true}},
		{0x20, preds{}}, // LD|ABS|W: outside the subset
		{0xdb, preds{}}, // STX|ATOMIC|DW: outside the subset
	}
	for _, tt := range tests {
		c := OpCode(tt.code)
		got := preds{c.IsALU(), c.IsJump(), c.IsLoadImm64(), c.IsCall(), c.IsExit(), c.IsTailCall(),
			c.IsJA(), c.IsCondJump(), c.IsMemLoad(), c.IsMemStore()}
		if got != tt.want {
			t.Errorf("%#02x: %+v, want %+v", tt.code, got, tt.want)
		}
		if c.HasJumpOffset() != (tt.want.ja || tt.want.cond) {
			t.Errorf("%#02x: HasJumpOffset = %v", tt.code, c.HasJumpOffset())
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		s     Size
		bytes int
		name  string
	}{
		{SizeB, 1, "u8"}, {SizeH, 2, "u16"}, {SizeW, 4, "u32"}, {SizeDW, 8, "u64"},
	}
	for _, tt := range tests {
		if tt.s.Bytes() != tt.bytes || tt.s.String() != tt.name {
			t.Errorf("size %#x: %d %q, want %d %q", uint8(tt.s), tt.s.Bytes(), tt.s.String(), tt.bytes, tt.name)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeDecode uses instructions built in code, with bytes laid out by
// hand as struct bpf_insn.
func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		ins  Instruction
		want string
	}{
		{"mov r0, 1", Instruction{OpCode: 0xb7, Dst: R0, Imm: 1}, "b7 00 0000 01000000"},
		{"regs nibbles", Instruction{OpCode: 0xbf, Dst: R9, Src: R10}, "bf a9 0000 00000000"},
		{"off min", Instruction{OpCode: 0x79, Dst: R1, Src: R10, Off: -32768}, "79 a1 0080 00000000"},
		{"off max", Instruction{OpCode: 0x05, Off: 32767}, "05 00 ff7f 00000000"},
		{"imm min", Instruction{OpCode: 0x07, Dst: R1, Imm: -2147483648}, "07 01 0000 00000080"},
		{"tail call imm", Instruction{OpCode: 0xf5, Imm: 0x0400013f}, "f5 00 0000 3f010004"},
		{"ld_imm64", Instruction{OpCode: 0x18, Dst: R3, Imm: 0x1122334455667788}, "18 03 0000 88776655 00 00 0000 44332211"},
		{"ld_imm64 negative", Instruction{OpCode: 0x18, Dst: R3, Imm: -2}, "18 03 0000 feffffff 00 00 0000 ffffffff"},
		{"ld_imm64 high bit of low half", Instruction{OpCode: 0x18, Dst: R1, Imm: 0x80000000}, "18 01 0000 00000080 00 00 0000 00000000"},
		{"map load", Instruction{OpCode: 0x18, Dst: R2, Src: PseudoMapFD}, "18 12 0000 00000000 00 00 0000 00000000"},
		{"subprog call", Instruction{OpCode: 0x85, Src: PseudoCall, Imm: -3}, "85 10 0000 fdffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := tt.ins.Encode([]byte{0xee})
			if diff := gocmp.Diff(append([]byte{0xee}, want...), got); diff != "" {
				t.Errorf("Encode appends wrongly (-want +got):\n%s", diff)
			}
			if tt.ins.Slots()*8 != len(want) {
				t.Errorf("Slots() = %d for %d bytes", tt.ins.Slots(), len(want))
			}
			dec, n, err := Decode(append(want, 0xff, 0xff)) // trailing bytes are not consumed
			if err != nil || n != len(want) {
				t.Fatalf("Decode = %d, %v; want %d bytes", n, err, len(want))
			}
			if diff := gocmp.Diff(tt.ins, dec); diff != "" {
				t.Errorf("Decode(Encode(x)) != x (-x +decoded):\n%s", diff)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	tests := []struct {
		name string
		b    string
	}{
		{"empty", ""},
		{"7 bytes", "b7 00 0000 010000"},
		{"ld_imm64 first half only", "18 01 0000 01000000"},
		{"ld_imm64 15 bytes", "18 01 0000 01000000 00 00 0000 000000"},
	}
	for _, tt := range tests {
		if _, n, err := Decode(unhex(t, tt.b)); err == nil || n != 0 {
			t.Errorf("%s: Decode = %d bytes, %v; want an error", tt.name, n, err)
		}
	}
}

func TestInstructionKinds(t *testing.T) {
	tests := []struct {
		name                                    string
		ins                                     Instruction
		helper, subprog, tail, mapLoad, ldImm64 bool
	}{
		{"helper 12", Instruction{OpCode: 0x85, Imm: HelperTailCall}, true, false, true, false, false},
		{"helper 5", Instruction{OpCode: 0x85, Imm: 5}, true, false, false, false, false},
		{"fixed-up tail call", Instruction{OpCode: 0xf5}, false, false, true, false, false},
		{"pseudo call with imm 12", Instruction{OpCode: 0x85, Src: PseudoCall, Imm: 12}, false, true, false, false, false},
		{"map load", Instruction{OpCode: 0x18, Src: PseudoMapFD}, false, false, false, true, true},
		{"constant load", Instruction{OpCode: 0x18}, false, false, false, false, true},
		{"map fd in a mov", Instruction{OpCode: 0xb7, Src: PseudoMapFD}, false, false, false, false, false},
	}
	for _, tt := range tests {
		got := [5]bool{tt.ins.IsHelperCall(), tt.ins.IsSubprogCall(), tt.ins.IsTailCall(), tt.ins.IsMapLoad(), tt.ins.OpCode.IsLoadImm64()}
		want := [5]bool{tt.helper, tt.subprog, tt.tail, tt.mapLoad, tt.ldImm64}
		if got != want {
			t.Errorf("%s: helper/subprog/tail/map/ldimm64 = %v, want %v", tt.name, got, want)
		}
		if wantSlots := map[bool]int{false: 1, true: 2}[tt.ldImm64]; tt.ins.Slots() != wantSlots {
			t.Errorf("%s: Slots = %d, want %d", tt.name, tt.ins.Slots(), wantSlots)
		}
	}
}
