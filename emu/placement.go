package emu

import (
	"encoding/binary"
	"hash/fnv"

	"tailsim/prog"
)

// firstPage picks where in the code arena a world's code starts. Worlds of
// the same shape (the same instructions up to their immediates, frames,
// layout and site kinds) land on the same pages, so a load rewrites only
// the bytes that differ and Unicorn keeps the translations of the rest; a
// fuzz campaign revisits a few hundred shapes, not one address per case.
// Constants that differ between cases of one shape (max_entries, a
// constant key, a map address) are left out of the hash: they are a few
// bytes in one block each. salt separates code generated differently from
// the same world (the hardening set, through where tail calls land).
func firstPage(w *prog.World, v prog.Variant, salt uint64, pages int) int {
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
	for _, p := range w.Progs {
		put(uint64(len(p.Funcs)))
		for _, f := range p.Funcs {
			put(uint64(f.StackDepth))
			for _, ins := range f.Insns {
				put(uint64(ins.OpCode)<<32 | uint64(ins.Dst)<<24 | uint64(ins.Src)<<16 | uint64(uint16(ins.Off)))
				if ins.OpCode.IsJump() {
					// A jump's immediate is a call number or a comparison
					// operand: it picks the code emitted, not just a value.
					put(uint64(ins.Imm))
				}
			}
		}
		if fx := w.Fixups[p]; fx != nil {
			for _, s := range fx.Sites {
				put(uint64(s.Func)<<32 | uint64(s.Insn))
				put(uint64(s.Kind(v)))
			}
		}
	}
	return int(h.Sum64() % uint64(CodePages-pages+1))
}
