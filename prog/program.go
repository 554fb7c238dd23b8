package prog

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxStackDepth is the kernel's MAX_BPF_STACK.
const MaxStackDepth = 512

// Function is one BPF function: a program's main body or a subprogram.
type Function struct {
	Name  string
	Insns []Instruction
	// StackDepth is the frame size in bytes the verifier would record for
	// the function (aux->stack_depth); the JITs round it up themselves.
	StackDepth int
	// Line is where the function's source section starts (0 when built in code).
	Line int
}

// Slots returns the slot index of every instruction and the total slot count.
func (f *Function) Slots() ([]int, int) {
	pos := make([]int, len(f.Insns))
	n := 0
	for i, ins := range f.Insns {
		pos[i] = n
		n += ins.Slots()
	}
	return pos, n
}

// HasTailCall reports whether the function contains a tail call.
func (f *Function) HasTailCall() bool {
	return slices.ContainsFunc(f.Insns, Instruction.IsTailCall)
}

// Program is a loadable BPF program: its main function followed by every
// subprogram reachable from it, in the order the kernel lays them out (the
// order of first call). Each program owns its copies of its subprograms, as a
// kernel program owns its instruction stream.
type Program struct {
	Name  string
	Type  string // program type; prog arrays accept only programs of one type
	Funcs []*Function
	Line  int
}

// InterpreterRefuses reports a program the kernel interpreter cannot run:
// one with bpf-to-bpf calls and a tail call anywhere in it. With the JIT
// off, check_map_func_compatibility() refuses its bpf_tail_call ("tail_calls
// are not allowed in non-JITed programs with bpf-to-bpf calls", 6.1 and
// later; fixup_call_args() says the same of a program the JIT was asked
// for and failed), so the interpreter's rules never meet a tail call in
// such a program.
func (p *Program) InterpreterRefuses() bool {
	return len(p.Funcs) > 1 && slices.ContainsFunc(p.Funcs, (*Function).HasTailCall)
}

// InterpreterRefusal is the message of InterpreterRefuses.
const InterpreterRefusal = "tail_calls are not allowed in non-JITed programs with bpf-to-bpf calls"

// Main returns the program's entry function.
func (p *Program) Main() *Function { return p.Funcs[0] }

// Func finds a function of the program by name.
func (p *Program) Func(name string) *Function {
	for _, f := range p.Funcs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// FuncIndex returns the index of the named function in Funcs, or -1.
func (p *Program) FuncIndex(name string) int {
	return slices.IndexFunc(p.Funcs, func(f *Function) bool { return f.Name == name })
}

// NewProgram assembles a program from its main function and a pool of
// subprograms it may call by name. It links the bpf2bpf call immediates the
// way the kernel's single instruction stream would hold them.
func NewProgram(name, typ string, main *Function, pool map[string]*Function) (*Program, error) {
	p := &Program{Name: name, Type: typ, Funcs: []*Function{main}, Line: main.Line}
	for i := 0; i < len(p.Funcs); i++ {
		for _, ins := range p.Funcs[i].Insns {
			if !ins.IsSubprogCall() {
				continue
			}
			if p.FuncIndex(ins.Reference) >= 0 {
				continue
			}
			sub, ok := pool[ins.Reference]
			if !ok {
				return nil, &PosError{Line: ins.Line, Msg: fmt.Sprintf("call to unknown subprogram %q", ins.Reference)}
			}
			cp := *sub
			cp.Insns = slices.Clone(sub.Insns)
			p.Funcs = append(p.Funcs, &cp)
		}
	}
	if err := p.checkCallDepth(); err != nil {
		return nil, err
	}
	p.link()
	return p, nil
}

// MaxCallFrames is the kernel's MAX_CALL_FRAMES.
const MaxCallFrames = 8

// checkCallDepth rejects recursion and call chains deeper than the verifier
// allows. The limit is static, per program: at run time a tail call made
// from a subprogram keeps its callers' frames, so frames can nest deeper.
func (p *Program) checkCallDepth() error {
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(p.Funcs))
	var walk func(fn, depth int) error
	walk = func(fn, depth int) error {
		if depth > MaxCallFrames {
			return &PosError{Line: p.Funcs[fn].Line, Msg: fmt.Sprintf("program %s: call chain deeper than %d frames at %s", p.Name, MaxCallFrames, p.Funcs[fn].Name)}
		}
		state[fn] = active
		for _, ins := range p.Funcs[fn].Insns {
			if !ins.IsSubprogCall() {
				continue
			}
			callee := p.FuncIndex(ins.Reference)
			if state[callee] == active {
				return &PosError{Line: ins.Line, Msg: fmt.Sprintf("recursive call to %s (the verifier rejects recursion)", ins.Reference)}
			}
			if err := walk(callee, depth+1); err != nil {
				return err
			}
		}
		state[fn] = done
		return nil
	}
	return walk(0, 1)
}

// link sets every bpf2bpf call's imm to the relative slot offset of its
// callee in the concatenated instruction stream.
func (p *Program) link() {
	start := make([]int, len(p.Funcs))
	n := 0
	for i, f := range p.Funcs {
		start[i] = n
		_, sz := f.Slots()
		n += sz
	}
	for i, f := range p.Funcs {
		pos, _ := f.Slots()
		for j := range f.Insns {
			ins := &f.Insns[j]
			if ins.IsSubprogCall() {
				ins.Imm = int64(start[p.FuncIndex(ins.Reference)] - (start[i] + pos[j] + 1))
			}
		}
	}
}

// StackDepthOf computes the frame size a verifier would see from direct
// R10-relative accesses: the deepest byte touched below the frame pointer.
// Accesses through copies of R10 are not tracked; such programs declare their
// stack size explicitly, as lib/test_bpf does.
func StackDepthOf(insns []Instruction) int {
	depth := 0
	for _, ins := range insns {
		var base Register
		switch {
		case ins.OpCode.IsMemLoad():
			base = ins.Src
		case ins.OpCode.IsMemStore():
			base = ins.Dst
		default:
			continue
		}
		if base == R10 && ins.Off < 0 {
			depth = max(depth, -int(ins.Off))
		}
	}
	return depth
}

// PosError is an error at a source line (and optionally column) of the
// section a function came from; the scenario layer adds the file name.
type PosError struct {
	Line, Col int
	Msg       string
}

func (e *PosError) Error() string {
	msg := CutLong(e.Msg)
	switch {
	case e.Line == 0:
		return msg
	case e.Col == 0:
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return fmt.Sprintf("line %d:%d: %s", e.Line, e.Col, msg)
}

// longWord is the longest word an error message quotes whole.
const longWord = 64

// CutLong shortens the words of an error message longer than longWord
// bytes, which come from the input (a megabyte number was echoed whole),
// to their start and their length.
func CutLong(msg string) string {
	if len(msg) <= longWord {
		return msg
	}
	words := strings.Split(msg, " ")
	for i, w := range words {
		if len(w) > longWord {
			// What closes the word (a quote, a bracket, a colon) stays:
			// `"abc…"` is still a quoted word.
			body := strings.TrimRight(w, `"')]},.:;`)
			tail := w[len(body):]
			cut := min(24, len(body))
			for cut > 0 && cut < len(body) && !utf8.RuneStart(body[cut]) {
				cut--
			}
			words[i] = fmt.Sprintf("%s…(%d bytes)%s", body[:cut], len(w), tail)
		}
	}
	return strings.Join(words, " ")
}
