package prog

import (
	"fmt"
	"testing"
)

// Every enum prints any value, in range or not, without panicking, and
// its parser inverts String on the values scenarios spell out.
func TestEnumStrings(t *testing.T) {
	for _, tt := range []struct {
		v    fmt.Stringer
		want string
	}{
		{SiteKind(0), "SiteKind(0)"}, {Indirect, "indirect"}, {Dynamic, "dynamic"}, {SiteKind(200), "SiteKind(200)"},
		{Reason(0), "Reason(0)"}, {FallEmpty, "empty"}, {Reason(9), "Reason(9)"},
		{FaultKind(0), "FaultKind(0)"}, {FaultInsn, "insn"},
		{Property(0), "Property(0)"}, {PropCalleeSaved, "callee-saved registers restored"},
		{CountRule(7), "CountRule(7)"}, {RuleInterp, "interp"},
		{Kernel(9), "Kernel(9)"}, {Linux618Series, "v6.18+series"}, {Linux61, "v6.1"},
		{EventKind(99), "EventKind(99)"}, {EvTailCall, "tail call"},
		{Field(0), "Field(0)"}, {FieldCached, "cached"}, {FieldTccPtr, "tcc_ptr"},
	} {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%T(%d).String() = %q, want %q", tt.v, tt.v, got, tt.want)
		}
	}
	for _, p := range Properties {
		if got, ok := ParseProperty(p.String()); !ok || got != p {
			t.Errorf("ParseProperty(%q) = %v, %v", p, got, ok)
		}
	}
	for _, k := range []FaultKind{FaultAccess, FaultBudget, FaultInsn} {
		if got, ok := ParseFaultKind(k.String()); !ok || got != k {
			t.Errorf("ParseFaultKind(%q) = %v, %v", k, got, ok)
		}
	}
	if _, ok := ParseFaultKind("FaultKind(0)"); ok {
		t.Errorf("ParseFaultKind accepts the zero value's name")
	}
	if _, err := ParseKernel("Kernel(9)"); err == nil {
		t.Errorf("ParseKernel accepts an out-of-range name")
	}
}

// FallReason checks in the JITs' order: bounds (not at a direct site),
// then the counter, then the slot.
func TestFallReason(t *testing.T) {
	for _, tt := range []struct {
		kind       SiteKind
		index, max uint32
		count      uint64
		empty      bool
		want       Reason
	}{
		{Indirect, 1, 4, 0, false, 0},
		{Static, 3, 4, MaxTailCallCnt - 1, false, 0},
		{Indirect, 4, 4, 0, false, FallBounds},
		{Dynamic, 4, 4, MaxTailCallCnt, true, FallBounds}, // bounds before the counter and the slot
		{Static, 0, 4, MaxTailCallCnt, true, FallLimit},   // the counter before the slot
		{Indirect, 0, 4, 0, true, FallEmpty},
		{Direct, 9, 0, 0, true, FallEmpty}, // no bounds check at a direct site
		{Direct, 9, 0, MaxTailCallCnt, true, FallLimit},
		{Direct, 9, 0, 0, false, 0},
	} {
		if got := FallReason(tt.kind, tt.index, tt.max, tt.count, tt.empty); got != tt.want {
			t.Errorf("FallReason(%s, %d, %d, %d, %v) = %v, want %v", tt.kind, tt.index, tt.max, tt.count, tt.empty, got, tt.want)
		}
	}
}

func TestParseKernel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Kernel
	}{
		{"v6.1", Linux61}, {"v6.18", Linux618}, {"v6.18+series", Linux618Series},
		{"upstream", Linux618}, {"patched", Linux618Series},
	} {
		if got, err := ParseKernel(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseKernel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "6.1", "v6.2", "Kernel(2)", "all"} {
		if _, err := ParseKernel(bad); err == nil {
			t.Errorf("ParseKernel(%q) accepted", bad)
		}
	}
}
