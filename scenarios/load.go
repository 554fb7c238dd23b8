package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Library is the shipped scenario library; "tailsim run" with no path runs it.
//
//go:embed library
var Library embed.FS

// Ext is the scenario file extension.
const Ext = ".txtar"

// LoadLibrary parses every embedded scenario, in path order.
func LoadLibrary() ([]*Scenario, error) {
	return loadFS(Library, "library", "library", func(p string) ([]byte, error) { return fs.ReadFile(Library, p) })
}

// loadFS parses every *.txtar below root in fsys, in path order, named
// prefix/its path below root and read by read. All errors are returned
// together.
func loadFS(fsys fs.FS, root, prefix string, read func(p string) ([]byte, error)) ([]*Scenario, error) {
	var out []*Scenario
	var errs []error
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, Ext) {
			return err
		}
		data, err := read(p)
		if err == nil {
			var sc *Scenario
			rel := func(name string) ([]byte, error) { return read(path.Join(path.Dir(p), name)) }
			if sc, err = ParseWith(path.Join(prefix, strings.TrimPrefix(p, root+"/")), data, rel); err == nil {
				out = append(out, sc)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// MaxFileSize bounds a scenario file, and all the files one command
// loads together (they are all parsed before any runs): 32 MiB holds a
// program of a million instructions (the kernel's limit, prog.MaxInsns),
// which takes about 1 GB to parse and analyse.
const MaxFileSize = 32 << 20

// readFileWithin reads a scenario file, which must be a regular file of at most
// MaxFileSize bytes. It opens without blocking and checks what it opened:
// reading a FIFO waits forever for a writer, and a device such as
// /dev/zero never ends.
//
// It also counts the bytes against *left, the room the command's files
// have left together.
func readFileWithin(name string, left *int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", name, fileKind(st.Mode()))
	}
	tooBig := fmt.Errorf("%s: larger than %d MiB, the most a scenario file may be", name, MaxFileSize>>20)
	if st.Size() > MaxFileSize {
		return nil, tooBig
	}
	if st.Size() > *left {
		return nil, fmt.Errorf("%s: the scenario files named come to more than %d MiB together, the most one command loads: run them in parts", name, MaxFileSize>>20)
	}
	*left -= st.Size()
	// Read no more than the limit even if the file grows meanwhile.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, tooBig
	}
	return data, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// loadDir parses every *.txtar below dir, each read by readFileWithin.
func loadDir(dir string, left *int64) ([]*Scenario, error) {
	return loadFS(os.DirFS(dir), ".", filepath.ToSlash(dir), func(p string) ([]byte, error) {
		return readFileWithin(filepath.Join(dir, filepath.FromSlash(p)), left)
	})
}

// LoadPaths parses the named files and every *.txtar below the named
// directories. All parse errors are returned together.
func LoadPaths(paths []string) ([]*Scenario, error) {
	var out []*Scenario
	var errs []error
	left := int64(MaxFileSize)
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.IsDir() {
			scs, err := loadDir(p, &left)
			out = append(out, scs...)
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		data, err := readFileWithin(p, &left)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc, err := ParseWith(p, data, func(name string) ([]byte, error) {
			return readFileWithin(filepath.Join(filepath.Dir(p), filepath.FromSlash(name)), &left)
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sc)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no %s files in %s", Ext, strings.Join(paths, ", ")))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, errors.Join(errs...)
}
