package arm64_test

import (
	"strings"
	"testing"

	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/prog"
)

// TestOptions: PROLOGUE_OFFSET = BTI_INSNS + 2 + PAC_INSNS + 4, and the
// image's TailEntry is 4 * PROLOGUE_OFFSET.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		bti, pac bool
		po, poke int
	}{{false, false, 6, 1}, {true, false, 7, 2}, {false, true, 7, 1}, {true, true, 8, 2}} {
		o := arm64.Options{BTI: tc.bti, PAC: tc.pac}
		if o.PrologueOffset() != tc.po || o.TailCallOffset() != 4*tc.po || o.PokeOffset() != tc.poke {
			t.Errorf("%s: PrologueOffset %d, TailCallOffset %d, PokeOffset %d; want %d, %d, %d",
				flags(tc.bti, tc.pac), o.PrologueOffset(), o.TailCallOffset(), o.PokeOffset(), tc.po, 4*tc.po, tc.poke)
		}
		b := build(t, buildSpec{main: tcConst, sub: "\tr0 = 0\n\texit", bti: tc.bti, pac: tc.pac})
		for _, img := range b.imgs {
			if img.TailEntry != 4*tc.po {
				t.Errorf("%s: %s TailEntry %d, want %d", flags(tc.bti, tc.pac), img.Func.Name, img.TailEntry, 4*tc.po)
			}
		}
		// The nop at POKE_OFFSET.
		if w := word(b.imgs[0], b.imgs[0].Insns[tc.poke]); w != 0xd503201f {
			t.Errorf("%s: instruction %d is %08x, want the nop poke site", flags(tc.bti, tc.pac), tc.poke, w)
		}
	}
}

// TestStackSize: round_up(stack_depth, 16), allocated and freed.
func TestStackSize(t *testing.T) {
	for _, tc := range []struct{ depth, size int }{{0, 0}, {1, 16}, {8, 16}, {16, 16}, {40, 48}, {512, 512}} {
		b := build(t, buildSpec{main: "\tr0 = 0\n\texit", stack: tc.depth})
		img := b.imgs[0]
		if img.StackSize != tc.size {
			t.Errorf("stack %d: StackSize %d, want %d", tc.depth, img.StackSize, tc.size)
		}
		subs, adds := 0, 0
		for _, in := range img.Insns {
			w := word(img, in)
			// sub/add sp, sp, #imm12 (no shift)
			if w&0xffc003ff == 0xd10003ff && int(w>>10&0xfff) == tc.size {
				subs++
			}
			if w&0xffc003ff == 0x910003ff && int(w>>10&0xfff) == tc.size {
				adds++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.size != 0]; subs != want || adds != want {
			t.Errorf("stack %d: %d sub sp and %d add sp, want %d each", tc.depth, subs, adds, want)
		}
	}
}

// TestSiteKinds: upstream is always indirect (the verifier's poke index is
// ignored); the series decodes imm: dynamic flag -> dynamic, else static,
// also when the poke field is set.
func TestSiteKinds(t *testing.T) {
	tcVar := "\tr2 = map[progs]\n\tr3 = *(u32 *)(r1 + 0)\n\tcall bpf_tail_call\n\tr0 = 0\n\texit"
	for _, tc := range []struct {
		name, src string
		fixup     prog.FixupOptions
		direct    bool // the fix-up made the site direct (x86's poke)
		upstream  prog.SiteKind
		patched   prog.SiteKind
	}{
		{"const", tcConst, prog.FixupOptions{}, true, prog.Indirect, prog.Static},
		{"const/nodirect", tcConst, prog.FixupOptions{NoDirect: true}, false, prog.Indirect, prog.Static},
		{"var", tcVar, prog.FixupOptions{}, false, prog.Indirect, prog.Static},
		{"poisoned", tcPoisoned, prog.FixupOptions{}, false, prog.Indirect, prog.Dynamic},
		{"noverifier", tcPoisoned, prog.FixupOptions{NoVerifier: true}, false, prog.Indirect, prog.Static},
	} {
		for _, v := range prog.Kernels {
			b := build(t, buildSpec{main: tc.src, variant: v, fixup: tc.fixup})
			img := b.imgs[0]
			if len(img.Sites) != 1 {
				t.Fatalf("%s/%s: %d sites", tc.name, v, len(img.Sites))
			}
			s := img.Sites[0]
			want := tc.upstream
			if v == prog.Linux618Series {
				want = tc.patched
			}
			if s.Kind != want || s.Site == nil || s.Site.Direct != tc.direct {
				t.Errorf("%s/%s: kind %s (direct fix-up %v), want %s (direct %v)", tc.name, v, s.Kind, s.Site != nil && s.Site.Direct, want, tc.direct)
			}
			// prog's model of a JIT without direct calls agrees.
			if k := s.Site.Kind(v, arm64.DirectTailCalls); k != s.Kind {
				t.Errorf("%s/%s: Kind(%s, no direct) = %s, the JIT emitted %s", tc.name, v, v, k, s.Kind)
			}
		}
	}
}

// TestFarSubprogCall: a callee beyond bl's range is called through
// movn/movk/movk x10 + blr, in the extra pass as in the first round.
func TestFarSubprogCall(t *testing.T) {
	b := build(t, buildSpec{main: "\tcall sub\n\texit", sub: "\tr0 = 0\n\texit"})
	b.res.funcs[1] = imageBase + 0x40000000
	nb, err := b.compile(arm64.Options{Layout: prog.DefaultLayout})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, namedImage{"far-sub main", nb.imgs[0], nb, 0, prog.Linux618})
	if n := len(owned(0)(nb.imgs[0])); n != 5 {
		t.Errorf("call sub: %d instructions, want 5 (movn, movk, movk, blr, mov)", n)
	}
	// And a near one shrinks to bl in the extra pass.
	if n := len(owned(0)(b.imgs[0])); n != 2 {
		t.Errorf("near call sub: %d instructions, want 2 (bl, mov)", n)
	}
}

// TestEncodingFailures: operands the A64 generators cannot encode leave
// AARCH64_BREAK_FAULT, and validate_code() rejects the image; an unknown
// helper has no address.
func TestEncodingFailures(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		stack     int
		want      string
	}{
		// Errors name the instruction as traces and listings do.
		{"shift 64", "\tr0 = 1\n\tr0 <<= 64\n\texit", 0, "arm64: main+1 (line 2) (lsh64 imm) cannot be encoded: AARCH64_BREAK_FAULT"},
		{"w shift 32", "\tw0 = 1\n\tw0 >>= 32\n\texit", 0, "+1 (line 2) (rsh32 imm) cannot be encoded: AARCH64_BREAK_FAULT"},
		{"stack 4112", "\tr0 = 0\n\texit", 4112, "the prologue of main"}, // 0x1010: neither imm12 nor imm12 << 12
		{"unknown helper", "\tcall 99\n\texit", 0, "arm64: main+0 (line 1): no address for helper 99"},
	} {
		_, err := tryBuild(t, buildSpec{main: tc.src, stack: tc.stack, fixup: prog.FixupOptions{NoVerifier: true}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// A stack of 4096 encodes as #1, lsl #12 (only without the verifier:
	// it caps frames at 512 bytes).
	if _, err := tryBuild(t, buildSpec{main: "\tr0 = 0\n\texit", stack: 4096, fixup: prog.FixupOptions{NoVerifier: true}}); err != nil {
		t.Errorf("stack 4096: %v", err)
	}
}

// TestLayoutsAccepted: every offset goes through emit_a64_mov_i64 into
// x10, so, unlike x86's disp8 fields, no layout is rejected.
func TestLayoutsAccepted(t *testing.T) {
	b := build(t, buildSpec{main: tcPoisoned})
	for _, l := range append(prog.Presets,
		prog.Layout{Name: "disp8-breakers", MaxEntries: 0x80, Ptrs: 0x200, BpfFunc: 0x1f8},
		prog.Layout{Name: "u32", MaxEntries: 0xfffffff0, Ptrs: 0xfffffff8, BpfFunc: 0xffffff00}) {
		for _, v := range prog.Kernels {
			nb, err := b.compile(arm64.Options{Kernel: v, Layout: l})
			if err != nil {
				t.Errorf("%s/%s: %v", l.Name, v, err)
				continue
			}
			checkImage(t, namedImage{l.Name + "/" + v.String(), nb.imgs[0], nb, 0, v})
		}
	}
}

// TestAnnotations: owners and the notes the brief names.
func TestAnnotations(t *testing.T) {
	for _, v := range prog.Kernels {
		b := build(t, buildSpec{main: tcConst, variant: v})
		img := b.imgs[0]
		seq := tailSeq(img, 0)
		var notes []string
		for _, in := range seq {
			notes = append(notes, in.Note)
		}
		all := strings.Join(notes, "\n")
		for _, want := range []string{"bounds check", "count check", "branch placeholder fixed up: b.cs out",
			"branch placeholder fixed up: cbz x11, out", "count++"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: no %q in the tail-call notes:\n%s", v, want, all)
			}
		}
		last := seq[len(seq)-1].Note
		if v == prog.Linux618 && last != "tail call: br x10" || v == prog.Linux618Series && !strings.HasPrefix(last, "tail call: br x11") {
			t.Errorf("%s: last note %q", v, last)
		}
		if v == prog.Linux618Series && !strings.Contains(all, "load cached target") {
			t.Errorf("%s: no load cached target", v)
		}
		for _, in := range img.Insns {
			if in.Len != 4 || (in.BPF < 0 && in.BPF != jit.Prologue && in.BPF != jit.Epilogue) {
				t.Errorf("%s: %+v", v, in)
			}
		}
	}
}
