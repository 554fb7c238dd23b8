package fuzz

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// BenchmarkShapes is the campaign with a new shape for every case (fuzz
// -inputs 1), one generated case per iteration: every case is generated,
// parsed, built once, loaded and checked on both emulated arches and both
// variants with the reference model beside them (checked-cases/s).
//
// In the same run it measures Unicorn's floor for the same code: each
// world loaded on backends of its own (their own engines and translation
// caches, seeing the same sequence of worlds), then one bare Start (no
// hooks, no checks, no results read). floor-first-us is the first Start
// after the load, translation included as the checked run needs it;
// floor-cached-us a second Start over code Unicorn has translated. The
// ratios are floor time over checked time: the share of a checked case
// that Unicorn's own emulation of the same code would need anyway.
func BenchmarkShapes(b *testing.B) {
	s := newStream([]prog.Backend{emu.NewX86(0), emu.NewArm64(0)}, prog.Kernels)
	defer s.close()
	bare := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	var checkT, first, cached time.Duration
	seed, cases := uint64(1_000_000), 0
	for b.Loop() {
		seed++
		c := StreamCase(seed, 0)
		start := time.Now()
		if _, _, err := s.check(c, nil); err != nil {
			b.Fatal(err)
		}
		checkT += time.Since(start)
		cases++

		sc, w := buildCase(b, c)
		for _, be := range bare {
			for _, v := range prog.Kernels {
				m, err := be.Load(w, v, prog.LoadOptions{Budget: sc.Budget, Config: sc.Config})
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

// BenchmarkInputs measures issue 12's other regime: one shape loaded once
// per arch × variant, then inputs that are only data — the index (read
// from ctx, in and out of bounds and past 32 bits) and the counter before
// the call (prog.CountPresetter, 0..33). One input is checked as a case
// is: the four arch × variant runs, each against the reference model
// (run once per variant: the site reads its index at run time, so the
// model's direct-call capability does not matter), diffed field by field
// and with no broken property. Slots hold a leaf or nothing, so a run is
// the entry and at most one tail call whatever the counter.
//
// Beside it, the floor: the same inputs on machines of their own with our
// hooks removed (emu.BareStart), one bare Start per arch × variant. The
// floor cannot preset the counter (the preset is written by a hook), so
// there every input runs with the counter at 0: the same instructions but
// for the limit's outcome.
func BenchmarkInputs(b *testing.B) {
	shape := presetCase{maxEntries: 8, fromCtx: true}.text()
	shape = strings.Replace(shape, "-- slots --\n", "-- slots --\njt[0] = leaf\njt[2] = leaf\njt[3] = leaf\njt[7] = leaf\n", 1)
	_, w := buildText(b, "inputs.txtar", shape)
	entry := w.Prog("site")
	type loaded struct {
		m, floor prog.Machine
		v        prog.Kernel
	}
	var ms []loaded
	refs := map[prog.Kernel]prog.Machine{}
	for _, be := range []func() prog.Backend{func() prog.Backend { return emu.NewX86(0) }, func() prog.Backend { return emu.NewArm64(0) }} {
		for _, v := range prog.Kernels {
			m, err := be().Load(w, v, prog.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			f, err := be().Load(w, v, prog.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(m.Close)
			b.Cleanup(f.Close)
			ms = append(ms, loaded{m, f, v})
			if refs[v] == nil {
				if refs[v], err = (scenarios.Ref{}).Load(w, v, prog.LoadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	ctx, ctxRef := make([]byte, len(w.Ctx)), make([]byte, len(w.Ctx))
	var checkT, floorT time.Duration
	inputs := 0
	for b.Loop() {
		index := uint64(r.IntN(12))
		if r.IntN(4) == 0 {
			index += 1 << 32
		}
		count := uint64(r.IntN(34))
		start := time.Now()
		want := map[prog.Kernel]*prog.Result{}
		for _, v := range prog.Kernels {
			binary.LittleEndian.PutUint64(ctxRef, index)
			refs[v].(prog.CountPresetter).PresetCount(count)
			want[v] = refs[v].Run(entry, ctxRef)
		}
		for _, l := range ms {
			binary.LittleEndian.PutUint64(ctx, index)
			l.m.(prog.CountPresetter).PresetCount(count)
			got := l.m.Run(entry, ctx)
			if d := scenarios.DiffResults(want[l.v], got); len(d) > 0 || len(got.Violations) > 0 || got.Fault != nil {
				b.Fatalf("index %#x, counter %d: %v %v %v", index, count, d, got.Violations, got.Fault)
			}
		}
		checkT += time.Since(start)
		inputs++
		for _, l := range ms {
			binary.LittleEndian.PutUint64(ctx, index)
			d, err := emu.BareStart(l.floor, entry, ctx)
			if err != nil {
				b.Fatal(err)
			}
			floorT += d
		}
	}
	b.ReportMetric(float64(inputs)/checkT.Seconds(), "checked-inputs/s")
	b.ReportMetric(float64(checkT.Nanoseconds())/1e3/float64(inputs), "checked-us/input")
	b.ReportMetric(float64(floorT.Nanoseconds())/1e3/float64(inputs), "floor-us/input")
	b.ReportMetric(checkT.Seconds()/floorT.Seconds(), "checked/floor")
}

// BenchmarkCampaign is what "make bench" reports: a fuzz worker's loop,
// one input per iteration. Shapes are Generate's default mix, each
// running DefaultInputs inputs (StreamCase); an input is checked on both
// arches and both variants against the reference model, as the campaign
// checks it, loads and slot changes included (checked-inputs/s).
//
// Beside it, the floor over the same inputs: the same shapes on machines
// of their own (their own engines and translation caches), brought to the
// same state untimed, then one Start per arch × variant with none of our
// checks — only the hook that presets the counter (emu.BareStartPreset).
// floor-us/input sums those Starts, so it holds what Unicorn itself needs
// for the input: translating new code after a load, a poke or a new
// max_entries, running the tail calls, and mapping the array pages a new
// index touches. checked/floor is the harness's overhead over it.
func BenchmarkCampaign(b *testing.B) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	floors := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	s, f := newStream(backends, prog.Kernels), newStream(floors, prog.Kernels)
	defer s.close()
	defer f.close()
	var checkT, floorT time.Duration
	seed, k, inputs, loads := uint64(1_000_000), 0, 0, 0
	for b.Loop() {
		c := StreamCase(seed, k)
		if !s.sameShape(c) {
			loads++
		}
		start := time.Now()
		if _, _, err := s.check(c, nil); err != nil {
			b.Fatal(err)
		}
		checkT += time.Since(start)
		inputs++

		if err := f.prepare(c); err != nil {
			b.Fatal(err)
		}
		for _, m := range f.machines {
			// A run that faults ends with Unicorn's error, as the checked
			// run of the same input does: it is timed, not a failure.
			d, _ := emu.BareStartPreset(m.m, f.entry, f.input(c), uint64(c.Preset))
			floorT += d
		}
		if k++; k == DefaultInputs {
			seed, k = seed+1, 0
		}
	}
	b.ReportMetric(float64(inputs)/checkT.Seconds(), "checked-inputs/s")
	b.ReportMetric(float64(checkT.Nanoseconds())/1e3/float64(inputs), "checked-us/input")
	b.ReportMetric(float64(floorT.Nanoseconds())/1e3/float64(inputs), "floor-us/input")
	b.ReportMetric(checkT.Seconds()/floorT.Seconds(), "checked/floor")
	b.ReportMetric(float64(loads)/float64(inputs), "loads/input")
}
