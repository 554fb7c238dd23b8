package fuzz

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// A campaign over the streams of seeds 30–69, four inputs each, where
// several cases share a finding's signature: it keeps one finding per
// signature (the first case's, by seed then input), writes reproducers
// that parse and fail again, and finds the same twice.
func TestCampaign(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	const first, seeds, inputs = 30, 40, 4
	const cases = seeds * inputs

	// What deduplication must give: per signature and explanation, the
	// first case, each case checked on its own.
	type at struct {
		seed  uint64
		input int
	}
	want := map[string]at{}
	perCase := 0
	for seed := uint64(first); seed < first+seeds; seed++ {
		for k := range inputs {
			fs, err := Check(StreamCase(seed, k), backends, prog.Kernels)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				perCase++
				key := f.Signature + " " + Known(f)
				if _, ok := want[key]; !ok {
					want[key] = at{seed, k}
				}
			}
		}
	}
	if perCase <= len(want) || len(want) < 2 {
		t.Fatalf("seeds %d..%d give %d findings, %d distinct: nothing to deduplicate", first, first+seeds-1, perCase, len(want))
	}

	run := func() *Summary {
		var calls int
		c := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: first, Cases: cases, Inputs: inputs, Workers: 2,
			Out: filepath.Join(t.TempDir(), "new", "dir"), Progress: func(Progress) { calls++ }, ProgressEvery: time.Hour}
		sum, err := c.Run()
		if err != nil {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Errorf("progress called %d times, want once at the end", calls)
		}
		return sum
	}
	sum := run()
	if sum.Cases != cases || sum.Shapes != seeds || sum.Unparsed != 0 {
		t.Errorf("%d cases on %d shapes, %d unparsed", sum.Cases, sum.Shapes, sum.Unparsed)
	}
	got := map[string]at{}
	for _, r := range sum.Reproducers {
		got[r.Signature+" "+r.Known] = at{r.Case.Seed, r.Case.Input}
		if r.Stale {
			t.Errorf("%s: the stream's finding does not reproduce from its file", r.Path)
		}
	}
	if len(sum.Reproducers) != len(want) || !maps.Equal(got, want) {
		t.Errorf("reproducers by signature %v, want %v", got, want)
	}
	if !slices.IsSortedFunc(sum.Reproducers, func(a, b Reproducer) int {
		return strings.Compare(a.Signature+" "+a.Known, b.Signature+" "+b.Known)
	}) {
		t.Errorf("reproducers not in signature order")
	}
	if sum.Known() != len(sum.Reproducers) {
		t.Errorf("%d of %d findings known; seeds %d..%d have only known ones", sum.Known(), len(sum.Reproducers), first, first+seeds-1)
	}

	for _, r := range sum.Reproducers {
		data, err := os.ReadFile(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "Found by tailsim fuzz (seed ") || !strings.Contains(string(data), "input ") || !strings.Contains(string(data), r.Known) {
			t.Errorf("%s does not say where it comes from:\n%s", r.Path, data)
		}
		sc, err := scenarios.Parse(r.Path, data)
		if err != nil {
			t.Errorf("reproducer does not parse: %v", err)
			continue
		}
		// It fails again where it was found.
		b := backends[slices.IndexFunc(backends, func(b prog.Backend) bool { return b.Name() == r.Arch })]
		v, _ := prog.ParseKernel(r.Kernel)
		rep := scenarios.Run(sc, b, v, scenarios.Options{})
		if rep.Status == scenarios.Pass {
			t.Errorf("%s passes on %s/%s", r.Path, r.Arch, r.Kernel)
		}
		// Its comment quotes the failures as they are in this file, lines
		// and site names included, not as in the case before the comment.
		for _, f := range rep.Failures {
			if !strings.Contains(string(data), "  "+strings.ReplaceAll(f.String(), "-- ", "- - ")+"\n") {
				t.Errorf("%s does not quote its own failure %q:\n%s", r.Path, f, data)
			}
		}
	}

	again := run()
	if again.Cases != sum.Cases || len(again.Reproducers) != len(sum.Reproducers) {
		t.Fatalf("second run: %d cases, %d findings; first: %d, %d", again.Cases, len(again.Reproducers), sum.Cases, len(sum.Reproducers))
	}
	for i, r := range again.Reproducers {
		if s := sum.Reproducers[i]; r.Signature != s.Signature || r.Case != s.Case || filepath.Base(r.Path) != filepath.Base(s.Path) {
			t.Errorf("finding %d: %s seed %d, first run %s seed %d", i+1, r.Signature, r.Case.Seed, s.Signature, s.Case.Seed)
		}
	}
}

// A shard runs its own seeds, each for Inputs inputs but the last, which
// runs what is left of Cases; a duration bounds the campaign instead of a
// count.
func TestCampaignShardAndDuration(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0)}
	// Three shards of 10 cases: the whole campaign's 30 inputs, on seeds
	// 100..107 with 4 inputs each but 107's 2.
	want := map[uint64][]uint64{0: {100, 103, 106}, 1: {101, 104, 107}, 2: {102, 105}}
	wantInputs := map[uint64][]int{0: {4, 4, 4}, 1: {4, 4, 2}, 2: {4, 4}}
	for shard := range uint64(3) {
		c := &Campaign{Seed: 100, Shard: shard, Shards: 3, Cases: 10, Inputs: 4}
		s := &search{c: c, shards: 3}
		var seeds []uint64
		var inputs []int
		for {
			seed, n, ok := s.take()
			if !ok {
				break
			}
			seeds, inputs = append(seeds, seed), append(inputs, n)
		}
		if !slices.Equal(seeds, want[shard]) || !slices.Equal(inputs, wantInputs[shard]) {
			t.Errorf("shard %d/3 from 100 takes seeds %v with inputs %v", shard, seeds, inputs)
		}
	}
	c := &Campaign{Backends: backends, Kernels: []prog.Kernel{prog.Linux618}, Seed: 100, Shard: 1, Shards: 3, Cases: 10, Inputs: 4, Out: t.TempDir()}
	c.Duration = 50 * time.Millisecond
	sum, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Cases < 1 || sum.Elapsed < c.Duration {
		t.Errorf("%d cases in %s, want a campaign of at least %s", sum.Cases, sum.Elapsed, c.Duration)
	}
}

// A directory that cannot hold reproducers fails the campaign before any
// case runs, not at its first finding.
func TestCampaignBadOut(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{file, filepath.Join(file, "sub"), ""} {
		ran := false
		c := &Campaign{Backends: []prog.Backend{emu.NewX86(0)}, Kernels: prog.Kernels, Seed: 1, Cases: 100, Out: out,
			Progress: func(Progress) { ran = true }}
		if sum, err := c.Run(); err == nil || ran || sum != nil || !strings.HasPrefix(err.Error(), "reproducer directory: ") {
			t.Errorf("-out %q: %v, %v (progress called: %v)", out, sum, err, ran)
		}
	}
	if _, err := (&Campaign{Shard: 2, Shards: 2}).Run(); err == nil {
		t.Error("shard 2 of 2 runs")
	}
}

// New counts the findings Known does not explain.
func TestSummaryNew(t *testing.T) {
	s := &Summary{Reproducers: []Reproducer{{Known: "scenarios/library/findings/a.txtar"}, {}, {Known: "b"}, {}}}
	if s.Known() != 2 || s.New() != 2 {
		t.Errorf("known %d, new %d", s.Known(), s.New())
	}
	if (&Summary{}).New() != 0 {
		t.Error("an empty campaign has new findings")
	}
}

// The shards of a campaign, merged, are the campaign: the same findings,
// the same reproducers, also when the shards' cases are no multiple of the
// inputs per shape (the whole campaign's last stream is cut short).
func TestMergeShards(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0)}
	campaign := func(shard, shards uint64) string {
		out := t.TempDir()
		c := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: 1, Cases: 126 / int(shards), Inputs: 4, Shard: shard, Shards: shards, Out: out}
		if _, err := c.Run(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	whole := campaign(0, 1)
	merged := t.TempDir()
	s0, s1 := campaign(0, 2), campaign(1, 2)
	// Not one campaign's shards, each once: refused.
	for _, dirs := range [][]string{{s0, s0}, {s0}, {s0, s1, whole}, {s0, whole}} {
		if _, err := Merge(t.TempDir(), dirs...); err == nil {
			t.Errorf("merging %d directories %v: no error", len(dirs), dirs)
		}
	}
	x, err := Merge(merged, s0, s1)
	if err != nil {
		t.Fatal(err)
	}
	if x.Cases != 126 || len(x.Findings) == 0 {
		t.Fatalf("merged %d cases, %d findings", x.Cases, len(x.Findings))
	}
	for _, f := range []string{IndexFile, x.Findings[0].File, x.Findings[len(x.Findings)-1].File} {
		a, errA := os.ReadFile(filepath.Join(whole, f))
		b, errB := os.ReadFile(filepath.Join(merged, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: the merged shards' differs from the whole campaign's (%v, %v)", f, errA, errB)
		}
	}
	if _, err := Merge(t.TempDir(), t.TempDir()); err == nil {
		t.Error("merging a directory without an index")
	}
	if _, err := Merge(merged, s0, s1); err == nil {
		t.Error("merging into a directory that is not empty")
	}
}

func TestShardFromEnv(t *testing.T) {
	for _, tt := range []struct {
		env          map[string]string
		shard, count uint64
		ok           bool
	}{
		{map[string]string{"JOB_COMPLETION_INDEX": "3", "TAILSIM_SHARDS": "8"}, 3, 8, true},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "10"}, 4, 10, true},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}, 0, 2, true},
		// --array=0-14:2: eight tasks, 0, 2, ... 14.
		{map[string]string{"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "8"}, 7, 8, true},
		// --array=1,5,9 (no uniform step): refused, not seeds left unrun.
		{map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, 0, 0, false},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, 0, 0, false},
		{map[string]string{"JOB_COMPLETION_INDEX": "8", "TAILSIM_SHARDS": "8"}, 0, 0, false},
		{map[string]string{"JOB_COMPLETION_INDEX": "1"}, 0, 0, false},
		{map[string]string{"JOB_COMPLETION_INDEX": "x", "TAILSIM_SHARDS": "2"}, 0, 0, false},
		{map[string]string{}, 0, 0, false},
	} {
		s, n, err := ShardFromEnv(func(k string) string { return tt.env[k] })
		if (err == nil) != tt.ok || s != tt.shard || n != tt.count {
			t.Errorf("%v: %d/%d, %v", tt.env, s, n, err)
		}
	}
}

// From seed 1 with the default inputs per shape, the campaign finds both
// library findings unprompted within its first 4096 inputs (64 shapes;
// about 1.5 s on one worker of the 2-CPU VM the README measures), and
// nothing new.
func TestCampaignFindsLibraryFindings(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	c := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: 1, Cases: 4096, Workers: 2, Out: t.TempDir()}
	sum, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range sum.Reproducers {
		known[r.Known] = true
	}
	for _, want := range []string{"scenarios/library/findings/patched_static_disp32.txtar", "scenarios/library/findings/patched_x86_mixed_sites.txtar"} {
		if !known[want] {
			t.Errorf("4096 inputs from seed 1 do not find %s", want)
		}
	}
	if sum.New() != 0 || sum.Unparsed != 0 {
		t.Errorf("%d new findings, %d unparsed", sum.New(), sum.Unparsed)
	}
	// Every line a reproducer's comment cites is a step of the file
	// itself, below the comment that moved the case's lines down.
	cited := regexp.MustCompile(`(?m)^  line (\d+): `)
	for _, r := range sum.Reproducers {
		data, err := os.ReadFile(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for _, m := range cited.FindAllStringSubmatch(string(data), -1) {
			n, _ := strconv.Atoi(m[1])
			if n < 1 || n > len(lines) || !regexp.MustCompile(`^(run|update|delete|finish|set|expect)`).MatchString(lines[n-1]) {
				t.Errorf("%s cites line %d, which is not a step", r.Path, n)
			}
		}
	}
}

// A campaign stopped through Stop ends soon, says it was interrupted,
// and writes what it found as at a normal end; a finding is on disk as
// soon as it is found.
func TestCampaignStop(t *testing.T) {
	backends := []prog.Backend{emu.NewX86(0), emu.NewArm64(0)}
	stop := make(chan struct{})
	out := t.TempDir()
	c := &Campaign{Backends: backends, Kernels: prog.Kernels, Seed: 1, Duration: time.Hour, Workers: 2, Out: out, Stop: stop}
	foundText := make(chan []byte, 1)
	go func() {
		// Stop once the first finding is on disk.
		for {
			if found, _ := filepath.Glob(filepath.Join(out, "found-*.txtar")); len(found) > 0 {
				data, _ := os.ReadFile(found[0])
				foundText <- data
				close(stop)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// (Without Stop the campaign would run for its hour.)
	sum, err := c.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || len(sum.Reproducers) == 0 {
		t.Fatalf("interrupted %v, %d reproducers", sum.Interrupted, len(sum.Reproducers))
	}
	for _, r := range sum.Reproducers {
		if _, err := os.Stat(r.Path); err != nil {
			t.Error(err)
		}
	}
	if found, _ := filepath.Glob(filepath.Join(out, "found-*.txtar")); len(found) != 0 {
		t.Errorf("the found-as-found files stayed beside the reproducers: %v", found)
	}
	// A found file is a scenario that runs, whose comment names the
	// finding (the stream's failures cite no line of it).
	text := <-foundText
	if _, err := scenarios.Parse("found.txtar", text); err != nil || !bytes.Contains(text, []byte("as found: not minimised")) || bytes.Contains(text, []byte("  : ")) {
		t.Errorf("found file (%v):\n%s", err, text)
	}
	// The index says the campaign was cut short, and merging refuses it.
	x, err := readIndex(out)
	if err != nil || !x.Interrupted {
		t.Errorf("index %+v, %v", x, err)
	}
	if _, err := Merge(filepath.Join(t.TempDir(), "m"), out); err == nil || !strings.Contains(err.Error(), "interrupted before its end") {
		t.Errorf("merging an interrupted shard: %v", err)
	}
}
