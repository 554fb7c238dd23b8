package emu

/*
#cgo pkg-config: unicorn
#include <stdlib.h>
#include <unicorn/unicorn.h>

// A run's budget, counted in translated blocks entered, in C: a block hook
// that called into Go would cost a cgo transition per block, more than
// most blocks take to run.
typedef struct {
	uint64_t blocks;
	uint64_t limit;
	uint64_t last;              // the last block counted
	uint64_t last_end, prev_end; // where it ends, and the one before it
	// The code fence: within the arena [arena_lo, arena_hi) a block must
	// lie inside one of the n sorted ranges code[2i]..code[2i+1]; outside
	// is the first address of a block that did not (0: none yet).
	uint64_t arena_lo, arena_hi;
	uint64_t *code;
	size_t n;
	uint64_t outside;
} tailsim_budget;

// tailsim_fenced returns the first byte of [addr, end) outside the code, or
// 0 when all of it is code.
static uint64_t tailsim_fenced(tailsim_budget *b, uint64_t addr, uint64_t end) {
	size_t lo = 0, hi = b->n;
	while (lo < hi) { // the first range ending after addr
		size_t mid = (lo + hi) / 2;
		if (b->code[2*mid+1] <= addr) lo = mid + 1; else hi = mid;
	}
	if (lo == b->n || b->code[2*lo] > addr) return addr;
	return end <= b->code[2*lo+1] ? 0 : b->code[2*lo+1];
}

static void tailsim_count_block(uc_engine *uc, uint64_t addr, uint32_t size, void *user) {
	tailsim_budget *b = user;
	b->last = addr;
	b->prev_end = b->last_end;
	b->last_end = addr + size;
	if (++b->blocks > b->limit) {
		uc_emu_stop(uc);
	}
	if (addr < b->arena_hi && addr + size > b->arena_lo) {
		uint64_t at = tailsim_fenced(b, addr, addr + size);
		if (at != 0 && b->outside == 0) {
			b->outside = at;
			uc_emu_stop(uc);
		}
	}
}

static uc_err tailsim_add_budget(void *uc, tailsim_budget *b) {
	uc_hook h;
	return uc_hook_add((uc_engine *)uc, &h, UC_HOOK_BLOCK, (void *)tailsim_count_block, b, 1, 0);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// budget bounds a run by the blocks it enters, the same count on an idle
// and on a loaded machine: a verdict never depends on the machine's load.
// The counter lives in C memory, which the hook may keep.
type budget struct{ c *C.tailsim_budget }

// addBudget installs the block counter. It must come before any code is
// translated: Unicorn calls hooks only from translations made after them.
func (e *engine) addBudget() error {
	b := (*C.tailsim_budget)(C.calloc(1, C.size_t(unsafe.Sizeof(C.tailsim_budget{}))))
	if b == nil {
		return fmt.Errorf("emu: no memory for the run budget")
	}
	if rc := C.tailsim_add_budget(unsafe.Pointer(e.u.Handle()), b); rc != C.UC_ERR_OK {
		C.free(unsafe.Pointer(b))
		return fmt.Errorf("emu: adding the budget hook: %v", rc)
	}
	e.budget = budget{b}
	return nil
}

// start arms the budget for a run of at most limit blocks.
func (b budget) start(limit uint64) {
	b.c.blocks, b.c.limit, b.c.outside = 0, C.uint64_t(limit), 0
}

// fence makes a block in [lo, hi) that is not wholly inside one of code
// (sorted, disjoint [start, end) ranges) stop the run, before it runs.
// Two consequences: a block that starts inside an image and runs off its
// end (only broken code does) stops before its in-image instructions,
// reported at the image's end where a kernel would trap after running
// them; and Unicorn calls the block hook at a run's until address too, so
// until must lie inside the fence (the sentinel does: the stubs' page).
// The arena is mapped whole and zero where no image is: without a fence a
// wild jump into it ran megabytes of "add [rax], al" (x86), translating
// all of them (300 MB of Unicorn's code buffer, seconds, measured on a
// fuzz case). The kernel fills the unused space of its JIT packs with
// traps (x86 int3, arm64 brk: bpf_jit_fill_hole), so there too a jump
// there ends at its first instruction.
func (b budget) fence(lo, hi uint64, code [][2]uint64) error {
	C.free(unsafe.Pointer(b.c.code))
	b.c.code, b.c.n = nil, 0
	b.c.arena_lo, b.c.arena_hi = C.uint64_t(lo), C.uint64_t(hi)
	if len(code) == 0 {
		return nil
	}
	p := (*C.uint64_t)(C.malloc(C.size_t(16 * len(code))))
	if p == nil {
		return fmt.Errorf("emu: no memory for the code fence")
	}
	dst := unsafe.Slice(p, 2*len(code))
	for i, r := range code {
		dst[2*i], dst[2*i+1] = C.uint64_t(r[0]), C.uint64_t(r[1])
	}
	b.c.code, b.c.n = p, C.size_t(len(code))
	return nil
}

// outside is the first address of the run's code outside the fence, or 0.
func (b budget) outside() uint64 { return uint64(b.c.outside) }

// resumeAt prepares a run stopped early at pc to go on: the block there,
// counted as it was entered and interrupted, will be counted again.
func (b budget) resumeAt(pc uint64) {
	if b.c.last == C.uint64_t(pc) && b.c.blocks > 0 {
		b.c.blocks--
		// The block will be entered again: the one before it stays the
		// one it came from.
		b.c.last_end = b.c.prev_end
	}
}

// cameFrom is the end of the block entered before the current one: at the
// first instruction of a block reached by a branch, the branch is the last
// instruction before it. A tail call's fall-through label is reached only
// by its checks' branches, so this tells which check failed, as the
// machine took it, without a hook per check.
func (b budget) cameFrom() uint64 { return uint64(b.c.prev_end) }

// entered is the start of the block the CPU is in.
func (b budget) entered() uint64 { return uint64(b.c.last) }

// exhausted reports whether the run went past its limit.
func (b budget) exhausted() bool { return b.c.blocks > b.c.limit }

// free releases the counter once the engine is closed.
func (b budget) free() {
	C.free(unsafe.Pointer(b.c.code))
	C.free(unsafe.Pointer(b.c))
}
