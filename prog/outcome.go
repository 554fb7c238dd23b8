package prog

import (
	"fmt"
	"strings"
)

// MaxTailCallCnt is MAX_TAIL_CALL_CNT: at most 33 tail calls per invocation.
const MaxTailCallCnt = 33

// Reason says why a tail call fell through.
type Reason uint8

const (
	// FallBounds: index >= max_entries.
	FallBounds Reason = iota + 1
	// FallLimit: the counter already reached MAX_TAIL_CALL_CNT.
	FallLimit
	// FallEmpty: the slot holds no program.
	FallEmpty
)

var reasonNames = [...]string{FallBounds: "bounds", FallLimit: "limit", FallEmpty: "empty"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ParseReason is the inverse of String.
func ParseReason(s string) (Reason, bool) {
	for i, n := range reasonNames {
		if n != "" && n == s {
			return Reason(i), true
		}
	}
	return 0, false
}

// CountRule selects when the tail-call counter is incremented.
type CountRule uint8

const (
	// RuleJIT: the x86-64 and arm64 JITs count only a tail call whose slot
	// holds a program.
	RuleJIT CountRule = iota
	// RuleInterp: kernel/bpf/core.c counts before the empty-slot check.
	RuleInterp
)

func (r CountRule) String() string { return [...]string{"jit", "interp"}[r] }

// EventKind classifies trace events.
type EventKind uint8

const (
	EvEnter    EventKind = iota // a program starts (entry or tail-call target)
	EvTailCall                  // a tail call, taken or not
	EvCall                      // a bpf2bpf call
	EvReturn                    // a subprogram returns
	EvHelper                    // a helper call
	EvExit                      // the top-level program returns
	EvNote                      // free text from a backend
)

// Event is one line of a run's trace.
type Event struct {
	Kind   EventKind
	Prog   string // program (and for calls, the function) concerned
	Func   string
	Site   string // where: "prog/func+insn" or a machine address
	Index  uint64 // tail call: R3 as the program left it
	Count  uint64 // tail call: counter before the attempt
	Reason Reason // tail call: 0 when taken
	Via    string // tail call: the path taken (direct, indirect, static, dynamic, interpreter)
	Helper int32
	Value  uint64 // exit: R0
	Text   string
}

func (e Event) String() string {
	switch e.Kind {
	case EvEnter:
		return fmt.Sprintf("enter %s", e.Prog)
	case EvTailCall:
		out := "taken"
		if e.Reason != 0 {
			out = "fell through: " + e.Reason.String()
		}
		via := ""
		if e.Via != "" {
			via = " (" + e.Via + ")"
		}
		return fmt.Sprintf("tail call at %s%s index=%#x count=%d -> %s", e.Site, via, e.Index, e.Count, out)
	case EvCall:
		return fmt.Sprintf("call %s from %s", e.Func, e.Site)
	case EvReturn:
		return fmt.Sprintf("return from %s r0=%#x", e.Func, e.Value)
	case EvHelper:
		return fmt.Sprintf("helper %d at %s", e.Helper, e.Site)
	case EvExit:
		return fmt.Sprintf("exit r0=%#x (%d)", e.Value, int64(e.Value))
	}
	return e.Text
}

// Fault is a run that could not finish: an invalid access, an invalid
// instruction, or an exhausted budget.
type Fault struct {
	Kind string // "access", "budget", "insn", ...
	Addr uint64 // faulting data address, when there is one
	Site string // where it happened
	Insn string // the instruction, disassembled
	Msg  string
}

func (f *Fault) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s fault", f.Kind)
	if f.Site != "" {
		fmt.Fprintf(&b, " at %s", f.Site)
	}
	if f.Insn != "" {
		fmt.Fprintf(&b, " (%s)", f.Insn)
	}
	if f.Msg != "" {
		fmt.Fprintf(&b, ": %s", f.Msg)
	}
	return b.String()
}

// Result is the outcome of one top-level invocation, in terms every backend
// can report and the runner can compare.
type Result struct {
	R0    uint64
	Count uint64   // the shared tail-call counter at the end
	Path  []string // programs entered, in order
	Falls []Reason // failed tail calls, in order
	Ctx   []byte   // ctx memory afterwards
	Fault *Fault
	// R0Dead is set when the program exited with the R0 a failed tail call
	// left undefined (possible only without the verifier, as in
	// lib/test_bpf): R0 is then not compared between backends.
	R0Dead bool
	Steps  int // instructions executed
	Trace  []Event
	// Violations are broken machine-level properties an emulated backend
	// checked at tail calls and at the top-level return.
	Violations []Violation
}

// Violation is one broken property, located in the machine code.
type Violation struct {
	Property string // "lands at the tail-call entry", "stack balanced", ...
	Addr     uint64
	Where    string // symbolised address: prog/func+0xoff
	Insn     string // the instruction there, disassembled
	Detail   string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s broken at %#x %s (%s): %s", v.Property, v.Addr, v.Where, v.Insn, v.Detail)
}
