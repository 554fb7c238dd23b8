package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trace -html writes the page and prints only where it went and the
// verdict; a page that cannot be written is an error, and -html takes no
// -json.
func TestTraceHTML(t *testing.T) {
	sc := write(t, "s.txtar", scenario)
	page := filepath.Join(t.TempDir(), "r.html")
	code, out, errs := run(t, "trace", "-html", page, sc)
	if code != 0 || !strings.HasPrefix(out, "wrote "+page+": 1 run to step through") || strings.Contains(out, "=> enter") || errs != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), `<script id="data" type="application/json">`) {
		t.Errorf("page: %v, %.80q", err, b)
	}
	code, _, errs = run(t, "trace", "-html", filepath.Join(t.TempDir(), "no", "r.html"), sc)
	if code != 2 || !strings.Contains(errs, "no such file or directory") {
		t.Errorf("unwritable page: exit %d, stderr %q", code, errs)
	}
	if code, _, _ = run(t, "trace", "-html", page, "-json", sc); code != 2 {
		t.Errorf("-html -json: exit %d", code)
	}
}
