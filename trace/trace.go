// Package trace renders what a run did, for people and for tools: the
// events of any run (programs entered, tail calls, bpf2bpf calls and
// returns, helper calls) and, for a stepped run (prog.LoadOptions.Step),
// every instruction with the registers it changed, the memory it read and
// wrote by name, the tail-call checks it decided and what each tail call
// cost. "tailsim trace", the -v traces of "tailsim run" and the HTML
// report all read a run through this package, so they tell one story.
package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"tailsim/prog"
)

// Options choose what the text shows.
type Options struct {
	// Brief folds each BPF instruction's machine code into one line.
	Brief bool
	// Events leaves the instructions out: programs entered, calls, tail
	// calls and their costs only.
	Events bool
	// Indent prefixes every line ("    | " for run -v).
	Indent string
}

// Item is one line of a run's story: an event, an instruction, a tail
// call's cost, in the order they happened. Exactly one of the pointers is
// set.
type Item struct {
	Event *prog.Event
	Exec  *prog.Exec
	Index int // Exec's index in Result.Execs
	Cost  *prog.TailCost
}

// Items interleaves a result's events, instructions and costs: each event
// before the instruction its Step names, each tail call's cost after its
// event.
func Items(r *prog.Result) []Item {
	var out []Item
	costs := r.Costs
	emit := func(e *prog.Event) {
		out = append(out, Item{Event: e})
		if e.Kind == prog.EvTailCall && len(costs) > 0 {
			out = append(out, Item{Cost: &costs[0]})
			costs = costs[1:]
		}
	}
	ev := 0
	for i := range r.Execs {
		for ev < len(r.Trace) && r.Trace[ev].Step <= i {
			emit(&r.Trace[ev])
			ev++
		}
		out = append(out, Item{Exec: &r.Execs[i], Index: i})
	}
	for ; ev < len(r.Trace); ev++ {
		emit(&r.Trace[ev])
	}
	return out
}

// WriteText writes the run as text: every instruction, or with Brief one
// line per BPF instruction, then how the run ended.
func WriteText(w io.Writer, r *prog.Result, o Options) error {
	t := &textWriter{w: w, o: o}
	items := Items(r)
	for i := 0; i < len(items); i++ {
		it := items[i]
		switch {
		case it.Event != nil:
			t.line("%s", it.Text())
		case it.Cost != nil:
			t.line("  %s", it.Text())
		case o.Events:
		case o.Brief:
			// The run of instructions of one BPF instruction (or one
			// prologue or epilogue), folded; the events among them (a
			// tail call's, before its jump) follow the line.
			var group, events []Item
			j := i
			for ; j < len(items); j++ {
				if items[j].Exec == nil {
					events = append(events, items[j])
					continue
				}
				if !samePlace(items[j].Exec, it.Exec) {
					break
				}
				group = append(group, items[j])
			}
			// Events after the group's last instruction belong to the next.
			for len(events) > 0 && j > i && items[j-1].Exec == nil {
				events, j = events[:len(events)-1], j-1
			}
			t.brief(group)
			for _, e := range events {
				if e.Event != nil {
					t.line("%s", e.Text())
				} else {
					t.line("  %s", e.Text())
				}
			}
			i = j - 1
		default:
			t.exec(it)
		}
	}
	t.end(r)
	return t.err
}

type textWriter struct {
	w     io.Writer
	o     Options
	err   error
	place string // the group header last printed
}

func (t *textWriter) line(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, t.o.Indent+format+"\n", args...)
	}
}

func samePlace(a, b *prog.Exec) bool {
	return a.At == b.At && a.Part == b.Part && a.PC != 0 == (b.PC != 0)
}

// Place names where an instruction belongs, as the text trace heads it:
// its BPF instruction ("entry+4 (line 17): call bpf_tail_call"), or the
// prologue, epilogue, helper or x86 thunk of its machine location.
func Place(e *prog.Exec) string {
	if !e.At.IsZero() {
		return fmt.Sprintf("%s: %s", e.At, e.BPF)
	}
	fn, _, _ := strings.Cut(e.Machine, "+")
	switch e.Part {
	case "helper":
		return "helper stub"
	case "thunk":
		return "thunk " + fn
	}
	return fmt.Sprintf("%s of %s", e.Part, fn)
}

// exec prints one instruction under the header of its BPF instruction.
func (t *textWriter) exec(it Item) {
	e := it.Exec
	if p := Place(e); p != t.place || e.PC == 0 {
		if e.Source != "" && p != t.place {
			// The C line, once, above the BPF instruction it heads.
			t.line("// %s", e.Source)
		}
		if e.PC != 0 {
			t.line("; %s", p)
		}
		t.place = p
	}
	if e.PC == 0 {
		// The reference model: the instruction is the BPF one.
		t.line("%5d  %-30s %s", it.Index, e.At, e.Insn)
	} else {
		note := ""
		if e.Note != "" {
			note = " ; " + e.Note
		}
		t.line("%5d  %-18s %-40s%s", it.Index, e.Machine, e.Insn, note)
	}
	for _, d := range Detail(e) {
		t.line("         %s", d)
	}
}

// Detail is what an instruction did, a line each, as the text trace
// prints under it: the memory it read and wrote, the registers it
// changed, the tail-call checks it decided.
func Detail(e *prog.Exec) []string {
	var out []string
	for _, a := range e.Mem {
		out = append(out, a.String())
	}
	if len(e.Regs) > 0 {
		out = append(out, regsText(e.Regs))
	}
	for _, d := range e.Checks {
		out = append(out, d.String())
	}
	return out
}

// Text is the line of an event or a cost as the text trace prints it
// ("** tail call at ...", "cost: 15 instructions, ..."); an instruction's
// is its text, and Detail says what it did.
func (it Item) Text() string {
	switch {
	case it.Event != nil:
		return eventText(it.Event)
	case it.Cost != nil:
		return "cost: " + costText(it.Cost)
	}
	return it.Exec.Insn
}

// brief prints a BPF instruction's instructions as one line: how many,
// what they read and wrote, the checks.
func (t *textWriter) brief(items []Item) {
	e := items[0].Exec
	var mem, checks []string
	n := 0
	for _, it := range items {
		n++
		for _, a := range it.Exec.Mem {
			dir := "r"
			if a.Write {
				dir = "w"
			}
			mem = append(mem, fmt.Sprintf("%s %s=%#x", dir, a.What, a.Value))
		}
		for _, d := range it.Exec.Checks {
			if d.Passed {
				checks = append(checks, prog.CheckName(d.Check)+" passed")
			} else {
				checks = append(checks, d.String())
			}
		}
	}
	head := Place(e)
	var regs []string
	if e.PC != 0 {
		head = fmt.Sprintf("%-44s [%d insn]", head, n)
	} else if len(e.Regs) > 0 {
		// The reference model's registers are BPF's: worth a line's room.
		regs = []string{regsText(e.Regs)}
	}
	parts := append(append(regs, mem...), checks...)
	if len(parts) > 0 {
		head += "  " + strings.Join(parts, "; ")
	}
	t.line("%5d  %s", items[0].Index, head)
}

func (t *textWriter) end(r *prog.Result) {
	for _, l := range End(r) {
		t.line("%s", l)
	}
}

// End is how the run ended, a line each: its fault, the machine-level
// checks it broke, and for a stepped run the result.
func End(r *prog.Result) []string {
	var out []string
	if r.Fault != nil {
		out = append(out, fmt.Sprintf("fault: %v", r.Fault))
	}
	inline := slices.ContainsFunc(r.Trace, func(e prog.Event) bool { return e.Kind == prog.EvNote })
	for _, v := range r.Violations {
		if !inline { // a stepped run tells them where they happened
			out = append(out, fmt.Sprintf("broken: %v", v))
		}
	}
	if len(r.Execs) > 0 {
		out = append(out, fmt.Sprintf("result: r0 = %#x, tail_call_cnt = %d, path %s, %d instructions", r.R0, r.Count, prog.CompactPath(r.Path), len(r.Execs)))
	}
	return out
}

func regsText(rs []prog.RegChange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %#x -> %#x", r.Name, r.Old, r.New)
	}
	return strings.Join(parts, ", ")
}

func eventText(e *prog.Event) string {
	switch e.Kind {
	case prog.EvEnter:
		return "=> " + e.String()
	case prog.EvTailCall:
		return "** " + e.String()
	case prog.EvNote:
		return "!! " + e.String()
	}
	return "-> " + e.String()
}

func costText(c *prog.TailCost) string {
	return fmt.Sprintf("%s; loads: %d from the array and programs, %d from the counter and stack, %s; %s; %d bytes of code",
		plural(c.Insns, "instruction"), c.ArrayProgLoads, c.CounterStackLoads, plural(c.DependentLoads, "dependent load"), plural(c.Stores, "store"), c.CodeBytes)
}

// plural is "1 store", "2 stores".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Lines is WriteText's output as lines (for JSON reports and tests).
func Lines(r *prog.Result, o Options) []string {
	var b strings.Builder
	WriteText(&b, r, o)
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// Record is one JSON record of a run: Type says which of the other
// fields is set.
type Record struct {
	Type  string         `json:"type"` // "event", "exec", "cost", "result"
	Event *eventRecord   `json:"event,omitempty"`
	Exec  *execRecord    `json:"exec,omitempty"`
	Cost  *prog.TailCost `json:"cost,omitempty"`
	End   *endRecord     `json:"result,omitempty"`
}

type eventRecord struct {
	Kind   string `json:"kind"`
	Text   string `json:"text"`
	At     string `json:"at,omitempty"`
	Prog   string `json:"prog,omitempty"`
	Func   string `json:"func,omitempty"`
	Index  uint64 `json:"index"`
	Count  uint64 `json:"count"`
	Reason string `json:"reason,omitempty"`
	Via    string `json:"via,omitempty"`
	Value  uint64 `json:"value"`
}

type execRecord struct {
	Index   int                  `json:"index"`
	PC      uint64               `json:"pc,omitempty"`
	Machine string               `json:"machine,omitempty"`
	At      string               `json:"at,omitempty"`
	Part    string               `json:"part,omitempty"`
	BPF     string               `json:"bpf,omitempty"`
	Insn    string               `json:"insn"`
	Note    string               `json:"note,omitempty"`
	Regs    []prog.RegChange     `json:"regs,omitempty"`
	Mem     []memRecord          `json:"mem,omitempty"`
	Checks  []prog.CheckDecision `json:"checks,omitempty"`
}

type memRecord = prog.MemAccess

type endRecord struct {
	R0         uint64   `json:"r0"`
	Count      uint64   `json:"count"`
	Path       []string `json:"path"`
	Falls      []string `json:"fallthroughs"`
	Fault      string   `json:"fault,omitempty"`
	Violations []string `json:"broken,omitempty"`
	Steps      int      `json:"steps"`
}

// WriteJSON writes the run as JSON records, one per line.
func WriteJSON(w io.Writer, r *prog.Result) error {
	enc := json.NewEncoder(w)
	for _, it := range Items(r) {
		var rec Record
		switch {
		case it.Event != nil:
			e := it.Event
			er := &eventRecord{Kind: e.Kind.String(), Text: e.String(), Prog: e.Prog, Func: e.Func, Index: e.Index, Count: e.Count, Via: e.Via(), Value: e.Value}
			if !e.At.IsZero() {
				er.At = e.At.String()
			}
			if e.Reason != 0 {
				er.Reason = e.Reason.String()
			}
			rec = Record{Type: "event", Event: er}
		case it.Cost != nil:
			rec = Record{Type: "cost", Cost: it.Cost}
		default:
			e := it.Exec
			xr := &execRecord{Index: it.Index, PC: e.PC, Machine: e.Machine, Part: e.Part, BPF: e.BPF, Insn: e.Insn, Note: e.Note, Regs: e.Regs, Checks: e.Checks}
			if !e.At.IsZero() {
				xr.At = e.At.String()
			}
			xr.Mem = e.Mem
			rec = Record{Type: "exec", Exec: xr}
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	end := &endRecord{R0: r.R0, Count: r.Count, Path: r.Path, Falls: []string{}, Steps: r.Steps}
	for _, f := range r.Falls {
		end.Falls = append(end.Falls, f.String())
	}
	if r.Fault != nil {
		end.Fault = r.Fault.Error()
	}
	for _, v := range r.Violations {
		end.Violations = append(end.Violations, v.String())
	}
	return enc.Encode(Record{Type: "result", End: end})
}
