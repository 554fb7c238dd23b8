package fuzz

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// summary lists findings as "arch/variant: signature | known".
func summary(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Signature+" | "+Known(f))
	}
	slices.Sort(out)
	return out
}

// A stream's verdict for an input is the verdict of the input's own
// scenario file, loaded fresh: data changes on loaded machines (slot
// updates and deletes, ctx, presets, a reload for a new max_entries)
// leave them exactly where a fresh load of the same case would be. Every
// sixteenth input is checked on new engines too, against state an engine
// might keep from world to world.
func TestStreamMatchesCheck(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	seeds, inputs := uint64(60), 24
	if testing.Short() {
		seeds = 25
	}
	s := newStream(backends, prog.Kernels)
	defer s.close()
	found, reloads, windows := 0, 0, 0
	for seed := uint64(1); seed <= seeds; seed++ {
		for k := range inputs {
			c := StreamCase(seed, k)
			if k > 0 && !s.sameShape(c) {
				reloads++
			}
			if c.Window != NoWindow {
				windows++
			}
			got, slow, err := s.check(c, nil)
			if err != nil || slow {
				t.Fatalf("seed %d input %d: slow %v, %v", seed, k, slow, err)
			}
			// The model runs once per kernel, twice where a direct site
			// makes the arches' capabilities differ: a stream world has
			// one (bounce's) unless direct calls are off or the programs
			// are unprivileged.
			kernels := len(prog.Kernels)
			if sc, err := scenarios.Parse("case.txtar", []byte(c.Text())); err == nil {
				if _, err := sc.BuildFor(prog.Linux61, nil, ""); err != nil {
					kernels-- // 6.1 refuses the shape: it runs nowhere
				}
			}
			if n := map[bool]int{false: 2 * kernels, true: kernels}[c.NoDirect || c.Unprivileged]; len(s.refs) != n {
				t.Errorf("seed %d input %d: %d model machines, want %d", seed, k, len(s.refs), n)
			}
			checkOn := backends
			if k%16 == 15 {
				// Now and then on engines that have run nothing else: the
				// stream's have run every world before this one.
				checkOn = []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
			}
			want, err := Check(c, checkOn, prog.Kernels)
			if err != nil {
				t.Fatalf("seed %d input %d: %v", seed, k, err)
			}
			if d := cmp.Diff(summary(want), summary(got)); d != "" {
				t.Errorf("seed %d input %d (-fresh +stream):\n%s\n%s", seed, k, d, c.Text())
			}
			found += len(want)
		}
	}
	// The sample must hold findings, reloads and windows, or it proves
	// little.
	if found == 0 || reloads == 0 || windows == 0 {
		t.Errorf("%d findings, %d reloads, %d windows in the sample", found, reloads, windows)
	}
	t.Logf("%d findings, %d reloads, %d windows", found, reloads, windows)
}

// A stream's inputs share their shape and redraw only data: input 0 is
// Generate's case, max_entries changes only between groups of inputs, a
// constant key stays, and over a few streams every data value appears.
func TestStreamCase(t *testing.T) {
	seen := map[string]bool{}
	see := func(k string, v any) { seen[fmt.Sprintf("%s=%v", k, v)] = true }
	for seed := uint64(1); seed <= 200; seed++ {
		g := Generate(seed)
		first := StreamCase(seed, 0)
		want := g
		want.Stream = true
		if first != want {
			t.Fatalf("seed %d: input 0 is %+v, Generate gives %+v", seed, first, g)
		}
		s := &stream{}
		s.shape, s.w = first, &prog.World{}
		groups := map[int]uint32{}
		for k := range DefaultInputs {
			c := StreamCase(seed, k)
			if c != StreamCase(seed, k) || c.Input != k || !c.Stream {
				t.Fatalf("seed %d input %d: not deterministic or misnamed", seed, k)
			}
			c.MaxEntries = first.MaxEntries
			if !s.sameShape(c) {
				t.Fatalf("seed %d input %d changes the shape:\n%+v\n%+v", seed, k, first, c)
			}
			if me, ok := groups[k/inputsPerMaxEntries]; ok && me != StreamCase(seed, k).MaxEntries {
				t.Errorf("seed %d input %d: max_entries changes inside a group", seed, k)
			}
			groups[k/inputsPerMaxEntries] = StreamCase(seed, k).MaxEntries
			see("target", c.Target)
			see("fill", c.Fill)
			see("preset", c.Preset)
			see("other", c.Other)
			see("window", c.Window)
			if orig := StreamCase(seed, k); orig.Window != NoWindow && !orig.windowed() {
				t.Errorf("seed %d input %d: a window where the run's calls do not all go through the slot: %+v", seed, k, c)
			}
			see("new max_entries", StreamCase(seed, k).MaxEntries != first.MaxEntries)
			see("in range", uint64(uint32(c.Index)) < uint64(c.MaxEntries))
		}
	}
	wanted := append(dataValues(), "window=none", "window=update stop=ptrs", "window=update stop=cached", "window=delete stop=ptrs", "window=delete stop=cached", "other=true", "other=false", "new max_entries=true", "new max_entries=false", "in range=true", "in range=false")
	for _, w := range wanted {
		if !seen[w] {
			t.Errorf("200 streams never give %s", w)
		}
	}
}

// failPoke is a backend whose machines cannot rewrite poke sites.
type failPoke struct{ prog.Backend }
type failPokeMachine struct{ prog.Machine }

func (b failPoke) Load(w *prog.World, v prog.Kernel, o prog.LoadOptions) (prog.Machine, error) {
	m, err := b.Backend.Load(w, v, o)
	if err != nil {
		return nil, err
	}
	return failPokeMachine{m}, nil
}

func (m failPokeMachine) Apply(e prog.Effect) error {
	if e.Kind == prog.EffectTarget || e.Kind == prog.EffectBypass {
		return errors.New("poke failed")
	}
	return m.Machine.Apply(e)
}

func (m failPokeMachine) PresetCount(n uint64) { m.Machine.(prog.CountPresetter).PresetCount(n) }

// A machine that cannot mirror a slot change is that backend's finding
// (an error, as the runner reports a step it cannot carry out) until the
// next load; the other backends are still checked; and a campaign's
// reproducer for it says that its file, loaded fresh, does not fail so.
func TestStreamApplyError(t *testing.T) {
	backends := []prog.Backend{failPoke{emu.NewX86(0)}, emu.NewArm64(0)}
	s := newStream(backends, prog.Kernels)
	defer s.close()
	var c Case
	var got []Finding
	for seed := uint64(1); seed < 100 && got == nil; seed++ {
		for k := range 16 {
			c = StreamCase(seed, k)
			fs, _, err := s.check(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Failures[0].Kind == scenarios.FailError {
					got = fs
				}
			}
			if got != nil {
				break
			}
		}
	}
	if got == nil {
		t.Fatal("no poke in 100 streams")
	}
	for _, f := range got {
		if f.Failures[0].Kind == scenarios.FailError && (f.Arch != "x86_64" || !strings.Contains(f.Failures[0].Err.Error(), "poke failed")) {
			t.Errorf("%s/%s: %v", f.Arch, f.Kernel, f.Failures[0].Err)
		}
	}
	if s.sameShape(c) {
		t.Error("a machine out of step keeps its world for the next input")
	}
	camp := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: c.Seed, Cases: c.Input + 1, Out: t.TempDir()}
	sum, err := camp.Run()
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, r := range sum.Reproducers {
		if r.Stale {
			stale++
			if data, _ := os.ReadFile(r.Path); !strings.Contains(string(data), "a bug of tailsim's stream harness") {
				t.Errorf("%s does not say it is stale:\n%s", r.Path, data)
			}
		}
	}
	if stale == 0 || sum.New() == 0 {
		t.Errorf("%d stale reproducers, %d new findings", stale, sum.New())
	}
	c.Stream = false
	if _, _, err := s.check(c, nil); !errors.Is(err, errNotStream) {
		t.Errorf("a case not of a stream: %v", err)
	}
}
