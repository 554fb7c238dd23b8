package emu

import (
	"encoding/binary"
	"hash/fnv"

	"tailsim/prog"
)

// funcPage picks where in the code arena a function's image starts.
// Functions of the same shape (the same name, instructions up to their
// immediates, frame, site kinds, variant, layout and hardening) land on
// the same pages whatever world they are in, so a load rewrites only the
// bytes that differ and Unicorn keeps the translations of the rest: a
// fuzz campaign's leaf programs are translated once, and a world's entry
// once per shape. Constants that differ between cases of one shape
// (max_entries, a constant key, a map address) are left out of the hash:
// they are a few bytes in one block each. salt separates code generated
// differently from the same world (the hardening set, through where tail
// calls land).
func funcPage(w *prog.World, p *prog.Program, fn int, v prog.Kernel, salt uint64, pages int) int {
	h := fnv.New64a()
	var buf [8]byte
	put := func(x uint64) {
		binary.LittleEndian.PutUint64(buf[:], x)
		h.Write(buf[:])
	}
	put(uint64(v))
	put(salt)
	put(uint64(w.Layout.MaxEntries)<<32 | uint64(w.Layout.Ptrs))
	put(uint64(w.Layout.BpfFunc))
	f := p.Funcs[fn]
	h.Write([]byte(f.Name))
	put(uint64(f.StackDepth))
	for _, ins := range f.Insns {
		put(uint64(ins.OpCode)<<32 | uint64(ins.Dst)<<24 | uint64(ins.Src)<<16 | uint64(uint16(ins.Off)))
		if ins.OpCode.IsJump() {
			// A jump's immediate is a call number or a comparison
			// operand: it picks the code emitted, not just a value.
			put(uint64(ins.Imm))
		}
	}
	if fx := w.Fixups[p]; fx != nil {
		for _, s := range fx.Sites {
			if s.Func == fn {
				put(uint64(s.Insn))
				put(uint64(s.Kind(v, true))) // the verifier's decision, on every arch
			}
		}
	}
	return int(h.Sum64() % uint64(codePages-pages+1))
}

// placer hands out arena pages to one world's functions: each at its
// funcPage, or the next free run of pages when another function of the
// world is there.
type placer struct{ used []bool }

func newPlacer() *placer { return &placer{used: make([]bool, codePages)} }

// place returns the first page of a free run of n pages at or after want
// (wrapping), and marks it used; ok is false when no run is free.
func (pl *placer) place(want, n int) (page int, ok bool) {
	for try := 0; try <= codePages-n; try++ {
		p := (want + try) % (codePages - n + 1)
		free := true
		for i := p; i < p+n; i++ {
			if pl.used[i] {
				free = false
				break
			}
		}
		if free {
			for i := p; i < p+n; i++ {
				pl.used[i] = true
			}
			return p, true
		}
	}
	return 0, false
}
