package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := tailsim(args, &out, &errb)
	return code, out.String(), errb.String()
}

func write(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const scenario = `Leaf
-- maps --
jt max_entries=2
-- prog entry --
	r2 = map[jt]
	w3 = 1
	call bpf_tail_call
	r0 = 7
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- run --
run entry
expect r0 = 1
`

func TestExitCodes(t *testing.T) {
	good := write(t, "good.txtar", scenario)
	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	bad := write(t, "bad.txtar", strings.Replace(scenario, "w3 = 1", "w3 = r1", 1))
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"run", good}, 0, "9 passed, 0 failed, 0 errors", ""},
		{[]string{"run", "-kernel", "v6.18+series", good}, 0, "3 passed", ""},
		{[]string{"run", "-kernel", "patched", good}, 0, "3 passed", ""}, // the series' old name
		{[]string{"run", "-arch", "arm64", good}, 0, "3 passed", ""},
		{[]string{"run", "-arch", "x86_64", "-kernel", "v6.18", good}, 0, "1 passed", ""},
		{[]string{"run", failing}, 1, "FAIL [every arch/kernel] line 17: expect r0 = 2: got 1", ""},
		{[]string{"run", bad}, 2, "", bad + ":6:7: r1 mixes 32-bit and 64-bit registers"},
		{[]string{"run", "-arch", "mips", good}, 2, "", "unknown arch"},
		{[]string{"run", "-kernel", "v2", good}, 2, "", "unknown kernel"},
		{[]string{"run", "-layout", "v1", good}, 2, "", "unknown layout"},
		{[]string{"run", "-bogus", good}, 2, "", "flag provided but not defined"},
		{[]string{"run", filepath.Join(t.TempDir(), "missing.txtar")}, 2, "", "no such file"},
		{[]string{"frobnicate"}, 2, "", "unknown command"},
		{[]string{}, 2, "", "usage"},
		{[]string{"help"}, 0, "commands:", ""},
		{[]string{"help", "run"}, 0, "-arch", ""},
		{[]string{"version"}, 0, "tailsim ", ""},
		// Flags after the paths, as disasm always took them.
		{[]string{"run", good, "-arch", "ref"}, 0, "3 passed", ""},
		{[]string{"run", "-variant", "patched", good}, 2, "", "flag provided but not defined: -variant"},
		{[]string{"run", "-arch", "foo", good}, 2, "", `unknown arch "foo" (ref, x86_64, arm64, or all)`},
		{[]string{"run", "-layout", "custom", good}, 2, "", "-layout takes a preset (v6.18, v6.18-nosec, pre-v6.18); a custom layout goes in a scenario's config"},
		{[]string{"fuzz", "-duration", "-1s"}, 2, "", "-duration -1s: a campaign's duration cannot be negative"},
		{[]string{"fuzz", "-shard", "1/2/3"}, 2, "", `bad -shard "1/2/3"`},
		{[]string{"fuzz", "-shard", "1/2x"}, 2, "", `bad -shard "1/2x"`},
		{[]string{"fuzz", "-shard", "2/2"}, 2, "", `bad -shard "2/2"`},
		{[]string{"fuzz", "-workers", "10000"}, 2, "", "-workers 10000: at most"},
		{[]string{"fuzz", "-shard", "1/18446744073709551615"}, 2, "", "at most 1048576 shards"},
		{[]string{"fuzz", "-cases", "9223372036854775807"}, 2, "", "cases per shard"},
		{[]string{"fuzz", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"fuzz", "-arch", "foo"}, 2, "", `unknown arch "foo" (x86_64, arm64, or all)`},
		{[]string{"fuzz", "-arch", "ref"}, 2, "", "-arch ref: the reference model is the oracle"},
		{[]string{"oracle", "-arch", "x86_64"}, 2, "", "-vmlinuz-x86_64: no kernel to boot for x86_64"},
		{[]string{"oracle", "-arch", "mips", "-vmlinuz-x86_64", "k"}, 2, "", `-arch: unknown arch "mips"`},
		{[]string{"oracle", "-spectre-v2", "auto,eibrs", "-vmlinuz-x86_64", "k", "-vmlinuz-arm64", "k"}, 2, "", `-spectre-v2: unknown mitigation "eibrs"`},
		{[]string{"oracle", "-arch", "x86_64", "-vmlinuz-x86_64", "k", "-guest-dir", "/nonexistent"}, 2, "", "oracle-guest-x86_64"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out)
			}
			if !strings.Contains(errs, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errs)
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	code, out, _ := run(t, "run", "-json", "-arch", "ref", "-kernel", "v6.18", failing)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	for k, want := range map[string]any{"scenario": failing, "arch": "ref", "kernel": "v6.18", "status": "fail"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if f, ok := got["failures"].([]any); !ok || len(f) != 1 {
		t.Errorf("failures = %v", got["failures"])
	}
}

func TestVerboseTrace(t *testing.T) {
	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	_, out, _ := run(t, "run", "-v", "-arch", "ref", "-kernel", "v6.18", failing)
	for _, want := range []string{"| => enter entry", "| ** tail call at entry+3 (line 7) (direct) index=0x1 count=0 -> taken", "| => enter leaf", "| -> exit r0=0x1"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

// With no flags the whole library runs on every backend and variant, and
// every emulated result agrees with the reference model (or departs from
// it where a scenario says the kernel code does). All passing, the report
// is a line per library directory and the summary: one screen.
func TestRunLibraryByDefault(t *testing.T) {
	code, out, errs := run(t, "run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) > 12 {
		t.Errorf("%d lines when everything passes:\n%s", len(lines), out)
	}
	for _, want := range []string{"library/test_bpf/", "PASS", "runs on ref, x86_64, arm64 × v6.1, v6.18, v6.18+series", "notes: -notes shows them)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The whole library passes under every configuration preset, each named
// in the report; the findings pinned to the default build run under it
// only, and the reference model once.
func TestRunLibraryAllConfigs(t *testing.T) {
	code, out, errs := run(t, "run", "-config", "all")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"× config default, distro, distro-eibrs, distro-lfence (ref under the first)",
		"arch/kernel/config runs", "0 failed, 0 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The runs: per scenario, its combos under each preset it runs under,
	// the reference model's under the first only.
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	want, pinned := 0, 0
	for _, sc := range scs {
		if len(sc.Configs) > 0 {
			pinned++
		}
		first := true
		for _, c := range prog.Configs {
			if sc.RunsUnder(c.Config) {
				for _, cb := range sc.Combos(backends, prog.Kernels) {
					if first || cb.B.Name() != "ref" {
						want++
					}
				}
				first = false
			}
		}
	}
	if pinned == 0 || !strings.Contains(out, fmt.Sprintf("on %d arch/kernel/config runs", want)) {
		t.Errorf("want %d runs (%d scenarios pinned):\n%s", want, pinned, out)
	}
}

// -config: a failure names the configuration that gave it, and its trace
// command line repeats it; bad configurations are usage errors.
func TestRunConfigFlag(t *testing.T) {
	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	_, out, _ := run(t, "run", "-v", "-arch", "x86_64", "-kernel", "v6.18", "-config", "default,ibt+sls", failing)
	for _, want := range []string{"FAIL [every arch/kernel/config] line 17", "-config ibt+sls "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A scenario pinned to a configuration the run lists second runs
	// there, the reference model included.
	pinnedDistro := write(t, "pinned.txtar", strings.Replace(scenario, "-- maps --", "-- config --\nconfigs distro\n-- maps --", 1))
	if _, out, _ := run(t, "run", "-config", "default,distro", pinnedDistro); !strings.Contains(out, "9 runs on ref, x86_64, arm64 × v6.1, v6.18, v6.18+series × config distro") {
		t.Errorf("a scenario pinned to the second configuration:\n%s", out)
	}
	good := write(t, "good.txtar", scenario)
	pinned := write(t, "pinned.txtar", strings.Replace(scenario, "-- maps --", "-- config --\nconfigs distro\n-- maps --", 1))
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"run", "-config", "cet", good}, 2, `unknown config "cet"`},
		{[]string{"run", "-config", "thunk", good}, 2, "need retpoline"},
		{[]string{"run", "-config", "default,", good}, 2, "name one configuration"},
		{[]string{"run", "-config", "default", pinned}, 2, "no scenario matches"},
		{[]string{"run", "-config", "distro", pinned}, 0, ""},
		{[]string{"run", "-config", "default,distro", pinned}, 0, ""},
		{[]string{"trace", "-config", "all", good}, 2, "name one configuration"},
		{[]string{"trace", "-config", "default", pinned}, 2, "does not run under -config default"},
		{[]string{"disasm", "-config", "distro+ibt", good}, 0, ""},
		{[]string{"compare", "-config", "default,distro,distro-eibrs", good}, 2, "one configuration for both sides, or two"},
		{[]string{"compare", "-arch", "x86_64,arm64", "-config", "default,distro", good}, 2, "one configuration for both sides, or two"},
	} {
		code, _, errs := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d with %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
}

// compare -config A,B sets two builds side by side: under distro the
// tail call ends in a jump to the retpoline thunk, which a taken call
// runs too.
func TestCompareConfigs(t *testing.T) {
	good := write(t, "good.txtar", strings.Replace(scenario, "w3 = 1", "r3 = *(u32 *)(r1 + 0)", 1)+"-- ctx --\nu32 1\n")
	code, out, errs := run(t, "compare", "-kernel", "v6.18", "-config", "default,distro", good)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"x86_64/v6.18/default beside x86_64/v6.18/distro", "jmp rcx", "jmp __x86_indirect_thunk_rcx"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The thunk's jmp rcx is one more instruction in the taken call.
	cost := regexp.MustCompile(`x86_64/v6.18/(default|distro) +indirect +taken +x1 +(\d+) insns`).FindAllStringSubmatch(out, -1)
	if len(cost) != 2 || cost[0][1] != "default" || cost[1][1] != "distro" || atoi(t, cost[1][2]) != atoi(t, cost[0][2])+1 {
		t.Errorf("costs %q, want distro's one more than default's:\n%s", cost, out)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A failure that every arch/kernel gives is printed once; notes are
// counted, and shown once per scenario with -notes; errors are told
// apart from failures.
func TestRunTextGroups(t *testing.T) {
	t.Chdir("../..")
	failing := write(t, "fail.txtar", strings.Replace(scenario, "expect r0 = 1", "expect r0 = 2", 1))
	_, out, _ := run(t, "run", failing)
	if n := strings.Count(out, "expect r0 = 2: got 1"); n != 1 || !strings.Contains(out, "FAIL [every arch/kernel] line 17") {
		t.Errorf("the failure printed %d times:\n%s", n, out)
	}
	_, out, _ = run(t, "run", "scenarios/library/edges/empty_slot.txtar")
	if strings.Contains(out, "note [") || !strings.Contains(out, "1 note") {
		t.Errorf("notes not counted:\n%s", out)
	}
	_, out, _ = run(t, "run", "-notes", "scenarios/library/edges/empty_slot.txtar")
	// (6.1's JITs count as the interpreter does: no note there.)
	if n := strings.Count(out, "  note [ref/v6.18, ref/v6.18+series, x86_64/v6.18, x86_64/v6.18+series, arm64/v6.18, arm64/v6.18+series] line 30: run entry: the kernel interpreter"); n != 1 {
		t.Errorf("-notes shows the note %d times:\n%s", n, out)
	}
	layout := write(t, "layout.txtar", strings.Replace(scenario, "-- maps --", "-- config --\nlayout custom max_entries=0x80 ptrs=0x88 bpf_func=0x90\n-- maps --", 1))
	_, out, _ = run(t, "run", layout)
	if !strings.Contains(out, "ERROR [x86_64/v6.1, x86_64/v6.18, x86_64/v6.18+series] line 3:") {
		t.Errorf("errors:\n%s", out)
	}
}

// Every kind of malformed input is a usage error (exit 2) that names the
// file and the line.
func TestMalformedInputExit2(t *testing.T) {
	tests := []struct{ name, old, new, where string }{
		{"truncated marker", "-- run --", "-- run", ":15:"},
		{"unknown mnemonic", "r0 = 7", "mov r0, 7", ":8:"},
		{"bad register", "r0 = 7", "r12 = 7", ":8:"},
		{"jump out of range", "r0 = 7", "goto +7", ":8:"},
		{"unknown map", "map[jt]", "map[nope]", ":5:"},
		{"unknown program", "jt[1] = leaf", "jt[1] = nope", ":14:"},
		{"unknown label", "r0 = 7", "goto nope", ":8:"},
		{"slot beyond max_entries", "jt[1] = leaf", "jt[2] = leaf", ":14:"},
		{"duplicate name", "-- prog leaf --", "-- prog entry --", ":10:"},
		{"impossible layout", "-- maps --", "-- config --\nlayout custom max_entries=0x44 ptrs=0x10 bpf_func=0x48\n-- maps --", ":3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, "bad.txtar", strings.Replace(scenario, tt.old, tt.new, 1))
			code, _, errs := run(t, "run", p)
			if code != 2 || !strings.HasPrefix(errs, p+tt.where) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, p+tt.where)
			}
		})
	}
}

// main maps errors to exit statuses, and prints each kind its own way, in
// one place.
func TestExitStatus(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		stderr string
	}{
		{nil, exitOK, ""},
		{flag.ErrHelp, exitOK, ""},
		{errChecksFailed, exitFail, ""},
		{fmt.Errorf("3 cases: %w", errChecksFailed), exitFail, ""},
		{usagef("unknown arch %q", "mips"), exitUsage, "tailsim cmd: unknown arch \"mips\"\n"},
		{inputError{errors.New("x.txtar:3:1: bad")}, exitUsage, "x.txtar:3:1: bad\n"},
		{reported{usageError{errors.New("flag provided but not defined: -x")}}, exitUsage, ""},
		{reported{errScenariosErrored}, exitUsage, ""},
		{fmt.Errorf("writing finding: %w", os.ErrPermission), exitUsage, "tailsim cmd: writing finding: permission denied\n"},
	} {
		var b bytes.Buffer
		report(&b, "cmd", tt.err)
		if got := exitStatus(tt.err); got != tt.status || b.String() != tt.stderr {
			t.Errorf("%v: exit %d, printed %q; want %d, %q", tt.err, got, b.String(), tt.status, tt.stderr)
		}
	}
}

// -h prints a command's flags and succeeds.
// -h and --help on every command print what "help COMMAND" prints.
func TestHelpFlag(t *testing.T) {
	names := []string{"fuzz merge"}
	for name := range commands {
		names = append(names, name)
	}
	for _, name := range names {
		_, want, _ := run(t, "help", strings.Fields(name)[0])
		for _, flag := range []string{"-h", "--help"} {
			code, out, errs := run(t, append(strings.Fields(name), flag)...)
			if code != exitOK || out != "" || errs != want {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q, want %q", name, flag, code, out, errs, want)
			}
		}
	}
	_, general, _ := run(t, "help")
	if code, out, _ := run(t, "help", "-h"); code != exitOK || out != general {
		t.Errorf("help -h: exit %d, %q", code, out)
	}
}

// Every command's usage line names each of its flags.
func TestUsageNamesEveryFlag(t *testing.T) {
	for name, c := range commands {
		setup := flagSetups[name]
		if setup == nil {
			continue
		}
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		setup(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(c.usage, "-"+f.Name+" ") && !strings.Contains(c.usage, "-"+f.Name+"]") && !strings.Contains(c.usage, "-"+f.Name+"|") {
				t.Errorf("tailsim %s: the usage line lacks -%s: %s", name, f.Name, c.usage)
			}
		})
	}
}
