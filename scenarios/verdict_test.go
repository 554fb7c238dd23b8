package scenarios

import (
	"errors"
	"testing"

	"tailsim/prog"
)

func TestFailureString(t *testing.T) {
	e := Expect{Key: KeyR0, Source: "r0 = 2", Line: 9}
	ee := Expect{Key: KeyError, Errno: "ENOENT", Line: 12}
	v := prog.Violation{Property: prog.PropCountedOnce, At: prog.Loc{Prog: "entry", Slot: 4, Line: 7}, Addr: 0x1010, Machine: "entry+0x10", Insn: "jmp rcx", Detail: "counter 2, was 0"}
	for _, tt := range []struct {
		f    Failure
		want string
	}{
		{Failure{Kind: FailDiffers, Line: 5, Step: "run entry", Iter: 2, Repeat: 3, Arch: "arm64",
			Diffs: []Diff{{Field: FieldR0, Got: "1", Want: "2"}, {Field: FieldFault, Got: "no fault", Want: "access fault"}}},
			"line 5: run entry (iteration 2 of 3): arm64 differs from the reference model: r0 1 instead of 2; no fault instead of access fault"},
		{Failure{Kind: FailBroken, Line: 5, Step: "run entry", Iter: 1, Repeat: 1, Violation: &v},
			"line 5: run entry (iteration 1 of 1): counter incremented by one broken at tail call entry+4 (line 7), 0x1010 entry+0x10 (jmp rcx): counter 2, was 0"},
		{Failure{Kind: FailFault, Line: 5, Step: "run entry", Fault: &prog.Fault{Kind: prog.FaultBudget, At: prog.Loc{Prog: "entry", Slot: 1}, Msg: "spent"}},
			"line 5: run entry: budget fault at entry+1: spent"},
		{Failure{Kind: FailExpect, Line: 9, Step: "run entry", Expect: &e, Got: "got 1"}, "line 9: expect r0 = 2: got 1"},
		{Failure{Kind: FailExpect, Line: 12, Step: "delete jt[1]", Expect: &ee, Got: "none"}, "line 12: delete jt[1]: expected error ENOENT, got none"},
		{Failure{Kind: FailHeld, Line: 5, Step: "run entry", Arch: "x86_64", Kernel: prog.Linux618Series},
			"line 5: run entry: expected x86_64/v6.18+series to depart from the reference model, but it agreed"},
		{Failure{Kind: FailHeld, Line: 5, Step: "run entry", Arch: "x86_64", Kernel: prog.Linux618Series, Property: prog.PropR1},
			`line 5: run entry: expected the check "R1 unchanged" to break on x86_64/v6.18+series, but it held`},
		{Failure{Kind: FailChange, Line: 3, Step: "delete jt[2]", Err: prog.ErrENOENT}, "line 3: delete jt[2] failed: ENOENT"},
		{Failure{Kind: FailError, Err: errors.New("x.txtar:4: bad")}, "x.txtar:4: bad"},
		{Failure{Kind: FailError, Line: 4, Step: "update jt[0] = a", Err: errors.New("no room")}, "line 4: update jt[0] = a: no room"},
		{Failure{Line: 4, Step: "run entry"}, "line 4: run entry: failure of kind FailureKind(0)"},
		// A kind without its pointer prints, not panics.
		{Failure{Kind: FailExpect, Line: 4, Step: "run entry", Got: "got 1"}, "line 4: run entry: an expectation: got 1"},
		{Failure{Kind: FailBroken, Line: 4, Step: "run entry"}, "line 4: run entry: <nil>"},
		{Failure{Kind: FailFault, Line: 4, Step: "run entry"}, "line 4: run entry: <nil>"},
	} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.f.Kind, got, tt.want)
		}
	}
	if Status(0).String() != "Status(0)" || Status(9).String() != "Status(9)" || Key(0).String() != "Key(0)" {
		t.Errorf("zero or out-of-range values print as %q, %q, %q", Status(0), Status(9), Key(0))
	}
}
