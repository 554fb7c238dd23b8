package x86_test

// Every image the JIT emits for the scenario library, in both variants,
// under the test configurations (testConfigs), under every layout preset: the annotated
// instructions tile the code exactly, each one decodes with x86asm to
// exactly its recorded length (nothing unknown), and every tail-call
// site's recorded addresses match its bytes.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"tailsim/emu"
	"tailsim/jit"
	"tailsim/jit/x86"
	"tailsim/prog"
	"tailsim/prog/asm"
	"tailsim/scenarios"
)

func TestDecodeLibrary(t *testing.T) {
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) == 0 {
		t.Fatal("empty scenario library")
	}
	images, insns, sites := 0, 0, 0
	offLabel := map[string]bool{} // scenarios with a site whose branches miss its out
	for _, sc := range scs {
		layouts := []prog.Layout{sc.Layout}
		for _, l := range prog.Presets {
			if l != sc.Layout {
				layouts = append(layouts, l)
			}
		}
		for _, l := range layouts {
			for _, v := range prog.Kernels {
				for _, cfg := range testConfigs {
					name := fmt.Sprintf("%s [%s/%s/config=%v]", sc.File, l.Name, v, cfg)
					w, err := sc.BuildFor(v, &l, "")
					if err != nil {
						t.Errorf("%s: build: %v", name, err)
						continue
					}
					loaded, err := emu.CompileX86(w, v, cfg)
					if err != nil {
						t.Errorf("%s: JIT: %v", name, err)
						continue
					}
					for _, ld := range loaded {
						checkImage(t, fmt.Sprintf("%s %s/%s", name, ld.Prog.Name, ld.Img.Func.Name), ld.Img, cfg)
						for k, s := range ld.Img.Sites {
							if labelOut(ld.Img, k) != s.Out {
								offLabel[sc.File] = true
							}
						}
						images++
						insns += len(ld.Img.Insns)
						sites += len(ld.Img.Sites)
					}
				}
			}
		}
	}
	// Only the finding that documents it mixes sequence lengths in one
	// program; it must keep doing so.
	want := map[string]bool{"library/findings/patched_x86_mixed_sites.txtar": true}
	if fmt.Sprint(offLabel) != fmt.Sprint(want) {
		t.Errorf("scenarios whose tail-call branches miss their out label: %v, want %v", offLabel, want)
	}
	t.Logf("%d scenarios: %d images, %d instructions, %d tail-call sites decoded", len(scs), images, insns, sites)
}

// testConfigs are the configurations the decoding tests JIT under: none,
// IBT, every preset, and each option that changes bytes with as little
// else as a kernel allows.
var testConfigs = func() []prog.Config {
	out := []prog.Config{0, prog.IBT, prog.Retpoline, prog.SLS, prog.Retpoline | prog.Rethunk, prog.Retpoline | prog.SLS | prog.Thunk, prog.BMI2}
	for _, c := range prog.Configs[1:] {
		out = append(out, c.Config, c.Config|prog.IBT)
	}
	return out
}()

// checkImage checks one image's instruction records against its bytes.
func checkImage(t *testing.T, name string, img *jit.Image, cfg prog.Config) {
	t.Helper()
	ibt := cfg&prog.IBT != 0
	code := img.Code
	at := 0
	lastOwner := jit.Prologue
	for k, in := range img.Insns {
		if in.Off != at {
			t.Errorf("%s: instruction %d at %#x, want %#x (gap or overlap)", name, k, in.Off, at)
			return
		}
		if in.Len <= 0 || in.Off+in.Len > len(code) {
			t.Errorf("%s: instruction %d [%#x, +%d) outside the %d-byte code", name, k, in.Off, in.Len, len(code))
			return
		}
		b := code[in.Off : in.Off+in.Len]
		n, text, err := decodeX86(b)
		switch {
		case err != nil:
			t.Errorf("%s: %#x % x (%s): x86asm: %v", name, in.Off, b, in.Note, err)
		case n != in.Len:
			t.Errorf("%s: %#x % x (%s): x86asm decodes %d bytes (%s), recorded %d", name, in.Off, b, in.Note, n, text, in.Len)
		}
		if in.Note == "" {
			t.Errorf("%s: %#x % x: no annotation", name, in.Off, b)
		}
		switch {
		case in.BPF == jit.Prologue:
			if lastOwner != jit.Prologue {
				t.Errorf("%s: %#x: prologue instruction after BPF code", name, in.Off)
			}
		case in.BPF == jit.Epilogue:
		case in.BPF < 0 || in.BPF >= len(img.Func.Insns):
			t.Errorf("%s: %#x: owner %d is not an instruction of %s", name, in.Off, in.BPF, img.Func.Name)
		case in.BPF < lastOwner:
			t.Errorf("%s: %#x: owner %d after %d", name, in.Off, in.BPF, lastOwner)
		}
		if in.BPF != jit.Epilogue {
			lastOwner = in.BPF
		}
		at += in.Len
	}
	if at != len(code) {
		t.Errorf("%s: instructions cover %d of %d bytes", name, at, len(code))
	}
	if ibt && !bytes.HasPrefix(code, endbr64) {
		t.Errorf("%s: IBT on but the image does not start with endbr64", name)
	}
	if ibt && (len(code) < img.TailEntry+4 || !bytes.Equal(code[img.TailEntry:img.TailEntry+4], endbr64)) {
		t.Errorf("%s: IBT on but no endbr64 at the tail-call entry %d", name, img.TailEntry)
	}
	for k, s := range img.Sites {
		checkSite(t, fmt.Sprintf("%s site %d (BPF %d, %s)", name, k, s.Site.Insn, s.Kind), img, s, labelOut(img, k), cfg)
	}
	// emit_return() ends the epilogue (a program that never exits has
	// none): ret (int3 under SLS), or a jump to the return thunk.
	epi := ownedBy(img, jit.Epilogue)
	if len(epi) == 0 {
		return
	}
	end := epi[len(epi)-1].Off + epi[len(epi)-1].Len
	code = code[:end]
	var tail []byte
	switch {
	case cfg&prog.Rethunk != 0:
		if len(code) >= 5 {
			tail = code[len(code)-5 : len(code)-4]
		}
		if !bytes.Equal(tail, []byte{0xe9}) {
			t.Errorf("%s: the image ends in % x, want a jmp rel32 to the return thunk", name, code[max(0, len(code)-5):])
		}
	case cfg&prog.SLS != 0:
		if !bytes.HasSuffix(code, []byte{0xc9, 0xc3, 0xcc}) {
			t.Errorf("%s: the image ends in % x, want leave; ret; int3", name, code[max(0, len(code)-3):])
		}
	default:
		if !bytes.HasSuffix(code, []byte{0xc9, 0xc3}) {
			t.Errorf("%s: the image ends in % x, want leave; ret", name, code[max(0, len(code)-2):])
		}
	}
}

// labelOut is where the kernel's rule sends site k's "goto out" branches:
// its start plus the out label the previous sequence of its family
// (indirect, or direct) recorded; the first site gets the last one's,
// from the JIT's previous pass. Where every sequence of a family has the
// same length this is the site's own Out; the patched series' static and
// dynamic paths differ in length (library/findings/
// patched_x86_mixed_sites.txtar).
func labelOut(img *jit.Image, k int) int {
	family := func(s jit.TailSite) bool { return s.Kind == prog.Direct }
	s := img.Sites[k]
	n := len(img.Sites)
	for i := 1; i <= n; i++ {
		if p := img.Sites[(k-i+n)%n]; family(p) == family(s) {
			return s.Start + p.Out - p.Start
		}
	}
	return s.Out
}

var nop5 = []byte{0x0f, 0x1f, 0x44, 0x00, 0x00}

// checkSite: the site's bytes are a whole number of instructions owned by
// its tail call, every branch in it goes to Out, and the hooked/poked
// addresses hold what the emulator expects.
func checkSite(t *testing.T, name string, img *jit.Image, s jit.TailSite, out int, cfg prog.Config) {
	t.Helper()
	code := img.Code
	if !(0 <= s.Start && s.Start < s.Out && s.Out <= len(code)) {
		t.Errorf("%s: [%#x, %#x) is not inside the %d-byte code", name, s.Start, s.Out, len(code))
		return
	}
	tiles := false
	for _, in := range img.Insns {
		if in.Off == s.Start {
			tiles = true
		}
		if in.Off >= s.Start && in.Off < s.Out && in.BPF != s.Site.Insn {
			t.Errorf("%s: instruction at %#x owned by BPF %d", name, in.Off, in.BPF)
		}
		if in.Off < s.Out && in.Off+in.Len > s.Out {
			t.Errorf("%s: instruction at %#x straddles Out %#x", name, in.Off, s.Out)
		}
	}
	if !tiles {
		t.Errorf("%s: Start %#x is not an instruction boundary", name, s.Start)
	}
	branches := 0
	for at := s.Start; at < s.Out; {
		inst, err := x86asm.Decode(code[at:s.Out], 64)
		if err != nil {
			t.Errorf("%s: x86asm at %#x: %v", name, at, err)
			return
		}
		if rel, ok := inst.Args[0].(x86asm.Rel); ok && !(at == s.Jump && s.Thunk != "") {
			branches++
			if to := at + inst.Len + int(rel); to != out {
				t.Errorf("%s: %s at %#x goes to %#x, want %#x (out %#x)", name, x86asm.IntelSyntax(inst, 0, nil), at, to, out, s.Out)
			}
		}
		at += inst.Len
	}
	switch s.Kind {
	case prog.Direct:
		if branches != 2 { // jae out; the bypass jmp out
			t.Errorf("%s: %d branches, want 2", name, branches)
		}
		if s.Bypass+5 > s.Out || code[s.Bypass] != 0xe9 ||
			s.Bypass+5+int(int32(binary.LittleEndian.Uint32(code[s.Bypass+1:]))) != s.Out {
			t.Errorf("%s: bypass at %#x is % x, want e9 rel32 to out %#x", name, s.Bypass, code[s.Bypass:min(s.Bypass+5, len(code))], s.Out)
		}
		if s.Target+5 != s.Out || !bytes.Equal(code[s.Target:s.Out], nop5) {
			t.Errorf("%s: target at %#x is % x, want the nop5 ending at out %#x", name, s.Target, code[s.Target:min(s.Target+5, len(code))], s.Out)
		}
	default:
		if branches != 3 { // bounds, count, empty slot
			t.Errorf("%s: %d branches, want 3", name, branches)
		}
		// emit_indirect_jump(): what the configuration puts at the end.
		var want []byte
		before := []byte{}
		switch {
		case cfg&prog.Lfence != 0:
			want, before = []byte{0xff, 0xe1}, []byte{0x0f, 0xae, 0xe8}
		case cfg&prog.Thunk != 0:
			want = code[s.Jump:min(s.Jump+5, len(code))] // e9 rel32, checked below
			if len(want) != 5 || want[0] != 0xe9 || s.Thunk != x86.ThunkRCX {
				t.Errorf("%s: jump at %#x is % x through %q, want jmp rel32 to %s", name, s.Jump, want, s.Thunk, x86.ThunkRCX)
			}
		case cfg&(prog.Retpoline|prog.SLS) != 0:
			want = []byte{0xff, 0xe1, 0xcc}
		default:
			want = []byte{0xff, 0xe1}
		}
		if cfg&prog.Thunk == 0 && s.Thunk != "" {
			t.Errorf("%s: a jump through %s without the thunk option", name, s.Thunk)
		}
		if s.Jump+len(want) != s.Out || !bytes.Equal(code[s.Jump:s.Out], want) || !bytes.Equal(code[s.Jump-len(before):s.Jump], before) {
			t.Errorf("%s: jump at %#x is % x (after % x), want % x after % x, ending at out %#x", name, s.Jump,
				code[s.Jump:min(s.Jump+len(want), len(code))], code[max(0, s.Jump-len(before)):s.Jump], want, before, s.Out)
		}
	}
}

// formsSource is one big program using every instruction form of the
// modelled subset with every register pairing: ALU32/64 K and X (eax short
// forms, imm8/imm32, shifts through cl with rcx as either operand, div/mod
// around rax/rdx), 64-bit immediates of each size class, loads and stores
// of each size with disp8/disp32, conditional jumps near (rel8) and far
// (rel32), JMP32, gotos, a second exit, a bpf2bpf call, helper calls and a
// tail call.
func formsSource() (main, sub string) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, "\t"+format+"\n", args...) }
	for r := 0; r <= 9; r++ {
		w("r%d = %d", r, r+1)
	}
	w("r2 = map[progs]")
	w("r3 = *(u32 *)(r1 + 0)")
	w("call bpf_tail_call")
	w("call sub")
	w("call bpf_ktime_get_ns")
	imms := []int64{0, 1, -1, 127, 128, -128, -129, 0x12345, 0x7fffffff, -0x80000000}
	for _, p := range []string{"r", "w"} {
		for _, op := range []string{"+=", "-=", "&=", "|=", "^=", "*=", "/=", "%=", "<<=", ">>=", "s>>=", "="} {
			for d := 0; d <= 9; d++ {
				for s := 0; s <= 9; s++ {
					w("%s%d %s %s%d", p, d, op, p, s)
				}
				for _, imm := range imms {
					switch op {
					case "<<=", ">>=", "s>>=":
						if imm < 0 || imm > 31 {
							continue
						}
					case "/=", "%=":
						if imm == 0 {
							continue
						}
					}
					w("%s%d %s %d", p, d, op, imm)
				}
			}
		}
		for d := 0; d <= 9; d++ {
			w("%s%d = -%s%d", p, d, p, d)
		}
	}
	for d := 0; d <= 9; d++ {
		w("r%d <<= 63", d)
		for _, v := range []string{"0x123456789", "-1", "0x7fffffff", "0x80000000", "0xffffffff80000000", "0"} {
			w("r%d = %s ll", d, v)
		}
	}
	for _, sz := range []string{"u8", "u16", "u32", "u64"} {
		for d := 0; d <= 10; d++ {
			for s := 0; s <= 10; s++ {
				for _, off := range []int{0, -8, 127, -129, 300} {
					sign := "+"
					if off < 0 {
						sign, off = "-", -off
					}
					if d != 10 {
						w("r%d = *(%s *)(r%d %s %d)", d, sz, s, sign, off)
					}
					w("*(%s *)(r%d %s %d) = r%d", sz, d, sign, off, s)
				}
			}
			for _, imm := range []int64{0, -1, 0x7f, 0x1234} {
				w("*(%s *)(r%d - 16) = %d", sz, d, imm)
			}
		}
	}
	for _, p := range []string{"r", "w"} {
		for _, op := range []string{"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"} {
			for d := 0; d <= 9; d++ {
				s := (d + 3) % 10
				for _, target := range []string{"+1", "far"} {
					w("if %s%d %s %s%d goto %s", p, d, op, p, s, target)
					w("r0 = 0")
					for _, imm := range []int64{0, 5, -200, 0x12345} {
						w("if %s%d %s %d goto %s", p, d, op, imm, target)
						w("r0 = 0")
					}
				}
			}
		}
	}
	w("goto +1")
	w("r0 = 1")
	w("goto +0")
	w("if r0 == 0 goto near_exit")
	w("goto far")
	b.WriteString("near_exit:\n")
	w("exit")
	b.WriteString("far:\n")
	w("r0 = 0")
	w("exit")
	return b.String(), "\tr0 = 0\n\texit\n"
}

// TestDecodeInstructionForms JITs formsSource in both variants, IBT off
// and on, and checks every instruction as TestDecodeLibrary does.
func TestDecodeInstructionForms(t *testing.T) {
	for _, img := range formsImages(t) {
		checkImage(t, img.name, img.img, img.cfg)
	}
}

type namedImage struct {
	name string
	img  *jit.Image
	cfg  prog.Config
}

func formsImages(t *testing.T) []namedImage {
	t.Helper()
	mainSrc, subSrc := formsSource()
	mi, err := asm.Parse(mainSrc, 1)
	if err != nil {
		t.Fatal(err)
	}
	si, err := asm.Parse(subSrc, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prog.NewProgram("forms", "xdp", &prog.Function{Name: "forms", Insns: mi, StackDepth: 64},
		map[string]*prog.Function{"sub": {Name: "sub", Insns: si, StackDepth: 8}})
	if err != nil {
		t.Fatal(err)
	}
	arr, err := prog.NewProgArray("progs", 4)
	if err != nil {
		t.Fatal(err)
	}
	// Without the verifier: the helper calls' clobbers do not matter here.
	fx, err := prog.FixupProgram(p, map[string]*prog.ProgArray{"progs": arr}, prog.FixupOptions{NoVerifier: true})
	if err != nil {
		t.Fatal(err)
	}
	res := testResolver{funcs: []uint64{imageBase, imageBase + 0x100000}}
	var out []namedImage
	for _, v := range prog.Kernels {
		for _, cfg := range testConfigs {
			for fn := range p.Funcs {
				img, err := x86.Compile(p, fn, fx, res.funcs[fn], res, x86.Options{Kernel: v, Layout: prog.DefaultLayout, Config: cfg})
				if err != nil {
					t.Fatalf("%s/%v: %v", v, cfg, err)
				}
				out = append(out, namedImage{fmt.Sprintf("forms/%s [%s/config=%v]", p.Funcs[fn].Name, v, cfg), img, cfg})
			}
		}
	}
	if n := len(out[0].img.Insns); n < 5000 {
		t.Fatalf("forms program has only %d machine instructions", n)
	}
	return out
}

func TestDecode(t *testing.T) {
	const pc = 0x1000
	tests := []struct {
		name   string
		code   []byte
		syntax x86.Syntax
		want   x86.Inst
	}{
		{"mov", []byte{0x89, 0xD2}, x86.Intel, x86.Inst{Len: 2, Text: "mov edx, edx"}},
		{"att", []byte{0x89, 0xD2}, x86.ATT, x86.Inst{Len: 2, Text: "mov %edx,%edx"}},
		{"endbr64", []byte{0xF3, 0x0F, 0x1E, 0xFA, 0x90}, x86.Intel, x86.Inst{Len: 4, Text: "endbr64"}},
		{"endbr64 att", []byte{0xF3, 0x0F, 0x1E, 0xFA}, x86.ATT, x86.Inst{Len: 4, Text: "endbr64"}},
		// mov rax, [rbp+disp32] with disp32 = -16: x86asm alone prints +0xfffffff0.
		{"disp32", []byte{0x48, 0x8B, 0x85, 0xF0, 0xFF, 0xFF, 0xFF}, x86.Intel, x86.Inst{Len: 7, Text: "mov rax, qword ptr [rbp-0x10]", AddrRegs: []string{"rbp"}, Loads: []string{"rax"}}},
		{"disp32 att", []byte{0x48, 0x8B, 0x85, 0xF0, 0xFF, 0xFF, 0xFF}, x86.ATT, x86.Inst{Len: 7, Text: "mov -0x10(%rbp),%rax", AddrRegs: []string{"rbp"}, Loads: []string{"rax"}}},
		// The operands a tracer follows pointer chases by.
		{"load slot", []byte{0x48, 0x8B, 0x8C, 0xD6, 0x30, 0x01, 0x00, 0x00}, x86.Intel, x86.Inst{Len: 8, Text: "mov rcx, qword ptr [rsi+8*rdx+0x130]", AddrRegs: []string{"rsi", "rdx"}, Loads: []string{"rcx"}}},
		{"load u32", []byte{0x8B, 0x17}, x86.Intel, x86.Inst{Len: 2, Text: "mov edx, dword ptr [rdi]", AddrRegs: []string{"rdi"}, Loads: []string{"rdx"}}},
		{"count check", []byte{0x48, 0x83, 0x38, 0x21}, x86.Intel, x86.Inst{Len: 4, Text: "cmp qword ptr [rax], 0x21", AddrRegs: []string{"rax"}}},
		{"count++", []byte{0x48, 0x83, 0x00, 0x01}, x86.Intel, x86.Inst{Len: 4, Text: "add qword ptr [rax], 0x1", AddrRegs: []string{"rax"}}},
		{"pop", []byte{0x58}, x86.Intel, x86.Inst{Len: 1, Text: "pop rax", Loads: []string{"rax"}}},
		{"jbe rel8", []byte{0x76, 0x10}, x86.Intel, x86.Inst{Len: 2, Text: "jbe 0x1012", Target: 0x1012, Branch: true}},
		{"jmp rel32 back", []byte{0xE9, 0xFB, 0xFF, 0xFF, 0xFF}, x86.Intel, x86.Inst{Len: 5, Text: "jmp 0x1000", Target: 0x1000, Branch: true}},
		{"call", []byte{0xE8, 0x00, 0x01, 0x00, 0x00}, x86.Intel, x86.Inst{Len: 5, Text: "call 0x1105", Target: 0x1105, Branch: true}},
		{"jmp rcx", []byte{0xFF, 0xE1}, x86.Intel, x86.Inst{Len: 2, Text: "jmp rcx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := x86.Decode(tt.code, pc, tt.syntax)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(% x) = %+v, %v; want %+v", tt.code, got, err, tt.want)
			}
		})
	}
	// Truncated code is x86asm's to judge: a lone prefix decodes as one.
	for _, code := range [][]byte{nil, {0x0F, 0x0A}} {
		if got, err := x86.Decode(code, pc, x86.Intel); err == nil {
			t.Errorf("Decode(% x) = %+v, want an error", code, got)
		}
	}
}
