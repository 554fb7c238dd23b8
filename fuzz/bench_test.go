package fuzz

import (
	"testing"

	"tailsim/emu"
	"tailsim/prog"
)

// BenchmarkCheck measures whole cases: generate, parse, build, and run on
// both emulated arches and both variants with the reference beside each.
func BenchmarkCheck(b *testing.B) {
	backends := []prog.Backend{emu.NewX86(false), emu.NewArm64(false, false)}
	seed := uint64(1000)
	for b.Loop() {
		seed++
		if _, err := Check(Generate(seed), backends, prog.Variants); err != nil {
			b.Fatal(err)
		}
	}
}
