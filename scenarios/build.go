package scenarios

import (
	"errors"
	"fmt"

	"tailsim/prog"
)

// Build creates a fresh world: programs linked and fixed up, arrays created
// and filled from the slots section, with the scenario's layout as v6.18
// verifies the programs for the reference model. Each (arch, kernel) run
// gets its own world (BuildFor), since run steps change the arrays.
func (sc *Scenario) Build() (*prog.World, error) { return sc.BuildFor(prog.Linux618, nil, "") }

// LayoutFor is the structure layout a run under kernel k uses: override
// (a run's -layout) when not nil, else the scenario's layout line, else
// the kernel's own offsets.
func (sc *Scenario) LayoutFor(k prog.Kernel, override *prog.Layout) prog.Layout {
	switch {
	case override != nil:
		return *override
	case sc.LayoutLine > 0:
		return sc.Layout
	}
	return k.DefaultLayout()
}

// BuildFor is Build as kernel k on one arch ("x86_64", "arm64"; "" or
// "ref" for the model alone) verifies the programs: some helpers are
// inlined by some versions on some arches only (prog.FixupOptions), and
// the layout follows LayoutFor.
func (sc *Scenario) BuildFor(k prog.Kernel, layout *prog.Layout, arch string) (*prog.World, error) {
	fail := func(line int, format string, args ...any) error {
		return &Error{File: sc.File, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	w := &prog.World{Layout: sc.LayoutFor(k, layout)}
	if sc.Ctx != nil {
		w.Ctx = append([]byte{}, sc.Ctx...)
	}
	for _, m := range sc.Maps {
		if m.Array {
			a, err := prog.NewArrayMap(m.Name, m.MaxEntries, m.ValueSize)
			if err != nil {
				return nil, fail(m.Line, "%v", err)
			}
			a.Line, a.Vars = m.Line, m.Vars
			copy(a.Values, m.Init)
			w.Maps = append(w.Maps, a)
			continue
		}
		a, err := prog.NewProgArray(m.Name, m.MaxEntries)
		if err != nil {
			return nil, fail(m.Line, "%v", err)
		}
		a.Line = m.Line
		w.Arrays = append(w.Arrays, a)
	}
	pool := map[string]*prog.Function{}
	for _, d := range sc.Subprogs {
		pool[d.Name] = &prog.Function{Name: d.Name, Insns: d.Insns, StackDepth: d.Stack, Line: d.Line}
	}
	for _, d := range sc.Progs {
		main := &prog.Function{Name: d.Name, Insns: d.Insns, StackDepth: d.Stack, Line: d.Line}
		p, err := prog.NewProgram(d.Name, d.Type, main, pool)
		if err != nil {
			return nil, locate(sc.File, err)
		}
		w.Progs = append(w.Progs, p)
	}
	fo := sc.Fixup
	fo.Arch, fo.Kernel = arch, k
	if err := w.Fix(fo); err != nil {
		var pe *prog.PosError
		if asPosError(err, &pe) && pe.Line == 0 && sc.Object != "" {
			// An object's instruction has no scenario line: the object's
			// line, with the program the verifier refused.
			return nil, &Error{File: sc.File, Line: sc.ObjectLine, Msg: sc.Object + ": " + err.Error()}
		}
		return nil, locate(sc.File, err)
	}
	slotArgs := func(line int, mapName string, index uint64, progName string) (*prog.ProgArray, *prog.Program, error) {
		a := w.Array(mapName)
		if a == nil {
			return nil, nil, fail(line, "unknown map %q", mapName)
		}
		if progName == "" {
			return a, nil, nil
		}
		p := w.Prog(progName)
		if p == nil {
			return nil, nil, fail(line, "unknown program %q", progName)
		}
		return a, p, nil
	}
	for _, s := range sc.Slots {
		a, p, err := slotArgs(s.Line, s.Map, s.Index, s.Prog)
		if err != nil {
			return nil, err
		}
		if s.Index >= uint64(a.MaxEntries) {
			return nil, fail(s.Line, "slot %s[%d] is beyond max_entries %d (E2BIG)", s.Map, s.Index, a.MaxEntries)
		}
		effects, err := a.Update(uint32(s.Index), p)
		if err != nil {
			return nil, fail(s.Line, "filling %s[%d] with %s: %v", s.Map, s.Index, s.Prog, err)
		}
		for _, e := range effects {
			e.Apply()
		}
	}
	for _, st := range sc.Steps {
		switch st.Kind {
		case StepRun:
			if w.Prog(st.Prog) == nil {
				return nil, fail(st.Line, "unknown program %q", st.Prog)
			}
		case StepSet:
		default:
			if _, _, err := slotArgs(st.Line, st.Map, st.Index, st.Prog); err != nil {
				return nil, err
			}
		}
		checks := st.Expect
		if st.Kind == StepSet {
			if sc.Ctx == nil && st.Set.Key == KeyCtx {
				return nil, fail(st.Line, "set needs a ctx section")
			}
			checks = []Expect{st.Set}
		}
		for _, e := range checks {
			for _, name := range e.Path {
				if w.Prog(name) == nil {
					return nil, fail(e.Line, "path names %q, which is not a program", name)
				}
			}
			if e.Key != KeyCtx {
				continue
			}
			n := e.Size
			if n == 0 {
				n = len(e.Bytes)
			}
			if e.Off+n > len(sc.Ctx) {
				return nil, fail(e.Line, "ctx+%d spans past the %d-byte ctx", e.Off, len(sc.Ctx))
			}
		}
	}
	return w, nil
}

// errnoName maps prog array errors to the names scenarios use.
func errnoName(err error) string {
	for _, e := range []error{prog.ErrE2BIG, prog.ErrENOENT, prog.ErrEINVAL} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err == nil {
		return "none"
	}
	return err.Error()
}
