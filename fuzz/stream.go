package fuzz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"tailsim/prog"
	"tailsim/scenarios"
)

// DefaultInputs is how many inputs a campaign runs on each shape. A new
// shape costs a load per arch × variant (~0.3 ms each, most of it Unicorn
// translating new code); an input on loaded code costs tens of µs, so
// 64 inputs make the loads a small share of a worker's time.
const DefaultInputs = 64

// StreamCase is input k of seed's stream. The shape — everything that
// changes the machine code: programs, site kind, key form, chain, stack,
// layout, config — is Generate(seed)'s, and so is input 0's data. The
// other inputs redraw the data the JITed code reads at run time: the index
// (unless it is a constant in the code), what the slots hold, the counter
// preset, which map a poisoned site takes; and, for each group of
// inputsPerMaxEntries inputs after the first, max_entries half of the
// time. The upstream and dynamic paths read max_entries from memory; a
// patched static site has it as an immediate, and a reload on the same
// engines rewrites only the bytes that changed. The same seed and k
// always give the same case.
func StreamCase(seed uint64, k int) Case {
	c := Generate(seed)
	c.Stream, c.Input = true, k
	if k == 0 {
		return c
	}
	if g := k / inputsPerMaxEntries; g > 0 {
		rg := rand.New(rand.NewPCG(seed, 0x6a0e000000000000|uint64(g)))
		if rg.IntN(2) == 0 {
			c.MaxEntries = c.maxEntriesFor(max(biasedU32(rg, Disp32Limit(c.Layout)), 1))
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x5ca1ab1e00000000|uint64(k)))
	if !c.KeyConst {
		c.Index = biasedIndex(r, c.MaxEntries)
	}
	c.Target = targets[r.IntN(len(targets))]
	c.Fill = fills[r.IntN(len(fills))]
	if c.Chain == 0 {
		c.Preset = presets[r.IntN(len(presets))]
		if c.Target != Leaf && c.fills(uint32(c.Index)) {
			// A loop runs to the limit: from a preset near it, the
			// few calls that matter; from 0 a quarter of the time, the
			// whole way (TestCountPresetEquivalence holds the two equal).
			c.Preset = [4]int{0, 31, 32, 33}[r.IntN(4)]
		}
	}
	c.Other = c.Poisoned && r.IntN(4) == 3
	if c.windowed() && r.IntN(4) == 0 {
		c.Window = Window(1 + r.IntN(4))
	}
	return c
}

// inputsPerMaxEntries is how many inputs of a stream share a max_entries,
// so that a stream reloads at most once per group.
const inputsPerMaxEntries = 16

// errNotStream is a case not made by StreamCase: its world does not
// declare what other inputs of its seed use, so data changes alone cannot
// turn one into another.
var errNotStream = errors.New("fuzz: a stream runs StreamCase's cases only")

// stream checks the inputs of one shape on machines loaded once per
// backend × variant. Between inputs it changes only data: the jt slots
// through the kernel's update and delete steps (prog.Effect, mirrored by
// every machine as a scenario's update step is), ctx, and the counter
// preset. A new max_entries builds a new world; loading it on the same
// engines rewrites only the code bytes that changed.
type stream struct {
	backends []prog.Backend
	variants []prog.Kernel

	shape      Case // the loaded world's case: its MaxEntries and slots
	w          *prog.World
	entry      *prog.Program
	jt         *prog.ProgArray
	machines   []streamMachine
	refs       []streamRef
	ctx, ctx0  []byte
	budget     int
	config     prog.Config
	placement  prog.Placement
	loadFailed []Finding // machines that could not load the world
	// pending is the rest of the last input's change in flight (Window),
	// applied before the next input's slots are set.
	pending []prog.Effect
}

type streamMachine struct {
	b   prog.Backend
	v   prog.Kernel
	m   prog.Machine
	ref int // refs index: the model with this backend's capabilities
	// err is a slot change the machine could not mirror: it is out of
	// step with the model until the next load, and each input reports
	// the error as its finding, as the runner reports a step it cannot
	// carry out.
	err error
}

// streamRef is the reference model once per variant and direct-call
// capability (when the world has a direct site): the backends that share
// both share its runs.
type streamRef struct {
	v      prog.Kernel
	direct bool
	m      prog.Machine
	res    *prog.Result
}

func newStream(backends []prog.Backend, variants []prog.Kernel) *stream {
	return &stream{backends: backends, variants: variants}
}

func (s *stream) close() {
	// In reverse: a backend's pool hands engines back last in, first out,
	// so the next load gets each machine's engine again, whose code (and
	// translations) differ least from the new world's.
	for _, m := range slices.Backward(s.machines) {
		m.m.Close()
	}
	for _, r := range s.refs {
		r.m.Close()
	}
	s.machines, s.refs, s.w, s.pending = nil, nil, nil, nil
}

// sameShape reports whether c runs on the loaded world with data changes
// only.
func (s *stream) sameShape(c Case) bool {
	if s.w == nil || c.MaxEntries != s.shape.MaxEntries {
		return false
	}
	for _, m := range s.machines {
		if m.err != nil {
			return false // a fresh load puts it back in step
		}
	}
	a, b := c, s.shape
	a.Input, a.Index, a.Target, a.Fill, a.Preset, a.Other, a.Window = 0, 0, 0, 0, 0, false, 0
	b.Input, b.Index, b.Target, b.Fill, b.Preset, b.Other, b.Window = 0, 0, 0, 0, 0, false, 0
	if c.KeyConst {
		a.Index, b.Index = c.Index, s.shape.Index
	}
	return a == b
}

// load builds c's world and loads it on every backend and variant.
func (s *stream) load(c Case) error {
	s.close()
	sc, err := scenarios.Parse("case.txtar", []byte(c.Text()))
	if err != nil {
		return err
	}
	// One world for every backend: no generated case calls a helper the
	// verifier inlines on one arch only (sc.BuildFor).
	w, err := sc.Build()
	if err != nil {
		return err
	}
	s.shape, s.w, s.entry, s.jt = c, w, w.Prog("entry"), w.Array("jt")
	s.budget, s.config, s.placement = sc.Budget, sc.Config, sc.Placement
	s.ctx0 = w.Ctx
	s.ctx = make([]byte, len(w.Ctx))
	s.loadFailed = nil
	// The backends' direct-call capability changes the model's answer
	// only at a site the verifier made direct; without one, every backend
	// of a variant shares one model run.
	directMatters := false
	for _, fx := range w.Fixups {
		for _, site := range fx.Sites {
			directMatters = directMatters || site.Direct
		}
	}
	// A kernel whose verifier refuses the shape (6.1's frame rule) runs
	// nothing, as Check skips it.
	refused := map[prog.Kernel]bool{}
	for _, v := range s.variants {
		if _, err := sc.BuildFor(v, nil, ""); err != nil {
			refused[v] = true
		}
	}
	for _, b := range s.backends {
		direct := b.DirectTailCalls() && directMatters
		for _, v := range s.variants {
			if refused[v] {
				continue
			}
			m, err := b.Load(w, v, prog.LoadOptions{Budget: s.budget, Config: s.config, Placement: s.placement})
			if err != nil {
				// As the runner reports it: the scenario cannot run on
				// this backend.
				fs := []scenarios.Failure{{Kind: scenarios.FailError, Err: err}}
				s.loadFailed = append(s.loadFailed, Finding{Arch: b.Name(), Kernel: v.String(), Failures: fs,
					Signature: b.Name() + "/" + v.String() + ": " + signature(fs)})
				continue
			}
			ref := -1
			for i, r := range s.refs {
				if r.v == v && r.direct == direct {
					ref = i
				}
			}
			if ref < 0 {
				rm, err := (scenarios.Ref{NoDirectTailCalls: !direct}).Load(w, v, prog.LoadOptions{Budget: s.budget})
				if err != nil {
					m.Close()
					return fmt.Errorf("reference model: %w", err)
				}
				s.refs = append(s.refs, streamRef{v: v, direct: direct, m: rm})
				ref = len(s.refs) - 1
			}
			s.machines = append(s.machines, streamMachine{b: b, v: v, m: m, ref: ref})
		}
	}
	return nil
}

// setSlots makes jt hold what c's slots say, by the kernel's deletes and
// updates of the slots that differ, each step applied to the model arrays
// and mirrored by every machine; then, for a window, the steps of c's
// change in flight up to its stop. The last input's change in flight is
// finished first.
func (s *stream) setSlots(c Case) error {
	s.mirror(s.pending)
	s.pending = nil
	want := map[uint32]*prog.Program{}
	settled := c.settled()
	for _, sl := range settled {
		if want[sl.index] = s.w.Prog(sl.prog); want[sl.index] == nil {
			return fmt.Errorf("fuzz: the stream's world has no program %s", sl.prog)
		}
	}
	for _, i := range s.jt.Populated() {
		if want[i] == nil {
			if err := s.change(s.jt.Delete(i)); err != nil {
				return err
			}
		}
	}
	for _, sl := range settled {
		if p := want[sl.index]; s.jt.Ptr(sl.index) != p {
			if err := s.change(s.jt.Update(sl.index, p)); err != nil {
				return err
			}
		}
	}
	w := c.window()
	if w == NoWindow {
		return nil
	}
	var es []prog.Effect
	var err error
	if w.update() {
		es, err = s.jt.Update(uint32(c.Index), s.w.Prog(c.Target.String()))
	} else {
		es, err = s.jt.Delete(uint32(c.Index))
	}
	if err != nil {
		return err
	}
	n := 0
	for n < len(es) && es[n].Kind <= w.stop() {
		n++
	}
	s.pending = es[n:]
	s.mirror(es[:n])
	return nil
}

// change applies a whole slot change.
func (s *stream) change(es []prog.Effect, err error) error {
	if err != nil {
		return err
	}
	s.mirror(es)
	return nil
}

// mirror applies the steps to the model arrays and mirrors each into
// every machine, in the kernel's order. A machine that cannot mirror a
// step keeps the error (streamMachine.err).
func (s *stream) mirror(es []prog.Effect) {
	for _, e := range es {
		e.Apply()
		for i := range s.machines {
			if m := &s.machines[i]; m.err == nil {
				if err := m.m.Apply(e); err != nil {
					m.err = fmt.Errorf("%s: %w", e, err)
				}
			}
		}
	}
}

// prepare makes the machines ready for c: a new load for a new shape or
// max_entries, then the slot changes since the last input.
func (s *stream) prepare(c Case) error {
	if !c.Stream {
		return errNotStream
	}
	var err error
	if !s.sameShape(c) {
		err = s.load(c)
	}
	if err == nil {
		// After a load, jt holds c's settled slots: only a window's steps
		// remain to apply.
		err = s.setSlots(c)
	}
	if err != nil {
		// The machines may be half-changed: the next input reloads.
		s.close()
	}
	return err
}

// input fills ctx as c's ctx section does.
func (s *stream) input(c Case) []byte {
	copy(s.ctx, s.ctx0)
	binary.LittleEndian.PutUint64(s.ctx[0:], c.Index)
	binary.LittleEndian.PutUint32(s.ctx[12:], c.selector())
	return s.ctx
}

// check runs one input of the stream on every machine. Its findings are
// the ones Check finds for c on a fresh load (TestStreamMatchesCheck); a
// run an emulator could not finish in wall time is counted in slow, not
// judged, and left out of the coverage.
func (s *stream) check(c Case, cov Coverage) (out []Finding, slow bool, err error) {
	if err := s.prepare(c); err != nil {
		return nil, false, err
	}
	for _, f := range s.loadFailed {
		f.Case = c
		out = append(out, f)
	}
	for i := range s.refs {
		r := &s.refs[i]
		r.m.(prog.CountPresetter).PresetCount(uint64(c.Preset))
		r.res = r.m.Run(s.entry, s.input(c))
	}
	for _, m := range s.machines {
		if m.err != nil {
			fs := []scenarios.Failure{{Kind: scenarios.FailError, Err: m.err}}
			out = append(out, Finding{Case: c, Arch: m.b.Name(), Kernel: m.v.String(), Failures: fs,
				Signature: m.b.Name() + "/" + m.v.String() + ": " + signature(fs)})
			continue
		}
		p, ok := m.m.(prog.CountPresetter)
		if !ok {
			return nil, false, fmt.Errorf("%s cannot preset the tail-call counter", m.b.Name())
		}
		p.PresetCount(uint64(c.Preset))
		got := m.m.Run(s.entry, s.input(c))
		if got.Fault != nil && got.Fault.Kind == prog.FaultSlow {
			slow = true
			continue
		}
		if cov != nil {
			cov.add(m.b.Name(), m.v.String(), c.window(), got.Calls)
		}
		if fs := scenarios.Judge(s.refs[m.ref].res, got); len(fs) > 0 {
			out = append(out, Finding{Case: c, Arch: m.b.Name(), Kernel: m.v.String(), Failures: fs,
				Signature: m.b.Name() + "/" + m.v.String() + ": " + signature(fs)})
		}
	}
	return out, slow, nil
}
