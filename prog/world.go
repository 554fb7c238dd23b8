package prog

import (
	"fmt"
	"slices"
	"strings"
)

// World is everything a backend needs to run a scenario: the programs with
// their fix-ups, the prog arrays, and the structure layout. The runner owns
// the arrays' state and tells backends about every change as Effects.
type World struct {
	Layout Layout
	Arrays []*ProgArray
	// Maps are the array maps (global data among them), whose values the
	// runs change: each backend keeps its own copy from the load on.
	Maps   []*ArrayMap
	Progs  []*Program
	Fixups map[*Program]*Fixup
	// Ctx is the initial ctx memory; nil means R1 = 0 (lib/test_bpf's NULL ctx).
	Ctx []byte
}

// CtxBase is where every backend puts ctx, so R1's value is the same in the
// reference model and in the emulators: a program may compute with it (store
// it, compare it, return it), and a different address would be a difference
// in results that no JIT caused. It is a kernel address on both arches
// (x86-64's direct map; inside arm64's vmalloc area, where a vmalloc'd
// buffer would be) with its low 32 bits zero, so a ctx pointer truncated
// to 32 bits is NULL.
const CtxBase = 0xffff_8881_0000_0000

// Array finds a prog array by name.
func (w *World) Array(name string) *ProgArray {
	for _, a := range w.Arrays {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// ArrayMap finds an array map by name.
func (w *World) ArrayMap(name string) *ArrayMap {
	for _, m := range w.Maps {
		if m.Name == name {
			return m
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
	arrays := map[string]*ArrayMap{}
	for _, m := range w.Maps {
		arrays[m.Name] = m
	}
	if len(w.Maps) > MaxArrayMaps {
		return fmt.Errorf("%d array maps: tailsim keeps at most %d", len(w.Maps), MaxArrayMaps)
	}
	if opts.Unprivileged && !opts.NoVerifier {
		if err := w.checkUnprivileged(); err != nil {
			return err
		}
	}
	for _, p := range w.Progs {
		// The verifier checks the program as written, then rewrites it
		// (do_misc_fixups()); the sites are those of the rewritten one.
		fx, err := FixupProgramWith(p, maps, arrays, opts)
		if err != nil {
			return fmt.Errorf("program %s: %w", p.Name, err)
		}
		if !opts.NoVerifier {
			changed, err := rewriteProgram(p, fx, w.Layout, opts)
			if err != nil {
				return fmt.Errorf("program %s: %w", p.Name, err)
			}
			if changed {
				if fx, err = FixupProgramWith(p, maps, arrays, opts); err != nil {
					return fmt.Errorf("program %s: %w", p.Name, err)
				}
			}
		}
		if opts.Unprivileged && !opts.NoVerifier && len(fx.Sites) > 0 {
			// The sites move once the masks are in: analyse again.
			if err := unprivTailCalls(p, fx); err != nil {
				return fmt.Errorf("program %s: %w", p.Name, err)
			}
			if fx, err = FixupProgramWith(p, maps, arrays, opts); err != nil {
				return fmt.Errorf("program %s: %w", p.Name, err)
			}
		}
		w.Fixups[p] = fx
		if opts.NoVerifier {
			continue
		}
		// Loading a program checks it against every prog array it uses
		// (check_map_prog_compatibility, bpf_prog_map_compatible): the
		// first program checked fixes the array's owner type, and a
		// program of another type is refused.
		for _, m := range fx.UsedMaps {
			a, ok := m.(*ProgArray)
			if ok && !a.Compatible(p) {
				return &PosError{Line: p.Line, Msg: fmt.Sprintf("program %s of type %s uses prog array %s, which holds programs of type %s: bpf_prog_map_compatible() refuses it (EINVAL)", p.Name, p.Type, a.Name, a.owner)}
			}
		}
	}
	return nil
}

// Loc is where a BPF instruction sits, and the one name tailsim gives it in
// traces, listings, fault and violation reports and errors: the program,
// the function, the instruction's slot index in that function (a 64-bit
// load fills two slots, so a slot index is what a struct bpf_insn dump or
// "tailsim disasm" counts), and the scenario line it was written on.
type Loc struct {
	Prog string
	Func string // "" for the program's main function
	Slot int
	Line int // 0 when the program was built in code
}

// String is "prog+slot" or "prog/func+slot", then " (line N)".
func (l Loc) String() string {
	var b strings.Builder
	b.WriteString(l.Prog)
	if l.Func != "" {
		b.WriteString("/")
		b.WriteString(l.Func)
	}
	fmt.Fprintf(&b, "+%d", l.Slot)
	if l.Line != 0 {
		fmt.Fprintf(&b, " (line %d)", l.Line)
	}
	return b.String()
}

// IsZero reports whether l names no instruction.
func (l Loc) IsZero() bool { return l.Prog == "" }

// Loc locates instruction insn (an index into Funcs[fn].Insns).
func (p *Program) Loc(fn, insn int) Loc {
	f := p.Funcs[fn]
	l := Loc{Prog: p.Name, Line: f.Insns[insn].Line}
	if fn != 0 {
		l.Func = f.Name
	}
	for _, ins := range f.Insns[:insn] {
		l.Slot += ins.Slots()
	}
	return l
}

// unprivTypes are the program types bpf_prog_load() lets a user without
// CAP_BPF load.
var unprivTypes = []string{"socket_filter", "cgroup_skb"}

// checkUnprivileged refuses what an unprivileged load refuses before any
// tail call matters: another program type (bpf_prog_load(): EPERM), a
// bpf2bpf call (the verifier: "loading/calling other bpf or kernel
// functions are allowed for CAP_BPF and CAP_SYS_ADMIN"), a loop
// (check_cfg(): "back-edge from insn"), and a prog array past 2^31
// entries (array_map_alloc() rounds its size up to a power of two,
// which overflows: E2BIG).
func (w *World) checkUnprivileged() error {
	for _, a := range w.Arrays {
		if a.MaxEntries > 1<<31 {
			return &PosError{Line: a.Line, Msg: fmt.Sprintf("prog array %s: max_entries %d: an unprivileged array rounds its size up to a power of two, past 2^32 (E2BIG)", a.Name, a.MaxEntries)}
		}
	}
	for _, p := range w.Progs {
		if !slices.Contains(unprivTypes, p.Type) {
			return &PosError{Line: p.Line, Msg: fmt.Sprintf("program %s: type %s needs CAP_BPF; an unprivileged load takes %s (EPERM)", p.Name, p.Type, strings.Join(unprivTypes, " or "))}
		}
		for _, f := range p.Funcs {
			pos, _ := f.Slots()
			for i, ins := range f.Insns {
				switch {
				case ins.IsSubprogCall():
					return &PosError{Line: ins.Line, Msg: "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN (EPERM)"}
				case ins.OpCode.HasJumpOffset() && ins.Off < 0:
					return &PosError{Line: ins.Line, Msg: fmt.Sprintf("back-edge from insn %d to %d (an unprivileged program may not loop)", pos[i], pos[i]+1+int(ins.Off))}
				}
			}
		}
	}
	return nil
}
