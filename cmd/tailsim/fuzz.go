package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"tailsim/fuzz"
	"tailsim/prog"
)

func init() {
	register(&command{
		name: "fuzz",
		summary: `generate tail-call cases and check every backend against the reference

Each case draws from a seed max_entries, the index, the key's form
(constant or read at run time), a second map reaching the site, which
slots hold programs (a leaf, the entry itself, a program that tail-calls
back), whether the site is in a subprogram, how many tail calls came
before it (the counter at the site), stack depth, callee-saved registers,
the layout (presets and custom offsets), IBT/BTI/PAC and direct calls on
or off. A case runs on the reference model and on each selected arch and
variant; any divergence, broken machine-level check or fault is a
finding. Findings are deduplicated by signature, minimised, and written
to -out as scenario files that "tailsim run" reproduces; a finding that is
the modelled kernel code's known behaviour names the library scenario
that explains it. Deterministic for a seed and shard.
Exit status: 0 no findings, 1 findings, 2 usage error.`,
		usage: "tailsim fuzz [-arch LIST] [-variant LIST] [-seed N] [-cases N | -duration D] [-workers N] [-shard I/N] [-out DIR]",
		run:   fuzzCmd,
	})
	flagSetups["fuzz"] = func(fs *flag.FlagSet) { newFuzzFlags(fs) }
}

type fuzzFlags struct {
	arch, variant, shard, out *string
	seed                      *uint64
	cases, workers            *int
	duration                  *time.Duration
}

func newFuzzFlags(fs *flag.FlagSet) fuzzFlags {
	return fuzzFlags{
		arch:     fs.String("arch", "x86_64,arm64", "comma-separated emulated arches"),
		variant:  fs.String("variant", "all", "comma-separated variants or all"),
		seed:     fs.Uint64("seed", 1, "first seed"),
		cases:    fs.Int("cases", 1000, "cases to run (ignored with -duration)"),
		duration: fs.Duration("duration", 0, "run for this long instead of -cases"),
		workers:  fs.Int("workers", 1, "parallel workers"),
		shard:    fs.String("shard", "0/1", "I/N: run only seeds with seed % N == I, to split a campaign across machines"),
		out:      fs.String("out", "fuzz-findings", "directory for the reproducers"),
	}
}

func fuzzCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	f := newFuzzFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tailsim fuzz: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	bs, err := selectBackends(*f.arch)
	if err != nil {
		return usage("%v", err)
	}
	for _, b := range bs {
		if b.Name() == "ref" {
			return usage("-arch ref: the reference model is the oracle, fuzz the emulated arches")
		}
	}
	vs, err := selectVariants(*f.variant)
	if err != nil {
		return usage("%v", err)
	}
	var shard, shards uint64
	if n, err := fmt.Sscanf(*f.shard, "%d/%d", &shard, &shards); err != nil || n != 2 || shards == 0 || shard >= shards {
		return usage("bad -shard %q (I/N with 0 <= I < N)", *f.shard)
	}
	if *f.workers < 1 || *f.cases < 1 {
		return usage("-workers and -cases must be at least 1")
	}

	// Seeds of this shard, in order: seed, seed+N, ... shifted by I.
	var next uint64
	var mu sync.Mutex
	deadline := time.Time{}
	if *f.duration > 0 {
		deadline = time.Now().Add(*f.duration)
	}
	take := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if deadline.IsZero() && next >= uint64(*f.cases) || !deadline.IsZero() && time.Now().After(deadline) {
			return 0, false
		}
		s := *f.seed + next*shards + shard
		next++
		return s, true
	}
	var done, failed int
	found := map[string]fuzz.Finding{}
	var wg sync.WaitGroup
	start := time.Now()
	for range *f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s, ok := take()
				if !ok {
					return
				}
				c := fuzz.Generate(s)
				fsd, err := fuzz.Check(c, bs, vs)
				mu.Lock()
				done++
				if err != nil {
					failed++
				}
				for _, fd := range fsd {
					// A new finding never hides behind a known one of the
					// same signature.
					key := fd.Signature + " " + fuzz.Known(fd)
					if old, dup := found[key]; !dup || fd.Case.Seed < old.Case.Seed {
						found[key] = fd
					}
				}
				mu.Unlock()
			}
		}()
	}
	progress := newProgress(stderr)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(progress.every):
				mu.Lock()
				progress.line(done, len(found), time.Since(start))
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	close(stop)
	progress.line(done, len(found), time.Since(start))
	progress.end()

	sigs := make([]string, 0, len(found))
	for s := range found {
		sigs = append(sigs, s)
	}
	sort.Strings(sigs)
	if len(sigs) > 0 {
		if err := os.MkdirAll(*f.out, 0o755); err != nil {
			return usage("%v", err)
		}
	}
	known := 0
	for i, s := range sigs {
		fd := fuzz.Minimize(found[s], bs, vs)
		path := filepath.Join(*f.out, fmt.Sprintf("finding-%02d-seed-%d.txtar", i+1, fd.Case.Seed))
		if err := os.WriteFile(path, []byte(reproducer(fd)), 0o644); err != nil {
			return usage("%v", err)
		}
		fmt.Fprintf(stdout, "finding %d: %s\n", i+1, fd.Signature)
		if k := fuzz.Known(fd); k != "" {
			known++
			fmt.Fprintf(stdout, "  known: the modelled kernel code's behaviour, explained in %s\n", k)
		}
		fmt.Fprintf(stdout, "  reproduce: tailsim run -arch %s -variant %s %s\n", fd.Arch, fd.Variant, path)
	}
	fmt.Fprintf(stdout, "%d cases in %s (%.0f cases/s, shard %d/%d, seeds from %d), %d findings (%d known, %d new)\n",
		done, time.Since(start).Round(time.Millisecond), float64(done)/time.Since(start).Seconds(), shard, shards, *f.seed,
		len(sigs), known, len(sigs)-known)
	if failed > 0 {
		fmt.Fprintf(stderr, "tailsim fuzz: %d generated cases did not parse (a generator bug)\n", failed)
		return exitFail
	}
	if len(sigs) > 0 {
		return exitFail
	}
	return exitOK
}

// reproducer is the case's scenario with a comment saying what diverged.
func reproducer(fd fuzz.Finding) string {
	text := fd.Case.Text()
	title, rest, _ := strings.Cut(text, "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", title, fd.Signature)
	fmt.Fprintf(&b, "Found by tailsim fuzz (seed %d). On %s/%s this case departs from the\nreference model or breaks a check:\n", fd.Case.Seed, fd.Arch, fd.Variant)
	for _, l := range fd.Failures {
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(l.String(), "-- ", "- - "))
	}
	if k := fuzz.Known(fd); k != "" {
		fmt.Fprintf(&b, "This is known behaviour of the modelled kernel code, explained in\n%s.\n", k)
	}
	b.WriteString(rest)
	return b.String()
}

// progress prints a live line on a terminal and a plain line every few
// seconds otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration
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

func (p *progress) line(cases, findings int, elapsed time.Duration) {
	rate := float64(cases) / max(elapsed.Seconds(), 1e-9)
	msg := fmt.Sprintf("fuzz: %d cases, %.0f cases/s, %d findings, %s", cases, rate, findings, elapsed.Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", msg)
	} else {
		fmt.Fprintln(p.w, msg)
	}
}

func (p *progress) end() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

var _ = prog.Variants
