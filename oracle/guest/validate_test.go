package main

import (
	"fmt"
	"strings"
	"testing"

	"tailsim/oracle/job"
)

// A job that names a map or program it does not declare is refused before
// the agent touches the kernel, with what it names.
func TestValidate(t *testing.T) {
	base := func() job.Scenario {
		return job.Scenario{
			Maps:  []job.Map{{Name: "jt", MaxEntries: 2}},
			Progs: []job.Prog{{Name: "entry", MapRefs: []job.MapRef{{Insn: 0, Map: "jt"}}}, {Name: "leaf"}},
			Slots: []job.Slot{{Map: "jt", Index: 0, Prog: "leaf"}},
			Steps: []job.Step{{Kind: job.Run, Line: 9, Prog: "entry"}, {Kind: job.Update, Line: 10, Map: "jt", Prog: "leaf"},
				{Kind: job.Delete, Line: 11, Map: "jt"}},
		}
	}
	if err := validate(base()); err != nil {
		t.Fatalf("a well-formed job: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*job.Scenario)
		want   string
	}{
		{"prog type", func(s *job.Scenario) { s.Progs[1].Type = "kprobe" }, `type "kprobe"`},
		{"map ref", func(s *job.Scenario) { s.Progs[0].MapRefs[0].Map = "jx" }, `no map "jx"`},
		{"slot map", func(s *job.Scenario) { s.Slots[0].Map = "jx" }, "slot jx[0]"},
		{"slot prog", func(s *job.Scenario) { s.Slots[0].Prog = "nope" }, "= nope"},
		{"run", func(s *job.Scenario) { s.Steps[0].Prog = "nope" }, "line 9"},
		{"update prog", func(s *job.Scenario) { s.Steps[1].Prog = "nope" }, "line 10"},
		{"delete map", func(s *job.Scenario) { s.Steps[2].Map = "jx" }, "line 11"},
		{"set map", func(s *job.Scenario) { s.Steps = append(s.Steps, job.Step{Kind: job.Set, Line: 12, Map: "jx"}) }, "line 12"},
	} {
		s := base()
		tc.change(&s)
		if err := validate(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// The agent loads every type the host may send.
func TestProgTypes(t *testing.T) {
	for _, typ := range job.ProgTypes {
		if _, ok := progTypes[typ]; !ok {
			t.Errorf("job.ProgTypes has %s, which the agent does not map", typ)
		}
	}
}

// lib/test_bpf's lines are read out of the kernel log as the module
// writes them (a level, a time, the test, pr_cont's rest).
func TestParseTestLog(t *testing.T) {
	log := "<6>[    2.100000] test_bpf: #0 Tail call leaf jited:1 12 PASS\n" +
		"<6>[    2.200000] random: something else\n" +
		"<6>[    2.300000] test_bpf: #6 Tail call error path, max count reached jited:1 ret 33000 != 34000 FAIL\n" +
		"<6>[    2.400000] test_bpf: #8 Tail call error path, NULL target jited:0 5 PASS\r\n" +
		"<6>[    2.500000] test_bpf: test_tail_calls: Summary: 9 PASSED, 1 FAILED, [9/10 JIT'ed]\n"
	got, raw := parseTestLog(log)
	if len(raw) != 4 || !strings.HasSuffix(raw[3], "[9/10 JIT'ed]") {
		t.Errorf("raw lines %q", raw)
	}
	want := []job.KernelTest{
		{Index: 0, Name: "Tail call leaf", Jited: true, Pass: true, Detail: "12 PASS"},
		{Index: 6, Name: "Tail call error path, max count reached", Jited: true, Pass: false, Detail: "ret 33000 != 34000 FAIL"},
		{Index: 8, Name: "Tail call error path, NULL target", Jited: false, Pass: true, Detail: "5 PASS"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed %+v\nwant %+v", got, want)
	}
}
