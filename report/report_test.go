package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

const tailCall2 = "../scenarios/library/test_bpf/01_tail_call_2.txtar"

// stepped runs a scenario file's first iterations, stepped, as "tailsim
// trace" does.
func stepped(t *testing.T, file string, b scenarios.Backend, v prog.Kernel) (*scenarios.Scenario, *scenarios.Report) {
	t.Helper()
	scs, err := scenarios.LoadPaths([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	sc := scs[0]
	keep := func(_ scenarios.Step, iter int) bool { return iter == 1 }
	rep := scenarios.Run(sc, b, v, scenarios.Options{Trace: true, Step: true, StepBudget: 10_000, Keep: keep})
	if rep.Status != scenarios.Pass || len(rep.Runs) == 0 {
		t.Fatalf("%s on %s/%s: %s, %d runs kept: %v", file, rep.Arch, v, rep.Status, len(rep.Runs), rep.Failures)
	}
	return sc, rep
}

func pageOf(t *testing.T, file string, b scenarios.Backend, v prog.Kernel) *pageData {
	t.Helper()
	sc, rep := stepped(t, file, b, v)
	d, err := build(sc, Options{}, []*scenarios.Report{rep})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// counterWrite finds the step that writes value to the run's counter.
func counterWrite(r *runData, value string) int {
	for i, s := range r.Steps {
		for _, t := range s.Touch {
			if t.Cell == r.Counter && t.Write && t.Value == value {
				return i
			}
		}
	}
	return -1
}

// The page's data tells the run's story as the trace does: every
// instruction on its listing row, the tail call's steps, the slot it
// selects and where it lands, the counter's cell and the chain.
func TestTailCallData(t *testing.T) {
	for _, v := range prog.Kernels {
		d := pageOf(t, tailCall2, emu.NewX86(0), v)
		r := d.Runs[0]
		name := "x86_64/" + v.String()
		if len(d.Listings) != 1 || d.Listings[0].BPFOnly || r.Listing != 0 {
			t.Fatalf("%s: listings %d, run's %d", name, len(d.Listings), r.Listing)
		}
		for i, s := range r.Steps {
			if s.Row < 0 || s.Group < 0 {
				t.Errorf("%s: step %d (%s) on no listing row", name, i, s.Where)
			}
		}
		if len(r.Calls) != 1 {
			t.Fatalf("%s: calls %+v", name, r.Calls)
		}
		c := r.Calls[0]
		// 6.1 lands at X86_TAIL_CALL_OFFSET 11 and keeps the count itself
		// in the upper half of the rax it pushed; v6.18 lands at 12, the
		// count behind tcc_ptr.
		lands, counterAt := "leaf+0xc", "fp-0x8"
		if v == prog.Linux61 {
			lands, counterAt = "leaf+0xb", "fp-0x4"
		}
		if !c.Taken || c.Slot != 0 || c.Array != 0 || c.Target != "leaf" || c.Lands != lands || c.Cost == "" || c.Count != 0 {
			t.Errorf("%s: call %+v", name, c)
		}
		// The call's steps are the tail call's code, its checks among them.
		var checks []string
		for i := c.First; i <= c.Last; i++ {
			if !strings.Contains(r.Steps[i].Place, "call bpf_tail_call") {
				t.Errorf("%s: step %d of the call is %s", name, i, r.Steps[i].Place)
			}
			for _, ch := range r.Steps[i].Checks {
				checks = append(checks, ch.Name)
			}
			if r.Steps[i].Call != 0 {
				t.Errorf("%s: step %d of the call names call %d", name, i, r.Steps[i].Call)
			}
		}
		if want := []string{"bounds check", "count check", "empty-slot check"}; !slices.Equal(checks, want) {
			t.Errorf("%s: checks %v, want %v", name, checks, want)
		}
		if r.Steps[c.First-1].Call != -1 || r.Steps[len(r.Steps)-1].Call != 0 {
			t.Errorf("%s: steps before and after the call name calls %d and %d", name, r.Steps[c.First-1].Call, r.Steps[len(r.Steps)-1].Call)
		}
		// The chain, with the counter as each program starts.
		if len(r.Hops) != 2 || r.Hops[0].Prog != "tail_call_2" || r.Hops[0].Count != 0 || r.Hops[1].Prog != "leaf" || r.Hops[1].Count != 1 || r.Hops[1].Call != 0 {
			t.Errorf("%s: hops %+v", name, r.Hops)
		}
		if r.Steps[0].Hop != 0 || r.Steps[len(r.Steps)-1].Hop != 1 {
			t.Errorf("%s: first and last steps in hops %d, %d", name, r.Steps[0].Hop, r.Steps[len(r.Steps)-1].Hop)
		}
		// The counter: written 0 by the prologue, 1 by the call.
		if r.Counter < 0 || r.Cells[r.Counter].Kind != "counter" || r.Cells[r.Counter].Label != counterAt {
			t.Fatalf("%s: counter cell %d of %+v", name, r.Counter, r.Cells)
		}
		// (6.1's prologue pushes the whole rax: the count's half is first
		// touched by the call, which finds it 0.)
		if zero, one := counterWrite(r, "0x0"), counterWrite(r, "0x1"); v == prog.Linux61 && (r.Cells[r.Counter].Init != "0x0" || one < c.First || one > c.Last) ||
			v != prog.Linux61 && (zero < 0 || one <= zero || one < c.First || one > c.Last) {
			t.Errorf("%s: the counter is written 0 at step %d and 1 at step %d; the call is steps %d to %d", name, zero, one, c.First, c.Last)
		}
		tcc := slices.IndexFunc(r.Cells, func(c cellData) bool { return c.Kind == "tcc_ptr" })
		if v == prog.Linux61 && tcc >= 0 {
			t.Errorf("%s: a tcc_ptr cell in 6.1, which passes the count by value: %+v", name, r.Cells[tcc])
		} else if v != prog.Linux61 && (tcc < 0 || r.Cells[tcc].Label != "fp-0x10") {
			t.Errorf("%s: no tcc_ptr at fp-0x10 in %+v", name, r.Cells)
		}
		// The array: slot 0 selected, 1 its neighbour; the cached half on
		// the patched series, read where upstream reads ptrs[0].
		a := r.Arrays[0]
		if a.Name != "progs" || a.MaxEntries != 11 || a.Cached != (v == prog.Linux618Series) || len(a.Rows) != 2 || a.Rows[0].Holds != "leaf" || a.Rows[1].Holds != "tail_call_2" || a.Tail != 9 {
			t.Errorf("%s: array %+v", name, a)
		}
		read := r.Cells[a.Rows[0].Ptrs]
		if v == prog.Linux618Series {
			read = r.Cells[a.Rows[0].Cached]
		}
		touched := false
		for i := c.First; i <= c.Last; i++ {
			for _, tc := range r.Steps[i].Touch {
				touched = touched || r.Cells[tc.Cell].ID == read.ID && !tc.Write
			}
		}
		if !touched {
			t.Errorf("%s: the call reads no %s", name, read.ID)
		}
		if got := []string{r.Progs[0].Name, r.Progs[1].Name}; len(r.Progs) != 2 || !slices.Equal(got, []string{"leaf", "tail_call_2"}) || !strings.HasPrefix(r.Progs[0].Entry, lands+" = 0x") {
			t.Errorf("%s: programs %+v", name, r.Progs)
		}
	}
}

// A call past the end of the array draws the index past the end, and the
// chain notes the check that failed.
func TestOutOfRange(t *testing.T) {
	r := pageOf(t, "../scenarios/library/test_bpf/09_out_of_range.txtar", emu.NewX86(0), prog.Linux618).Runs[0]
	if len(r.Calls) != 1 || r.Calls[0].Taken || r.Calls[0].Failed != "bounds check" || r.Calls[0].Slot != 11 || r.Calls[0].Hop != 0 {
		t.Fatalf("calls %+v", r.Calls)
	}
	rows := r.Arrays[0].Rows
	if last := rows[len(rows)-1]; !last.Past || last.Slot != 11 || last.Ptrs != -1 {
		t.Errorf("rows %+v: want slot 11 past the end last", rows)
	}
}

// The reference model's runs list the BPF program and draw the counter
// from the tail calls.
func TestReferenceModel(t *testing.T) {
	d := pageOf(t, tailCall2, scenarios.Ref{}, prog.Linux618)
	r := d.Runs[0]
	if !d.Listings[0].BPFOnly || r.Counter < 0 || len(r.Calls) != 1 {
		t.Fatalf("bpfOnly %v, counter %d, calls %d", d.Listings[0].BPFOnly, r.Counter, len(r.Calls))
	}
	for i, s := range r.Steps {
		if s.Group < 0 || s.Row != -1 {
			t.Errorf("step %d: group %d row %d", i, s.Group, s.Row)
		}
	}
	c := r.Calls[0]
	if c.First != c.Last || len(r.Steps[c.First].Checks) != 3 || counterWrite(r, "0x1") != c.Last || c.Lands != "leaf+0 (line 14)" {
		t.Errorf("call %+v, its step's checks %v", c, r.Steps[c.First].Checks)
	}
	for _, p := range r.Progs {
		if p.BpfFunc != -1 || p.Entry != "" {
			t.Errorf("the model's program %+v has machine code", p)
		}
	}
}

// The page is one file that loads nothing: no src, href or url() to
// another file (url(#id) names a part of the page), the data inside.
func TestSelfContained(t *testing.T) {
	sc, rep := stepped(t, tailCall2, emu.NewX86(0), prog.Linux618Series)
	var b bytes.Buffer
	if err := Write(&b, sc, Options{}, rep); err != nil {
		t.Fatal(err)
	}
	// The SVG namespace names no file.
	s := strings.ReplaceAll(b.String(), "http://www.w3.org/2000/svg", "")
	for _, re := range []string{`\bsrc\s*=`, `\bhref\s*=`, `url\(\s*[^#\s]`, `@import`, `<link`, `https?:`} {
		if m := regexp.MustCompile(re).FindString(s); m != "" {
			t.Errorf("the page refers to something outside it: %q", m)
		}
	}
	for _, want := range []string{`<script id="data" type="application/json">{"title":"Tail call 2`, "function selftest()", "#mem .cell.read"} {
		if !strings.Contains(s, want) {
			t.Errorf("the page has no %q", want)
		}
	}
	if strings.Contains(s, "</script>\",") || strings.Count(s, "</script>") != 2 {
		t.Errorf("%d </script> in the page", strings.Count(s, "</script>"))
	}
}

// Reports on several arches and variants (what "compare" shows) share a
// page: a listing each, every run on its own.
func TestSeveralReports(t *testing.T) {
	sc, up := stepped(t, tailCall2, emu.NewX86(0), prog.Linux618)
	_, arm := stepped(t, tailCall2, emu.NewArm64(0), prog.Linux618Series)
	d, err := build(sc, Options{}, []*scenarios.Report{up, arm})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Listings) != 2 || len(d.Runs) != 2 || d.Runs[0].Listing != 0 || d.Runs[1].Listing != 1 {
		t.Fatalf("%d listings, %d runs", len(d.Listings), len(d.Runs))
	}
	if h := d.Listings[1].Heading[0]; !strings.HasPrefix(h, "arm64 v6.18+series") || !strings.HasPrefix(d.Runs[1].Label, "arm64/v6.18+series: run tail_call_2") {
		t.Errorf("second listing %q, run %q", h, d.Runs[1].Label)
	}
	if _, err := build(sc, Options{}, nil); err == nil {
		t.Errorf("a page with no run")
	}
}

// A run after slot updates ran code the updates re-poked: its listing
// shows the poke sites as that run found them, not as loaded.
func TestListingAfterSlotUpdates(t *testing.T) {
	src := `repoked
-- maps --
jt max_entries=2
-- prog entry --
	r2 = map[jt]
	r3 = 1
	call bpf_tail_call
	r0 = 7
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- run --
run entry
expect r0 = 1
delete jt[1]
run entry
expect r0 = 7
`
	sc, err := scenarios.Parse("repoked.txtar", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	keep := func(scenarios.Step, int) bool { return true }
	rep := scenarios.Run(sc, emu.NewX86(0), prog.Linux618, scenarios.Options{Trace: true, Step: true, Keep: keep})
	d, err := build(sc, Options{}, []*scenarios.Report{rep})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Runs) != 2 || len(d.Listings) != 2 || d.Runs[0].Listing == d.Runs[1].Listing {
		t.Fatalf("%d runs on listings %d and %d of %d", len(d.Runs), d.Runs[0].Listing, d.Runs[1].Listing, len(d.Listings))
	}
	poke := func(li int) string {
		for _, f := range d.Listings[li].Funcs {
			for _, g := range f.Groups {
				for _, r := range g.Rows {
					if strings.Contains(r.Note, "poke site: target") {
						return r.Text + " ; " + r.Note
					}
				}
			}
		}
		return ""
	}
	if first, second := poke(d.Runs[0].Listing), poke(d.Runs[1].Listing); !strings.HasPrefix(first, "jmp ") || !strings.HasPrefix(second, "nop ") {
		t.Errorf("target poke site before the delete %q, after %q", first, second)
	}
}

// A preset counter is in the picture from the step where the emulator
// writes it, before the first tail call reads it: 31, then the call's 32.
func TestPresetCounter(t *testing.T) {
	file := filepath.Join(t.TempDir(), "preset.txtar")
	text := "preset\n\n-- maps --\njt max_entries=2\n-- prog entry --\n\tr2 = map[jt]\n\tr3 = 0\n\tcall bpf_tail_call\n\tr0 = 1\n\texit\n" +
		"-- prog leaf --\n\tr0 = 2\n\texit\n-- slots --\njt[0] = leaf\n-- run --\nrun entry tail_call_cnt=31\nexpect count = 32\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range []scenarios.Backend{emu.NewX86(0), emu.NewArm64(0)} {
		for _, v := range prog.Kernels {
			r := pageOf(t, file, b, v).Runs[0]
			at31, at32 := counterWrite(r, "0x1f"), counterWrite(r, "0x20")
			if at31 < 0 || at32 <= at31 {
				t.Errorf("%s/%s: the counter is written 31 at step %d, 32 at step %d", b.Name(), v, at31, at32)
			}
		}
	}
	r := pageOf(t, file, scenarios.Ref{}, prog.Linux618Series).Runs[0]
	if init := r.Cells[r.Counter].Init; init != "0x1f" || counterWrite(r, "0x1f") >= 0 || counterWrite(r, "0x20") < 0 {
		t.Errorf("reference model: the counter starts at %s, is written 31 at step %d, 32 at step %d", init, counterWrite(r, "0x1f"), counterWrite(r, "0x20"))
	}
}

// A program from an object: a step that heads a C line shows it beside
// its BPF instruction.
func TestObjectSourceLines(t *testing.T) {
	d := pageOf(t, "../scenarios/library/objects/chain.txtar", emu.NewX86(0), prog.Linux618)
	n := 0
	for _, s := range d.Runs[0].Steps {
		if strings.Contains(s.Place, "   // chain.bpf.c:") {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no step shows a C line")
	}
}
