package main

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"text/tabwriter"

	"tailsim/scenarios"
	"tailsim/trace"
)

// textOptions choose how much "tailsim run" prints beyond the summary.
type textOptions struct {
	verbose bool // a line per scenario, notes, and each failing run's trace
	notes   bool // notes, once per scenario
	configs bool // runs were for configurations other than the default: name them
}

// scenarioResult is one scenario's reports, for the text output.
type scenarioResult struct {
	sc      *scenarios.Scenario
	reports []*scenarios.Report
	status  scenarios.Status // the worst of its reports'
}

// groupByScenario keeps the reports' order: RunAll runs scenario by
// scenario.
func groupByScenario(reports []*scenarios.Report) []*scenarioResult {
	var out []*scenarioResult
	for _, r := range reports {
		if n := len(out); n == 0 || out[n-1].sc != r.Scenario {
			out = append(out, &scenarioResult{sc: r.Scenario, status: scenarios.Pass})
		}
		g := out[len(out)-1]
		g.reports = append(g.reports, r)
		if worse(r.Status, g.status) {
			g.status = r.Status
		}
	}
	return out
}

func worse(a, b scenarios.Status) bool {
	rank := map[scenarios.Status]int{scenarios.Pass: 0, scenarios.Fail: 1, scenarios.Errored: 2}
	return rank[a] > rank[b]
}

// combos names where a scenario ran: "ref, x86_64, arm64 × upstream,
// patched" when it ran on every pair of its arches and variants, else
// the pairs.
func combos(reports []*scenarios.Report, withConfig bool) string {
	var arches, variants, pairs, configs []string
	for _, r := range reports {
		if c := r.Config.String(); !slices.Contains(configs, c) {
			configs = append(configs, c)
		}
		if !slices.Contains(arches, r.Arch) {
			arches = append(arches, r.Arch)
		}
		if v := r.Kernel.String(); !slices.Contains(variants, v) {
			variants = append(variants, v)
		}
		if p := r.Arch + "/" + r.Kernel.String(); !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	s := strings.Join(pairs, ", ")
	if len(arches)*len(variants) == len(pairs) {
		s = strings.Join(arches, ", ") + " × " + strings.Join(variants, ", ")
	}
	if withConfig {
		s += " × config " + strings.Join(configs, ", ")
		if len(configs) > 1 && slices.Contains(arches, (scenarios.Ref{}).Name()) {
			s += " (ref under the first)"
		}
	}
	return s
}

// where names a report's run: arch/kernel, and its config when the runs
// name them.
func where(r *scenarios.Report, withConfig bool) string {
	s := r.Arch + "/" + r.Kernel.String()
	if withConfig {
		s += "/" + r.Config.String()
	}
	return s
}

// distinct gathers equal texts from several reports: each text once, in
// first-seen order, with the arch/kernels that gave it.
type distinct struct {
	texts []string
	where map[string][]string
}

func (d *distinct) add(text, where string) {
	if d.where == nil {
		d.where = map[string][]string{}
	}
	if _, seen := d.where[text]; !seen {
		d.texts = append(d.texts, text)
	}
	d.where[text] = append(d.where[text], where)
}

func (d *distinct) write(w io.Writer, label string, all int, every string) {
	for _, t := range d.texts {
		on := strings.Join(d.where[t], ", ")
		if len(d.where[t]) == all && all > 1 {
			on = every
		}
		fmt.Fprintf(w, "  %s [%s] %s\n", label, on, t)
	}
}

// printText is run's report for a person. When everything passes it is
// a line per directory; a directory with a failure or an error lists its
// scenarios, and every failure follows in full, once however many
// arch/kernels gave it. Notes are counted, and shown (once per
// scenario) with -notes or -v; -v also lists every scenario and adds the
// trace of each failing run. -json is the complete record. It returns
// the number of distinct notes, summed over the scenarios.
func printText(w io.Writer, reports []*scenarios.Report, o textOptions) (notes int) {
	results := groupByScenario(reports)
	for _, g := range results {
		notes += countNotes(g)
	}
	dirs := map[string][]*scenarioResult{}
	var order []string
	for _, g := range results {
		d := path.Dir(g.sc.File)
		if _, ok := dirs[d]; !ok {
			order = append(order, d)
		}
		dirs[d] = append(dirs[d], g)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, d := range order {
		gs := dirs[d]
		allPass := !slices.ContainsFunc(gs, func(g *scenarioResult) bool { return g.status != scenarios.Pass })
		if allPass && !o.verbose && len(gs) > 1 {
			var rs []*scenarios.Report
			notes := 0
			for _, g := range gs {
				rs = append(rs, g.reports...)
				notes += countNotes(g)
			}
			fmt.Fprintf(tw, "%s/\t%s\tPASS\t%s\n", d, plural(len(gs), "scenario"), runsLine(rs, notes, o.configs))
			continue
		}
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t\t%s\t%s\n", g.sc.File, strings.ToUpper(g.status.String()), runsLine(g.reports, countNotes(g), o.configs))
		}
	}
	tw.Flush()
	for _, g := range results {
		showNotes := (o.notes || o.verbose) && countNotes(g) > 0
		if g.status == scenarios.Pass && !showNotes {
			continue
		}
		fmt.Fprintf(w, "\n%s: %s\n", g.sc.File, g.sc.Title)
		var failures, errs, notes distinct
		for _, r := range g.reports {
			on := where(r, o.configs)
			for _, f := range r.Failures {
				if f.Kind == scenarios.FailError {
					errs.add(f.String(), on)
				} else {
					failures.add(f.String(), on)
				}
			}
			for _, n := range r.Notes {
				notes.add(n, on)
			}
		}
		every := "every arch/kernel"
		if o.configs {
			every += "/config"
		}
		errs.write(w, "ERROR", len(g.reports), every)
		failures.write(w, "FAIL", len(g.reports), every)
		if showNotes {
			notes.write(w, "note", len(g.reports), every)
		}
		if !o.verbose {
			continue
		}
		for _, r := range g.reports {
			if len(r.Failures) == 0 {
				continue
			}
			fmt.Fprintf(w, "  trace of the failing run on %s:\n", where(r, o.configs))
			if r.Traced == nil {
				fmt.Fprintln(w, "    (no trace recorded)")
				continue
			}
			trace.WriteText(w, r.Traced, trace.Options{Indent: "    | "})
			cfg := ""
			if r.Config != 0 {
				cfg = " -config " + r.Config.String()
			}
			fmt.Fprintf(w, "    (instruction by instruction: tailsim trace -arch %s -kernel %s%s %s)\n", r.Arch, r.Kernel, cfg, r.Scenario.File)
		}
	}
	fmt.Fprintln(w)
	return notes
}

// runsLine says where a scenario or a directory ran, and its notes.
func runsLine(reports []*scenarios.Report, notes int, withConfig bool) string {
	s := plural(len(reports), "run") + " on " + combos(reports, withConfig)
	if notes > 0 {
		s += "; " + plural(notes, "note")
	}
	return s
}

// countNotes counts a scenario's distinct notes.
func countNotes(g *scenarioResult) int {
	seen := map[string]bool{}
	for _, r := range g.reports {
		for _, n := range r.Notes {
			seen[n] = true
		}
	}
	return len(seen)
}

func plural(n int, what string) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
