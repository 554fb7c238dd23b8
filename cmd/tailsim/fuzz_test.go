package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tailsim/fuzz"
)

func TestFuzzCommand(t *testing.T) {
	out := t.TempDir()
	// Seeds 1..30, one input each, include known findings (the patched
	// displacement overflow for huge max_entries): one reproducer each,
	// listed, and exit 0, since none is new.
	code, stdout, errs := run(t, "fuzz", "-cases", "30", "-inputs", "1", "-out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.txtar"))
	if len(files) == 0 || !strings.Contains(stdout, "30 cases on 30 shapes") || !strings.Contains(stdout, "reproduce: tailsim run") ||
		!strings.Contains(stdout, "known: the modelled kernel code's behaviour, explained in scenarios/library/findings/") ||
		!strings.Contains(stdout, " known, 0 new), peak resident memory ") {
		t.Fatalf("files %v\n%s", files, stdout)
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if !strings.Contains(string(data), "Found by tailsim fuzz") {
			t.Errorf("%s has no explanation", f)
		}
		// The reproducer fails again on the arch and kernel it names.
		var arch, variant string
		for _, l := range strings.Split(stdout, "\n") {
			if strings.Contains(l, f) {
				fs := strings.Fields(l)
				arch, variant = fs[4], fs[6]
			}
		}
		if c, o, e := run(t, "run", "-arch", arch, "-kernel", variant, f); c != 1 {
			t.Errorf("%s does not reproduce on %s/%s: exit %d\n%s%s", f, arch, variant, c, o, e)
		}
	}
	// Deterministic: the same seeds give the same findings, with two
	// workers as with one, to the reproducers' names.
	out2 := t.TempDir()
	_, again, _ := run(t, "fuzz", "-cases", "30", "-inputs", "1", "-workers", "2", "-out", out2)
	findings := func(s, dir string) string {
		i := strings.LastIndex(s, "\n30 cases")
		return strings.ReplaceAll(s[:i], dir, "DIR")
	}
	if findings(stdout, out) != findings(again, out2) {
		t.Errorf("two runs disagree:\n%s\n---\n%s", stdout, again)
	}
}

func TestFuzzUsage(t *testing.T) {
	for _, args := range [][]string{
		{"fuzz", "-shard", "2/2"},
		{"fuzz", "-shard", "x"},
		{"fuzz", "-arch", "ref"},
		{"fuzz", "-workers", "0"},
		{"fuzz", "-inputs", "0"},
		{"fuzz", "extra"},
	} {
		if code, _, errs := run(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	// A shard with no findings in its seeds exits 0.
	if code, out, _ := run(t, "fuzz", "-cases", "3", "-seed", "100", "-kernel", "v6.18", "-out", t.TempDir()); code != 0 {
		t.Errorf("upstream-only campaign: exit %d\n%s", code, out)
	}
}

// A bad -out fails before the campaign: exit 2, saying why, no cases run.
func TestFuzzBadOut(t *testing.T) {
	file := write(t, "file", "")
	code, out, errs := run(t, "fuzz", "-cases", "100000", "-out", filepath.Join(file, "sub"))
	if code != exitUsage || out != "" || !strings.HasPrefix(errs, "tailsim fuzz: reproducer directory: mkdir ") || strings.Contains(errs, "cases") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

// A reproducer that cannot be written is an error of its own (exit 2),
// not a usage error, and not a verdict.
func TestFuzzWriteFails(t *testing.T) {
	first := t.TempDir()
	if code, out, errs := run(t, "fuzz", "-cases", "10", "-inputs", "1", "-out", first); code != exitOK || !strings.Contains(out, "finding 2:") {
		t.Fatalf("seeds 1..10: exit %d, want findings\n%s%s", code, out, errs)
	}
	// The same campaign again, where its second reproducer's name is
	// taken by a directory: the first is written and still reported.
	names, _ := filepath.Glob(filepath.Join(first, "*.txtar"))
	if len(names) < 2 {
		t.Fatalf("seeds 1..10 gave %d findings, the test needs two", len(names))
	}
	second := t.TempDir()
	if err := os.Mkdir(filepath.Join(second, filepath.Base(names[1])), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "fuzz", "-cases", "10", "-inputs", "1", "-out", second)
	if code != exitUsage || !strings.HasPrefix(out, "finding 1: ") || !strings.Contains(out, filepath.Join(second, filepath.Base(names[0]))) || strings.Contains(out, "finding 2") ||
		!strings.HasPrefix(errs, "fuzz: ") || !strings.Contains(errs, "\ntailsim fuzz: writing finding: open "+second) {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

// fuzz merge prints the merged findings and exits as fuzz does; -shard
// env without a batch system's variables is a usage error.
func TestFuzzMergeCommand(t *testing.T) {
	a, b, merged := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "m")
	for i, dir := range []string{a, b} {
		if code, out, errs := run(t, "fuzz", "-cases", "15", "-inputs", "1", "-shard", fmt.Sprintf("%d/2", i), "-out", dir); code != 0 {
			t.Fatalf("shard %d: exit %d\n%s%s", i, code, out, errs)
		}
	}
	code, out, errs := run(t, "fuzz", "merge", "-out", merged, a, b)
	if code != 0 || !strings.Contains(out, "30 cases on 30 shapes in 2 shards") || !strings.Contains(out, "reproduce: tailsim run") {
		t.Errorf("merge: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(merged, "findings.json")); err != nil {
		t.Error(err)
	}
	for _, args := range [][]string{{"fuzz", "merge"}, {"fuzz", "merge", "-out", merged, t.TempDir()}} {
		if code, _, errs := run(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	t.Setenv("JOB_COMPLETION_INDEX", "")
	t.Setenv("SLURM_ARRAY_TASK_ID", "")
	if code, _, errs := run(t, "fuzz", "-shard", "env", "-cases", "1", "-out", t.TempDir()); code != 2 || !strings.Contains(errs, "-shard env") {
		t.Errorf("-shard env outside a batch system: exit %d, %q", code, errs)
	}
}

// -json prints the campaign's index: the findings.json it writes, with
// the coverage matrix, and exits as the text form does.
func TestFuzzJSON(t *testing.T) {
	out := t.TempDir()
	code, stdout, errs := run(t, "fuzz", "-cases", "10", "-inputs", "1", "-json", "-out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, errs)
	}
	var x fuzz.Index
	if err := json.Unmarshal([]byte(stdout), &x); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if x.Cases != 10 || x.Shapes != 10 || x.Inputs != 1 || len(x.Findings) == 0 || len(x.Coverage) == 0 {
		t.Errorf("index %+v", x)
	}
	file, err := os.ReadFile(filepath.Join(out, fuzz.IndexFile))
	if err != nil || strings.TrimSpace(string(file)) != strings.TrimSpace(stdout) {
		t.Errorf("stdout is not %s (%v):\n%s\n---\n%s", fuzz.IndexFile, err, stdout, file)
	}
}

// SIGINT ends a campaign cleanly: the findings so far are written and
// the summary says it was interrupted (Ctrl-C used to lose everything).
func TestFuzzInterrupted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "f")
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		code, o, e := run(t, "fuzz", "-duration", "1h", "-out", out)
		done <- result{code, o, e}
	}()
	// The handler is installed before -out is made. (The first finding
	// comes within a second; the deadline turns a regression into a
	// failure rather than a hang.)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if found, _ := filepath.Glob(filepath.Join(out, "found-*")); len(found) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no finding written in two minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := <-done
	reproducers, _ := filepath.Glob(filepath.Join(out, "finding-*.txtar"))
	if r.code != 0 || !strings.Contains(r.out, ", interrupted), ") || !strings.Contains(r.errs, "interrupt: finishing the cases in flight") || len(reproducers) == 0 {
		t.Errorf("exit %d, %d reproducers\nstdout %s\nstderr %s", r.code, len(reproducers), r.out, r.errs)
	}
}
