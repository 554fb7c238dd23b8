package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
	"tailsim/trace"
)

// backends are the arches tailsim can run, in display order.
var backends = []scenarios.Backend{scenarios.Ref{}, emu.NewX86(0), emu.NewArm64(0)}

func init() {
	register(&command{
		name: "run",
		summary: `run scenario files and check them on every selected arch and kernel

With no PATH the embedded library runs. PATHs are .txtar files or
directories searched for them. Each scenario runs on each selected
(arch, kernel); emulated results are compared with the reference model.
-config runs them for other kernel builds (docs/kernel.md §13): "all"
runs every preset; a scenario's own config line adds to each.
Exit status: 0 all pass, 1 a check failed, 2 usage or input error.`,
		usage: "tailsim run [-arch LIST] [-kernel LIST] [-config LIST] [-layout NAME] [-json] [-notes] [-v] [PATH ...]",
		run:   runCmd,
	})
	flagSetups["run"] = func(fs *flag.FlagSet) { newRunFlags(fs) }
}

type runFlags struct {
	arch, kernel, config, layout *string
	json, verbose, notes         *bool
}

func backendNames() []string { return namesOf(backends) }

func namesOf(bs []scenarios.Backend) []string {
	var names []string
	for _, b := range bs {
		names = append(names, b.Name())
	}
	return names
}

func layoutNames() string {
	var names []string
	for _, l := range prog.Presets {
		names = append(names, l.Name)
	}
	return strings.Join(names, ", ")
}

func newRunFlags(fs *flag.FlagSet) runFlags {
	return runFlags{
		arch:    fs.String("arch", "all", "comma-separated arches ("+strings.Join(backendNames(), ", ")+") or all"),
		kernel:  fs.String("kernel", "all", "comma-separated "+kernelUsage+", or all"),
		config:  fs.String("config", "default", configUsage+", comma-separated, or all"),
		layout:  fs.String("layout", "", "structure layout preset (v6.18, v6.18-nosec, pre-v6.18), overriding the scenarios'"),
		json:    fs.Bool("json", false, "print one JSON object per arch/kernel run of each scenario, with every failure and note"),
		verbose: fs.Bool("v", false, "list every scenario, show notes, and print the trace of every failing run"),
		notes:   fs.Bool("notes", false, "show the notes (facts that are not failures, such as what the kernel interpreter would give), once per scenario"),
	}
}

func selectBackends(list string) ([]scenarios.Backend, error) { return selectAmong(list, backends) }

// selectAmong reads a comma-separated -arch list, or all, naming the
// backends of among.
func selectAmong(list string, among []scenarios.Backend) ([]scenarios.Backend, error) {
	if list == "all" {
		return among, nil
	}
	var out []scenarios.Backend
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(among, func(b scenarios.Backend) bool { return b.Name() == name })
		if i < 0 {
			if slices.Contains(scenarios.KnownArches, name) {
				return nil, fmt.Errorf("arch %q is not available in this build yet", name)
			}
			return nil, fmt.Errorf("unknown arch %q (%s, or all)", name, strings.Join(namesOf(among), ", "))
		}
		out = append(out, among[i])
	}
	return out, nil
}

func selectKernels(list string) ([]prog.Kernel, error) {
	if list == "all" {
		return prog.Kernels, nil
	}
	var out []prog.Kernel
	for _, name := range strings.Split(list, ",") {
		v, err := prog.ParseKernel(name)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// configUsage describes a configuration as the flags read it.
var configUsage = "kernel build: a preset (" + strings.Join(prog.ConfigNames(), ", ") + ") or options joined with + (ibt+sls)"

// selectConfigs reads a -config list: configurations separated by commas,
// each a preset or options joined with "+", or all (every preset).
func selectConfigs(list string) ([]prog.Config, error) {
	if list == "all" {
		var out []prog.Config
		for _, p := range prog.Configs {
			out = append(out, p.Config)
		}
		return out, nil
	}
	var out []prog.Config
	for _, one := range strings.Split(list, ",") {
		c, err := selectConfig(one)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// selectConfig reads one configuration: a preset, or options joined
// with "+".
func selectConfig(s string) (prog.Config, error) {
	if s == "" || s == "all" {
		return 0, fmt.Errorf("-config %q: name one configuration (%s, or options joined with +)", s, strings.Join(prog.ConfigNames(), ", "))
	}
	return prog.ParseConfig(s)
}

type jsonResult struct {
	Scenario string   `json:"scenario"`
	Title    string   `json:"title"`
	Arch     string   `json:"arch"`
	Kernel   string   `json:"kernel"`
	Config   string   `json:"config"`
	Status   string   `json:"status"`
	Failures []string `json:"failures"`
	Notes    []string `json:"notes,omitempty"`
	Trace    []string `json:"trace,omitempty"`
	// Costs are each tail call's, measured on an emulated arch.
	Costs      []scenarios.RunCost `json:"costs,omitempty"`
	DurationUS int64               `json:"duration_us"`
}

func runCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := newRunFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	bs, err := selectBackends(*f.arch)
	if err != nil {
		return usageError{err}
	}
	vs, err := selectKernels(*f.kernel)
	if err != nil {
		return usageError{err}
	}
	cfgs, err := selectConfigs(*f.config)
	if err != nil {
		return usageError{err}
	}
	var opts scenarios.Options
	if *f.layout == "custom" {
		return usagef("-layout takes a preset (%s); a custom layout goes in a scenario's config: layout custom max_entries=N ptrs=N bpf_func=N", layoutNames())
	}
	if *f.layout != "" {
		l, err := prog.LayoutByName(*f.layout)
		if err != nil {
			return usageError{err}
		}
		opts.Layout = &l
	}
	opts.Trace = *f.verbose
	// The JSON report carries each tail call's cost, which a measuring
	// run gives (the emulated arches step through every tail call).
	opts.Cost = *f.json

	scs, err := loadScenarios(pos)
	if err != nil {
		return err
	}

	start := time.Now()
	reports := scenarios.RunAll(scs, bs, vs, cfgs, opts)
	elapsed := time.Since(start)

	counts := map[scenarios.Status]int{}
	for _, r := range reports {
		counts[r.Status]++
	}
	if *f.json {
		enc := json.NewEncoder(stdout)
		for _, r := range reports {
			failures := []string{}
			for _, f := range r.Failures {
				failures = append(failures, f.String())
			}
			var lines []string
			if r.Traced != nil {
				lines = trace.Lines(r.Traced, trace.Options{})
			}
			enc.Encode(jsonResult{Scenario: r.Scenario.File, Title: r.Scenario.Title, Arch: r.Arch, Kernel: r.Kernel.String(), Config: r.Config.String(),
				Status: r.Status.String(), Failures: failures, Notes: r.Notes, Trace: lines, Costs: r.Costs, DurationUS: r.Duration.Microseconds()})
		}
	} else {
		showConfig := len(cfgs) > 1 || cfgs[0] != 0
		notes := printText(stdout, reports, textOptions{verbose: *f.verbose, notes: *f.notes, configs: showConfig})
		hidden := ""
		if notes > 0 && !*f.notes && !*f.verbose {
			hidden = fmt.Sprintf(" (%s: -notes shows them)", plural(notes, "note"))
		}
		runs := "arch/kernel"
		if showConfig {
			runs = "arch/kernel/config"
		}
		fmt.Fprintf(stdout, "%d passed, %d failed, %d errors: %d scenarios on %d %s runs in %s%s\n",
			counts[scenarios.Pass], counts[scenarios.Fail], counts[scenarios.Errored], len(scs), len(reports), runs, fmtDuration(elapsed), hidden)
	}
	switch {
	case len(reports) == 0:
		return usagef("no scenario matches the selected arches, kernels and configurations")
	case counts[scenarios.Errored] > 0:
		return reported{errScenariosErrored}
	case counts[scenarios.Fail] > 0:
		return errChecksFailed
	}
	return nil
}

// errScenariosErrored: some scenario could not run on some arch or
// variant; the report says which and why.
var errScenariosErrored = errors.New("scenarios could not run")

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}

// kernelUsage names the kernels as the flags read them.
var kernelUsage = "kernels (" + strings.Join(prog.KernelNames(), ", ") + ")"

// loadScenarios loads the named files and directories, or with none the
// embedded library.
func loadScenarios(pos []string) ([]*scenarios.Scenario, error) {
	load := scenarios.LoadPaths
	if len(pos) == 0 {
		load = func([]string) ([]*scenarios.Scenario, error) { return scenarios.LoadLibrary() }
	}
	scs, err := load(pos)
	if err != nil {
		return nil, inputError{err}
	}
	return scs, nil
}
