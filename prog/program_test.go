package prog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/prog"
	"tailsim/prog/asm"
)

// fn assembles one function; its lines start at firstLine.
func fn(t testing.TB, name, src string, firstLine int) *prog.Function {
	t.Helper()
	insns, err := asm.Parse(src, firstLine)
	if err != nil {
		t.Fatalf("assembling %s: %v", name, err)
	}
	return &prog.Function{Name: name, Insns: insns, StackDepth: prog.StackDepthOf(insns), Line: firstLine}
}

// subLine is where subprogram sources start, so errors in them are told
// apart from errors in the main function.
const subLine = 100

// newProg builds a program from its main function and a pool of subprograms,
// as scenarios/build.go does.
func newProg(t testing.TB, name, main string, subs map[string]string) *prog.Program {
	t.Helper()
	p, err := tryProg(t, name, main, subs)
	if err != nil {
		t.Fatalf("NewProgram(%s): %v", name, err)
	}
	return p
}

func tryProg(t testing.TB, name, main string, subs map[string]string) (*prog.Program, error) {
	t.Helper()
	pool := map[string]*prog.Function{}
	for n, s := range subs {
		pool[n] = fn(t, n, s, subLine)
	}
	return prog.NewProgram(name, "xdp", fn(t, name, main, 1), pool)
}

func TestNewProgramLinks(t *testing.T) {
	pool := map[string]string{
		"a": `
	call b
	exit`,
		"b": `
	r0 = 1
	exit`,
	}
	p := newProg(t, "main", `
	r1 = 0x1 ll
	call a
	call b
	r0 = 0
	exit`, pool)
	// The stream: main 0–5 (the 64-bit load takes slots 0–1), a 6–7,
	// b 8–9. A call's imm is callee start - (call slot + 1).
	var names []string
	for _, f := range p.Funcs {
		names = append(names, f.Name)
	}
	if diff := cmp.Diff([]string{"main", "a", "b"}, names); diff != "" {
		t.Fatalf("Funcs (-want +got):\n%s", diff)
	}
	tests := []struct {
		fn, insn int
		imm      int64
	}{
		{0, 1, 6 - 3}, // main: call a at slot 2
		{0, 2, 8 - 4}, // main: call b at slot 3
		{1, 0, 8 - 7}, // a: call b at slot 6
	}
	for _, tt := range tests {
		ins := p.Funcs[tt.fn].Insns[tt.insn]
		if !ins.IsSubprogCall() || ins.Imm != tt.imm {
			t.Errorf("%s insn %d: imm %d, want %d", p.Funcs[tt.fn].Name, tt.insn, ins.Imm, tt.imm)
		}
	}
	if p.Main() != p.Funcs[0] || p.Func("b") != p.Funcs[2] || p.FuncIndex("a") != 1 || p.FuncIndex("zz") != -1 || p.Func("zz") != nil {
		t.Errorf("Main/Func/FuncIndex disagree with Funcs")
	}
}

// TestNewProgramCopies: each program owns its copy of a subprogram, linked
// for its own layout.
func TestNewProgramCopies(t *testing.T) {
	sub := fn(t, "sub", "r0 = 1\nexit", subLine)
	pool := map[string]*prog.Function{"sub": sub}
	p1, err := prog.NewProgram("p1", "xdp", fn(t, "p1", "call sub\nexit", 1), pool)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := prog.NewProgram("p2", "xdp", fn(t, "p2", "r0 = 0\ncall sub\nr0 = 0\nexit", 1), pool)
	if err != nil {
		t.Fatal(err)
	}
	// p1: call at slot 0, sub at 2 → 1. p2: call at slot 1, sub at 4 → 2.
	if got := p1.Funcs[0].Insns[0].Imm; got != 2-1 {
		t.Errorf("p1 call imm %d, want 1", got)
	}
	if got := p2.Funcs[0].Insns[1].Imm; got != 4-2 {
		t.Errorf("p2 call imm %d, want 2", got)
	}
	if sub.Insns[0].Imm != 1 {
		t.Errorf("linking changed the pool's function")
	}
	p1.Funcs[1].Insns[0].Imm = 42
	if sub.Insns[0].Imm != 1 || p2.Funcs[1].Insns[0].Imm != 1 {
		t.Errorf("programs share subprogram instructions")
	}
	if p1.Funcs[1] == sub || p1.Funcs[1] == p2.Funcs[1] {
		t.Errorf("programs share subprogram functions")
	}
}

func TestNewProgramUnknownSubprog(t *testing.T) {
	_, err := tryProg(t, "main", "r0 = 0\ncall nowhere\nexit", nil)
	var pe *prog.PosError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("error %v, want a PosError at line 2", err)
	}
	// Through a subprogram: the line is the subprogram's.
	_, err = tryProg(t, "main", "call a\nexit", map[string]string{"a": "r0 = 0\ncall b\nexit"})
	if !errors.As(err, &pe) || pe.Line != subLine+1 {
		t.Fatalf("error %v, want a PosError at line %d", err, subLine+1)
	}
}

// TestNewProgramCallDepth: the verifier allows 8 frames (MAX_CALL_FRAMES)
// in a program's call chain, and no recursion.
func TestNewProgramCallDepth(t *testing.T) {
	chain := func(frames int) map[string]string {
		subs := map[string]string{}
		for i := 1; i < frames-1; i++ {
			subs[fmt.Sprintf("f%d", i)] = fmt.Sprintf("call f%d\nexit", i+1)
		}
		subs[fmt.Sprintf("f%d", frames-1)] = "r0 = 0\nexit"
		return subs
	}
	tests := []struct {
		name string
		subs map[string]string
		msg  string // "" means accepted
	}{
		{"8 frames", chain(8), ""},
		{"9 frames", chain(9), "deeper than 8"},
		{"self recursion", map[string]string{"f1": "call f1\nexit"}, "recursi"},
		{"mutual recursion", map[string]string{"f1": "call f2\nexit", "f2": "r0 = 0\ncall f1\nexit"}, "recursi"},
		{"diamond is not recursion", map[string]string{"f1": "call f3\ncall f2\nexit", "f2": "call f3\nexit", "f3": "r0 = 0\nexit"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tryProg(t, "main", "call f1\nexit", tt.subs)
			switch {
			case tt.msg == "" && err != nil:
				t.Errorf("NewProgram: %v", err)
			case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
				t.Errorf("NewProgram error %v, want one mentioning %q", err, tt.msg)
			}
		})
	}
}

func TestFunctionQueries(t *testing.T) {
	tests := []struct {
		src      string
		depth    int
		slots    []int
		total    int
		tailCall bool
	}{
		{src: "r0 = 0\nexit", slots: []int{0, 1}, total: 2},
		{src: "r6 = 1\nr9 = r1\nr0 = r6\nexit", slots: []int{0, 1, 2, 3}, total: 4},
		{src: "r1 = r8\nr0 = 0\nexit", slots: []int{0, 1, 2}, total: 3},
		{src: "*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 24)\nexit", depth: 24, slots: []int{0, 1, 2}, total: 3},
		{src: "r3 = r10\n*(u64 *)(r3 - 64) = r1\nr0 = 0\nexit", depth: 0, slots: []int{0, 1, 2, 3}, total: 4},
		{src: "*(u8 *)(r10 + 8) = 1\nr0 = 0\nexit", depth: 0, slots: []int{0, 1, 2}, total: 3},
		{src: "r1 = 1 ll\nr2 = map[m]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", slots: []int{0, 2, 4, 5, 6, 7}, total: 8, tailCall: true},
		{src: "call 12\nr0 = 0\nexit", slots: []int{0, 1, 2}, total: 3, tailCall: true},
	}
	for _, tt := range tests {
		f := fn(t, "f", tt.src, 1)
		if d := prog.StackDepthOf(f.Insns); d != tt.depth {
			t.Errorf("%q: StackDepthOf = %d, want %d", tt.src, d, tt.depth)
		}
		pos, total := f.Slots()
		if !cmp.Equal(pos, tt.slots) || total != tt.total {
			t.Errorf("%q: Slots = %v, %d; want %v, %d", tt.src, pos, total, tt.slots, tt.total)
		}
		if f.HasTailCall() != tt.tailCall {
			t.Errorf("%q: HasTailCall = %v", tt.src, f.HasTailCall())
		}
	}
}

func TestPosError(t *testing.T) {
	tests := []struct {
		e    prog.PosError
		want string
	}{
		{prog.PosError{Msg: "m"}, "m"},
		{prog.PosError{Line: 3, Msg: "m"}, "line 3: m"},
		{prog.PosError{Line: 3, Col: 7, Msg: "m"}, "line 3:7: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

// A long word from the input is cut to its start and length, keeping what
// closes it, so a quoted word still reads as quoted.
func TestCutLong(t *testing.T) {
	long := strings.Repeat("7", 100)
	for _, tc := range []struct{ in, want string }{
		{"short words stay", "short words stay"},
		{"bad number " + long, "bad number 777777777777777777777777…(100 bytes)"},
		{`bad number "` + long + `"`, `bad number "77777777777777777777777…(102 bytes)"`},
		{`unknown label "` + long + `":`, `unknown label "77777777777777777777777…(103 bytes)":`},
		{"é" + strings.Repeat("é", 40), "éééééééééééé…(82 bytes)"},
	} {
		if got := prog.CutLong(tc.in); got != tc.want {
			t.Errorf("CutLong(%.30q…) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
