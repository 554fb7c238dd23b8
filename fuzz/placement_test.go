package fuzz

import (
	"fmt"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// buildCase parses and builds a case's scenario.
func buildCase(t testing.TB, c Case) (*scenarios.Scenario, *prog.World) {
	t.Helper()
	return buildText(t, "case.txtar", c.Text())
}

// buildText parses and builds a scenario the test wrote.
func buildText(t testing.TB, name, text string) (*scenarios.Scenario, *prog.World) {
	t.Helper()
	sc, err := scenarios.Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	w, err := sc.Build()
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return sc, w
}

func compileCase(t *testing.T, c Case) []*emu.Loaded {
	t.Helper()
	_, w := buildCase(t, c)
	ls, err := emu.CompileX86(w, prog.Linux618Series, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// addrs maps "prog/fn" to where a case's function images load.
func addrs(t *testing.T, c Case) map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range compileCase(t, c) {
		out[l.Prog.Name+"/"+l.Prog.Funcs[l.Fn].Name] = l.Addr
	}
	return out
}

// Functions load at addresses that depend on their own shape: cases that
// differ only in constants share every address, so Unicorn keeps the
// translations of all but the changed bytes; a case with another entry
// frame moves the entry and keeps the leaf where it was.
func TestSameShapeSameAddresses(t *testing.T) {
	base := FromParams(4, 1, 0)
	other := base
	other.MaxEntries, other.Index = 0x5a5a, 3
	deeper := base
	deeper.Stack = 64
	a, b, c := addrs(t, base), addrs(t, other), addrs(t, deeper)
	if len(a) != 2 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("cases of one shape load at %v and %v", a, b)
	}
	if c["entry/entry"] == a["entry/entry"] || c["target/target"] != a["target/target"] {
		t.Errorf("another entry frame: %v, was %v", c, a)
	}
}
