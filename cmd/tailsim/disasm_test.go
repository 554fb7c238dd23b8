package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const disasmLib = "../../scenarios/library/test_bpf/01_tail_call_2.txtar"

func disasm(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := tailsim(append([]string{"disasm"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func mustDisasm(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := disasm(t, args...)
	if code != exitOK {
		t.Fatalf("disasm %v: exit %d\nstderr:\n%s", args, code, errs)
	}
	if errs != "" {
		t.Errorf("disasm %v wrote to stderr:\n%s", args, errs)
	}
	return out
}

// matchLine reports whether some line of out matches the pattern.
func matchLine(t *testing.T, out, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			return
		}
	}
	t.Errorf("no line matches %s in:\n%s", pattern, out)
}

// The command prints the listing package's text, with each flag and PROG
// reaching it; the golden files are the package's (listing/golden_test.go).
func TestDisasmPrintsListing(t *testing.T) {
	t.Chdir("../..")
	for _, tt := range []struct {
		golden string
		args   []string
	}{
		{"x86_patched_dynamic", []string{"-kernel", "v6.18+series", "scenarios/library/edges/poisoned_map.txtar"}},
		{"x86_layout_prog", []string{"-layout", "pre-v6.18", "scenarios/library/test_bpf/01_tail_call_2.txtar", "tail_call_2"}},
		{"x86_prog_func", []string{"scenarios/library/selftests/tailcall_bpf2bpf_1.txtar", "entry/subprog_tail", "-hex", "-syntax", "att"}},
		{"arm64_hardening", []string{"-arch", "arm64", "-kernel", "v6.18+series", "scenarios/library/edges/hardening.txtar"}},
		{"arm64_restricted", []string{"-arch", "arm64", "listing/testdata/restricted.txtar"}},
		{"x86_as_jited", []string{"-as-jited", "-hex", "listing/testdata/subprog.txtar"}},
		{"arm64_rel", []string{"-rel", "-arch", "arm64", "-kernel", "v6.18+series", "scenarios/library/selftests/tailcall_bpf2bpf_3.txtar"}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("listing", "testdata", tt.golden+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			if got := mustDisasm(t, tt.args...); got != string(want) {
				t.Errorf("disasm %v differs from %s.golden:\n%s", tt.args, tt.golden, got)
			}
		})
	}
}

func TestDisasmFlagsAfterScenario(t *testing.T) {
	out := mustDisasm(t, disasmLib, "leaf", "-hex", "-syntax", "att")
	matchLine(t, out, `^ +8:  55 +push %rbp$`)
}

func TestDisasmErrors(t *testing.T) {
	bad := write(t, "bad.txtar", strings.Replace(scenario, "w3 = 1", "w3 = r1", 1))
	layout := write(t, "layout.txtar", strings.Replace(scenario, "-- maps --", "-- config --\nlayout custom max_entries=0x80 ptrs=0x88 bpf_func=0x90\n-- maps --", 1))
	tests := []struct {
		args   []string
		stderr []string
	}{
		{nil, []string{"missing SCENARIO", "usage: tailsim disasm"}},
		{[]string{disasmLib, "nope"}, []string{`unknown program "nope"`, "programs: leaf, tail_call_2"}},
		{[]string{disasmLib, "tail_call_2/nope"}, []string{`no function "nope"`}},
		{[]string{disasmLib, "leaf", "extra"}, []string{"too many arguments"}},
		{[]string{"-syntax", "plan9", disasmLib}, []string{`unknown syntax "plan9"`, "intel, att"}},
		{[]string{"-arch", "mips", disasmLib}, []string{`mips`, "x86_64, arm64"}},
		{[]string{"-arch", "ref", disasmLib}, []string{"reference model", "available: x86_64"}},
		{[]string{"-arch", "mips", disasmLib}, []string{`unknown arch "mips"`}},
		{[]string{"-kernel", "v2", disasmLib}, []string{"unknown kernel"}},
		{[]string{"-layout", "v1", disasmLib}, []string{"unknown layout"}},
		{[]string{"-bogus", disasmLib}, []string{"flag provided but not defined"}},
		{[]string{filepath.Join(t.TempDir(), "missing.txtar")}, []string{"no such file"}},
		{[]string{"../../scenarios/library/test_bpf"}, []string{"holds 10 scenarios"}},
		{[]string{bad}, []string{bad + ":6:7:"}},
		{[]string{layout}, []string{layout + ":3: x86_64: layout custom: the JIT encodes"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := disasm(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitUsage, errs)
			}
			if out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
		})
	}
}

func TestDisasmHelp(t *testing.T) {
	var out bytes.Buffer
	if code := tailsim([]string{"help", "disasm"}, &out, &out); code != exitOK {
		t.Fatalf("help disasm: exit %d", code)
	}
	for _, s := range []string{"usage: tailsim disasm", "-syntax", "-hex", "-arch"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help disasm lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	tailsim([]string{"help"}, &out, &out)
	if !strings.Contains(out.String(), "  disasm ") {
		t.Errorf("help does not list disasm:\n%s", out.String())
	}
}
