package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"tailsim/compare"
	"tailsim/prog"
	htmlreport "tailsim/report"
	"tailsim/scenarios"
)

func init() {
	register(&command{
		name: "compare",
		summary: `set v6.18 beside the patched series (or two kernels, two arches, or two builds) for a scenario

For each tail-call site: the machine code on both sides with addresses
relative to its function, so that only real differences show, and what
the call cost on each side as measured by stepping through it
(instructions, loads from the array and programs and from the counter and
stack, dependent loads, stores). Then, for every run of the scenario,
whether both sides gave the same result, counter, path, fall-throughs and
ctx. -kernel A,B sets two kernels side by side (v6.1,v6.18: what Debian
12 runs beside v6.18); with -arch A,B the two arches are compared on one
-kernel; with -config A,B two kernel builds on the arch and one -kernel.
-html FILE
also writes both sides' runs as one page to step through.
Exit status: 0 every run the same on both sides, 1 a run differs, 2 usage
or input error.`,
		usage: "tailsim compare [-arch A[,B]] [-kernel K[,L]] [-config C[,D]] [-layout L] [-html FILE] SCENARIO",
		run:   compareCmd,
	})
	flagSetups["compare"] = func(fs *flag.FlagSet) { newCompareFlags(fs) }
}

type compareFlags struct {
	arch, kernel, config, layout, html *string
}

func newCompareFlags(fs *flag.FlagSet) compareFlags {
	return compareFlags{
		arch:   fs.String("arch", "x86_64", "the arch whose two kernels (-kernel) or two builds (-config) to compare, or A,B to compare two arches"),
		kernel: fs.String("kernel", prog.Linux618.String()+","+prog.Linux618Series.String(), "the two kernels to compare, or with two arches or two configs the one they are compared on (default there v6.18+series): "+kernelUsage),
		config: fs.String("config", "default", configUsage+"; or C,D to compare two builds"),
		layout: fs.String("layout", "", "structure layout preset (v6.18, v6.18-nosec, pre-v6.18), overriding the scenario's"),
		html:   fs.String("html", "", "also write both sides' runs as a self-contained HTML page to `FILE`"),
	}
}

func compareCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	f := newCompareFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one SCENARIO\nusage: %s", commands["compare"].usage)
	}
	bs, err := selectBackends(*f.arch)
	if err != nil || len(bs) > 2 || strings.Contains(*f.arch, "ref") {
		return usagef("-arch %q: one or two emulated arches (x86_64, arm64)", *f.arch)
	}
	cfgs, err := selectConfigs(*f.config)
	if err != nil {
		return usageError{err}
	}
	if *f.config == "all" || len(cfgs) > 2 || len(cfgs) == 2 && len(bs) == 2 {
		return usagef("-config %q: one configuration for both sides, or two to compare on one arch", *f.config)
	}
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "kernel" })
	ks, err := selectKernels(*f.kernel)
	if err != nil {
		return usageError{err}
	}
	var left, right compare.Side
	if len(bs) == 2 || len(cfgs) == 2 {
		if !set {
			ks = []prog.Kernel{prog.Linux618Series}
		}
		if len(ks) != 1 {
			return usagef("-kernel %q: with two arches or two configurations, one kernel to compare them on", *f.kernel)
		}
		v := ks[0]
		two := len(cfgs) == 2
		left = compare.Side{Backend: bs[0], Kernel: v, Config: cfgs[0], NameConfig: two}
		right = compare.Side{Backend: bs[len(bs)-1], Kernel: v, Config: cfgs[len(cfgs)-1], NameConfig: two}
	} else {
		if len(ks) != 2 || ks[0] == ks[1] {
			return usagef("-kernel %q: two kernels to set side by side (A,B)", *f.kernel)
		}
		left = compare.Side{Backend: bs[0], Kernel: ks[0], Config: cfgs[0]}
		right = compare.Side{Backend: bs[0], Kernel: ks[1], Config: cfgs[0]}
	}
	var o compare.Options
	if *f.layout != "" {
		l, err := prog.LayoutByName(*f.layout)
		if err != nil {
			return usageError{err}
		}
		o.Layout = &l
	}
	scs, err := scenarios.LoadPaths(pos)
	if err != nil {
		return inputError{err}
	}
	if len(scs) != 1 {
		return usagef("%s holds %d scenarios; name one scenario file", pos[0], len(scs))
	}
	for _, s := range []compare.Side{left, right} {
		if len(scs[0].Combos([]scenarios.Backend{s.Backend}, []prog.Kernel{s.Kernel})) == 0 || !scs[0].RunsUnder(s.Config) {
			return usagef("%s does not run on %s", scs[0].File, s)
		}
	}
	c, err := compare.Compare(scs[0], left, right, o)
	if err != nil {
		return err
	}
	if err := c.WriteText(stdout); err != nil {
		return err
	}
	if *f.html != "" {
		reps := compare.Stepped(scs[0], left, right, o, 100_000)
		if err := writeReport(*f.html, scs[0], htmlreport.Options{Layout: o.Layout}, reps...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %s and %s to step through (open it in a browser)\n", *f.html, left, right)
	}
	if !c.Equivalent() {
		return errChecksFailed
	}
	return nil
}
