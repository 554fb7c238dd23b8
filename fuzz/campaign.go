package fuzz

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"tailsim/prog"
	"tailsim/scenarios"
)

// Campaign checks the generated cases of a range of seeds on every backend
// and variant, and writes one minimised reproducer per distinct finding.
// For a seed and shard it finds the same findings however many workers
// run it.
type Campaign struct {
	Backends []prog.Backend
	Variants []prog.Variant
	// Seed is the first seed. A shard I of N runs seeds Seed+I, Seed+I+N,
	// ...; the zero Shards is 1 (every seed).
	Seed          uint64
	Shard, Shards uint64
	// Cases is how many cases to run, unless Duration is set: then the
	// campaign runs for that long.
	Cases    int
	Duration time.Duration
	Workers  int    // parallel workers; at least 1
	Out      string // the directory for the reproducers, created if need be
	// Progress, when set, is called every ProgressEvery (5s when zero)
	// while cases run, and once when they are done.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is how far a running campaign is.
type Progress struct {
	Cases    int
	Findings int // distinct so far
	Elapsed  time.Duration
	// Cells of the coverage matrix reached, of those wanted.
	Cells, Wanted int
}

// Summary is what a campaign found.
type Summary struct {
	Cases int
	// Unparsed counts generated cases that did not parse: a generator bug.
	Unparsed int
	// Coverage counts the tail calls of every checked run by cell.
	Coverage Coverage
	// Slow counts cases an emulator could not finish in wall time before
	// their budget: the machine was too loaded, and they are unchecked.
	Slow    int
	Elapsed time.Duration
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
	sum := &Summary{Cases: s.done, Unparsed: s.unparsed, Slow: s.slow, Coverage: s.coverage}
	keys := make([]string, 0, len(s.found))
	for k := range s.found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		fd := Minimize(s.found[k], c.Backends, c.Variants)
		r := Reproducer{Finding: fd, Known: Known(fd),
			Path: filepath.Join(c.Out, fmt.Sprintf("finding-%02d-seed-%d.txtar", i+1, fd.Case.Seed))}
		if err := os.WriteFile(r.Path, []byte(c.reproducerText(r)), 0o644); err != nil {
			// What was written stays reported: a long campaign's findings
			// are not lost to one failed write.
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("writing finding: %w", err)
		}
		sum.Reproducers = append(sum.Reproducers, r)
	}
	sum.Elapsed = time.Since(start)
	if err := writeIndex(c.Out, c.index(sum)); err != nil {
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

	mu                   sync.Mutex
	next                 uint64 // cases taken
	done, unparsed, slow int
	coverage             Coverage
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
			for {
				seed, ok := s.take()
				if !ok {
					return
				}
				cov := Coverage{}
				fs, err := check(Generate(seed), s.c.Backends, s.c.Variants, cov)
				s.record(fs, cov, err)
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

// take hands out the shard's seeds in order: Seed+I, Seed+I+N, ...
func (s *search) take() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadline.IsZero() && s.next >= uint64(s.c.Cases) || !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return 0, false
	}
	seed := s.c.Seed + s.next*s.shards + s.c.Shard
	s.next++
	return seed, true
}

func (s *search) record(fs []Finding, cov Coverage, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done++
	s.coverage.merge(cov)
	switch {
	case errors.Is(err, prog.ErrTooSlow):
		s.slow++
	case err != nil:
		s.unparsed++
	}
	for _, fd := range fs {
		// A new finding never hides behind a known one of the same
		// signature.
		key := fd.Signature + " " + Known(fd)
		if old, dup := s.found[key]; !dup || fd.Case.Seed < old.Case.Seed {
			s.found[key] = fd
		}
	}
}

func (s *search) progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	wanted := Wanted(s.c.Backends, s.c.Variants)
	return Progress{Cases: s.done, Findings: len(s.found), Elapsed: time.Since(s.start),
		Cells: len(wanted) - len(s.coverage.Missing(wanted)), Wanted: len(wanted)}
}

// reproducerText is the case's scenario with a comment saying what
// diverged. The failures quote lines of the case, which the comment moves
// down, so they are taken from a run of the file itself: one failure per
// line keeps the comment's length, and the second text is the last.
func (c *Campaign) reproducerText(r Reproducer) string {
	text := r.text(r.Failures)
	for _, b := range c.Backends {
		v, err := prog.ParseVariant(r.Variant)
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
	title, rest, _ := strings.Cut(fd.Case.Text(), "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", title, fd.Signature)
	fmt.Fprintf(&b, "Found by tailsim fuzz (seed %d). On %s/%s this case departs from the\nreference model or breaks a check:\n", fd.Case.Seed, fd.Arch, fd.Variant)
	for _, l := range failures {
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(l.String(), "-- ", "- - "))
	}
	if r.Known != "" {
		fmt.Fprintf(&b, "This is known behaviour of the modelled kernel code, explained in\n%s.\n", r.Known)
	}
	b.WriteString(rest)
	return b.String()
}
