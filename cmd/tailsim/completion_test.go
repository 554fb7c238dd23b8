package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The bash script completes commands, flags, flag values and scenario
// files, as bash runs it; the zsh script is the same function behind
// zsh's bashcompinit.
func TestCompletion(t *testing.T) {
	code, script, errs := run(t, "completion", "bash")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	path := filepath.Join(t.TempDir(), "tailsim.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// A scenario whose name has a space completes as one word.
	spaced := filepath.Join("..", "..", "docs", "examples", "with space.txtar")
	if err := os.WriteFile(spaced, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(spaced) })
	for _, tc := range []struct {
		words string // the command line; the last word is being completed
		want  string
	}{
		{"tailsim ru", "run"},
		{"tailsim run -ar", "-arch"},
		{"tailsim run -arch ", "ref x86_64 arm64 all"},
		{"tailsim run -no", "-notes"},
		{"tailsim run -layout v6", "v6.18 v6.18-nosec"},
		{"tailsim run -config distro-", "distro-eibrs distro-lfence"},
		{"tailsim disasm -syntax a", "att"},
		{"tailsim fuzz -sh", "-shard"},
		{"tailsim help fu", "fuzz"},
		{"tailsim completion z", "zsh"},
		{"tailsim run scenarios/library/edges/empty_sl", "scenarios/library/edges/empty_slot.txtar"},
		{"tailsim trace scenarios/library/te", "scenarios/library/test_bpf"},
		{"tailsim fuzz -arch ", "x86_64 arm64 all"},
		{"tailsim disasm -arch ", "x86_64 arm64"},
		{"tailsim fuzz m", "merge"},
		{"tailsim fuzz merge -", "-out"},
		{"tailsim run docs/examples/wit", "docs/examples/with space.txtar"},
	} {
		words := strings.Split(tc.words, " ")
		sh := "source " + path + "\nCOMP_WORDS=(" + strings.Join(quoteAll(words), " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_tailsim\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command("bash", "-c", sh)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		// One completion per line: a name with a space stays one.
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil || strings.Join(got, " ") != tc.want || strings.Contains(tc.want, "with space") && len(got) != 1 {
			t.Errorf("%q completes to %q (%v), want %q", tc.words, got, err, tc.want)
		}
	}
	if _, zsh, _ := run(t, "completion", "zsh"); zsh != zshPrelude+script {
		t.Errorf("the zsh script is not bashcompinit and the bash script:\n%s", zsh)
	}
	if code, _, errs := run(t, "completion", "fish"); code != exitUsage || !strings.Contains(errs, `no completion for "fish" (bash, zsh)`) {
		t.Errorf("fish: exit %d, %s", code, errs)
	}
}

func quoteAll(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = "'" + w + "'"
	}
	return out
}
