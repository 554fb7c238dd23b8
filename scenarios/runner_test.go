package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"tailsim/prog"
)

func mustParse(t *testing.T, src string) *Scenario {
	t.Helper()
	sc, err := Parse("t.txtar", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestRunChecksExpectations(t *testing.T) {
	tests := []struct {
		name, expect string
		status       Status
		failure      string
	}{
		{"r0 right", "expect r0 = 1", Pass, ""},
		{"r0 wrong", "expect r0 = 2", Fail, "got 1"},
		{"w0", "expect w0 = 1", Pass, ""},
		{"count", "expect count = 1", Pass, ""},
		{"count wrong", "expect count = 0", Fail, "got 1"},
		{"path", "expect path = entry leaf", Pass, ""},
		{"path wrong", "expect path = entry*2", Fail, "got entry leaf"},
		{"no fall-through", "expect fallthrough = none", Pass, ""},
		{"fall-through wrong", "expect fallthrough = empty", Fail, "got none"},
		{"fault expected but none", "expect fault", Fail, "without a fault"},
		{"scoped to another arch", "expect[x86_64] r0 = 99", Pass, ""},
		{"scoped to this kernel", "expect[ref/v6.18] r0 = 99", Fail, "got 1"},
		{"scoped by its old name", "expect[ref/upstream] r0 = 99", Fail, "got 1"},
		{"interp rule", "expect interp.count = 1", Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := mustParse(t, strings.Replace(good, "expect r0 = 1", tt.expect, 1))
			rep := Run(sc, Ref{}, prog.Linux618, Options{})
			if rep.Status != tt.status {
				t.Fatalf("status %s, want %s (%v)", rep.Status, tt.status, rep.Failures)
			}
			if tt.failure != "" && (len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].String(), tt.failure)) {
				t.Errorf("failures %q, want one containing %q", rep.Failures, tt.failure)
			}
		})
	}
}

func TestRunMapSteps(t *testing.T) {
	src := strings.Replace(good, "expect r0 = 1\n", `expect r0 = 1
delete jt[1]
run entry
expect r0 = 7
expect fallthrough = empty
expect count = 0
delete jt[1]
expect error = ENOENT
delete jt[9]
expect error = E2BIG
update jt[0] = leaf
run entry
expect fallthrough = empty
`, 1)
	rep := Run(mustParse(t, src), Ref{}, prog.Linux618Series, Options{})
	if rep.Status != Pass {
		t.Fatalf("%s: %v", rep.Status, rep.Failures)
	}
	// An unexpected map error is a failure, not silence.
	rep = Run(mustParse(t, strings.Replace(good, "expect r0 = 1\n", "expect r0 = 1\ndelete jt[2]\n", 1)), Ref{}, prog.Linux618, Options{})
	if rep.Status != Fail || !strings.Contains(rep.Failures[0].String(), "ENOENT") {
		t.Fatalf("unexpected ENOENT not reported: %s %v", rep.Status, rep.Failures)
	}
}

// A kept run carries the prog arrays as it found them, which the slot
// changes after it leave alone.
func TestRunKeepsArrays(t *testing.T) {
	src := strings.Replace(good, "expect r0 = 1\n", "expect r0 = 1\ndelete jt[1]\nrun entry\n", 1)
	keep := func(Step, int) bool { return true }
	rep := Run(mustParse(t, src), Ref{}, prog.Linux618, Options{Keep: keep})
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs kept, want 2", len(rep.Runs))
	}
	var got []string
	for _, r := range rep.Runs {
		if len(r.Arrays) != 1 || r.Arrays[0].Name != "jt" {
			t.Fatalf("arrays %v", r.Arrays)
		}
		slot := "empty"
		if p := r.Arrays[0].Ptr(1); p != nil {
			slot = p.Name
		}
		got = append(got, slot)
	}
	if want := []string{"leaf", "empty"}; !slices.Equal(got, want) {
		t.Errorf("jt[1] as the runs found it: %v, want %v", got, want)
	}
}

func TestRunNotesRuleDivergence(t *testing.T) {
	// An empty slot then a good one: the interpreter counts both.
	src := `rules
-- maps --
jt max_entries=4
-- prog entry --
	r6 = r1
	r2 = map[jt]
	w3 = 2
	call bpf_tail_call
	r1 = r6
	r2 = map[jt]
	w3 = 1
	call bpf_tail_call
	r0 = 7
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- run --
run entry
expect count = 1
expect interp.count = 2
`
	rep := Run(mustParse(t, src), Ref{}, prog.Linux618, Options{})
	if rep.Status != Pass {
		t.Fatalf("%s: %v", rep.Status, rep.Failures)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "count 2 instead of 1") || !strings.Contains(rep.Notes[0], "the kernel interpreter (") {
		t.Errorf("notes %q", rep.Notes)
	}
	// The same two calls in a subprogram: the kernel interpreter would not
	// load the program, and the note says so instead of what it would give.
	sub := strings.Replace(strings.Replace(src, "-- prog entry --", "-- prog entry --\n\tcall two\n\texit\n-- subprog two --", 1), "expect interp.count = 2\n", "", 1)
	rep = Run(mustParse(t, sub), Ref{}, prog.Linux618, Options{})
	if rep.Status != Pass {
		t.Fatalf("%s: %v", rep.Status, rep.Failures)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "the kernel interpreter refuses program entry") {
		t.Errorf("notes with a subprogram %q", rep.Notes)
	}
}

// liar is a backend that reports a wrong R0: the runner must catch it by
// comparison with the reference model even without an r0 expectation.
type liar struct{ Ref }

func (liar) Name() string { return "x86_64" }
func (l liar) Load(w *prog.World, v prog.Kernel, o LoadOptions) (Machine, error) {
	m, err := l.Ref.Load(w, v, o)
	return lyingMachine{m}, err
}

type lyingMachine struct{ Machine }

func (m lyingMachine) Run(p *prog.Program, ctx []byte) *prog.Result {
	r := m.Machine.Run(p, ctx)
	r.R0++
	return r
}

func TestRunComparesWithReference(t *testing.T) {
	sc := mustParse(t, strings.Replace(good, "expect r0 = 1\n", "expect count = 1\n", 1))
	rep := Run(sc, liar{}, prog.Linux618, Options{Trace: true})
	if rep.Status != Fail || len(rep.Failures) != 1 || rep.Failures[0].Kind != FailDiffers || len(rep.Failures[0].Diffs) != 1 || rep.Failures[0].Diffs[0].Field != FieldR0 ||
		!strings.Contains(rep.Failures[0].String(), "differs from the reference model: r0 2 (0x2) instead of 1 (0x1)") {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
	if rep.Traced == nil || len(rep.Traced.Trace) == 0 {
		t.Error("no trace for the failing run")
	}
}

func TestRunFaultsAreFindings(t *testing.T) {
	src := `fault
-- prog entry --
	r0 = *(u64 *)(r1 + 0)
	exit
-- run --
run entry
`
	rep := Run(mustParse(t, src), Ref{}, prog.Linux618, Options{})
	if rep.Status != Fail || !strings.Contains(rep.Failures[0].String(), "access fault at entry+0") || !strings.Contains(rep.Failures[0].String(), "0x0") {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
	rep = Run(mustParse(t, src+"expect fault = access\n"), Ref{}, prog.Linux618, Options{})
	if rep.Status != Pass {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
	loop := "loop\n-- config --\nbudget 1000\n-- prog entry --\n\tr0 = 0\nl:\n\tgoto l\n-- run --\nrun entry\nexpect fault = budget\n"
	rep = Run(mustParse(t, loop), Ref{}, prog.Linux618, Options{})
	if rep.Status != Pass {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
}

func TestTabAfterExpect(t *testing.T) {
	sc := mustParse(t, strings.Replace(good, "expect r0 = 1", "expect\tr0 = 1", 1))
	if e := sc.Steps[0].Expect[0]; e.Key != KeyR0 || e.Value != 1 {
		t.Fatalf("%+v", e)
	}
}

func TestDeadR0(t *testing.T) {
	// Without the verifier a program may exit with the R0 a failed tail
	// call left undefined; expecting a value of it is a failure, and it is
	// not compared between backends.
	src := `dead r0
-- config --
verifier off
-- maps --
jt max_entries=1
-- prog entry --
	r2 = map[jt]
	w3 = 0
	call bpf_tail_call
	exit
-- run --
run entry
expect r0 = 0
`
	rep := Run(mustParse(t, src), Ref{}, prog.Linux618, Options{})
	if rep.Status != Fail || !strings.Contains(rep.Failures[0].String(), "r0 is undefined") {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
	rep = Run(mustParse(t, strings.Replace(src, "expect r0 = 0", "expect fallthrough = empty", 1)), liar{}, prog.Linux618, Options{})
	if rep.Status != Pass {
		t.Fatalf("a dead R0 was compared: %s %q", rep.Status, rep.Failures)
	}
}

func TestStackBounds(t *testing.T) {
	// Through a copy of r10 moved by constants the verifier-like pass
	// follows the offset: an access beyond the declared stack is refused
	// at its line (the JITs' frames and the model's would differ).
	src := `stack
-- prog entry stack=8 --
	r3 = r10
	*(u64 *)(r3 - 16) = 1
	r0 = 0
	exit
-- run --
run entry
`
	if _, err := Parse("t.txtar", []byte(src)); err == nil || !strings.Contains(err.Error(), "t.txtar:4: entry touches r10 - 16 through r3, below the 8-byte frame it declares (stack=8)") {
		t.Errorf("an access below the frame through a copy: %v", err)
	}
	// Without the verifier the model faults on it.
	off := strings.Replace(src, "stack\n", "stack\n-- config --\nverifier off\n", 1) + "expect fault = access\n"
	if rep := Run(mustParse(t, off), Ref{}, prog.Linux618, Options{}); rep.Status != Pass {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
}

// A set step writes ctx between runs, on every backend's copy.
func TestSetStep(t *testing.T) {
	src := `set
-- prog entry --
	r0 = *(u32 *)(r1 + 0)
	exit
-- ctx --
u32 5
-- run --
run entry
expect r0 = 5
set ctx+0 u32 = 9
run entry
expect r0 = 9
set ctx+0 bytes = 01 02
run entry
expect r0 = 0x0201
`
	for _, b := range []Backend{Ref{}, liar{}} {
		rep := Run(mustParse(t, src), b, prog.Linux618, Options{})
		if _, lying := b.(liar); lying {
			// The liar adds one to R0; the comparison catches every run,
			// which shows each saw the value the set step wrote.
			if len(rep.Failures) < 3 {
				t.Errorf("liar: %q", rep.Failures)
			}
			continue
		}
		if rep.Status != Pass {
			t.Errorf("%s: %q", b.Name(), rep.Failures)
		}
	}
}

// breaker reports a broken machine-level property on every run.
type breaker struct{ Ref }

func (breaker) Name() string { return "x86_64" }
func (b breaker) Load(w *prog.World, v prog.Kernel, o LoadOptions) (Machine, error) {
	m, err := b.Ref.Load(w, v, o)
	return breakingMachine{m}, err
}

type breakingMachine struct{ Machine }

// w0 compares R0's low half only.
func TestW0LowHalf(t *testing.T) {
	src := strings.Replace(good, "-- prog leaf --\n\tr0 = 1\n", "-- prog leaf --\n\tr0 = 0x100000001 ll\n", 1)
	for _, tc := range []struct {
		expect string
		want   Status
	}{{"expect w0 = 1", Pass}, {"expect r0 = 0x100000001", Pass}, {"expect r0 = 1", Fail}} {
		sc := mustParse(t, strings.Replace(src, "expect r0 = 1", tc.expect, 1))
		if rep := Run(sc, Ref{}, prog.Linux618, Options{}); rep.Status != tc.want {
			t.Errorf("%s: %s %v", tc.expect, rep.Status, rep.Failures)
		}
	}
}

// unbroken is a backend named like an emulated arch whose checks all hold.
type unbroken struct{ Ref }

func (unbroken) Name() string { return "x86_64" }

func (m breakingMachine) Run(p *prog.Program, ctx []byte) *prog.Result {
	r := m.Machine.Run(p, ctx)
	r.Violations = append(r.Violations, prog.Violation{Property: prog.PropR1, Machine: "entry+0x10", Insn: "jmp rcx"})
	return r
}

func TestExpectBroken(t *testing.T) {
	plain := mustParse(t, good)
	if rep := Run(plain, breaker{}, prog.Linux618, Options{}); rep.Status != Fail || rep.Failures[0].Kind != FailBroken || rep.Failures[0].Violation.Property != prog.PropR1 || !strings.Contains(rep.Failures[0].String(), "R1 unchanged broken") {
		t.Errorf("an unexpected violation must fail: %s %q", rep.Status, rep.Failures)
	}
	stated := mustParse(t, strings.Replace(good, "expect r0 = 1", "expect r0 = 1\nexpect[x86_64] broken = R1 unchanged", 1))
	rep := Run(stated, breaker{}, prog.Linux618, Options{})
	if rep.Status != Pass || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "as expected") {
		t.Errorf("an expected violation is a note: %s %q %q", rep.Status, rep.Failures, rep.Notes)
	}
	held := mustParse(t, strings.Replace(good, "expect r0 = 1", "expect r0 = 1\nexpect[x86_64] broken = R1 unchanged", 1))
	if rep := Run(held, unbroken{}, prog.Linux618, Options{}); rep.Status != Fail || rep.Failures[0].Kind != FailHeld || rep.Failures[0].Property != prog.PropR1 || !strings.Contains(rep.Failures[0].String(), "but it held") {
		t.Errorf("an expected violation that does not happen fails: %s %q", rep.Status, rep.Failures)
	}
}

// RunAll runs each scenario on the combos its arch and kernel lines
// leave of the selection, scenarios in order.
func TestRunAll(t *testing.T) {
	any := mustParse(t, good)
	onlyPatched := mustParse(t, strings.Replace(good, "-- maps --", "-- config --\nkernel v6.18+series\n-- maps --", 1))
	onlyX86 := mustParse(t, strings.Replace(good, "-- maps --", "-- config --\narch x86_64\n-- maps --", 1))
	reports := RunAll([]*Scenario{any, onlyPatched, onlyX86}, []Backend{Ref{}}, prog.Kernels, nil, Options{})
	var got []string
	for _, r := range reports {
		got = append(got, fmt.Sprintf("%p/%s/%s", r.Scenario, r.Kernel, r.Status))
	}
	want := []string{fmt.Sprintf("%p/v6.1/pass", any), fmt.Sprintf("%p/v6.18/pass", any), fmt.Sprintf("%p/v6.18+series/pass", any),
		fmt.Sprintf("%p/v6.18+series/pass", onlyPatched)}
	if !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
}

// refuser is a backend whose loads fail, or, with applyErr, whose
// machine cannot mirror a slot change.
type refuser struct {
	Ref
	loadErr, applyErr error
}

func (refuser) Name() string { return "x86_64" }
func (r refuser) Load(w *prog.World, v prog.Kernel, o LoadOptions) (Machine, error) {
	if r.loadErr != nil {
		return nil, r.loadErr
	}
	m, err := r.Ref.Load(w, v, o)
	return refusingMachine{m, r.applyErr}, err
}

type refusingMachine struct {
	Machine
	err error
}

func (m refusingMachine) Apply(prog.Effect) error { return m.err }

// A backend that cannot load or apply a step makes the report Errored,
// the error its last failure, after those of the steps before it.
func TestRunErrored(t *testing.T) {
	rep := Run(mustParse(t, good), refuser{loadErr: errors.New("no room")}, prog.Linux618, Options{})
	if rep.Status != Errored || len(rep.Failures) != 1 || rep.Failures[0].Kind != FailError || rep.Failures[0].String() != "no room" {
		t.Errorf("load error: %s %q", rep.Status, rep.Failures)
	}
	src := strings.Replace(good, "expect r0 = 1\n", "expect r0 = 5\ndelete jt[1]\nrun entry\n", 1)
	rep = Run(mustParse(t, src), refuser{applyErr: errors.New("write refused")}, prog.Linux618, Options{})
	if rep.Status != Errored || len(rep.Failures) != 2 || rep.Failures[0].Kind != FailExpect || rep.Failures[1].Kind != FailError ||
		rep.Failures[1].String() != "line 18: delete jt[1]: write refused" {
		t.Errorf("apply error: %s %q", rep.Status, rep.Failures)
	}
}

// -v keeps the trace of the first failing run of a report.
func TestRunKeepsFirstTrace(t *testing.T) {
	src := strings.Replace(good, "expect r0 = 1\n", "expect r0 = 1\nrun leaf\n", 1)
	rep := Run(mustParse(t, src), liar{}, prog.Linux618, Options{Trace: true})
	if rep.Status != Fail || len(rep.Failures) != 3 || rep.Failures[2].Step != "run leaf" {
		t.Fatalf("%s %q", rep.Status, rep.Failures)
	}
	if rep.Traced == nil || len(rep.Traced.Path) == 0 || rep.Traced.Path[0] != "entry" {
		t.Errorf("trace of %v, want the first failing run's (entry)", rep.Traced)
	}
}

// slowpoke is a backend whose runs meet the wall-clock safety net.
type slowpoke struct{ Ref }

func (slowpoke) Name() string { return "x86_64" }
func (s slowpoke) Load(w *prog.World, v prog.Kernel, o LoadOptions) (Machine, error) {
	m, err := s.Ref.Load(w, v, o)
	return slowMachine{m}, err
}

type slowMachine struct{ Machine }

func (slowMachine) Run(*prog.Program, []byte) *prog.Result {
	return &prog.Result{Fault: &prog.Fault{Kind: prog.FaultSlow, Msg: "the machine is too slow"}}
}

// A machine too slow for a run's budget gives no verdict: the report is
// an error wrapping prog.ErrTooSlow, not a failed check.
func TestRunTooSlow(t *testing.T) {
	rep := Run(mustParse(t, good), slowpoke{}, prog.Linux618, Options{})
	if rep.Status != Errored || len(rep.Failures) != 1 || !errors.Is(rep.Failures[0].Err, prog.ErrTooSlow) {
		t.Errorf("%s %q", rep.Status, rep.Failures)
	}
}
