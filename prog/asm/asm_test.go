package asm

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"tailsim/prog"
)

// encTests lists every instruction form the assembler reads. want is the
// kernel's struct bpf_insn encoding, written out by hand from the uapi
// opcode values (include/uapi/linux/bpf.h, bpf_common.h):
//
//	byte 0     code = class | op | source  (or class | mode | size)
//	byte 1     dst_reg | src_reg << 4
//	bytes 2–3  off, little endian
//	bytes 4–7  imm, little endian
//
// Classes: LD 0x00, LDX 0x01, ST 0x02, STX 0x03, ALU 0x04, JMP 0x05,
// JMP32 0x06, ALU64 0x07. Sources: K 0x00, X 0x08. ALU ops: ADD 0x00,
// SUB 0x10, MUL 0x20, DIV 0x30, OR 0x40, AND 0x50, LSH 0x60, RSH 0x70,
// NEG 0x80, MOD 0x90, XOR 0xa0, MOV 0xb0, ARSH 0xc0. Jump ops: JA 0x00,
// JEQ 0x10, JGT 0x20, JGE 0x30, JSET 0x40, JNE 0x50, JSGT 0x60, JSGE 0x70,
// CALL 0x80, EXIT 0x90, JLT 0xa0, JLE 0xb0, JSLT 0xc0, JSLE 0xd0. Memory:
// MEM 0x60, IMM 0x00; sizes W 0x00, H 0x08, B 0x10, DW 0x18.
// BPF_PSEUDO_MAP_FD and BPF_PSEUDO_CALL are src_reg 1.
//
// text is the canonical (llvm-objdump) spelling Format must print; empty
// means src is already canonical.
var encTests = []struct {
	src  string
	want string // hex, spaces ignored
	text string
}{
	// ALU64, immediate: code = op | K | ALU64.
	{src: "r3 += 7", want: "07 03 0000 07000000"},
	{src: "r3 -= -1", want: "17 03 0000 ffffffff"},
	{src: "r4 *= 3", want: "27 04 0000 03000000"},
	{src: "r5 /= 10", want: "37 05 0000 0a000000"},
	{src: "r6 |= 0x12345678", want: "47 06 0000 78563412", text: "r6 |= 305419896"},
	{src: "r7 &= 255", want: "57 07 0000 ff000000"},
	{src: "r8 <<= 63", want: "67 08 0000 3f000000"},
	{src: "r9 >>= 1", want: "77 09 0000 01000000"},
	{src: "r0 = -r0", want: "87 00 0000 00000000"},
	{src: "r1 %= 2147483647", want: "97 01 0000 ffffff7f"},
	{src: "r2 ^= -2147483648", want: "a7 02 0000 00000080"},
	{src: "r0 = 0", want: "b7 00 0000 00000000"},
	{src: "r0 = -8", want: "b7 00 0000 f8ffffff"},
	{src: "r1 s>>= 4", want: "c7 01 0000 04000000"},
	// ALU64, register: code = op | X | ALU64.
	{src: "r1 += r2", want: "0f 21 0000 00000000"},
	{src: "r3 -= r4", want: "1f 43 0000 00000000"},
	{src: "r5 *= r6", want: "2f 65 0000 00000000"},
	{src: "r7 /= r8", want: "3f 87 0000 00000000"},
	{src: "r9 |= r0", want: "4f 09 0000 00000000"},
	{src: "r0 &= r1", want: "5f 10 0000 00000000"},
	{src: "r1 <<= r3", want: "6f 31 0000 00000000"},
	{src: "r2 >>= r5", want: "7f 52 0000 00000000"},
	{src: "r3 %= r7", want: "9f 73 0000 00000000"},
	{src: "r4 ^= r4", want: "af 44 0000 00000000"},
	{src: "r1 = r10", want: "bf a1 0000 00000000"},
	{src: "r6 s>>= r9", want: "cf 96 0000 00000000"},
	// ALU32, immediate: code = op | K | ALU.
	{src: "w1 += 1", want: "04 01 0000 01000000"},
	{src: "w2 -= 2", want: "14 02 0000 02000000"},
	{src: "w3 *= -1", want: "24 03 0000 ffffffff"},
	{src: "w4 /= 3", want: "34 04 0000 03000000"},
	{src: "w5 |= 0x80000000", want: "44 05 0000 00000080", text: "w5 |= -2147483648"},
	{src: "w6 &= 0xffffffff", want: "54 06 0000 ffffffff", text: "w6 &= -1"},
	{src: "w7 <<= 31", want: "64 07 0000 1f000000"},
	{src: "w8 >>= 16", want: "74 08 0000 10000000"},
	{src: "w9 = -w9", want: "84 09 0000 00000000"},
	{src: "w0 %= 7", want: "94 00 0000 07000000"},
	{src: "w1 ^= 5", want: "a4 01 0000 05000000"},
	{src: "w3 = 0", want: "b4 03 0000 00000000"},
	{src: "w3 = 4294967295", want: "b4 03 0000 ffffffff", text: "w3 = -1"},
	{src: "w2 s>>= 3", want: "c4 02 0000 03000000"},
	// ALU32, register: code = op | X | ALU.
	{src: "w1 += w2", want: "0c 21 0000 00000000"},
	{src: "w1 -= w2", want: "1c 21 0000 00000000"},
	{src: "w1 *= w2", want: "2c 21 0000 00000000"},
	{src: "w1 /= w2", want: "3c 21 0000 00000000"},
	{src: "w1 |= w2", want: "4c 21 0000 00000000"},
	{src: "w1 &= w2", want: "5c 21 0000 00000000"},
	{src: "w1 <<= w2", want: "6c 21 0000 00000000"},
	{src: "w1 >>= w2", want: "7c 21 0000 00000000"},
	{src: "w1 %= w2", want: "9c 21 0000 00000000"},
	{src: "w1 ^= w2", want: "ac 21 0000 00000000"},
	{src: "w0 = w1", want: "bc 10 0000 00000000"},
	{src: "w1 s>>= w2", want: "cc 21 0000 00000000"},
	// 64-bit immediate loads: LD | IMM | DW = 0x18, two slots, the second
	// holding the upper half of the constant in its imm.
	{src: "r1 = 0x123456789 ll", want: "18 01 0000 89674523  00 00 0000 01000000"},
	{src: "r0 = -1 ll", want: "18 00 0000 ffffffff  00 00 0000 ffffffff", text: "r0 = 0xffffffffffffffff ll"},
	{src: "r9 = 0 ll", want: "18 09 0000 00000000  00 00 0000 00000000", text: "r9 = 0x0 ll"},
	{src: "r2 = map[jmp_table]", want: "18 12 0000 00000000  00 00 0000 00000000"},
	// Loads: LDX | MEM | size = 0x61 (W), 0x69 (H), 0x71 (B), 0x79 (DW).
	{src: "r0 = *(u8 *)(r1 + 0)", want: "71 10 0000 00000000"},
	{src: "r2 = *(u16 *)(r3 + 2)", want: "69 32 0200 00000000"},
	{src: "r4 = *(u32 *)(r5 + 8)", want: "61 54 0800 00000000"},
	{src: "r6 = *(u64 *)(r10 - 8)", want: "79 a6 f8ff 00000000"},
	{src: "r1 = *(u64 *)(r10 - 32768)", want: "79 a1 0080 00000000"},
	{src: "r1 = *(u32 *)(r1 + 32767)", want: "61 11 ff7f 00000000"},
	{src: "r1 = *(u32 *)(r2)", want: "61 21 0000 00000000", text: "r1 = *(u32 *)(r2 + 0)"},
	// Register stores: STX | MEM | size = 0x63, 0x6b, 0x73, 0x7b.
	{src: "*(u8 *)(r10 - 1) = r1", want: "73 1a ffff 00000000"},
	{src: "*(u16 *)(r1 + 4) = r2", want: "6b 21 0400 00000000"},
	{src: "*(u32 *)(r2 - 4) = r3", want: "63 32 fcff 00000000"},
	{src: "*(u64 *)(r10 - 8) = r1", want: "7b 1a f8ff 00000000"},
	// Immediate stores: ST | MEM | size = 0x62, 0x6a, 0x72, 0x7a.
	{src: "*(u8 *)(r10 - 1) = 255", want: "72 0a ffff ff000000"},
	{src: "*(u16 *)(r1 + 2) = 1", want: "6a 01 0200 01000000"},
	{src: "*(u32 *)(r10 - 16) = 7", want: "62 0a f0ff 07000000"},
	{src: "*(u64 *)(r10 - 24) = -1", want: "7a 0a e8ff ffffffff"},
	// Unconditional jumps: JMP | JA = 0x05; off counts slots from the next one.
	{src: "goto +2", want: "05 00 0200 00000000"},
	{src: "goto -1", want: "05 00 ffff 00000000"},
	{src: "goto +0", want: "05 00 0000 00000000"},
	{src: "goto -5", want: "05 00 fbff 00000000"},
	// Conditional jumps, 64-bit: JMP | op | K/X.
	{src: "if r1 == 5 goto +1", want: "15 01 0100 05000000"},
	{src: "if r1 == r2 goto +1", want: "1d 21 0100 00000000"},
	{src: "if r1 != -1 goto -2", want: "55 01 feff ffffffff"},
	{src: "if r1 != r2 goto +3", want: "5d 21 0300 00000000"},
	{src: "if r3 > 10 goto +1", want: "25 03 0100 0a000000"},
	{src: "if r3 > r4 goto +1", want: "2d 43 0100 00000000"},
	{src: "if r3 >= 0 goto +1", want: "35 03 0100 00000000"},
	{src: "if r3 >= r4 goto +1", want: "3d 43 0100 00000000"},
	{src: "if r5 < 3 goto +1", want: "a5 05 0100 03000000"},
	{src: "if r5 < r6 goto +1", want: "ad 65 0100 00000000"},
	{src: "if r5 <= 3 goto +1", want: "b5 05 0100 03000000"},
	{src: "if r5 <= r6 goto +1", want: "bd 65 0100 00000000"},
	{src: "if r7 s> -5 goto +1", want: "65 07 0100 fbffffff"},
	{src: "if r7 s> r8 goto +1", want: "6d 87 0100 00000000"},
	{src: "if r7 s>= -5 goto +1", want: "75 07 0100 fbffffff"},
	{src: "if r7 s>= r8 goto +1", want: "7d 87 0100 00000000"},
	{src: "if r9 s< 0 goto +1", want: "c5 09 0100 00000000"},
	{src: "if r9 s< r0 goto +1", want: "cd 09 0100 00000000"},
	{src: "if r9 s<= 0 goto +1", want: "d5 09 0100 00000000"},
	{src: "if r9 s<= r0 goto +1", want: "dd 09 0100 00000000"},
	{src: "if r0 & 1 goto +1", want: "45 00 0100 01000000"},
	{src: "if r0 & r1 goto +1", want: "4d 10 0100 00000000"},
	// Conditional jumps, 32-bit: JMP32 | op | K/X.
	{src: "if w1 == 5 goto +1", want: "16 01 0100 05000000"},
	{src: "if w1 == w2 goto +1", want: "1e 21 0100 00000000"},
	{src: "if w1 != 0xffffffff goto +1", want: "56 01 0100 ffffffff", text: "if w1 != -1 goto +1"},
	{src: "if w1 != w2 goto +1", want: "5e 21 0100 00000000"},
	{src: "if w3 > 10 goto +1", want: "26 03 0100 0a000000"},
	{src: "if w3 > w4 goto +1", want: "2e 43 0100 00000000"},
	{src: "if w3 >= 1 goto +1", want: "36 03 0100 01000000"},
	{src: "if w3 >= w4 goto +1", want: "3e 43 0100 00000000"},
	{src: "if w5 < 3 goto +1", want: "a6 05 0100 03000000"},
	{src: "if w5 < w6 goto +1", want: "ae 65 0100 00000000"},
	{src: "if w5 <= 3 goto +1", want: "b6 05 0100 03000000"},
	{src: "if w5 <= w6 goto +1", want: "be 65 0100 00000000"},
	{src: "if w7 s> -5 goto +1", want: "66 07 0100 fbffffff"},
	{src: "if w7 s> w8 goto +1", want: "6e 87 0100 00000000"},
	{src: "if w7 s>= -5 goto +1", want: "76 07 0100 fbffffff"},
	{src: "if w7 s>= w8 goto +1", want: "7e 87 0100 00000000"},
	{src: "if w9 s< 0 goto +1", want: "c6 09 0100 00000000"},
	{src: "if w9 s< w0 goto +1", want: "ce 09 0100 00000000"},
	{src: "if w9 s<= 0 goto +1", want: "d6 09 0100 00000000"},
	{src: "if w9 s<= w0 goto +1", want: "de 09 0100 00000000"},
	{src: "if w0 & 1 goto +1", want: "46 00 0100 01000000"},
	{src: "if w0 & w1 goto +1", want: "4e 10 0100 00000000"},
	// Calls: JMP | CALL = 0x85, helper ID in imm; a bpf2bpf call has
	// src_reg = BPF_PSEUDO_CALL and imm 0 until the program is linked.
	{src: "call bpf_tail_call", want: "85 00 0000 0c000000"},
	{src: "call 12", want: "85 00 0000 0c000000", text: "call bpf_tail_call"},
	{src: "call bpf_ktime_get_ns", want: "85 00 0000 05000000"},
	{src: "call ktime_get_ns", want: "85 00 0000 05000000", text: "call bpf_ktime_get_ns"},
	{src: "call bpf_map_lookup_elem", want: "85 00 0000 01000000"},
	{src: "call 999", want: "85 00 0000 e7030000"},
	{src: "call my_subprog", want: "85 10 0000 00000000"},
	// JMP | EXIT = 0x95.
	{src: "exit", want: "95 00 0000 00000000"},
}

// pad surrounds the instruction under test so that every jump offset in the
// table lands on an instruction.
const padCount = 5

var pad = strings.Repeat("exit\n", padCount)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q in table: %v", s, err)
	}
	return b
}

// parseOne assembles line inside the padding and returns it.
func parseOne(t *testing.T, line string) prog.Instruction {
	t.Helper()
	insns, err := Parse(pad+line+"\n"+pad, 1)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	if len(insns) != 2*padCount+1 {
		t.Fatalf("Parse(%q): %d instructions, want %d", line, len(insns), 2*padCount+1)
	}
	return insns[padCount]
}

// encodingFields drops what the encoding does not carry.
var encodingFields = cmpopts.IgnoreFields(prog.Instruction{}, "Reference", "Labels", "Comment", "Line")

func TestEncoding(t *testing.T) {
	for _, tt := range encTests {
		t.Run(tt.src, func(t *testing.T) {
			want := mustHex(t, tt.want)
			ins := parseOne(t, tt.src)
			if ins.Line != padCount+1 {
				t.Errorf("Line = %d, want %d", ins.Line, padCount+1)
			}
			got := ins.Encode(nil)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Encode(%q) mismatch (-want +got):\n%s", tt.src, diff)
			}
			if n := ins.Slots() * 8; n != len(want) {
				t.Errorf("Slots()*8 = %d, want %d", n, len(want))
			}

			// The kernel bytes decode to the instruction Parse built.
			dec, n, err := prog.Decode(want)
			if err != nil || n != len(want) {
				t.Fatalf("Decode(% x) = %d bytes, %v; want %d bytes", want, n, err, len(want))
			}
			if diff := cmp.Diff(ins, dec, encodingFields); diff != "" {
				t.Errorf("Decode(kernel bytes) differs from Parse (-parse +decode):\n%s", diff)
			}
			// Decode(Encode(x)) == x.
			dec2, _, err := prog.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ins, dec2, encodingFields); diff != "" {
				t.Errorf("Decode(Encode(x)) != x (-x +decoded):\n%s", diff)
			}

			// Format prints the canonical spelling, which parses back to
			// the same instruction.
			text := Format(ins)
			wantText := tt.text
			if wantText == "" {
				wantText = tt.src
			}
			if text != wantText {
				t.Errorf("Format = %q, want %q", text, wantText)
			}
			again := parseOne(t, text)
			if diff := cmp.Diff(ins, again); diff != "" {
				t.Errorf("Parse(Format(x)) != x (-x +reparsed):\n%s", diff)
			}
		})
	}
}

// TestEncodingFields checks the fields that do not show in the encoding.
func TestEncodingFields(t *testing.T) {
	tests := []struct {
		src       string
		reference string
		comment   string
		helper    bool
		subprog   bool
		mapLoad   bool
		tailCall  bool
	}{
		{src: "r2 = map[jmp_table]", reference: "jmp_table", mapLoad: true},
		{src: "call my_subprog", reference: "my_subprog", subprog: true},
		{src: "call bpf_tail_call", helper: true, tailCall: true},
		{src: "call 12 // the tail call", comment: "the tail call", helper: true, tailCall: true},
		{src: "call 5 ; ktime", comment: "ktime", helper: true},
		{src: "r1 = 0x123456789 ll   # wide", comment: "wide"},
		{src: "exit", tailCall: false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			ins := parseOne(t, tt.src)
			if ins.Reference != tt.reference {
				t.Errorf("Reference = %q, want %q", ins.Reference, tt.reference)
			}
			if ins.Comment != tt.comment {
				t.Errorf("Comment = %q, want %q", ins.Comment, tt.comment)
			}
			if got := ins.IsHelperCall(); got != tt.helper {
				t.Errorf("IsHelperCall = %v, want %v", got, tt.helper)
			}
			if got := ins.IsSubprogCall(); got != tt.subprog {
				t.Errorf("IsSubprogCall = %v, want %v", got, tt.subprog)
			}
			if got := ins.IsMapLoad(); got != tt.mapLoad {
				t.Errorf("IsMapLoad = %v, want %v", got, tt.mapLoad)
			}
			if got := ins.IsTailCall(); got != tt.tailCall {
				t.Errorf("IsTailCall = %v, want %v", got, tt.tailCall)
			}
		})
	}
}

// TestFormatFixedUp covers the form Parse never produces: the verifier's
// BPF_JMP | BPF_TAIL_CALL (0xf5) prints as the helper call it came from.
func TestFormatFixedUp(t *testing.T) {
	ins, _, err := prog.Decode(mustHex(t, "f5 00 0000 00000100"))
	if err != nil {
		t.Fatal(err)
	}
	if !ins.IsTailCall() {
		t.Fatalf("0xf5 is not a tail call")
	}
	if got, want := Format(ins), "call bpf_tail_call"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got := Format(prog.Instruction{OpCode: 0x8e}); !strings.Contains(got, "unknown") {
		t.Errorf("Format(0x8e) = %q, want it flagged unknown", got)
	}
}

// TestLabels checks label resolution, in slots, across a 64-bit load, and
// that Print keeps labels and comments.
func TestLabels(t *testing.T) {
	const src = `start:
	r0 = 0
	if r1 == 0 goto out   # forward
	r1 = 0x100000000 ll
	goto start
out: exit
`
	insns, err := Parse(src, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Slots: r0 = 0 at 0, if at 1, the 64-bit load at 2–3, goto at 4,
	// exit at 5. Offsets count from the next slot.
	want := []struct {
		off    int16
		line   int
		labels []string
	}{
		{0, 11, []string{"start"}},
		{5 - 2, 12, nil},
		{0, 13, nil},
		{0 - 5, 14, nil},
		{0, 15, []string{"out"}},
	}
	if len(insns) != len(want) {
		t.Fatalf("%d instructions, want %d", len(insns), len(want))
	}
	for i, w := range want {
		ins := insns[i]
		if ins.Off != w.off || ins.Line != w.line || !cmp.Equal(ins.Labels, w.labels) {
			t.Errorf("insn %d: off %d line %d labels %v, want off %d line %d labels %v",
				i, ins.Off, ins.Line, ins.Labels, w.off, w.line, w.labels)
		}
	}
	if insns[1].Comment != "forward" {
		t.Errorf("comment = %q, want %q", insns[1].Comment, "forward")
	}
	if got, want := insns[3].Encode(nil), mustHex(t, "05 00 fbff 00000000"); !cmp.Equal(got, want) {
		t.Errorf("goto start encodes as % x, want % x", got, want)
	}

	printed := Print(insns)
	again, err := Parse(printed, 10)
	if err != nil {
		t.Fatalf("Parse(Print(x)): %v\n%s", err, printed)
	}
	if diff := cmp.Diff(insns, again, cmpopts.IgnoreFields(prog.Instruction{}, "Line")); diff != "" {
		t.Errorf("Parse(Print(x)) != x (-x +reparsed):\n%s\nprinted:\n%s", diff, printed)
	}
	for _, l := range []string{"start:\n", "out:\n", "# forward"} {
		if !strings.Contains(printed, l) {
			t.Errorf("Print output lacks %q:\n%s", l, printed)
		}
	}
}

// TestParseErrors checks that every error is a PosError with the line (the
// sections start at firstLine 20) and the column of the offending token. at
// names that token: its first occurrence on the failing line; "" means the
// end of the line (something is missing), and col 0 means no column.
func TestParseErrors(t *testing.T) {
	const first = 20
	tests := []struct {
		name  string
		src   string
		line  int // 0-based line within src
		at    string
		noCol bool
		msg   string // substring of the message
	}{
		{name: "unknown mnemonic", src: "exit\n  mov r1, 2", line: 1, at: "mov", msg: "unknown instruction"},
		{name: "unknown mnemonic punct", src: "  ) r1", at: ")", msg: "unknown instruction"},
		{name: "unknown mnemonic number", src: "12 r1", at: "12", msg: "unknown instruction"},
		{name: "bad register r11", src: "r11 = 1", at: "r11", msg: "bad register"},
		{name: "bad register w12", src: "w12 += 1", at: "w12", msg: "bad register"},
		{name: "bad register x3", src: "x3 = 1", at: "x3", msg: "bad register"},
		{name: "bad register leading zero", src: "r01 = 1", at: "r01", msg: "bad register"},
		{name: "bad source register", src: "r1 = r11", at: "r11", msg: "bad register"},
		{name: "bad compared register", src: "if x3 > 0 goto +0", at: "x3", msg: "register"},
		{name: "bad base register", src: "r0 = *(u8 *)(r12 + 0)", at: "r12", msg: "bad register"},
		{name: "mix r += w", src: "r1 += w2", at: "w2", msg: "mixes"},
		{name: "mix w = r", src: "w1 = r2", at: "r2", msg: "mixes"},
		{name: "mix jmp32 with r", src: "if w1 == r2 goto +0", at: "r2", msg: "mixes"},
		{name: "mix jmp64 with w", src: "if r1 s< w2 goto +0", at: "w2", msg: "mixes"},
		{name: "mix store source", src: "*(u32 *)(r10 - 4) = w1", at: "w1", msg: "mixes"},
		{name: "w base", src: "r0 = *(u32 *)(w1 + 0)", at: "w1", msg: "r registers"},
		{name: "w load", src: "w0 = *(u32 *)(r1 + 0)", at: "w0", msg: "r registers"},
		{name: "w map", src: "w2 = map[m]", at: "w2", msg: "r registers"},
		{name: "w ll", src: "w2 = 1 ll", at: "w2", msg: "r registers"},
		{name: "neg of other reg", src: "r1 = -r2", at: "r2", msg: "negation"},
		{name: "jump out of range", src: "goto +5\nexit", at: "+5", msg: "outside"},
		{name: "jump before start", src: "exit\ngoto -3", line: 1, at: "-3", msg: "outside"},
		{name: "cond jump out of range", src: "r0 = 0\nif r1 == 0 goto +2\nexit", line: 1, at: "+2", msg: "outside"},
		{name: "jump into ld_imm64", src: "goto +1\nr1 = 1 ll\nexit", at: "+1", msg: "64-bit load"},
		{name: "unknown label", src: "r0 = 0\ngoto nowhere\nexit", line: 1, at: "nowhere", msg: "unknown label"},
		{name: "label too far", src: "goto far\n" + strings.Repeat("exit\n", 32768) + "far: exit", at: "far", msg: "too far"},
		{name: "unknown label cond", src: "if r1 > 0 goto elsewhere\nexit", at: "elsewhere", msg: "unknown label"},
		{name: "duplicate label", src: "a:\nexit\na: exit", line: 2, at: "a", msg: "defined twice"},
		{name: "duplicate label same line", src: "b: b: exit", at: "b: exit", msg: "defined twice"},
		{name: "register as label", src: "r1: exit", at: "r1", msg: "cannot be a label"},
		{name: "keyword as label", src: "exit\ngoto: exit", line: 1, at: "goto", msg: "cannot be a label"},
		{name: "dangling label", src: "exit\nend:", line: 1, noCol: true, msg: "marks no instruction"},
		{name: "keyword as target", src: "goto exit\nexit", at: "exit", msg: "bad jump target"},
		{name: "offset without sign", src: "goto 1\nexit", at: "1", msg: "+N or -N"},
		{name: "jump offset 16 bits", src: "goto +32768", at: "+", msg: "16 bits"},
		{name: "jump offset wraps 64 bits", src: "goto +18446744073709551615\nexit", at: "+", msg: "16 bits"},
		{name: "negative jump offset 16 bits", src: "goto -32769", at: "-", msg: "16 bits"},
		{name: "const over 32 bits", src: "r1 = 0x100000000", at: "0x", msg: "ll"},
		{name: "const not sign-extended s32", src: "r1 += 0x80000000", at: "0x", msg: "32-bit immediate"},
		{name: "const over u32 for alu32", src: "w1 = 0x100000000", at: "0x", msg: "32-bit immediate"},
		{name: "const over 32 bits in compare", src: "if r1 == 4294967295 goto +0", at: "4294967295", msg: "32-bit immediate"},
		{name: "store imm over 32 bits", src: "*(u64 *)(r10 - 8) = 0x100000000", at: "0x", msg: "32-bit immediate"},
		{name: "const over 64 bits", src: "r1 = 0x10000000000000000 ll", at: "0x", msg: "bad number"},
		{name: "bad number", src: "r1 = 12ab", at: "12ab", msg: "bad number"},
		{name: "bad access size u128", src: "r0 = *(u128 *)(r1 + 0)", at: "u128", msg: "access size"},
		{name: "bad access size store", src: "*(u24 *)(r1 + 0) = 1", at: "u24", msg: "access size"},
		{name: "offset over 16 bits", src: "r0 = *(u8 *)(r1 + 40000)", at: "+", msg: "16 bits"},
		{name: "missing operand alu", src: "r1 +=", at: "", msg: "expected a register or a number"},
		{name: "missing operand mov", src: "r1 =", at: "", msg: "expected a value"},
		{name: "missing operator", src: "r1", at: "", msg: "assignment operator"},
		{name: "missing call target", src: "call", at: "", msg: "call needs"},
		{name: "missing jump target", src: "goto", at: "", msg: "jump target"},
		{name: "missing goto", src: "if r1 > 0", at: "", msg: `expected "goto"`},
		{name: "missing comparison", src: "if r1", at: "", msg: "comparison"},
		{name: "missing close paren", src: "r0 = *(u32 *)(r1 + 8", at: "", msg: `expected ")"`},
		{name: "missing map name", src: "r1 = map[]", at: "]", msg: "map name"},
		{name: "number as map name", src: "r1 = map[1]", at: "1]", msg: "map name"},
		{name: "unterminated map", src: "r1 = map[", at: "", msg: "map name"},
		{name: "unknown operator", src: "r1 != 2", at: "!=", msg: "unknown operator"},
		{name: "register label before operator", src: "r1 := 2", at: "r1", msg: "cannot be a label"},
		{name: "unknown comparison", src: "if r1 => 2 goto +0", at: "=", msg: "unknown comparison"},
		{name: "bad call target", src: "call (", at: "(", msg: "bad call target"},
		{name: "helper number range", src: "call 2147483648", at: "2147483648", msg: "out of range"},
		{name: "trailing exit", src: "exit now", at: "now", msg: "after instruction"},
		{name: "trailing alu", src: "r1 = 2 3", at: "3", msg: "after instruction"},
		{name: "trailing goto", src: "goto +0 x\nexit", at: "x", msg: "after instruction"},
		{name: "trailing call", src: "call 5 6", at: "6", msg: "after instruction"},
		{name: "trailing store", src: "*(u8 *)(r1 + 0) = 1 ll", at: "ll", msg: "after instruction"},
		{name: "unexpected character", src: "r1 = $3", at: "$", msg: "unexpected character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.src, first)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.src)
			}
			var pe *prog.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *prog.PosError", err, err)
			}
			line := strings.Split(tt.src, "\n")[tt.line]
			wantCol := 0
			switch {
			case tt.noCol:
			case tt.at == "":
				wantCol = len(strings.TrimRight(line, " \t")) + 1
			default:
				i := strings.Index(line, tt.at)
				if i < 0 {
					t.Fatalf("bad table: %q not in %q", tt.at, line)
				}
				wantCol = i + 1
			}
			if pe.Line != first+tt.line || pe.Col != wantCol {
				t.Errorf("Parse(%q) error at %d:%d, want %d:%d (%v)", tt.src, pe.Line, pe.Col, first+tt.line, wantCol, err)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("Parse(%q) error %q, want it to mention %q", tt.src, pe.Msg, tt.msg)
			}
		})
	}
}

// TestFarLabel checks the largest forward distance a label can have.
func TestFarLabel(t *testing.T) {
	insns, err := Parse("goto far\n"+strings.Repeat("exit\n", 32767)+"far: exit", 1)
	if err != nil {
		t.Fatal(err)
	}
	if insns[0].Off != 32767 {
		t.Errorf("Off = %d, want 32767", insns[0].Off)
	}
}

// TestParseAccepts checks spellings that are not canonical but valid.
func TestParseAccepts(t *testing.T) {
	tests := []struct{ src, same string }{
		{"r1=r2", "r1 = r2"},
		{"r1 = - 5", "r1 = -5"},
		{"r1 = +5", "r1 = 5"},
		{"r1 = - r1", "r1 = -r1"},
		{"*(u64*)(r10-8)=r1", "*(u64 *)(r10 - 8) = r1"},
		{"if r1 s>-1 goto +0", "if r1 s> -1 goto +0"},
		{"r1 = 0x10", "r1 = 16"},
		{"\tr1 = 1\t// c", "r1 = 1"},
		{"r1 = 1\r", "r1 = 1"},
		{"w1 = -2147483648", "w1 = 0x80000000"},
		{"r1 = 0xffffffff00000000 ll", "r1 = -4294967296 ll"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			a, b := parseOne(t, tt.src), parseOne(t, tt.same)
			if diff := cmp.Diff(a.Encode(nil), b.Encode(nil)); diff != "" {
				t.Errorf("%q and %q encode differently:\n%s", tt.src, tt.same, diff)
			}
		})
	}
}
