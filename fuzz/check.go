package fuzz

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"tailsim/prog"
	"tailsim/scenarios"
)

// Finding is a case on which a backend failed a check.
type Finding struct {
	Case      Case
	Arch      string
	Kernel    string
	Failures  []scenarios.Failure
	Signature string // what went wrong, without the numbers: for deduplication
}

// Check runs a case on every backend and variant. The scenario carries no
// expectations, so what fails is a divergence from the reference model, a
// broken machine-level property, or a fault. A backend too slow to finish
// a run is no finding: Check says so with an error wrapping
// prog.ErrTooSlow, beside the findings of the others.
func Check(c Case, backends []prog.Backend, variants []prog.Kernel) ([]Finding, error) {
	return check(c, backends, variants, nil)
}

// check is Check, counting the tail calls of every run into cov when it
// is not nil.
func check(c Case, backends []prog.Backend, variants []prog.Kernel, cov Coverage) ([]Finding, error) {
	sc, err := scenarios.Parse("case.txtar", []byte(c.Text()))
	if err != nil {
		return nil, err
	}
	var o scenarios.Options
	if cov != nil {
		o.Keep = func(scenarios.Step, int) bool { return true }
	}
	var out []Finding
	slow := false
	for _, b := range backends {
		for _, v := range variants {
			rep := scenarios.Run(sc, b, v, o)
			if n := len(rep.Failures); rep.Status == scenarios.Errored && errors.Is(rep.Failures[n-1].Err, prog.ErrTooSlow) {
				// The machine's, not a finding; and its runs stay out of
				// the coverage so the matrix does not depend on load.
				slow = true
				continue
			}
			if rep.Refused {
				// The case parsed (for v6.18), so this kernel's verifier
				// refuses it: 6.1 rounds frames to 32 bytes and may find a
				// tail-calling subprogram's callers too deep. Its answer,
				// not a finding.
				continue
			}
			for _, r := range rep.Runs {
				cov.add(b.Name(), v.String(), c.window(), r.Result.Calls)
			}
			if rep.Status == scenarios.Pass {
				continue
			}
			out = append(out, Finding{Case: c, Arch: b.Name(), Kernel: v.String(), Failures: rep.Failures,
				Signature: b.Name() + "/" + v.String() + ": " + signature(rep.Failures)})
		}
	}
	if slow {
		return out, fmt.Errorf("case %d: %w", c.Seed, prog.ErrTooSlow)
	}
	return out, nil
}

// signature reduces failures to their kinds: which fields differ from the
// reference, which properties broke, which faults happened. A differing
// fault is named by what the backend did ("access fault", "no fault").
func signature(failures []scenarios.Failure) string {
	var parts []string
	for _, f := range failures {
		switch {
		case f.Kind == scenarios.FailDiffers:
			var fields []string
			for _, d := range f.Diffs {
				name := d.Field.String()
				if d.Field == scenarios.FieldFault {
					name = "no fault"
					if d.GotFault != 0 {
						name = d.GotFault.String() + " fault"
					}
				}
				fields = append(fields, name)
			}
			parts = append(parts, "differs("+strings.Join(fields, ",")+")")
		case f.Kind == scenarios.FailBroken && f.Violation != nil:
			parts = append(parts, "broken("+f.Violation.Property.String()+")")
		case f.Kind == scenarios.FailFault && f.Fault != nil:
			parts = append(parts, "fault("+f.Fault.Kind.String()+")")
		default:
			parts = append(parts, "other")
		}
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), " ")
}

// Known names the library scenario that explains a finding when it is the
// modelled kernel code's known behaviour, or "" for a new finding.
func Known(f Finding) string {
	c := f.Case
	switch {
	case f.Kernel == prog.Linux618Series.String() && c.MaxEntries >= Disp32Limit(c.Layout) && c.loadsCachedTarget(f.Arch):
		return "scenarios/library/findings/patched_static_disp32.txtar"
	case f.Arch == "x86_64" && f.Kernel == prog.Linux618Series.String() && c.mixesStaticAndDynamic():
		return "scenarios/library/findings/patched_x86_mixed_sites.txtar"
	}
	return ""
}

// loadsCachedTarget reports whether the fuzzed site takes the patched
// static path as far as the load of the cached target: one map reaches it,
// it is not a direct call (x86 makes a constant key below max_entries one,
// unless direct calls are off; arm64 has none), the index passes the bounds
// check and the counter is below the limit.
func (c Case) loadsCachedTarget(arch string) bool {
	direct := arch == "x86_64" && c.KeyConst && !c.NoDirect && !c.Unprivileged && c.Index < uint64(c.MaxEntries)
	index := uint32(c.Index)
	if c.Unprivileged {
		var ok bool
		if index, ok = prog.UnprivIndex(c.Index, c.MaxEntries); !ok {
			return false
		}
	}
	return !c.Poisoned && !direct && index < c.MaxEntries && c.Chain < 33 && c.Preset < 33
}

// mixesStaticAndDynamic reports whether entry itself holds a patched
// static site (the leading chain's, when it cannot be direct) and a
// dynamic one (the fuzzed site, reached by two maps).
func (c Case) mixesStaticAndDynamic() bool {
	return c.Chain > 0 && c.NoDirect && c.Poisoned && !c.InSub
}
