package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trace prints a passing run whole, exits 0; a failing one still traced,
// exits 1; the JSON records parse and end with the verdict.
func TestTraceCommand(t *testing.T) {
	good := write(t, "good.txtar", scenario)
	code, out, errs := run(t, "trace", "-kernel", "v6.18+series", good)
	for _, want := range []string{"# run entry (line 16) on x86_64/v6.18+series", "; entry+3 (line 7): call bpf_tail_call",
		"count check passed (tail_call_cnt 0 < 33)", "** tail call at entry+3 (line 7)", "(direct)", "  cost: ", "=> enter leaf",
		"result: r0 = 0x1", "good.txtar: PASS on x86_64/v6.18+series"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || errs != "" {
		t.Errorf("exit %d, stderr %q", code, errs)
	}

	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	code, out, _ = run(t, "trace", "-brief", "-arch", "arm64", failing)
	if code != 1 || !strings.Contains(out, "FAIL on arm64/v6.18") || !strings.Contains(out, "FAIL line 17: expect r0 = 2: got 1") ||
		!strings.Contains(out, "entry+3 (line 7): call bpf_tail_call") {
		t.Errorf("failing trace: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, "trace", "-json", "-arch", "ref", good)
	sc := bufio.NewScanner(strings.NewReader(out))
	var types []string
	for sc.Scan() {
		var rec struct{ Type string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		if len(types) == 0 || types[len(types)-1] != rec.Type {
			types = append(types, rec.Type)
		}
	}
	if code != 0 || strings.Join(types, " ") != "run event exec event exec event result verdict" {
		t.Errorf("exit %d, record types %q", code, types)
	}

	for _, args := range [][]string{
		{"trace"},
		{"trace", "-arch", "all", good},
		{"trace", "-line", "3", good},
		{"trace", "-max", "0", good},
		{"trace", good, good},
	} {
		if code, _, errs := run(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// run -json carries the costs of the emulated arches' tail calls, alike
// ones of a step counted once.
func TestRunJSONCosts(t *testing.T) {
	src := strings.Replace(scenario, "w3 = 1", "r3 = *(u32 *)(r1 + 0)", 1)
	src = strings.Replace(src, "run entry\n", "run entry repeat=3\n", 1) + "-- ctx --\nu32 1\n"
	code, out, errs := run(t, "run", "-json", "-arch", "ref,x86_64", "-kernel", "v6.18+series", write(t, "costs.txtar", src))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	type report struct {
		Arch  string
		Costs []struct {
			Times          int
			Path           string
			ArrayProgLoads int `json:"array_prog_loads"`
		}
	}
	var reports []report
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r report
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		reports = append(reports, r)
	}
	if len(reports) != 2 || reports[0].Costs != nil || len(reports[1].Costs) != 1 {
		t.Fatalf("%s", out)
	}
	if c := reports[1].Costs[0]; c.Times != 3 || c.Path != "static" || c.ArrayProgLoads != 1 {
		t.Errorf("x86_64 cost %+v", c)
	}
}

// compare exits 0 when both sides agree, 1 when a run differs, 2 on a
// usage error.
func TestCompareCommand(t *testing.T) {
	good := write(t, "good.txtar", strings.Replace(scenario, "w3 = 1", "r3 = *(u32 *)(r1 + 0)", 1)+"-- ctx --\nu32 1\n")
	code, out, errs := run(t, "compare", good)
	if code != 0 || !strings.Contains(out, "x86_64/v6.18 beside x86_64/v6.18+series") || !strings.Contains(out, "the same in its one run") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	// Two kernels: Debian 12's counts the call into the empty slot.
	code, out, errs = run(t, "compare", "-kernel", "v6.1,v6.18", "../../scenarios/library/edges/empty_slot.txtar")
	if code != 1 || !strings.Contains(out, "x86_64/v6.1 beside x86_64/v6.18") || !strings.Contains(out, "DIFFERENT: tail_call_cnt 2 vs 1") ||
		!strings.Contains(out, "mov eax, dword ptr [rbp-0x4]") {
		t.Errorf("compare -kernel v6.1,v6.18: exit %d\n%s%s", code, out, errs)
	}
	for _, args := range [][]string{{"-kernel", "v6.1"}, {"-kernel", "v6.1,v6.1"}, {"-arch", "x86_64,arm64", "-kernel", "v6.1,v6.18"}} {
		if code, _, errs := run(t, append(append([]string{"compare"}, args...), good)...); code != 2 || !strings.Contains(errs, "-kernel") {
			t.Errorf("compare %v: exit %d, %s", args, code, errs)
		}
	}
	page := filepath.Join(t.TempDir(), "cmp.html")
	code, out, _ = run(t, "compare", "-html", page, good)
	html, err := os.ReadFile(page)
	if code != 0 || !strings.Contains(out, "wrote "+page+": x86_64/v6.18 and x86_64/v6.18+series") || err != nil ||
		!strings.Contains(string(html), "x86_64/v6.18") || !strings.Contains(string(html), "x86_64/v6.18+series") {
		t.Errorf("compare -html: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = run(t, "compare", "-arch", "x86_64,arm64", "-kernel", "v6.18", good)
	if code != 0 || !strings.Contains(out, "x86_64/v6.18 beside arm64/v6.18") {
		t.Errorf("arches: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "compare", "../../scenarios/library/findings/patched_static_disp32.txtar")
	if code != 1 || !strings.Contains(out, "DIFFERENT") {
		t.Errorf("finding: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"compare"}, {"compare", "-arch", "ref", good}, {"compare", "-arch", "x86_64,arm64,x86_64", good}, {"compare", "-arch", "x86_64,arm64", "-variant", "v9", good}} {
		if code, _, errs := run(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// tailsim trace explains every library scenario: each traced run ends
// with its result, and the verdict is the scenario's own (the library
// passes everywhere). The arch and kernel go round the six emulated
// combinations and the reference model.
func TestTraceLibrary(t *testing.T) {
	t.Chdir("../..")
	files, err := filepath.Glob("scenarios/library/*/*.txtar")
	if err != nil || len(files) < 40 {
		t.Fatalf("%d library files, %v", len(files), err)
	}
	combos := [][2]string{{"x86_64", "v6.18"}, {"arm64", "v6.18+series"}, {"x86_64", "v6.1"}, {"x86_64", "v6.18+series"}, {"arm64", "v6.18"},
		{"arm64", "v6.1"}, {"ref", "v6.18+series"}, {"ref", "v6.1"}}
	for i, f := range files {
		c := combos[i%len(combos)]
		code, out, errs := run(t, "trace", "-events", "-arch", c[0], "-kernel", c[1], f)
		if code == 2 && strings.Contains(errs, "does not run on") {
			continue // restricted to other arches or variants
		}
		if code != 0 || !strings.Contains(out, ": PASS on "+c[0]+"/"+c[1]) || !strings.Contains(out, "\nresult: r0 = ") && !strings.Contains(out, "\nfault: ") {
			t.Errorf("%s on %s/%s: exit %d\n%s%s", f, c[0], c[1], code, out, errs)
		}
	}
}
