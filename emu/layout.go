package emu

import (
	"encoding/binary"

	"tailsim/prog"
)

// The emulated address space. Code lives in one arena mapped for the life
// of the engine; everything else is mapped per loaded world with exact
// bounds.
const (
	stubBase   = 0x0080_0000 // helper stubs, stubSize apart, then the return sentinel
	stubSize   = 128
	sentinel   = stubBase + 0xFF0
	codeBase   = 0x0100_0000 // function images, on pages chosen by funcPage
	codePages  = 0x800
	arenaSize  = codeBase + codePages*pageSize - stubBase
	progBase   = 0x0600_0000 // struct bpf_prog k at progBase + k*pageSize
	maxProgs   = 256
	ctxBase    = prog.CtxBase // ctx, where the reference model has it too
	threadInfo = 0x0700_0000  // arm64: the current task's thread_info (sp_el0)
	stackLo    = 0x7000_0000
	stackHi    = 0x7010_0000
	runSP      = stackHi - 0x100 // the stack pointer a run starts with
	arrayBase  = 0x10_0000_0000  // struct bpf_array k at arrayBase + k*arrayStride
	// arrayStride leaves room for ptrs[2 * 2^32] after any header.
	arrayStride = 0x40_0000_0000
)

// arrayImage lays out one struct bpf_array: max_entries in its header, then
// ptrs[] and, for the patched series, the cached targets after them.
type arrayImage struct {
	a       *prog.ProgArray
	base    uint64
	layout  prog.Layout
	patched bool
	progs   map[*prog.Program]uint64 // struct bpf_prog addresses
	entries map[*prog.Program]uint64 // bpf_func + tail-call entry offset
}

func (ai *arrayImage) slots() uint64 {
	n := uint64(ai.a.MaxEntries)
	if ai.patched {
		n *= 2
	}
	return n
}

func (ai *arrayImage) end() uint64 { return ai.base + uint64(ai.layout.Ptrs) + 8*ai.slots() }

func (ai *arrayImage) slotAddr(i uint64) uint64 { return ai.base + uint64(ai.layout.Ptrs) + 8*i }

// fill writes the page at addr from the model: max_entries, ptrs[i] as
// struct bpf_prog pointers, and the cached half as entry addresses.
func (ai *arrayImage) fill(addr uint64, page []byte) {
	if off := uint64(ai.layout.MaxEntries); addr <= ai.base+off && ai.base+off+4 <= addr+pageSize {
		binary.LittleEndian.PutUint32(page[ai.base+off-addr:], ai.a.MaxEntries)
	}
	first := uint64(0)
	if s := ai.slotAddr(0); addr > s {
		first = (addr - s) / 8
	}
	max := uint64(ai.a.MaxEntries)
	for i := first; i < ai.slots(); i++ {
		at := ai.slotAddr(i)
		if at >= addr+pageSize {
			break
		}
		if at < addr {
			continue
		}
		var v uint64
		if i < max {
			if p := ai.a.Ptr(uint32(i)); p != nil {
				v = ai.progs[p]
			}
		} else if p := ai.a.Cached(uint32(i - max)); p != nil {
			v = ai.entries[p]
		}
		binary.LittleEndian.PutUint64(page[at-addr:], v)
	}
}
