package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the sample outputs in README.md and docs/*.md")

// The documents' samples are real: every fenced block that starts with
// "$ " holds commands ("$ tailsim ARGS" or "$ bin/tailsim ARGS", maybe
// piped through "head -n N", "tail -n N" or "grep -F TEXT" as a reader
// would type it, and "$ echo $?"), each followed by what it prints. Each
// is run here, in process, from the repository's root, and must print
// exactly that, so no sample can go stale (the README once showed four
// rows, no arm64 and a stale bpf_func). Durations are the only text
// compared loosely. A block with any other command (make, diff) must say
// why it is not run on the line above it: <!-- not run: REASON -->.
// -update rewrites the outputs.
func TestDocSamples(t *testing.T) {
	t.Chdir("../..")
	docs, _ := filepath.Glob("docs/*.md")
	docs = append([]string{"README.md"}, docs...)
	ran, skipped := 0, 0
	for _, path := range docs {
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(doc), "\n")
		checkFences(t, path, lines)
		var out []string
		for i := 0; i < len(lines); i++ {
			out = append(out, lines[i])
			if lines[i] != "```" || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "$ ") {
				continue
			}
			end := i + 1
			for end < len(lines) && lines[end] != "```" {
				end++
			}
			if end == len(lines) {
				t.Fatalf("%s:%d: unclosed block", path, i+1)
			}
			block := lines[i+1 : end]
			if i > 0 && strings.HasPrefix(lines[i-1], "<!-- not run: ") {
				skipped++
				continue
			}
			got, ok := runBlock(t, path, i+2, block)
			if !ok {
				continue
			}
			ran++
			if !*update && loose(strings.Join(block, "\n")) != loose(strings.Join(got, "\n")) {
				t.Errorf("%s:%d: the block prints\n%s\nnot\n%s", path, i+2, strings.Join(got, "\n"), strings.Join(block, "\n"))
			}
			out = append(out, got...)
			i = end - 1
		}
		if *update {
			if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ran < 15 {
		t.Errorf("%d sample blocks run (%d not run); the documents have more", ran, skipped)
	}
}

// synopsis is a command's synopsis as a document quotes it.
var synopsis = regexp.MustCompile("^`?(tailsim ([a-z]+) \\[[^`]*)`?$")

// checkFences finds what TestDocSamples would otherwise pass over: a
// command sample in a fence it does not read (an info string, an
// indent, a first line that is not the command), and a synopsis that is
// not its command's usage line.
func checkFences(t *testing.T, path string, lines []string) {
	inFence, fenceAt := false, 0
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") {
			if !inFence {
				fenceAt = i
			}
			inFence = !inFence
			continue
		}
		if inFence && (strings.HasPrefix(trimmed, "$ tailsim ") || strings.HasPrefix(trimmed, "$ bin/tailsim ")) {
			readable := lines[fenceAt] == "```" && strings.HasPrefix(lines[fenceAt+1], "$ ")
			if !readable {
				t.Errorf("%s:%d: a command sample in a block TestDocSamples does not read (it reads a bare ``` fence whose first line is a command)", path, i+1)
			}
		}
		if m := synopsis.FindStringSubmatch(trimmed); m != nil {
			if c := commands[m[2]]; c != nil && m[1] != firstLine(c.usage) {
				t.Errorf("%s:%d: the synopsis\n\t%s\nis not the usage line\n\t%s", path, i+1, m[1], firstLine(c.usage))
			}
		}
	}
}

// runBlock runs a block's commands and returns each command line with
// what it printed. A command it cannot run is an error unless the block
// is marked as not run.
func runBlock(t *testing.T, path string, line int, block []string) ([]string, bool) {
	var got []string
	code := 0
	for k, l := range block {
		if !strings.HasPrefix(l, "$ ") {
			continue
		}
		cmd := strings.TrimPrefix(l, "$ ")
		got = append(got, l)
		switch {
		case cmd == "echo $?":
			got = append(got, strconv.Itoa(code))
		case strings.HasPrefix(cmd, "tailsim ") || strings.HasPrefix(cmd, "bin/tailsim "):
			var out []string
			var err error
			out, code, err = runPipeline(t, strings.TrimPrefix(cmd, "bin/"))
			if err != nil {
				t.Errorf("%s:%d: %s: %v", path, line+k, cmd, err)
			}
			got = append(got, out...)
		default:
			t.Errorf("%s:%d: %q cannot be run here: mark the block <!-- not run: REASON -->", path, line+k, cmd)
			return nil, false
		}
	}
	return got, true
}

// durations matches what the samples may print differently on each run.
var durations = regexp.MustCompile(`\b[0-9]+(\.[0-9]+)?(ns|µs|ms|s)\b`)

func loose(s string) string { return durations.ReplaceAllString(s, "T") }

// runPipeline runs "tailsim ARGS [| FILTER]..." in process. What the
// command writes to stderr is shown after its stdout, as a terminal
// would; exit status 2 is an error unless stderr says why (a sample of
// an error message).
func runPipeline(t *testing.T, cmdline string) ([]string, int, error) {
	stages := strings.Split(cmdline, " | ")
	args := strings.Fields(stages[0])[1:]
	var stdout, stderr bytes.Buffer
	code := tailsim(args, &stdout, &stderr)
	var err error
	if code > 2 || code == 2 && stderr.Len() == 0 {
		err = fmt.Errorf("exit %d: %s", code, stderr.String())
	}
	stdout.Write(stderr.Bytes())
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
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	return lines, code, err
}

// The repository stands alone: no file points a reader to notes outside
// it (the facts it relies on are in docs/kernel.md and docs/addresses.md,
// with the kernel sources they come from).
func TestNoPointersOutside(t *testing.T) {
	t.Chdir("../..")
	outside := regexp.MustCompile(`\.\./shared|/work/shared|REFERENCE\.md`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == ".git" || path == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !regexp.MustCompile(`\.(go|md|txtar|txt)$|^Makefile$|^\.ci/`).MatchString(path) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(string(data), "\n") {
			if outside.MatchString(l) && path != "cmd/tailsim/docs_test.go" {
				t.Errorf("%s:%d points outside the repository: %s", path, i+1, strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
