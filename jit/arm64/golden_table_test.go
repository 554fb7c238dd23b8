package arm64_test

// Golden word tables: testdata/tailcalls-{upstream-indirect,patched-static,
// patched-dynamic}.txt, prologues.txt and extras.txt hold, for every case,
// the A64 words the kernel's arm64 JIT emits for each function's prologue,
// each tail-call sequence (Sites[i].Start..Out), the bpf2bpf call and the
// epilogue. They are composed from docs/kernel.md §6/§7/§8 fragments by
// testdata/gengolden, which imports nothing from tailsim and encodes with
// its own A64 helpers; this file builds the program each case names, JITs
// it with arm64.Compile and compares, instruction by instruction. The
// tables' text column is what llvm-mc prints for each word
// (TestGoldenTablesLLVMMC), so a wrong hand encoding cannot hide there.
//
// The cross product (TestGoldenTablesCoverage): form (upstream indirect,
// patched static, patched dynamic) x layout preset x stack {0, 24} x
// callee-saved {none, r6, r6–r7, r6–r8, r6–r9, fp} x BTI x PAC.

//go:generate go run ./testdata/gengolden testdata

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/jit"
	"tailsim/jit/internal/goldentab"
	"tailsim/prog"
)

// tableForms are the tail-call forms, one table each.
var tableForms = []string{"upstream-indirect", "patched-static", "patched-dynamic"}

var tableFiles = []string{
	"tailcalls-upstream-indirect.txt", "tailcalls-patched-static.txt", "tailcalls-patched-dynamic.txt",
	"prologues.txt", "extras.txt",
}

type (
	tableInsn    = goldentab.Insn[uint32]
	tableSection = goldentab.Section[uint32]
	tableCase    = goldentab.Case[uint32]
)

func normText(s string) string { return goldentab.Norm(s) }

// loadTable parses one table: each instruction is one 32-bit word.
func loadTable(t testing.TB, file string) []*tableCase {
	t.Helper()
	return goldentab.Load(t, filepath.Join("testdata", file), func(hex string) (uint32, error) {
		w, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || len(hex) != 8 {
			return 0, fmt.Errorf("bad word %q", hex)
		}
		return uint32(w), nil
	})
}

// ---- programs ----

// tableShapes are the programs the cases name. {regs} becomes one
// instruction per callee-saved register of the case, "rN = r1" for R6–R9
// and "r0 = r10" for FP, so find_used_callee_regs() sees exactly those.
// Keys are read from ctx (the patched static path) or are the constant 1
// (the verifier makes the site direct, which arm64 ignores). "other" is a
// second prog array (max_entries 7) that poisons the map pointer when a
// branch lets it reach R2. After a tail call R1–R5 are dead, so the
// two-site shapes restore ctx from r6 and need regs to include r6.
var tableShapes = map[string]struct{ main, sub string }{
	"tc-var": {main: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc-const": {main: `{regs}
	r2 = map[progs]
	r3 = 1
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc-poisoned": {main: `{regs}
	r2 = map[progs]
	if r1 == 0 goto l
	r2 = map[other]
l:	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc-var-mapidx1": {main: `{regs}
	r4 = map[other]
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc2-var": {main: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r1 = r6
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 4)
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc2-poisoned": {main: `{regs}
	r2 = map[progs]
	if r1 == 0 goto l
	r2 = map[other]
l:	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r1 = r6
	r2 = map[other]
	if r1 != 0 goto m
	r2 = map[progs]
m:	r3 = *(u32 *)(r1 + 4)
	call bpf_tail_call
	r0 = 0
	exit`},
	"sub-tc-var": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"sub-tc-poisoned": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r2 = map[progs]
	if r1 == 0 goto l
	r2 = map[other]
l:	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"notail-sub": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r0 = 0
	exit`},
	"notail-leaf": {main: `{regs}
	r0 = 0
	exit`},
}

func tableRegsSource(spec string) string {
	if spec == "none" {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.Split(spec, ",") {
		if r == "fp" {
			b.WriteString("\tr0 = r10\n")
		} else {
			fmt.Fprintf(&b, "\t%s = r1\n", r)
		}
	}
	return b.String()
}

// tableLayout is a preset name or custom:max_entries:ptrs:bpf_func.
func tableLayout(s string) (prog.Layout, error) {
	if rest, ok := strings.CutPrefix(s, "custom:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) != 3 {
			return prog.Layout{}, fmt.Errorf("custom layout %q: want custom:max_entries:ptrs:bpf_func", s)
		}
		var v [3]uint32
		for k, p := range parts {
			n, err := strconv.ParseUint(p, 0, 32)
			if err != nil {
				return prog.Layout{}, err
			}
			v[k] = uint32(n)
		}
		return prog.Layout{Name: s, MaxEntries: v[0], Ptrs: v[1], BpfFunc: v[2]}, nil
	}
	return prog.LayoutByName(s)
}

func onOffParam(c *tableCase, key string) (bool, error) {
	switch c.Params[key] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q", key, c.Params[key])
}

// tableSpec turns a case's parameters into helpers_test.go's buildSpec.
func tableSpec(c *tableCase) (buildSpec, error) {
	pr := c.Params
	var s buildSpec
	sh, ok := tableShapes[pr["shape"]]
	if !ok {
		return s, fmt.Errorf("unknown shape %q", pr["shape"])
	}
	stack, err := strconv.Atoi(pr["stack"])
	if err != nil {
		return s, err
	}
	maxEntries, err := strconv.ParseUint(pr["max"], 0, 32)
	if err != nil {
		return s, err
	}
	if s.layout, err = tableLayout(pr["layout"]); err != nil {
		return s, err
	}
	if s.variant, err = prog.ParseKernel(pr["variant"]); err != nil {
		return s, err
	}
	switch pr["fixup"] {
	case "default":
	case "noverifier":
		s.fixup.NoVerifier = true
	default:
		return s, fmt.Errorf("unknown fixup %q", pr["fixup"])
	}
	if s.bti, err = onOffParam(c, "bti"); err != nil {
		return s, err
	}
	if s.pac, err = onOffParam(c, "pac"); err != nil {
		return s, err
	}
	regs := tableRegsSource(pr["regs"])
	s.main = strings.ReplaceAll(sh.main, "{regs}\n", regs)
	if sh.sub != "" {
		s.sub = strings.ReplaceAll(sh.sub, "{regs}\n", regs)
	}
	s.stack, s.subStack = stack, stack
	s.maxEntries = uint32(maxEntries)
	return s, nil
}

// ---- comparison ----

func tableWant(s *tableSection) []string {
	out := make([]string, len(s.Insns))
	for k, in := range s.Insns {
		out[k] = fmt.Sprintf("%08x", in.Code)
	}
	return out
}

func tableGot(img *jit.Image, sel []jit.Insn) []string {
	out := make([]string, len(sel))
	for k, in := range sel {
		out[k] = fmt.Sprintf("%08x", word(img, in))
	}
	return out
}

func tableListing(s *tableSection) string {
	var b strings.Builder
	for _, in := range s.Insns {
		fmt.Fprintf(&b, "\t%08x  %s\n", in.Code, in.Text)
	}
	return b.String()
}

func tableActual(img *jit.Image, sel []jit.Insn) string {
	var b strings.Builder
	for _, in := range sel {
		fmt.Fprintf(&b, "\t%#05x %08x  %s\n", in.Off, word(img, in), in.Note)
	}
	return b.String()
}

// tiles reports whether sel covers [from, to) in 4-byte steps.
func tiles(sel []jit.Insn, from, to int) bool {
	at := from
	for _, in := range sel {
		if in.Off != at || in.Len != 4 {
			return false
		}
		at += 4
	}
	return at == to
}

// textIndex is the index of the section's first instruction with text, or -1.
func textIndex(s *tableSection, text string) int {
	for k, in := range s.Insns {
		if in.Text == text {
			return k
		}
	}
	return -1
}

func compareTable(t *testing.T, c *tableCase, s *tableSection, img *jit.Image, sel []jit.Insn, what string) {
	t.Helper()
	if diff := cmp.Diff(tableWant(s), tableGot(img, sel)); diff != "" {
		t.Errorf("%s (%s, section at line %d): %s differs from the golden words (-want +got, one A64 word per line):\n%s\nwant:\n%sgot:\n%s",
			c.Name(), c.File, s.Line, what, diff, tableListing(s), tableActual(img, sel))
	}
}

// checkTableCase builds and JITs one case and compares every section.
// It returns the number of golden instructions compared.
func checkTableCase(t *testing.T, c *tableCase) int {
	spec, err := tableSpec(c)
	if err != nil {
		t.Fatalf("%s (%s): %v", c.Name(), c.Where(), err)
	}
	b, err := tryBuild(t, spec)
	if err != nil {
		t.Errorf("%s (%s): %v", c.Name(), c.Where(), err)
		return 0
	}
	for fn, img := range b.imgs {
		checkImage(t, namedImage{c.Name() + "/" + img.Func.Name, img, b, fn, prog.Linux618})
	}
	stack, _ := strconv.Atoi(c.Params["stack"])
	n := 0
	for _, s := range c.Sections {
		fnName, part, ok := strings.Cut(s.Name, ".")
		if !ok {
			t.Fatalf("%s: section %q is not <func>.<part>", c.Where(), s.Name)
		}
		fi := b.p.FuncIndex(fnName)
		if fi < 0 {
			t.Fatalf("%s: section %q: no function %q", c.Where(), s.Name, fnName)
		}
		img := b.imgs[fi]
		n += len(s.Insns)
		switch part {
		case "prologue":
			sel := prologue(img)
			if !tiles(sel, 0, 4*len(sel)) {
				t.Errorf("%s: %s: the prologue does not come first, contiguous from offset 0", c.Name(), s.Name)
			}
			compareTable(t, c, s, img, sel, s.Name)
			if want := (stack + 15) / 16 * 16; img.StackSize != want {
				t.Errorf("%s: %s: StackSize %d, want round_up(%d, 16) = %d", c.Name(), s.Name, img.StackSize, stack, want)
			}
			// Tail calls land after "mov x26, sp" (PROLOGUE_OFFSET), on
			// the bti j with BTI. A subprogram has neither.
			land := textIndex(s, "mov x26, sp") + 1
			if fi == 0 {
				if land == 0 || img.TailEntry != 4*land {
					t.Errorf("%s: %s: TailEntry %d, golden landing pad at %d", c.Name(), s.Name, img.TailEntry, 4*land)
				}
				if spec.bti && (land >= len(s.Insns) || s.Insns[land].Text != "bti j") {
					t.Errorf("%s: %s: no bti j at the golden landing pad", c.Name(), s.Name)
				}
			} else if land != 0 || textIndex(s, "bti j") >= 0 || textIndex(s, "stp x26, x26, [sp, #-16]!") < 0 {
				t.Errorf("%s: %s: a subprogram prologue keeps x26 and has no landing pad", c.Name(), s.Name)
			}
		case "epilogue":
			sel := epilogue(img)
			if len(sel) > 0 && !tiles(sel, sel[0].Off, sel[0].Off+4*len(sel)) {
				t.Errorf("%s: %s: epilogue instructions are not contiguous", c.Name(), s.Name)
			}
			compareTable(t, c, s, img, sel, s.Name)
		case "call":
			k := slices.IndexFunc(img.Func.Insns, prog.Instruction.IsSubprogCall)
			if k < 0 {
				t.Fatalf("%s: %s: no bpf2bpf call", c.Where(), s.Name)
			}
			compareTable(t, c, s, img, owned(k)(img), s.Name)
		case "tailcall":
			want, _ := strconv.Atoi(s.Attrs["sites"])
			if len(img.Sites) != want {
				t.Errorf("%s: %s: %d tail-call sites, want %d", c.Name(), s.Name, len(img.Sites), want)
				continue
			}
			for k, site := range img.Sites {
				what := fmt.Sprintf("%s site %d", s.Name, k)
				if got := site.Kind.String(); got != s.Attrs["kind"] {
					t.Errorf("%s: %s: kind %s, want %s", c.Name(), what, got, s.Attrs["kind"])
				}
				sel := between(img, site.Start, site.Out)
				if !tiles(sel, site.Start, site.Out) {
					t.Errorf("%s: %s: instructions do not tile [%#x, %#x)", c.Name(), what, site.Start, site.Out)
				}
				for _, in := range sel {
					if in.BPF != site.Site.Insn {
						t.Errorf("%s: %s: instruction at %#x owned by BPF %d, want %d", c.Name(), what, in.Off, in.BPF, site.Site.Insn)
						break
					}
				}
				compareTable(t, c, s, img, sel, what)
				// The br the emulator hooks is the golden sequence's last word.
				if site.Jump != site.Out-4 || len(s.Insns) == 0 || !strings.HasPrefix(s.Insns[len(s.Insns)-1].Text, "br x") {
					t.Errorf("%s: %s: Jump %#x, Out %#x: want the golden br as the last instruction", c.Name(), what, site.Jump, site.Out)
				}
			}
		default:
			t.Fatalf("%s: unknown section %q", c.Where(), s.Name)
		}
	}
	return n
}

func TestGoldenTables(t *testing.T) {
	cases, insns := 0, 0
	seen := map[string]string{}
	for _, file := range tableFiles {
		tc := loadTable(t, file)
		cases += len(tc)
		t.Run(strings.TrimSuffix(file, ".txt"), func(t *testing.T) {
			for _, c := range tc {
				if prev, dup := seen[c.Name()]; dup {
					t.Errorf("%s: duplicate case %s (first at %s)", c.Where(), c.Name(), prev)
				}
				seen[c.Name()] = c.Where()
				insns += checkTableCase(t, c)
			}
		})
	}
	t.Logf("%d golden table cases, %d golden instructions", cases, insns)
}

// TestGoldenTablesGenerated checks that the checked-in tables are exactly
// what testdata/gengolden composes from the kernel's fragments (docs/kernel.md): nobody
// edited them by hand (or pasted JIT output into them).
func TestGoldenTablesGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running go run ./testdata/gengolden")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to run testdata/gengolden")
	}
	dir := t.TempDir()
	if out, err := exec.Command(goBin, "run", "./testdata/gengolden", dir).CombinedOutput(); err != nil {
		t.Fatalf("go run ./testdata/gengolden: %v\n%s", err, out)
	}
	made, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range made {
		names = append(names, filepath.Base(m))
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(tableFiles)), names); diff != "" {
		t.Errorf("gengolden writes other tables than tableFiles (-tableFiles +gengolden):\n%s", diff)
	}
	for _, f := range tableFiles {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is not gengolden's output: run go generate in jit/arm64 (diff -gengolden +checked in):\n%s", f,
				cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")))
		}
	}
}

// TestGoldenTablesCoverage checks that the tables hold the cross product
// the issue asks for, so a regenerated table cannot silently lose cases.
func TestGoldenTablesCoverage(t *testing.T) {
	type key struct{ layout, stack, regs, bti, pac string }
	regSets := []string{"none", "r6", "r6,r7", "r6,r7,r8", "r6,r7,r8,r9", "fp"}
	kinds := map[string]string{"upstream-indirect": "indirect", "patched-static": "static", "patched-dynamic": "dynamic"}
	for _, form := range tableForms {
		file := "tailcalls-" + form + ".txt"
		got := map[key]bool{}
		for _, c := range loadTable(t, file) {
			p := c.Params
			s := c.Section("main.tailcall")
			if s == nil || s.Attrs["kind"] != kinds[form] || s.Attrs["sites"] != "1" {
				t.Errorf("%s: %s: want main.tailcall kind=%s sites=1", c.Where(), form, kinds[form])
				continue
			}
			got[key{p["layout"], p["stack"], p["regs"], p["bti"], p["pac"]}] = true
		}
		for _, l := range prog.Presets {
			for _, st := range []string{"0", "24"} {
				for _, r := range regSets {
					for _, bti := range []string{"off", "on"} {
						for _, pac := range []string{"off", "on"} {
							if k := (key{l.Name, st, r, bti, pac}); !got[k] {
								t.Errorf("%s lacks %+v", file, k)
							}
						}
					}
				}
			}
		}
	}
	// Subprograms: every stack x regs x BTI x PAC, every form at least once,
	// and programs without tail calls.
	subKinds := map[string]bool{}
	subKeys := map[key]bool{}
	var noTC, leaf int
	for _, c := range loadTable(t, "prologues.txt") {
		p := c.Params
		switch p["shape"] {
		case "sub-tc-var", "sub-tc-poisoned":
			if s := c.Section("sub.tailcall"); s != nil {
				subKinds[p["variant"]+"-"+s.Attrs["kind"]] = true
			}
			subKeys[key{p["layout"], p["stack"], p["regs"], p["bti"], p["pac"]}] = true
		case "notail-sub":
			noTC++
		case "notail-leaf":
			leaf++
		}
	}
	for _, f := range tableForms {
		if !subKinds[f] {
			t.Errorf("prologues.txt: no subprogram tail call of form %s", f)
		}
	}
	if len(subKeys) != 2*len(regSets)*4 {
		t.Errorf("prologues.txt: %d stack x regs x BTI x PAC combinations with a subprogram tail call, want %d", len(subKeys), 2*len(regSets)*4)
	}
	if noTC == 0 || leaf == 0 {
		t.Errorf("prologues.txt: %d no-tail-call cases with a subprogram, %d leaves; want some of each", noTC, leaf)
	}
}

// TestGoldenTablesReferenceWords: every word docs/kernel.md §6/§7 quotes is in
// the tables (gengolden checks its encoders against them too).
func TestGoldenTablesReferenceWords(t *testing.T) {
	ref := []string{
		// §5 prologue/epilogue
		"df 24 03 d5", "c9 03 00 91", "1f 20 03 d5", "3f 23 03 d5", "fd 7b bf a9", "fd 03 00 91",
		"ff 6b bf a9", "fa 03 00 91", "9f 24 03 d5", "fa 6b bf a9", "ff 6b c1 a8", "fd 7b c1 a8", "c0 03 5f d6",
		// §5 tail call
		"8a 08 80 52", "2a 68 6a b8", "42 00 00 11", "5f 00 0a 6b", "2a 04 80 52", "4c 03 40 f9", "9f 01 0a eb",
		"8c 05 00 91", "0a 26 80 52", "2a 00 0a 8b", "4b f0 7d d3", "4b 69 6b f8", "4c 03 00 f9", "0a 09 80 52",
		"6a 69 6a f8", "4a 61 00 91", "40 01 1f d6",
		// §6
		"6b 41 05 91", "2b 68 6b f8", "60 01 1f d6",
	}
	have := map[uint32]bool{}
	for _, f := range tableFiles {
		for _, c := range loadTable(t, f) {
			for _, s := range c.Sections {
				for _, in := range s.Insns {
					have[in.Code] = true
				}
			}
		}
	}
	for _, h := range ref {
		var b [4]byte
		for k, x := range strings.Fields(h) {
			v, _ := strconv.ParseUint(x, 16, 8)
			b[k] = byte(v)
		}
		if w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24; !have[w] {
			t.Errorf("kernel word %s (%08x) is in no golden table", h, w)
		}
	}
}

var tableMCWarning = regexp.MustCompile(`^<stdin>:(\d+):\d+: (warning|error): (.*)$`)

// TestGoldenTablesLLVMMC disassembles every distinct word of the tables
// with llvm-mc (-triple=aarch64 --disassemble, with BTI and PAuth so the
// hints print by name) and compares llvm-mc's text with the table's. Every
// word's text must also be the same wherever the tables use it. Branch
// texts are pc-relative (b.hs #64), so a word's text does not depend on
// where it is.
func TestGoldenTablesLLVMMC(t *testing.T) {
	mc := llvmMC(t)
	type use struct {
		text, where string
	}
	first := map[uint32]use{}
	var words []uint32
	for _, f := range tableFiles {
		for _, c := range loadTable(t, f) {
			for _, s := range c.Sections {
				for _, in := range s.Insns {
					where := fmt.Sprintf("%s:%d", c.File, in.Line)
					u, ok := first[in.Code]
					if !ok {
						first[in.Code] = use{in.Text, where}
						words = append(words, in.Code)
					} else if u.text != in.Text {
						t.Errorf("%s: %08x is %q, but %q at %s", where, in.Code, in.Text, u.text, u.where)
					}
				}
			}
		}
	}
	var in strings.Builder
	for _, w := range words {
		fmt.Fprintf(&in, "0x%02x 0x%02x 0x%02x 0x%02x\n", byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	cmd := exec.Command(mc, "--disassemble", "-triple=aarch64", "-mattr=+bti,+pauth")
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	bad := map[int]bool{}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if m := tableMCWarning.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			bad[n-1] = true
			if n-1 < len(words) {
				w := words[n-1]
				t.Errorf("%s: %08x (%s): llvm-mc: %s: %s", first[w].where, w, first[w].text, m[2], m[3])
			}
		}
	}
	if runErr != nil && len(bad) == 0 {
		t.Fatalf("llvm-mc: %v\n%s", runErr, stderr.String())
	}
	var out []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l = normText(l); l != "" && !strings.HasPrefix(l, ".") {
			out = append(out, l)
		}
	}
	if len(out) != len(words)-len(bad) {
		t.Fatalf("llvm-mc printed %d instructions for %d words (%d rejected)", len(out), len(words), len(bad))
	}
	j := 0
	for k, w := range words {
		if bad[k] {
			continue
		}
		if got := out[j]; got != first[w].text {
			t.Errorf("%s: %08x: table says %q, llvm-mc disassembles %q", first[w].where, w, first[w].text, got)
		}
		j++
	}
	t.Logf("%d distinct words disassembled by llvm-mc", len(words))
}
