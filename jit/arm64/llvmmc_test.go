package arm64_test

// The llvm-mc oracle (docs/kernel.md §11), independent of this package and of
// arm64asm: every golden instruction's text assembles, with llvm-mc, to
// the golden bytes (so the hand-derived words are checked, and the
// kernel ones (docs/kernel.md) agree with their text); and every word of the forms
// images disassembles as a valid instruction. Skipped, with a message,
// when llvm-mc is not installed.

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func llvmMC(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"llvm-mc", "llvm-mc-14"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("llvm-mc (or llvm-mc-14) is not on PATH: skipping the llvm-mc oracle (Debian: apt-get install llvm)")
	return ""
}

func runMC(t *testing.T, mc, input string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(mc, append([]string{"-triple=aarch64", "-mattr=+bti,+pauth"}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("llvm-mc %v: %v\n%s", args, err, e.String())
	}
	return o.String(), e.String()
}

var mcEncoding = regexp.MustCompile(`encoding: \[0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2}),0x([0-9a-f]{2})\]`)

// TestLLVMMCGolden assembles every golden instruction's text.
func TestLLVMMCGolden(t *testing.T) {
	mc := llvmMC(t)
	seen := map[gi]bool{}
	var all []gi
	for _, gc := range goldenCases() {
		for _, p := range gc.parts {
			for _, x := range p.want {
				if !seen[x] {
					seen[x] = true
					all = append(all, x)
				}
			}
		}
	}
	var in strings.Builder
	for _, x := range all {
		in.WriteString(x.asm + "\n")
	}
	out, stderr := runMC(t, mc, in.String(), "-show-encoding")
	if stderr != "" {
		t.Fatalf("llvm-mc: %s", stderr)
	}
	enc := mcEncoding.FindAllStringSubmatch(out, -1)
	if len(enc) != len(all) {
		t.Fatalf("llvm-mc gave %d encodings for %d instructions:\n%s", len(enc), len(all), out)
	}
	for k, x := range all {
		got := strings.Join(enc[k][1:], " ")
		if got != x.hex {
			t.Errorf("%q: golden %s, llvm-mc assembles %s", x.asm, x.hex, got)
		}
	}
	t.Logf("%d distinct golden instructions assembled", len(all))
}

// TestLLVMMCForms disassembles every word of the forms images.
func TestLLVMMCForms(t *testing.T) {
	mc := llvmMC(t)
	var in strings.Builder
	words := 0
	for _, ni := range formsImages(t) {
		c := ni.img.Code
		for off := 0; off < len(c); off += 4 {
			fmt.Fprintf(&in, "0x%02x 0x%02x 0x%02x 0x%02x\n", c[off], c[off+1], c[off+2], c[off+3])
			words++
		}
	}
	out, stderr := runMC(t, mc, in.String(), "--disassemble")
	if stderr != "" {
		lines := strings.Split(stderr, "\n")
		t.Errorf("llvm-mc warnings (%d lines), first: %s", len(lines), strings.Join(lines[:min(6, len(lines))], "\n"))
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(l); f != "" && !strings.HasPrefix(f, ".text") {
			n++
		}
	}
	if n != words {
		t.Errorf("llvm-mc disassembled %d instructions from %d words", n, words)
	}
	t.Logf("%d words disassembled", words)
}
