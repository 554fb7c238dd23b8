package fuzz

import (
	"testing"

	"tailsim/scenarios"
)

// Every generated case is a valid scenario, and a seed always gives the
// same text.
func TestGeneratedCasesParse(t *testing.T) {
	for seed := uint64(0); seed < 500; seed++ {
		c := Generate(seed)
		if c.Text() != Generate(seed).Text() {
			t.Fatalf("seed %d is not deterministic", seed)
		}
		if _, err := scenarios.Parse("case.txtar", []byte(c.Text())); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, c.Text())
		}
	}
}
