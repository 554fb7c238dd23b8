package arm64

import (
	"fmt"
	"regexp"

	"golang.org/x/arch/arm64/arm64asm"
)

// Inst is one decoded machine instruction.
type Inst struct {
	Len  int
	Text string
	// Target is the absolute address a PC-relative operand names (a
	// branch target, or adr's and a literal load's address), when Branch
	// is set.
	Target uint64
	Branch bool
}

// pcRel matches arm64asm's PC-relative operands (".+0x40", ".-0x8").
var pcRel = regexp.MustCompile(`\.[+-]0x[0-9a-f]+`)

// Decode decodes the instruction word at the start of code, which sits at
// pc, for listings and fault reports: arm64asm's GNU syntax, except that a
// PC-relative operand prints as the address it names, as x86's do, rather
// than as arm64asm's ".+offset".
func Decode(code []byte, pc uint64) (Inst, error) {
	if len(code) < InsnSize {
		return Inst{}, fmt.Errorf("arm64: %d bytes, want an instruction word", len(code))
	}
	in, err := arm64asm.Decode(code[:InsnSize])
	if err != nil {
		return Inst{}, err
	}
	d := Inst{Len: InsnSize, Text: arm64asm.GNUSyntax(in)}
	for _, a := range in.Args {
		if r, ok := a.(arm64asm.PCRel); ok {
			d.Target, d.Branch = pc+uint64(int64(r)), true
		}
	}
	if d.Branch {
		d.Text = pcRel.ReplaceAllString(d.Text, fmt.Sprintf("%#x", d.Target))
	}
	return d, nil
}
