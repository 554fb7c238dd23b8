package x86_test

// Golden byte tables: testdata/{tailcalls,prologues,extras}.txt hold, for
// every case, the bytes the kernel's x86 JIT emits for the prologue, each
// tail-call sequence, the tcc_ptr load before a bpf2bpf call and the
// epilogue. They are composed from docs/kernel.md §4/§5/§8 fragments by
// testdata/gengolden, which imports nothing from tailsim; this file builds
// the program each case names, JITs it and compares, instruction by
// instruction.

//go:generate go run ./testdata/gengolden testdata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/arch/x86/x86asm"

	"tailsim/jit"
	"tailsim/jit/internal/goldentab"
	"tailsim/jit/x86"
	"tailsim/prog"
	"tailsim/prog/asm"
)

var goldenFiles = []string{"tailcalls.txt", "prologues.txt", "extras.txt", "configs.txt"}

type (
	goldenInsn    = goldentab.Insn[[]byte]
	goldenSection = goldentab.Section[[]byte]
	goldenCase    = goldentab.Case[[]byte]
)

// sectionBytes is a section's code.
func sectionBytes(s *goldenSection) []byte {
	var b []byte
	for _, in := range s.Insns {
		b = append(b, in.Code...)
	}
	return b
}

func normSpace(s string) string { return goldentab.Norm(s) }

// loadGolden parses one table: instructions are space-separated bytes.
func loadGolden(t testing.TB, file string) []*goldenCase {
	t.Helper()
	return goldentab.Load(t, filepath.Join("testdata", file), func(hex string) ([]byte, error) {
		var b []byte
		for _, h := range strings.Fields(hex) {
			v, err := strconv.ParseUint(h, 16, 8)
			if err != nil || len(h) != 2 {
				return nil, fmt.Errorf("bad byte %q", h)
			}
			b = append(b, byte(v))
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("instruction without bytes")
		}
		return b, nil
	})
}

// ---- programs ----

// shapes are the programs the cases name. {regs} becomes one "rN = r1" per
// callee-saved register of the case, so detect_reg_usage() sees exactly
// those. Keys are read from ctx (non-constant: indirect/static/dynamic) or
// set with "w3 = 1" (constant: direct). "other" is a second prog array
// (max_entries 7) that poisons the map pointer when it reaches the site.
// After a tail call R1–R5 are dead, so the two-site shapes restore ctx
// from r6 and need regs to include r6.
type shape struct{ main, sub string }

var shapes = map[string]shape{
	"tc-var": {main: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"tc-const": {main: `{regs}
	r2 = map[progs]
	w3 = 1
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
	"tc2-const": {main: `{regs}
	r2 = map[progs]
	w3 = 1
	call bpf_tail_call
	r1 = r6
	r2 = map[progs]
	w3 = 2
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
	"tc-var-then-sub": {main: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	call sub
	exit`, sub: `	r0 = 0
	exit`},
	"sub-tc-var": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`},
	"sub-tc-const": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r2 = map[progs]
	w3 = 1
	call bpf_tail_call
	r0 = 0
	exit`},
	"notail-sub": {main: `{regs}
	call sub
	exit`, sub: `{regs}
	r0 = 0
	exit`},
	"percpu": {main: `	r0 = 0
	exit`},
	"notail-leaf": {main: `{regs}
	r0 = 0
	exit`},
}

// shiftShape is configs.txt's "shift" shape: one shift by a register
// (op=lsh|rsh|arsh, alu=64|32, dst= and src= register numbers), first.
func shiftShape(pr map[string]string) (shape, bool) {
	op, ok := map[string]string{"lsh": "<<=", "rsh": ">>=", "arsh": "s>>="}[pr["op"]]
	w := map[string]string{"64": "r", "32": "w"}[pr["alu"]]
	if !ok || w == "" || pr["dst"] == "" || pr["src"] == "" {
		return shape{}, false
	}
	return shape{main: fmt.Sprintf("\t%s%s %s %s%s\n\tr0 = 0\n\texit", w, pr["dst"], op, w, pr["src"])}, true
}

func regsSource(spec string) string {
	if spec == "none" {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.Split(spec, ",") {
		fmt.Fprintf(&b, "\t%s = r1\n", r)
	}
	return b.String()
}

func parseLayout(s string) (prog.Layout, error) {
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

// testResolver places functions, helpers and maps at fixed addresses.
type testResolver struct{ funcs []uint64 }

const (
	imageBase  = 0x4000_0000
	helperBase = 0x5000_0000
)

func (testResolver) Helper(id int32) (uint64, bool) { return helperBase + uint64(id)*64, true }
func (r testResolver) Func(fn int) uint64           { return r.funcs[fn] }

// thunks are where the golden resolver keeps the thunks a jump may go
// through; the tables hold such a jump's rel32 as 0 (see wantHex).
var thunks = map[string]uint64{x86.ThunkRCX: 0x5100_0000, x86.ReturnThunk: 0x5100_0040}

func (testResolver) Thunk(name string) (uint64, bool) {
	a, ok := thunks[name]
	return a, ok
}

func (testResolver) Map(name string) uint64 {
	if name == "other" {
		return 0xffff_8880_0020_0000
	}
	return 0xffff_8880_0010_0000
}

// built is one case's program JITed.
type built struct {
	p    *prog.Program
	fx   *prog.Fixup
	imgs []*jit.Image
}

func buildCase(c *goldenCase) (*built, error) {
	pr := c.Params
	sh, ok := shapes[pr["shape"]]
	if pr["shape"] == "shift" {
		sh, ok = shiftShape(pr)
	}
	if !ok {
		return nil, fmt.Errorf("unknown shape %q", pr["shape"])
	}
	stack, err := strconv.Atoi(pr["stack"])
	if err != nil {
		return nil, err
	}
	maxEntries, err := strconv.ParseUint(pr["max"], 0, 32)
	if err != nil {
		return nil, err
	}
	lay, err := parseLayout(pr["layout"])
	if err != nil {
		return nil, err
	}
	v, err := prog.ParseKernel(pr["variant"])
	if err != nil {
		return nil, err
	}
	var fo prog.FixupOptions
	switch pr["fixup"] {
	case "default":
	case "noverifier":
		fo.NoVerifier = true
	case "nodirect":
		fo.NoDirect = true
	default:
		return nil, fmt.Errorf("unknown fixup %q", pr["fixup"])
	}
	cfg, err := caseConfig(c)
	if err != nil {
		return nil, err
	}
	regs := regsSource(pr["regs"])
	fn := func(name, src string) (*prog.Function, error) {
		insns, err := asm.Parse(strings.ReplaceAll(src, "{regs}\n", regs), 1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &prog.Function{Name: name, Insns: insns, StackDepth: stack}, nil
	}
	main, err := fn("main", sh.main)
	if err != nil {
		return nil, err
	}
	if pr["shape"] == "percpu" {
		// Only the verifier writes it: r0 = &(void __percpu *)(r0).
		main.Insns = append([]prog.Instruction{{OpCode: prog.ALU64(prog.OpMov, prog.SourceX), Dst: prog.R0, Src: prog.R0, Off: prog.AddrPercpu}}, main.Insns...)
	}
	pool := map[string]*prog.Function{}
	if sh.sub != "" {
		if pool["sub"], err = fn("sub", sh.sub); err != nil {
			return nil, err
		}
	}
	p, err := prog.NewProgram("main", "xdp", main, pool)
	if err != nil {
		return nil, err
	}
	progs, err := prog.NewProgArray("progs", uint32(maxEntries))
	if err != nil {
		return nil, err
	}
	other, err := prog.NewProgArray("other", 7)
	if err != nil {
		return nil, err
	}
	fx, err := prog.FixupProgram(p, map[string]*prog.ProgArray{"progs": progs, "other": other}, fo)
	if err != nil {
		return nil, err
	}
	res := testResolver{}
	for k := range p.Funcs {
		res.funcs = append(res.funcs, imageBase+uint64(k)*0x10000) // as compareSection's callers expect
	}
	b := &built{p: p, fx: fx}
	for k := range p.Funcs {
		img, err := x86.Compile(p, k, fx, res.funcs[k], res, x86.Options{Kernel: v, Layout: lay, Config: cfg})
		if err != nil {
			return nil, err
		}
		b.imgs = append(b.imgs, img)
	}
	return b, nil
}

// caseConfig is the case's ibt= and, in configs.txt, config= (the other
// options, by the names prog.ParseConfig reads).
func caseConfig(c *goldenCase) (prog.Config, error) {
	var cfg prog.Config
	switch c.Params["ibt"] {
	case "on":
		cfg = prog.IBT
	case "off":
	default:
		return 0, fmt.Errorf("ibt=%q", c.Params["ibt"])
	}
	if s, ok := c.Params["config"]; ok {
		more, err := prog.ParseConfig(s)
		if err != nil {
			return 0, err
		}
		cfg |= more
	}
	return cfg, nil
}

// thunkJump is the thunk a golden "jmp <thunk>" goes to, "" for any other
// instruction. Its rel32 depends on where the image is, so the tables hold
// 0 there; wantHex puts in the displacement from the instruction's address
// to the golden resolver's thunk, and the llvm-mc oracle reads it as
// "jmp 0".
func thunkJump(in goldenInsn) string {
	name, ok := strings.CutPrefix(in.Text, "jmp ")
	if _, known := thunks[name]; ok && known {
		return name
	}
	return ""
}

// ---- comparison ----

func hexOf(b []byte) string {
	s := make([]string, len(b))
	for k, x := range b {
		s[k] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(s, " ")
}

// insnHex lists the bytes of the selected instructions, one hex string each.
func insnHex(img *jit.Image, sel []jit.Insn) []string {
	out := make([]string, len(sel))
	for k, in := range sel {
		out[k] = hexOf(img.Code[in.Off : in.Off+in.Len])
	}
	return out
}

// wantHex lists the golden bytes, one hex string per instruction; a jump
// to a thunk gets its rel32 from where the image holds it (sel[k], in an
// image at addr).
func wantHex(s *goldenSection, addr uint64, sel []jit.Insn) []string {
	out := make([]string, len(s.Insns))
	for k, in := range s.Insns {
		code := in.Code
		if name := thunkJump(in); name != "" && k < len(sel) {
			ip := addr + uint64(sel[k].Off) + x86.X86PatchSize
			code = append([]byte{in.Code[0]}, binary.LittleEndian.AppendUint32(nil, uint32(thunks[name]-ip))...)
		}
		out[k] = hexOf(code)
	}
	return out
}

func listing(s *goldenSection) string {
	var b strings.Builder
	for _, in := range s.Insns {
		fmt.Fprintf(&b, "\t%-24s %s\n", hexOf(in.Code), in.Text)
	}
	return b.String()
}

func actualListing(img *jit.Image, sel []jit.Insn) string {
	var b strings.Builder
	for _, in := range sel {
		fmt.Fprintf(&b, "\t%#04x %-24s %s\n", in.Off, hexOf(img.Code[in.Off:in.Off+in.Len]), in.Note)
	}
	return b.String()
}

// contiguous reports whether sel tiles [from, to) without gaps.
func contiguous(sel []jit.Insn, from, to int) bool {
	at := from
	for _, in := range sel {
		if in.Off != at {
			return false
		}
		at += in.Len
	}
	return at == to
}

func ownedBy(img *jit.Image, owner int) []jit.Insn {
	var sel []jit.Insn
	for _, in := range img.Insns {
		if in.BPF == owner {
			sel = append(sel, in)
		}
	}
	return sel
}

func inRange(img *jit.Image, from, to int) []jit.Insn {
	var sel []jit.Insn
	for _, in := range img.Insns {
		if in.Off >= from && in.Off < to {
			sel = append(sel, in)
		}
	}
	return sel
}

// offsetOf returns the offset in s of its first instruction whose text
// starts with prefix, or -1; last picks the last one.
func offsetOf(s *goldenSection, prefix string, last bool) int {
	at, found := 0, -1
	for _, in := range s.Insns {
		if strings.HasPrefix(in.Text, prefix) {
			found = at
			if !last {
				return found
			}
		}
		at += len(in.Code)
	}
	return found
}

func compareSection(t *testing.T, c *goldenCase, s *goldenSection, img *jit.Image, addr uint64, sel []jit.Insn, what string) {
	t.Helper()
	if diff := cmp.Diff(wantHex(s, addr, sel), insnHex(img, sel)); diff != "" {
		t.Errorf("%s (%s, section at line %d): %s differs from the kernel's bytes (-want +got, one line per instruction):\n%s\nwant:\n%sgot:\n%s",
			c.Name(), c.File, s.Line, what, diff, listing(s), actualListing(img, sel))
	}
}

func checkCase(t *testing.T, c *goldenCase) {
	b, err := buildCase(c)
	if err != nil {
		t.Fatalf("%s (%s): %v", c.Name(), c.Where(), err)
	}
	cfg, _ := caseConfig(c)
	ibt := cfg&prog.IBT != 0
	stack, _ := strconv.Atoi(c.Params["stack"])
	for k, img := range b.imgs {
		checkImage(t, c.Name()+"/"+b.p.Funcs[k].Name, img, cfg)
	}
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
		switch part {
		case "prologue":
			sel := ownedBy(img, jit.Prologue)
			if len(sel) == 0 || !contiguous(sel, 0, sel[len(sel)-1].Off+sel[len(sel)-1].Len) || !cmp.Equal(sel, img.Insns[:len(sel)]) {
				t.Errorf("%s: %s: prologue instructions do not come first, contiguous from offset 0", c.Name(), s.Name)
			}
			compareSection(t, c, s, img, imageBase+uint64(fi)*0x10000, sel, s.Name)
			// Tail calls land right after "mov rbp, rsp" (on the endbr64 with IBT).
			land := offsetOf(s, "mov rbp, rsp", false) + 3
			wantEntry := 12
			if ibt {
				wantEntry = 16
			}
			if land != wantEntry || img.TailEntry != wantEntry {
				t.Errorf("%s: %s: TailEntry %d, golden landing %d, want X86_TAIL_CALL_OFFSET %d", c.Name(), s.Name, img.TailEntry, land, wantEntry)
			}
			if want := (stack + 7) / 8 * 8; img.StackSize != want {
				t.Errorf("%s: %s: StackSize %d, want round_up(%d, 8) = %d", c.Name(), s.Name, img.StackSize, stack, want)
			}
		case "epilogue":
			sel := ownedBy(img, jit.Epilogue)
			if len(sel) > 0 && !contiguous(sel, sel[0].Off, sel[0].Off+len(sectionBytes(s))) {
				t.Errorf("%s: %s: epilogue instructions are not contiguous", c.Name(), s.Name)
			}
			compareSection(t, c, s, img, imageBase+uint64(fi)*0x10000, sel, s.Name)
		case "shift", "percpu":
			compareSection(t, c, s, img, imageBase+uint64(fi)*0x10000, ownedBy(img, 0), s.Name)
		case "precall":
			k := -1
			for j, in := range img.Func.Insns {
				if in.IsSubprogCall() {
					k = j
					break
				}
			}
			if k < 0 {
				t.Fatalf("%s: %s: no bpf2bpf call", c.Where(), s.Name)
			}
			sel := ownedBy(img, k)
			if len(sel) == 0 {
				t.Fatalf("%s: %s: the call emitted nothing", c.Name(), s.Name)
			}
			call := sel[len(sel)-1]
			if call.Len != 5 || img.Code[call.Off] != 0xe8 {
				t.Errorf("%s: %s: the call's last instruction is % x, want e8 rel32", c.Name(), s.Name, img.Code[call.Off:call.Off+call.Len])
			}
			compareSection(t, c, s, img, imageBase+uint64(fi)*0x10000, sel[:len(sel)-1], s.Name+" (before e8 rel32)")
		case "tailcall":
			n, _ := strconv.Atoi(s.Attrs["sites"])
			if len(img.Sites) != n {
				t.Errorf("%s: %s: %d tail-call sites, want %d", c.Name(), s.Name, len(img.Sites), n)
				continue
			}
			want := len(sectionBytes(s))
			for k, site := range img.Sites {
				what := fmt.Sprintf("%s site %d", s.Name, k)
				if got := site.Kind.String(); got != s.Attrs["kind"] {
					t.Errorf("%s: %s: kind %s, want %s", c.Name(), what, got, s.Attrs["kind"])
				}
				sel := inRange(img, site.Start, site.Out)
				if !contiguous(sel, site.Start, site.Out) {
					t.Errorf("%s: %s: instructions do not tile [%#x, %#x)", c.Name(), what, site.Start, site.Out)
				}
				if site.Out-site.Start != want {
					t.Errorf("%s: %s: %d bytes, want %d", c.Name(), what, site.Out-site.Start, want)
				}
				for _, in := range sel {
					if in.BPF != site.Site.Insn {
						t.Errorf("%s: %s: instruction at %#x owned by BPF %d, want %d", c.Name(), what, in.Off, in.BPF, site.Site.Insn)
						break
					}
				}
				compareSection(t, c, s, img, imageBase+uint64(fi)*0x10000, sel, what)
				// The addresses the emulator hooks and pokes.
				if site.Kind == prog.Direct {
					if got, w := site.Bypass-site.Start, offsetOf(s, "jmp ", false); got != w {
						t.Errorf("%s: %s: Bypass at +%d, want +%d (the e9 rel32)", c.Name(), what, got, w)
					}
					if got, w := site.Target-site.Start, offsetOf(s, "nop dword ptr [rax + rax]", true); got != w || w != want-5 {
						t.Errorf("%s: %s: Target at +%d, want +%d (the final nop5)", c.Name(), what, got, w)
					}
				} else if got, w := site.Jump-site.Start, jumpOffset(s); got != w {
					t.Errorf("%s: %s: Jump at +%d, want +%d (jmp rcx, or the jmp to its thunk)", c.Name(), what, got, w)
				}
			}
		default:
			t.Fatalf("%s: unknown section %q", c.Where(), s.Name)
		}
	}
}

// jumpOffset is where a golden tail call's jump is: the last "jmp rcx" or
// jump to a thunk.
func jumpOffset(s *goldenSection) int {
	at, found := 0, -1
	for _, in := range s.Insns {
		if in.Text == "jmp rcx" || thunkJump(in) != "" {
			found = at
		}
		at += len(in.Code)
	}
	return found
}

func TestGolden(t *testing.T) {
	total := 0
	for _, file := range goldenFiles {
		cases := loadGolden(t, file)
		total += len(cases)
		seen := map[string]bool{}
		t.Run(strings.TrimSuffix(file, ".txt"), func(t *testing.T) {
			for _, c := range cases {
				if seen[c.Name()] {
					t.Errorf("%s: duplicate case %s", c.Where(), c.Name())
				}
				seen[c.Name()] = true
				checkCase(t, c)
			}
		})
	}
	t.Logf("%d golden cases", total)
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
	for _, f := range goldenFiles {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is not gengolden's output: run go generate in jit/x86 (diff: %s)", f,
				cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")))
		}
	}
}

// TestGoldenPresets: a configs.txt case that stands for a preset holds
// that preset's x86 options, as gengolden states them independently.
func TestGoldenPresets(t *testing.T) {
	const x86Options = prog.Retpoline | prog.SLS | prog.Thunk | prog.Lfence | prog.Rethunk | prog.BMI2
	seen := map[string]bool{}
	for _, c := range loadGolden(t, "configs.txt") {
		name, ok := c.Params["preset"]
		if !ok {
			continue
		}
		seen[name] = true
		preset, err := prog.ParseConfig(name)
		if err != nil {
			t.Fatalf("%s: %v", c.Where(), err)
		}
		cfg, err := caseConfig(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Where(), err)
		}
		if got, want := cfg&x86Options, preset&x86Options; got != want {
			t.Errorf("%s: preset %s is %v on x86; the golden case says %v", c.Where(), name, want.Options(), got.Options())
		}
	}
	for _, p := range prog.Configs[1:] {
		if !seen[p.Name] {
			t.Errorf("configs.txt has no case for preset %s", p.Name)
		}
	}
}

// TestGoldenCoverage checks that the tables hold the cross product the
// issue asks for, so a regenerated table cannot silently lose cases.
func TestGoldenCoverage(t *testing.T) {
	cases := loadGolden(t, "tailcalls.txt")
	type key struct{ form, layout, stack, regs, ibt string }
	got := map[key]bool{}
	for _, c := range cases {
		p := c.Params
		s := c.Section("main.tailcall")
		if s == nil {
			t.Fatalf("%s: no main.tailcall", c.Where())
		}
		got[key{p["variant"] + "-" + s.Attrs["kind"], p["layout"], p["stack"], p["regs"], p["ibt"]}] = true
	}
	for _, form := range []string{"upstream-indirect", "upstream-direct", "patched-static", "patched-dynamic", "patched-direct"} {
		for _, l := range prog.Presets {
			for _, st := range []string{"0", "24"} {
				for _, r := range []string{"none", "r6,r8", "r6,r7,r8,r9"} {
					for _, ibt := range []string{"off", "on"} {
						if k := (key{form, l.Name, st, r, ibt}); !got[k] {
							t.Errorf("tailcalls.txt lacks %+v", k)
						}
					}
				}
			}
		}
	}
	pro := loadGolden(t, "prologues.txt")
	var subTC, noTC, leaf int
	for _, c := range pro {
		switch c.Params["shape"] {
		case "sub-tc-var", "sub-tc-const":
			subTC++
		case "notail-sub":
			noTC++
		case "notail-leaf":
			leaf++
		}
	}
	if subTC == 0 || noTC == 0 || leaf == 0 {
		t.Errorf("prologues.txt: %d subprogram tail-call cases, %d no-tail-call with subprogram, %d leaf; want some of each", subTC, noTC, leaf)
	}
}

// endbr64 is the one instruction the JIT emits that x86asm (x/arch v0.32)
// does not know: it decodes f3 as a lone REP prefix (Op 0, length 1) and
// 0f 1e fa as unrecognized. Other Go projects skip it by hand for the same
// reason (grafana/beyla#1416). decodeX86 accepts exactly those four bytes
// as a 4-byte instruction when x86asm fails on them; llvmmc_test.go decodes
// them independently ("endbr64").
var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

// decodeX86 decodes one instruction at the start of b with x86asm and
// returns its length and Intel text; an unknown opcode is an error.
func decodeX86(b []byte) (int, string, error) {
	inst, err := x86asm.Decode(b, 64)
	if err == nil && inst.Op != 0 {
		return inst.Len, x86asm.IntelSyntax(inst, 0, nil), nil
	}
	if bytes.HasPrefix(b, endbr64) {
		return len(endbr64), "endbr64 (not in x86asm)", nil
	}
	if err == nil {
		err = fmt.Errorf("no opcode (decoded %q, %d bytes)", x86asm.IntelSyntax(inst, 0, nil), inst.Len)
	}
	return 0, "", err
}

// TestGoldenDecodesX86asm: every golden sequence decodes with x86asm,
// instruction by instruction, to exactly the golden split, with no
// unknown opcode.
func TestGoldenDecodesX86asm(t *testing.T) {
	for _, file := range goldenFiles {
		for _, c := range loadGolden(t, file) {
			for _, s := range c.Sections {
				code := sectionBytes(s)
				at := 0
				for _, in := range s.Insns {
					n, text, err := decodeX86(code[at:])
					if err != nil {
						t.Errorf("%s:%d: % x (%s): x86asm: %v", c.File, in.Line, in.Code, in.Text, err)
						break
					}
					if n != len(in.Code) {
						t.Errorf("%s:%d: % x (%s): x86asm decodes %d bytes (%s), want %d", c.File, in.Line, in.Code, in.Text, n, text, len(in.Code))
						break
					}
					at += n
				}
			}
		}
	}
}

// TestX86asmEndbr64Gap pins the x86asm limitation decodeX86 works around,
// so the workaround is dropped once x86asm learns endbr64.
func TestX86asmEndbr64Gap(t *testing.T) {
	inst, err := x86asm.Decode(endbr64, 64)
	if err == nil && inst.Op != 0 && inst.Len == 4 {
		t.Fatalf("x86asm now decodes endbr64 as %s: remove the workaround in decodeX86", x86asm.IntelSyntax(inst, 0, nil))
	}
	// Nothing else may hide behind the exception: f3 0f 1e fb (endbr32)
	// is not something the JIT emits and must stay an error.
	if _, _, err := decodeX86([]byte{0xf3, 0x0f, 0x1e, 0xfb}); err == nil {
		t.Errorf("decodeX86 accepts endbr32")
	}
}

// TestLayoutDisp8 checks that layouts whose max_entries or bpf_func offset
// does not fit x86's disp8 fields are rejected with an error naming the
// field, and that the largest offsets that do fit are accepted (their
// bytes are in extras.txt, edge-layout/*).
func TestLayoutDisp8(t *testing.T) {
	insns, err := asm.Parse(`	r2 = map[progs]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 0
	exit`, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prog.NewProgram("p", "xdp", &prog.Function{Name: "p", Insns: insns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := prog.NewProgArray("progs", 4)
	if err != nil {
		t.Fatal(err)
	}
	fx, err := prog.FixupProgram(p, map[string]*prog.ProgArray{"progs": arr}, prog.FixupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := testResolver{funcs: []uint64{imageBase}}
	tests := []struct {
		l       prog.Layout
		wantErr []string // substrings; nil: accepted
	}{
		{prog.Layout{Name: "bpf_func-0x80", MaxEntries: 0x44, Ptrs: 0x130, BpfFunc: 0x80}, []string{"bpf_func-0x80", "disp8", "bpf_func) = 0x80"}},
		{prog.Layout{Name: "max_entries-0x80", MaxEntries: 0x80, Ptrs: 0x130, BpfFunc: 0x48}, []string{"max_entries-0x80", "disp8", "max_entries) = 0x80"}},
		{prog.Layout{Name: "both-big", MaxEntries: 0x100, Ptrs: 0x200, BpfFunc: 0x1f8}, []string{"disp8", "0x100", "0x1f8"}},
		{prog.Layout{Name: "max_entries-0xffc", MaxEntries: 0xffc, Ptrs: 0x1000, BpfFunc: 0x48}, []string{"disp8", "0xffc"}},
		{prog.Layout{Name: "edge", MaxEntries: 0x7c, Ptrs: 0x180, BpfFunc: 0x78}, nil},
		{prog.Layout{Name: "big-ptrs", MaxEntries: 0x44, Ptrs: 0xff8, BpfFunc: 0x48}, nil}, // ptrs is a disp32
	}
	for _, tc := range tests {
		for _, v := range prog.Kernels {
			for _, cfg := range []prog.Config{0, prog.IBT} {
				_, err := x86.Compile(p, 0, fx, imageBase, res, x86.Options{Kernel: v, Layout: tc.l, Config: cfg})
				switch {
				case tc.wantErr == nil && err != nil:
					t.Errorf("%s/%s: %v, want it accepted", tc.l.Name, v, err)
				case tc.wantErr != nil && err == nil:
					t.Errorf("%s/%s: accepted, want an error: offsets >= 0x80 do not fit the disp8 of cmp [rsi+off] / mov rcx, [rcx+off]", tc.l.Name, v)
				case err != nil:
					for _, w := range tc.wantErr {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("%s/%s: error %q lacks %q", tc.l.Name, v, err, w)
						}
					}
				}
			}
		}
	}
}

// TestKernelTailCallReachableIsSticky: the kernel's tail_call_reachable
// mark is not "calls, directly or not, a function with a tail call".
// check_max_stack_depth_subprog() (kernel/bpf/verifier.c) walks the call
// graph from main with one local bool tail_call_reachable that is set when
// it enters a callee with has_tail_call and never cleared; each time it
// finishes scanning a function it marks the functions on the current call
// chain (v6.6–v6.12: subprog[ret_prog[j]] for j < frame, the callers; newer
// bpf-next: dinfo's caller chain from idx itself up). So after main has
// called b (which tail-calls), c — called later by main, and itself
// calling d — is on the chain when d's scan ends, and is marked in every
// version; the x86 JIT then gives c the subprogram tail-call prologue
// (push rax; push rax) and loads tcc_ptr before c's call to d
// (emit_prologue, BPF_JMP | BPF_CALL: LOAD_TAIL_CALL_CNT_PTR). An exact
// reachability computation (tailsim before 7decf19) emits neither.
// (Whether d, a leaf, is marked depends on the kernel version, so it is
// not checked.)
func TestKernelTailCallReachableIsSticky(t *testing.T) {
	parse := func(name, src string) *prog.Function {
		insns, err := asm.Parse(src, 1)
		if err != nil {
			t.Fatal(err)
		}
		return &prog.Function{Name: name, Insns: insns}
	}
	main := parse("main", "\tcall b\n\tcall c\n\texit")
	pool := map[string]*prog.Function{
		"b": parse("b", "\tr2 = map[progs]\n\tr3 = *(u32 *)(r1 + 0)\n\tcall bpf_tail_call\n\tr0 = 0\n\texit"),
		"c": parse("c", "\tcall d\n\texit"),
		"d": parse("d", "\tr0 = 0\n\texit"),
	}
	p, err := prog.NewProgram("main", "xdp", main, pool)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := prog.NewProgArray("progs", 4)
	if err != nil {
		t.Fatal(err)
	}
	fx, err := prog.FixupProgram(p, map[string]*prog.ProgArray{"progs": arr}, prog.FixupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := testResolver{}
	for k := range p.Funcs {
		res.funcs = append(res.funcs, imageBase+uint64(k)*0x10000) // as compareSection's callers expect
	}
	ci := p.FuncIndex("c")
	img, err := x86.Compile(p, ci, fx, res.funcs[ci], res, x86.Options{Kernel: prog.Linux618, Layout: prog.DefaultLayout})
	if err != nil {
		t.Fatal(err)
	}
	// docs/kernel.md §4: a tail-call-reachable subprogram's prologue, stack 0,
	// no callee-saved registers.
	want := &goldenSection{Name: "c.prologue", Insns: []goldenInsn{
		{Code: []byte{0x0f, 0x1f, 0x44, 0x00, 0x00}, Text: "nop5"},
		{Code: []byte{0x0f, 0x1f, 0x00}, Text: "nop3 (subprogram)"},
		{Code: []byte{0x55}, Text: "push rbp"},
		{Code: []byte{0x48, 0x89, 0xe5}, Text: "mov rbp, rsp"},
		{Code: []byte{0x50}, Text: "push rax"},
		{Code: []byte{0x50}, Text: "push rax"},
	}}
	c := &goldenCase{File: "kernel/bpf/verifier.c check_max_stack_depth_subprog", Params: map[string]string{
		"name": "tail_call_reachable is sticky in the kernel: main calls b (tail call), then c, which calls d"}}
	compareSection(t, c, want, img, res.funcs[ci], ownedBy(img, jit.Prologue), "c's prologue")
	// The call to d: mov rax, [rbp - 16] (tcc_ptr), then e8 rel32.
	sel := ownedBy(img, 0)
	wantCall := &goldenSection{Name: "c.precall", Insns: []goldenInsn{
		{Code: []byte{0x48, 0x8b, 0x85, 0xf0, 0xff, 0xff, 0xff}, Text: "mov rax, qword ptr [rbp - 16]"},
	}}
	if len(sel) > 0 {
		sel = sel[:len(sel)-1]
	}
	compareSection(t, c, wantCall, img, res.funcs[ci], sel, "c's call to d before e8 rel32")
}
