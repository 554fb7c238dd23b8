package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tailsim/fuzz"
	"tailsim/prog"
	"tailsim/scenarios"
)

func init() {
	register(&command{
		name: "fuzz",
		summary: `generate tail-call cases and check every backend against the reference

Each seed draws a shape, everything that makes the machine code: the
key's form (a constant, read from ctx, or computed from ctx by the ALU),
a second map reaching the site, whether the site is in a subprogram, how
many tail calls come before it, stack depth, callee-saved registers, the
layout (presets and custom offsets), IBT/BTI/PAC, direct calls on or
off, privilege (unprivileged: the verifier's bounds check and index
mask before each tail call), and the placement (every struct bpf_prog
4 GiB aligned or not). The shape is loaded once per arch and kernel; then -inputs inputs
run on it, each only data for the loaded code: the index, which slots
hold programs (a leaf, the entry itself, a program that tail-calls back,
decoys beside the index), the counter at the site (a preset, as that
many tail calls would have left it), which map a two-map site takes, and
now and then max_entries (rewriting only the code bytes it changes). An
input runs on the reference model and on each selected arch and kernel;
any divergence, broken machine-level check or fault is a finding. Each
finding is written to -out as soon as it is found (found-*.txtar, the
case as the stream gave it); at the end the distinct findings (by
signature) are minimised and written as finding-*.txtar scenario files
that "tailsim run" reproduces, and the found-* files removed. A finding
that is the modelled kernel code's known behaviour names the library
scenario that explains it. SIGINT or SIGTERM (Ctrl-C) ends a campaign
early the same way: no new case starts, the findings so far are written
and the summary says "interrupted"; a second one quits at once.
Deterministic for a seed and shard.
Exit status: 0 no new findings (the known ones, the modelled kernel
code's documented behaviour, are listed), 1 new findings or generated
cases that do not parse, 2 usage error or a reproducer that could not be
written.`,
		usage: "tailsim fuzz [-arch LIST] [-kernel LIST] [-seed N] [-cases N | -duration D] [-inputs N] [-workers N] [-shard I/N|env] [-out DIR] [-json]\n       tailsim fuzz merge [-out DIR] SHARD_DIR...",
		run:   fuzzCmd,
	})
	flagSetups["fuzz"] = func(fs *flag.FlagSet) { newFuzzFlags(fs) }
}

type fuzzFlags struct {
	arch, kernel, shard, out *string
	seed                     *uint64
	cases, inputs, workers   *int
	duration                 *time.Duration
	json                     *bool
}

func newFuzzFlags(fs *flag.FlagSet) fuzzFlags {
	return fuzzFlags{
		arch:     fs.String("arch", "x86_64,arm64", "comma-separated emulated arches (x86_64, arm64) or all"),
		kernel:   fs.String("kernel", "all", "comma-separated "+kernelUsage+", or all"),
		seed:     fs.Uint64("seed", 1, "first seed"),
		cases:    fs.Int("cases", 1000, "inputs to check, per shard: N shards together check the N×cases inputs of the campaign unsharded (ignored with -duration)"),
		inputs:   fs.Int("inputs", fuzz.DefaultInputs, "inputs per shape (1: a new shape for every input)"),
		duration: fs.Duration("duration", 0, "run for this long instead of -cases"),
		workers:  fs.Int("workers", 1, "parallel workers"),
		shard:    fs.String("shard", "0/1", "I/N: run only the seeds seed+k*N+I, to split a campaign across machines; env: I and N from a batch system (JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID; TAILSIM_SHARDS or SLURM_ARRAY_TASK_COUNT)"),
		out:      fs.String("out", "fuzz-findings", "directory for the reproducers"),
		json:     fs.Bool("json", false, "print the campaign's index (findings, coverage, counts) as JSON, as in DIR/findings.json"),
	}
}

// emulatedNames are the arches a campaign fuzzes: the reference model is
// its oracle.
func emulated() []scenarios.Backend {
	return slices.DeleteFunc(slices.Clone(backends), func(b scenarios.Backend) bool { return b.Name() == (scenarios.Ref{}).Name() })
}

func emulatedNames() []string { return namesOf(emulated()) }

// selectEmulated reads fuzz's -arch: emulated arches, or all of them.
func selectEmulated(list string) ([]prog.Backend, error) {
	if slices.Contains(strings.Split(list, ","), (scenarios.Ref{}).Name()) {
		return nil, errors.New("-arch ref: the reference model is the oracle, fuzz the emulated arches")
	}
	return selectAmong(list, emulated())
}

// maxWorkers bounds -workers: more workers than CPUs only share them, and
// each holds engines of its own (10 000 workers took 6.9 GB in 90 s).
func maxWorkers() int { return 4 * runtime.NumCPU() }

// Bounds that keep a campaign's input numbers (shards × cases) in range.
const (
	maxShards = 1 << 20
	maxCases  = 1 << 40
)

// parseShard reads -shard I/N: two decimal numbers, 0 <= I < N.
func parseShard(s string) (shard, shards uint64, err error) {
	bad := fmt.Errorf("bad -shard %q (I/N with 0 <= I < N, or env)", s)
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, bad
	}
	if shard, err = strconv.ParseUint(i, 10, 64); err != nil {
		return 0, 0, bad
	}
	if shards, err = strconv.ParseUint(n, 10, 64); err != nil || shards == 0 || shard >= shards {
		return 0, 0, bad
	}
	return shard, shards, nil
}

func fuzzCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "merge" {
		return fuzzMergeCmd(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	f := newFuzzFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	bs, err := selectEmulated(*f.arch)
	if err != nil {
		return usageError{err}
	}
	vs, err := selectKernels(*f.kernel)
	if err != nil {
		return usageError{err}
	}
	var shard, shards uint64
	if *f.shard == "env" {
		if shard, shards, err = fuzz.ShardFromEnv(os.Getenv); err != nil {
			return usagef("-shard env: %v", err)
		}
	} else if shard, shards, err = parseShard(*f.shard); err != nil {
		return usageError{err}
	}
	if *f.workers < 1 || *f.cases < 1 || *f.inputs < 1 {
		return usagef("-workers, -cases and -inputs must be at least 1")
	}
	if shards > maxShards || *f.cases > maxCases {
		// The campaign numbers its inputs up to shards × cases.
		return usagef("at most %d shards and %d cases per shard", maxShards, maxCases)
	}
	if limit := maxWorkers(); *f.workers > limit {
		return usagef("-workers %d: at most %d (4 × this machine's %d CPUs); each worker holds engines of its own, ~60 MiB", *f.workers, limit, runtime.NumCPU())
	}
	if *f.duration < 0 {
		return usagef("-duration %v: a campaign's duration cannot be negative", *f.duration)
	}

	c := &fuzz.Campaign{Backends: bs, Kernels: vs, Seed: *f.seed, Shard: shard, Shards: shards,
		Cases: *f.cases, Inputs: *f.inputs, Duration: *f.duration, Workers: *f.workers, Out: *f.out}
	progress := newProgress(stderr)
	c.Progress, c.ProgressEvery = progress.line, progress.every
	stop, release := stopOnSignal(stderr)
	defer release()
	c.Stop = stop
	sum, err := c.Run()
	progress.end()
	if sum == nil {
		return err
	}
	for _, e := range sum.Errors {
		fmt.Fprintf(stderr, "tailsim fuzz: could not set up %s\n", e)
	}
	if *f.json && err == nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c.Index(sum)); err != nil {
			return err
		}
		return fuzzVerdict(stderr, "tailsim fuzz", sum.Slow, sum.Unparsed, sum.New())
	}
	// After a failed write, the findings written before it are still shown.
	for i, r := range sum.Reproducers {
		printFinding(stdout, i+1, r.Signature, r.Known, r.Arch, r.Kernel, r.Path)
	}
	if err != nil {
		return err
	}
	wanted := fuzz.Wanted(bs, vs)
	missing := sum.Coverage.Missing(wanted)
	fmt.Fprintf(stdout, "coverage: %d of %d cells reached (tail calls by path, outcome@counter before the call):\n", len(wanted)-len(missing), len(wanted))
	if err := sum.Coverage.WriteText(stdout, wanted); err != nil {
		return err
	}
	for _, c := range missing {
		fmt.Fprintf(stdout, "  never reached: %s/%s %s %s with the counter at %s\n", c.Arch, c.Kernel, c.Path, c.Outcome, c.Count)
	}
	known := sum.Known()
	interrupted := ""
	if sum.Interrupted {
		interrupted = ", interrupted"
	}
	fmt.Fprintf(stdout, "%d cases on %d shapes in %s (%.0f cases/s, shard %d/%d, seeds from %d%s), %d findings (%d known, %d new)%s\n",
		sum.Cases, sum.Shapes, sum.Elapsed.Round(time.Millisecond), float64(sum.Cases)/sum.Elapsed.Seconds(), shard, shards, *f.seed, interrupted,
		len(sum.Reproducers), known, len(sum.Reproducers)-known, peakMemory())
	return fuzzVerdict(stderr, "tailsim fuzz", sum.Slow, sum.Unparsed, sum.New())
}

// stopOnSignal closes the returned channel at the first SIGINT or
// SIGTERM, so a campaign ends cleanly: no new case starts, the findings
// so far are minimised and written, the summary printed, and the exit
// status is what they deserve. A second signal has its default effect
// (quit now). release stops listening.
func stopOnSignal(stderr io.Writer) (<-chan struct{}, func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			signal.Stop(sig)
			fmt.Fprintf(stderr, "\ntailsim fuzz: %v: finishing the cases in flight and writing the findings (again to quit now)\n", s)
			close(stop)
		case <-done:
		}
	}()
	return stop, func() {
		signal.Stop(sig)
		close(done)
	}
}

// peakMemory is the process's peak resident memory (Linux's VmHWM), for
// the summary: a long campaign's memory should stay flat.
func peakMemory() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		var kb int
		if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
			return fmt.Sprintf(", peak resident memory %d MiB", kb/1024)
		}
	}
	return ""
}

// printFinding lists one finding, as fuzz and fuzz merge both do.
func printFinding(w io.Writer, n int, signature, known, arch, variant, path string) {
	fmt.Fprintf(w, "finding %d: %s\n", n, signature)
	if known != "" {
		fmt.Fprintf(w, "  known: the modelled kernel code's behaviour, explained in %s\n", known)
	}
	fmt.Fprintf(w, "  reproduce: tailsim run -arch %s -kernel %s %s\n", arch, variant, path)
}

// fuzzVerdict ends fuzz and fuzz merge alike: slow cases are a warning
// (unchecked, not findings); unparsed cases (a generator bug) and new
// findings fail.
func fuzzVerdict(stderr io.Writer, cmd string, slow, unparsed, newFindings int) error {
	if slow > 0 {
		fmt.Fprintf(stderr, "%s: %d cases were not checked: the machine was too slow to finish a run before its budget (not findings)\n", cmd, slow)
	}
	if unparsed > 0 {
		fmt.Fprintf(stderr, "%s: %d generated cases did not parse or could not be set up (a generator or harness bug)\n", cmd, unparsed)
		return errChecksFailed
	}
	if newFindings > 0 {
		return errChecksFailed
	}
	return nil
}

// progress prints a live line on a terminal and a plain line every few
// seconds otherwise.
type progress struct {
	w       io.Writer
	tty     bool
	every   time.Duration
	printed bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, every: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.every = true, 250*time.Millisecond
		}
	}
	return p
}

func (p *progress) line(pr fuzz.Progress) {
	p.printed = true
	rate := float64(pr.Cases) / max(pr.Elapsed.Seconds(), 1e-9)
	msg := fmt.Sprintf("fuzz: %d cases on %d shapes, %.0f cases/s, %d findings, coverage %d/%d cells, %s", pr.Cases, pr.Shapes, rate, pr.Findings, pr.Cells, pr.Wanted, pr.Elapsed.Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", msg)
	} else {
		fmt.Fprintln(p.w, msg)
	}
}

// end ends a live line.
func (p *progress) end() {
	if p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}

// fuzzMergeCmd merges findings directories: "tailsim fuzz merge [-out
// DIR] DIR...".
func fuzzMergeCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fuzz merge", flag.ContinueOnError)
	out := fs.String("out", "fuzz-findings-merged", "directory for the merged reproducers")
	dirs, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return usagef("merge: name the findings directories to merge")
	}
	x, err := fuzz.Merge(*out, dirs...)
	if err != nil {
		return err
	}
	for i, e := range x.Findings {
		printFinding(stdout, i+1, e.Signature, e.Known, e.Arch, e.Kernel, filepath.Join(*out, e.File))
	}
	fmt.Fprintf(stdout, "%d cases on %d shapes in %d shards, %d findings (%d known, %d new)\n", x.Cases, x.Shapes, len(dirs), len(x.Findings), len(x.Findings)-x.New(), x.New())
	return fuzzVerdict(stderr, "tailsim fuzz merge", x.Slow, x.Unparsed, x.New())
}
