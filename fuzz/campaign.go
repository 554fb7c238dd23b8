package fuzz

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"tailsim/prog"
	"tailsim/scenarios"
)

// Campaign checks the streams of a range of seeds on every backend and
// variant — each seed a shape loaded once, then Inputs inputs on it
// (StreamCase) — and writes one minimised reproducer per distinct finding.
// For a seed and shard it finds the same findings however many workers
// run it.
type Campaign struct {
	Backends []prog.Backend
	Kernels  []prog.Kernel
	// Seed is the first seed. A shard I of N runs seeds Seed+I, Seed+I+N,
	// ...; the zero Shards is 1 (every seed).
	Seed          uint64
	Shard, Shards uint64
	// Inputs is how many inputs run on each seed's shape; 0 means
	// DefaultInputs, 1 a new shape for every case.
	Inputs int
	// Cases is how many cases (inputs) each shard runs, unless Duration
	// is set: then the campaign runs whole streams for that long. The
	// shards of a campaign together run the Shards × Cases inputs of the
	// campaign unsharded: seed by seed, a whole stream each, but the last
	// seed's, which is cut to the total (so a shard may run a few inputs
	// more or less than Cases).
	Cases    int
	Duration time.Duration
	Workers  int    // parallel workers; at least 1
	Out      string // the directory for the reproducers, created if need be
	// Progress, when set, is called every ProgressEvery (5s when zero)
	// while cases run, and once when they are done.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Stop, when closed, ends the campaign early: no new seed starts,
	// the streams in flight finish, and the findings so far are
	// minimised and written as at a normal end (Summary.Interrupted).
	Stop <-chan struct{}
}

// Progress is how far a running campaign is.
type Progress struct {
	Cases    int // inputs checked
	Shapes   int // seeds whose shape was loaded
	Findings int // distinct so far
	Elapsed  time.Duration
	// Cells of the coverage matrix reached, of those wanted.
	Cells, Wanted int
}

// Summary is what a campaign found.
type Summary struct {
	Cases  int // inputs checked
	Shapes int // seeds, each a shape loaded once
	// Unparsed counts generated cases that did not parse or could not be
	// set up on the loaded machines: a generator or harness bug. Errors
	// names the first few, with their seed and input.
	Unparsed int
	Errors   []string
	// Coverage counts the tail calls of every checked run by cell.
	Coverage Coverage
	// Slow counts cases an emulator could not finish in wall time before
	// their budget: the machine was too loaded, and they are unchecked.
	Slow    int
	Elapsed time.Duration
	// Interrupted: Stop ended the campaign before its cases or duration.
	Interrupted bool
	// Reproducers are the distinct findings, by signature.
	Reproducers []Reproducer
}

// Known counts the findings that are the modelled kernel code's known
// behaviour.
func (s *Summary) Known() int {
	n := 0
	for _, r := range s.Reproducers {
		if r.Known != "" {
			n++
		}
	}
	return n
}

// New counts the findings no library scenario explains: what a campaign
// in CI fails on.
func (s *Summary) New() int { return len(s.Reproducers) - s.Known() }

// Reproducer is a minimised finding and the scenario file written for it.
type Reproducer struct {
	Finding
	Known string // the library scenario that explains it; "" for a new finding
	Path  string
	// Stale is set when the reproducer, loaded fresh, does not give the
	// finding the stream gave: then the harness's data changes on loaded
	// machines depart from a fresh load, a tailsim bug.
	Stale bool
}

// Run checks that Out is a writable directory before any case runs, runs
// the cases, then minimises each distinct finding and writes its
// reproducer.
func (c *Campaign) Run() (*Summary, error) {
	shards := max(c.Shards, 1)
	if c.Shard >= shards {
		return nil, fmt.Errorf("shard %d of %d", c.Shard, shards)
	}
	if err := writableDir(c.Out); err != nil {
		return nil, fmt.Errorf("reproducer directory: %w", err)
	}
	start := time.Now()
	s := &search{c: c, shards: shards, found: map[string]Finding{}, start: start, coverage: Coverage{}}
	if c.Duration > 0 {
		s.deadline = start.Add(c.Duration)
	}
	s.run()
	sum := &Summary{Cases: s.done, Shapes: s.shapes, Unparsed: s.unparsed, Slow: s.slow, Coverage: s.coverage, Interrupted: s.stopped()}
	for _, e := range s.errors {
		sum.Errors = append(sum.Errors, fmt.Sprintf("seed %d input %d: %v", e.seed, e.input, e.err))
	}
	keys := make([]string, 0, len(s.found))
	for k := range s.found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		// Stale is the stream's finding's own: minimising could land on a
		// simpler case that happens to fail the same way.
		stale := !reproduces(s.found[k], c.Backends, c.Kernels)
		fd := Minimize(s.found[k], c.Backends, c.Kernels)
		r := Reproducer{Finding: fd, Known: Known(fd), Stale: stale,
			Path: filepath.Join(c.Out, fmt.Sprintf("finding-%02d-seed-%d-input-%d.txtar", i+1, fd.Case.Seed, fd.Case.Input))}
		if err := os.WriteFile(r.Path, []byte(c.reproducerText(r)), 0o644); err != nil {
			// What was written stays reported: a long campaign's findings
			// are not lost to one failed write.
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("writing finding: %w", err)
		}
		sum.Reproducers = append(sum.Reproducers, r)
	}
	// The minimised reproducers replace the files written as the
	// findings came.
	for _, fd := range s.found {
		os.Remove(filepath.Join(c.Out, foundName(fd)))
	}
	sum.Elapsed = time.Since(start)
	if err := writeIndex(c.Out, c.Index(sum)); err != nil {
		return sum, fmt.Errorf("writing the findings index: %w", err)
	}
	return sum, nil
}

// writableDir creates dir if need be and checks that files can be made in
// it, so that a campaign does not fail at its end, on its first finding.
func writableDir(dir string) error {
	if dir == "" {
		return errors.New("no directory named")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tailsim-probe-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// search is the campaign's cases running on its workers.
type search struct {
	c        *Campaign
	shards   uint64
	start    time.Time
	deadline time.Time // zero: run c.Cases cases

	mu                           sync.Mutex
	next                         uint64 // seeds taken
	done, shapes, unparsed, slow int
	errors                       []setupError
	coverage                     Coverage
	// found holds a finding per signature and explanation, the lowest
	// seed's.
	found map[string]Finding
}

func (s *search) run() {
	var wg sync.WaitGroup
	for range max(s.c.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newStream(s.c.Backends, s.c.Kernels)
			defer st.close()
			for {
				seed, n, ok := s.take()
				if !ok {
					return
				}
				cov := Coverage{}
				var fs []Finding
				var errs []setupError
				slow, ran := 0, 0
				for k := range n {
					if s.stopped() {
						// Drop the rest of the stream: a stream that
						// loops to its budget takes seconds.
						break
					}
					ran++
					f, sl, err := st.check(StreamCase(seed, k), cov)
					fs = append(fs, f...)
					if sl {
						slow++
					}
					if err != nil {
						errs = append(errs, setupError{seed, k, err})
					}
				}
				s.record(ran, fs, cov, slow, errs)
			}
		}()
	}
	if s.c.Progress == nil {
		wg.Wait()
		return
	}
	every := s.c.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.c.Progress(s.progress())
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-stopped
	s.c.Progress(s.progress())
}

// take hands out the shard's seeds in order, Seed+I, Seed+I+N, ..., and
// how many of the seed's inputs to run: Inputs, but fewer for the last
// seed of the whole campaign's Shards × Cases inputs.
func (s *search) take() (seed uint64, inputs int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped() {
		return 0, 0, false
	}
	per := uint64(s.inputs())
	j := s.next*s.shards + s.c.Shard // the seed's place in the whole campaign
	inputs = int(per)
	if s.deadline.IsZero() {
		total := uint64(s.c.Cases) * s.shards
		if j*per >= total {
			return 0, 0, false
		}
		inputs = int(min(per, total-j*per))
	} else if time.Now().After(s.deadline) {
		return 0, 0, false
	}
	s.next++
	return s.c.Seed + j, inputs, true
}

func (s *search) inputs() int {
	if s.c.Inputs > 0 {
		return s.c.Inputs
	}
	return DefaultInputs
}

// maxErrors is how many set-up errors a summary names.
const maxErrors = 10

// setupError is an input the stream could not set up.
type setupError struct {
	seed  uint64
	input int
	err   error
}

// record adds a seed's stream: n inputs, their findings and coverage, the
// inputs too slow to check and the errors of those that could not be set
// up.
func (s *search) record(n int, fs []Finding, cov Coverage, slow int, errs []setupError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done += n
	s.shapes++
	s.slow += slow
	s.unparsed += len(errs)
	if len(errs) > 0 {
		// The first errors by seed and input, whichever worker met them.
		s.errors = append(s.errors, errs...)
		slices.SortFunc(s.errors, func(a, b setupError) int {
			return cmp.Or(cmp.Compare(a.seed, b.seed), cmp.Compare(a.input, b.input))
		})
		s.errors = s.errors[:min(len(s.errors), maxErrors)]
	}
	s.coverage.merge(cov)
	for _, fd := range fs {
		// A new finding never hides behind a known one of the same
		// signature.
		key := fd.Signature + " " + Known(fd)
		if old, dup := s.found[key]; !dup || earlier(fd.Case, old.Case) {
			s.found[key] = fd
			if dup {
				os.Remove(filepath.Join(s.c.Out, foundName(old)))
			}
			s.writeFound(fd)
		}
	}
}

// stopped reports whether the campaign's Stop channel is closed.
func (s *search) stopped() bool {
	select {
	case <-s.c.Stop:
		return true
	default:
		return false
	}
}

// foundName is the file a finding is written to as soon as it is found:
// the case as the stream gave it, not minimised, so that a campaign
// killed before its end leaves its findings behind.
func foundName(fd Finding) string {
	return fmt.Sprintf("found-%s-%s-seed-%d-input-%d.txtar", fd.Arch, fd.Kernel, fd.Case.Seed, fd.Case.Input)
}

// writeFound writes a finding's unminimised reproducer; a failed write
// is reported at the end, when the minimised one is written too. The
// stream's failures carry no lines of the file (its world is the
// stream's), so the comment names the finding, not where it failed:
// tailsim run on the file says that.
func (s *search) writeFound(fd Finding) {
	text := commented(fd, Known(fd), fmt.Sprintf("Found by tailsim fuzz (seed %d, input %d) on %s/%s, as found: not minimised.\nThe campaign replaces this file with a minimised finding-*.txtar when it ends.\n", fd.Case.Seed, fd.Case.Input, fd.Arch, fd.Kernel))
	// Written aside and renamed, so a reader (or a kill) never meets half
	// a file.
	tmp, err := os.CreateTemp(s.c.Out, ".found-")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(text)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.c.Out, foundName(fd)))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// earlier orders cases by seed, then input: the campaign keeps the first
// case of each finding, whichever worker found it.
func earlier(a, b Case) bool {
	return a.Seed < b.Seed || a.Seed == b.Seed && a.Input < b.Input
}

// reproduces reports whether a finding's case, loaded fresh as its
// scenario file is, gives the finding again. A check the machine was too
// slow to finish proves nothing either way: it counts as reproduced.
func reproduces(fd Finding, backends []prog.Backend, variants []prog.Kernel) bool {
	fs, err := Check(fd.Case, backends, variants)
	if errors.Is(err, prog.ErrTooSlow) {
		return true
	}
	for _, g := range fs {
		if g.Arch == fd.Arch && g.Kernel == fd.Kernel && g.Signature == fd.Signature {
			return true
		}
	}
	return false
}

func (s *search) progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	wanted := Wanted(s.c.Backends, s.c.Kernels)
	return Progress{Cases: s.done, Shapes: s.shapes, Findings: len(s.found), Elapsed: time.Since(s.start),
		Cells: len(wanted) - len(s.coverage.Missing(wanted)), Wanted: len(wanted)}
}

// reproducerText is the case's scenario with a comment saying what
// diverged. The failures quote lines of the case, which the comment moves
// down, so they are taken from a run of the file itself: one failure per
// line keeps the comment's length, and the second text is the last.
func (c *Campaign) reproducerText(r Reproducer) string {
	text := r.text(r.Failures)
	for _, b := range c.Backends {
		v, err := prog.ParseKernel(r.Kernel)
		if b.Name() != r.Arch || err != nil {
			continue
		}
		sc, err := scenarios.Parse(filepath.Base(r.Path), []byte(text))
		if err != nil {
			break
		}
		if rep := scenarios.Run(sc, b, v, scenarios.Options{}); len(rep.Failures) == len(r.Failures) {
			text = r.text(rep.Failures)
		}
		break
	}
	return text
}

func (r Reproducer) text(failures []scenarios.Failure) string {
	fd := r.Finding
	var about strings.Builder
	fmt.Fprintf(&about, "Found by tailsim fuzz (seed %d, input %d). On %s/%s this case departs from the\nreference model or breaks a check:\n", fd.Case.Seed, fd.Case.Input, fd.Arch, fd.Kernel)
	for _, l := range failures {
		fmt.Fprintf(&about, "  %s\n", strings.ReplaceAll(l.String(), "-- ", "- - "))
	}
	var notes []string
	if r.Stale {
		notes = append(notes, "The fuzzer found it on machines it had loaded for earlier inputs; this file,\nloaded fresh, does not reproduce it: a bug of tailsim's stream harness.\n")
	}
	return commented(fd, r.Known, about.String(), notes...)
}

// commented is fd's case as a scenario file whose comment, after the
// title and the signature, says what the campaign knows of it: about,
// the library scenario that explains it when known is set, then notes.
func commented(fd Finding, known, about string, notes ...string) string {
	title, rest, _ := strings.Cut(fd.Case.Text(), "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n%s", title, fd.Signature, about)
	if known != "" {
		fmt.Fprintf(&b, "This is known behaviour of the modelled kernel code, explained in\n%s.\n", known)
	}
	for _, n := range notes {
		b.WriteString(n)
	}
	b.WriteString(rest)
	return b.String()
}
