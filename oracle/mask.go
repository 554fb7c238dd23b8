// Package oracle compares tailsim with a real kernel: the machine code a
// kernel's JIT gave a program, read back from the kernel, beside the code
// tailsim's JIT gives the same program for that kernel version and build.
//
// Two images of one program differ where they depend on placement: the
// addresses of maps and programs loaded into registers, and the rel32 of
// calls and jumps to other functions and to kernel thunks. Mask reduces an
// image to tokens in which only those are masked, so that every other
// byte must be equal; a masked address still carries the symbol it names
// when the side knows it, and two known symbols must agree.
package oracle

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"tailsim/jit/arm64"
	"tailsim/jit/x86"
)

// Token is one instruction of an image, or one placement-dependent unit
// (arm64's movz/movn + movk run that builds an address).
type Token struct {
	Off, Len int
	// Text is what must be equal: the bytes, or for a masked unit the
	// bytes that do not depend on placement and a marker.
	Text string
	// Sym names the address a masked unit holds or reaches, "" when the
	// side does not know it.
	Sym string
	// Addr is that address, for a masked unit; what pairs a kernel's
	// map with tailsim's (Binding).
	Addr uint64
	Asm  string // the disassembly, for listings
}

// Resolver names a placement-dependent address: "leaf+0xb", "sub_tc#1",
// "__x86_indirect_thunk_rcx", "map jt"; "" when unknown.
type Resolver func(addr uint64) string

// kernelAddr reports a value in the kernel's half of the address space as
// both arches lay it out (x86-64's direct map from 0xff11... with 5-level
// paging, 0xffff888... with 4; arm64's linear map and vmalloc from
// 0xffff...): a 64-bit constant there is taken for an address. A program
// constant that large is masked too, which only makes the comparison
// more lenient.
func kernelAddr(v uint64) bool { return v>>56 == 0xff }

// Mask tokenizes the code of one function loaded at addr.
func Mask(arch string, addr uint64, code []byte, resolve Resolver) ([]Token, error) {
	var toks []Token
	var targets []int // per token: the offset a branch inside the image goes to, or -1
	var err error
	switch arch {
	case "x86_64":
		toks, targets, err = maskX86(addr, code, resolve)
	case "arm64":
		toks, targets, err = maskArm64(addr, code, resolve)
	default:
		return nil, fmt.Errorf("oracle: unknown arch %q", arch)
	}
	if err != nil {
		return nil, err
	}
	// A branch inside the image names its target by token, not by
	// displacement: a masked unit of another length in between (arm64's
	// address loads) moves it without changing what it does.
	index := map[int]int{}
	for k, t := range toks {
		index[t.Off] = k
	}
	for k, to := range targets {
		if to < 0 {
			continue
		}
		if n, ok := index[to]; ok {
			toks[k].Text += fmt.Sprintf(" ->#%d", n)
		} else {
			toks[k].Text += fmt.Sprintf(" ->+%#x", to)
		}
	}
	return toks, nil
}

func maskX86(addr uint64, code []byte, resolve Resolver) ([]Token, []int, error) {
	var toks []Token
	var targets []int
	for off := 0; off < len(code); {
		in, err := x86.Decode(code[off:], addr+uint64(off), x86.Intel)
		if err != nil {
			return nil, nil, fmt.Errorf("oracle: x86_64 +%#x: %v", off, err)
		}
		b := code[off : off+in.Len]
		t := Token{Off: off, Len: in.Len, Text: hex.EncodeToString(b), Asm: in.Text}
		to := -1
		switch {
		case in.Len == 10 && b[0]&0xf8 == 0x48 && b[1]&0xf8 == 0xb8 && kernelAddr(binary.LittleEndian.Uint64(b[2:])):
			// movabs reg, imm64: a map's address (or a program's).
			v := binary.LittleEndian.Uint64(b[2:])
			t.Text, t.Sym, t.Addr = hex.EncodeToString(b[:2])+" <addr>", resolve(v), v
		case in.Branch && (in.Target < addr || in.Target >= addr+uint64(len(code))) && in.Len >= 5:
			// A call or jump to another function or a thunk: the rel32
			// depends on where both are.
			t.Text, t.Sym, t.Addr = hex.EncodeToString(b[:in.Len-4])+" <rel32>", resolve(in.Target), in.Target
		case in.Branch && (in.Target < addr || in.Target >= addr+uint64(len(code))):
			// A short branch out of the function: no JIT emits one, so
			// it is compared as it is (a difference, if the other side
			// has none).
		case in.Branch:
			// Inside the image: the opcode (short or near) and the
			// target, by token.
			n := 1
			if b[0] == 0x0f {
				n = 2
			}
			t.Text, to = hex.EncodeToString(b[:n]), int(in.Target-addr)
		}
		toks = append(toks, t)
		targets = append(targets, to)
		off += in.Len
	}
	return toks, targets, nil
}

// A64 encodings the masking reads (C4.1 of the Arm ARM).
const (
	a64MovzX = 0xd2800000 // movz xd, #imm16, lsl #hw*16
	a64MovnX = 0x92800000
	a64MovkX = 0xf2800000
	a64Mask  = 0xff800000
	a64Nop   = 0xd503201f
	// The PLT build_plt() appends: ldr x10, #8; br x10.
	a64PltLdr = 0x5800004a
	a64PltBr  = 0xd61f0140
)

func maskArm64(addr uint64, code []byte, resolve Resolver) ([]Token, []int, error) {
	if len(code)%4 != 0 {
		return nil, nil, fmt.Errorf("oracle: arm64 image of %d bytes", len(code))
	}
	word := func(off int) uint32 { return binary.LittleEndian.Uint32(code[off:]) }
	words := func(from, to int) []uint32 {
		var ws []uint32
		for o := from; o < to; o += 4 {
			ws = append(ws, word(o))
		}
		return ws
	}
	var toks []Token
	var targets []int
	for off := 0; off < len(code); {
		w := word(off)
		// A movz/movn of an x register and the movks that complete it.
		if op := w & a64Mask; op == a64MovzX || op == a64MovnX {
			rd := w & 31
			v := uint64(w>>5&0xffff) << (16 * (w >> 21 & 3))
			if op == a64MovnX {
				v = ^v
			}
			end := off + 4
			for end < len(code) && word(end)&a64Mask == a64MovkX && word(end)&31 == rd {
				k := word(end)
				sh := 16 * (k >> 21 & 3)
				v = v&^(0xffff<<sh) | uint64(k>>5&0xffff)<<sh
				end += 4
			}
			if kernelAddr(v) {
				// The value is placement, the form is the JIT's: which
				// of the kernel's two sequences built it.
				form := "by hand"
				for _, f := range []struct {
					name string
					addr bool
				}{{"mov_i64", false}, {"addr_mov_i64", true}} {
					if slices.Equal(arm64.MovSequence(int(rd), v, f.addr), words(off, end)) {
						form = f.name
						break
					}
				}
				toks = append(toks, Token{Off: off, Len: end - off, Text: fmt.Sprintf("<addr x%d %s>", rd, form), Sym: resolve(v), Addr: v,
					Asm: fmt.Sprintf("x%d = %#x (%d instructions)", rd, v, (end-off)/4)})
				targets = append(targets, -1)
				off = end
				continue
			}
		}
		// build_plt() aligns its target with a nop when the code before
		// it has an odd length, which the masked units decide.
		if w == a64Nop && off+12 == len(code) && word(off+4) == a64PltLdr && word(off+8) == a64PltBr {
			off += 4
			continue
		}
		in, err := arm64.Decode(code[off:], addr+uint64(off))
		if err != nil {
			return nil, nil, fmt.Errorf("oracle: arm64 +%#x: %v", off, err)
		}
		t := Token{Off: off, Len: 4, Text: fmt.Sprintf("%08x", w), Asm: in.Text}
		to := -1
		if in.Branch && w&0xff000000 != a64PltLdr&0xff000000 {
			inside := in.Target >= addr && in.Target < addr+uint64(len(code))
			// The branch's kind and its fixed fields, without the offset.
			t.Text = fmt.Sprintf("%08x", w&branchFixed(w))
			if inside {
				to = int(in.Target - addr)
			} else {
				t.Text, t.Sym, t.Addr = t.Text+" <rel>", resolve(in.Target), in.Target
			}
		}
		toks = append(toks, t)
		targets = append(targets, to)
		off += 4
	}
	return toks, targets, nil
}

// branchFixed is the mask of a branch word's bits that are not its
// offset: b/bl imm26, b.cond and cbz/cbnz imm19, tbz/tbnz imm14.
func branchFixed(w uint32) uint32 {
	switch {
	case w&0x7c000000 == 0x14000000: // b, bl
		return 0xfc000000
	case w&0xff000010 == 0x54000000, w&0x7e000000 == 0x34000000: // b.cond, cbz, cbnz
		return 0xff00001f
	case w&0x7e000000 == 0x36000000: // tbz, tbnz
		return 0xfff8001f
	}
	return 0xffffffff
}
