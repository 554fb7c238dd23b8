package emu

/*
#cgo pkg-config: unicorn
#include <unicorn/unicorn.h>

// uc_ctl is variadic, which cgo cannot call; this wrapper can be.
static uc_err tailsim_remove_cache(void *uc, uint64_t begin, uint64_t end) {
	return uc_ctl((uc_engine *)uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), begin, end);
}

*/
import "C"

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"
)

// writeCode writes code into an arena and drops Unicorn's translations of
// the bytes that changed. Measured with Unicorn 2.0.1: a plain MemWrite over
// code that has run leaves the old translation in use, a full flush costs
// over a second, and retranslating a block costs ~10 µs, so only the
// changed runs of bytes are written and removed from the cache.
func (e *engine) writeCode(addr uint64, code []byte) error {
	for len(code) > 0 {
		page := pageDown(addr)
		n := min(len(code), int(page+pageSize-addr))
		if err := e.writeCodePage(addr, code[:n]); err != nil {
			return err
		}
		addr, code = addr+uint64(n), code[n:]
	}
	return nil
}

// mergeGap joins changed runs closer than this: one write and one cache
// removal instead of two.
const mergeGap = 16

func (e *engine) writeCodePage(addr uint64, code []byte) error {
	page := pageDown(addr)
	shadow := e.code[page]
	if shadow == nil {
		shadow = new([pageSize]byte)
		e.code[page] = shadow
	}
	old := shadow[addr-page : addr-page+uint64(len(code))]
	for i := 0; i < len(code); {
		if old[i] == code[i] {
			i++
			continue
		}
		j, same := i+1, 0
		for ; j < len(code) && same < mergeGap; j++ {
			if old[j] == code[j] {
				same++
			} else {
				same = 0
			}
		}
		j -= same
		if err := e.u.MemWrite(addr+uint64(i), code[i:j]); err != nil {
			return err
		}
		if err := e.removeCache(addr+uint64(i), addr+uint64(j)); err != nil {
			return err
		}
		copy(old[i:j], code[i:j])
		i = j
	}
	return nil
}

func (e *engine) removeCache(begin, end uint64) error {
	if rc := C.tailsim_remove_cache(unsafe.Pointer(e.u.Handle()), C.uint64_t(begin), C.uint64_t(end)); rc != C.UC_ERR_OK {
		return fmt.Errorf("emu: dropping translations of %#x..%#x: uc_err %d", begin, end, int(rc))
	}
	return nil
}

// setImages records where the current world's code is and clears the code
// the previous world left anywhere else, as on a fresh engine: what a wild
// jump finds must not depend on the cases run before (a finding would not
// reproduce), and a run through stale code could translate a hooked
// address without its hook. Writing zeros through writeCode touches only
// the bytes that are not zero already.
func (e *engine) setImages(ranges [][2]uint64) error {
	var zero [pageSize]byte
	for _, old := range e.images {
		for _, gap := range subtract(old, ranges) {
			for a := gap[0]; a < gap[1]; a += pageSize {
				if err := e.writeCode(a, zero[:min(gap[1]-a, pageSize)]); err != nil {
					return err
				}
			}
		}
	}
	e.images = append(e.images[:0], ranges...)
	return e.setFence()
}

// setFence makes the arenas' code (the engine's own and the current
// world's images) the only place a run may execute in them.
func (e *engine) setFence() error {
	if len(e.arenas) == 0 {
		return nil
	}
	code := append(slices.Clone(e.ownCode), e.images...)
	slices.SortFunc(code, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	merged := code[:0]
	for _, r := range code {
		if r[0] >= r[1] {
			continue
		}
		if n := len(merged); n > 0 && r[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	lo, hi := e.arenas[0][0], e.arenas[0][1]
	for _, a := range e.arenas[1:] {
		lo, hi = min(lo, a[0]), max(hi, a[1])
	}
	return e.budget.fence(lo, hi, merged)
}

// subtract is r minus the union of cut, as ordered disjoint ranges.
func subtract(r [2]uint64, cut [][2]uint64) [][2]uint64 {
	out := [][2]uint64{r}
	for _, c := range cut {
		var next [][2]uint64
		for _, o := range out {
			if c[1] <= o[0] || o[1] <= c[0] {
				next = append(next, o)
				continue
			}
			if o[0] < c[0] {
				next = append(next, [2]uint64{o[0], c[0]})
			}
			if c[1] < o[1] {
				next = append(next, [2]uint64{c[1], o[1]})
			}
		}
		out = next
	}
	return out
}
