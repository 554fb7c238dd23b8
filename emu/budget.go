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
} tailsim_budget;

static void tailsim_count_block(uc_engine *uc, uint64_t addr, uint32_t size, void *user) {
	tailsim_budget *b = user;
	b->last = addr;
	b->prev_end = b->last_end;
	b->last_end = addr + size;
	if (++b->blocks > b->limit) {
		uc_emu_stop(uc);
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
func (b budget) start(limit uint64) { b.c.blocks, b.c.limit = 0, C.uint64_t(limit) }

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
func (b budget) free() { C.free(unsafe.Pointer(b.c)) }
