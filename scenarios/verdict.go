package scenarios

import (
	"fmt"
	"strings"

	"tailsim/prog"
)

//go:generate go tool stringer -type=Status,FailureKind,Field,Key -linecomment -output=verdict_string.go

// Status is the verdict of one scenario on one (arch, variant). The zero
// Status is no verdict: a Report that was never finished says so rather
// than passing.
type Status uint8

const (
	_       Status = iota // no verdict yet
	Pass                  // pass
	Fail                  // fail
	Errored               // error
)

// FailureKind says which check a Failure reports. Tools that sort or
// deduplicate failures (the fuzzer) work on it and on the Failure's
// fields, never on the text.
type FailureKind uint8

const (
	_ FailureKind = iota // none
	// FailDiffers: the backend's result departs from the reference model's
	// (Diffs say where).
	FailDiffers // differs
	// FailBroken: a machine-level check broke (Violation).
	FailBroken // broken
	// FailFault: the run faulted and no expectation asked for it (Fault).
	FailFault // fault
	// FailExpect: an expectation did not hold (Expect, Got).
	FailExpect // expect
	// FailHeld: an expected broken check or divergence did not happen
	// (Property; 0 for the divergence).
	FailHeld // held
	// FailChange: an update or delete failed and no expectation asked for
	// it (Err).
	FailChange // change
	// FailError: the scenario could not run on this backend (Err): a JIT
	// refused it, an emulator could not load it. The report is Errored.
	FailError // error
)

// Field is one part of a result that backends report and the runner
// compares with the reference model.
type Field uint8

const (
	_          Field = iota // none
	FieldFault              // fault
	FieldR0                 // r0
	FieldCount              // count
	FieldPath               // path
	FieldFalls              // fall-throughs
	FieldCtx                // ctx
	FieldMaps               // maps
)

// Diff is one field on which a result departs from the reference model.
type Diff struct {
	Field     Field
	Got, Want string // as people read them
	// GotFault is the kind of the backend's fault on a FieldFault diff, 0
	// when it did not fault.
	GotFault prog.FaultKind
}

func (d Diff) String() string {
	if d.Field == FieldFault {
		return fmt.Sprintf("%s instead of %s", d.Got, d.Want)
	}
	return fmt.Sprintf("%s %s instead of %s", d.Field, d.Got, d.Want)
}

// Failure is one failed check of a report.
type Failure struct {
	Kind FailureKind
	// Line is the scenario line: the expectation's for FailExpect, else
	// the step's (0 for a FailError before any step).
	Line int
	Step string // the step as written ("run entry repeat=3"), "" if none
	// Iter and Repeat locate a run's failure among its repetitions
	// (1-based); 0 when the failure is not one iteration's.
	Iter, Repeat int
	Arch         string // the backend, for FailDiffers and FailHeld
	Kernel       prog.Kernel

	// The kind's own fields; the runner always sets the pointer a kind
	// names, and String copes when it is nil.
	Diffs     []Diff          // FailDiffers
	Violation *prog.Violation // FailBroken
	Fault     *prog.Fault     // FailFault
	Expect    *Expect         // FailExpect
	Got       string          // FailExpect: what was seen instead
	Property  prog.Property   // FailHeld: 0 for an expected divergence
	Err       error           // FailChange, FailError
}

// DiffString joins the diffs as reports print them.
func DiffString(ds []Diff) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

func (f Failure) String() string {
	var b strings.Builder
	if f.Line != 0 {
		fmt.Fprintf(&b, "line %d: ", f.Line)
	}
	step := f.Step
	if f.Iter > 0 {
		step = fmt.Sprintf("%s (iteration %d of %d)", f.Step, f.Iter, f.Repeat)
	}
	switch f.Kind {
	case FailDiffers:
		fmt.Fprintf(&b, "%s: %s differs from the reference model: %s", step, f.Arch, DiffString(f.Diffs))
	case FailBroken:
		fmt.Fprintf(&b, "%s: %s", step, f.Violation)
	case FailFault:
		fmt.Fprintf(&b, "%s: %v", step, f.Fault)
	case FailExpect:
		switch {
		case f.Expect == nil:
			fmt.Fprintf(&b, "%s: an expectation: %s", step, f.Got)
		case f.Expect.Key == KeyError:
			fmt.Fprintf(&b, "%s: expected error %s, got %s", step, f.Expect.Errno, f.Got)
		default:
			fmt.Fprintf(&b, "expect %s: %s", f.Expect.Source, f.Got)
		}
	case FailHeld:
		if f.Property == 0 {
			fmt.Fprintf(&b, "%s: expected %s/%s to depart from the reference model, but it agreed", step, f.Arch, f.Kernel)
		} else {
			fmt.Fprintf(&b, "%s: expected the check %q to break on %s/%s, but it held", step, f.Property, f.Arch, f.Kernel)
		}
	case FailChange:
		fmt.Fprintf(&b, "%s failed: %v", step, f.Err)
	case FailError:
		if step != "" {
			fmt.Fprintf(&b, "%s: ", step)
		}
		fmt.Fprintf(&b, "%v", f.Err)
	default:
		fmt.Fprintf(&b, "%s: failure of kind %s", step, f.Kind)
	}
	return b.String()
}
