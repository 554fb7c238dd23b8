package trace_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
	"tailsim/trace"
)

const chain = `two programs
-- maps --
jt max_entries=4
-- prog entry --
	r6 = r1
	r2 = map[jt]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 7
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- ctx --
u32 1
-- run --
run entry
`

// stepped runs chain on b and returns the run's result.
func stepped(t *testing.T, b scenarios.Backend, v prog.Kernel) *prog.Result {
	t.Helper()
	sc, err := scenarios.Parse("chain.txtar", []byte(chain))
	if err != nil {
		t.Fatal(err)
	}
	rep := scenarios.Run(sc, b, v, scenarios.Options{Trace: true, Step: true, Keep: func(scenarios.Step, int) bool { return true }})
	if rep.Status != scenarios.Pass || len(rep.Runs) != 1 {
		t.Fatalf("%s: %v, %d runs", rep.Status, rep.Failures, len(rep.Runs))
	}
	return rep.Runs[0].Result
}

// Items puts each event before the instruction its Step names and a tail
// call's cost right after its event.
func TestItems(t *testing.T) {
	r := stepped(t, emu.NewX86(0), prog.Linux618)
	items := trace.Items(r)
	execs, seen := 0, 0
	for i, it := range items {
		switch {
		case it.Exec != nil:
			if it.Index != execs {
				t.Fatalf("item %d: exec %d, want %d", i, it.Index, execs)
			}
			execs++
		case it.Event != nil:
			seen++
			if it.Event.Step != execs {
				t.Errorf("event %v before exec %d", it.Event, execs)
			}
			if it.Event.Kind == prog.EvTailCall && (i+1 >= len(items) || items[i+1].Cost == nil) {
				t.Errorf("tail call event without its cost")
			}
		}
	}
	if execs != len(r.Execs) || seen != len(r.Trace) {
		t.Errorf("%d execs of %d, %d events of %d", execs, len(r.Execs), seen, len(r.Trace))
	}
}

func TestWriteText(t *testing.T) {
	r := stepped(t, emu.NewX86(0), prog.Linux618Series)
	full := strings.Join(trace.Lines(r, trace.Options{}), "\n")
	for _, want := range []string{
		"; entry+4 (line 8): call bpf_tail_call",
		"read jt->ptrs[5] (cached[1]) = ",
		"bounds check passed (index 1 < max_entries 4)",
		"** tail call at entry+4 (line 8) @entry+",
		"  cost: ",
		"loads: 1 from the array and programs",
		"=> enter leaf",
		"result: r0 = 0x1, tail_call_cnt = 1, path entry leaf,",
	} {
		if !strings.Contains(full, want) {
			t.Errorf("full trace lacks %q:\n%s", want, full)
		}
	}
	// -brief: one line per BPF instruction (and prologue or epilogue),
	// each with the instruction's place.
	brief := trace.Lines(r, trace.Options{Brief: true})
	var places []string
	for _, l := range brief {
		if f := strings.Fields(l); len(f) > 1 && f[0] != "=>" && f[0] != "**" && f[0] != "->" && f[0] != "cost:" && f[0] != "result:" {
			places = append(places, strings.Join(f[1:3], " "))
		}
	}
	want := []string{"prologue of", "entry+0 (line", "entry+1 (line", "entry+3 (line", "entry+4 (line", "leaf+0 (line", "epilogue of"}
	if len(places) != len(want) {
		t.Fatalf("brief places %q, want %d:\n%s", places, len(want), strings.Join(brief, "\n"))
	}
	for i, p := range places {
		if !strings.HasPrefix(p, want[i]) {
			t.Errorf("brief line %d is %q, want %q...", i, p, want[i])
		}
	}
	// The reference model: BPF instructions, with their registers.
	ref := strings.Join(trace.Lines(stepped(t, scenarios.Ref{}, prog.Linux618Series), trace.Options{Brief: true}), "\n")
	if !strings.Contains(ref, "leaf+0 (line 12): r0 = 1  r0 ") || !strings.Contains(ref, "empty-slot check passed") {
		t.Errorf("reference brief trace:\n%s", ref)
	}
}

func TestWriteJSON(t *testing.T) {
	r := stepped(t, emu.NewArm64(0), prog.Linux618)
	var b strings.Builder
	if err := trace.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	var last map[string]any
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		types[rec["type"].(string)]++
		last = rec
	}
	if types["exec"] != len(r.Execs) || types["event"] != len(r.Trace) || types["cost"] != 1 || types["result"] != 1 || last["type"] != "result" {
		t.Errorf("records %v", types)
	}
	if cost := strings.Index(b.String(), `"cost":{"at":"entry+4 (line 8)","path":"indirect","taken":true,"insns":`); cost < 0 {
		t.Errorf("cost record not as expected:\n%s", b.String())
	}
}

// A preset counter is an event, so the step that reads 32 where the
// prologue stored 0 is explained, on every backend and only when preset.
func TestPresetEvent(t *testing.T) {
	text := strings.Replace(chain, "run entry\n", "run entry tail_call_cnt=32\nrun entry\n", 1)
	sc, err := scenarios.Parse("preset.txtar", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []scenarios.Backend{emu.NewX86(0), emu.NewArm64(0), scenarios.Ref{}} {
		for _, step := range []bool{false, true} {
			rep := scenarios.Run(sc, b, prog.Linux618, scenarios.Options{Trace: true, Step: step, Keep: func(scenarios.Step, int) bool { return true }})
			if rep.Status != scenarios.Pass || len(rep.Runs) != 2 {
				t.Fatalf("%s: %v, %d runs", rep.Status, rep.Failures, len(rep.Runs))
			}
			for i, want := range []int{1, 0} {
				var got []string
				for _, e := range rep.Runs[i].Result.Trace {
					if e.Kind == prog.EvPreset {
						got = append(got, e.String())
					}
				}
				if len(got) != want || want == 1 && got[0] != "tail_call_cnt preset to 32, as 32 taken tail calls would have left it" {
					t.Errorf("%s (step %v) run %d: preset events %q", b.Name(), step, i+1, got)
				}
			}
		}
	}
}
