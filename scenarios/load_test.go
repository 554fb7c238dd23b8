package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Paths that are not regular files, or are too big, are refused before
// they are read: a FIFO used to block run and disasm forever, /dev/zero
// grew memory without limit.
func TestLoadPathsRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.txtar")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.txtar")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	good := filepath.Join(dir, "good.txtar")
	if err := os.WriteFile(good, []byte("t\n-- maps --\njt max_entries=1\n-- prog p --\n\tr0 = 0\n\texit\n-- run --\nrun p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{fifo, "fifo.txtar: not a regular file (a FIFO)"},
		{dir, "fifo.txtar: not a regular file (a FIFO)"}, // inside a directory argument
		{"/dev/zero", "/dev/zero: not a regular file (a character device)"},
		{big, "big.txtar: larger than 32 MiB"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := LoadPaths([]string{tc.path})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error with %q", tc.path, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still reading after 10 s", tc.path)
		}
	}
	// Files that fit one by one but not together are refused too.
	parts := t.TempDir()
	for _, n := range []string{"a.txtar", "b.txtar"} {
		f, err := os.Create(filepath.Join(parts, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(MaxFileSize/2 + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := LoadPaths([]string{parts}); err == nil || !strings.Contains(err.Error(), "b.txtar: the scenario files named come to more than 32 MiB together") {
		t.Errorf("two halves and a byte: %v", err)
	}
	// The directory's good file is still loaded beside the refused one.
	scs, _ := LoadPaths([]string{dir})
	if len(scs) != 1 || scs[0].File != filepath.ToSlash(good) {
		t.Errorf("loaded %v from %s", scs, dir)
	}
}
