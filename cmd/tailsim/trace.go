package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"tailsim/prog"
	htmlreport "tailsim/report"
	"tailsim/scenarios"
	"tailsim/trace"
)

func init() {
	register(&command{
		name: "trace",
		summary: `run a scenario on one arch and kernel, instruction by instruction

Every run step of the scenario is traced, pass or fail: each machine
instruction (each BPF instruction on -arch ref) under the BPF instruction
it came from, the registers it changed, every memory read and write by
name (jt->ptrs[1], prog leaf->bpf_func, tail_call_cnt, ctx+8, stack
fp-0x10) with its value, and each tail-call check as it is decided.
Programs entered, tail calls, bpf2bpf calls and returns and helper calls
are events among the instructions, and each tail call's cost follows it:
instructions, loads from the array and programs and from the counter and
stack, dependent loads, stores, bytes of code. -brief folds each BPF
instruction into one line, -events keeps only the events and costs;
-json writes one record per line; -html FILE writes the runs as one
self-contained web page to step through (the code, the memory, the
checks, the chain of programs) and prints only the verdict.
Exit status: 0 the scenario's checks pass, 1 one failed, 2 usage or
input error.`,
		usage: "tailsim trace [-arch A] [-kernel K] [-config C] [-layout L] [-line N] [-iter I] [-brief|-events] [-json] [-html FILE] [-max N] SCENARIO",
		run:   traceCmd,
	})
	flagSetups["trace"] = func(fs *flag.FlagSet) { newTraceFlags(fs) }
}

type traceFlags struct {
	arch, kernel, config, layout *string
	line, iter, max              *int
	brief, events, json          *bool
	html                         *string
}

func newTraceFlags(fs *flag.FlagSet) traceFlags {
	return traceFlags{
		arch:   fs.String("arch", "x86_64", "the arch to trace: x86_64, arm64, or ref (the reference model, one BPF instruction a step)"),
		kernel: fs.String("kernel", prog.Linux618.String(), kernelUsage),
		config: fs.String("config", "default", configUsage),
		layout: fs.String("layout", "", "structure layout preset (v6.18, v6.18-nosec, pre-v6.18), overriding the scenario's"),
		line:   fs.Int("line", 0, "trace only the run step on this line of the scenario"),
		iter:   fs.Int("iter", 0, "of a step with repeat=N, trace iteration I (default: the first and the last)"),
		max:    fs.Int("max", 100_000, "instructions a traced run may take (its budget when lower than the scenario's)"),
		brief:  fs.Bool("brief", false, "one line per BPF instruction"),
		events: fs.Bool("events", false, "only programs entered, calls, tail calls and their costs"),
		json:   fs.Bool("json", false, "one JSON record per line"),
		html:   fs.String("html", "", "write the runs as a self-contained HTML page to `FILE` instead of text"),
	}
}

// runRecord heads a run's JSON records.
type runRecord struct {
	Type   string `json:"type"` // "run"
	Line   int    `json:"line"`
	Step   string `json:"step"`
	Iter   int    `json:"iteration"`
	Repeat int    `json:"of"`
}

// verdictRecord ends the JSON records.
type verdictRecord struct {
	Type     string   `json:"type"` // "verdict"
	Arch     string   `json:"arch"`
	Kernel   string   `json:"kernel"`
	Status   string   `json:"status"`
	Failures []string `json:"failures"`
	Notes    []string `json:"notes,omitempty"`
}

func traceCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	f := newTraceFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one SCENARIO\nusage: %s", commands["trace"].usage)
	}
	bs, err := selectBackends(*f.arch)
	if err != nil || len(bs) != 1 {
		return usagef("-arch %q: trace one arch of %s", *f.arch, archNames())
	}
	v, err := prog.ParseKernel(*f.kernel)
	if err != nil {
		return usageError{err}
	}
	cfg, err := selectConfig(*f.config)
	if err != nil {
		return usageError{err}
	}
	if *f.max < 1 || *f.iter < 0 {
		return usagef("-max must be at least 1 and -iter not negative")
	}
	switch {
	case *f.html != "" && (*f.json || *f.brief || *f.events):
		return usagef("-html writes a page: no -json, -brief or -events with it")
	case *f.json && (*f.brief || *f.events):
		return usagef("-json writes every record: no -brief or -events with it")
	case *f.brief && *f.events:
		return usagef("-brief or -events, not both")
	}
	scs, err := scenarios.LoadPaths(pos)
	if err != nil {
		return inputError{err}
	}
	if len(scs) != 1 {
		return usagef("%s holds %d scenarios; name one scenario file", pos[0], len(scs))
	}
	sc := scs[0]
	// The runs shown: the -line step's (or every step's), of a repeated
	// step the -iter'th iteration, or its first and last.
	keep := func(st scenarios.Step, iter int) bool {
		switch {
		case *f.line != 0 && st.Line != *f.line:
			return false
		case *f.iter != 0:
			return iter == *f.iter
		}
		return iter == 1 || iter == st.Repeat
	}
	opts := scenarios.Options{Trace: true, Step: true, StepBudget: *f.max, Keep: keep, Config: cfg}
	if *f.layout != "" {
		l, err := prog.LayoutByName(*f.layout)
		if err != nil {
			return usageError{err}
		}
		opts.Layout = &l
	}
	if *f.line != 0 && !hasRunStep(sc, *f.line) {
		return usagef("line %d of %s is no run step", *f.line, sc.File)
	}
	if *f.iter > 1 && !hasIteration(sc, *f.line, *f.iter) {
		return usagef("-iter %d: no run step of %s repeats that often", *f.iter, sc.File)
	}
	if len(sc.Combos(bs, []prog.Kernel{v})) == 0 {
		return usagef("%s does not run on %s/%s", sc.File, bs[0].Name(), v)
	}
	if !sc.RunsUnder(cfg) {
		return usagef("%s does not run under -config %s (its configs line)", sc.File, cfg)
	}
	rep := scenarios.Run(sc, bs[0], v, opts)
	if *f.html != "" {
		if err := writeReport(*f.html, sc, htmlreport.Options{Layout: opts.Layout}, rep); err != nil {
			return err
		}
		runs := "runs"
		if len(rep.Runs) == 1 {
			runs = "run"
		}
		fmt.Fprintf(stdout, "wrote %s: %d %s to step through (open it in a browser)\n", *f.html, len(rep.Runs), runs)
	}

	enc := json.NewEncoder(stdout)
	for _, r := range rep.Runs {
		if *f.html != "" {
			break
		}
		if *f.json {
			if err := enc.Encode(runRecord{Type: "run", Line: r.Line, Step: r.Step, Iter: r.Iter, Repeat: r.Repeat}); err != nil {
				return err
			}
			if err := trace.WriteJSON(stdout, r.Result); err != nil {
				return err
			}
			continue
		}
		iter := ""
		if r.Repeat > 1 {
			iter = fmt.Sprintf(", iteration %d of %d", r.Iter, r.Repeat)
			if *f.iter == 0 && r.Iter == 1 && r.Repeat > 2 {
				if r.Repeat == 3 {
					iter += "; iteration 2 is not shown (-iter I shows one)"
				} else {
					iter += fmt.Sprintf("; iterations 2 to %d are not shown (-iter I shows one)", r.Repeat-1)
				}
			}
		}
		fmt.Fprintf(stdout, "# %s (line %d%s) on %s/%s\n", r.Step, r.Line, iter, rep.Arch, rep.Kernel)
		if err := trace.WriteText(stdout, r.Result, trace.Options{Brief: *f.brief, Events: *f.events}); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	failures := []string{}
	for _, fl := range rep.Failures {
		failures = append(failures, fl.String())
	}
	if *f.json {
		if err := enc.Encode(verdictRecord{Type: "verdict", Arch: rep.Arch, Kernel: rep.Kernel.String(), Status: rep.Status.String(), Failures: failures, Notes: rep.Notes}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%s: %s on %s/%s\n", sc.File, strings.ToUpper(rep.Status.String()), rep.Arch, rep.Kernel)
		for i, fl := range failures {
			label := "FAIL"
			if rep.Failures[i].Kind == scenarios.FailError {
				label = "ERROR"
			}
			fmt.Fprintf(stdout, "  %s %s\n", label, fl)
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(stdout, "  note %s\n", n)
		}
		if cut := sc.Budget == 0 || sc.Budget > *f.max; cut && slices.ContainsFunc(rep.Runs, func(r scenarios.RunRecord) bool {
			return r.Result.Fault != nil && r.Result.Fault.Kind == prog.FaultBudget
		}) {
			fmt.Fprintf(stdout, "  note: a traced run stopped at -max %d instructions, below the scenario's own budget: a budget fault here is the trace's, not the scenario's (raise -max)\n", *f.max)
		}
	}
	switch rep.Status {
	case scenarios.Pass:
		return nil
	case scenarios.Fail:
		return errChecksFailed
	}
	return reported{}
}

// writeReport writes the HTML report of reps to file.
func writeReport(file string, sc *scenarios.Scenario, o htmlreport.Options, reps ...*scenarios.Report) error {
	// The page is made before the file, so a page that cannot be made
	// leaves no empty file behind.
	var page bytes.Buffer
	if err := htmlreport.Write(&page, sc, o, reps...); err != nil {
		return err
	}
	return os.WriteFile(file, page.Bytes(), 0o644)
}

// hasIteration reports whether a run step (the one on line, or any when
// line is 0) runs iter times or more.
func hasIteration(sc *scenarios.Scenario, line, iter int) bool {
	for _, st := range sc.Steps {
		if st.Kind == scenarios.StepRun && (line == 0 || st.Line == line) && st.Repeat >= iter {
			return true
		}
	}
	return false
}

func hasRunStep(sc *scenarios.Scenario, line int) bool {
	for _, st := range sc.Steps {
		if st.Kind == scenarios.StepRun && st.Line == line {
			return true
		}
	}
	return false
}

func archNames() string {
	var names []string
	for _, b := range backends {
		names = append(names, b.Name())
	}
	return strings.Join(names, ", ")
}
