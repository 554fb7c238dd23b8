// Package compare sets two builds of one scenario side by side — upstream
// and the patched series on one arch, or two arches on one variant — the
// way a reviewer of the series reads them: each tail-call site's machine
// code, addresses relative to its function so that only real differences
// show; what each site cost on each side, as measured by stepping through
// it; and, for every run, whether the two sides behaved the same. The text
// front end is WriteText; other front ends read the Comparison.
package compare

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

// Side is one of the two builds.
type Side struct {
	Backend scenarios.Backend
	Kernel  prog.Kernel
	// Config is the run configuration (scenarios.Options.Config): two
	// sides may differ only in it, to show what a build costs; then
	// NameConfig names it on both, "default" too.
	Config     prog.Config
	NameConfig bool
}

func (s Side) String() string {
	name := s.Backend.Name() + "/" + s.Kernel.String()
	if s.Config != 0 || s.NameConfig {
		name += "/" + s.Config.String()
	}
	return name
}

// Built is a side's listing and measured run.
type Built struct {
	Side    Side
	Listing *listing.Listing
	Report  *scenarios.Report
}

// Comparison is the scenario on both sides.
type Comparison struct {
	Scenario    *scenarios.Scenario
	Left, Right Built
	Sites       []Site
	Runs        []Run
}

// Site is one tail call on both sides.
type Site struct {
	At prog.Loc
	// Left and Right are the call's code on each side: its function and
	// its group of the listing (nil when that side has no such site).
	Left, Right *Code
	// LeftCosts and RightCosts are what the call cost in the runs, each
	// alike cost counted once per run step.
	LeftCosts, RightCosts []scenarios.RunCost
}

// Code is a site's machine code on one side.
type Code struct {
	Func  *listing.Func
	Group *listing.Group
	Kind  string // the fix-up's description with this side's path
}

// Run is one run step on both sides: how many of its iterations agree.
type Run struct {
	Line       int
	Step       string
	Iterations int
	Same       int
	// First is the first iteration that differs (0: none), and Diff how.
	First int
	Diff  string
}

// Options choose the layout (nil: the scenario's).
type Options struct {
	Layout *prog.Layout
}

// Compare runs and lists the scenario on both sides.
func Compare(sc *scenarios.Scenario, left, right Side, o Options) (*Comparison, error) {
	c := &Comparison{Scenario: sc}
	var err error
	if c.Left, err = build(sc, left, o); err != nil {
		return nil, err
	}
	if c.Right, err = build(sc, right, o); err != nil {
		return nil, err
	}
	c.sites()
	c.runs()
	return c, nil
}

func build(sc *scenarios.Scenario, s Side, o Options) (Built, error) {
	b := Built{Side: s}
	w, err := sc.BuildFor(s.Kernel, o.Layout, s.Backend.Name())
	if err != nil {
		return b, err
	}
	arch := listing.ArchByName(s.Backend.Name())
	if arch == nil {
		return b, fmt.Errorf("%s has no machine code to compare", s.Backend.Name())
	}
	if b.Listing, err = listing.Build(w, arch, s.Kernel, listing.Options{Config: sc.Config.Under(s.Config)}); err != nil {
		return b, fmt.Errorf("%s: %w", s, sc.Locate(err))
	}
	keep := func(scenarios.Step, int) bool { return true }
	b.Report = scenarios.Run(sc, s.Backend, s.Kernel, scenarios.Options{Layout: o.Layout, Config: s.Config, Cost: true, Keep: keep})
	if b.Report.Status == scenarios.Errored {
		return b, fmt.Errorf("%s: %v", s, b.Report.Failures[len(b.Report.Failures)-1])
	}
	return b, nil
}

// siteKey pairs a tail call on one side with its twin on the other: the
// n-th tail call of a function. Not its slot: a verifier rewrite that
// one arch makes and the other does not (x86's inlined
// bpf_get_smp_processor_id()) moves the slots after it.
type siteKey struct {
	prog, fn string
	n        int
}

// tailCalls lists a listing's tail-call groups, with where each is.
func tailCalls(l *listing.Listing) (map[siteKey]*Code, map[siteKey]prog.Loc) {
	out, at := map[siteKey]*Code{}, map[siteKey]prog.Loc{}
	n := map[[2]string]int{}
	for _, f := range l.Funcs {
		for i := range f.Groups {
			if g := &f.Groups[i]; g.Site != nil {
				fn := [2]string{g.Loc.Prog, g.Loc.Func}
				k := siteKey{g.Loc.Prog, g.Loc.Func, n[fn]}
				n[fn]++
				out[k], at[k] = &Code{Func: f, Group: g, Kind: g.TailCall}, g.Loc
			}
		}
	}
	return out, at
}

func (c *Comparison) sites() {
	left, leftAt := tailCalls(c.Left.Listing)
	right, rightAt := tailCalls(c.Right.Listing)
	var keys []siteKey
	for k := range left {
		keys = append(keys, k)
	}
	for k := range right {
		if left[k] == nil {
			keys = append(keys, k)
		}
	}
	// In the scenario's order: programs, then functions, then slots.
	order := map[string]int{}
	for i, f := range c.Left.Listing.Funcs {
		if _, ok := order[f.Name()]; !ok {
			order[f.Name()] = i
		}
	}
	name := func(k siteKey) string {
		if k.fn == "" {
			return k.prog
		}
		return k.prog + "/" + k.fn
	}
	slices.SortFunc(keys, func(a, b siteKey) int {
		if d := order[name(a)] - order[name(b)]; d != 0 {
			return d
		}
		return a.n - b.n
	})
	costs := func(rep *scenarios.Report, at prog.Loc) []scenarios.RunCost {
		var out []scenarios.RunCost
		for _, rc := range rep.Costs {
			if rc.At == at {
				out = append(out, rc)
			}
		}
		return out
	}
	for _, k := range keys {
		at, ok := leftAt[k]
		if !ok {
			at = rightAt[k]
		}
		s := Site{At: at, Left: left[k], Right: right[k]}
		if l, ok := leftAt[k]; ok {
			s.LeftCosts = costs(c.Left.Report, l)
		}
		if r, ok := rightAt[k]; ok {
			s.RightCosts = costs(c.Right.Report, r)
		}
		c.Sites = append(c.Sites, s)
	}
}

// runs compares the two sides' runs, step by step and iteration by
// iteration: fault, R0, counter, path, fall-throughs and ctx.
func (c *Comparison) runs() {
	right := map[[2]int]*prog.Result{}
	for _, r := range c.Right.Report.Runs {
		right[[2]int{r.Line, r.Iter}] = r.Result
	}
	for _, r := range c.Left.Report.Runs {
		if len(c.Runs) == 0 || c.Runs[len(c.Runs)-1].Line != r.Line {
			c.Runs = append(c.Runs, Run{Line: r.Line, Step: r.Step})
		}
		run := &c.Runs[len(c.Runs)-1]
		run.Iterations++
		other, ok := right[[2]int{r.Line, r.Iter}]
		d := "the other side did not run it"
		if ok {
			d = differ(r.Result, other)
		}
		if d == "" {
			run.Same++
		} else if run.First == 0 {
			run.First, run.Diff = r.Iter, d
		}
	}
}

// differ says how two results differ, "" when they agree.
func differ(a, b *prog.Result) string {
	fault := func(r *prog.Result) string {
		if r.Fault == nil {
			return "no fault"
		}
		return r.Fault.Kind.String() + " fault"
	}
	switch {
	case fault(a) != fault(b):
		return fmt.Sprintf("%s vs %s", fault(a), fault(b))
	case a.Fault == nil && a.R0 != b.R0:
		return fmt.Sprintf("r0 %#x vs %#x", a.R0, b.R0)
	case a.Count != b.Count:
		return fmt.Sprintf("tail_call_cnt %d vs %d", a.Count, b.Count)
	case !slices.Equal(a.Path, b.Path):
		return fmt.Sprintf("path %v vs %v", a.Path, b.Path)
	case !slices.Equal(a.Falls, b.Falls):
		return fmt.Sprintf("fall-throughs %v vs %v", a.Falls, b.Falls)
	case !bytes.Equal(a.Ctx, b.Ctx):
		return fmt.Sprintf("ctx % x vs % x", a.Ctx, b.Ctx)
	}
	for _, name := range slices.Sorted(maps.Keys(a.Maps)) {
		if !bytes.Equal(a.Maps[name], b.Maps[name]) {
			return fmt.Sprintf("map %s differs", name)
		}
	}
	return ""
}

// Equivalent reports whether every run agreed on both sides.
func (c *Comparison) Equivalent() bool {
	for _, r := range c.Runs {
		if r.Same != r.Iterations {
			return false
		}
	}
	return true
}

// Stepped runs the scenario stepped on both sides, keeping each run
// step's first and last iteration, for a page to step through
// (report.Write takes both reports); max caps a run's instructions.
func Stepped(sc *scenarios.Scenario, left, right Side, o Options, max int) []*scenarios.Report {
	keep := func(st scenarios.Step, iter int) bool { return iter == 1 || iter == st.Repeat }
	so := scenarios.Options{Layout: o.Layout, Trace: true, Step: true, StepBudget: max, Keep: keep}
	lo, ro := so, so
	lo.Config, ro.Config = left.Config, right.Config
	return []*scenarios.Report{scenarios.Run(sc, left.Backend, left.Kernel, lo), scenarios.Run(sc, right.Backend, right.Kernel, ro)}
}
