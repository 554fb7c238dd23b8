package compare

import (
	"fmt"
	"io"
	"strings"

	"tailsim/listing"
	"tailsim/scenarios"
)

// column is the width of the left side's code.
const column = 58

// WriteText writes the comparison: each site's code side by side with its
// cost on each side, then the runs.
func (c *Comparison) WriteText(w io.Writer) error {
	p := &printer{w: w}
	l, r := c.Left.Side.String(), c.Right.Side.String()
	p.f("%s: %s\n%s beside %s\n", c.Scenario.File, c.Scenario.Title, l, r)
	if len(c.Sites) == 0 {
		p.f("\nno tail calls\n")
	}
	for _, s := range c.Sites {
		p.f("\ntail call %s\n", s.At)
		p.side(l, s.Left, r, s.Right, c.Left.Listing, c.Right.Listing)
		p.costs(l, s.LeftCosts, r, s.RightCosts)
	}
	p.f("\nruns (result, tail_call_cnt, path, fall-throughs, ctx):\n")
	for _, run := range c.Runs {
		if run.Same == run.Iterations {
			p.f("  line %d %s: the same in %s\n", run.Line, run.Step, iterations(run.Iterations))
		} else if run.Iterations == 1 {
			p.f("  line %d %s: DIFFERENT: %s (%s vs %s)\n", run.Line, run.Step, run.Diff, l, r)
		} else {
			p.f("  line %d %s: DIFFERENT in %d of %s, first at iteration %d: %s (%s vs %s)\n",
				run.Line, run.Step, run.Iterations-run.Same, iterations(run.Iterations), run.First, run.Diff, l, r)
		}
	}
	for _, b := range []Built{c.Left, c.Right} {
		p.f("%s: %s", b.Side, strings.ToUpper(b.Report.Status.String()))
		if n := len(b.Report.Failures); n > 0 {
			p.f(" (%d failed checks: tailsim run -arch %s -kernel %s %s)", n, b.Side.Backend.Name(), b.Side.Kernel, c.Scenario.File)
		}
		p.f("\n")
	}
	return p.err
}

func iterations(n int) string {
	if n == 1 {
		return "its one run"
	}
	return fmt.Sprintf("all %d iterations", n)
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// rows renders a site's instructions, offsets relative to its function.
func rows(c *Code, l *listing.Listing) []string {
	if c == nil {
		return []string{"(no such tail call)"}
	}
	out := []string{c.Kind}
	for _, r := range c.Group.Rows {
		out = append(out, fmt.Sprintf("%4x: %s", r.Off, l.RelText(c.Func, r)))
	}
	return out
}

// side prints two sites' code in two columns.
func (p *printer) side(ln string, l *Code, rn string, r *Code, ll, rl *listing.Listing) {
	left, right := rows(l, ll), rows(r, rl)
	p.f("  %-*s | %s\n", column, ln, rn)
	for i := 0; i < max(len(left), len(right)); i++ {
		a, b := "", ""
		if i < len(left) {
			a = left[i]
		}
		if i < len(right) {
			b = right[i]
		}
		if len(a) > column {
			a = a[:column-1] + "…"
		}
		p.f("  %-*s | %s\n", column, a, b)
	}
	if n, m := len(left)-1, len(right)-1; l != nil && r != nil {
		p.f("  %-*s | %s\n", column, fmt.Sprintf("%d instructions, %d bytes", n, codeBytes(l)), fmt.Sprintf("%d instructions, %d bytes", m, codeBytes(r)))
	}
}

func codeBytes(c *Code) int {
	n := 0
	for _, r := range c.Group.Rows {
		n += len(r.Bytes)
	}
	return n
}

// costs prints what the site cost on each side, one line per distinct
// cost.
func (p *printer) costs(ln string, lc []scenarios.RunCost, rn string, rc []scenarios.RunCost) {
	if len(lc) == 0 && len(rc) == 0 {
		p.f("  cost: not reached by the runs\n")
		return
	}
	p.f("  cost, measured (per call: instructions run; loads from the array and programs, from the counter and stack, dependent; stores):\n")
	w := max(18, len(ln), len(rn))
	for _, side := range []struct {
		name  string
		costs []scenarios.RunCost
	}{{ln, lc}, {rn, rc}} {
		if len(side.costs) == 0 {
			p.f("    %-*s no cost: the call never went to a program or to out (a fault, or code gone astray)\n", w, side.name)
		}
		for _, c := range side.costs {
			out := "to out"
			if c.Taken {
				out = "taken"
			}
			stores := "stores"
			if c.Stores == 1 {
				stores = "store"
			}
			p.f("    %-*s %-8s %-6s x%-5d %3d insns; loads %d array/prog + %d counter/stack (%d dependent); %d %s  [line %d]\n",
				w, side.name, c.Path, out, c.Times, c.Insns, c.ArrayProgLoads, c.CounterStackLoads, c.DependentLoads, c.Stores, stores, c.Line)
		}
	}
}
