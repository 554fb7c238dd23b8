package asm

import (
	"fmt"
	"strings"

	"tailsim/prog"
)

var aluSyms = map[prog.ALUOp]string{}
var jumpSyms = map[prog.JumpOp]string{}

func init() {
	for s, op := range aluOps {
		aluSyms[op] = s
	}
	for s, op := range jumpOps {
		jumpSyms[op] = s
	}
}

func regName(r prog.Register, wide bool) string {
	if wide {
		return fmt.Sprintf("r%d", r)
	}
	return fmt.Sprintf("w%d", r)
}

func signed(v int64) string {
	if v < 0 {
		return fmt.Sprintf("- %d", -v)
	}
	return fmt.Sprintf("+ %d", v)
}

// Format prints one instruction in the syntax Parse reads. Jumps print their
// label when they have one, else a signed slot offset.
func Format(ins prog.Instruction) string {
	op := ins.OpCode
	switch {
	case ins.IsMovPercpuAddr():
		// As the kernel prints it (kernel/bpf/disasm.c).
		return fmt.Sprintf("r%d = &(void __percpu *)(r%d)", ins.Dst, ins.Src)
	case op.IsALU():
		wide := op.Class() == prog.ClassALU64
		d := regName(ins.Dst, wide)
		if op.ALUOp() == prog.OpNeg {
			return fmt.Sprintf("%s = -%s", d, d)
		}
		sym, ok := aluSyms[op.ALUOp()]
		if !ok {
			break
		}
		if op.Source() == prog.SourceX {
			return fmt.Sprintf("%s %s %s", d, sym, regName(ins.Src, wide))
		}
		return fmt.Sprintf("%s %s %d", d, sym, ins.Imm)
	case op.IsLoadImm64():
		if ins.IsMapValueLoad() {
			if ins.Imm != 0 {
				return fmt.Sprintf("r%d = map_value[%s] + %d", ins.Dst, ins.Reference, ins.Imm)
			}
			return fmt.Sprintf("r%d = map_value[%s]", ins.Dst, ins.Reference)
		}
		if ins.IsMapLoad() {
			return fmt.Sprintf("r%d = map[%s]", ins.Dst, ins.Reference)
		}
		return fmt.Sprintf("r%d = %#x ll", ins.Dst, uint64(ins.Imm))
	case op.IsMemLoad():
		return fmt.Sprintf("r%d = *(%s *)(r%d %s)", ins.Dst, op.Size(), ins.Src, signed(int64(ins.Off)))
	case op.IsMemStore():
		mem := fmt.Sprintf("*(%s *)(r%d %s)", op.Size(), ins.Dst, signed(int64(ins.Off)))
		if op.Class() == prog.ClassSTX {
			return fmt.Sprintf("%s = r%d", mem, ins.Src)
		}
		return fmt.Sprintf("%s = %d", mem, ins.Imm)
	case op.IsExit():
		return "exit"
	case op.IsTailCall():
		return "call bpf_tail_call"
	case op.IsCall():
		if ins.IsSubprogCall() {
			return "call " + ins.Reference
		}
		if h, ok := prog.HelperByID(int32(ins.Imm)); ok {
			return "call bpf_" + h.Name
		}
		return fmt.Sprintf("call %d", ins.Imm)
	case op.IsJA():
		return "goto " + jumpTarget(ins)
	case op.IsCondJump():
		wide := op.Class() == prog.ClassJMP
		rhs := fmt.Sprint(ins.Imm)
		if op.Source() == prog.SourceX {
			rhs = regName(ins.Src, wide)
		}
		return fmt.Sprintf("if %s %s %s goto %s", regName(ins.Dst, wide), jumpSyms[op.JumpOp()], rhs, jumpTarget(ins))
	}
	return fmt.Sprintf("<unknown opcode %#02x>", uint8(op))
}

func jumpTarget(ins prog.Instruction) string {
	if ins.Reference != "" {
		return ins.Reference
	}
	return fmt.Sprintf("%+d", ins.Off)
}

// Print writes a function back as source: labels on their own lines,
// instructions indented, comments kept.
func Print(insns []prog.Instruction) string {
	var b strings.Builder
	for _, ins := range insns {
		for _, l := range ins.Labels {
			fmt.Fprintf(&b, "%s:\n", l)
		}
		b.WriteString("\t")
		b.WriteString(Format(ins))
		if ins.Comment != "" {
			b.WriteString("\t# " + ins.Comment)
		}
		b.WriteString("\n")
	}
	return b.String()
}
