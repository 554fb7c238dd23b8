package fuzz

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"tailsim/prog"
)

// Cell is one kind of tail call a campaign may reach: on an arch and
// variant, a site of a path, an outcome (taken, or the check that failed)
// with the counter in a bucket before it.
type Cell struct {
	Arch    string `json:"arch"`
	Variant string `json:"variant"`
	Path    string `json:"path"`    // indirect, direct, static, dynamic
	Outcome string `json:"outcome"` // taken, bounds, limit, empty
	Count   string `json:"count"`   // the counter before the call: 0, 1, 2-30, 31, 32, 33
}

// CoverageRow is a cell and how many tail calls reached it.
type CoverageRow struct {
	Cell
	Calls int `json:"calls"`
}

// Coverage counts the tail calls of a campaign by cell.
type Coverage map[Cell]int

// countBucket is the counter's bucket: the values at the limit's edges
// apart, the rest together.
func countBucket(n uint64) string {
	switch {
	case n <= 1 || n >= 31 && n <= 33:
		return fmt.Sprint(n)
	case n < 31:
		return "2-30"
	}
	return ">33"
}

func outcomeName(r prog.Reason) string {
	if r == 0 {
		return "taken"
	}
	return r.String()
}

// add counts a run's tail calls.
func (cv Coverage) add(arch, variant string, calls []prog.TailOutcome) {
	for _, c := range calls {
		cv[Cell{arch, variant, c.Path.String(), outcomeName(c.Reason), countBucket(c.Count)}]++
	}
}

// merge adds another coverage.
func (cv Coverage) merge(o Coverage) {
	for c, n := range o {
		cv[c] += n
	}
}

// Rows lists the cells reached, in order.
func (cv Coverage) Rows() []CoverageRow {
	rows := make([]CoverageRow, 0, len(cv))
	for c, n := range cv {
		rows = append(rows, CoverageRow{c, n})
	}
	slices.SortFunc(rows, func(a, b CoverageRow) int { return strings.Compare(a.key(), b.key()) })
	return rows
}

func (c Cell) key() string {
	return strings.Join([]string{c.Arch, c.Variant, c.Path, c.Outcome, fmt.Sprintf("%5s", c.Count)}, "/")
}

// FromRows is the inverse of Rows.
func FromRows(rows []CoverageRow) Coverage {
	cv := Coverage{}
	for _, r := range rows {
		cv[r.Cell] += r.Calls
	}
	return cv
}

// Wanted lists the cells a campaign over the arches and variants should
// reach: each path the arch's JIT emits for the variant (x86 has direct
// calls, arm64 none), taken, out of bounds (not at a direct site, whose
// key the verifier bounded) and on an empty slot with the counter at 0,
// 1, 31 and 32, and the limit at 33. Out of bounds at 33 too: every path
// checks the index before the counter, so at the limit an index out of
// range still falls through as bounds, and that order is worth reaching.
func Wanted(arches []prog.Backend, variants []prog.Variant) []Cell {
	var out []Cell
	for _, b := range arches {
		for _, v := range variants {
			paths := []prog.SiteKind{prog.Indirect}
			if v == prog.Patched {
				paths = []prog.SiteKind{prog.Static, prog.Dynamic}
			}
			if b.DirectTailCalls() {
				paths = append(paths, prog.Direct)
			}
			for _, p := range paths {
				outcomes := []prog.Reason{0, prog.FallBounds, prog.FallEmpty}
				if p == prog.Direct {
					outcomes = []prog.Reason{0, prog.FallEmpty}
				}
				for _, o := range outcomes {
					for _, n := range []uint64{0, 1, 31, 32} {
						out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(o), countBucket(n)})
					}
				}
				if p != prog.Direct {
					out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(prog.FallBounds), countBucket(prog.MaxTailCallCnt)})
				}
				out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(prog.FallLimit), countBucket(prog.MaxTailCallCnt)})
			}
		}
	}
	return out
}

// Missing lists the wanted cells the coverage did not reach.
func (cv Coverage) Missing(wanted []Cell) []Cell {
	var out []Cell
	for _, c := range wanted {
		if cv[c] == 0 {
			out = append(out, c)
		}
	}
	return out
}

// WriteText prints the matrix: a line per arch, variant and path, the
// calls reached for each outcome and counter bucket, then the unexpected
// cells reached: taken@33 is a call the limit should have stopped, limit
// below 33 one it should not have, anything past 33 a counter that
// overran. The middle bucket's taken, bounds and empty are ordinary and
// left out.
func (cv Coverage) WriteText(w io.Writer, wanted []Cell) error {
	type line struct{ arch, variant, path string }
	var order []line
	cells := map[line][]string{}
	isWanted := map[Cell]bool{}
	for _, c := range wanted {
		isWanted[c] = true
		l := line{c.Arch, c.Variant, c.Path}
		if _, ok := cells[l]; !ok {
			order = append(order, l)
		}
		cells[l] = append(cells[l], fmt.Sprintf("%s@%s=%d", c.Outcome, c.Count, cv[c]))
	}
	var extra []string
	for _, r := range cv.Rows() {
		if !isWanted[r.Cell] && (r.Count != countBucket(2) || r.Outcome == outcomeName(prog.FallLimit)) {
			extra = append(extra, fmt.Sprintf("%s/%s %s %s@%s=%d", r.Arch, r.Variant, r.Path, r.Outcome, r.Count, r.Calls))
		}
	}
	var err error
	for _, l := range order {
		if err == nil {
			_, err = fmt.Fprintf(w, "  %s/%s %s: %s\n", l.arch, l.variant, l.path, strings.Join(cells[l], " "))
		}
	}
	if len(extra) > 0 && err == nil {
		_, err = fmt.Fprintf(w, "  unexpected: %s\n", strings.Join(extra, " "))
	}
	return err
}
