package listing

import (
	"fmt"
	"slices"
	"strings"

	"tailsim/emu"
	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/jit/x86"
	"tailsim/prog"
)

// Arch is one ISA's entry in the listing's table, in the manner of Go's
// cmd/internal/objfile: how to get the arch's images for a world and how
// to decode one machine instruction. Adding an arch is adding an entry to
// Arches.
type Arch struct {
	Name string
	// Syntaxes are those the decoder can print; the first is the default.
	Syntaxes []string
	// TailEntry is the kernel's name for the tail-call landing offset.
	TailEntry string
	// DirectTailCalls is the JIT's capability (prog.Backend.DirectTailCalls).
	DirectTailCalls bool

	compile func(w *prog.World, v prog.Kernel, h prog.Config) ([]*emu.Loaded, error)
	decode  func(code []byte, pc uint64, syntax string) (decoded, bool)
	// pokes is the JIT's bpf_arch_poke_desc_update(), the text pokes that
	// move a direct tail call's slot from one landing address to another;
	// nil where the JIT emits no direct tail calls.
	pokes func(image uint64, s *jit.TailSite, oldAddr, newAddr uint64) []x86.TextPoke
}

// decoded is one decoded machine instruction.
type decoded struct {
	text string
	// plain is the text in the syntax the JIT's annotations use (Intel
	// for x86), so that annotations repeating it can be trimmed.
	plain  string
	n      int
	target uint64
	branch bool
}

// Arches are the arches with a JIT, the default first.
var Arches = []*Arch{
	{
		Name:            "x86_64",
		Syntaxes:        []string{"intel", "att"},
		TailEntry:       "X86_TAIL_CALL_OFFSET",
		DirectTailCalls: x86.DirectTailCalls,
		compile: func(w *prog.World, v prog.Kernel, h prog.Config) ([]*emu.Loaded, error) {
			return emu.CompileX86(w, v, h)
		},
		decode: decodeX86,
		pokes:  x86.PokeDescUpdate,
	},
	{
		Name:            "arm64",
		Syntaxes:        []string{"gnu"},
		TailEntry:       "4 * PROLOGUE_OFFSET",
		DirectTailCalls: arm64.DirectTailCalls,
		compile: func(w *prog.World, v prog.Kernel, h prog.Config) ([]*emu.Loaded, error) {
			return emu.CompileArm64(w, v, h&prog.BTI != 0, h&prog.PAC != 0)
		},
		decode: decodeArm64,
	},
}

// Syntax is the syntax name selects, the default for "", or an error
// naming the ones there are.
func (a *Arch) Syntax(name string) (string, error) {
	switch {
	case name == "":
		return a.Syntaxes[0], nil
	case slices.Contains(a.Syntaxes, name):
		return name, nil
	}
	return "", fmt.Errorf("unknown syntax %q (%s: %s)", name, a.Name, strings.Join(a.Syntaxes, ", "))
}

// ArchByName finds an entry of Arches, nil when there is none.
func ArchByName(name string) *Arch {
	for _, a := range Arches {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func decodeX86(code []byte, pc uint64, syntax string) (decoded, bool) {
	in, err := x86.Decode(code, pc, x86.Intel)
	if err != nil {
		return decoded{}, false
	}
	d := decoded{text: in.Text, plain: in.Text, n: in.Len, target: in.Target, branch: in.Branch}
	if syntax == "att" {
		att, _ := x86.Decode(code, pc, x86.ATT)
		d.text = att.Text
	}
	return d, true
}

func decodeArm64(code []byte, pc uint64, _ string) (decoded, bool) {
	in, err := arm64.Decode(code, pc)
	if err != nil {
		return decoded{}, false
	}
	return decoded{text: in.Text, plain: in.Text, n: in.Len, target: in.Target, branch: in.Branch}, true
}
