package emu

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/prog"
	"tailsim/scenarios"
)

func loadStepped(t *testing.T, b *Backend, src string, v prog.Kernel, budget int) (prog.Machine, *prog.World) {
	t.Helper()
	return loadOn(t, b, src, v, prog.LoadOptions{Step: true, Budget: budget})
}

// A stepped run computes what an ordinary one does, and records the tail
// call instruction by instruction: the three checks passed, the loads by
// name, and its cost, whose loads from the array and the programs are
// what the series is about: three on upstream's indirect path
// (max_entries, ptrs[1], ->bpf_func), one on the patched static path (the
// cached target).
func TestSteppedTailCall(t *testing.T) {
	for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
		for _, v := range prog.Kernels {
			name := b.Name() + "/" + v.String()
			plain, pw := loadX86(t, chain, v)
			if b.Name() == "arm64" {
				plain, pw = loadArm64(t, chain, v, false, false)
			}
			want := plain.Run(pw.Prog("entry"), ctx(1))
			m, w := loadStepped(t, b, chain, v, 0)
			got := m.Run(w.Prog("entry"), ctx(1))
			if got.Fault != nil || got.R0 != want.R0 || got.Count != want.Count || !slices.Equal(got.Path, want.Path) || len(got.Violations) > 0 {
				t.Fatalf("%s: stepped r0 %d count %d path %v fault %v %v; plain r0 %d count %d path %v", name,
					got.R0, got.Count, got.Path, got.Fault, got.Violations, want.R0, want.Count, want.Path)
			}
			if got.Steps != len(got.Execs) || len(got.Execs) < 20 {
				t.Errorf("%s: %d steps, %d execs", name, got.Steps, len(got.Execs))
			}
			var checks []string
			var reads, places []string
			for _, e := range got.Execs {
				for _, d := range e.Checks {
					checks = append(checks, d.String())
				}
				for _, a := range e.Mem {
					if !a.Write {
						reads = append(reads, a.What)
					}
					if a.Field != 0 && !a.Write {
						places = append(places, fmt.Sprintf("%s %s %d", a.Of, a.Field, a.Slot))
					}
					if a.Obj == prog.ObjStack && (a.Of != "fp" && a.Of != "sp0" || !strings.HasSuffix(a.What, fmt.Sprintf("%s%+#x", a.Of, a.Slot))) {
						t.Errorf("%s: stack access %q as data: %s%+#x", name, a.What, a.Of, a.Slot)
					}
				}
			}
			wantChecks := []string{"bounds check passed (index 1 < max_entries 4)", "count check passed (tail_call_cnt 0 < 33)",
				"empty-slot check passed (the slot holds a program)"}
			if diff := cmp.Diff(wantChecks, checks); diff != "" {
				t.Errorf("%s: checks (-want +got):\n%s", name, diff)
			}
			arrayReads := []string{"jt->map.max_entries", "jt->ptrs[1]", "prog leaf->bpf_func"}
			if v == prog.Linux618Series {
				arrayReads = []string{"jt->ptrs[5] (cached[1])"}
			}
			// 6.1's arm64 counter is x26 itself: no load, no store.
			counterInMemory := !(b.Name() == "arm64" && v == prog.Linux61)
			counterReads := []string{"ctx+0"}
			if counterInMemory {
				counterReads = append(counterReads, "tail_call_cnt")
			}
			for _, r := range append(arrayReads, counterReads...) {
				if !slices.Contains(reads, r) {
					t.Errorf("%s: no read of %s in %q", name, r, reads)
				}
			}
			// The same reads as data, for the report's picture.
			arrayPlaces := []string{"jt max_entries 0", "jt ptrs 1", "leaf bpf_func 0"}
			if v == prog.Linux618Series {
				arrayPlaces = []string{"jt cached 1"}
			}
			if counterInMemory && !slices.ContainsFunc(places, func(p string) bool { return strings.HasPrefix(p, "fp tail_call_cnt -") }) {
				t.Errorf("%s: no read of the counter in the frame in %q", name, places)
			}
			for _, p := range arrayPlaces {
				if !slices.Contains(places, p) {
					t.Errorf("%s: no read of %q in %q", name, p, places)
				}
			}
			if len(got.Costs) != 1 {
				t.Fatalf("%s: costs %v", name, got.Costs)
			}
			c := got.Costs[0]
			wantStores := 1
			if !counterInMemory {
				wantStores = 0
			}
			if !c.Taken || c.ArrayProgLoads != len(arrayReads) || c.Insns < 8 || c.CodeBytes == 0 || c.Stores != wantStores || c.At.Slot != 4 {
				t.Errorf("%s: cost %v", name, c)
			}
			// The pointer chases: v6.18's x86 reaches the counter through
			// tcc_ptr (its compare and its increment), bpf_func through
			// ptrs[i] but on the series' static path; arm64 holds the
			// counter's address in x26; 6.1's counter is in the frame (x86)
			// or x26 itself (arm64).
			wantDependent := map[string]int{"x86_64/v6.1": 1, "x86_64/v6.18": 3, "x86_64/v6.18+series": 2,
				"arm64/v6.1": 1, "arm64/v6.18": 1, "arm64/v6.18+series": 0}[name]
			if c.DependentLoads != wantDependent {
				t.Errorf("%s: %d dependent loads, want %d", name, c.DependentLoads, wantDependent)
			}
			// Events sit among the instructions: leaf is entered before
			// its first instruction, after entry's last.
			i := slices.IndexFunc(got.Trace, func(e prog.Event) bool { return e.Kind == prog.EvEnter && e.Prog == "leaf" })
			first := slices.IndexFunc(got.Execs, func(e prog.Exec) bool { return strings.HasPrefix(e.Machine, "leaf+") })
			if i < 0 || first < 0 || got.Trace[i].Step != first {
				t.Errorf("%s: enter leaf at step %d, leaf's first instruction %d", name, got.Trace[i].Step, first)
			}
		}
	}
}

// A call that falls through records the check that failed and costs
// less; calls, returns and helper calls appear as events.
func TestSteppedEvents(t *testing.T) {
	src := `events
-- maps --
jt max_entries=2
-- prog entry --
	r6 = r1
	call sub
	call bpf_ktime_get_ns
	r1 = r6
	r2 = map[jt]
	r3 = 7
	call bpf_tail_call
	r0 = 5
	exit
-- subprog sub --
	r0 = 3
	exit
-- ctx --
u32 0
-- run --
run entry
`
	for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
		m, w := loadStepped(t, b, src, prog.Linux618Series, 0)
		got := m.Run(w.Prog("entry"), []byte{0, 0, 0, 0})
		var kinds []string
		for _, e := range got.Trace {
			kinds = append(kinds, e.Kind.String())
		}
		want := []string{"enter", "call", "return", "helper", "tail call", "exit"}
		if diff := cmp.Diff(want, kinds); diff != "" || got.R0 != 5 {
			t.Errorf("%s: r0 %d, events (-want +got):\n%s", b.Name(), got.R0, diff)
		}
		var failed []prog.CheckDecision
		for _, e := range got.Execs {
			failed = append(failed, e.Checks...)
		}
		if len(failed) != 1 || failed[0].Passed || failed[0].Check != prog.FallBounds || failed[0].Index != 7 || failed[0].MaxEntries != 2 {
			t.Errorf("%s: checks %v", b.Name(), failed)
		}
		if len(got.Costs) != 1 || got.Costs[0].Taken || got.Costs[0].ArrayProgLoads != 0 {
			t.Errorf("%s: costs %v", b.Name(), got.Costs)
		}
	}
}

// The budget of a stepped run counts instructions exactly.
func TestSteppedBudget(t *testing.T) {
	src := "loop\n-- prog entry --\n\tr0 = 0\nl:\n\tr0 += 1\n\tgoto l\n-- run --\nrun entry\n"
	for _, b := range []*Backend{NewX86(0), NewArm64(0)} {
		m, w := loadStepped(t, b, src, prog.Linux618, 500)
		got := m.Run(w.Prog("entry"), nil)
		if got.Fault == nil || got.Fault.Kind != prog.FaultBudget || len(got.Execs) != 500 {
			t.Errorf("%s: fault %v after %d instructions", b.Name(), got.Fault, len(got.Execs))
		}
	}
}

// A measuring run (Cost) reports the same costs as a stepped one and
// keeps no instructions.
//
// Under every configuration: a tail call through a retpoline thunk costs
// the thunk's instruction too, in both modes (measuring once missed the
// thunk, which lies outside the code it hooks, and closed the cost on
// the callee's first instruction with the callee's loads).
func TestCostMode(t *testing.T) {
	plain := map[string]int{}
	for _, cfg := range prog.Configs {
		for _, b := range []*Backend{NewX86(cfg.Config), NewArm64(cfg.Config)} {
			testCostMode(t, b, cfg, plain)
		}
	}
}

func testCostMode(t *testing.T, b *Backend, cfg prog.NamedConfig, plain map[string]int) {
	t.Helper()
	{
		for _, v := range prog.Kernels {
			sm, sw := loadStepped(t, b, chain, v, 0)
			want := sm.Run(sw.Prog("entry"), ctx(1))
			sc, _ := scenarios.Parse("t.txtar", []byte(chain))
			w, _ := sc.Build()
			m, err := b.Load(w, v, prog.LoadOptions{Cost: true})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, index := range []uint32{1, 1, 3} { // taken twice, then an empty slot
				got := m.Run(w.Prog("entry"), ctx(index))
				if got.Execs != nil || len(got.Costs) != 1 {
					t.Fatalf("%s/%s index %d: %d execs, %d steps, costs %v", b.Name(), v, index, len(got.Execs), got.Steps, got.Costs)
				}
				if index == 1 && got.Costs[0] != want.Costs[0] {
					t.Errorf("%s/%s/%s: measured %v, stepped %v", b.Name(), v, cfg.Name, got.Costs[0], want.Costs[0])
				}
				key := b.Name() + "/" + v.String()
				if index == 1 && cfg.Config == 0 {
					plain[key] = got.Costs[0].Insns
				}
				// One more: the thunk's jmp, or lfence before jmp rcx.
				longer := b.Name() == "x86_64" && cfg.Config&(prog.Thunk|prog.Lfence) != 0 && want.Costs[0].Path != prog.Direct
				if index == 1 && cfg.Config != 0 && longer != (got.Costs[0].Insns == plain[key]+1) {
					t.Errorf("%s/%s: a taken call costs %d instructions, %d in the default build (one more expected: %v)", key, cfg.Name, got.Costs[0].Insns, plain[key], longer)
				}
				if index == 3 && (got.Costs[0].Taken || got.Costs[0].Insns >= want.Costs[0].Insns) {
					t.Errorf("%s/%s: an empty slot costs %v", b.Name(), v, got.Costs[0])
				}
			}
		}
	}
}

// A program a subprogram tail-calls takes the subprogram's frame: its
// return goes back into the caller, and is reported as a return, not
// mistaken for one at the tail call's own jump.
func TestSteppedTailCallFromSubprogram(t *testing.T) {
	src := `sub tail call
-- maps --
jt max_entries=2
-- prog entry --
	call sub
	r0 += 10
	exit
-- subprog sub --
	r2 = map[jt]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 1
	exit
-- prog leaf --
	r0 = 5
	exit
-- slots --
jt[0] = leaf
-- ctx --
u32 0
-- run --
run entry
`
	for _, b := range []*Backend{NewX86(0), NewArm64(0), NewX86(prog.Configs[1].Config), NewX86(prog.Configs[3].Config)} {
		m, w := loadStepped(t, b, src, prog.Linux618, 0)
		got := m.Run(w.Prog("entry"), []byte{0, 0, 0, 0})
		var evs []string
		for _, e := range got.Trace {
			evs = append(evs, e.String())
		}
		want := []string{"enter entry", "call sub from entry+0 (line 5) @entry+", "tail call at entry/sub+3 (line 11) @entry/sub+",
			"enter leaf", "return from leaf r0=0x5", "exit r0=0xf (15)"}
		if len(evs) != len(want) || got.R0 != 15 {
			t.Fatalf("%s: r0 %d, events %q", b.Name(), got.R0, evs)
		}
		for i := range want {
			if !strings.HasPrefix(evs[i], want[i]) {
				t.Errorf("%s: event %d is %q, want %q...", b.Name(), i, evs[i], want[i])
			}
		}
	}
}

// A stepped machine told not to record runs quietly, with the same
// result and its instructions counted, and records again when told.
func TestRecordQuietly(t *testing.T) {
	m, w := loadStepped(t, NewX86(0), chain, prog.Linux618Series, 0)
	loud := m.Run(w.Prog("entry"), ctx(1))
	m.(prog.Recorder).Record(false)
	quiet := m.Run(w.Prog("entry"), ctx(1))
	if len(quiet.Execs) != 0 || len(quiet.Costs) != 0 || quiet.Steps != loud.Steps || quiet.R0 != loud.R0 || quiet.Count != loud.Count {
		t.Errorf("quiet: %d execs, %d costs, %d steps, r0 %d; loud: %d steps, r0 %d", len(quiet.Execs), len(quiet.Costs), quiet.Steps, quiet.R0, loud.Steps, loud.R0)
	}
	m.(prog.Recorder).Record(true)
	again := m.Run(w.Prog("entry"), ctx(1))
	if len(again.Execs) != len(loud.Execs) || len(again.Costs) != 1 {
		t.Errorf("recording again: %d execs of %d, costs %v", len(again.Execs), len(loud.Execs), again.Costs)
	}
}

// A check whose branch is taken but misses out says where it went (the
// series' x86 label shared by a static and a dynamic site), and the
// instruction at a poke site reads as a slot update left it.
func TestSteppedBrokenCodeAndRepokes(t *testing.T) {
	data, err := os.ReadFile("../scenarios/library/findings/patched_x86_mixed_sites.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Parse("mixed.txtar", data)
	if err != nil {
		t.Fatal(err)
	}
	keep := func(scenarios.Step, int) bool { return true }
	rep := scenarios.Run(sc, NewX86(0), prog.Linux618Series, scenarios.Options{Trace: true, Step: true, Keep: keep})
	var astray []prog.CheckDecision
	notes := 0
	run79 := rep.Runs[slices.IndexFunc(rep.Runs, func(r scenarios.RunRecord) bool { return r.Line == 79 })]
	for _, e := range run79.Result.Execs {
		for _, d := range e.Checks {
			if d.Astray != "" {
				astray = append(astray, d)
			}
		}
	}
	for _, e := range run79.Result.Trace {
		if e.Kind == prog.EvNote && strings.HasPrefix(e.Text, "broken: tail call resolves") {
			notes++
		}
	}
	if len(astray) != 1 || astray[0].Passed || astray[0].Check != prog.FallBounds || !strings.Contains(astray[0].String(), "not to out") || notes != 1 {
		t.Errorf("checks gone astray %v, %d notes of the broken property", astray, notes)
	}

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
delete jt[1]
run entry
`
	if sc, err = scenarios.Parse("repoked.txtar", []byte(src)); err != nil {
		t.Fatal(err)
	}
	rep = scenarios.Run(sc, NewX86(0), prog.Linux618, scenarios.Options{Trace: true, Step: true, Keep: keep})
	bypass := func(r *prog.Result) string {
		for _, e := range r.Execs {
			if strings.HasPrefix(e.Note, "poke site: bypass") {
				return e.Insn
			}
		}
		return ""
	}
	if len(rep.Runs) != 2 || !strings.HasPrefix(bypass(rep.Runs[0].Result), "nop") || !strings.HasPrefix(bypass(rep.Runs[1].Result), "jmp") {
		t.Errorf("the bypass site ran as %q, then after the delete as %q", bypass(rep.Runs[0].Result), bypass(rep.Runs[1].Result))
	}
}
