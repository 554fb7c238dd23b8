package scenarios

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"tailsim/prog"
)

// Report is the outcome of one scenario on one (arch, variant).
type Report struct {
	Scenario *Scenario
	Arch     string
	Kernel   prog.Kernel
	// Config is the run's configuration (Options.Config); the backend
	// emitted for the scenario's own under it (prog.Config.Under).
	Config   prog.Config
	Status   Status
	Failures []Failure
	// Notes are facts worth showing that are not failures, such as where
	// the kernel interpreter's counting rule would give another result.
	Notes []string
	// Traced is the first failing run, when tracing (Options.Trace).
	Traced *prog.Result
	// Runs are the backend's runs Options.Keep chose.
	Runs []RunRecord
	// Costs are the tail calls' costs, with Options.Cost: those of one
	// run step that are alike are counted once.
	Costs    []RunCost
	Duration time.Duration
	// Refused is set when the scenario's programs could not be built for
	// this kernel and arch: the verifier-like fix-up refused them as that
	// kernel's verifier would (a frame rule, an opcode it lacks), or the
	// scenario is otherwise malformed for it. The report is Errored too.
	Refused bool
}

// RunRecord is one run of a run step.
type RunRecord struct {
	Line         int    // the run step's
	Step         string // the run step as written
	Iter, Repeat int
	Result       *prog.Result
	// Arrays are the world's prog arrays as the run found them (copies).
	Arrays []*prog.ProgArray
}

// RunCost is a tail call's cost in the runs of one step, and how many
// times it was paid.
type RunCost struct {
	Line  int    `json:"line"` // the run step's
	Step  string `json:"step"`
	Times int    `json:"times"`
	prog.TailCost
}

// Options select what Run does.
type Options struct {
	Layout *prog.Layout // overrides the scenario's layout
	// Config is the kernel build the run is for; the scenario's config
	// line adds to it (prog.Config.Under).
	Config prog.Config
	Trace  bool
	// Step records every instruction of the backend's runs
	// (prog.LoadOptions.Step): slow, for "tailsim trace".
	Step bool
	// Cost measures every tail call of the backend's runs
	// (prog.LoadOptions.Cost) into Report.Costs.
	Cost bool
	// StepBudget caps a stepped run's instruction budget, since every
	// instruction is kept.
	StepBudget int
	// Keep chooses the runs whose results Report.Runs keeps, by step and
	// iteration (1-based); nil keeps none.
	Keep func(st Step, iter int) bool
}

// Combo is one (backend, variant) pair a scenario runs on.
type Combo struct {
	B Backend
	V prog.Kernel
}

// RunsUnder reports whether the scenario runs under run configuration
// cfg: its configs line, if any, lists it.
func (sc *Scenario) RunsUnder(cfg prog.Config) bool {
	return len(sc.Configs) == 0 || slices.Contains(sc.Configs, cfg)
}

// Combos lists the (backend, variant) pairs a scenario runs on: the
// selection intersected with the scenario's own arch and variant lines.
func (sc *Scenario) Combos(backends []Backend, variants []prog.Kernel) (out []Combo) {
	for _, b := range backends {
		if len(sc.Arches) > 0 && !slices.Contains(sc.Arches, b.Name()) {
			continue
		}
		for _, v := range variants {
			if len(sc.Kernels) > 0 && !slices.Contains(sc.Kernels, v) {
				continue
			}
			out = append(out, Combo{b, v})
		}
	}
	return out
}

// RunAll runs every scenario on each of its combos of the selection, in
// order: the reports every front end prints.
//
// Each scenario runs under each of configs (none: o.Config alone). The
// reference model ignores configurations, so it runs under the first
// the scenario runs under only. A scenario's configs line keeps the
// configurations it lists.
func RunAll(scs []*Scenario, backends []Backend, variants []prog.Kernel, configs []prog.Config, o Options) []*Report {
	if len(configs) == 0 {
		configs = []prog.Config{o.Config}
	}
	var reports []*Report
	for _, sc := range scs {
		first := true
		for _, cfg := range configs {
			if !sc.RunsUnder(cfg) {
				continue
			}
			o.Config = cfg
			for _, c := range sc.Combos(backends, variants) {
				if !first && c.B.Name() == (Ref{}).Name() {
					continue
				}
				reports = append(reports, Run(sc, c.B, c.V, o))
			}
			first = false
		}
	}
	return reports
}

// Run runs a scenario on one backend and variant. The reference model runs
// beside any other backend and every result is compared with it; a second
// reference run with the kernel interpreter's counting rule supplies the
// interp.* expectations and the notes on where the rules differ.
func Run(sc *Scenario, b Backend, v prog.Kernel, o Options) *Report {
	start := time.Now()
	rep := &Report{Scenario: sc, Arch: b.Name(), Kernel: v, Config: o.Config}
	r, err := newRunner(sc, b, v, o, rep)
	if err == nil {
		for _, st := range sc.Steps {
			if err = r.step(st); err != nil {
				break
			}
		}
		r.close()
	}
	switch {
	case err != nil:
		rep.Status = Errored
		f := Failure{Kind: FailError, Err: err}
		var pe *prog.PosError
		var le *prog.LayoutError
		switch se, ok := err.(*stepError); {
		case ok:
			f.Line, f.Step, f.Err = se.st.Line, se.st.String(), se.err
		case errors.As(err, &pe):
			// A program the backend cannot load, at its line.
			f.Line, f.Err = pe.Line, errors.New(prog.CutLong(pe.Msg))
		case errors.As(err, &le) && o.Layout == nil:
			// The layout line chose what the JIT cannot encode.
			f.Line = sc.LayoutLine
		}
		rep.Failures = append(rep.Failures, f)
	case len(rep.Failures) > 0:
		rep.Status = Fail
	default:
		rep.Status = Pass
	}
	rep.Duration = time.Since(start)
	return rep
}

// stepError is a step that could not be carried out on a backend.
type stepError struct {
	st  Step
	err error
}

func (e *stepError) Error() string { return fmt.Sprintf("line %d: %s: %v", e.st.Line, e.st, e.err) }

// runner carries one scenario through one backend and variant, a step at
// a time: the loaded machines and their ctx copies are its state, and each
// step kind is a method, in the manner of cilium/ebpf's collection loader.
type runner struct {
	sc     *Scenario
	o      Options
	arch   string
	kernel prog.Kernel
	w      *prog.World
	rep    *Report

	// m is the backend under test; ref the reference model beside it (nil
	// when the backend is the reference model), with the backend's
	// capabilities; alt the reference model with the kernel interpreter's
	// counting rule. Each runs on its own copy of ctx.
	m, ref, alt         Machine
	ctx, ctxRef, ctxAlt []byte
	// pending holds the steps of stopped slot changes until their finish.
	pending map[string][]prog.Effect
}

func newRunner(sc *Scenario, b Backend, v prog.Kernel, o Options, rep *Report) (*runner, error) {
	w, err := sc.BuildFor(v, o.Layout, b.Name())
	if err != nil {
		rep.Refused = true
		return nil, err
	}
	r := &runner{sc: sc, o: o, arch: b.Name(), kernel: v, w: w, rep: rep, pending: map[string][]prog.Effect{},
		ctx: cloneCtx(w.Ctx), ctxRef: cloneCtx(w.Ctx), ctxAlt: cloneCtx(w.Ctx)}
	lo := LoadOptions{Budget: sc.Budget}
	budget := sc.Budget
	if o.Step && o.StepBudget > 0 && (budget == 0 || budget > o.StepBudget) {
		budget = o.StepBudget
	}
	if r.m, err = b.Load(w, v, LoadOptions{Budget: budget, Trace: o.Trace, Step: o.Step, Cost: o.Cost, Config: sc.Config.Under(o.Config), Placement: sc.Placement}); err != nil {
		return nil, err
	}
	if _, isRef := b.(Ref); !isRef {
		if r.ref, err = (Ref{NoDirectTailCalls: !b.DirectTailCalls()}).Load(w, v, lo); err != nil {
			r.close()
			return nil, fmt.Errorf("reference model: %w", err)
		}
	}
	if r.alt, err = (Ref{Rule: prog.RuleInterp}).Load(w, v, lo); err != nil {
		r.close()
		return nil, fmt.Errorf("reference model (interpreter rule): %w", err)
	}
	return r, nil
}

func (r *runner) close() {
	for _, m := range []Machine{r.m, r.ref, r.alt} {
		if m != nil {
			m.Close()
		}
	}
}

// cost counts a tail call's cost under its step.
func (r *runner) cost(st Step, c prog.TailCost) {
	for i := range r.rep.Costs {
		if rc := &r.rep.Costs[i]; rc.Line == st.Line && rc.TailCost == c {
			rc.Times++
			return
		}
	}
	r.rep.Costs = append(r.rep.Costs, RunCost{Line: st.Line, Step: st.String(), Times: 1, TailCost: c})
}

func (r *runner) fail(f Failure) { r.rep.Failures = append(r.rep.Failures, f) }

func (r *runner) note(format string, args ...any) {
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(format, args...))
}

// expects lists the step's expectations that apply to this arch/variant.
func (r *runner) expects(st Step) []Expect {
	var out []Expect
	for _, e := range st.Expect {
		if e.Applies(r.arch, r.kernel.String()) {
			out = append(out, e)
		}
	}
	return out
}

// step carries out one step; an error means the scenario cannot go on
// on this backend.
func (r *runner) step(st Step) error {
	switch st.Kind {
	case StepSet:
		return r.set(st)
	case StepFinish:
		return r.finish(st)
	case StepUpdate, StepDelete:
		return r.change(st)
	case StepRun:
		return r.run(st)
	}
	return nil
}

// set writes ctx, or an array map's element, between runs, as user space
// writes a global. Each machine keeps its own map values.
func (r *runner) set(st Step) error {
	if e := st.Set; e.Key == KeyMap {
		b := e.Bytes
		if e.Size > 0 {
			b = binary.LittleEndian.AppendUint64(nil, e.Value)[:e.Size]
		}
		ef := prog.Effect{Kind: prog.EffectMapWrite, Map: r.w.ArrayMap(e.Map), Off: uint32(e.Off), Bytes: b}
		for _, m := range []Machine{r.m, r.ref, r.alt} {
			if m != nil {
				if err := m.Apply(ef); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, c := range [][]byte{r.ctx, r.ctxRef, r.ctxAlt} {
		writeCtx(c, st.Set)
	}
	return nil
}

func slotKey(m string, index uint64) string { return fmt.Sprintf("%s[%d]", m, index) }

// apply performs effects on the model arrays and mirrors them into the
// backend.
func (r *runner) apply(st Step, effects []prog.Effect) error {
	for _, e := range effects {
		e.Apply()
		if err := r.m.Apply(e); err != nil {
			return &stepError{st, err}
		}
	}
	return nil
}

// finish applies the rest of a stopped update or delete.
func (r *runner) finish(st Step) error {
	key := slotKey(st.Map, st.Index)
	effects := r.pending[key]
	delete(r.pending, key)
	return r.apply(st, effects)
}

// change is an update or delete: the kernel's steps in its order, stopped
// after st.Stop when the step says so.
func (r *runner) change(st Step) error {
	a := r.w.Array(st.Map)
	var effects []prog.Effect
	var err error
	switch {
	case st.Index > 0xffffffff:
		err = prog.ErrE2BIG
	case st.Kind == StepUpdate:
		effects, err = a.Update(uint32(st.Index), r.w.Prog(st.Prog))
	default:
		effects, err = a.Delete(uint32(st.Index))
	}
	checked := false
	for _, e := range r.expects(st) {
		checked = true
		if got := errnoName(err); got != e.Errno {
			r.fail(Failure{Kind: FailExpect, Line: e.Line, Step: st.String(), Expect: &e, Got: got})
		}
	}
	if err != nil && !checked {
		r.fail(Failure{Kind: FailChange, Line: st.Line, Step: st.String(), Err: err})
	}
	if st.Stopped && err == nil {
		n := slices.IndexFunc(effects, func(e prog.Effect) bool { return e.Kind == st.Stop })
		if n < 0 {
			// A replace pokes only the target; an update from empty
			// and a delete poke both, in opposite orders.
			return &stepError{st, fmt.Errorf("this change has no %s step (its steps: %s)", st.Stop, effectKinds(effects))}
		}
		r.pending[slotKey(st.Map, st.Index)] = effects[n+1:]
		effects = effects[:n+1]
	}
	return r.apply(st, effects)
}

func effectKinds(es []prog.Effect) string {
	var names []string
	for _, e := range es {
		names = append(names, e.Kind.String())
	}
	return strings.Join(names, ", ")
}

// run invokes the step's program st.Repeat times on every machine,
// compares each result with the reference model's, then checks the
// expectations against the last.
func (r *runner) run(st Step) error {
	entry := r.w.Prog(st.Prog)
	// A step may state that this arch/variant's code departs from the
	// reference model: the kernel code's real behaviour, shown rather than
	// hidden. The other expectations then describe the JIT.
	wantDivergence, diverged := false, false
	wantBroken := map[prog.Property]bool{} // property -> seen
	for _, e := range r.expects(st) {
		switch e.Key {
		case KeyDivergence:
			wantDivergence = true
		case KeyBroken:
			wantBroken[e.Property] = false
		}
	}
	// Every run step sets the preset, so one step's does not leak into
	// the next.
	for i, m := range []Machine{r.m, r.ref, r.alt} {
		if p, ok := m.(prog.CountPresetter); ok {
			p.PresetCount(st.TailCallCnt)
		} else if m != nil && st.TailCallCnt > 0 {
			who := []string{r.arch, "the reference model", "the interpreter-rule model"}[i]
			return &stepError{st, fmt.Errorf("%s cannot preset the tail-call counter", who)}
		}
	}
	var res, resAlt *prog.Result
	ruleNote := ""
	for i := 0; i < st.Repeat; i++ {
		at := Failure{Line: st.Line, Step: st.String(), Iter: i + 1, Repeat: st.Repeat, Arch: r.arch, Kernel: r.rep.Kernel}
		if rec, ok := r.m.(prog.Recorder); ok && r.o.Step && r.o.Keep != nil {
			rec.Record(r.o.Keep(st, i+1))
		}
		res = r.m.Run(entry, r.ctx)
		if res.Fault != nil && res.Fault.Kind == prog.FaultSlow {
			// Not a verdict: the scenario cannot be judged on this machine.
			return &stepError{st, fmt.Errorf("%w: %v", prog.ErrTooSlow, res.Fault)}
		}
		for _, c := range res.Costs {
			r.cost(st, c)
		}
		if r.o.Keep != nil && r.o.Keep(st, i+1) {
			arrays := make([]*prog.ProgArray, len(r.w.Arrays))
			for k, a := range r.w.Arrays {
				arrays[k] = a.Clone()
			}
			r.rep.Runs = append(r.rep.Runs, RunRecord{Line: st.Line, Step: st.String(), Iter: i + 1, Repeat: st.Repeat, Result: res, Arrays: arrays})
		}
		resAlt = r.alt.Run(entry, r.ctxAlt)
		want := res
		if r.ref != nil {
			want = r.ref.Run(entry, r.ctxRef)
		}
		if d := DiffResults(want, resAlt); len(d) > 0 && ruleNote == "" {
			iter := ""
			if st.Repeat > 1 {
				iter = fmt.Sprintf(" (from iteration %d of %d)", i+1, st.Repeat)
			}
			why := "it reads ptrs[] at run time and counts a tail call before its empty-slot check"
			if r.kernel.CountsBeforeSlot() {
				why = "it reads ptrs[] at run time where the JIT has direct tail calls" // 6.1's JITs count first too
			}
			ruleNote = fmt.Sprintf("line %d: %s%s: the kernel interpreter (%s) would give %s", st.Line, st, iter, why, DiffString(d))
			if i := slices.IndexFunc(r.w.Progs, (*prog.Program).InterpreterRefuses); i >= 0 {
				ruleNote = fmt.Sprintf("line %d: %s%s: the interpreter-rule model gives %s, but the kernel interpreter refuses program %s (%s)", st.Line, st, iter, DiffString(d), r.w.Progs[i].Name, prog.InterpreterRefusal)
			}
		}
		if r.ref != nil {
			// Whether R0 is defined is a property of the BPF program,
			// which only the reference model tracks.
			res.R0Dead = want.R0Dead
			if d := DiffResults(want, res); len(d) > 0 && wantDivergence {
				if !diverged {
					r.note("line %d: %s (iteration %d of %d): %s departs from the reference model, as expected: %s", st.Line, st, i+1, st.Repeat, r.arch, DiffString(d))
				}
				diverged = true
			} else if len(d) > 0 {
				at.Kind, at.Diffs = FailDiffers, d
				r.fail(at)
				r.traceOnce(res)
				break
			}
		}
		unexpected := false
		for _, v := range res.Violations {
			if seen, ok := wantBroken[v.Property]; ok {
				if !seen {
					r.note("line %d: %s (iteration %d of %d): as expected, %s", st.Line, st, i+1, st.Repeat, v)
				}
				wantBroken[v.Property] = true
				continue
			}
			f := at
			f.Kind, f.Violation = FailBroken, &v
			r.fail(f)
			unexpected = true
		}
		if unexpected {
			r.traceOnce(res)
			break
		}
		if res.Fault != nil {
			break
		}
	}
	if ruleNote != "" {
		r.rep.Notes = append(r.rep.Notes, ruleNote)
	}
	held := Failure{Kind: FailHeld, Line: st.Line, Step: st.String(), Arch: r.arch, Kernel: r.rep.Kernel}
	for _, p := range prog.Properties { // in a fixed order, not the map's
		if seen, ok := wantBroken[p]; ok && !seen {
			f := held
			f.Property = p
			r.fail(f)
		}
	}
	if wantDivergence && !diverged {
		r.fail(held)
	}
	before := len(r.rep.Failures)
	r.check(st, res, resAlt)
	if len(r.rep.Failures) > before {
		r.traceOnce(res)
	}
	return nil
}

// check tests a run step's expectations against the last results.
func (r *runner) check(st Step, res, resAlt *prog.Result) {
	faultChecked := false
	for _, e := range r.expects(st) {
		switch e.Key {
		case KeyFault:
			faultChecked = true
		case KeyDivergence, KeyBroken:
			continue
		}
		got := res
		if e.Interp {
			got = resAlt
		}
		if msg := check(e, got); msg != "" {
			r.fail(Failure{Kind: FailExpect, Line: e.Line, Step: st.String(), Expect: &e, Got: msg})
		}
	}
	if res.Fault != nil && !faultChecked {
		r.fail(Failure{Kind: FailFault, Line: st.Line, Step: st.String(), Fault: res.Fault})
	}
}

// traceOnce keeps the trace of the first failing run.
func (r *runner) traceOnce(res *prog.Result) {
	if r.rep.Traced == nil && r.o.Trace {
		r.rep.Traced = res
	}
}

func cloneCtx(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// check returns "" when the result meets the expectation, else what was seen.
func check(e Expect, r *prog.Result) string {
	switch e.Key {
	case KeyR0, KeyW0:
		if r.R0Dead {
			return "r0 is undefined: the last tail call failed and nothing wrote r0 since"
		}
	}
	switch e.Key {
	case KeyR0:
		if r.R0 != e.Value {
			return fmt.Sprintf("got %s", num(r.R0))
		}
	case KeyW0:
		if uint32(r.R0) != uint32(e.Value) {
			return fmt.Sprintf("got %s", num(uint64(uint32(r.R0))))
		}
	case KeyCount:
		if r.Count != e.Value {
			return fmt.Sprintf("got %d", r.Count)
		}
	case KeyPath:
		if !slices.Equal(r.Path, e.Path) {
			return fmt.Sprintf("got %s", prog.CompactPath(r.Path))
		}
	case KeyFallthrough:
		if !slices.Equal(r.Falls, e.Falls) && !(len(r.Falls) == 0 && len(e.Falls) == 0) {
			return fmt.Sprintf("got %s", fallsString(r.Falls))
		}
	case KeyCtx:
		if r.Ctx == nil {
			return "the run has no ctx"
		}
		if e.Size == 0 {
			got := r.Ctx[e.Off : e.Off+len(e.Bytes)]
			if !bytes.Equal(got, e.Bytes) {
				return fmt.Sprintf("got % x", got)
			}
			break
		}
		var v uint64
		for i := e.Size - 1; i >= 0; i-- {
			v = v<<8 | uint64(r.Ctx[e.Off+i])
		}
		if v != e.Value {
			return fmt.Sprintf("got %s", num(v))
		}
	case KeyMap:
		v := r.Maps[e.Map]
		n := e.Size
		if n == 0 {
			n = len(e.Bytes)
		}
		if e.Off+n > len(v) {
			return "the run has no such map"
		}
		if e.Size == 0 {
			if got := v[e.Off : e.Off+n]; !bytes.Equal(got, e.Bytes) {
				return fmt.Sprintf("got % x", got)
			}
			break
		}
		var x uint64
		for i := e.Size - 1; i >= 0; i-- {
			x = x<<8 | uint64(v[e.Off+i])
		}
		if x != e.Value {
			return fmt.Sprintf("got %s", num(x))
		}
	case KeyFault:
		switch {
		case e.NoFault && r.Fault != nil:
			return fmt.Sprintf("got %v", r.Fault)
		case e.NoFault:
		case r.Fault == nil:
			return "the run finished without a fault"
		case e.Fault != 0 && r.Fault.Kind != e.Fault:
			return fmt.Sprintf("got %v", r.Fault)
		case e.HasAddr && r.Fault.Addr != e.Value:
			return fmt.Sprintf("fault at %#x, not %#x: %v", r.Fault.Addr, e.Value, r.Fault)
		}
	}
	return ""
}

func num(v uint64) string {
	if int64(v) < 0 && int64(v) > -1<<31 {
		return fmt.Sprintf("%d (%#x)", int64(v), v)
	}
	return fmt.Sprintf("%d (%#x)", v, v)
}

func fallsString(f []prog.Reason) string {
	if len(f) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(f); {
		j := i
		for j < len(f) && f[j] == f[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s*%d", f[i], j-i))
		} else {
			parts = append(parts, f[i].String())
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// DiffResults lists the fields on which got departs from want, empty when
// they agree on everything every backend reports. A run step compares with
// it, and so does a checker that runs many inputs on one loaded world.
func DiffResults(want, got *prog.Result) []Diff {
	var d []Diff
	if (want.Fault == nil) != (got.Fault == nil) || (want.Fault != nil && want.Fault.Kind != got.Fault.Kind) {
		fs := func(f *prog.Fault) string {
			if f == nil {
				return "no fault"
			}
			return f.Error()
		}
		fd := Diff{Field: FieldFault, Got: fs(got.Fault), Want: fs(want.Fault)}
		if got.Fault != nil {
			fd.GotFault = got.Fault.Kind
		}
		d = append(d, fd)
	}
	if want.Fault == nil && got.Fault == nil && !want.R0Dead && !got.R0Dead && want.R0 != got.R0 {
		d = append(d, Diff{Field: FieldR0, Got: num(got.R0), Want: num(want.R0)})
	}
	if want.Count != got.Count {
		d = append(d, Diff{Field: FieldCount, Got: fmt.Sprint(got.Count), Want: fmt.Sprint(want.Count)})
	}
	if !slices.Equal(want.Path, got.Path) {
		d = append(d, Diff{Field: FieldPath, Got: prog.CompactPath(got.Path), Want: prog.CompactPath(want.Path)})
	}
	if !slices.Equal(want.Falls, got.Falls) {
		d = append(d, Diff{Field: FieldFalls, Got: fallsString(got.Falls), Want: fallsString(want.Falls)})
	}
	if !bytes.Equal(want.Ctx, got.Ctx) {
		d = append(d, Diff{Field: FieldCtx, Got: fmt.Sprintf("% x", got.Ctx), Want: fmt.Sprintf("% x", want.Ctx)})
	}
	for _, name := range slices.Sorted(maps.Keys(want.Maps)) {
		if w, g := want.Maps[name], got.Maps[name]; !bytes.Equal(w, g) {
			d = append(d, Diff{Field: FieldMaps, Got: name + ": " + hexPrefix(g), Want: name + ": " + hexPrefix(w)})
		}
	}
	return d
}

// writeCtx performs a set step on one backend's copy of ctx.
func writeCtx(ctx []byte, e Expect) {
	if e.Size == 0 {
		copy(ctx[e.Off:], e.Bytes)
		return
	}
	for i := 0; i < e.Size; i++ {
		ctx[e.Off+i] = byte(e.Value >> (8 * i))
	}
}

// Judge is what a run step with no expectations makes of one run of a
// backend beside the reference model's run of the same input: a
// difference from the model (the run step stops there), else each broken
// machine-level property, then an unexpected fault. A fuzzer that runs
// inputs on loaded machines without the runner judges them with it, so
// its findings are the ones the case's scenario file reproduces.
func Judge(want, got *prog.Result) []Failure {
	var out []Failure
	got.R0Dead = want.R0Dead
	if d := DiffResults(want, got); len(d) > 0 {
		out = append(out, Failure{Kind: FailDiffers, Diffs: d})
	} else {
		for _, v := range got.Violations {
			out = append(out, Failure{Kind: FailBroken, Violation: &v})
		}
	}
	if got.Fault != nil {
		out = append(out, Failure{Kind: FailFault, Fault: got.Fault})
	}
	return out
}

// hexPrefix shows a map's values, cut after 64 bytes.
func hexPrefix(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("% x ... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("% x", b)
}
