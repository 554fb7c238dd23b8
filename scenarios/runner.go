package scenarios

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"tailsim/prog"
)

// Status is the verdict of one scenario on one (arch, variant).
type Status uint8

const (
	Pass Status = iota
	Fail
	Errored // the scenario could not be run there (a JIT refused it, ...)
)

func (s Status) String() string { return [...]string{"pass", "fail", "error"}[s] }

// Report is the outcome of one scenario on one (arch, variant).
type Report struct {
	Scenario *Scenario
	Arch     string
	Variant  prog.Variant
	Status   Status
	Failures []string
	// Notes are facts worth showing that are not failures, such as where
	// the kernel interpreter's counting rule would give another result.
	Notes    []string
	Trace    []string // events of the first failing run, when tracing
	Duration time.Duration
}

// Options select what Run does.
type Options struct {
	Variants []prog.Variant
	Layout   *prog.Layout // overrides the scenario's layout
	Trace    bool
}

// Combos lists the (backend, variant) pairs a scenario runs on: the
// selection intersected with the scenario's own arch and variant lines.
func (sc *Scenario) Combos(backends []Backend, variants []prog.Variant) (out []struct {
	B Backend
	V prog.Variant
}) {
	for _, b := range backends {
		if len(sc.Arches) > 0 && !slices.Contains(sc.Arches, b.Name()) {
			continue
		}
		for _, v := range variants {
			if len(sc.Variants) > 0 && !slices.Contains(sc.Variants, v) {
				continue
			}
			out = append(out, struct {
				B Backend
				V prog.Variant
			}{b, v})
		}
	}
	return out
}

// Run runs a scenario on one backend and variant. The reference model runs
// beside any other backend and every result is compared with it; a second
// reference run with the kernel interpreter's counting rule supplies the
// interp.* expectations and the notes on where the rules differ.
func Run(sc *Scenario, b Backend, v prog.Variant, o Options) *Report {
	start := time.Now()
	rep := &Report{Scenario: sc, Arch: b.Name(), Variant: v}
	defer func() {
		rep.Duration = time.Since(start)
		if rep.Status == Pass && len(rep.Failures) > 0 {
			rep.Status = Fail
		}
	}()
	errored := func(err error) *Report {
		rep.Status = Errored
		rep.Failures = append(rep.Failures, err.Error())
		return rep
	}
	layout := sc.Layout
	if o.Layout != nil {
		layout = *o.Layout
	}
	w, err := sc.BuildWith(layout)
	if err != nil {
		return errored(err)
	}
	lo := LoadOptions{Budget: sc.Budget, Trace: o.Trace, Hardening: sc.Hardening}
	m, err := b.Load(w, v, lo)
	if err != nil {
		return errored(err)
	}
	defer m.Close()
	var ref Machine
	if _, isRef := b.(Ref); !isRef {
		ref, _ = Ref{NoDirect: b.Name() == "arm64"}.Load(w, v, LoadOptions{Budget: sc.Budget})
	}
	alt, _ := Ref{Rule: prog.RuleInterp}.Load(w, v, LoadOptions{Budget: sc.Budget})
	ctxM, ctxRef, ctxAlt := cloneCtx(w.Ctx), cloneCtx(w.Ctx), cloneCtx(w.Ctx)
	arch, variant := b.Name(), v.String()
	// The steps of stopped slot changes, waiting for their finish.
	pending := map[string][]prog.Effect{}
	apply := func(st Step, effects []prog.Effect) error {
		for _, e := range effects {
			e.Apply()
			if err := m.Apply(e); err != nil {
				return fmt.Errorf("line %d: %s: %v", st.Line, st, err)
			}
		}
		return nil
	}

	for _, st := range sc.Steps {
		failAt := func(line int, format string, args ...any) {
			rep.Failures = append(rep.Failures, fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...)))
		}
		fail := func(format string, args ...any) { failAt(st.Line, format, args...) }
		if st.Kind == StepSet {
			for _, c := range [][]byte{ctxM, ctxRef, ctxAlt} {
				writeCtx(c, st.Set)
			}
			continue
		}
		if st.Kind == StepFinish {
			key := fmt.Sprintf("%s[%d]", st.Map, st.Index)
			if err := apply(st, pending[key]); err != nil {
				return errored(err)
			}
			delete(pending, key)
			continue
		}
		if st.Kind != StepRun {
			a := w.Array(st.Map)
			var effects []prog.Effect
			var err error
			if st.Index > 0xffffffff {
				err = prog.ErrE2BIG
			} else if st.Kind == StepUpdate {
				effects, err = a.Update(uint32(st.Index), w.Prog(st.Prog))
			} else {
				effects, err = a.Delete(uint32(st.Index))
			}
			checked := false
			for _, e := range st.Expect {
				if e.Applies(arch, variant) {
					checked = true
					if got := errnoName(err); got != e.Word {
						failAt(e.Line, "%s: expected error %s, got %s", st, e.Word, got)
					}
				}
			}
			if err != nil && !checked {
				fail("%s failed: %v", st, err)
			}
			if st.Stopped {
				n := 0
				for n < len(effects) && effects[n].Kind <= st.Stop {
					n++
				}
				pending[fmt.Sprintf("%s[%d]", st.Map, st.Index)] = effects[n:]
				effects = effects[:n]
			}
			if err := apply(st, effects); err != nil {
				return errored(err)
			}
			continue
		}
		entry := w.Prog(st.Prog)
		var res, resAlt *prog.Result
		ruleNote := ""
		// A step may state that this arch/variant's code departs from the
		// reference model: the kernel code's real behaviour, shown rather
		// than hidden. The other expectations then describe the JIT.
		wantDivergence, diverged := false, false
		wantBroken := map[string]bool{} // property -> seen
		for _, e := range st.Expect {
			if e.Key == "divergence" && e.Applies(arch, variant) {
				wantDivergence = true
			}
			if e.Key == "broken" && e.Applies(arch, variant) {
				wantBroken[e.Word] = false
			}
		}
		for i := 0; i < st.Repeat; i++ {
			res = m.Run(entry, ctxM)
			resAlt = alt.Run(entry, ctxAlt)
			jit := res
			if ref != nil {
				jit = ref.Run(entry, ctxRef)
			}
			if d := diffResults(jit, resAlt); d != "" && ruleNote == "" {
				iter := ""
				if st.Repeat > 1 {
					iter = fmt.Sprintf(" (from iteration %d of %d)", i+1, st.Repeat)
				}
				ruleNote = fmt.Sprintf("line %d: %s%s: the kernel interpreter (it reads ptrs[] at run time and counts a tail call before its empty-slot check) would give %s", st.Line, st, iter, d)
			}
			if ref != nil {
				// Whether R0 is defined is a property of the BPF program,
				// which only the reference model tracks.
				res.R0Dead = jit.R0Dead
				if d := diffResults(jit, res); d != "" && wantDivergence {
					if !diverged {
						rep.Notes = append(rep.Notes, fmt.Sprintf("line %d: %s (iteration %d of %d): %s departs from the reference model, as expected: %s", st.Line, st, i+1, st.Repeat, arch, d))
					}
					diverged = true
				} else if d != "" {
					fail("%s (iteration %d of %d): %s differs from the reference model: %s", st, i+1, st.Repeat, arch, d)
					rep.Trace = traceLines(res)
					break
				}
			}
			unexpected := false
			for _, v := range res.Violations {
				if _, ok := wantBroken[v.Property]; ok {
					if !wantBroken[v.Property] {
						rep.Notes = append(rep.Notes, fmt.Sprintf("line %d: %s (iteration %d of %d): as expected, %s", st.Line, st, i+1, st.Repeat, v))
					}
					wantBroken[v.Property] = true
					continue
				}
				fail("%s (iteration %d of %d): %s", st, i+1, st.Repeat, v)
				unexpected = true
			}
			if unexpected {
				rep.Trace = traceLines(res)
				break
			}
			if res.Fault != nil {
				break
			}
		}
		if ruleNote != "" {
			rep.Notes = append(rep.Notes, ruleNote)
		}
		for prop, seen := range wantBroken {
			if !seen {
				fail("%s: expected the check %q to break on %s/%s, but it held", st, prop, arch, variant)
			}
		}
		if wantDivergence && !diverged {
			fail("%s: expected %s/%s to depart from the reference model, but it agreed", st, arch, variant)
		}
		before := len(rep.Failures)
		faultChecked := false
		for _, e := range st.Expect {
			if !e.Applies(arch, variant) {
				continue
			}
			if e.Key == "fault" {
				faultChecked = true
			}
			if e.Key == "divergence" || e.Key == "broken" {
				continue
			}
			got := res
			if e.Interp {
				got = resAlt
			}
			if msg := check(e, got); msg != "" {
				failAt(e.Line, "expect %s: %s", e.Source, msg)
			}
		}
		if res.Fault != nil && !faultChecked {
			fail("%s: %v", st, res.Fault)
		}
		if len(rep.Failures) > before && rep.Trace == nil {
			rep.Trace = traceLines(res)
		}
	}
	return rep
}

func cloneCtx(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func traceLines(r *prog.Result) []string {
	var out []string
	for _, e := range r.Trace {
		out = append(out, e.String())
	}
	if r.Fault != nil {
		out = append(out, r.Fault.Error())
	}
	return out
}

// check returns "" when the result meets the expectation, else what was seen.
func check(e Expect, r *prog.Result) string {
	switch e.Key {
	case "r0", "w0":
		if r.R0Dead {
			return "r0 is undefined: the last tail call failed and nothing wrote r0 since"
		}
	}
	switch e.Key {
	case "r0":
		if r.R0 != e.Value {
			return fmt.Sprintf("got %s", num(r.R0))
		}
	case "w0":
		if uint32(r.R0) != uint32(e.Value) {
			return fmt.Sprintf("got %s", num(uint64(uint32(r.R0))))
		}
	case "count":
		if r.Count != e.Value {
			return fmt.Sprintf("got %d", r.Count)
		}
	case "path":
		if !slices.Equal(r.Path, e.Path) {
			return fmt.Sprintf("got %s", compactPath(r.Path))
		}
	case "fallthrough":
		if !slices.Equal(r.Falls, e.Falls) && !(len(r.Falls) == 0 && len(e.Falls) == 0) {
			return fmt.Sprintf("got %s", fallsString(r.Falls))
		}
	case "ctx":
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
	case "fault":
		switch {
		case e.Word == "none" && r.Fault != nil:
			return fmt.Sprintf("got %v", r.Fault)
		case e.Word != "none" && r.Fault == nil:
			return "the run finished without a fault"
		case e.Word != "none" && e.Word != "" && r.Fault.Kind != e.Word:
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

// compactPath writes runs of one name as NAME*N, the syntax expectations use.
func compactPath(p []string) string {
	var parts []string
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] == p[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s*%d", p[i], j-i))
		} else {
			parts = append(parts, p[i])
		}
		i = j
	}
	return strings.Join(parts, " ")
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

// diffResults describes how two results differ, or "" when they agree on
// everything every backend reports.
func diffResults(want, got *prog.Result) string {
	var d []string
	if (want.Fault == nil) != (got.Fault == nil) || (want.Fault != nil && want.Fault.Kind != got.Fault.Kind) {
		fs := func(f *prog.Fault) string {
			if f == nil {
				return "no fault"
			}
			return f.Error()
		}
		d = append(d, fmt.Sprintf("%s instead of %s", fs(got.Fault), fs(want.Fault)))
	}
	if want.Fault == nil && got.Fault == nil && !want.R0Dead && !got.R0Dead && want.R0 != got.R0 {
		d = append(d, fmt.Sprintf("r0 %s instead of %s", num(got.R0), num(want.R0)))
	}
	if want.Count != got.Count {
		d = append(d, fmt.Sprintf("count %d instead of %d", got.Count, want.Count))
	}
	if !slices.Equal(want.Path, got.Path) {
		d = append(d, fmt.Sprintf("path %s instead of %s", compactPath(got.Path), compactPath(want.Path)))
	}
	if !slices.Equal(want.Falls, got.Falls) {
		d = append(d, fmt.Sprintf("fall-throughs %s instead of %s", fallsString(got.Falls), fallsString(want.Falls)))
	}
	if !bytes.Equal(want.Ctx, got.Ctx) {
		d = append(d, fmt.Sprintf("ctx % x instead of % x", got.Ctx, want.Ctx))
	}
	return strings.Join(d, "; ")
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
