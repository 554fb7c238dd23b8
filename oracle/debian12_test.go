package oracle

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

// The images a real Debian 12 kernel JITed (testdata/debian12-*.images,
// read back from the guest) against tailsim's v6.1 JIT for the same
// programs: every byte equal but the masked placement.
func TestDebian12Images(t *testing.T) {
	data, err := os.ReadFile("testdata/debian12.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Parse("testdata/debian12.txtar", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"x86_64", "arm64"} {
		f, err := os.Open(filepath.Join("testdata", "debian12-"+arch+".images"))
		if err != nil {
			t.Fatal(err)
		}
		kernel, err := ReadImages(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := Build(sc, arch, prog.Linux61, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		jited, err := Build(sc, arch, prog.Linux61, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		var compared []string
		var maps Binding
		for _, kp := range kernel.Progs {
			name, before := strings.CutSuffix(kp.Prog, "@before")
			ours := loaded
			if before {
				ours = jited // the image before its slot was filled
			}
			tp := ours.Prog(name)
			if tp == nil {
				continue
			}
			compared = append(compared, kp.Prog)
			if len(tp.Funcs) != len(kp.Funcs) {
				t.Errorf("%s %s: %d functions, tailsim %d", arch, kp.Prog, len(kp.Funcs), len(tp.Funcs))
				continue
			}
			for fn := range kp.Funcs {
				kf, tf := kp.Funcs[fn], tp.Funcs[fn]
				kt, err := Mask(arch, kf.Addr, kf.Code, kernel.Resolve)
				if err != nil {
					t.Fatal(err)
				}
				tt, err := Mask(arch, tf.Addr, tf.Code, ours.Resolve)
				if err != nil {
					t.Fatal(err)
				}
				if d := Compare(kt, tt, &maps); !d.Equal() {
					var b strings.Builder
					d.Write(&b)
					t.Errorf("%s %s#%d differs from the kernel's image:\n%s", arch, kp.Prog, fn, b.String())
				}
			}
		}
		// Nothing skipped silently: the loops are the programs outside
		// the subset (their atomic add), everything else is compared.
		want := []string{"entry_const", "entry_const0", "entry_const@before", "entry_ind", "leaf", "sub_tc"}
		slices.Sort(compared)
		if !slices.Equal(compared, want) {
			t.Errorf("%s: compared %v, want %v", arch, compared, want)
		}
	}
}
