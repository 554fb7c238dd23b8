package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the outputs in docs/learn.md")

// docs/learn.md is a guided tour whose every stop is a command and its
// output: each fenced block that starts with "$ tailsim" is run here, from
// the repository's root, and must print exactly what the block shows, so
// the tour cannot go stale. A command may be piped through "head -n N",
// "tail -n N" or "grep -F TEXT", as a reader would type it. -update
// rewrites the outputs.
func TestLearnTour(t *testing.T) {
	t.Chdir("../..")
	const path = "docs/learn.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(doc), "\n")
	var out []string
	blocks := 0
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if lines[i] != "```" || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "$ tailsim ") {
			continue
		}
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("%s:%d: unclosed block", path, i+1)
		}
		blocks++
		cmd := lines[i+1]
		got, err := runPipeline(t, strings.TrimPrefix(cmd, "$ "))
		if err != nil {
			t.Errorf("%s:%d: %s: %v", path, i+2, cmd, err)
		}
		want := lines[i+2 : end]
		if !*update && strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s:%d: %s prints\n%s\nnot\n%s", path, i+2, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		out = append(out, cmd)
		out = append(out, got...)
		i = end - 1
	}
	if blocks < 7 {
		t.Errorf("%s has %d command blocks; the tour has more stops", path, blocks)
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runPipeline runs "tailsim ARGS [| FILTER]..." in process.
func runPipeline(t *testing.T, cmdline string) ([]string, error) {
	stages := strings.Split(cmdline, " | ")
	args := strings.Fields(stages[0])[1:]
	var stdout, stderr bytes.Buffer
	code := tailsim(args, &stdout, &stderr)
	var err error
	if code > 1 || stderr.Len() > 0 && code != 0 {
		err = fmt.Errorf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	for _, st := range stages[1:] {
		f := strings.Fields(st)
		switch {
		case len(f) == 3 && f[0] == "head" && f[1] == "-n":
			n, _ := strconv.Atoi(f[2])
			lines = lines[:min(n, len(lines))]
		case len(f) == 3 && f[0] == "tail" && f[1] == "-n":
			n, _ := strconv.Atoi(f[2])
			lines = lines[max(0, len(lines)-n):]
		case len(f) >= 3 && f[0] == "grep" && f[1] == "-F":
			pat := strings.Trim(strings.Join(f[2:], " "), `"`)
			var kept []string
			for _, l := range lines {
				if strings.Contains(l, pat) {
					kept = append(kept, l)
				}
			}
			lines = kept
		default:
			t.Fatalf("unknown filter %q in %q", st, cmdline)
		}
	}
	return lines, err
}
