package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"tailsim/oracle"
)

func init() {
	register(&command{
		name: "oracle",
		summary: `compare tailsim's v6.1 with a real kernel booted under QEMU

Boots each arch's kernel once under QEMU (TCG: no KVM needed; x86-64
once per -spectre-v2 mitigation, each a build of its own) with a
static agent as PID 1 and every scenario a real kernel can run packed in
the initramfs. The agent loads each scenario's prog arrays and programs
with cilium/ebpf, fills the slots, reads back the JITed images, and runs
the steps with BPF_PROG_TEST_RUN (the scenario's ctx is the program's
__sk_buff cb[]). tailsim then compares, per scenario: every run's r0 (the
kernel returns 32 bits) and ctx with its own v6.1 run, every update's and
delete's error, and every function's machine code with its own JIT's for
v6.1 under the build the guest reports, after masking only placement (map
and program addresses, rel32 to other functions and thunks), each masked
address compared by the map, function, helper or thunk it names; every
other byte that differs is listed with both sides. Scenarios a kernel cannot
run are listed as skipped with the reason. make kernel-oracle fetches
Debian 12's kernels and builds the agents.
Exit status: 0 everything compared is equal, 1 a result or a byte
differs, 2 usage error or a guest that did not boot.`,
		usage: "tailsim oracle -vmlinuz-x86_64 FILE -vmlinuz-arm64 FILE [-arch LIST] [-spectre-v2 LIST] [-guest-dir DIR] [-timeout D] [-console DIR] [-record DIR] [-v] [PATH ...]",
		run:   oracleCmd,
	})
	flagSetups["oracle"] = func(fs *flag.FlagSet) { newOracleFlags(fs) }
}

type oracleFlags struct {
	arch, vmlinuzX86, vmlinuzArm64, guestDir, console, record, spectreV2 *string
	timeout                                                              *time.Duration
	verbose                                                              *bool
}

func newOracleFlags(fs *flag.FlagSet) oracleFlags {
	return oracleFlags{
		arch:         fs.String("arch", "x86_64,arm64", "arches to boot (x86_64, arm64)"),
		vmlinuzX86:   fs.String("vmlinuz-x86_64", "", "the x86-64 kernel image to boot (Debian's linux-image-*-amd64)"),
		vmlinuzArm64: fs.String("vmlinuz-arm64", "", "the arm64 kernel image to boot (Debian's linux-image-*-arm64)"),
		guestDir:     fs.String("guest-dir", "bin", "where the agents are: oracle-guest-x86_64 and oracle-guest-arm64 (make oracle-guests)"),
		console:      fs.String("console", "", "write each guest's console log to `DIR`/console-ARCH[-MITIGATION].log"),
		record:       fs.String("record", "", "write each boot's results to `DIR`/boot-ARCH[-MITIGATION].jsonl, which oracle's tests replay without booting"),
		timeout:      fs.Duration("timeout", 10*time.Minute, "how long a boot may take"),
		verbose:      fs.Bool("v", false, "also list every scenario that compared equal, with its runs and functions"),
		spectreV2:    fs.String("spectre-v2", "auto", "x86-64 boots, one per mitigation: auto (the kernel's choice: retpolines under QEMU), off (spectre_v2=off: jmp rcx; int3), lfence (spectre_v2=retpoline,lfence)"),
	}
}

func oracleCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("oracle", flag.ContinueOnError)
	f := newOracleFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	scs, err := loadScenarios(pos)
	if err != nil {
		return err
	}
	type boot struct {
		arch, name string // name: "" or the -spectre-v2 word
		cmdline    []string
	}
	var boots []boot
	for _, arch := range strings.Split(*f.arch, ",") {
		switch arch {
		case "x86_64":
			seen := map[string]bool{}
			for _, v := range strings.Split(*f.spectreV2, ",") {
				params, ok := oracle.SpectreV2[v]
				if !ok {
					return usagef("-spectre-v2: unknown mitigation %q (auto, off, lfence)", v)
				}
				if seen[v] {
					return usagef("-spectre-v2: %s twice", v)
				}
				seen[v] = true
				name := v
				if v == "auto" {
					name = ""
				}
				boots = append(boots, boot{arch, name, params})
			}
		case "arm64":
			boots = append(boots, boot{arch: arch})
		default:
			return usagef("-arch: unknown arch %q (x86_64, arm64)", arch)
		}
	}
	failed := false
	for _, b := range boots {
		m := oracle.Machine{Arch: b.arch, Timeout: *f.timeout, Cmdline: b.cmdline}
		m.Kernel = map[string]string{"x86_64": *f.vmlinuzX86, "arm64": *f.vmlinuzArm64}[b.arch]
		if m.Kernel == "" {
			return usagef("-vmlinuz-%s: no kernel to boot for %s", b.arch, b.arch)
		}
		m.Guest = fmt.Sprintf("%s/oracle-guest-%s", *f.guestDir, b.arch)
		m.Module = oracle.TestBPFModule(m.Kernel)
		file := b.arch // console-FILE.log, boot-FILE.jsonl
		if b.name != "" {
			file += "-" + b.name
		}
		if *f.console != "" {
			lf, err := os.Create(fmt.Sprintf("%s/console-%s.log", *f.console, file))
			if err != nil {
				return err
			}
			defer lf.Close()
			m.Log = lf
		}
		start := time.Now()
		rep, err := oracle.Check(context.Background(), m, scs)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		rep.Boot = strings.Join(b.cmdline, " ")
		writeOracleReport(stdout, rep, time.Since(start), *f.verbose)
		if *f.record != "" {
			if err := oracle.WriteResults(fmt.Sprintf("%s/boot-%s.jsonl", *f.record, file), rep.Results); err != nil {
				return err
			}
		}
		failed = failed || rep.Failed()
	}
	if failed {
		return errChecksFailed
	}
	return nil
}

// writeOracleReport prints a line per compared scenario (with -v, per
// skipped one too), then the failures in full and the skipped ones with
// their reasons.
func writeOracleReport(w io.Writer, rep *oracle.Report, took time.Duration, verbose bool) {
	label := rep.Arch
	if rep.Boot != "" {
		label += " " + rep.Boot
	}
	fmt.Fprintf(w, "%s: %s, build %s, %.1fs\n", label, rep.Uname, rep.Config.Options(), took.Seconds())
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  PROBLEM %s\n", p)
	}
	for _, p := range rep.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", p)
	}
	counts := map[string]int{}
	funcs, runs, bytesOnly, kernelTests := 0, 0, 0, 0
	for _, o := range rep.Outcomes {
		counts[o.Status()]++
		funcs += o.Funcs
		runs += o.Runs
		switch o.Status() {
		case "PASS":
			if o.BytesOnly != "" {
				bytesOnly++
			}
			if o.KernelTest != "" {
				kernelTests++
			}
			switch {
			case verbose && o.KernelTest != "":
				fmt.Fprintf(w, "  PASS %s: as %s, which passed in the kernel with the JIT\n", o.File, o.KernelTest)
			case verbose && o.BytesOnly != "":
				fmt.Fprintf(w, "  PASS %s: %d functions equal; runs not compared: %s\n", o.File, o.Funcs, o.BytesOnly)
			case verbose:
				fmt.Fprintf(w, "  PASS %s: %d runs and %d functions equal\n", o.File, o.Runs, o.Funcs)
			}
		case "FAIL":
			fmt.Fprintf(w, "  FAIL %s\n", o.File)
			for _, m := range o.Mismatches {
				fmt.Fprintf(w, "    %s\n", m)
			}
			for _, b := range o.Bytes {
				fmt.Fprintf(w, "    %s: %d instructions differ from the kernel's:\n", b.Name, len(b.Diff.Bad))
				var sb strings.Builder
				b.Diff.Write(&sb)
				for _, l := range strings.Split(strings.TrimRight(sb.String(), "\n"), "\n") {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
		}
	}
	for _, o := range rep.Outcomes {
		if o.Status() == "SKIP" {
			fmt.Fprintf(w, "  skipped %s: %s\n", o.File, o.Skip)
		}
	}
	equal := fmt.Sprintf("%d scenarios equal", counts["PASS"])
	var by []string
	if bytesOnly > 0 {
		by = append(by, fmt.Sprintf("%d by their bytes only", bytesOnly))
	}
	if kernelTests > 0 {
		by = append(by, fmt.Sprintf("%d as lib/test_bpf's own tests", kernelTests))
	}
	if len(by) > 0 {
		equal += " (" + strings.Join(by, ", ") + ")"
	}
	fmt.Fprintf(w, "%s: %s, %d differ, %d skipped; %d runs and %d functions compared\n",
		label, equal, counts["FAIL"], counts["SKIP"], runs, funcs)
}
