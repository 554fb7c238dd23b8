package scenarios

import (
	"os"
	"strings"
	"testing"

	"tailsim/prog"
)

func TestLibrary(t *testing.T) {
	scs, err := LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) < 20 {
		t.Errorf("library has %d scenarios, want at least 20", len(scs))
	}
	for _, sc := range scs {
		if sc.Comment == "" {
			t.Errorf("%s: no comment saying what it teaches", sc.File)
		}
		for _, v := range prog.Kernels {
			for _, c := range sc.Combos([]Backend{Ref{}}, []prog.Kernel{v}) {
				rep := Run(sc, c.B, c.V, Options{})
				if rep.Status != Pass {
					t.Errorf("%s [%s/%s]: %s\n\t%v", sc.File, c.B.Name(), v, rep.Status, rep.Failures)
				}
			}
		}
	}
}

// The format document's worked example must run, and the copy in the
// document must be the file that runs.
func TestDocsExample(t *testing.T) {
	data, err := os.ReadFile("../docs/example.txtar")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/scenario-format.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(data)) {
		t.Error("docs/scenario-format.md does not contain docs/example.txtar verbatim")
	}
	sc, err := Parse("docs/example.txtar", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range prog.Kernels {
		if rep := Run(sc, Ref{}, v, Options{}); rep.Status != Pass {
			t.Errorf("%s: %s %q", v, rep.Status, rep.Failures)
		}
	}
}
