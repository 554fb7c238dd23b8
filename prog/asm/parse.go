package asm

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"tailsim/prog"
)

// Parse assembles src. Line numbers in errors and in the instructions are
// firstLine-based, so a section of a larger file reports its real lines.
// Jumps to labels are resolved; calls to names that are not helpers become
// bpf2bpf calls whose Reference names the subprogram, to be linked later.
func Parse(src string, firstLine int) ([]prog.Instruction, error) {
	p := &parser{labels: map[string]int{}}
	var pending []string
	for i, raw := range strings.Split(src, "\n") {
		lineNo := firstLine + i
		code, comment := stripComment(raw)
		toks, err := lex(code)
		if err != nil {
			return nil, p.errAt(lineNo, err)
		}
		// Leading "name:" labels.
		for len(toks) >= 2 && toks[0].kind == tIdent && toks[1].text == ":" {
			name := toks[0].text
			if _, dup := p.labels[name]; dup || contains(pending, name) {
				return nil, &prog.PosError{Line: lineNo, Col: toks[0].col, Msg: fmt.Sprintf("label %q defined twice", name)}
			}
			if isRegName(name) || keywords[name] {
				return nil, &prog.PosError{Line: lineNo, Col: toks[0].col, Msg: fmt.Sprintf("%q cannot be a label", name)}
			}
			p.labels[name] = -1
			pending = append(pending, name)
			toks = toks[2:]
		}
		if len(toks) == 0 {
			continue
		}
		p.line, p.toks, p.pos, p.tcol = lineNo, toks, 0, 0
		ins, err := p.instruction()
		if err != nil {
			return nil, p.errAt(lineNo, err)
		}
		ins.Line, ins.Comment, ins.Labels = lineNo, comment, pending
		for _, l := range pending {
			p.labels[l] = len(p.insns)
		}
		pending = nil
		p.insns = append(p.insns, ins)
		p.tcols = append(p.tcols, p.tcol)
	}
	if len(pending) > 0 {
		return nil, &prog.PosError{Line: firstLine + strings.Count(src, "\n"), Msg: fmt.Sprintf("label %q marks no instruction", pending[0])}
	}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	return p.insns, nil
}

var keywords = map[string]bool{"goto": true, "if": true, "call": true, "exit": true, "map": true, "map_value": true, "ll": true}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

type parser struct {
	insns  []prog.Instruction
	labels map[string]int
	line   int
	toks   []token
	pos    int
	tcol   int   // column of the current instruction's jump target
	tcols  []int // tcol of every instruction, for errors found by resolve
}

func (p *parser) errAt(line int, err error) error {
	if ce, ok := err.(*colError); ok {
		return &prog.PosError{Line: line, Col: ce.col, Msg: ce.msg}
	}
	return &prog.PosError{Line: line, Msg: err.Error()}
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

// tokText is the text of token i, or "" past the end.
func (p *parser) tokText(i int) string {
	if i < len(p.toks) {
		return p.toks[i].text
	}
	return ""
}

func (p *parser) endCol() int {
	if len(p.toks) == 0 {
		return 1
	}
	t := p.toks[len(p.toks)-1]
	return t.col + len(t.text)
}

func (p *parser) fail(format string, args ...any) error {
	col := p.endCol()
	if t := p.peek(); t != nil {
		col = t.col
	}
	return &colError{col, fmt.Sprintf(format, args...)}
}

func (p *parser) next() *token {
	t := p.peek()
	if t != nil {
		p.pos++
	}
	return t
}

func (p *parser) expect(text string) error {
	t := p.peek()
	if t == nil || t.text != text {
		got := "end of line"
		if t != nil {
			got = fmt.Sprintf("%q", t.text)
		}
		return p.fail("expected %q, found %s", text, got)
	}
	p.pos++
	return nil
}

func (p *parser) done() error {
	if t := p.peek(); t != nil {
		return p.fail("unexpected %q after instruction", t.text)
	}
	return nil
}

func isRegName(s string) bool {
	_, _, ok := regOf(s)
	return ok
}

// regOf parses r0–r10 and w0–w10; wide reports the r form.
func regOf(s string) (prog.Register, bool, bool) {
	if len(s) < 2 || (s[0] != 'r' && s[0] != 'w') {
		return 0, false, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 0 || n > 10 || (len(s) > 2 && s[1] == '0') {
		return 0, false, false
	}
	return prog.Register(n), s[0] == 'r', true
}

func (p *parser) reg() (prog.Register, bool, error) {
	t := p.peek()
	if t == nil || t.kind != tIdent {
		return 0, false, p.fail("expected a register")
	}
	r, wide, ok := regOf(t.text)
	if !ok {
		return 0, false, p.fail("bad register %q (r0–r10 or w0–w10)", t.text)
	}
	p.pos++
	return r, wide, nil
}

// number reads an optionally signed integer; the value is its 64-bit pattern.
func (p *parser) number() (uint64, bool, error) {
	neg := false
	if t := p.peek(); t != nil && (t.text == "-" || t.text == "+") {
		neg = t.text == "-"
		p.pos++
	}
	t := p.peek()
	if t == nil || t.kind != tNum {
		return 0, false, p.fail("expected a number")
	}
	v, err := strconv.ParseUint(t.text, 0, 64)
	if err != nil {
		return 0, false, p.fail("bad number %q", t.text)
	}
	if neg && v > 1<<63 {
		return 0, false, p.fail("number -%s does not fit in 64 bits", t.text)
	}
	p.pos++
	if neg {
		v = -v
	}
	return v, neg, nil
}

// imm32 checks that a value fits the 32-bit imm field. For 64-bit operations
// the kernel sign-extends imm, so the value must be a sign-extended s32; for
// 32-bit ones any u32 or s32 spelling is accepted.
func (p *parser) imm32(v uint64, wide bool, col int) (int64, error) {
	return p.imm32Hint(v, wide, col, false)
}

// imm32Hint is imm32; llHint suggests the 64-bit load, which only a mov has.
func (p *parser) imm32Hint(v uint64, wide bool, col int, llHint bool) (int64, error) {
	s := int64(v)
	if s >= math.MinInt32 && s <= math.MaxInt32 {
		return s, nil
	}
	if !wide && v <= math.MaxUint32 {
		return int64(int32(uint32(v))), nil
	}
	hint := ""
	if wide && llHint {
		hint = " (64-bit constants need \"ll\": r1 = 0x123456789 ll)"
	}
	return 0, &colError{col, fmt.Sprintf("constant %#x does not fit the 32-bit immediate%s", v, hint)}
}

var aluOps = map[string]prog.ALUOp{
	"+=": prog.OpAdd, "-=": prog.OpSub, "*=": prog.OpMul, "/=": prog.OpDiv, "%=": prog.OpMod,
	"&=": prog.OpAnd, "|=": prog.OpOr, "^=": prog.OpXor, "<<=": prog.OpLsh, ">>=": prog.OpRsh,
	"s>>=": prog.OpArsh, "=": prog.OpMov,
}

var jumpOps = map[string]prog.JumpOp{
	"==": prog.OpJEQ, "!=": prog.OpJNE, ">": prog.OpJGT, ">=": prog.OpJGE, "<": prog.OpJLT,
	"<=": prog.OpJLE, "s>": prog.OpJSGT, "s>=": prog.OpJSGE, "s<": prog.OpJSLT, "s<=": prog.OpJSLE,
	"&": prog.OpJSET,
}

var sizes = map[string]prog.Size{"u8": prog.SizeB, "u16": prog.SizeH, "u32": prog.SizeW, "u64": prog.SizeDW}

func (p *parser) instruction() (prog.Instruction, error) {
	t := p.peek()
	switch {
	case t.text == "exit":
		p.pos++
		return prog.Instruction{OpCode: prog.Jmp(prog.OpExit, prog.SourceK)}, p.done()
	case t.text == "call":
		p.pos++
		return p.call()
	case t.text == "goto":
		p.pos++
		ins := prog.Instruction{OpCode: prog.Jmp(prog.OpJA, prog.SourceK)}
		if err := p.target(&ins); err != nil {
			return ins, err
		}
		return ins, p.done()
	case t.text == "if":
		p.pos++
		return p.cond()
	case t.text == "*":
		return p.store()
	case t.kind == tIdent:
		return p.assign()
	}
	return prog.Instruction{}, p.fail("unknown instruction starting with %q", t.text)
}

func (p *parser) call() (prog.Instruction, error) {
	ins := prog.Instruction{OpCode: prog.Jmp(prog.OpCall, prog.SourceK)}
	t := p.next()
	switch {
	case t == nil:
		return ins, p.fail("call needs a helper number, helper name or subprogram name")
	case t.kind == tNum:
		p.pos--
		v, _, err := p.number()
		if err != nil {
			return ins, err
		}
		if v > math.MaxInt32 {
			return ins, &colError{t.col, fmt.Sprintf("helper number %d out of range", v)}
		}
		ins.Imm = int64(v)
	case t.kind == tIdent && (keywords[t.text] || isRegName(t.text)):
		return ins, &colError{t.col, fmt.Sprintf("bad call target %q (indirect calls are not in the subset)", t.text)}
	case t.kind == tIdent:
		if h, ok := prog.HelperByName(t.text); ok {
			ins.Imm = int64(h.ID)
		} else {
			ins.Src, ins.Reference = prog.PseudoCall, t.text
		}
	default:
		return ins, &colError{t.col, fmt.Sprintf("bad call target %q", t.text)}
	}
	return ins, p.done()
}

// target reads "+N", "-N" or a label into ins.
func (p *parser) target(ins *prog.Instruction) error {
	t := p.peek()
	if t == nil {
		return p.fail("expected a jump target (+N, -N or a label)")
	}
	p.tcol = t.col
	if t.kind == tIdent {
		if keywords[t.text] || isRegName(t.text) {
			return p.fail("bad jump target %q", t.text)
		}
		p.pos++
		ins.Reference = t.text
		return nil
	}
	if t.text != "+" && t.text != "-" {
		return p.fail("jump offsets are written +N or -N")
	}
	v, neg, err := p.number()
	if err != nil {
		return err
	}
	if int64(v) < math.MinInt16 || int64(v) > math.MaxInt16 || (!neg && int64(v) < 0) {
		return &colError{t.col, fmt.Sprintf("jump offset %s does not fit 16 bits", p.toks[p.pos-1].text)}
	}
	ins.Off = int16(int64(v))
	return nil
}

func (p *parser) cond() (prog.Instruction, error) {
	var ins prog.Instruction
	dst, wide, err := p.reg()
	if err != nil {
		return ins, err
	}
	opTok := p.next()
	if opTok == nil {
		return ins, p.fail("expected a comparison operator")
	}
	op, ok := jumpOps[opTok.text]
	if !ok {
		return ins, &colError{opTok.col, fmt.Sprintf("unknown comparison %q", opTok.text)}
	}
	src, err := p.operand(&ins, wide)
	if err != nil {
		return ins, err
	}
	ins.Dst = dst
	if wide {
		ins.OpCode = prog.Jmp(op, src)
	} else {
		ins.OpCode = prog.Jmp32(op, src)
	}
	if err := p.expect("goto"); err != nil {
		return ins, err
	}
	if err := p.target(&ins); err != nil {
		return ins, err
	}
	return ins, p.done()
}

// operand reads a register of the same width as the destination, or an
// immediate, into ins.Src / ins.Imm.
func (p *parser) operand(ins *prog.Instruction, wide bool) (prog.Source, error) {
	t := p.peek()
	if t == nil {
		return 0, p.fail("expected a register or a number")
	}
	if t.kind == tIdent {
		r, w, err := p.reg()
		if err != nil {
			return 0, err
		}
		if w != wide {
			return 0, &colError{t.col, fmt.Sprintf("%s mixes 32-bit and 64-bit registers", t.text)}
		}
		ins.Src = r
		return prog.SourceX, nil
	}
	v, _, err := p.number()
	if err != nil {
		return 0, err
	}
	imm, err := p.imm32(v, wide, t.col)
	ins.Imm = imm
	return prog.SourceK, err
}

// memRef reads "*(u32 *)(r1 + 8)".
func (p *parser) memRef() (prog.Size, prog.Register, int16, error) {
	if err := p.expect("*"); err != nil {
		return 0, 0, 0, err
	}
	if err := p.expect("("); err != nil {
		return 0, 0, 0, err
	}
	t := p.next()
	if t == nil {
		return 0, 0, 0, p.fail("expected u8, u16, u32 or u64")
	}
	sz, ok := sizes[t.text]
	if !ok {
		return 0, 0, 0, &colError{t.col, fmt.Sprintf("bad access size %q (u8, u16, u32, u64)", t.text)}
	}
	for _, s := range []string{"*", ")", "("} {
		if err := p.expect(s); err != nil {
			return 0, 0, 0, err
		}
	}
	rt := p.peek()
	base, wide, err := p.reg()
	if err != nil {
		return 0, 0, 0, err
	}
	if !wide {
		return 0, 0, 0, &colError{rt.col, "memory addresses use r registers"}
	}
	var off int64
	if t := p.peek(); t != nil && (t.text == "+" || t.text == "-") {
		v, _, err := p.number()
		if err != nil {
			return 0, 0, 0, err
		}
		off = int64(v)
		if off < math.MinInt16 || off > math.MaxInt16 {
			return 0, 0, 0, &colError{t.col, fmt.Sprintf("offset %d does not fit 16 bits", off)}
		}
	}
	if err := p.expect(")"); err != nil {
		return 0, 0, 0, err
	}
	return sz, base, int16(off), nil
}

func (p *parser) store() (prog.Instruction, error) {
	sz, base, off, err := p.memRef()
	ins := prog.Instruction{Dst: base, Off: off}
	if err != nil {
		return ins, err
	}
	if err := p.expect("="); err != nil {
		return ins, err
	}
	src, err := p.operand(&ins, true)
	if err != nil {
		return ins, err
	}
	if src == prog.SourceX {
		ins.OpCode = prog.StoreMem(sz)
	} else {
		ins.OpCode = prog.StoreImm(sz)
	}
	return ins, p.done()
}

func (p *parser) assign() (prog.Instruction, error) {
	var ins prog.Instruction
	dstTok := p.peek()
	dst, wide, err := p.reg()
	if err != nil {
		if _, isOp := aluOps[p.tokText(p.pos+1)]; isOp {
			return ins, &colError{dstTok.col, fmt.Sprintf("bad register %q (r0–r10 or w0–w10)", dstTok.text)}
		}
		return ins, &colError{dstTok.col, fmt.Sprintf("unknown instruction %q", dstTok.text)}
	}
	ins.Dst = dst
	opTok := p.next()
	if opTok == nil {
		return ins, p.fail("expected an assignment operator after %s", dstTok.text)
	}
	op, ok := aluOps[opTok.text]
	if !ok {
		return ins, &colError{opTok.col, fmt.Sprintf("unknown operator %q", opTok.text)}
	}
	alu := func(op prog.ALUOp, src prog.Source) prog.OpCode {
		if wide {
			return prog.ALU64(op, src)
		}
		return prog.ALU32(op, src)
	}
	if op == prog.OpMov {
		t := p.peek()
		switch {
		case t == nil:
			return ins, p.fail("expected a value after =")
		case t.text == "*": // load
			sz, base, off, err := p.memRef()
			if err != nil {
				return ins, err
			}
			if !wide {
				return ins, &colError{dstTok.col, "loads write r registers"}
			}
			ins.OpCode, ins.Src, ins.Off = prog.LoadMem(sz), base, off
			return ins, p.done()
		case t.text == "map" || t.text == "map_value":
			p.pos++
			if err := p.expect("["); err != nil {
				return ins, err
			}
			nt := p.peek()
			if nt == nil || nt.kind != tIdent {
				return ins, p.fail("expected a map name")
			}
			p.pos++
			if err := p.expect("]"); err != nil {
				return ins, err
			}
			if !wide {
				return ins, &colError{dstTok.col, "map references load into r registers"}
			}
			ins.OpCode, ins.Src, ins.Reference = prog.LoadImm64(), prog.PseudoMapFD, nt.text
			if t.text == "map_value" {
				// map_value[NAME] + OFF: the address of the first value,
				// plus OFF bytes (BPF_PSEUDO_MAP_VALUE).
				ins.Src = prog.PseudoMapValue
				if nt := p.peek(); nt != nil && nt.text == "+" {
					v, _, err := p.number()
					if err != nil {
						return ins, err
					}
					if v > 1<<29 {
						return ins, p.fail("offset %d is beyond any value", v)
					}
					ins.Imm = int64(v)
				}
			}
			return ins, p.done()
		case t.text == "-" && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == tIdent: // neg
			p.pos++
			rt := p.peek()
			r, w, err := p.reg()
			if err != nil {
				return ins, err
			}
			if r != dst || w != wide {
				return ins, &colError{rt.col, fmt.Sprintf("negation must name its destination: %s = -%s", dstTok.text, dstTok.text)}
			}
			ins.OpCode = alu(prog.OpNeg, prog.SourceK)
			return ins, p.done()
		case t.kind == tNum || t.text == "-" || t.text == "+":
			v, _, err := p.number()
			if err != nil {
				return ins, err
			}
			if nt := p.peek(); nt != nil && nt.text == "ll" {
				p.pos++
				if !wide {
					return ins, &colError{dstTok.col, "64-bit immediate loads write r registers"}
				}
				ins.OpCode, ins.Imm = prog.LoadImm64(), int64(v)
				return ins, p.done()
			}
			imm, err := p.imm32Hint(v, wide, t.col, true)
			if err != nil {
				return ins, err
			}
			ins.OpCode, ins.Imm = alu(prog.OpMov, prog.SourceK), imm
			return ins, p.done()
		}
	}
	src, err := p.operand(&ins, wide)
	if err != nil {
		return ins, err
	}
	ins.OpCode = alu(op, src)
	return ins, p.done()
}

// resolve turns label references into slot offsets and checks that every
// jump lands on an instruction of this function.
func (p *parser) resolve() error {
	slot := make([]int, len(p.insns)+1)
	for i, ins := range p.insns {
		slot[i+1] = slot[i] + ins.Slots()
	}
	starts := map[int]bool{}
	for i := range p.insns {
		starts[slot[i]] = true
	}
	for i := range p.insns {
		ins := &p.insns[i]
		if !ins.OpCode.HasJumpOffset() {
			continue
		}
		if ins.Reference != "" {
			at, ok := p.labels[ins.Reference]
			if !ok {
				return &prog.PosError{Line: ins.Line, Col: p.tcols[i], Msg: fmt.Sprintf("unknown label %q", ins.Reference)}
			}
			off := slot[at] - (slot[i] + 1)
			if off < math.MinInt16 || off > math.MaxInt16 {
				return &prog.PosError{Line: ins.Line, Col: p.tcols[i], Msg: fmt.Sprintf("label %q is too far away", ins.Reference)}
			}
			ins.Off = int16(off)
			continue
		}
		to := slot[i] + 1 + int(ins.Off)
		if to < 0 || to >= slot[len(p.insns)] || !starts[to] {
			return &prog.PosError{Line: ins.Line, Col: p.tcols[i], Msg: fmt.Sprintf("jump %+d goes to slot %d, outside the function's %d slots or into a 64-bit load", ins.Off, to, slot[len(p.insns)])}
		}
	}
	return nil
}
