package arm64

import (
	"fmt"
	"regexp"
	"strings"

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
	// AddrRegs are the registers its memory operand's address is made of
	// (base, index), as x-registers or sp.
	AddrRegs []string
	// Loads are the registers it loads from memory (ldr, ldp).
	Loads []string
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
	load := strings.HasPrefix(in.Op.String(), "LD")
	for _, a := range in.Args {
		switch a := a.(type) {
		case arm64asm.Reg:
			if n := xReg(a.String()); load && n != "xzr" && len(d.AddrRegs) == 0 {
				d.Loads = append(d.Loads, n)
			}
		case arm64asm.PCRel:
			d.Target, d.Branch = pc+uint64(int64(a)), true
		case arm64asm.MemImmediate:
			d.AddrRegs = append(d.AddrRegs, xReg(a.Base.String()))
		case arm64asm.MemExtend:
			d.AddrRegs = append(d.AddrRegs, xReg(a.Base.String()), xReg(a.Index.String()))
		}
	}
	if d.Branch {
		d.Text = pcRel.ReplaceAllString(d.Text, fmt.Sprintf("%#x", d.Target))
	}
	return d, nil
}

// xReg names the x-register a register name is part of: "x11" for W11.
func xReg(name string) string {
	name = strings.ToLower(name)
	if strings.HasPrefix(name, "w") {
		return "x" + name[1:]
	}
	return name
}
