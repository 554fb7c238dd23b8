package fuzz

import (
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// buildCase parses and builds a case's scenario.
func buildCase(t testing.TB, c Case) (*scenarios.Scenario, *prog.World) {
	t.Helper()
	sc, err := scenarios.Parse("case.txtar", []byte(c.Text()))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return sc, w
}

func compileCase(t *testing.T, c Case) []*emu.Loaded {
	t.Helper()
	_, w := buildCase(t, c)
	ls, err := emu.CompileX86(w, prog.Patched, false)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// Cases that differ only in constants load at the same code addresses, so
// Unicorn keeps the translations of everything but the changed bytes;
// cases of another shape go elsewhere.
func TestSameShapeSameAddresses(t *testing.T) {
	base := Generate(1)
	base.KeyConst, base.Poisoned = false, false
	other := base
	other.MaxEntries, other.Index = base.MaxEntries^0x5a5a, base.Index+3
	deeper := base
	deeper.Stack = 64
	if base.Stack == 64 {
		deeper.Stack = 24
	}
	a, b, c := compileCase(t, base), compileCase(t, other), compileCase(t, deeper)
	for i := range a {
		if a[i].Addr != b[i].Addr {
			t.Errorf("function %d: %#x and %#x for cases of one shape", i, a[i].Addr, b[i].Addr)
		}
	}
	if a[0].Addr == c[0].Addr && a[1].Addr == c[1].Addr {
		t.Errorf("a case with another frame size shares the addresses %#x, %#x", a[0].Addr, a[1].Addr)
	}
}
