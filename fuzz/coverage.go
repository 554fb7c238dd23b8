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
// with the counter in a bucket before it, made outside a slot change or in
// one of its windows.
type Cell struct {
	Arch    string `json:"arch"`
	Kernel  string `json:"kernel"`
	Path    string `json:"path"`    // indirect, direct, static, dynamic
	Outcome string `json:"outcome"` // taken, bounds, limit, empty
	Count   string `json:"count"`   // the counter before the call: 0, 1, 2-30, 31, 32, 33
	// Window is the change of the called slot in flight ("update
	// stop=ptrs", ...; Window's names), or "" when none was.
	Window string `json:"window,omitempty"`
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

// add counts a run's tail calls, made in window w (the case generator
// makes a window only where every call of the run is through the slot in
// flight).
func (cv Coverage) add(arch, variant string, w Window, calls []prog.TailOutcome) {
	win := ""
	if w != NoWindow {
		win = w.String()
	}
	for _, c := range calls {
		cv[Cell{arch, variant, c.Path.String(), outcomeName(c.Reason), countBucket(c.Count), win}]++
	}
}

// windowOutcome is what a call through a slot in flight does in window w:
// each path reads one part of the slot (indirect and dynamic ptrs[], the
// patched static path the cached half, a direct call its poke site) and
// sees the change only once the window's steps include that part's. An
// update brings the target (taken), a delete removes it (empty).
func windowOutcome(path prog.SiteKind, w Window) prog.Reason {
	reads := prog.EffectPtr
	switch path {
	case prog.Static:
		reads = prog.EffectCached
	case prog.Direct:
		// Both poke steps come after the windows the fuzzer makes.
		reads = prog.EffectTarget
	}
	if seen := reads <= w.stop(); seen == w.update() {
		return 0
	}
	return prog.FallEmpty
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
	return strings.Join([]string{c.Arch, c.Kernel, c.Path, c.Window, c.Outcome, fmt.Sprintf("%5s", c.Count)}, "/")
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
// Then each window of a slot change, with the counter at 0, and the
// outcome the path's part of the slot gives there (windowOutcome).
func Wanted(arches []prog.Backend, variants []prog.Kernel) []Cell {
	var out []Cell
	for _, b := range arches {
		for _, v := range variants {
			paths := []prog.SiteKind{prog.Indirect}
			if v == prog.Linux618Series {
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
						out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(o), countBucket(n), ""})
					}
				}
				if p != prog.Direct {
					out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(prog.FallBounds), countBucket(prog.MaxTailCallCnt), ""})
				}
				out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(prog.FallLimit), countBucket(prog.MaxTailCallCnt), ""})
				for _, w := range windows {
					out = append(out, Cell{b.Name(), v.String(), p.String(), outcomeName(windowOutcome(p, w)), countBucket(0), w.String()})
				}
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
// calls reached for each outcome and counter bucket (a window's in
// brackets before them), then the unexpected cells reached: taken@33 is a
// call the limit should have stopped, limit below 33 one it should not
// have, anything past 33 a counter that overran, and in a window a call
// taken or empty against its part of the slot. The middle bucket's taken,
// bounds and empty are ordinary and left out, and in windows every bucket.
func (cv Coverage) WriteText(w io.Writer, wanted []Cell) error {
	type line struct{ arch, variant, path string }
	var order []line
	cells := map[line][]string{}
	isWanted := map[Cell]bool{}
	for _, c := range wanted {
		isWanted[c] = true
		l := line{c.Arch, c.Kernel, c.Path}
		if _, ok := cells[l]; !ok {
			order = append(order, l)
		}
		cells[l] = append(cells[l], c.String()+fmt.Sprintf("=%d", cv[c]))
	}
	var extra []string
	for _, r := range cv.Rows() {
		if !isWanted[r.Cell] && r.unexpected() {
			extra = append(extra, fmt.Sprintf("%s/%s %s %s=%d", r.Arch, r.Kernel, r.Path, r.Cell, r.Calls))
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

// String is the cell's outcome, counter and window: "taken@0",
// "[update stop=ptrs]empty@0".
func (c Cell) String() string {
	s := c.Outcome + "@" + c.Count
	if c.Window != "" {
		s = "[" + c.Window + "]" + s
	}
	return s
}

// unexpected reports whether no correct code reaches the cell, which is
// not a wanted one.
func (c Cell) unexpected() bool {
	limit, bounds := outcomeName(prog.FallLimit), outcomeName(prog.FallBounds)
	at33 := c.Count == countBucket(prog.MaxTailCallCnt)
	switch {
	case c.Count == countBucket(prog.MaxTailCallCnt+1), c.Outcome == limit && !at33, at33 && c.Outcome != limit && c.Outcome != bounds:
		return true
	case c.Window == "":
		return c.Count != countBucket(2) || c.Outcome == limit
	}
	for _, w := range windows {
		for _, p := range []prog.SiteKind{prog.Indirect, prog.Direct, prog.Static, prog.Dynamic} {
			if w.String() == c.Window && p.String() == c.Path && (c.Outcome == outcomeName(0) || c.Outcome == outcomeName(prog.FallEmpty)) {
				return c.Outcome != outcomeName(windowOutcome(p, w))
			}
		}
	}
	return false
}
