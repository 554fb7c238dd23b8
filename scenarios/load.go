package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Library is the shipped scenario library; "tailsim run" with no path runs it.
//
//go:embed library
var Library embed.FS

// Ext is the scenario file extension.
const Ext = ".txtar"

// LoadLibrary parses every embedded scenario, in path order.
func LoadLibrary() ([]*Scenario, error) {
	return loadFS(Library, "library", "library")
}

func loadFS(fsys fs.FS, root, prefix string) ([]*Scenario, error) {
	var out []*Scenario
	var errs []error
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, Ext) {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sc, err := Parse(path.Join(prefix, strings.TrimPrefix(p, root+"/")), data)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		out = append(out, sc)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// LoadPaths parses the named files and every *.txtar below the named
// directories. All parse errors are returned together.
func LoadPaths(paths []string) ([]*Scenario, error) {
	var out []*Scenario
	var errs []error
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.IsDir() {
			scs, err := loadFS(os.DirFS(p), ".", filepath.ToSlash(p))
			out = append(out, scs...)
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc, err := Parse(p, data)
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
