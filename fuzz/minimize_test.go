package fuzz

import (
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
)

// Minimize keeps a finding's signature and explanation while it strips
// what the finding does not need. Seed 59 is a disp32 finding generated
// with a 32-call chain it does not need; seed 788 one whose count the
// chain made, which the counter preset makes with one program fewer.
func TestMinimize(t *testing.T) {
	backends, variants := []prog.Backend{emu.NewArm64(0)}, []prog.Kernel{prog.Linux618Series}
	for _, tt := range []struct {
		seed                  uint64
		chain, preset, stack  int
		wantChain, wantPreset int
	}{
		{59, 32, 0, 8, 0, 0},
		{788, 1, 0, 16, 0, 1},
	} {
		c := Generate(tt.seed)
		c.Stack = tt.stack // a stack the minimised case must drop
		if c.Chain != tt.chain || c.Preset != tt.preset {
			t.Fatalf("seed %d is no longer the case this test is about: %+v", tt.seed, c)
		}
		fs, err := Check(c, backends, variants)
		if err != nil || len(fs) != 1 || Known(fs[0]) == "" {
			t.Fatalf("seed %d: %v, findings %+v", tt.seed, err, fs)
		}
		m := Minimize(fs[0], backends, variants)
		if m.Signature != fs[0].Signature || Known(m) != Known(fs[0]) {
			t.Errorf("seed %d: minimized to %q (%s), was %q (%s)", tt.seed, m.Signature, Known(m), fs[0].Signature, Known(fs[0]))
		}
		if m.Case.Chain != tt.wantChain || m.Case.Preset != tt.wantPreset || m.Case.Stack != 0 || m.Case.Saved != 1 || m.Case.Config != 0 || m.Case.Placement != prog.PlaceKernel {
			t.Errorf("seed %d: not minimal: %+v", tt.seed, m.Case)
		}
		if tt.wantPreset > 0 && !strings.Contains(m.Case.Text(), "tail_call_cnt=") {
			t.Errorf("seed %d: the reproducer has no preset:\n%s", tt.seed, m.Case.Text())
		}
		again, err := Check(m.Case, backends, variants)
		if err != nil || len(again) != 1 || again[0].Signature != fs[0].Signature {
			t.Errorf("seed %d: the minimized case does not reproduce: %v %+v", tt.seed, err, again)
		}
	}
}
