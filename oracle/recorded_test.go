package oracle

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

// The boots make oracle-record recorded (testdata/boot-*.jsonl), replayed:
// every library scenario a kernel can run is in them, in its current
// version, and tailsim's v6.1 gives the kernel's results and bytes. A
// library change that alters what the guest would run fails here until
// the boots are recorded again (make oracle-record, which boots QEMU).
func TestRecordedBoots(t *testing.T) {
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "boot-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Each boot is replayed on its own (in parallel: the emulated runs
	// take a second or two per boot); the builds they were are collected.
	builds := make([]string, len(files))
	t.Run("boots", func(t *testing.T) {
		for i, file := range files {
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				builds[i] = replayBoot(t, scs, file)
			})
		}
	})
	// x86-64 under the three mitigations the JIT emits differently for
	// (make oracle-record boots each): the retpoline thunk, a plain jump,
	// lfence first.
	for _, want := range []string{"x86_64 retpoline+sls+thunk", "x86_64 retpoline+sls", "x86_64 retpoline+sls+lfence", "arm64 pac"} {
		if !slices.Contains(builds, want) {
			t.Errorf("no recorded boot of %s (have %v)", want, builds)
		}
	}
}

// replayBoot evaluates one recorded boot and returns its arch and build.
func replayBoot(t *testing.T, scs []*scenarios.Scenario, file string) string {
	arch, mitigation, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "boot-"), ".jsonl"), "-")
	results, err := ReadResults(file)
	if err != nil {
		t.Fatal(err)
	}
	rep := Evaluate(arch, scs, results)
	// The recording is of the boot its name says (tailsim oracle
	// -spectre-v2 names it), and the mitigation took.
	cmdline := SpectreV2[mitigation] // "" (auto): none
	if ps := append(rep.Problems, cmdlineProblems(cmdline, rep)...); len(ps) > 0 {
		t.Errorf("%s: %q", file, ps)
	}
	if !strings.Contains(rep.Uname, "6.1.") {
		t.Errorf("%s: the recording is of %q, not a 6.1 kernel", arch, rep.Uname)
	}
	equal, runs, funcs, kernelTests, jumps := 0, 0, 0, 0, 0
	named := map[string]bool{}
	for _, o := range rep.Outcomes {
		switch o.Status() {
		case "FAIL":
			var b strings.Builder
			for _, m := range o.Mismatches {
				fmt.Fprintf(&b, "  %s\n", m)
			}
			for _, d := range o.Bytes {
				fmt.Fprintf(&b, "  %s:\n", d.Name)
				d.Diff.Write(&b)
			}
			t.Errorf("%s %s differs from the recorded boot (make oracle-record if the scenario changed):\n%s", arch, o.File, b.String())
		case "PASS":
			equal++
			runs += o.Runs
			funcs += o.Funcs
			if o.KernelTest != "" {
				kernelTests++
			}
			jumps += o.IndirectJumps
			for s := range o.Named {
				if strings.HasPrefix(s, "map ") {
					s = "map"
				}
				named[s] = true
			}
		}
	}
	if equal < 30 || runs < 80 || funcs < 150 {
		t.Errorf("%s: only %d scenarios, %d runs and %d functions compared", arch, equal, runs, funcs)
	}
	// The boots differ in the indirect jump: it must have been compared.
	if arch == "x86_64" && jumps < 20 {
		t.Errorf("%s: only %d indirect tail-call jumps compared", file, jumps)
	}
	// Every lib/test_bpf translation against the kernel's own run.
	if kernelTests != 10 {
		t.Errorf("%s: %d scenarios held against lib/test_bpf's run in the kernel, want 10", arch, kernelTests)
	}
	// The masked addresses were compared by what they name: maps
	// (paired), the helpers' kernel functions, x86's thunks.
	want := []string{"map", "bpf_get_smp_processor_id", "bpf_map_update_elem", "bpf_map_delete_elem", "bpf_strtoul",
		"bpf_ktime_get_ns", "bpf_get_prandom_u32", "jiffies"}
	if rep.Config&prog.Thunk != 0 {
		want = append(want, "__x86_indirect_thunk_rcx") // Debian 12 returns with ret; int3 (no rethunk)
	}
	for _, s := range want {
		if !named[s] {
			t.Errorf("%s: no compared function reaches %s by name", arch, s)
		}
	}
	return arch + " " + rep.Config.Options()
}
