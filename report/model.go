package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
	"tailsim/trace"
)

// The page's data, embedded as JSON: what report.js draws. Everything is
// computed here from the runs (trace.Items, the accesses' Of, Field and
// Slot), the listings and the arrays as each run found them; the script
// only lays it out and steps through it.

type pageData struct {
	Title    string     `json:"title"`
	File     string     `json:"file"`
	About    string     `json:"about,omitempty"`
	Listings []codeData `json:"listings"`
	Runs     []*runData `json:"runs"`
}

// codeData is a listing: the JITed code of one arch and variant, or for
// the reference model the BPF instructions alone.
type codeData struct {
	Heading []string   `json:"heading"`
	BPFOnly bool       `json:"bpfOnly,omitempty"`
	Funcs   []funcData `json:"funcs"`
}

type funcData struct {
	Name    string      `json:"name"`
	Heading string      `json:"heading"`
	Groups  []groupData `json:"groups"`
}

type groupData struct {
	ID       int       `json:"id"` // in the listing
	Heading  string    `json:"heading"`
	Insn     bool      `json:"insn,omitempty"` // a BPF instruction's (not a prologue's or epilogue's)
	TailCall string    `json:"tailCall,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	Checks   []string  `json:"checks,omitempty"` // the reference model decides them at the call
	Rows     []rowData `json:"rows,omitempty"`
}

type rowData struct {
	ID    int      `json:"id"` // in the listing
	Off   string   `json:"off"`
	Text  string   `json:"text"`
	Note  string   `json:"note,omitempty"`
	Marks []string `json:"marks,omitempty"`
	Check string   `json:"check,omitempty"` // the tail-call check this branch decides
}

// runData is one stepped run.
type runData struct {
	Label   string `json:"label"`
	Arch    string `json:"arch"`
	Kernel  string `json:"kernel"`
	Listing int    `json:"listing"`
	// Verdict is the scenario's on this arch and variant, with its
	// failures and notes.
	Verdict []string    `json:"verdict"`
	Steps   []stepData  `json:"steps"`
	End     []string    `json:"end"` // trace.End, then the events after the last step
	Calls   []callData  `json:"calls"`
	Hops    []hopData   `json:"hops"`
	Cells   []cellData  `json:"cells"`
	Arrays  []arrayData `json:"arrays"`
	Progs   []progData  `json:"progs"`
	Stack   []int       `json:"stack"`   // cells, highest address first
	Counter int         `json:"counter"` // the tail_call_cnt cell, -1 if none
	Layout  string      `json:"layout"`
}

type stepData struct {
	Row    int      `json:"row"`   // listing row, -1 if none (a helper stub)
	Group  int      `json:"group"` // listing group, -1 if none
	Where  string   `json:"where"` // the machine location, or the BPF one
	Place  string   `json:"place"` // its BPF instruction, or prologue, epilogue, helper
	Insn   string   `json:"insn"`
	Note   string   `json:"note,omitempty"`
	Detail []string `json:"detail,omitempty"` // trace.Detail
	// Events are the trace's events and costs placed before the step.
	Events []string    `json:"events,omitempty"`
	Touch  []touchData `json:"touch,omitempty"`
	Checks []checkData `json:"checks,omitempty"`
	Call   int         `json:"call"` // the last tail call begun by this step, -1 before the first
	Hop    int         `json:"hop"`  // the program running
}

// touchData is one access to a drawn cell.
type touchData struct {
	Cell  int    `json:"cell"`
	Write bool   `json:"w,omitempty"`
	Value string `json:"v"`
}

type checkData struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Text   string `json:"text"`
}

// callData is one tail call: its steps (First to Last), the slot it
// selects and where it went.
type callData struct {
	At     string `json:"at"`
	Text   string `json:"text"`
	Cost   string `json:"cost,omitempty"`
	Array  int    `json:"array"` // -1 if unknown
	Index  string `json:"index"` // R3 as the program left it
	Slot   int64  `json:"slot"`  // (u32)R3
	Count  uint64 `json:"count"` // before the call
	Taken  bool   `json:"taken"`
	Failed string `json:"failed,omitempty"` // the check that sent it to out
	Target string `json:"target,omitempty"`
	Lands  string `json:"lands,omitempty"`
	First  int    `json:"first"`
	Last   int    `json:"last"`
	Hop    int    `json:"hop"`
}

// hopData is one program of the chain, entered at Step with the counter
// at Count.
type hopData struct {
	Prog  string `json:"prog"`
	Step  int    `json:"step"`
	Count uint64 `json:"count"`
	Call  int    `json:"call"` // the taken call that entered it, -1 for the first
}

// cellData is one drawn piece of memory. Its value before the step that
// first touches it is Init ("" when unknown); touches change it.
type cellData struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // max_entries, ptrs, cached, bpf_func, counter, tcc_ptr, stack
	Label string `json:"label"`
	Init  string `json:"init,omitempty"`
	Holds string `json:"holds,omitempty"` // the program a ptrs or cached slot holds
}

type arrayData struct {
	Name       string    `json:"name"`
	MaxEntries uint32    `json:"maxEntries"`
	Header     int       `json:"header"` // the max_entries cell
	Offsets    string    `json:"offsets"`
	Cached     bool      `json:"cached"` // the patched series' second half
	Rows       []slotRow `json:"rows"`
	Tail       int64     `json:"tail,omitempty"` // slots after the last drawn one
}

// slotRow is one drawn slot, or an index past the end a tail call
// selected (Past); Gap slots before it are not drawn.
type slotRow struct {
	Slot   int64  `json:"slot"`
	Gap    int64  `json:"gap,omitempty"`
	Ptrs   int    `json:"ptrs"`   // cell, -1 past the end
	Cached int    `json:"cached"` // cell, -1 without the cached half
	Past   bool   `json:"past,omitempty"`
	Holds  string `json:"holds,omitempty"`
}

type progData struct {
	Name    string `json:"name"`
	BpfFunc int    `json:"bpfFunc"` // the bpf_func cell, -1 on the reference model
	Entry   string `json:"entry"`   // where tail calls land
}

// run builds one run's data against its listing.
type runBuilder struct {
	l    *listing.Listing
	bpf  bool // the reference model: BPF instructions only
	res  *prog.Result
	rec  scenarios.RunRecord
	d    *runData
	code *codeIndex

	cells  map[string]int // by ID
	arrays map[string]*prog.ProgArray
}

// codeIndex finds a step's row and group in a listing.
type codeIndex struct {
	rows   map[uint64]int // by machine address
	groups map[prog.Loc]int
	rowGrp map[int]int
	sites  map[prog.Loc]*prog.TailCallSite
	funcs  map[string]*listing.Func
}

func newCode(l *listing.Listing, bpfOnly bool) (codeData, *codeIndex) {
	c := codeData{Heading: l.Heading(), BPFOnly: bpfOnly}
	if bpfOnly {
		c.Heading = []string{fmt.Sprintf("the reference model: one BPF instruction a step (layout %s)", l.Layout)}
		if src := l.Source; src.File != "" {
			c.Heading = append(c.Heading, fmt.Sprintf("%s: %s", src.File, src.Title))
		}
	}
	ix := &codeIndex{rows: map[uint64]int{}, groups: map[prog.Loc]int{}, rowGrp: map[int]int{},
		sites: map[prog.Loc]*prog.TailCallSite{}, funcs: map[string]*listing.Func{}}
	gid, rid := 0, 0
	for _, f := range l.Funcs {
		ix.funcs[f.Name()] = f
		fd := funcData{Name: f.Name(), Heading: l.FuncHeading(f, false)}
		if bpfOnly {
			fd.Heading = f.Name()
		}
		for _, g := range f.Groups {
			if bpfOnly && g.Kind != listing.InsnGroup {
				continue
			}
			gd := groupData{ID: gid, Heading: g.Heading(), Insn: g.Kind == listing.InsnGroup, TailCall: g.TailCall, Comment: g.Comment}
			if g.Kind == listing.InsnGroup {
				ix.groups[g.Loc] = gid
				if g.Site != nil {
					ix.sites[g.Loc] = g.Site
				}
			}
			for _, r := range g.Rows {
				if bpfOnly {
					break
				}
				rd := rowData{ID: rid, Off: fmt.Sprintf("%x", r.Off), Text: r.Text, Note: l.RowNote(r)}
				for _, m := range r.Marks {
					rd.Marks = append(rd.Marks, l.MarkText(f, m))
				}
				if r.Check != 0 {
					rd.Check = prog.CheckName(r.Check)
				}
				ix.rows[f.Addr+uint64(r.Off)] = rid
				ix.rowGrp[rid] = gid
				gd.Rows = append(gd.Rows, rd)
				rid++
			}
			fd.Groups = append(fd.Groups, gd)
			gid++
		}
		c.Funcs = append(c.Funcs, fd)
	}
	return c, ix
}

func newRun(l *listing.Listing, code *codeIndex, bpfOnly bool, rec scenarios.RunRecord) *runData {
	b := &runBuilder{l: l, bpf: bpfOnly, res: rec.Result, rec: rec, code: code, cells: map[string]int{}, arrays: map[string]*prog.ProgArray{},
		d: &runData{Counter: -1, Steps: []stepData{}, Calls: []callData{}, Hops: []hopData{}, Cells: []cellData{},
			Arrays: []arrayData{}, Progs: []progData{}, Stack: []int{}, Layout: fmt.Sprintf("%s (max_entries +%#x, ptrs +%#x, bpf_func +%#x)", l.Layout.Name, l.Layout.MaxEntries, l.Layout.Ptrs, l.Layout.BpfFunc)}}
	for _, a := range rec.Arrays {
		b.arrays[a.Name] = a
	}
	b.steps()
	b.callsAndHops()
	b.memory()
	return b.d
}

// steps lays the trace's items out as steps: each instruction with the
// events and costs before it.
func (b *runBuilder) steps() {
	var pending []string
	for _, it := range trace.Items(b.res) {
		if it.Exec == nil {
			pending = append(pending, it.Text())
			continue
		}
		e := it.Exec
		s := stepData{Row: -1, Group: -1, Insn: e.Insn, Note: e.Note, Place: placeWithSource(e), Detail: trace.Detail(e), Events: pending, Call: -1}
		pending = nil
		if r, ok := b.code.rows[e.PC]; ok && e.PC != 0 {
			s.Row, s.Group = r, b.code.rowGrp[r]
		} else if g, ok := b.code.groups[e.At]; ok && b.bpf {
			s.Group = g
		}
		s.Where = e.Machine
		if e.PC == 0 {
			s.Where = e.At.String()
		}
		for _, c := range e.Checks {
			s.Checks = append(s.Checks, checkData{Name: prog.CheckName(c.Check), Passed: c.Passed, Text: c.String()})
		}
		b.d.Steps = append(b.d.Steps, s)
	}
	b.d.End = append(trace.End(b.res), pending...)
}

// callsAndHops finds each tail call's steps, the slot it selects and
// where it went, and the chain of programs with the counter at each.
func (b *runBuilder) callsAndHops() {
	res, d := b.res, b.d
	var tails []int // indexes into res.Trace
	for i, e := range res.Trace {
		if e.Kind == prog.EvTailCall {
			tails = append(tails, i)
		}
	}
	countAfter := func(i int) uint64 { // the counter from event i on
		for _, j := range tails {
			if j > i {
				return res.Trace[j].Count
			}
		}
		return res.Count
	}
	costs := res.Costs
	for n, ti := range tails {
		e := res.Trace[ti]
		c := callData{At: e.At.String(), Text: e.String(), Array: -1, Index: fmt.Sprintf("%#x", e.Index), Slot: int64(uint32(e.Index)),
			Count: e.Count, Taken: e.Reason == 0, Hop: -1}
		if e.Reason != 0 {
			c.Failed = prog.CheckName(e.Reason)
		}
		if len(costs) > 0 && b.l != nil && !b.bpf {
			c.Cost = trace.Item{Cost: &costs[0]}.Text()
			costs = costs[1:]
		}
		// The call's steps: those of its instruction up to the event.
		last := min(e.Step, len(res.Execs)-1)
		if last >= 0 && res.Execs[last].At != e.At {
			last--
		}
		first := last
		for first > 0 && res.Execs[first-1].At == e.At {
			first--
		}
		if first < 0 || n > 0 && first <= d.Calls[n-1].Last {
			first, last = max(e.Step, 0), max(e.Step, 0)
		}
		c.First, c.Last = first, last
		if c.Taken {
			for _, f := range res.Trace[ti+1:] {
				if f.Kind == prog.EvEnter {
					c.Target = f.Prog
					break
				}
			}
			if last+1 < len(res.Execs) {
				c.Lands = res.Execs[last+1].Machine
				if res.Execs[last+1].PC == 0 {
					c.Lands = res.Execs[last+1].At.String()
				}
			}
		}
		c.Array = b.callArray(e.At, first, last)
		d.Calls = append(d.Calls, c)
	}
	call := 0
	for i := range d.Steps {
		for call < len(d.Calls) && d.Calls[call].First <= i {
			call++
		}
		d.Steps[i].Call = call - 1
	}
	// The chain: every program entered, with the counter as it enters.
	nextCall := 0
	for i, e := range res.Trace {
		if e.Kind != prog.EvEnter {
			continue
		}
		h := hopData{Prog: e.Prog, Step: e.Step, Count: countAfter(i), Call: -1}
		// The taken call just before it entered it.
		for nextCall < len(tails) && tails[nextCall] < i {
			nextCall++
		}
		if nextCall > 0 && d.Calls[nextCall-1].Taken && len(d.Hops) > 0 {
			h.Call = nextCall - 1
		}
		d.Hops = append(d.Hops, h)
	}
	hop := 0
	for i := range d.Steps {
		for hop+1 < len(d.Hops) && d.Hops[hop+1].Step <= i {
			hop++
		}
		d.Steps[i].Hop = hop
		if len(d.Hops) == 0 {
			d.Steps[i].Hop = -1
		}
	}
	for n := range d.Calls {
		if f := d.Calls[n].First; f < len(d.Steps) {
			d.Calls[n].Hop = d.Steps[f].Hop
		}
	}
}

// callArray is the prog array a tail call used: the one its instructions
// read, else the only one that reaches its site.
func (b *runBuilder) callArray(at prog.Loc, first, last int) int {
	name := ""
	for _, e := range b.res.Execs[max(first, 0):min(last+1, len(b.res.Execs))] {
		for _, a := range e.Mem {
			if a.Obj == prog.ObjArray && a.Of != "" {
				name = a.Of
			}
		}
	}
	if s := b.code.sites[at]; name == "" && s != nil && len(s.Maps) == 1 {
		name = s.Maps[0].Name
	}
	for i, a := range b.rec.Arrays {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// cell returns the cell with id, adding it.
func (b *runBuilder) cell(id, kind, label string) int {
	if i, ok := b.cells[id]; ok {
		return i
	}
	b.cells[id] = len(b.d.Cells)
	b.d.Cells = append(b.d.Cells, cellData{ID: id, Kind: kind, Label: label})
	return len(b.d.Cells) - 1
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

// memory draws what the run touched: the arrays' slots it read and the
// slots its tail calls selected, with neighbours; the programs those
// slots hold and those it entered; the stack slots it used, the counter
// among them.
func (b *runBuilder) memory() {
	res, d := b.res, b.d
	// The counter's addresses, from the accesses the emulator named.
	counters := map[uint64]bool{}
	for _, e := range res.Execs {
		for _, a := range e.Mem {
			if a.Field == prog.FieldCount {
				counters[a.Addr] = true
			}
		}
	}
	slots := map[string]map[int64]bool{} // array -> slots to draw
	want := func(array string, i int64) {
		if slots[array] == nil {
			slots[array] = map[int64]bool{}
		}
		slots[array][i] = true
	}
	stackLabels := map[uint64]string{}
	for _, e := range res.Execs {
		for _, a := range e.Mem {
			if (a.Field == prog.FieldPtrs || a.Field == prog.FieldCached) && a.Of != "" {
				want(a.Of, a.Slot)
			}
			if a.Obj == prog.ObjStack || a.Obj == prog.ObjCounter {
				if l, ok := stackLabels[a.Addr]; !ok || strings.HasPrefix(l, "sp0") && a.Of == "fp" {
					stackLabels[a.Addr] = fmt.Sprintf("%s%+#x", a.Of, a.Slot)
				}
			}
		}
	}
	for _, c := range d.Calls {
		if c.Array >= 0 {
			want(b.rec.Arrays[c.Array].Name, c.Slot)
		}
	}
	for _, a := range b.rec.Arrays {
		b.array(a, slots[a.Name])
	}
	// The stack, highest address first: the counter and tcc_ptr named.
	addrs := slices.Sorted(maps.Keys(stackLabels))
	slices.Reverse(addrs)
	for _, addr := range addrs {
		kind, label := "stack", stackLabels[addr]
		if counters[addr] {
			kind = "counter"
		}
		i := b.cell(fmt.Sprintf("stack-%x", addr), kind, label)
		if kind == "counter" && d.Counter < 0 {
			d.Counter = i
		}
		d.Stack = append(d.Stack, i)
	}
	// The programs: those the drawn slots hold, then those entered.
	var progs []string
	for _, a := range d.Arrays {
		for _, r := range a.Rows {
			if r.Holds != "" && !slices.Contains(progs, r.Holds) {
				progs = append(progs, r.Holds)
			}
		}
	}
	for _, h := range d.Hops {
		if !slices.Contains(progs, h.Prog) {
			progs = append(progs, h.Prog)
		}
	}
	for _, p := range progs {
		pd := progData{Name: p, BpfFunc: -1}
		if f := b.code.funcs[p]; f != nil && !b.bpf {
			pd.BpfFunc = b.cell("prog-"+p+"-bpf_func", "bpf_func", "bpf_func")
			b.d.Cells[pd.BpfFunc].Init = hex(f.Addr)
			pd.Entry = fmt.Sprintf("%s+%#x = %#x", p, f.TailEntry, f.Addr+uint64(f.TailEntry))
		}
		d.Progs = append(d.Progs, pd)
	}
	kernel, reg := prog.Linux618, ""
	if b.l != nil {
		kernel = b.l.Kernel
		if !b.bpf {
			reg = prog.CounterRegister(b.l.Arch.Name, kernel)
		}
	}
	if b.bpf || reg != "" {
		// The reference model keeps its counter in no memory, and 6.1's
		// arm64 JIT in x26: draw it from the tail calls.
		label := "tail_call_cnt"
		if reg != "" {
			label = reg + ": tail_call_cnt"
		}
		d.Counter = b.cell("counter", "counter", label)
		d.Cells[d.Counter].Init = "0x0"
		for _, e := range res.Trace {
			if e.Kind == prog.EvPreset {
				d.Cells[d.Counter].Init = hex(e.Count)
			}
		}
		for _, c := range d.Calls {
			counted := c.Taken || c.Failed == prog.CheckName(prog.FallEmpty) && kernel.CountsBeforeSlot()
			if counted && c.Last >= 0 && c.Last < len(d.Steps) {
				s := &d.Steps[c.Last]
				s.Touch = append(s.Touch, touchData{Cell: d.Counter, Write: true, Value: hex(c.Count + 1)})
			}
		}
	}
	b.touches(counters)
}

// array draws an array's header and the slots wanted, with a neighbour
// each side, and its filled slots while there is room.
func (b *runBuilder) array(a *prog.ProgArray, wanted map[int64]bool) {
	const room = 12
	show := map[int64]bool{}
	for i := range wanted {
		show[i] = true
		if i < int64(a.MaxEntries) {
			for _, n := range []int64{i - 1, i + 1} {
				if n >= 0 && n < int64(a.MaxEntries) {
					show[n] = true
				}
			}
		}
	}
	for _, i := range a.Populated() {
		if len(show) >= room {
			break
		}
		show[int64(i)] = true
	}
	if len(show) == 0 {
		show[0] = true
	}
	cached := b.l.Kernel == prog.Linux618Series && !b.bpf
	ad := arrayData{Name: a.Name, MaxEntries: a.MaxEntries, Cached: cached,
		Header:  b.cell("array-"+a.Name+"-max_entries", "max_entries", "max_entries"),
		Offsets: fmt.Sprintf("max_entries at +%#x, ptrs[] at +%#x", b.l.Layout.MaxEntries, b.l.Layout.Ptrs)}
	if cached {
		ad.Offsets += fmt.Sprintf(", cached[i] = ptrs[max_entries + i] at +%#x", uint64(b.l.Layout.Ptrs)+8*uint64(a.MaxEntries))
	}
	b.d.Cells[ad.Header].Init = hex(uint64(a.MaxEntries))
	prev := int64(-1)
	for _, i := range slices.Sorted(maps.Keys(show)) {
		r := slotRow{Slot: i, Ptrs: -1, Cached: -1}
		if i >= int64(a.MaxEntries) {
			r.Past = true
			ad.Rows = append(ad.Rows, r)
			continue
		}
		r.Gap, prev = i-prev-1, i
		p := a.Ptr(uint32(i))
		if p != nil {
			r.Holds = p.Name
		}
		r.Ptrs = b.cell(fmt.Sprintf("slot-%s-ptrs-%d", a.Name, i), "ptrs", fmt.Sprintf("ptrs[%d]", i))
		b.d.Cells[r.Ptrs].Holds = r.Holds
		if p == nil {
			b.d.Cells[r.Ptrs].Init = "0x0"
		}
		if cached {
			r.Cached = b.cell(fmt.Sprintf("slot-%s-cached-%d", a.Name, i), "cached", fmt.Sprintf("cached[%d]", i))
			c := &b.d.Cells[r.Cached]
			c.Init = "0x0"
			if q := a.Cached(uint32(i)); q != nil {
				c.Holds = q.Name
				if f := b.code.funcs[q.Name]; f != nil {
					c.Init = hex(f.Addr + uint64(f.TailEntry))
				}
			}
		}
		ad.Rows = append(ad.Rows, r)
	}
	if last := min(prev, int64(a.MaxEntries)-1); last < int64(a.MaxEntries)-1 {
		ad.Tail = int64(a.MaxEntries) - 1 - last
	}
	b.d.Arrays = append(b.d.Arrays, ad)
}

// touches places every access to a drawn cell on its step; a cell whose
// first access is a read held that value from the start.
func (b *runBuilder) touches(counters map[uint64]bool) {
	seen := map[int]bool{}
	// A preset counter (run ... tail_call_cnt=N) is written by the
	// emulator, not by an instruction, just before the first tail call
	// reads it: drawn as a write at that step, so the picture shows N
	// where the code finds it.
	preset := map[int]uint64{}
	for _, e := range b.res.Trace {
		if e.Kind == prog.EvPreset {
			preset[e.Step] = e.Count
		}
	}
	for i, e := range b.res.Execs {
		// (The reference model's counter cell starts at the preset.)
		if n, ok := preset[i]; ok && b.d.Counter >= 0 && !b.bpf {
			seen[b.d.Counter] = true
			b.d.Steps[i].Touch = append(b.d.Steps[i].Touch, touchData{Cell: b.d.Counter, Write: true, Value: hex(n)})
		}
		for _, a := range e.Mem {
			id := ""
			switch {
			case a.Field == prog.FieldMaxEntries:
				id = "array-" + a.Of + "-max_entries"
			case a.Field == prog.FieldPtrs:
				id = fmt.Sprintf("slot-%s-ptrs-%d", a.Of, a.Slot)
			case a.Field == prog.FieldCached:
				id = fmt.Sprintf("slot-%s-cached-%d", a.Of, a.Slot)
			case a.Field == prog.FieldBpfFunc:
				id = "prog-" + a.Of + "-bpf_func"
			case a.Obj == prog.ObjStack || a.Obj == prog.ObjCounter:
				id = fmt.Sprintf("stack-%x", a.Addr)
			}
			c, ok := b.cells[id]
			if !ok {
				continue
			}
			cd := &b.d.Cells[c]
			if cd.Kind == "stack" && (a.Field == prog.FieldTccPtr || counters[a.Value]) {
				cd.Kind = "tcc_ptr"
			}
			if !a.Write && !seen[c] {
				cd.Init = hex(a.Value)
			}
			seen[c] = true
			b.d.Steps[i].Touch = append(b.d.Steps[i].Touch, touchData{Cell: c, Write: a.Write, Value: hex(a.Value)})
		}
	}
}

// placeWithSource is the step's place, with the C line an object's BPF
// instruction came from.
func placeWithSource(e *prog.Exec) string {
	if e.Source != "" {
		return trace.Place(e) + "   // " + e.Source
	}
	return trace.Place(e)
}
