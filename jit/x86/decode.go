package x86

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Syntax is an assembly syntax Decode prints in.
type Syntax uint8

const (
	Intel Syntax = iota // the syntax of the JIT's annotations
	ATT                 // AT&T, as GNU objdump prints it
)

// Inst is one decoded machine instruction.
type Inst struct {
	Len  int
	Text string
	// Target is the absolute address a relative branch or call goes to,
	// when Branch is set.
	Target uint64
	Branch bool
	// AddrRegs are the registers its memory operand's address is made of
	// (base, index), by their 64-bit names: what a tracer needs to tell a
	// load through a pointer another load returned.
	AddrRegs []string
	// Loads are the registers it loads from memory (mov, pop).
	Loads []string
}

// Decode decodes the instruction at the start of code, which sits at pc,
// for listings and fault reports. It is x86asm's decoder with two
// corrections for code this JIT emits: it knows endbr64 (x86asm reads f3
// as a lone prefix), and it prints a disp32 sign-extended, as the CPU uses
// it, where x86asm keeps it zero-extended ([rbp+0xfffffff0]).
func Decode(code []byte, pc uint64, syntax Syntax) (Inst, error) {
	if bytes.HasPrefix(code, endbr64) {
		return Inst{Len: len(endbr64), Text: "endbr64"}, nil
	}
	in, err := x86asm.Decode(code, 64)
	if err != nil {
		return Inst{}, err
	}
	if in.Len == 0 || in.Len > len(code) {
		return Inst{}, fmt.Errorf("x86: %d-byte instruction in %d bytes", in.Len, len(code))
	}
	for i, a := range in.Args {
		if m, ok := a.(x86asm.Mem); ok && m.Disp >= 1<<31 && m.Disp == int64(uint32(m.Disp)) {
			m.Disp = int64(int32(m.Disp))
			in.Args[i] = m
		}
	}
	d := Inst{Len: in.Len}
	if syntax == ATT {
		d.Text = x86asm.GNUSyntax(in, pc, nil)
	} else {
		d.Text = x86asm.IntelSyntax(in, pc, nil)
	}
	for _, a := range in.Args {
		switch a := a.(type) {
		case x86asm.Rel:
			d.Target, d.Branch = pc+uint64(in.Len)+uint64(int64(a)), true
		case x86asm.Mem:
			for _, r := range []x86asm.Reg{a.Base, a.Index} {
				if r != 0 {
					d.AddrRegs = append(d.AddrRegs, reg64(r))
				}
			}
		}
	}
	isMem := func(a x86asm.Arg) bool { _, m := a.(x86asm.Mem); return m }
	if r, ok := in.Args[0].(x86asm.Reg); ok && in.Op != x86asm.CMP && in.Op != x86asm.TEST && in.Op != x86asm.LEA {
		if in.Op == x86asm.POP || slices.ContainsFunc(in.Args[1:], isMem) {
			d.Loads = []string{reg64(r)}
		}
	}
	return d, nil
}

// reg64 names the 64-bit register r is part of: "rdx" for edx, "r8" for
// r8d.
func reg64(r x86asm.Reg) string {
	switch {
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return strings.ToLower((r - x86asm.EAX + x86asm.RAX).String())
	}
	return strings.ToLower(r.String())
}
