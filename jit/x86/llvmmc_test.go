package x86_test

// The llvm-mc oracle (docs/kernel.md §11): every golden sequence is disassembled
// by llvm-mc (Intel syntax) and each instruction's text must be the one the
// table intends. x86asm's decoding of the same bytes must split them into
// the same instructions. One llvm-mc run per table; skipped, with a
// message, when llvm-mc is not installed.

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/emu"
	"tailsim/jit"
	"tailsim/prog"
	"tailsim/scenarios"
)

// llvmMC finds llvm-mc (Debian's "llvm" package installs llvm-mc-14 and,
// usually, an llvm-mc link to it).
func llvmMC(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"llvm-mc", "llvm-mc-14"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("llvm-mc (or llvm-mc-14) is not on PATH: skipping the llvm-mc disassembly oracle (Debian: apt-get install llvm)")
	return ""
}

// ud2 separates groups in llvm-mc's flat output; no golden sequence holds one.
var ud2 = []byte{0x0f, 0x0b}

func mcBytes(b []byte) string {
	s := make([]string, len(b))
	for k, x := range b {
		s[k] = fmt.Sprintf("0x%02x", x)
	}
	return strings.Join(s, " ")
}

var mcWarning = regexp.MustCompile(`^<stdin>:(\d+):(\d+): (warning|error): (.*)$`)

type mcSection struct {
	c *goldenCase
	s *goldenSection
}

// runLLVMMC disassembles the table's sections. Each section is one input
// line with two groups, each closed by ud2:
//
//	[whole sequence] [ud2] [insn 1] [insn 2] ... [insn n] [ud2]
//
// Brackets make llvm-mc decode the bytes as an atom: it never reads past
// one, nor resynchronises inside one. The first group is free decoding of
// the whole sequence; in the second every golden instruction is its own
// atom, so n instructions out for n atoms (and no warning) means llvm-mc
// splits the bytes exactly as the table does.
func runLLVMMC(t *testing.T, mc string, secs []mcSection) (groups [][]string, warnings map[int][]string) {
	t.Helper()
	var in strings.Builder
	for _, x := range secs {
		fmt.Fprintf(&in, "[%s] [%s]", mcBytes(sectionBytes(x.s)), mcBytes(ud2))
		for _, ins := range x.s.Insns {
			fmt.Fprintf(&in, " [%s]", mcBytes(ins.Code))
		}
		fmt.Fprintf(&in, " [%s]\n", mcBytes(ud2))
	}
	cmd := exec.Command(mc, "--disassemble", "-triple=x86_64", "-output-asm-variant=1")
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	warnings = map[int][]string{}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if m := mcWarning.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			warnings[n] = append(warnings[n], m[3]+": "+m[4])
		}
	}
	if runErr != nil && len(warnings) == 0 {
		t.Fatalf("llvm-mc: %v\n%s", runErr, stderr.String())
	}
	var cur []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		l = normSpace(l)
		if l == "" || strings.HasPrefix(l, ".") {
			continue
		}
		if l == "ud2" {
			groups = append(groups, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups, warnings
}

func TestGoldenLLVMMC(t *testing.T) {
	mc := llvmMC(t)
	for _, file := range goldenFiles {
		t.Run(strings.TrimSuffix(file, ".txt"), func(t *testing.T) {
			var secs []mcSection
			for _, c := range loadGolden(t, file) {
				for _, s := range c.Sections {
					if len(s.Insns) > 0 {
						secs = append(secs, mcSection{c, s})
					}
				}
			}
			groups, warnings := runLLVMMC(t, mc, secs)
			for line, w := range warnings {
				x := secs[line-1]
				t.Errorf("%s:%d (%s %s): llvm-mc: %s", x.c.File, x.s.Line, x.c.Name(), x.s.Name, strings.Join(w, "; "))
			}
			if len(groups) != 2*len(secs) {
				t.Fatalf("llvm-mc printed %d ud2-separated groups, want %d (2 per section)", len(groups), 2*len(secs))
			}
			compared := 0
			for k, x := range secs {
				want := make([]string, len(x.s.Insns))
				lens := make([]int, len(x.s.Insns))
				for j, in := range x.s.Insns {
					want[j], lens[j] = in.Text, len(in.Code)
					if thunkJump(in) != "" {
						want[j] = "jmp 0" // the table's rel32 0 (see thunkJump)
					}
				}
				where := fmt.Sprintf("%s:%d (%s %s)", x.c.File, x.s.Line, x.c.Name(), x.s.Name)
				free, atoms := groups[2*k], groups[2*k+1]
				if diff := cmp.Diff(want, free); diff != "" {
					t.Errorf("%s: llvm-mc's disassembly differs from the intended text (-intended +llvm-mc):\n%s", where, diff)
				}
				if diff := cmp.Diff(want, atoms); diff != "" {
					t.Errorf("%s: decoded one golden instruction at a time, llvm-mc does not give one instruction each (-intended +llvm-mc):\n%s", where, diff)
				}
				// llvm-mc's split (one instruction per atom, checked above,
				// is the golden split) against x86asm's.
				mcLens := lens
				if len(atoms) != len(lens) {
					mcLens = nil
				}
				var xLens []int
				code := sectionBytes(x.s)
				for at := 0; at < len(code); {
					n, _, err := decodeX86(code[at:])
					if err != nil {
						t.Errorf("%s: x86asm at +%d: %v", where, at, err)
						break
					}
					xLens = append(xLens, n)
					at += n
				}
				if diff := cmp.Diff(mcLens, xLens); diff != "" {
					t.Errorf("%s: x86asm and llvm-mc split the bytes differently (instruction lengths, -llvm-mc +x86asm):\n%s", where, diff)
				}
				compared += len(free)
			}
			t.Logf("%s: compared %d instructions with llvm-mc in %d sections", file, compared, len(secs))
		})
	}
}

// TestLLVMMCCatchesMistakes makes sure the oracle is not vacuous: a wrong
// intended text, a wrong split and an invalid encoding are all reported.
func TestLLVMMCCatchesMistakes(t *testing.T) {
	mc := llvmMC(t)
	s := &goldenSection{Name: "x.y", Insns: []goldenInsn{
		{Code: []byte{0x48, 0x8b, 0x85, 0xf0, 0xff, 0xff, 0xff}, Text: "mov rax, qword ptr [rbp - 16]"},
		{Code: []byte{0x58, 0x58}, Text: "pop rax"}, // two instructions in one
		{Code: []byte{0x48, 0x83}, Text: "add"},     // truncated
	}}
	c := &goldenCase{File: "self-test", Params: map[string]string{"name": "self"}}
	groups, warnings := runLLVMMC(t, mc, []mcSection{{c, s}})
	if len(warnings[1]) == 0 {
		t.Errorf("no warning for the truncated instruction 48 83")
	}
	if len(groups) != 2 {
		t.Fatalf("%d groups, want 2: %q", len(groups), groups)
	}
	if got := groups[1]; len(got) != 3 || got[0] != "mov rax, qword ptr [rbp - 16]" || got[1] != "pop rax" || got[2] != "pop rax" {
		t.Errorf("atoms decoded as %q, want the mov, two pops (one atom, two instructions) and nothing for 48 83", got)
	}
}

// TestEmittedLLVMMC feeds every distinct instruction the JIT emits for the
// scenario library and the instruction-forms program to llvm-mc, one atom
// per instruction: each must decode, as exactly one instruction of its
// recorded length, and to the mnemonic x86asm gives it.
func TestEmittedLLVMMC(t *testing.T) {
	mc := llvmMC(t)
	seen := map[string]bool{}
	var uniq [][]byte
	var notes []string
	add := func(img *jit.Image) {
		for _, in := range img.Insns {
			b := img.Code[in.Off : in.Off+in.Len]
			if !seen[string(b)] {
				seen[string(b)] = true
				uniq = append(uniq, b)
				notes = append(notes, in.Note)
			}
		}
	}
	for _, ni := range formsImages(t) {
		add(ni.img)
	}
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		w, err := sc.Build()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range prog.Kernels {
			for _, cfg := range testConfigs {
				loaded, err := emu.CompileX86(w, v, cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, ld := range loaded {
					add(ld.Img)
				}
			}
		}
	}
	var in strings.Builder
	for _, b := range uniq {
		fmt.Fprintf(&in, "[%s]\n", mcBytes(b))
	}
	cmd := exec.Command(mc, "--disassemble", "-triple=x86_64", "-output-asm-variant=1")
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	bad := 0
	for _, l := range strings.Split(stderr.String(), "\n") {
		if m := mcWarning.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			t.Errorf("% x (%s): llvm-mc: %s", uniq[n-1], notes[n-1], m[4])
			bad++
		}
	}
	if runErr != nil && bad == 0 {
		t.Fatalf("llvm-mc: %v\n%s", runErr, stderr.String())
	}
	var out []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l = normSpace(l); l != "" && !strings.HasPrefix(l, ".") {
			out = append(out, l)
		}
	}
	if bad > 0 {
		return
	}
	if len(out) != len(uniq) {
		t.Fatalf("llvm-mc printed %d instructions for %d single-instruction atoms: some instruction is several", len(out), len(uniq))
	}
	for k, b := range uniq {
		_, xtext, err := decodeX86(b)
		if err != nil {
			t.Errorf("% x: x86asm: %v", b, err)
			continue
		}
		mcOp, _, _ := strings.Cut(out[k], " ")
		// x86asm names the operand-size prefix of 6.1's two-byte nop
		// ("66 90"); llvm-mc folds it into the nop.
		xOp, _, _ := strings.Cut(strings.TrimPrefix(xtext, "data16 "), " ")
		if alias, ok := mnemonicAlias[mcOp]; ok {
			mcOp = alias
		}
		if mcOp != strings.ToLower(xOp) {
			t.Errorf("% x (%s): llvm-mc %q, x86asm %q", b, notes[k], out[k], xtext)
		}
	}
	t.Logf("%d distinct emitted instructions decoded by llvm-mc and x86asm alike", len(uniq))
}

// mnemonicAlias maps llvm-mc spellings to x86asm's (the same opcodes:
// x86asm names conditions jnb/jz/jnbe/..., and has no movabs).
var mnemonicAlias = map[string]string{"movabs": "mov",
	"ja": "jnbe", "jae": "jnb", "je": "jz", "jne": "jnz", "jg": "jnle", "jge": "jnl"}
