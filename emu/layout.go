package emu

import (
	"encoding/binary"

	"tailsim/prog"
)

// addrMap is where an arch's kernel keeps what a tail call touches, so
// that the JITs' address loads take the forms a kernel gets (x86 movabs of
// an upper-half pointer, arm64 movn/movk) and a pointer truncated to 32
// bits points nowhere: below 4 GiB, a counter pointer built with a 32-bit
// mov, or an empty-slot test of a pointer's low half, behaved correctly.
// docs/addresses.md has the kernel's maps behind each choice.
//
// Code lives in two arenas mapped for the life of the engine (the stubs'
// page and the code); everything else is mapped per loaded world with
// exact bounds, or for the engine's life where every world has it at the
// same place (the stack, the struct bpf_prog pages, thread_info).
type addrMap struct {
	stubs uint64 // kernel text: helper stubs, stubSize apart, and the return sentinel
	code  uint64 // the JIT's images, on pages chosen by funcPage
	// progs is the first struct bpf_prog (vmalloc'd); 4 GiB aligned, so
	// the first program's pointer has its low 32 bits zero.
	progs      uint64
	stackHi    uint64 // the top of the task's stack (vmalloc'd, CONFIG_VMAP_STACK)
	arrays     uint64 // struct bpf_array k at arrays + k*arrayStride
	threadInfo uint64 // the current task's thread_info (arm64: sp_el0)
}

// x86Addrs follows x86-64's 4-level map with KASLR off
// (Documentation/arch/x86/x86_64/mm.rst): kernel text, the module space
// (where bpf_prog_pack takes its pages), vmalloc, and the direct map. The
// module space starts at 0xffffffffc0000000 in a kernel built with
// CONFIG_RANDOMIZE_BASE (KERNEL_IMAGE_SIZE = 1 GiB), as distributions
// build theirs; mm.rst's 0xffffffffa0000000 is without it.
var x86Addrs = addrMap{
	stubs:      0xffff_ffff_8100_0000,
	code:       0xffff_ffff_c000_0000,
	progs:      0xffff_c900_0000_0000,
	stackHi:    0xffff_c900_4000_0000,
	arrays:     0xffff_8882_0000_0000,
	threadInfo: 0xffff_8880_0100_0000,
}

// arm64Addrs follows arm64's 48-bit map with KASLR off
// (arch/arm64/include/asm/memory.h): the kernel image at the start of the
// vmalloc area (KIMAGE_VADDR = MODULES_END), BPF images in vmalloc
// (execmem's EXECMEM_BPF range), the linear map for kmalloc'd objects.
// The code is 32 MiB after the kernel text, within bl's ±128 MiB: helper
// calls are direct, as in a kernel whose image is that size.
var arm64Addrs = addrMap{
	stubs:      0xffff_8000_8001_0000,
	code:       0xffff_8000_8200_0000,
	progs:      0xffff_8001_0000_0000,
	stackHi:    0xffff_8000_c000_0000,
	arrays:     0xffff_0002_0000_0000,
	threadInfo: 0xffff_0000_0100_0000,
}

const (
	stubSize    = 128
	sentinelOff = 0xFF0 // the return sentinel, in the stubs' page
	// thunksOff is where the x86 thunks start, after room for 28 helper
	// stubs (TestStubsPageLayout keeps the helpers below it).
	thunksOff = 0xE00
	codePages = 0x800
	maxProgs  = 256
	// maxArrays keeps the arrays in their region (x86's direct map ends
	// at vmalloc, 257 strides on): a world may declare more maps than one
	// program may use (MAX_USED_MAPS, 64), but not more than this.
	maxArrays = 256
	stackSize = 0x10_0000
	ctxBase   = prog.CtxBase // ctx, where the reference model has it too
	// arrayStride leaves room for ptrs[2 * 2^32] after any header.
	arrayStride = 0x40_0000_0000
)

// structAddr is where struct bpf_prog k is: the first maxProgs pages from
// progs are mapped for the engine's life; PlaceAligned puts each program
// k > 0 at its own 4 GiB boundary instead, mapped per world.
func (a addrMap) structAddr(k int, pl prog.Placement) uint64 {
	if pl == prog.PlaceAligned {
		return a.progs + uint64(k)<<32
	}
	return a.progs + uint64(k)*pageSize
}

func (a addrMap) sentinel() uint64 { return a.stubs + sentinelOff }
func (a addrMap) stackLo() uint64  { return a.stackHi - stackSize }

// runSP is the stack pointer a run starts with.
func (a addrMap) runSP() uint64 { return a.stackHi - 0x100 }

func (a addrMap) codeEnd() uint64 { return a.code + codePages*pageSize }

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
