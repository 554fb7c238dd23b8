package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

const disasmLib = "../../scenarios/library/test_bpf/01_tail_call_2.txtar"

func disasm(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := tailsim(append([]string{"disasm"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func mustDisasm(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := disasm(t, args...)
	if code != exitOK {
		t.Fatalf("disasm %v: exit %d\nstderr:\n%s", args, code, errs)
	}
	if errs != "" {
		t.Errorf("disasm %v wrote to stderr:\n%s", args, errs)
	}
	return out
}

func writeDisasmScenario(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.txtar")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A machine-instruction row: offset, optional bytes, text, optional note.
var (
	rowRE    = regexp.MustCompile(`^ {4} *([0-9a-f]+):  ([^;]*[^; ])(?: +; (.*))?$`)
	hexRowRE = regexp.MustCompile(`^ {4} *([0-9a-f]+):  ((?:[0-9a-f]{2} )*[0-9a-f]{2})  +([^;]*[^; ])(?: +; (.*))?$`)
	funcRE   = regexp.MustCompile(`^(\S+) \(bpf_func (0x[0-9a-f]+), `)
)

// matchLine reports whether some line of out matches the pattern.
func matchLine(t *testing.T, out, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			return
		}
	}
	t.Errorf("no line matches %s in:\n%s", pattern, out)
}

// group returns the lines from the header that starts with header up to the
// next group header or blank line.
func group(t *testing.T, out, header string) []string {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "  "+header) {
			continue
		}
		var g []string
		for _, m := range lines[i+1:] {
			if m == "" || strings.HasPrefix(m, "  ;") || !strings.HasPrefix(m, "  ") {
				break
			}
			g = append(g, m)
		}
		return g
	}
	t.Fatalf("no group %q in:\n%s", header, out)
	return nil
}

func TestDisasmListingUpstream(t *testing.T) {
	out := mustDisasm(t, disasmLib)
	if first, _, _ := strings.Cut(out, "\n"); first != "x86_64 upstream, layout v6.18 (max_entries 0x44, ptrs 0x130, bpf_func 0x48)" {
		t.Errorf("first line %q", first)
	}
	for _, p := range []string{
		`^leaf \(bpf_func 0x[0-9a-f]+, tail-call entry \+0xc, 21 bytes\):$`,
		`^tail_call_2 \(bpf_func 0x[0-9a-f]+, tail-call entry \+0xc, \d+ bytes\):$`,
		// The header: slot index (the map load takes two), asm, fixed-up encoding, site.
		`^  ; 1: r2 = map\[progs\] +\[bpf: 18 12 00 00 00 00 00 00 00 00 00 00 00 00 00 00\]  # TAIL_CALL\(-1\)`,
		`^  ; 4: call bpf_tail_call +\[bpf: f5 00 00 00 00 00 00 00\]  tail call: indirect map=progs imm=0x0$`,
		`^  ; 6: exit +\[bpf: 95 00 00 00 00 00 00 00\]  \(no code\)$`,
		`^ +0:  nop dword ptr \[rax\+rax\], eax +; nop5: fentry/trampoline patch site$`,
		`^ +[0-9a-f]+:  mov edx, edx +; index = \(u32\)R3$`,
		`^ +[0-9a-f]+:  cmp dword ptr \[rsi\+0x44\], edx +; bounds check: cmp \[rsi\+max_entries\], edx$`,
		`^ +[0-9a-f]+:  mov rax, qword ptr \[rbp-0x10\] +; mov rax, \[rbp-16-stack\]: rax = tcc_ptr$`,
		`^ +[0-9a-f]+:  jmp rcx +; tail call$`,
		`^ +<tail calls land here: X86_TAIL_CALL_OFFSET = 0xc>$`,
		`^ +<out: the tail call at 4 falls through to here>$`,
		// A branch inside the function prints absolute and points at the offset.
		`^ +[0-9a-f]+:  jbe 0x[0-9a-f]+ +; jbe out: index >= max_entries -> [0-9a-f]+$`,
	} {
		matchLine(t, out, p)
	}
	// Annotations that only repeat the instruction are dropped.
	matchLine(t, out, `^ +8:  push rbp$`)

	// The tail call's machine code sits in its group, in order, and the
	// groups come in program order.
	var texts []string
	for _, l := range group(t, out, "; 4: call bpf_tail_call") {
		if m := rowRE.FindStringSubmatch(l); m != nil {
			texts = append(texts, m[2])
		}
	}
	want := []string{"mov edx, edx", "cmp dword ptr [rsi+0x44], edx", "jbe", "mov rax, qword ptr [rbp-0x10]", "cmp qword ptr [rax], 0x21",
		"jnb", "mov rcx, qword ptr [rsi+8*rdx+0x130]", "test rcx, rcx", "jz", "add qword ptr [rax], 0x1", "pop rax", "pop rax",
		"mov rcx, qword ptr [rcx+0x48]", "add rcx, 0xc", "jmp rcx"}
	if len(texts) != len(want) {
		t.Fatalf("tail-call group has %d instructions, want %d:\n%s", len(texts), len(want), strings.Join(texts, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(texts[i], want[i]) {
			t.Errorf("tail-call instruction %d = %q, want %q...", i, texts[i], want[i])
		}
	}
	_, body, _ := strings.Cut(out, "tail_call_2 (")
	last := -1
	for _, h := range []string{"; prologue", "; 0: r1 += 2", "; 1: r2 = map[progs]", "; 3: w3 = 0", "; 4: call bpf_tail_call", "; 5: r0 = -1", "; 6: exit", "; epilogue"} {
		i := strings.Index(body, "\n  "+h)
		if i <= last {
			t.Errorf("header %q at %d, after the previous at %d", h, i, last)
		}
		last = i
	}
}

func TestDisasmListingPatched(t *testing.T) {
	out := mustDisasm(t, "-variant", "patched", disasmLib)
	for _, p := range []string{
		`^x86_64 patched, layout v6.18 `,
		`^  ; 4: call bpf_tail_call +\[bpf: f5 00 00 00 00 00 00 00\]  tail call: static map=progs imm=0x0$`,
		`^ +[0-9a-f]+:  cmp edx, 0xb +; bounds check: cmp edx, 11 \(max_entries as an immediate\)$`,
		// ptrs + max_entries * 8 = 0x130 + 11*8.
		`^ +[0-9a-f]+:  mov rcx, qword ptr \[rsi\+8\*rdx\+0x188\] +; load cached target: `,
		`^ +[0-9a-f]+:  jmp rcx +; tail call$`,
	} {
		matchLine(t, out, p)
	}
	// The patched static path reads neither max_entries nor bpf_func.
	for _, s := range []string{"[rsi+0x44]", "[rcx+0x48]"} {
		if strings.Contains(out, s) {
			t.Errorf("patched listing reads %s:\n%s", s, out)
		}
	}
}

func TestDisasmLayout(t *testing.T) {
	out := mustDisasm(t, "-layout", "pre-v6.18", disasmLib, "tail_call_2")
	matchLine(t, out, `^x86_64 upstream, layout pre-v6\.18 \(max_entries 0x24, ptrs 0x110, bpf_func 0x30\)$`)
	matchLine(t, out, `cmp dword ptr \[rsi\+0x24\], edx +; bounds check`)
	matchLine(t, out, `mov rcx, qword ptr \[rcx\+0x30\] +; mov rcx, \[rcx\+bpf_func\]`)
}

// The scenario's hardening reaches the listing: landing pads at the start
// and the tail-call entry moved past them.
func TestDisasmHardening(t *testing.T) {
	lib := "../../scenarios/library/edges/hardening.txtar"
	out := mustDisasm(t, lib, "entry")
	matchLine(t, out, `, hardening ibt,bti,pac$`)
	matchLine(t, out, `^ +0: +endbr64 `)
	matchLine(t, out, `tail calls land here: X86_TAIL_CALL_OFFSET = 0x10>`)
	out = mustDisasm(t, "-arch", "arm64", lib, "entry")
	matchLine(t, out, `^ +0: +hint #0x26 +; bti jc`)
	matchLine(t, out, `paciasp`)
	matchLine(t, out, `tail calls land here: 4 \* PROLOGUE_OFFSET = 0x20>`)
}

// TestDisasmHex checks the bytes column against the JIT's own image: every
// byte of every function appears once, in order, lower-case and
// space-separated, and re-decoding a row gives its text.
func TestDisasmHex(t *testing.T) {
	for _, v := range prog.Variants {
		t.Run(v.String(), func(t *testing.T) {
			out := mustDisasm(t, "-hex", "-variant", v.String(), disasmLib)
			scs, err := scenarios.LoadPaths([]string{disasmLib})
			if err != nil {
				t.Fatal(err)
			}
			w, err := scs[0].Build()
			if err != nil {
				t.Fatal(err)
			}
			images, err := emu.CompileX86(w, v, false)
			if err != nil {
				t.Fatal(err)
			}
			code := map[string][]byte{}
			for _, im := range images {
				code[im.Prog.Name] = im.Img.Code
			}
			got := map[string][]byte{}
			var fn string
			var base uint64
			sawMovEdx := false
			for _, l := range strings.Split(out, "\n") {
				if m := funcRE.FindStringSubmatch(l); m != nil {
					fn = m[1]
					base, _ = strconv.ParseUint(m[2], 0, 64)
					continue
				}
				if rowRE.MatchString(l) && !hexRowRE.MatchString(l) {
					t.Errorf("row without a bytes column: %q", l)
					continue
				}
				m := hexRowRE.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				off, _ := strconv.ParseUint(m[1], 16, 64)
				if int(off) != len(got[fn]) {
					t.Errorf("%s: row at %#x, want %#x: %q", fn, off, len(got[fn]), l)
				}
				b, err := hex.DecodeString(strings.ReplaceAll(m[2], " ", ""))
				if err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				got[fn] = append(got[fn], b...)
				in, err := x86asm.Decode(b, 64)
				if err != nil || in.Len != len(b) {
					t.Errorf("%q: bytes do not decode to one instruction: %v", l, err)
					continue
				}
				if m[3] == "mov edx, edx" {
					sawMovEdx = true
					if m[2] != "89 d2" {
						t.Errorf("mov edx, edx shown with bytes %q, want 89 d2", m[2])
					}
				}
				// Rows with a disp32 are printed sign-extended; the rest
				// must read exactly as x86asm decodes them.
				if text := x86asm.IntelSyntax(in, base+off, nil); text != m[3] && !strings.Contains(m[3], "-0x") {
					t.Errorf("%q: bytes decode to %q", l, text)
				}
			}
			if !sawMovEdx {
				t.Errorf("no mov edx, edx row:\n%s", out)
			}
			if len(got) != len(code) {
				t.Errorf("listed %d functions, want %d", len(got), len(code))
			}
			for name, c := range code {
				if !bytes.Equal(got[name], c) {
					t.Errorf("%s: listed bytes\n%x\nwant\n%x", name, got[name], c)
				}
			}
		})
	}
}

func TestDisasmSyntax(t *testing.T) {
	att := mustDisasm(t, "-syntax", "att", disasmLib, "tail_call_2")
	matchLine(t, att, `^ +[0-9a-f]+:  mov %edx,%edx +; index = \(u32\)R3$`)
	matchLine(t, att, `^ +[0-9a-f]+:  cmp %edx,0x44\(%rsi\) +; bounds check`)
	matchLine(t, att, `^ +[0-9a-f]+:  mov -0x10\(%rbp\),%rax +; mov rax, \[rbp-16-stack\]: rax = tcc_ptr$`)
	matchLine(t, att, `^ +[0-9a-f]+:  jmp \*%rcx +; tail call$`)
	// The JIT's Intel-worded annotations are trimmed the same way.
	matchLine(t, att, `^ +8:  push %rbp$`)
	if strings.Contains(att, " ptr ") {
		t.Errorf("AT&T listing has Intel operands:\n%s", att)
	}
	intel := mustDisasm(t, "-syntax", "intel", disasmLib, "tail_call_2")
	if def := mustDisasm(t, disasmLib, "tail_call_2"); def != intel {
		t.Errorf("default syntax differs from -syntax intel")
	}
	matchLine(t, intel, `^ +[0-9a-f]+:  mov edx, edx +;`)
	if strings.Contains(intel, "%") {
		t.Errorf("Intel listing has AT&T registers:\n%s", intel)
	}
}

const disasmSubprog = `Subprogram tail call
-- maps --
jt max_entries=4
-- prog entry --
	call helper
	r0 = 2
	exit
-- subprog helper --
	r2 = map[jt]
	w3 = 1
	call bpf_tail_call
	r0 = 5
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- run --
run entry
expect r0 = 1
`

func TestDisasmProgFilter(t *testing.T) {
	leaf := mustDisasm(t, disasmLib, "leaf")
	if !strings.Contains(leaf, "\nleaf (bpf_func ") || strings.Contains(leaf, "\ntail_call_2 (") {
		t.Errorf("PROG leaf lists:\n%s", leaf)
	}
	tc := mustDisasm(t, disasmLib, "tail_call_2")
	if !strings.Contains(tc, "\ntail_call_2 (bpf_func ") || strings.Contains(tc, "\nleaf (") {
		t.Errorf("PROG tail_call_2 lists:\n%s", tc)
	}
	all := mustDisasm(t, disasmLib)
	if li, ti := strings.Index(all, "\nleaf ("), strings.Index(all, "\ntail_call_2 ("); li < 0 || ti < li {
		t.Errorf("no PROG: want leaf then tail_call_2:\n%s", all)
	}

	sub := writeDisasmScenario(t, disasmSubprog)
	entry := mustDisasm(t, sub, "entry")
	ei, hi := strings.Index(entry, "\nentry (bpf_func "), strings.Index(entry, "\nentry/helper (bpf_func ")
	if ei < 0 || hi < ei || strings.Contains(entry, "\nleaf (") {
		t.Errorf("PROG entry: want entry then entry/helper, no leaf:\n%s", entry)
	}
	matchLine(t, entry, `^entry/helper \(bpf_func 0x[0-9a-f]+, subprogram, \d+ bytes\):$`)
	helper := mustDisasm(t, sub, "entry/helper")
	if strings.Contains(helper, "\nentry (") || !strings.Contains(helper, "\nentry/helper (") {
		t.Errorf("PROG entry/helper lists:\n%s", helper)
	}
	// A constant key: a direct tail call, whose imm carries poke index + 1
	// upstream and (poke+1)<<16 in the patched series.
	matchLine(t, helper, `^  ; 3: call bpf_tail_call +\[bpf: f5 00 00 00 01 00 00 00\]  tail call: direct map=jt key=1 poke=0 imm=0x1$`)
	matchLine(t, helper, `poke site: bypass`)
	patched := mustDisasm(t, "-variant", "patched", sub, "entry/helper")
	matchLine(t, patched, `^  ; 3: call bpf_tail_call +\[bpf: f5 00 00 00 00 00 01 00\]  tail call: direct map=jt key=1 poke=0 imm=0x10000$`)
}

func TestDisasmFlagsAfterScenario(t *testing.T) {
	out := mustDisasm(t, disasmLib, "leaf", "-hex", "-syntax", "att")
	matchLine(t, out, `^ +8:  55 +push %rbp$`)
}

func TestDisasmErrors(t *testing.T) {
	bad := writeDisasmScenario(t, strings.Replace(disasmSubprog, "w3 = 1", "w3 = r1", 1))
	tests := []struct {
		args   []string
		stderr []string
	}{
		{nil, []string{"missing SCENARIO", "usage: tailsim disasm"}},
		{[]string{disasmLib, "nope"}, []string{`unknown program "nope"`, "programs: leaf, tail_call_2"}},
		{[]string{disasmLib, "tail_call_2/nope"}, []string{`no function "nope"`}},
		{[]string{disasmLib, "leaf", "extra"}, []string{"too many arguments"}},
		{[]string{"-syntax", "plan9", disasmLib}, []string{`unknown syntax "plan9"`, "intel, att"}},
		{[]string{"-arch", "mips", disasmLib}, []string{`mips`, "x86_64, arm64"}},
		{[]string{"-arch", "ref", disasmLib}, []string{"reference model", "available: x86_64"}},
		{[]string{"-arch", "mips", disasmLib}, []string{`unknown arch "mips"`}},
		{[]string{"-variant", "v2", disasmLib}, []string{"unknown variant"}},
		{[]string{"-layout", "v1", disasmLib}, []string{"unknown layout"}},
		{[]string{"-bogus", disasmLib}, []string{"flag provided but not defined"}},
		{[]string{filepath.Join(t.TempDir(), "missing.txtar")}, []string{"no such file"}},
		{[]string{"../../scenarios/library/test_bpf"}, []string{"holds 10 scenarios"}},
		{[]string{bad}, []string{bad + ":10:7:"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := disasm(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitUsage, errs)
			}
			if out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
		})
	}
}

func TestDisasmHelp(t *testing.T) {
	var out bytes.Buffer
	if code := tailsim([]string{"help", "disasm"}, &out, &out); code != exitOK {
		t.Fatalf("help disasm: exit %d", code)
	}
	for _, s := range []string{"usage: tailsim disasm", "-syntax", "-hex", "-arch"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help disasm lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	tailsim([]string{"help"}, &out, &out)
	if !strings.Contains(out.String(), "  disasm ") {
		t.Errorf("help does not list disasm:\n%s", out.String())
	}
}

// arm64 listings print absolute branch targets where arm64asm prints
// ".+offset", and the tail call's three fixed-up branches go to out.
func TestDisasmArm64(t *testing.T) {
	for _, v := range []string{"upstream", "patched"} {
		code, out, errs := run(t, "disasm", "-arch", "arm64", "-variant", v, disasmLib, "tail_call_2")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", v, code, errs)
		}
		if strings.Contains(out, ".+0x") || strings.Contains(out, ".-0x") {
			t.Errorf("%s: relative branch targets left:\n%s", v, out)
		}
		var outOff string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "<out: the tail call") {
				outOff = "pending"
				continue
			}
			if outOff == "pending" {
				outOff = strings.TrimSpace(strings.SplitN(l, ":", 2)[0])
			}
		}
		if outOff == "" || outOff == "pending" {
			t.Fatalf("%s: no out label:\n%s", v, out)
		}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "branch placeholder fixed up") {
				n++
				if !strings.HasSuffix(strings.TrimSpace(l), "-> "+outOff) {
					t.Errorf("%s: placeholder branch not to out (%s): %s", v, outOff, l)
				}
			}
		}
		if n != 3 {
			t.Errorf("%s: %d fixed-up placeholders, want 3:\n%s", v, n, out)
		}
		want := "ldr w10, [x1,x10]"
		if v == "patched" {
			want = "add x11, x11, #0x188"
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s: listing lacks %q:\n%s", v, want, out)
		}
	}
}
