package asm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"tailsim/prog"
)

// fuzzSeeds are valid and invalid sources. The same strings are stored as
// the seed corpus in testdata/fuzz/FuzzParse, which plain "go test" runs.
var fuzzSeeds = []string{
	"r1 += 2",
	"w3 = -1",
	"r0 = -r0",
	"w1 s>>= w2",
	"r1 = 0x123456789 ll",
	"r2 = map[jmp_table]",
	"r0 = *(u32 *)(r1 + 0)",
	"*(u64 *)(r10 - 8) = r1",
	"*(u16 *)(r10 - 2) = 7",
	"call bpf_tail_call",
	"call 12",
	"call my_subprog",
	"exit",
	"goto +0\nexit",
	"start:\n\tr0 = 0\n\tif r0 s< 5 goto start\n\texit",
	"if w1 & 0xff goto out\nr0 = 1 # one\nout: exit",
	"a: b: r1 = 1 ll\ngoto a",
	"r1 = r10 // fp",
	"; only a comment",
	"",
	"if r1 s>= -2147483648 goto -1",
	"r1=r2;x",
	"r11 = 1",
	"w1 += r2",
	"goto +5\nexit",
	"goto +1\nr1 = 1 ll\nexit",
	"goto nowhere",
	"a:\na: exit",
	"r1 = 0x100000000",
	"r0 = *(u128 *)(r1 + 0)",
	"r1 +=",
	"exit exit",
	"if r1 = 2 goto +0",
	"r1 = $",
	"dangling:",
	"call",
	"*(u8 *)(r1 + 99999) = 1",
	"r1 = map[]",
	"goto +18446744073709551615",
	"r1 = -9223372036854775809 ll",
	"w0 = *(u8 *)(r1 + 0)",
	"r1 = -r2",
}

const fuzzFirstLine = 7

// FuzzParse checks that Parse never panics, that its errors are PosErrors
// inside the source, and that whatever it accepts prints back to source that
// assembles to the same instructions and the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		insns, err := Parse(src, fuzzFirstLine)
		if err != nil {
			var pe *prog.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): error %v (%T) is not a *prog.PosError", src, err, err)
			}
			lines := strings.Split(src, "\n")
			i := pe.Line - fuzzFirstLine
			if i < 0 || i >= len(lines) {
				t.Fatalf("Parse(%q): error line %d outside %d..%d: %v", src, pe.Line, fuzzFirstLine, fuzzFirstLine+len(lines)-1, err)
			}
			if pe.Col < 0 || pe.Col > len(lines[i])+1 {
				t.Fatalf("Parse(%q): error column %d outside line %q: %v", src, pe.Col, lines[i], err)
			}
			return
		}
		for _, ins := range insns {
			if ins.Line < fuzzFirstLine {
				t.Fatalf("Parse(%q): instruction %q has line %d", src, Format(ins), ins.Line)
			}
		}
		printed := Print(insns)
		again, err := Parse(printed, fuzzFirstLine)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded but its Print does not parse: %v\n%s", src, err, printed)
		}
		if diff := cmp.Diff(insns, again, cmpopts.IgnoreFields(prog.Instruction{}, "Line")); diff != "" {
			t.Fatalf("Parse(Print(Parse(%q))) differs (-first +second):\n%s\nprinted:\n%s", src, diff, printed)
		}
		var b1, b2 []byte
		for i := range insns {
			b1, b2 = insns[i].Encode(b1), again[i].Encode(b2)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("Parse(%q): encoding changed through Print:\n% x\n% x", src, b1, b2)
		}
		if p2 := Print(again); p2 != printed {
			t.Fatalf("Print is not stable:\n%s\nthen\n%s", printed, p2)
		}
	})
}
