package arm64_test

import (
	"fmt"
	"strings"
	"testing"

	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/prog"
	"tailsim/prog/asm"
)

// Addresses the test resolver hands out: kernel-like (bits 48–63 set, as
// emit_addr_mov_i64 assumes), images 1 MiB apart, helpers 1 MiB below the
// first image (bl range) except bpf_ktime_get_ns, 1 GiB above (out of bl's
// ±128 MiB: movn/movk/movk + blr).
const (
	imageBase  = 0xffff800010000000
	funcStride = 0x100000
	nearHelper = imageBase - 0x100000
	farHelper  = imageBase + 0x40000000
	farID      = 5 // bpf_ktime_get_ns
)

type testResolver struct{ funcs []uint64 }

func (r testResolver) Helper(id int32) (uint64, bool) {
	if _, ok := prog.HelperByID(id); !ok {
		return 0, false
	}
	if id == farID {
		return farHelper, true
	}
	return nearHelper + uint64(id)*64, true
}

func (r testResolver) Func(fn int) uint64 { return r.funcs[fn] }

var mapAddrs = map[string]uint64{"progs": 0xffff000012345000, "other": 0xffff000012346000}

func (r testResolver) Map(name string) uint64 { return mapAddrs[name] }

// Thunk: arm64's JIT jumps through none.
func (testResolver) Thunk(string) (uint64, bool) { return 0, false }

// built is one program JITed function by function.
type built struct {
	p    *prog.Program
	fx   *prog.Fixup
	res  testResolver
	imgs []*jit.Image
}

type buildSpec struct {
	main, sub       string
	stack, subStack int
	maxEntries      uint32 // of "progs"; "other" has 7
	fixup           prog.FixupOptions
	variant         prog.Kernel
	layout          prog.Layout
	bti, pac        bool
}

func (s buildSpec) options() arm64.Options {
	l := s.layout
	if l.Name == "" {
		l = prog.DefaultLayout
	}
	return arm64.Options{Kernel: s.variant, Layout: l, BTI: s.bti, PAC: s.pac}
}

func parseFunc(t testing.TB, name, src string, stack int) *prog.Function {
	t.Helper()
	insns, err := asm.Parse(src, 1)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &prog.Function{Name: name, Insns: insns, StackDepth: stack}
}

func build(t testing.TB, s buildSpec) *built {
	t.Helper()
	b, err := tryBuild(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tryBuild(t testing.TB, s buildSpec) (*built, error) {
	t.Helper()
	pool := map[string]*prog.Function{}
	if s.sub != "" {
		pool["sub"] = parseFunc(t, "sub", s.sub, s.subStack)
	}
	p, err := prog.NewProgram("main", "xdp", parseFunc(t, "main", s.main, s.stack), pool)
	if err != nil {
		t.Fatal(err)
	}
	max := s.maxEntries
	if max == 0 {
		max = 4
	}
	progs, err := prog.NewProgArray("progs", max)
	if err != nil {
		t.Fatal(err)
	}
	other, err := prog.NewProgArray("other", 7)
	if err != nil {
		t.Fatal(err)
	}
	fx, err := prog.FixupProgram(p, map[string]*prog.ProgArray{"progs": progs, "other": other}, s.fixup)
	if err != nil {
		t.Fatal(err)
	}
	b := &built{p: p, fx: fx}
	for k := range p.Funcs {
		b.res.funcs = append(b.res.funcs, imageBase+uint64(k)*funcStride)
	}
	return b.compile(s.options())
}

// compile JITs every function of b's program with o, into a new built.
func (b *built) compile(o arm64.Options) (*built, error) {
	nb := &built{p: b.p, fx: b.fx, res: b.res}
	for k := range b.p.Funcs {
		img, err := arm64.Compile(b.p, k, b.fx, b.res.funcs[k], b.res, o)
		if err != nil {
			return nil, err
		}
		nb.imgs = append(nb.imgs, img)
	}
	return nb, nil
}

// Sections of an image.

func prologue(img *jit.Image) []jit.Insn {
	var out []jit.Insn
	for _, in := range img.Insns {
		if in.BPF == jit.Prologue {
			out = append(out, in)
		}
	}
	return out
}

// epilogue is build_epilogue()'s part of the trailing instructions: up to
// the ret (build_plt() follows).
func epilogue(img *jit.Image) []jit.Insn {
	var out []jit.Insn
	for _, in := range img.Insns {
		if in.BPF == jit.Epilogue {
			out = append(out, in)
			if word(img, in) == 0xd65f03c0 {
				break
			}
		}
	}
	return out
}

// plt is what follows the ret.
func plt(img *jit.Image) []jit.Insn {
	e := epilogue(img)
	last := e[len(e)-1]
	var out []jit.Insn
	for _, in := range img.Insns {
		if in.Off > last.Off {
			out = append(out, in)
		}
	}
	return out
}

func between(img *jit.Image, from, to int) []jit.Insn {
	var out []jit.Insn
	for _, in := range img.Insns {
		if in.Off >= from && in.Off < to {
			out = append(out, in)
		}
	}
	return out
}

func tailSeq(img *jit.Image, site int) []jit.Insn {
	s := img.Sites[site]
	return between(img, s.Start, s.Out)
}

func word(img *jit.Image, in jit.Insn) uint32 {
	b := img.Code[in.Off:]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func hexOf(b []byte) string {
	s := make([]string, len(b))
	for k, x := range b {
		s[k] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(s, " ")
}

func insnHex(img *jit.Image, sel []jit.Insn) []string {
	out := make([]string, len(sel))
	for k, in := range sel {
		out[k] = hexOf(img.Code[in.Off : in.Off+in.Len])
	}
	return out
}

func listing(img *jit.Image, sel []jit.Insn) string {
	var b strings.Builder
	for _, in := range sel {
		fmt.Fprintf(&b, "\t%#05x  %s  %s\n", in.Off, hexOf(img.Code[in.Off:in.Off+in.Len]), in.Note)
	}
	return b.String()
}
