package prog

import "fmt"

// The verifier's rules for the ctx pointer (PTR_TO_CTX), as 6.1 and v6.18
// apply them to a privileged load (kernel/bpf/verifier.c): tailsim's ctx is
// plain memory that takes any access, so without these a scenario could do
// what no kernel loads. The analysis follows R1 from the main function's
// entry through 64-bit moves, constant offsets and calls; a ctx pointer
// spilled to the stack, or moved by an amount the analysis does not know,
// is not followed (it is then not checked). The analysis walks every path
// the control flow has, where the verifier skips a branch a known value
// decides, so a refusal on such a dead path is tailsim's alone. Only what
// the kernel refuses for certain is refused: where the kernel might know
// more (a value it tracks and tailsim does not), tailsim lets it pass.

// aluVerb is bpf_alu_string[], the operator as the verifier's messages
// print it.
var aluVerb = map[ALUOp]string{OpAdd: "+=", OpSub: "-=", OpMul: "*=", OpDiv: "/=", OpOr: "|=", OpAnd: "&=",
	OpLsh: "<<=", OpRsh: ">>=", OpNeg: "neg", OpMod: "%=", OpXor: "^=", OpMov: "=", OpArsh: "s>>="}

func isPointer(a aval) bool { return a.kind == aCtx || a.kind == aStack || a.kind == aMaps }

// ctxALU is adjust_reg_min_max_vals() and adjust_ptr_min_max_vals() for
// an ALU instruction with a ctx pointer on either side (handled false
// otherwise), given the source operand's value (the immediate's for
// BPF_K): the new dst, or the verifier's refusal.
func ctxALU(ins Instruction, dst, src aval) (aval, bool, error) {
	op := ins.OpCode
	alu := op.ALUOp()
	if alu == OpMov || dst.kind != aCtx && src.kind != aCtx {
		return aval{}, false, nil
	}
	refuse := func(format string, args ...any) (aval, bool, error) {
		return aval{}, true, &PosError{Line: ins.Line, Msg: fmt.Sprintf(format+" (the verifier refuses this on the ctx pointer)", args...)}
	}
	if alu == OpNeg {
		// check_alu_op(): root may negate a pointer; the result is a scalar.
		return aval{}, true, nil
	}
	ptr, off := dst, src // ctx and the amount it moves by
	if dst.kind != aCtx {
		ptr, off = src, dst
	}
	if isPointer(dst) && isPointer(src) {
		// Two pointers: root may subtract them (an unknown scalar).
		if alu == OpSub {
			return aval{}, true, nil
		}
		return refuse("R%d pointer %s pointer prohibited", ins.Dst, aluVerb[alu])
	}
	if op.Class() != ClassALU64 {
		if alu == OpSub {
			return aval{}, true, nil // 32-bit: a meaningless scalar, which root may make
		}
		return refuse("R%d 32-bit pointer arithmetic prohibited", ins.Dst)
	}
	switch alu {
	case OpAdd:
		if off.kind == aConst {
			return aval{kind: aCtx, c: ptr.c + off.c}, true, nil
		}
		// An amount the analysis does not know, which the kernel may
		// (a tnum, a branch): not followed.
		return aval{}, true, nil
	case OpSub:
		if dst.kind != aCtx {
			if dst.kind == aConst {
				return refuse("R%d tried to subtract pointer from scalar", ins.Dst)
			}
			return aval{}, true, nil // dst may be a pointer tailsim does not follow
		}
		if off.kind == aConst {
			return aval{kind: aCtx, c: ptr.c - off.c}, true, nil
		}
		return aval{}, true, nil
	case OpAnd, OpOr, OpXor:
		return refuse("R%d bitwise operator %s on pointer prohibited", ins.Dst, aluVerb[alu])
	}
	return refuse("R%d pointer arithmetic with %s operator prohibited", ins.Dst, aluVerb[alu])
}

// checkCtxAccess is the ctx case of check_mem_access() and, before v6.4,
// of do_check()'s BPF_ST: an immediate is not stored through ctx, and ctx
// is accessed only through the pointer as it came (check_ptr_off_reg()).
func checkCtxAccess(ins Instruction, base aval, reg Register, k Kernel) error {
	if base.kind != aCtx {
		return nil
	}
	op := ins.OpCode
	switch {
	case op.IsMemStore() && op.Class() == ClassST && !k.StoresImmIntoCtx():
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("BPF_ST stores into R%d ctx is not allowed (the verifier refuses an immediate stored through ctx)", reg)}
	case int64(base.c) < 0:
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("negative offset ctx ptr R%d off=%d disallowed", reg, int64(base.c))}
	case base.c != 0:
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("dereference of modified ctx ptr R%d off=%d disallowed (the verifier accesses ctx only through the pointer as it came)", reg, int64(base.c))}
	}
	return nil
}

// checkTailCallCtx is check_func_arg() for bpf_tail_call's first argument,
// ARG_PTR_TO_CTX: the ctx pointer as it came. R1 is refused only when the
// analysis knows it holds something else (a constant, the stack, a map);
// a ctx reloaded from a spill is not followed.
func checkTailCallCtx(ins Instruction, r1 aval) error {
	switch r1.kind {
	case aConst, aStack, aMaps:
		what := map[akind]string{aConst: "scalar", aStack: "fp", aMaps: "map_ptr"}[r1.kind]
		return &PosError{Line: ins.Line, Msg: fmt.Sprintf("R1 type=%s expected=ctx (bpf_tail_call's first argument is the ctx pointer)", what)}
	case aCtx:
		if r1.c != 0 {
			return &PosError{Line: ins.Line, Msg: "dereference of modified ctx ptr R1 disallowed (bpf_tail_call's first argument is the ctx pointer as it came)"}
		}
	}
	return nil
}
