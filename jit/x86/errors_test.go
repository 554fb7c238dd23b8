package x86_test

import (
	"strings"
	"testing"

	"tailsim/jit/x86"
	"tailsim/prog"
	"tailsim/prog/asm"
)

type noHelpers struct{}

func (noHelpers) Helper(int32) (uint64, bool) { return 0, false }
func (noHelpers) Func(int) uint64             { return 0x0100_0000 }
func (noHelpers) Map(string) uint64           { return 0x10_0000_0000 }
func (noHelpers) Thunk(string) (uint64, bool) { return 0, false }

// A JIT error names the BPF instruction as traces and listings do:
// program+slot (line).
func TestErrorsNameTheInstruction(t *testing.T) {
	insns, err := asm.Parse("r1 = 1 ll\ncall 99\nr0 = 0\nexit", 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prog.NewProgram("entry", "", &prog.Function{Name: "entry", Insns: insns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = x86.Compile(p, 0, &prog.Fixup{}, 0x0100_0000, noHelpers{}, x86.Options{Layout: prog.DefaultLayout})
	if err == nil || !strings.HasPrefix(err.Error(), "x86: entry+2 (line 2): ") {
		t.Errorf("error %v, want it to name entry+2 (line 2)", err)
	}
}
