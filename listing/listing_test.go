package listing_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"tailsim/emu"
	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

const tailCall2 = "scenarios/library/test_bpf/01_tail_call_2.txtar"

// list builds the listing of a scenario file under its own layout.
func list(t *testing.T, file, arch string, v prog.Kernel, o listing.Options) *listing.Listing {
	t.Helper()
	sc := load(t, file)
	return build(t, sc, sc.Layout, arch, v, o)
}

func fn(t *testing.T, l *listing.Listing, name string) *listing.Func {
	t.Helper()
	for _, f := range l.Funcs {
		if f.Name() == name {
			return f
		}
	}
	t.Fatalf("no function %s", name)
	return nil
}

// insnGroup is the group of the BPF instruction at slot.
func insnGroup(t *testing.T, f *listing.Func, slot int) listing.Group {
	t.Helper()
	for _, g := range f.Groups {
		if g.Kind == listing.InsnGroup && g.Loc.Slot == slot {
			return g
		}
	}
	t.Fatalf("%s: no group for slot %d", f.Name(), slot)
	return listing.Group{}
}

func rows(f *listing.Func) []listing.Row {
	var out []listing.Row
	for _, g := range f.Groups {
		out = append(out, g.Rows...)
	}
	return out
}

// row finds the first row whose text starts with prefix.
func row(t *testing.T, f *listing.Func, prefix string) listing.Row {
	t.Helper()
	for _, r := range rows(f) {
		if strings.HasPrefix(r.Text, prefix) {
			return r
		}
	}
	t.Fatalf("%s: no row %q", f.Name(), prefix)
	return listing.Row{}
}

func TestUpstreamIndirect(t *testing.T) {
	l := list(t, tailCall2, "x86_64", prog.Linux618, listing.Options{})
	if l.Layout.Name != "v6.18" || l.Syntax != "intel" {
		t.Errorf("layout %s, syntax %q", l.Layout.Name, l.Syntax)
	}
	if names := []string{l.Funcs[0].Name(), l.Funcs[1].Name()}; len(l.Funcs) != 2 || names[0] != "leaf" || names[1] != "tail_call_2" {
		t.Fatalf("functions %v, want leaf then tail_call_2 (the scenario's order)", names)
	}
	f := fn(t, l, "tail_call_2")
	if f.TailEntry != 0xc || f.Subprogram() {
		t.Errorf("tail entry %#x, subprogram %v", f.TailEntry, f.Subprogram())
	}

	// The groups follow the program: the prologue, each BPF instruction
	// by slot (the map load takes two), the epilogue.
	var order []string
	for _, g := range f.Groups {
		if g.Kind == listing.InsnGroup {
			order = append(order, fmt.Sprintf("%d: %s", g.Loc.Slot, g.Asm))
		} else {
			order = append(order, g.Kind.String())
		}
	}
	want := []string{"prologue", "0: r1 += 2", "1: r2 = map[progs]", "3: w3 = 0", "4: call bpf_tail_call", "5: r0 = -1", "6: exit", "epilogue"}
	if !slices.Equal(order, want) {
		t.Errorf("groups\n%q\nwant\n%q", order, want)
	}
	if g := insnGroup(t, f, 6); len(g.Rows) != 0 {
		t.Errorf("exit falls into the epilogue, yet has %d rows", len(g.Rows))
	}
	if g := insnGroup(t, f, 1); !strings.HasPrefix(g.Comment, "TAIL_CALL(-1)") || !bytes.Equal(g.Encoding, []byte{0x18, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("map load: comment %q, encoding % x", g.Comment, g.Encoding)
	}

	// The tail call: the fix-up's site, and the machine code in order.
	g := insnGroup(t, f, 4)
	if g.Site == nil || g.TailCall != "indirect map=progs imm=0x0" || !bytes.Equal(g.Encoding, []byte{0xf5, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("tail call: site %v, %q, encoding % x", g.Site, g.TailCall, g.Encoding)
	}
	var texts []string
	for _, r := range g.Rows {
		texts = append(texts, r.Text)
	}
	wantTexts := []string{"mov edx, edx", "cmp dword ptr [rsi+0x44], edx", "jbe", "mov rax, qword ptr [rbp-0x10]", "cmp qword ptr [rax], 0x21",
		"jnb", "mov rcx, qword ptr [rsi+8*rdx+0x130]", "test rcx, rcx", "jz", "add qword ptr [rax], 0x1", "pop rax", "pop rax",
		"mov rcx, qword ptr [rcx+0x48]", "add rcx, 0xc", "jmp rcx"}
	if len(texts) != len(wantTexts) {
		t.Fatalf("tail-call group has %d instructions, want %d:\n%s", len(texts), len(wantTexts), strings.Join(texts, "\n"))
	}
	for i := range wantTexts {
		if !strings.HasPrefix(texts[i], wantTexts[i]) {
			t.Errorf("tail-call instruction %d = %q, want %q...", i, texts[i], wantTexts[i])
		}
	}

	// Annotations keep what the text does not say, and drop a repeat.
	for text, note := range map[string]string{
		"mov edx, edx":                  "index = (u32)R3",
		"cmp dword ptr [rsi+0x44], edx": "bounds check: cmp [rsi+max_entries], edx",
		"mov rax, qword ptr [rbp-0x10]": "mov rax, [rbp-16-stack]: rax = tcc_ptr",
		"jmp rcx":                       "tail call",
		"push rbp":                      "",
	} {
		if r := row(t, f, text); r.Note != note {
			t.Errorf("%s: note %q, want %q", text, r.Note, note)
		}
	}

	// A branch inside the function knows its target; the landing and
	// fall-through offsets are marked.
	jbe := row(t, f, "jbe")
	out, ok := f.Offset(jbe.Target)
	// The three checks' branches to out, in the JIT's order.
	var checks []prog.Reason
	for _, r := range rows(f) {
		if r.Check != 0 {
			checks = append(checks, r.Check)
			if !r.Branch || r.Target != jbe.Target {
				t.Errorf("check %s at %#x: %q, not a branch to out", r.Check, r.Off, r.Text)
			}
		}
	}
	if want := []prog.Reason{prog.FallBounds, prog.FallLimit, prog.FallEmpty}; !slices.Equal(checks, want) || jbe.Check != prog.FallBounds {
		t.Errorf("check rows %v, want %v with the bounds check at the jbe", checks, want)
	}
	if !jbe.Branch || !ok || jbe.Note != "jbe out: index >= max_entries" {
		t.Errorf("jbe: %+v", jbe)
	}
	marks := map[listing.Mark]int{}
	var outSite prog.Loc
	for _, r := range rows(f) {
		for _, m := range r.Marks {
			marks[m] = r.Off
			if m.Kind == listing.OutMark {
				outSite = m.Site
			}
		}
	}
	// The out mark names its tail call as traces do.
	if outSite.Slot != 4 || outSite.Func != "" || outSite.Line == 0 || !strings.HasPrefix(outSite.String(), f.Prog.Name+"+4 (line ") {
		t.Errorf("out mark names %v, want the tail call at slot 4", outSite)
	}
	if at, ok := marks[listing.Mark{Kind: listing.TailEntryMark}]; !ok || at != f.TailEntry {
		t.Errorf("tail-entry mark at %#x (%v), want %#x", at, ok, f.TailEntry)
	}
	if at, ok := marks[listing.Mark{Kind: listing.OutMark, Site: outSite}]; !ok || at != out {
		t.Errorf("out mark at %#x (%v), want the jbe's target %#x", at, ok, out)
	}
}

func TestPatchedStatic(t *testing.T) {
	l := list(t, tailCall2, "x86_64", prog.Linux618Series, listing.Options{})
	f := fn(t, l, "tail_call_2")
	if g := insnGroup(t, f, 4); g.TailCall != "static map=progs imm=0x0" {
		t.Errorf("tail call %q", g.TailCall)
	}
	if r := row(t, f, "cmp edx, 0xb"); r.Note != "bounds check: cmp edx, 11 (max_entries as an immediate)" {
		t.Errorf("bounds check note %q", r.Note)
	}
	// ptrs + max_entries * 8 = 0x130 + 11*8.
	if r := row(t, f, "mov rcx, qword ptr [rsi+8*rdx+0x188]"); !strings.HasPrefix(r.Note, "load cached target: ") {
		t.Errorf("cached target note %q", r.Note)
	}
	// The patched static path reads neither max_entries nor bpf_func.
	for _, r := range rows(f) {
		if strings.Contains(r.Text, "[rsi+0x44]") || strings.Contains(r.Text, "[rcx+0x48]") {
			t.Errorf("patched code reads a structure field: %s", r.Text)
		}
	}
}

func TestLayout(t *testing.T) {
	sc := load(t, tailCall2)
	pre, err := prog.LayoutByName("pre-v6.18")
	if err != nil {
		t.Fatal(err)
	}
	l := build(t, sc, pre, "x86_64", prog.Linux618, listing.Options{Prog: "tail_call_2"})
	if l.Layout != pre {
		t.Errorf("layout %v", l.Layout)
	}
	f := fn(t, l, "tail_call_2")
	row(t, f, "cmp dword ptr [rsi+0x24], edx")
	if r := row(t, f, "mov rcx, qword ptr [rcx+0x30]"); r.Note != "mov rcx, [rcx+bpf_func]" {
		t.Errorf("bpf_func load note %q", r.Note)
	}
}

// The scenario's config reaches the JIT: landing pads at the start and
// the tail-call entry moved past them.
func TestHardening(t *testing.T) {
	const file = "scenarios/library/edges/hardening.txtar"
	l := list(t, file, "x86_64", prog.Linux618, listing.Options{Prog: "entry"})
	if l.Config != prog.IBT|prog.BTI|prog.PAC {
		t.Errorf("config %s", l.Config)
	}
	f := fn(t, l, "entry")
	if r := rows(f)[0]; r.Text != "endbr64" || f.TailEntry != 0x10 {
		t.Errorf("first row %q, tail entry %#x", r.Text, f.TailEntry)
	}
	f = fn(t, list(t, file, "arm64", prog.Linux618, listing.Options{Prog: "entry"}), "entry")
	if r := rows(f)[0]; r.Text != "hint #0x26" || !strings.HasPrefix(r.Note, "bti jc:") || f.TailEntry != 0x20 {
		t.Errorf("first row %+v, tail entry %#x", r, f.TailEntry)
	}
	if r, ok := findRow(f, "hint #0x19"); !ok || !strings.HasPrefix(r.Note, "paciasp") {
		t.Errorf("no paciasp: %+v", r)
	}
}

// Rows carry the JIT's own bytes: every byte of every function once, in
// order, and each row's bytes decode to its text.
func TestRowBytes(t *testing.T) {
	for _, v := range prog.Kernels {
		t.Run(v.String(), func(t *testing.T) {
			sc := load(t, tailCall2)
			w, err := sc.Build()
			if err != nil {
				t.Fatal(err)
			}
			images, err := emu.CompileX86(w, v, 0)
			if err != nil {
				t.Fatal(err)
			}
			l := list(t, tailCall2, "x86_64", v, listing.Options{})
			if len(l.Funcs) != len(images) {
				t.Errorf("listed %d functions, want %d", len(l.Funcs), len(images))
			}
			for _, im := range images {
				f := fn(t, l, im.Prog.Name)
				var got []byte
				for _, r := range rows(f) {
					if r.Off != len(got) {
						t.Errorf("%s: row at %#x, want %#x", f.Name(), r.Off, len(got))
					}
					got = append(got, r.Bytes...)
					in, err := x86asm.Decode(r.Bytes, 64)
					if err != nil || in.Len != len(r.Bytes) {
						t.Errorf("%s %+v: bytes do not decode to one instruction: %v", f.Name(), r, err)
						continue
					}
					// Rows with a disp32 are printed sign-extended; the rest
					// read exactly as x86asm decodes them.
					if text := x86asm.IntelSyntax(in, f.Addr+uint64(r.Off), nil); text != r.Text && !strings.Contains(r.Text, "-0x") {
						t.Errorf("%s %+v: bytes decode to %q", f.Name(), r, text)
					}
				}
				if !bytes.Equal(got, im.Img.Code) {
					t.Errorf("%s: listed bytes\n%x\nwant\n%x", f.Name(), got, im.Img.Code)
				}
			}
		})
	}
}

func TestSyntax(t *testing.T) {
	att := fn(t, list(t, tailCall2, "x86_64", prog.Linux618, listing.Options{Syntax: "att"}), "tail_call_2")
	for text, note := range map[string]string{
		"mov %edx,%edx":        "index = (u32)R3",
		"cmp %edx,0x44(%rsi)":  "bounds check: cmp [rsi+max_entries], edx",
		"mov -0x10(%rbp),%rax": "mov rax, [rbp-16-stack]: rax = tcc_ptr",
		"jmp *%rcx":            "tail call",
		// The JIT's Intel-worded annotations are trimmed the same way.
		"push %rbp": "",
	} {
		if r, ok := findRow(att, text); !ok || r.Note != note {
			t.Errorf("%s: %+v (found %v), want note %q", text, r, ok, note)
		}
	}
	for _, r := range rows(att) {
		if strings.Contains(r.Text, " ptr ") {
			t.Errorf("AT&T row with Intel operands: %q", r.Text)
		}
	}
	def := list(t, tailCall2, "x86_64", prog.Linux618, listing.Options{})
	intel := list(t, tailCall2, "x86_64", prog.Linux618, listing.Options{Syntax: "intel"})
	if def.Syntax != "intel" || !slices.EqualFunc(rows(fn(t, def, "tail_call_2")), rows(fn(t, intel, "tail_call_2")), sameRow) {
		t.Errorf("the default syntax (%s) differs from intel", def.Syntax)
	}
	if _, err := listing.Build(&prog.World{}, listing.ArchByName("x86_64"), prog.Linux618, listing.Options{Syntax: "plan9"}); err == nil ||
		!strings.Contains(err.Error(), `unknown syntax "plan9"`) {
		t.Errorf("syntax plan9: %v", err)
	}
}

func findRow(f *listing.Func, text string) (listing.Row, bool) {
	for _, r := range rows(f) {
		if r.Text == text {
			return r, true
		}
	}
	return listing.Row{}, false
}

func sameRow(a, b listing.Row) bool {
	return a.Off == b.Off && a.Text == b.Text && a.Note == b.Note && bytes.Equal(a.Bytes, b.Bytes)
}

const subprog = "listing/testdata/subprog.txtar"

func TestFilter(t *testing.T) {
	sc := load(t, subprog)
	names := func(o listing.Options) []string {
		var out []string
		for _, f := range build(t, sc, sc.Layout, "x86_64", prog.Linux618, o).Funcs {
			out = append(out, f.Name())
		}
		return out
	}
	for _, tt := range []struct {
		o    listing.Options
		want []string
	}{
		{listing.Options{}, []string{"entry", "entry/helper", "leaf"}},
		{listing.Options{Prog: "entry"}, []string{"entry", "entry/helper"}},
		{listing.Options{Prog: "entry", Func: "helper"}, []string{"entry/helper"}},
		{listing.Options{Prog: "entry", Func: "entry"}, []string{"entry"}},
		{listing.Options{Prog: "leaf"}, []string{"leaf"}},
	} {
		if got := names(tt.o); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %q, want %q", tt.o, got, tt.want)
		}
	}
	// A name that selects nothing is an error, not an empty listing.
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []listing.Options{{Prog: "nope"}, {Prog: "entry", Func: "leaf"}} {
		var se *listing.SelectionError
		if _, err := listing.Build(w, listing.ArchByName("x86_64"), prog.Linux618, o); !errors.As(err, &se) {
			t.Errorf("%+v: error %v, want a SelectionError", o, err)
		}
	}
}

// A constant key in a subprogram: a direct tail call, whose imm carries
// poke index + 1 upstream and (poke+1)<<16 in the patched series.
func TestSubprogramDirect(t *testing.T) {
	sc := load(t, subprog)
	for _, tt := range []struct {
		v    prog.Kernel
		desc string
		enc  []byte
	}{
		{prog.Linux618, "direct map=jt key=1 poke=0 imm=0x1", []byte{0xf5, 0, 0, 0, 1, 0, 0, 0}},
		{prog.Linux618Series, "direct map=jt key=1 poke=0 imm=0x10000", []byte{0xf5, 0, 0, 0, 0, 0, 1, 0}},
	} {
		f := fn(t, build(t, sc, sc.Layout, "x86_64", tt.v, listing.Options{Prog: "entry", Func: "helper"}), "entry/helper")
		if !f.Subprogram() {
			t.Errorf("%s is not a subprogram", f.Name())
		}
		if g := insnGroup(t, f, 3); g.TailCall != tt.desc || !bytes.Equal(g.Encoding, tt.enc) {
			t.Errorf("%s: %q, % x; want %q, % x", tt.v, g.TailCall, g.Encoding, tt.desc, tt.enc)
		}
		found := false
		for _, r := range rows(f) {
			found = found || strings.HasPrefix(r.Note, "poke site: bypass")
		}
		if !found {
			t.Errorf("%s: no poke site", tt.v)
		}
	}
}

// arm64 rows print absolute branch targets where arm64asm prints
// ".+offset", and the tail call's three fixed-up branches go to out.
func TestArm64(t *testing.T) {
	for _, tt := range []struct {
		v    prog.Kernel
		want string
	}{{prog.Linux618, "ldr w10, [x1,x10]"}, {prog.Linux618Series, "add x11, x11, #0x188"}} {
		f := fn(t, list(t, tailCall2, "arm64", tt.v, listing.Options{}), "tail_call_2")
		out := -1
		for _, r := range rows(f) {
			if strings.Contains(r.Text, ".+0x") || strings.Contains(r.Text, ".-0x") {
				t.Errorf("%s: relative branch target left: %q", tt.v, r.Text)
			}
			if slices.ContainsFunc(r.Marks, func(m listing.Mark) bool { return m.Kind == listing.OutMark && m.Site.Slot == 4 }) {
				out = r.Off
			}
		}
		if out < 0 {
			t.Fatalf("%s: no out mark", tt.v)
		}
		n := 0
		for _, r := range rows(f) {
			if strings.Contains(r.Note, "branch placeholder fixed up") {
				n++
				if at, ok := f.Offset(r.Target); !r.Branch || !ok || at != out {
					t.Errorf("%s: placeholder branch not to out (%#x): %+v", tt.v, out, r)
				}
			}
		}
		if n != 3 {
			t.Errorf("%s: %d fixed-up placeholders, want 3", tt.v, n)
		}
		if _, ok := findRow(f, tt.want); !ok {
			t.Errorf("%s: no row %q", tt.v, tt.want)
		}
	}
}

// Listing a world and walking its data: what a front end other than the
// text does.
func ExampleBuild() {
	scs, err := scenarios.LoadPaths([]string{"testdata/subprog.txtar"})
	if err != nil {
		panic(err)
	}
	w, err := scs[0].Build()
	if err != nil {
		panic(err)
	}
	l, err := listing.Build(w, listing.ArchByName("arm64"), prog.Linux618Series, listing.Options{})
	if err != nil {
		panic(err)
	}
	for _, f := range l.Funcs {
		for _, g := range f.Groups {
			if g.Site != nil {
				fmt.Printf("%s, slot %d: %s, %d machine instructions\n", f.Name(), g.Loc.Slot, g.TailCall, len(g.Rows))
			}
		}
	}
	// Output:
	// entry/helper, slot 3: static map=jt key=1 poke=0 imm=0x10000, 15 machine instructions
}

// pokeRows are f's rows at poke sites, by role.
func pokeRows(t *testing.T, f *listing.Func) map[listing.PokeRole]listing.Row {
	t.Helper()
	out := map[listing.PokeRole]listing.Row{}
	for _, r := range rows(f) {
		if r.Poke != nil {
			if _, dup := out[r.Poke.Role]; dup {
				t.Errorf("%s: two %s poke sites", f.Name(), r.Poke.Role)
			}
			out[r.Poke.Role] = r
		}
	}
	if len(out) != 2 {
		t.Fatalf("%s: poke sites %v, want a bypass and a target", f.Name(), out)
	}
	return out
}

// decodeX86 decodes one row with x86asm, independently of the listing's
// decoder, and returns its op and, for a jmp rel32, its destination.
func decodeX86(t *testing.T, f *listing.Func, r listing.Row) (x86asm.Op, uint64) {
	t.Helper()
	in, err := x86asm.Decode(r.Bytes, 64)
	if err != nil || in.Len != len(r.Bytes) {
		t.Fatalf("%s+%#x: % x does not decode to one instruction: %v", f.Name(), r.Off, r.Bytes, err)
	}
	var dest uint64
	if rel, ok := in.Args[0].(x86asm.Rel); ok {
		dest = f.Addr + uint64(r.Off) + uint64(in.Len) + uint64(int64(rel))
	}
	return in.Op, dest
}

// The poke sites are listed as the scenario's slots leave them when the
// program is loaded: with the slot filled the target site is a jmp to the
// slot's program's tail-call entry and the bypass a nop; with it empty
// (or as JITed) the bypass jumps out and the target is a nop.
func TestPokeState(t *testing.T) {
	for _, v := range prog.Kernels {
		// jt[1] = leaf: the direct call in entry/helper is filled.
		sc := load(t, subprog)
		l := build(t, sc, sc.Layout, "x86_64", v, listing.Options{})
		f, leaf := fn(t, l, "entry/helper"), fn(t, l, "leaf")
		pk := pokeRows(t, f)
		bypass, target := pk[listing.BypassPoke], pk[listing.TargetPoke]
		for _, r := range pk {
			if p := r.Poke; p.Array.Name != "jt" || p.Key != 1 || p.Prog != leaf.Prog || !p.Poked ||
				p.Entry != leaf.Addr+uint64(leaf.TailEntry) {
				t.Errorf("%s: %s poke %+v, want jt[1] = leaf poked, entry %#x", v, p.Role, p, leaf.Addr+uint64(leaf.TailEntry))
			}
		}
		if bypass.Poke.Jumps() || !target.Poke.Jumps() {
			t.Errorf("%s: filled slot: bypass jumps %v, target jumps %v", v, bypass.Poke.Jumps(), target.Poke.Jumps())
		}
		if op, _ := decodeX86(t, f, bypass); op != x86asm.NOP {
			t.Errorf("%s: filled slot: bypass is %v (%s), want nop5", v, op, bypass.Text)
		}
		if op, dest := decodeX86(t, f, target); op != x86asm.JMP || dest != leaf.Addr+uint64(leaf.TailEntry) {
			t.Errorf("%s: filled slot: target is %v to %#x (%s), want jmp leaf+%#x", v, op, dest, target.Text, leaf.TailEntry)
		}
		if !target.Branch || target.Target != leaf.Addr+uint64(leaf.TailEntry) {
			t.Errorf("%s: target row %+v does not branch to leaf's tail entry", v, target)
		}
		var text bytes.Buffer
		if err := l.WriteText(&text, listing.TextOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"; poke site: bypass, nop (jt[1] = leaf: on to the tail call)", fmt.Sprintf("; poke site: target, jmp leaf+%#x (jt[1] = leaf)", leaf.TailEntry)} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("%s: listing lacks %q", v, want)
			}
		}

		// As JITed: the JIT's bytes, the slot still named.
		asJITed := build(t, sc, sc.Layout, "x86_64", v, listing.Options{AsJITed: true})
		jf := fn(t, asJITed, "entry/helper")
		images, err := emu.CompileX86(mustBuild(t, sc), v, 0)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(images, func(im *emu.Loaded) bool { return im.Prog.Name == "entry" && im.Fn == 1 })
		if i < 0 || !bytes.Equal(jf.Code, images[i].Img.Code) {
			t.Errorf("%s: as JITed, the code is not the JIT's", v)
		}
		// Loading changes the ten bytes of the two sites, nothing else.
		for k := range jf.Code {
			atSite := k >= bypass.Off && k < bypass.Off+5 || k >= target.Off && k < target.Off+5
			if (jf.Code[k] != f.Code[k]) && !atSite {
				t.Errorf("%s: loaded and JITed code differ at +%#x, outside the poke sites", v, k)
			}
		}
		for role, r := range pokeRows(t, jf) {
			if r.Poke.Poked || r.Poke.Prog == nil || r.Poke.Prog.Name != "leaf" || r.Poke.Jumps() != (role == listing.BypassPoke) {
				t.Errorf("%s: as JITed, %s poke %+v", v, role, r.Poke)
			}
		}
		if op, dest := decodeX86(t, jf, pokeRows(t, jf)[listing.BypassPoke]); op != x86asm.JMP || dest != jf.Addr+uint64(outOff(t, jf, 3)) {
			t.Errorf("%s: as JITed, the bypass is %v to %#x, want jmp out", v, op, dest)
		}
	}

	// progs[1] is empty: the bypass jumps out, the target stays a nop.
	l := list(t, "scenarios/library/edges/empty_slot.txtar", "x86_64", prog.Linux618, listing.Options{Prog: "entry"})
	f := fn(t, l, "entry")
	pk, out := pokeRows(t, f), outOff(t, f, 4)
	for role, r := range pk {
		if p := r.Poke; p.Array.Name != "progs" || p.Key != 1 || p.Prog != nil || p.Entry != 0 || !p.Poked || p.Jumps() != (role == listing.BypassPoke) {
			t.Errorf("empty slot: %s poke %+v", role, p)
		}
	}
	if op, dest := decodeX86(t, f, pk[listing.BypassPoke]); op != x86asm.JMP || dest != f.Addr+uint64(out) {
		t.Errorf("empty slot: bypass is %v to %#x, want jmp out (+%#x)", op, dest, out)
	}
	if op, _ := decodeX86(t, f, pk[listing.TargetPoke]); op != x86asm.NOP {
		t.Errorf("empty slot: target is %v, want nop5", op)
	}

	// arm64's JIT has no direct tail calls: no poke sites.
	for _, f := range list(t, subprog, "arm64", prog.Linux618, listing.Options{}).Funcs {
		for _, r := range rows(f) {
			if r.Poke != nil {
				t.Errorf("arm64 %s+%#x: poke %+v", f.Name(), r.Off, r.Poke)
			}
		}
	}
}

func mustBuild(t *testing.T, sc *scenarios.Scenario) *prog.World {
	t.Helper()
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// outOff is where the tail call at slot falls through to in f.
func outOff(t *testing.T, f *listing.Func, slot int) int {
	t.Helper()
	for _, r := range rows(f) {
		if slices.ContainsFunc(r.Marks, func(m listing.Mark) bool { return m.Kind == listing.OutMark && m.Site.Slot == slot }) {
			return r.Off
		}
	}
	t.Fatalf("%s: no out mark for slot %d", f.Name(), slot)
	return 0
}

// relText is the listing's text with TextOptions.Rel.
func relText(t *testing.T, l *listing.Listing) string {
	t.Helper()
	var b bytes.Buffer
	if err := l.WriteText(&b, listing.TextOptions{Rel: true}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// With Rel, no line names an address in the code: branch targets are
// offsets in their function or name+offset in another, and function lines
// drop bpf_func.
func TestRelNamesNoCodeAddress(t *testing.T) {
	hexNum := regexp.MustCompile(`0x[0-9a-f]+`)
	for _, file := range []string{tailCall2, subprog, "scenarios/library/selftests/tailcall_bpf2bpf_1.txtar",
		"scenarios/library/selftests/tailcall_bpf2bpf_3.txtar", "scenarios/library/edges/hardening.txtar"} {
		for _, arch := range []string{"x86_64", "arm64"} {
			for _, v := range prog.Kernels {
				l := list(t, file, arch, v, listing.Options{})
				for _, tok := range hexNum.FindAllString(relText(t, l), -1) {
					n, err := strconv.ParseUint(tok[2:], 16, 64)
					if err != nil {
						continue // wider than 64 bits: not an address
					}
					for _, f := range l.Funcs {
						if _, in := f.Offset(n); in {
							t.Errorf("%s %s %s: -rel prints %s, an address in %s", file, arch, v, tok, f.Name())
						}
					}
				}
			}
		}
	}

	// What the targets become.
	l := list(t, subprog, "x86_64", prog.Linux618, listing.Options{})
	entry, helper := fn(t, l, "entry"), fn(t, l, "entry/helper")
	for _, tt := range []struct {
		f      *listing.Func
		prefix string
		want   string
	}{
		{entry, "call ", "call entry/helper"},
		{helper, "jmp ", "jmp leaf+0xc"}, // the poked target site
		{helper, "jnb ", fmt.Sprintf("jnb %x", outOff(t, helper, 3))},
	} {
		if got := l.RelText(tt.f, row(t, tt.f, tt.prefix)); got != tt.want {
			t.Errorf("%s: RelText %q, want %q", tt.f.Name(), got, tt.want)
		}
	}
	if s, ok := l.Symbol(entry.Addr + 3); !ok || s != "entry+0x3" {
		t.Errorf("Symbol(entry+3) = %q, %v", s, ok)
	}
	if s, ok := l.Symbol(0x10); ok {
		t.Errorf("Symbol(0x10) = %q, want none", s)
	}
	a := list(t, subprog, "arm64", prog.Linux618, listing.Options{})
	if ae := fn(t, a, "entry"); a.RelText(ae, row(t, ae, "bl ")) != "bl entry/helper" {
		t.Errorf("arm64: RelText %q", a.RelText(ae, row(t, ae, "bl ")))
	}
}

// v6.18 and v6.18+series -rel listings of a world whose sites are indirect
// upstream and static in the series differ where the tail-call code does:
// the header's kernel, the sizes of functions with a tail call, the
// tail-call groups, and in those functions the offsets of what follows
// the first one (and on arm64 the PLT's alignment nop, which follows the
// code's size). Every other line is the same.
func TestRelDiffsOnlyTailCalls(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		up := strings.Split(relText(t, list(t, tailCall2, arch, prog.Linux618, listing.Options{})), "\n")
		pa := strings.Split(relText(t, list(t, tailCall2, arch, prog.Linux618Series, listing.Options{})), "\n")
		if up[0] != strings.Replace(pa[0], "v6.18+series", "v6.18", 1) {
			t.Errorf("%s: headers %q, %q", arch, up[0], pa[0])
		}
		upFns, paFns := splitFuncs(up), splitFuncs(pa)
		if len(upFns) != 2 || len(paFns) != 2 {
			t.Fatalf("%s: %d and %d functions, want leaf and tail_call_2", arch, len(upFns), len(paFns))
		}
		size := regexp.MustCompile(`, \d+ bytes\):$`)
		offset := regexp.MustCompile(`^ +[0-9a-f]+:  `)
		for i := range upFns {
			u, p := upFns[i], paFns[i]
			if size.ReplaceAllString(u[0], "") != size.ReplaceAllString(p[0], "") {
				t.Errorf("%s: function lines %q, %q", arch, u[0], p[0])
			}
			uBefore, uTail, uAfter := cutTailCalls(u[1:])
			pBefore, pTail, pAfter := cutTailCalls(p[1:])
			if !slices.Equal(uBefore, pBefore) {
				t.Errorf("%s %s: before the first tail call:\n%s\nand\n%s", arch, u[0], strings.Join(uBefore, "\n"), strings.Join(pBefore, "\n"))
			}
			if uTail == 0 && (u[0] != p[0] || !slices.Equal(uAfter, pAfter)) {
				t.Errorf("%s: %s has no tail call, yet its lines differ", arch, u[0])
			}
			if uTail != pTail {
				t.Errorf("%s %s: %d and %d tail-call groups", arch, u[0], uTail, pTail)
			}
			if arch != "x86_64" {
				continue // arm64's PLT moves and may gain or lose a nop
			}
			// After: the same lines but for the offset column.
			strip := func(lines []string) []string {
				var out []string
				for _, l := range lines {
					out = append(out, offset.ReplaceAllString(l, ""))
				}
				return out
			}
			if !slices.Equal(strip(uAfter), strip(pAfter)) {
				t.Errorf("%s %s: after the tail calls:\n%s\nand\n%s", arch, u[0], strings.Join(uAfter, "\n"), strings.Join(pAfter, "\n"))
			}
		}
	}
}

// splitFuncs cuts a listing's lines at the blank lines before each
// function line; the header's lines before the first are dropped.
func splitFuncs(lines []string) [][]string {
	var out [][]string
	for _, l := range lines {
		switch {
		case l == "":
			out = append(out, nil)
		case len(out) > 0:
			out[len(out)-1] = append(out[len(out)-1], l)
		}
	}
	for len(out) > 0 && len(out[len(out)-1]) == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// cutTailCalls splits a function's lines into those before its first
// tail-call group and those outside tail-call groups after it, and counts
// the tail-call groups.
func cutTailCalls(lines []string) (before []string, n int, after []string) {
	in := false
	for _, l := range lines {
		if strings.HasPrefix(l, "  ; ") {
			in = strings.Contains(l, "  tail call: ")
			if in {
				n++
			}
		}
		switch {
		case in:
		case n == 0:
			before = append(before, l)
		default:
			after = append(after, l)
		}
	}
	return before, n, after
}
