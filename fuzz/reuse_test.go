package fuzz

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/emu"
	"tailsim/prog"
)

var reuseCases = flag.Int("reuse.cases", 40, "seeds TestEngineReuseMatchesFresh runs on one engine (a long search for state leaking between loads)")

// An engine that has loaded and run other worlds gives every run the
// result a fresh engine gives: the mappings, pages, hooks, code and
// translations it keeps from earlier cases change nothing a run sees. The
// cases include faults, broken checks and wild jumps (the known findings).
func TestEngineReuseMatchesFresh(t *testing.T) {
	kinds := []struct {
		name  string
		fresh func() *emu.Backend
	}{
		{"x86_64", func() *emu.Backend { return emu.NewX86(0) }},
		{"arm64", func() *emu.Backend { return emu.NewArm64(0) }},
	}
	n := uint64(*reuseCases) // a fresh engine per run costs ~20 ms
	for _, k := range kinds {
		shared := k.fresh()
		for seed := uint64(0); seed < n; seed++ {
			c := Generate(seed)
			sc, _ := buildCase(t, c)
			for _, v := range prog.Kernels {
				run := func(b *emu.Backend) *prog.Result {
					w, err := sc.Build() // a world of its own: runs change its arrays' state
					if err != nil {
						t.Fatal(err)
					}
					m, err := b.Load(w, v, prog.LoadOptions{Budget: sc.Budget, Config: sc.Config, Placement: sc.Placement})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					r := m.Run(w.Prog("entry"), append([]byte(nil), w.Ctx...))
					r.Steps, r.Trace = 0, nil
					for i := range r.Violations {
						r.Violations[i].Detail = "" // may quote a scratch register's value
					}
					return r
				}
				fresh := k.fresh()
				got, want := run(shared), run(fresh)
				fresh.CloseIdleEngines()
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s/%s seed %d (%s): reused engine differs from a fresh one (-fresh +reused):\n%s", k.name, v, seed, c.Describe(), d)
				}
			}
		}
	}
}
