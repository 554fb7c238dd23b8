package fuzz

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// The instruction differential test, in the spirit of lib/test_bpf.c's
// ALU and JMP tests: every ALU operation, compare and memory access of the
// subset, in both widths, with an immediate and with a register, on the
// registers that pick the JITs' special forms (x86's rax short forms and
// REX.B registers, arm64's movz/movn/movk choices for constants) and on
// edge operands, runs on both emulators against the reference model. Tail
// calls are checked elsewhere; here a JIT that emits "and" for "xor", or
// "add" for "sub", gets the wrong R0.

// Operands: the edges of the widths and of the signs, and some bits.
var diffOperands = []uint64{0, 1, 2, 7, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32,
	0x8000000000000000, 0xffffffffffffffff, 0x123456789abcdef0, 0xfffffffe00000003}

// diffSources are the source register's values: fewer, since most of a
// source's edges are the operands' too.
var diffSources = []uint64{0, 1, 31, 0x80000000, 0xffffffff, 0xfffffffe00000003}

// Immediates: imm8 against imm32 forms, signs, and the s32 edges.
var diffImms = []int64{0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fff, 0x12345678, 0x7fffffff, -0x80000000}

// Register pairs (destination, source): r0 is rax on x86 (short forms),
// r9 is r15 (a REX.B register), r6 is callee-saved.
var diffRegs = [][2]int{{0, 3}, {2, 3}, {6, 7}, {9, 4}}

// diffCase is one instruction form in a program: a and b come from ctx,
// the result is in R0.
type diffCase struct {
	name string
	regs [2]int // the destination and source registers, read from a and b
	body string // after "rD = a; rS = b", computing R0
	// avoid reports operands the subset leaves undefined or the kernel's
	// verifier would rewrite (division by zero, shifts past the width).
	avoid func(a, b uint64) bool
	// noVerifier loads the program as lib/test_bpf does: the verifier
	// refuses a misaligned stack access, which the JITs still encode.
	noVerifier bool
}

func diffCases() []diffCase {
	var out []diffCase
	alu := []struct {
		op    string
		avoid func(width int, b uint64) bool
	}{
		{"+=", nil}, {"-=", nil}, {"*=", nil}, {"|=", nil}, {"&=", nil}, {"^=", nil}, {"=", nil},
		{"/=", func(w int, b uint64) bool { return trunc(b, w) == 0 }},
		{"%=", func(w int, b uint64) bool { return trunc(b, w) == 0 }},
		{"<<=", func(w int, b uint64) bool { return b >= uint64(w) }},
		{">>=", func(w int, b uint64) bool { return b >= uint64(w) }},
		{"s>>=", func(w int, b uint64) bool { return b >= uint64(w) }},
	}
	for _, width := range []int{64, 32} {
		r := map[int]string{64: "r", 32: "w"}[width]
		for _, regs := range diffRegs {
			d, s := fmt.Sprintf("%s%d", r, regs[0]), fmt.Sprintf("%s%d", r, regs[1])
			for _, o := range alu {
				avoid := func(a, b uint64) bool { return o.avoid != nil && o.avoid(width, b) }
				out = append(out, diffCase{fmt.Sprintf("%s %s %s", d, o.op, s), regs, fmt.Sprintf("\t%s %s %s\n", d, o.op, s), avoid, false})
				for _, imm := range diffImms {
					if o.avoid != nil && o.avoid(width, uint64(imm)) || imm < 0 && o.avoid != nil {
						continue
					}
					out = append(out, diffCase{fmt.Sprintf("%s %s %d", d, o.op, imm), regs, fmt.Sprintf("\t%s %s %d\n", d, o.op, imm), nil, false})
				}
			}
			out = append(out, diffCase{fmt.Sprintf("%s = -%s", d, d), regs, fmt.Sprintf("\t%s = -%s\n", d, d), nil, false})
			for _, cmp := range []string{"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"} {
				branch := func(rhs string) string {
					return fmt.Sprintf("\tif %s %s %s goto yes\n\tr0 = 1\n\texit\nyes:\n\tr0 = 2\n", d, cmp, rhs)
				}
				out = append(out, diffCase{fmt.Sprintf("if %s %s %s", d, cmp, s), regs, branch(s), nil, false})
				for _, imm := range diffImms {
					out = append(out, diffCase{fmt.Sprintf("if %s %s %d", d, cmp, imm), regs, branch(fmt.Sprint(imm)), nil, false})
				}
			}
		}
	}
	// Memory: each size, near and far offsets (x86 disp8 and disp32;
	// arm64's scaled immediates, unscaled ones and offsets in a register),
	// from the frame pointer down and from another base up, stored from a
	// register and as an immediate, loaded back.
	type at struct {
		base string
		off  int
	}
	var places []at
	for _, off := range []int{-8, -128, -136, -264, -511, -512} {
		places = append(places, at{"r10", off})
	}
	for _, off := range []int{0, 8, 13, 255, 256, 504} {
		places = append(places, at{"r4", off}) // r4 = r10 - 512
	}
	for k, size := range []string{"u8", "u16", "u32", "u64"} {
		for _, p := range places {
			m := fmt.Sprintf("*(%s *)(%s %+d)", size, p.base, p.off)
			m64 := fmt.Sprintf("*(u64 *)(%s %+d)", p.base, p.off&^7)
			setup := fmt.Sprintf("\tr4 = r10\n\tr4 += -512\n\t%s = r2\n", m64)
			fromFP := p.off
			if p.base == "r4" {
				fromFP -= 512
			}
			misaligned := fromFP%(1<<k) != 0
			out = append(out, diffCase{name: m + " = r3", regs: [2]int{2, 3}, noVerifier: misaligned,
				body: setup + fmt.Sprintf("\t%s = r3\n\tr0 = %s\n\tr3 = %s\n\tr0 += r3\n", m, m64, m)})
			for _, imm := range []int64{-1, 0x7f, 0x12345678} {
				out = append(out, diffCase{name: fmt.Sprintf("%s = %d", m, imm), regs: [2]int{2, 3}, noVerifier: misaligned,
					body: setup + fmt.Sprintf("\t%s = %d\n\tr0 = %s\n\tr3 = %s\n\tr0 ^= r3\n", m, imm, m, m64)})
			}
		}
	}
	// Loads and stores of every size between extended registers (r7–r9 are
	// r13–r15 on x86: a REX prefix more) and the frame.
	for _, size := range []string{"u8", "u16", "u32", "u64"} {
		m := fmt.Sprintf("*(%s *)(r10 -8)", size)
		out = append(out, diffCase{name: fmt.Sprintf("%s = r7, r8 = %s", m, m), regs: [2]int{7, 8},
			body: fmt.Sprintf("\t*(u64 *)(r10 -8) = r8\n\t%s = r7\n\tr8 = %s\n\tr0 += r8\n", m, m)})
	}
	// A frame whose deepest access is above fp-8: 6.1's arm64
	// find_fpb_offset() rounds it down to 0, so it addresses the stack from
	// x25 with the offset in a register.
	for k, size := range []string{"u8", "u16", "u32"} {
		m := fmt.Sprintf("*(%s *)(r10 %d)", size, -(1 << k))
		out = append(out, diffCase{name: m + " alone = r3", regs: [2]int{2, 3},
			body: fmt.Sprintf("\t%s = r3\n\tr0 = %s\n", m, m)},
			diffCase{name: m + " alone = 0x7f", regs: [2]int{2, 3},
				body: fmt.Sprintf("\t%s = 0x7f\n\tr0 = %s\n", m, m)})
	}
	out = append(out, diffCase{"goto", [2]int{2, 3}, "\tif r2 == 0 goto skip\n\tr0 += 5\n\tgoto done\nskip:\n\tr0 += 1\ndone:\n", nil, false})
	// 64-bit constants: the movabs, mov imm32 and movz/movn/movk choices.
	for _, k := range []uint64{0, 1, 0xffffffff, 1 << 32, 0xffffffffffffffff, 0xffff0000ffff0000, 0x0000ffff00000000, 0x123456789abcdef0, 0xfffffffffffffffe, 0x8000000000000000} {
		out = append(out, diffCase{fmt.Sprintf("r3 = %#x ll", k), [2]int{2, 3}, fmt.Sprintf("\tr3 = %#x ll\n\tr0 ^= r3\n", k), nil, false})
	}
	// Kernel addresses, into R0 as the verifier's inlined helpers load
	// them (prog.JiffiesAddr) and into R3.
	for _, k := range []uint64{prog.JiffiesAddr, 0xffffffffc0000000, 0xffff800082000000} {
		out = append(out, diffCase{fmt.Sprintf("r0 = %#x ll", k), [2]int{2, 3}, fmt.Sprintf("\tr0 = %#x ll\n", k), nil, false},
			diffCase{fmt.Sprintf("r3 = %#x ll", k), [2]int{2, 3}, fmt.Sprintf("\tr3 = %#x ll\n\tr0 ^= r3\n", k), nil, false})
	}
	return out
}

func trunc(v uint64, width int) uint64 {
	if width == 32 {
		return uint64(uint32(v))
	}
	return v
}

// diffScenario is the case as a scenario: one run per operand pair, each
// compared with the reference model by the runner.
func (c diffCase) scenario(operands []uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", c.name)
	if c.noVerifier {
		b.WriteString("-- config --\nverifier off\n")
	}
	b.WriteString("-- prog entry stack=512 --\n")
	// rD and rS of the case read a and b; R0 starts as a too, so that a
	// case computing into another register still shows in R0.
	d, s := fmt.Sprintf("r%d", c.regs[0]), fmt.Sprintf("r%d", c.regs[1])
	fmt.Fprintf(&b, "\tr2 = *(u64 *)(r1 + 0)\n\tr3 = *(u64 *)(r1 + 8)\n\t%s = r2\n\t%s = r3\n\tr0 = r2\n", d, s)
	b.WriteString(c.body)
	if !strings.Contains(c.body, "goto yes") && c.regs[0] != 0 {
		fmt.Fprintf(&b, "\tr0 ^= %s\n", d)
	}
	b.WriteString("\texit\n-- ctx --\nu64 0\nu64 0\n-- run --\n")
	// The source operand matters only where the case reads its register.
	second := operands[:1]
	if strings.Contains(c.body, fmt.Sprintf("%d\n", c.regs[1])) || strings.Contains(c.body, fmt.Sprintf("%d goto", c.regs[1])) {
		second = diffSources
	}
	n := 0
	for _, a := range operands {
		for _, bv := range second {
			if c.avoid != nil && c.avoid(a, bv) {
				continue
			}
			fmt.Fprintf(&b, "set ctx+0 u64 = %#x\nset ctx+8 u64 = %#x\nrun entry\n", a, bv)
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return b.String()
}

func TestInstructionDifferential(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	operands := diffOperands
	if testing.Short() {
		operands = operands[:8]
	}
	cases := diffCases()
	runs := 0
	for _, c := range cases {
		text := c.scenario(operands)
		if text == "" {
			continue
		}
		sc, err := scenarios.Parse(c.name+".txtar", []byte(text))
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, text)
		}
		for _, b := range backends {
			rep := scenarios.Run(sc, b, prog.Linux618, scenarios.Options{})
			if rep.Status != scenarios.Pass {
				t.Errorf("%s on %s: %v", c.name, b.Name(), rep.Failures[0])
			}
			runs += len(sc.Steps)
		}
	}
	t.Logf("%d forms, %d steps", len(cases), runs)
}

// forms names the instruction forms the JITs emit for the plain BPF
// instructions of a world (ALU, compares and jumps, loads, stores, 64-bit
// constants; not calls, exits or tail calls): each emitted instruction's
// note, which the emitters write per form ("xor32 (eax short form)",
// "cmn #N: compare with N"), with its operand numbers made generic, and
// its length.
func forms(t *testing.T, w *prog.World) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	// Numbers standing alone are operands; "add32", "x9" and the like
	// name the form and stay. The length tells encodings apart that share
	// a note (x86 imm8 and imm32, with or without a REX prefix).
	generic := regexp.MustCompile(`map\[[^]]*\]|(^|[^0-9a-zA-Z_])-?(0x[0-9a-f]+|[0-9]+)\b`)
	for _, v := range prog.Kernels {
		x86, err := emu.CompileX86(w, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		arm, err := emu.CompileArm64(w, v, false, false)
		if err != nil {
			t.Fatal(err)
		}
		for arch, ls := range map[string][]*emu.Loaded{"x86_64": x86, "arm64": arm} {
			for _, l := range ls {
				for _, in := range l.Img.Insns {
					if in.BPF < 0 {
						continue
					}
					if ins := l.Img.Func.Insns[in.BPF]; ins.OpCode.IsCall() || ins.OpCode.IsExit() || ins.OpCode.IsLoadImm64() && ins.Reference != "" {
						// Calls (helpers, subprograms, tail calls), exits
						// and map addresses: every tail call checks those.
						continue
					}
					out[fmt.Sprintf("%s: %s (%d bytes)", arch, generic.ReplaceAllString(in.Note, "${1}N"), in.Len)] = true
				}
			}
		}
	}
	return out
}

// Every instruction form the JITs emit for the library's programs and for
// generated fuzz cases is one the differential test runs: a new form (an
// emitter's new special case) without a differential case fails here.
func TestInstructionFormsCovered(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range diffCases() {
		if text := c.scenario(diffOperands[:1]); text != "" {
			_, w := buildText(t, "diff.txtar", text)
			maps.Copy(covered, forms(t, w))
		}
	}
	used := map[string]string{} // form -> where
	scs, err := scenarios.LoadPaths([]string{"../scenarios/library"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		if w, err := sc.Build(); err == nil {
			for f := range forms(t, w) {
				used[f] = sc.File
			}
		}
	}
	for seed := uint64(1); seed <= 300; seed++ {
		_, w := buildCase(t, StreamCase(seed, 0))
		for f := range forms(t, w) {
			used[f] = fmt.Sprintf("fuzz seed %d", seed)
		}
	}
	var missing []string
	for f, where := range used {
		if !covered[f] {
			missing = append(missing, fmt.Sprintf("%s (in %s)", f, where))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d instruction forms the JITs emit have no differential case:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	t.Logf("%d forms covered, %d used", len(covered), len(used))
}
