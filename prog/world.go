package prog

import "fmt"

// World is everything a backend needs to run a scenario: the programs with
// their fix-ups, the prog arrays, and the structure layout. The runner owns
// the arrays' state and tells backends about every change as Effects.
type World struct {
	Layout Layout
	Arrays []*ProgArray
	Progs  []*Program
	Fixups map[*Program]*Fixup
	// Ctx is the initial ctx memory; nil means R1 = 0 (lib/test_bpf's NULL ctx).
	Ctx []byte
}

// CtxBase is where every backend puts ctx, so R1's value is the same in the
// reference model and in the emulators: a program may compute with it (store
// it, compare it, return it), and a different address would be a difference
// in results that no JIT caused.
const CtxBase = 0x1000_0000

// Array finds a prog array by name.
func (w *World) Array(name string) *ProgArray {
	for _, a := range w.Arrays {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Prog finds a program by name.
func (w *World) Prog(name string) *Program {
	for _, p := range w.Progs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Fix runs the verifier-like fix-up over every program.
func (w *World) Fix(opts FixupOptions) error {
	w.Fixups = map[*Program]*Fixup{}
	maps := map[string]*ProgArray{}
	for _, a := range w.Arrays {
		maps[a.Name] = a
	}
	for _, p := range w.Progs {
		fx, err := FixupProgram(p, maps, opts)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.Name, err)
		}
		w.Fixups[p] = fx
	}
	return nil
}

// SiteName names an instruction for traces: "prog", "prog/func" plus "+insn".
func SiteName(p *Program, fn, insn int) string {
	if fn == 0 {
		return fmt.Sprintf("%s+%d", p.Name, insn)
	}
	return fmt.Sprintf("%s/%s+%d", p.Name, p.Funcs[fn].Name, insn)
}
