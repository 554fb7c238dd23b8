//go:build browser

// The browser test runs the page in headless Chromium: "make
// browser-test" (go test -tags browser), which .ci/run runs after "make
// browser-deps" has installed Chromium; the plain "go test ./..." leaves
// it out.

package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailsim/emu"
	"tailsim/prog"
	"tailsim/scenarios"
)

// chromium finds headless Chromium (Debian's package, "make
// browser-deps"). Without it the test is skipped, except in CI (CI set),
// where .ci/run installs it: there a missing browser fails, so CI cannot
// pass without running the page.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and there is no chromium on PATH (make browser-deps installs it): %v", err)
		}
		t.Skip("no chromium on PATH (make browser-deps installs it)")
	}
	return path
}

// browse runs headless Chromium on url with extra flags and returns its
// standard output and the page's console lines from its log.
func browse(t *testing.T, bin, url string, flags ...string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
		"--window-size=1400,1000", "--virtual-time-budget=5000"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	// Chromium logs the page's console (console.log, console.error,
	// uncaught exceptions) as CONSOLE lines; a good page logs nothing.
	var console []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Uncaught") {
			console = append(console, l)
		}
	}
	return stdout.String(), console
}

// seen is what the page showed after a key press (report.js selftest).
type seen struct {
	Step        int    `json:"step"`
	Row         string `json:"row"`
	Selected    string `json:"selected"`
	Count       string `json:"count"`
	Highlighted int    `json:"highlighted"`
	CounterText string `json:"counterText"`
}

type selftest struct {
	Steps   int             `json:"steps"`
	Calls   int             `json:"calls"`
	Forward []seen          `json:"forward"`
	Keys    map[string]seen `json:"keys"`
	LastRun struct {
		seen
		Run int `json:"run"`
	} `json:"lastRun"`
	Errors []string `json:"errors"`
}

// The page works in a real browser: no console errors; each → moves the
// highlighted instruction; the tail call's slot is selected in the
// picture from its first instruction, and the counter reads 1 from the
// instruction that increments it; n, p, Home and End go where they say;
// a screenshot in the middle of the tail call is a picture, not a blank.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	start := time.Now()
	// Two reports: the test steps through the first and switches to the
	// other's run with the selector.
	// The first is built for the distro preset: its tail calls and returns
	// go through the thunks, instructions outside every listed function.
	sc, rep := stepped(t, tailCall2, emu.NewX86(prog.Configs[1].Config), prog.Linux618)
	_, patched := stepped(t, tailCall2, emu.NewArm64(0), prog.Linux618Series)
	d, err := build(sc, Options{}, []*scenarios.Report{rep, patched})
	if err != nil {
		t.Fatal(err)
	}
	r := d.Runs[0]
	file := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, sc, Options{}, rep, patched); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	dom, console := browse(t, bin, "file://"+file+"#selftest", "--dump-dom")
	if len(console) > 0 {
		t.Errorf("console:\n%s", strings.Join(console, "\n"))
	}
	m := regexp.MustCompile(`(?s)<pre id="selftest"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom)
	if m == nil || m[1] == "" {
		t.Fatalf("the self-test wrote nothing; the page:\n%.2000s", dom)
	}
	var got selftest
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
		t.Fatalf("%v: %.500s", err, m[1])
	}
	if len(got.Errors) > 0 {
		t.Errorf("errors in the page: %q", got.Errors)
	}
	if got.Steps != len(r.Steps) || got.Calls != 1 || len(got.Forward) != len(r.Steps) {
		t.Fatalf("the page saw %d steps, %d calls, %d presses; the run has %d steps", got.Steps, got.Calls, len(got.Forward), len(r.Steps))
	}
	call := r.Calls[0]
	one := counterWrite(r, "0x1")
	thunks := 0
	for k, s := range got.Forward {
		// A thunk's instruction is in no listed function: no row is lit.
		want := "row-" + strconv.Itoa(r.Steps[k].Row)
		if r.Steps[k].Row < 0 {
			want = ""
			if strings.HasPrefix(r.Steps[k].Place, "thunk ") {
				thunks++
			}
		}
		if s.Step != k || s.Row != want {
			t.Errorf("after %d presses of →: step %d, row %q; want step %d, %q", k, s.Step, s.Row, k, want)
		}
		if k > 0 && s.Row != "" && s.Row == got.Forward[k-1].Row {
			t.Errorf("step %d: → left the highlight on %s", k, s.Row)
		}
		wantSel := ""
		if k >= call.First {
			wantSel = "progs[0]"
		}
		if s.Selected != wantSel {
			t.Errorf("step %d: selected slot %q, want %q (the call starts at step %d)", k, s.Selected, wantSel, call.First)
		}
		if k >= one && (s.Count != "1" || s.CounterText != "tail_call_cnt = 1") || k < one && s.Count == "1" {
			t.Errorf("step %d: counter %q (%q); it becomes 1 at step %d", k, s.Count, s.CounterText, one)
		}
		cells := map[int]bool{}
		for _, tc := range r.Steps[k].Touch {
			cells[tc.Cell] = true
		}
		if s.Highlighted != len(cells) {
			t.Errorf("step %d: %d cells highlighted, the step touches %d", k, s.Highlighted, len(cells))
		}
	}
	if thunks != 2 {
		t.Errorf("%d steps in a thunk, want 2 (the tail call's retpoline, the return thunk)", thunks)
	}
	last := len(r.Steps) - 1
	for key, want := range map[string]int{"back": last - 1, "home": 0, "next": call.First, "end": last, "prev": call.First} {
		if got.Keys[key].Step != want {
			t.Errorf("%s: step %d, want %d", key, got.Keys[key].Step, want)
		}
	}

	lr, other := got.LastRun, d.Runs[len(d.Runs)-1]
	if lr.Run != len(d.Runs)-1 || lr.Step != other.Calls[0].First || lr.Row != "row-"+strconv.Itoa(other.Steps[lr.Step].Row) || lr.Selected != "progs[0]" {
		t.Errorf("n in the last run (%s): %+v, want step %d", other.Label, lr, other.Calls[0].First)
	}

	// A screenshot at the count++ of the tail call.
	shot := filepath.Join(t.TempDir(), "step.png")
	_, console = browse(t, bin, "file://"+file+"#step="+strconv.Itoa(one+1), "--screenshot="+shot)
	if len(console) > 0 {
		t.Errorf("console:\n%s", strings.Join(console, "\n"))
	}
	checkPicture(t, shot)
	if keep := os.Getenv("TAILSIM_SCREENSHOT"); keep != "" {
		if b, err := os.ReadFile(shot); err == nil {
			os.WriteFile(keep, b, 0o644)
		}
	}
	t.Logf("browser test: %s", time.Since(start).Round(time.Millisecond))
}

// checkPicture fails unless the PNG is a page: many colours, much of it
// not white.
func checkPicture(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]bool{}
	inked := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 240 || g>>8 < 240 || bl>>8 < 240 {
				inked++
			}
		}
	}
	share := float64(inked) / float64(b.Dx()*b.Dy())
	if b.Dx() < 1000 || len(colours) < 100 || share < 0.1 {
		t.Errorf("screenshot %dx%d: %d colours, %.0f%% not white: blank?", b.Dx(), b.Dy(), len(colours), 100*share)
	}
	t.Logf("screenshot %dx%d: %d colours, %.0f%% not white", b.Dx(), b.Dy(), len(colours), 100*share)
}
