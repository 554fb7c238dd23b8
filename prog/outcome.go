package prog

import (
	"errors"
	"fmt"
	"strings"
)

//go:generate go tool stringer -type=Reason,CountRule,EventKind,FaultKind,Property -linecomment -output=outcome_string.go

// MaxTailCallCnt is MAX_TAIL_CALL_CNT: at most 33 tail calls per invocation.
const MaxTailCallCnt = 33

// Reason says why a tail call fell through; the zero Reason is a call
// that was taken.
type Reason uint8

const (
	FallBounds Reason = iota + 1 // bounds
	FallLimit                    // limit
	FallEmpty                    // empty
)

// ParseReason is the inverse of String.
func ParseReason(s string) (Reason, bool) { return byName(s, FallBounds, FallLimit, FallEmpty) }

// byName finds the value among values whose String is s: the inverse of
// a generated String for the enums scenarios spell out.
func byName[T interface {
	~uint8
	String() string
}](s string, values ...T) (T, bool) {
	for _, v := range values {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// FallReason says why a tail call at a site of the given kind did not
// jump, in the order the JITs test (docs/kernel.md §1): the bounds check
// (absent at a direct site, whose key the verifier bounded), then the
// counter, then the slot. It returns 0 for a call that is taken. Both the
// reference model, which decides the call, and the emulators, which see
// only that the code fell through (empty is then true), use it, so the
// two cannot disagree about the order.
func FallReason(kind SiteKind, index, maxEntries uint32, count uint64, empty bool) Reason {
	switch {
	case kind != Direct && index >= maxEntries:
		return FallBounds
	case count >= MaxTailCallCnt:
		return FallLimit
	case empty:
		return FallEmpty
	}
	return 0
}

// CountRule selects when the tail-call counter is incremented.
type CountRule uint8

const (
	// RuleJIT: the x86-64 and arm64 JITs count only a tail call whose slot
	// holds a program.
	RuleJIT CountRule = iota // jit
	// RuleInterp: kernel/bpf/core.c counts before the empty-slot check.
	RuleInterp // interp
)

// EventKind classifies trace events.
type EventKind uint8

const (
	// EvEnter: a program starts (the entry, or a tail call's target).
	EvEnter EventKind = iota + 1 // enter
	// EvTailCall: a tail call, taken or not.
	EvTailCall // tail call
	// EvCall: a bpf2bpf call; EvReturn: a subprogram returns.
	EvCall   // call
	EvReturn // return
	// EvHelper: a helper call.
	EvHelper // helper
	// EvExit: the top-level program returns.
	EvExit // exit
	// EvNote: free text from a backend.
	EvNote // note
	// EvPreset: the run's first tail call finds the counter preset to
	// Count (CountPresetter), not the 0 the prologue stored.
	EvPreset // preset
	// EvHelperDone: an emulated helper (CallHelper) returned; Text is the
	// call with its arguments and result, since what it read and wrote
	// happened outside the program's instructions.
	EvHelperDone // helper done
)

// Event is one line of a run's trace.
type Event struct {
	Kind EventKind
	Prog string // program (and for calls, the function) concerned
	Func string
	// At is the BPF instruction (the tail call, call or helper call);
	// Machine, when a backend has machine code, is where in it.
	At      Loc
	Machine string
	Index   uint64 // tail call: R3 as the program left it
	Count   uint64 // tail call: counter before the attempt
	Reason  Reason // tail call: 0 when taken
	// Path is the tail call's path (direct, indirect, static, dynamic);
	// Rule the counting rule of the run that made the event.
	Path   SiteKind
	Rule   CountRule
	Helper int32
	Value  uint64 // exit: R0
	Text   string
	// Step places the event in a stepped run: before Execs[Step].
	Step int
}

// where is the event's place: the BPF location, then @ the machine's.
func where(at Loc, machine string) string {
	switch {
	case at.IsZero():
		return machine
	case machine == "":
		return at.String()
	}
	return at.String() + " @" + machine
}

// Via names how a tail call went: its path, or "interpreter" for the
// kernel interpreter's rule, which reads ptrs[] whatever the path.
func (e Event) Via() string {
	switch {
	case e.Rule == RuleInterp:
		return "interpreter"
	case e.Path != 0:
		return e.Path.String()
	}
	return ""
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
		if v := e.Via(); v != "" {
			via = " (" + v + ")"
		}
		return fmt.Sprintf("tail call at %s%s index=%#x count=%d -> %s", where(e.At, e.Machine), via, e.Index, e.Count, out)
	case EvCall:
		return fmt.Sprintf("call %s from %s", e.Func, where(e.At, e.Machine))
	case EvReturn:
		return fmt.Sprintf("return from %s r0=%#x", e.Func, e.Value)
	case EvHelper:
		name := fmt.Sprint(e.Helper)
		if h, ok := HelperByID(e.Helper); ok {
			name = fmt.Sprintf("bpf_%s (%d)", h.Name, h.ID)
		}
		return fmt.Sprintf("helper %s at %s", name, where(e.At, e.Machine))
	case EvExit:
		return fmt.Sprintf("exit r0=%#x (%d)", e.Value, int64(e.Value))
	case EvPreset:
		return fmt.Sprintf("tail_call_cnt preset to %d, as %d taken tail calls would have left it", e.Count, e.Count)
	}
	return e.Text
}

// FaultKind says why a run could not finish. The zero FaultKind is not a
// fault: a Fault always has one of the kinds below.
type FaultKind uint8

const (
	FaultAccess FaultKind = iota + 1 // access
	FaultBudget                      // budget
	FaultInsn                        // insn
	// FaultSlow is not the program's: an emulator met its wall-clock
	// safety net before the budget. The runner reports it as an error of
	// the machine, never as a finding.
	FaultSlow // slow
)

// ParseFaultKind is the inverse of String.
func ParseFaultKind(s string) (FaultKind, bool) {
	return byName(s, FaultAccess, FaultBudget, FaultInsn)
}

// ErrTooSlow is a run an emulator could not finish in wall time before
// its budget: the machine's problem, not the program's.
var ErrTooSlow = errors.New("the machine is too slow for the run's budget")

// TailOutcome is what became of one tail call: its path, the counter
// before it, and why it fell through (0: taken).
type TailOutcome struct {
	Path   SiteKind
	Count  uint64
	Reason Reason
}

// Fault is a run that could not finish: an invalid access, an invalid
// instruction, or an exhausted budget.
type Fault struct {
	Kind FaultKind
	Addr uint64 // faulting data address, when there is one
	// At is the BPF instruction, when the backend knows it; Machine is the
	// machine code's location, for emulated backends.
	At      Loc
	Machine string
	Insn    string // the instruction, disassembled
	Msg     string
}

func (f *Fault) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s fault", f.Kind)
	if w := where(f.At, f.Machine); w != "" {
		fmt.Fprintf(&b, " at %s", w)
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
	// Maps are the array maps' values afterwards, by name (nil when the
	// world has none).
	Maps  map[string][]byte
	Fault *Fault
	// R0Dead is set when the program exited with the R0 a failed tail call
	// left undefined (possible only without the verifier, as in
	// lib/test_bpf): R0 is then not compared between backends.
	R0Dead bool
	Steps  int // instructions executed
	Trace  []Event
	// Calls are the tail calls the run made, in order: cheap enough to
	// keep for every run, for a fuzzer's coverage.
	Calls []TailOutcome
	// Execs are the instructions executed, one by one, and Costs what each
	// tail call cost: stepped runs only (LoadOptions.Step).
	Execs []Exec
	Costs []TailCost
	// Violations are broken machine-level properties an emulated backend
	// checked at tail calls and at the top-level return.
	Violations []Violation
}

// Property is a machine-level check an emulated backend makes at every
// tail call and at the top-level return; its String is the name
// scenarios use in "expect broken = PROPERTY".
type Property uint8

const (
	PropLands           Property = iota + 1 // lands at the tail-call entry
	PropR1                                  // R1 unchanged
	PropSP                                  // stack pointer where the callee expects it
	PropCountedOnce                         // counter incremented by one
	PropCountKept                           // counter unchanged on fall-through
	PropCalleeSavedKept                     // callee-saved registers kept on fall-through
	PropResolves                            // tail call resolves
	PropStackBalanced                       // stack balanced at return
	PropCalleeSaved                         // callee-saved registers restored
	PropLandingPad                          // lands on a landing pad
	PropAuthenticated                       // return address authenticated
)

// Properties lists every property.
var Properties = []Property{PropLands, PropR1, PropSP, PropCountedOnce, PropCountKept, PropCalleeSavedKept, PropResolves, PropStackBalanced, PropCalleeSaved, PropLandingPad, PropAuthenticated}

// ParseProperty is the inverse of String.
func ParseProperty(s string) (Property, bool) { return byName(s, Properties...) }

// Violation is one broken property, located in the machine code and, for
// the checks made at a tail call, at the tail call's BPF instruction.
type Violation struct {
	Property Property
	At       Loc
	Addr     uint64
	Machine  string // symbolised address: prog/func+0xoff
	Insn     string // the instruction there, disassembled
	Detail   string
}

func (v Violation) String() string {
	at := ""
	if !v.At.IsZero() {
		at = "tail call " + v.At.String() + ", "
	}
	return fmt.Sprintf("%s broken at %s%#x %s (%s): %s", v.Property, at, v.Addr, v.Machine, v.Insn, v.Detail)
}

// CompactPath writes runs of one name as NAME*N, the syntax scenario
// expectations use: "self*34", "entry mid*2 leaf".
func CompactPath(p []string) string {
	var parts []string
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] == p[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s*%d", p[i], j-i))
		} else {
			parts = append(parts, p[i])
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// MaxRecorded bounds a run's recorded tail calls (Result.Calls), programs
// entered (Path) and fall-throughs (Falls), on every backend alike, so
// that a long run compares equal where it behaved alike. Correct code
// makes at most 33 tail calls per invocation, but a program may hold
// thousands of sites, and code whose limit check is broken (a known
// finding among them) makes one per few blocks until its budget: a
// million-block run recorded hundreds of thousands of entries, tens of MB
// per run in a fuzz campaign. Past the bound a run that departs from the
// model has long shown it.
const MaxRecorded = 1024

// Record appends v to s unless s already holds MaxRecorded entries.
func Record[T any](s []T, v T) []T {
	if len(s) >= MaxRecorded {
		return s
	}
	return append(s, v)
}
