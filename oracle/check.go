package oracle

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"tailsim/emu"
	"tailsim/oracle/job"
	"tailsim/prog"
	"tailsim/scenarios"
)

// Outcome is one scenario's comparison on one arch.
type Outcome struct {
	File string
	// Skip is why the scenario was not run ("" when it was).
	Skip string
	// Mismatches are results that differ ("line 30 iteration 1: r0 …").
	Mismatches []string
	// Funcs are the functions whose bytes were compared; Bytes those
	// that differ, with both listings.
	Funcs int
	Bytes []FuncDiff
	Runs  int // run iterations compared
	// BytesOnly says why the runs were not compared (the plan's).
	BytesOnly string
	// KernelTest names the kernel's own test a translated scenario was
	// held against instead ("lib/test_bpf's test_tail_calls #3").
	KernelTest string
	// IndirectJumps counts x86's indirect tail-call jumps in the functions
	// that compared equal: what the boot's mitigation changes.
	IndirectJumps int
	// Named are the symbols the compared functions' masked addresses
	// named alike on both sides (maps, helpers, thunks, functions).
	Named map[string]bool
}

// FuncDiff is one function whose code differs from the kernel's.
type FuncDiff struct {
	Name string // prog#fn
	Diff *Diff
}

// Status is PASS, FAIL or SKIP.
func (o *Outcome) Status() string {
	switch {
	case o.Skip != "":
		return "SKIP"
	case len(o.Mismatches) > 0 || len(o.Bytes) > 0:
		return "FAIL"
	}
	return "PASS"
}

// Report is one boot's comparisons.
type Report struct {
	Arch string
	// Boot names the boot among several of one arch: "" for the kernel's
	// own choices, else the parameters it was given ("spectre_v2=off").
	Boot     string
	Uname    string
	Config   prog.Config       // the build tailsim compiled for, from what the guest reported
	Info     map[string]string // the guest's settings, as its hello line gave them
	Outcomes []*Outcome
	// Results are the guest's lines, as a recording of the boot.
	Results []job.Result
	// Problems make the whole boot's comparison doubtful (a JIT that was
	// off or blinding, agent lines the console garbled): they fail it.
	Problems []string
	// Warnings are what a reader should know (a kernel other than 6.1).
	Warnings []string
}

// Failed reports a mismatch anywhere.
func (r *Report) Failed() bool {
	if len(r.Problems) > 0 {
		return true
	}
	for _, o := range r.Outcomes {
		if o.Status() == "FAIL" {
			return true
		}
	}
	return false
}

// Check boots m once with every scenario of scs the kernel can run and
// compares each with tailsim's v6.1 on m.Arch: the results of every run
// and update, and every function's code after masking placement.
func Check(ctx context.Context, m Machine, scs []*scenarios.Scenario) (*Report, error) {
	var j job.Job
	for _, sc := range scs {
		if p := PlanScenario(sc, m.Arch); p.Skip == "" {
			j.Scenarios = append(j.Scenarios, p.Job)
		}
	}
	results, err := m.Boot(ctx, j)
	stopped := ""
	if err != nil {
		// A guest that stopped inside lib/test_bpf (a kernel test that
		// never ends, an oops) still reported the scenarios before it.
		if !slices.ContainsFunc(results, func(r job.Result) bool { return r.Kind == job.KernelTestsStart }) ||
			slices.ContainsFunc(results, func(r job.Result) bool { return r.Kind == job.KernelTests }) {
			return nil, err
		}
		stopped = "the guest stopped while lib/test_bpf's tests ran: " + err.Error()
		results = append(results, job.Result{Kind: job.KernelTests, Err: stopped})
	}
	rep := Evaluate(m.Arch, scs, results)
	if stopped != "" {
		rep.Problems = append(rep.Problems, stopped)
	}
	if m.Module == "" {
		rep.Warnings = append(rep.Warnings, "no lib/test_bpf module beside the kernel image: its translations are skipped")
	}
	rep.Problems = append(rep.Problems, cmdlineProblems(m.Cmdline, rep)...)
	return rep, nil
}

// cmdlineProblems checks that the parameters a boot was given took: the
// kernel falls back to its own choice of Spectre v2 mitigation, with only
// a log message, when it cannot apply the one asked for, and the boot
// would then be compared under a build other than its name says.
func cmdlineProblems(cmdline []string, rep *Report) []string {
	var out []string
	for _, p := range cmdline {
		if !slices.Contains(strings.Fields(rep.Info["/proc/cmdline"]), p) {
			out = append(out, fmt.Sprintf("the guest's command line lacks %s", p))
		}
		took := true
		switch p {
		case "spectre_v2=off":
			took = rep.Config&(prog.Thunk|prog.Lfence) == 0
		case "spectre_v2=retpoline,lfence":
			took = rep.Config&prog.Lfence != 0
		}
		if !took {
			out = append(out, fmt.Sprintf("%s did not take: the guest reports %q (build %s)", p, rep.Info[spectreV2Path], rep.Config.Options()))
		}
	}
	return out
}

// Evaluate compares what a boot on arch reported (results, live or
// recorded) with tailsim, scenario by scenario. A scenario the boot did
// not run, or ran in another version (its hash), fails.
func Evaluate(arch string, scs []*scenarios.Scenario, results []job.Result) *Report {
	rep := &Report{Arch: arch, Results: results}
	var plans []*Plan
	for _, sc := range scs {
		plans = append(plans, PlanScenario(sc, arch))
	}
	byFile := map[string][]job.Result{}
	var hello, kernelTests *job.Result
	for i, r := range results {
		switch r.Kind {
		case job.Hello:
			hello = &results[i]
		case job.KernelTests:
			kernelTests = &results[i]
		case job.Garbled:
			rep.Problems = append(rep.Problems, fmt.Sprintf("an agent line the console garbled (a result may be lost): %.120q", r.Err))
		}
		byFile[r.File] = append(byFile[r.File], r)
	}
	if hello == nil {
		rep.Problems = append(rep.Problems, "the guest did not report its kernel (no hello line)")
		hello = &job.Result{}
	}
	rep.Problems = append(rep.Problems, jitProblems(hello.Info)...)
	if arch == "x86_64" {
		if _, ok := hello.Info[spectreV2Path]; !ok {
			rep.Problems = append(rep.Problems, "the guest did not report its Spectre v2 mitigation, which decides the tail call's indirect jump")
		}
		// 6.1.192's emit_indirect_jump() sends the jump through an ITS
		// thunk first when the CPU needs it, which tailsim does not model.
		if strings.HasPrefix(hello.Info[itsPath], "Mitigation") {
			rep.Problems = append(rep.Problems, fmt.Sprintf("the guest mitigates indirect target selection (%q), whose thunk tailsim does not model", hello.Info[itsPath]))
		}
	}
	rep.Uname, rep.Info = hello.Uname, hello.Info
	if !strings.Contains(rep.Uname, " 6.1.") {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the guest runs %q, and tailsim compares with its v6.1", rep.Uname))
	}
	rep.Config = BootConfig(arch, hello.Info)
	ksyms := map[uint64]string{}
	for k, v := range hello.Info {
		if name, ok := strings.CutPrefix(k, "ksym "); ok {
			if a, err := strconv.ParseUint(v, 16, 64); err == nil && job.KernelSyms[name] != "" {
				ksyms[a] = job.KernelSyms[name]
			}
		}
	}
	for _, p := range plans {
		o := &Outcome{File: p.Scenario.File, Skip: p.Skip}
		rep.Outcomes = append(rep.Outcomes, o)
		if n, ok := testBPFIndex(p.Scenario); ok && kernelTests != nil {
			compareKernelTest(o, p, arch, rep.Config, kernelTests, n)
			continue
		}
		if h := hello.Info[hardenPath]; o.Skip == "" && p.Job.Unprivileged && h != "0" {
			// bpf_jit_blinding_enabled(): 1 blinds a load that is not
			// bpf_capable(), which a user's is.
			o.Skip = fmt.Sprintf("the guest blinds a user's constants (bpf_jit_harden %q), which tailsim does not model", h)
		}
		if o.Skip != "" {
			continue
		}
		compare(o, p, arch, rep.Config, byFile[p.Scenario.File], ksyms)
	}
	return rep
}

const (
	hardenPath    = "/proc/sys/net/core/bpf_jit_harden"
	spectreV2Path = "/sys/devices/system/cpu/vulnerabilities/spectre_v2"
	itsPath       = "/sys/devices/system/cpu/vulnerabilities/indirect_target_selection"
)

// jitProblems are the guest's settings under which its images are not the
// plain JIT's: the interpreter (bpf_jit_enable 0, or a kernel that does
// not say), or constant blinding for root (bpf_jit_harden 2).
func jitProblems(info map[string]string) []string {
	var out []string
	const enable, harden = "/proc/sys/net/core/bpf_jit_enable", hardenPath
	if v, ok := info[enable]; !ok || v == "0" {
		out = append(out, fmt.Sprintf("the guest's JIT is not on (%s %q)", enable, v))
	}
	if v := info[harden]; v != "0" && v != "1" {
		out = append(out, fmt.Sprintf("the guest blinds root's constants (%s %q): its images are not the JIT's plain ones", harden, v))
	}
	return out
}

// testBPFTitle is how a library scenario names the lib/test_bpf test it
// translates: "Tail call 2 (lib/test_bpf.c, test 1)".
var testBPFTitle = regexp.MustCompile(`^(.*) \(lib/test_bpf\.c, test (\d+)\)$`)

// testBPFIndex is the test_tail_calls index a scenario translates: a
// verifier off scenario (lib/test_bpf builds its programs without the
// verifier) titled as one of the tests.
func testBPFIndex(sc *scenarios.Scenario) (int, bool) {
	m := testBPFTitle.FindStringSubmatch(sc.Title)
	if m == nil || !sc.Fixup.NoVerifier {
		return 0, false
	}
	n, err := strconv.Atoi(m[2])
	return n, err == nil
}

// tailCallTest is one row of 6.1's lib/test_bpf.c tail_call_tests[]:
// what test_tail_calls() expects after MAX_TESTRUNS (1000) runs, in R0 or,
// with FLAG_RESULT_IN_STATE, in the state the program's ctx points at.
type tailCallTest struct {
	name    string
	result  uint32
	inState bool
}

// tailCallTests61 are the rows (lib/test_bpf.c, Debian's 6.1.192): the
// kernel's PASS says its run gave result, and the translation must give
// the same after the same number of runs.
var tailCallTests61 = []tailCallTest{
	{"Tail call leaf", 1, false},
	{"Tail call 2", 3, false},
	{"Tail call 3", 6, false},
	{"Tail call 4", 10, false},
	{"Tail call load/store leaf", 0, false},
	{"Tail call load/store", 0, false},
	{"Tail call error path, max count reached", (33 + 1) * 1000, true},
	{"Tail call count preserved across function calls", (33 + 1) * 1000, true},
	{"Tail call error path, NULL target", 1000, true},
	{"Tail call error path, index out of range", 1000, true},
}

// testBPFRuns is MAX_TESTRUNS: how many times test_tail_calls() runs each
// test, the state carried from run to run.
const testBPFRuns = 1000

// compareKernelTest holds a translation of lib/test_bpf's test n against
// the kernel's own run of it: the module's test passed with the JIT, so
// the kernel's run gave the table's result, and tailsim's v6.1 run of the
// scenario (one run step of testBPFRuns) must give the same. The test's
// programs are built without the verifier, so no job can load them and
// their code is not compared.
func compareKernelTest(o *Outcome, p *Plan, arch string, cfg prog.Config, kt *job.Result, n int) {
	o.Skip = ""
	o.KernelTest = fmt.Sprintf("lib/test_bpf's %s #%d", job.TestBPFSuite, n)
	bad := func(format string, args ...any) { o.Mismatches = append(o.Mismatches, fmt.Sprintf(format, args...)) }
	if n >= len(tailCallTests61) {
		bad("6.1's %s has no test #%d", job.TestBPFSuite, n)
		return
	}
	want := tailCallTests61[n]
	if name := testBPFTitle.FindStringSubmatch(p.Scenario.Title)[1]; name != want.name {
		bad("6.1's test #%d is %q, the scenario's %q", n, want.name, name)
	}
	var t *job.KernelTest
	for i := range kt.Tests {
		if kt.Tests[i].Index == n {
			t = &kt.Tests[i]
		}
	}
	switch {
	case t == nil:
		bad("the kernel's %s reported no test #%d (%s; its log: %q)", job.TestBPFSuite, n, kt.Err, kt.Log)
	case t.Name != want.name:
		bad("the kernel's test #%d is %q, 6.1's table's %q", n, t.Name, want.name)
	case !t.Jited:
		bad("the kernel ran test #%d without the JIT", n)
	case !t.Pass:
		bad("the kernel's test #%d failed: %s", n, t.Detail)
	}
	// tailsim's own value after the same runs.
	var runs []scenarios.Step
	for _, st := range p.Scenario.Steps {
		if st.Kind == scenarios.StepRun {
			runs = append(runs, st)
		}
	}
	if len(runs) != 1 || runs[0].Repeat != testBPFRuns {
		bad("a translation of test #%d has one run step of repeat=%d, as test_tail_calls() runs it", n, testBPFRuns)
		return
	}
	b := backend(arch, cfg)
	last := func(st scenarios.Step, iter int) bool { return iter == testBPFRuns }
	rep := scenarios.Run(p.Scenario, b, prog.Linux61, scenarios.Options{Config: cfg, Keep: last})
	if rep.Status != scenarios.Pass {
		bad("tailsim's own run does not pass (%s): %v", rep.Status, rep.Failures)
	}
	if len(rep.Runs) != 1 {
		bad("tailsim kept %d runs, want the last", len(rep.Runs))
		return
	}
	res := rep.Runs[0].Result
	got, where := uint32(res.R0), "r0"
	if want.inState {
		got, where = 0, "the state (ctx+0)"
		if len(res.Ctx) >= 4 {
			got = binary.LittleEndian.Uint32(res.Ctx)
		}
	}
	if got != want.result {
		bad("tailsim's %s after %d runs is %d, the kernel's table's %d", where, testBPFRuns, got, want.result)
	}
}

// backend is tailsim's emulator for arch under the boot's build.
func backend(arch string, cfg prog.Config) *emu.Backend {
	if arch == "arm64" {
		return emu.NewArm64(cfg)
	}
	return emu.NewX86(cfg)
}

// BootConfig is the build the guest kernel runs as, from what it reported:
// Debian 12 builds x86-64 with retpolines and SLS and picks the Spectre v2
// and Retbleed mitigations at boot; arm64 with pointer authentication.
func BootConfig(arch string, info map[string]string) prog.Config {
	if arch == "arm64" {
		return prog.PAC
	}
	c := prog.Retpoline | prog.SLS
	// The mitigation is the first field ("Mitigation: Retpolines; IBPB:
	// …; BHI: Retpoline"): spectre_v2_strings[] in arch/x86/kernel/cpu/
	// bugs.c.
	v2, _, _ := strings.Cut(info[spectreV2Path], ";")
	switch {
	case strings.Contains(v2, "LFENCE"):
		c |= prog.Lfence
	case strings.Contains(v2, "Retpolines"):
		c |= prog.Thunk
	}
	if strings.Contains(info["/sys/devices/system/cpu/vulnerabilities/retbleed"], "return thunk") {
		c |= prog.Rethunk
	}
	return c
}

func compare(o *Outcome, p *Plan, arch string, cfg prog.Config, results []job.Result, ksyms map[uint64]string) {
	bad := func(format string, args ...any) { o.Mismatches = append(o.Mismatches, fmt.Sprintf(format, args...)) }
	var loaded *job.Result
	ran := map[[2]int]job.Result{}
	changes := map[int]job.Result{}
	for i, r := range results {
		switch r.Kind {
		case job.Failed:
			bad("the kernel refused the scenario: %s", r.Err)
			return
		case job.Loaded:
			loaded = &results[i]
		case job.Ran:
			ran[[2]int{r.Line, r.Iter}] = r
		case job.Change:
			changes[r.Line] = r
		}
	}
	if loaded == nil {
		bad("the guest reported nothing for it")
		return
	}
	if h := job.Hash(p.Job); loaded.Hash != h {
		bad("the guest ran another version of it (job hash %.12s, now %.12s)", loaded.Hash, h)
		return
	}
	compareImages(o, p, arch, cfg, loaded, ksyms)
	if p.BytesOnly != "" {
		o.BytesOnly = p.BytesOnly
		return
	}

	// The results: tailsim's emulated JIT for 6.1 under the same build.
	b := backend(arch, cfg)
	trep := scenarios.Run(p.Scenario, b, prog.Linux61, scenarios.Options{Config: cfg, Keep: func(scenarios.Step, int) bool { return true }})
	if trep.Status != scenarios.Pass {
		bad("tailsim's own run does not pass (%s): %v", trep.Status, trep.Failures)
	}
	for _, rr := range trep.Runs {
		k, ok := ran[[2]int{rr.Line, rr.Iter}]
		switch {
		case !ok:
			bad("line %d iteration %d: the kernel did not run it", rr.Line, rr.Iter)
			continue
		case k.Err != "":
			bad("line %d iteration %d: BPF_PROG_TEST_RUN: %s", rr.Line, rr.Iter, k.Err)
			continue
		}
		o.Runs++
		res := rr.Result
		if !res.R0Dead && uint32(res.R0) != k.Retval {
			bad("line %d iteration %d: r0 %#x, the kernel's %#x (its 32-bit retval)", rr.Line, rr.Iter, uint32(res.R0), k.Retval)
		}
		if got := hex.EncodeToString(res.Ctx); got != k.Ctx {
			bad("line %d iteration %d: ctx %s, the kernel's cb[] %s", rr.Line, rr.Iter, got, k.Ctx)
		}
		for _, m := range p.Scenario.Maps {
			if !m.Array {
				continue
			}
			if got := hex.EncodeToString(packValues(res.Maps[m.Name], m.MaxEntries, m.ValueSize)); got != k.Maps[m.Name] {
				bad("line %d iteration %d: map %s holds %s, the kernel's %s", rr.Line, rr.Iter, m.Name, got, k.Maps[m.Name])
			}
		}
	}
	for _, st := range p.Scenario.Steps {
		if st.Kind != scenarios.StepUpdate && st.Kind != scenarios.StepDelete {
			continue
		}
		want := "none" // what tailsim gave: the scenario passes, so its expectation
		for _, e := range st.Expect {
			if e.Key == scenarios.KeyError && e.Applies(arch, prog.Linux61.String()) {
				want = e.Errno
			}
		}
		k, ok := changes[st.Line]
		got := k.Errno
		if got == "" {
			got = "none"
		}
		switch {
		case !ok:
			bad("line %d: %s: the kernel did not do it", st.Line, st)
		case got != want:
			bad("line %d: %s: error %s, the kernel's %s", st.Line, st, want, got)
		}
	}
}

// compareImages compares each program's functions as the kernel loaded
// them with tailsim's, both with the scenario's initial slots filled.
func compareImages(o *Outcome, p *Plan, arch string, cfg prog.Config, loaded *job.Result, ksyms map[uint64]string) {
	kernel := &Images{Syms: ksyms}
	for name, fs := range loaded.Images {
		img := &Image{Prog: name}
		for _, f := range fs {
			code, _ := hex.DecodeString(f.Code)
			img.Funcs = append(img.Funcs, Func{Addr: f.Addr, Code: code})
		}
		kernel.Progs = append(kernel.Progs, img)
	}
	sort.Slice(kernel.Progs, func(i, j int) bool { return kernel.Progs[i].Prog < kernel.Progs[j].Prog })
	ours, err := Build(p.Shifted, arch, prog.Linux61, cfg, false)
	if err != nil {
		o.Mismatches = append(o.Mismatches, fmt.Sprintf("tailsim cannot JIT the programs as the kernel loads them: %v", err))
		return
	}
	for _, tp := range ours.Progs {
		if kernel.Prog(tp.Prog) == nil {
			o.Mismatches = append(o.Mismatches, fmt.Sprintf("%s: the kernel reported no image for it", tp.Prog))
		}
	}
	var maps Binding
	for _, kp := range kernel.Progs {
		tp := ours.Prog(kp.Prog)
		if tp == nil || len(tp.Funcs) != len(kp.Funcs) {
			n := 0
			if tp != nil {
				n = len(tp.Funcs)
			}
			o.Mismatches = append(o.Mismatches, fmt.Sprintf("%s: %d functions, tailsim %d", kp.Prog, len(kp.Funcs), n))
			continue
		}
		for fn := range kp.Funcs {
			kt, err1 := Mask(arch, kp.Funcs[fn].Addr, kp.Funcs[fn].Code, kernel.Resolve)
			tt, err2 := Mask(arch, tp.Funcs[fn].Addr, tp.Funcs[fn].Code, ours.Resolve)
			if err1 != nil || err2 != nil {
				o.Mismatches = append(o.Mismatches, fmt.Sprintf("%s: cannot decode: %v %v", FuncSym(kp.Prog, fn, 0), err1, err2))
				continue
			}
			o.Funcs++
			d := Compare(kt, tt, &maps)
			if !d.Equal() {
				o.Bytes = append(o.Bytes, FuncDiff{Name: FuncSym(kp.Prog, fn, 0), Diff: d})
				continue
			}
			for _, t := range d.Kernel {
				if t.Sym != "" {
					if o.Named == nil {
						o.Named = map[string]bool{}
					}
					o.Named[t.Sym] = true
				}
				// x86's tail-call jump to its target, in whichever form
				// the boot's mitigation gives it (emit_indirect_jump():
				// the thunk, jmp rcx, lfence first).
				if t.Sym == "__x86_indirect_thunk_rcx" || strings.HasPrefix(t.Asm, "jmp rcx") {
					o.IndirectJumps++
				}
			}
		}
	}
}
