package fuzz

import (
	"testing"
	"time"

	"tailsim/emu"
	"tailsim/prog"
)

// BenchmarkCampaign is what "make bench" reports, one generated case per
// iteration, as one fuzz worker runs them: every case is generated, parsed,
// built, and checked on both emulated arches and both variants with the
// reference model beside each (checked-cases/s).
//
// In the same run it measures Unicorn's floor for the same code: each
// world loaded on backends of its own (their own engines and translation
// caches, seeing the same sequence of worlds), then one bare Start (no
// hooks, no checks, no results read). floor-first-us is the first Start
// after the load, translation included as the checked run needs it;
// floor-cached-us a second Start over code Unicorn has translated. The
// ratios are floor time over checked time: the share of a checked case
// that Unicorn's own emulation of the same code would need anyway.
func BenchmarkCampaign(b *testing.B) {
	checked := []prog.Backend{emu.NewX86(false), emu.NewArm64(false, false)}
	bare := []prog.Backend{emu.NewX86(false), emu.NewArm64(false, false)}
	var checkT, first, cached time.Duration
	seed, cases := uint64(1_000_000), 0
	for b.Loop() {
		seed++
		c := Generate(seed)
		start := time.Now()
		if _, err := Check(c, checked, prog.Variants); err != nil {
			b.Fatal(err)
		}
		checkT += time.Since(start)
		cases++

		sc, w := buildCase(b, c)
		for _, be := range bare {
			for _, v := range prog.Variants {
				m, err := be.Load(w, v, prog.LoadOptions{Budget: sc.Budget, Hardening: sc.Hardening})
				if err != nil {
					b.Fatal(err)
				}
				d1, _ := emu.BareStart(m, w.Prog("entry"), append([]byte(nil), w.Ctx...))
				d2, _ := emu.BareStart(m, w.Prog("entry"), append([]byte(nil), w.Ctx...))
				m.Close()
				first += d1
				cached += d2
			}
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(cases) }
	b.ReportMetric(float64(cases)/checkT.Seconds(), "checked-cases/s")
	b.ReportMetric(per(checkT), "checked-us/case")
	b.ReportMetric(per(first), "floor-first-us")
	b.ReportMetric(per(cached), "floor-cached-us")
	b.ReportMetric(first.Seconds()/checkT.Seconds(), "ratio-first")
	b.ReportMetric(cached.Seconds()/checkT.Seconds(), "ratio-cached")
}
