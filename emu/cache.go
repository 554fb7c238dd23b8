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
	"fmt"
	"unsafe"
)

// WriteCode writes code into an arena and drops Unicorn's translations of
// the bytes that changed. Measured with Unicorn 2.0.1: a plain MemWrite over
// code that has run leaves the old translation in use, a full flush costs
// over a second, and retranslating a block costs ~10 µs, so only the
// changed runs of bytes are written and removed from the cache.
func (e *Engine) WriteCode(addr uint64, code []byte) error {
	for len(code) > 0 {
		page := pageDown(addr)
		n := min(len(code), int(page+PageSize-addr))
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

func (e *Engine) writeCodePage(addr uint64, code []byte) error {
	page := pageDown(addr)
	shadow := e.code[page]
	if shadow == nil {
		shadow = new([PageSize]byte)
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
		if err := e.U.MemWrite(addr+uint64(i), code[i:j]); err != nil {
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

func (e *Engine) removeCache(begin, end uint64) error {
	if rc := C.tailsim_remove_cache(unsafe.Pointer(e.U.Handle()), C.uint64_t(begin), C.uint64_t(end)); rc != C.UC_ERR_OK {
		return fmt.Errorf("emu: dropping translations of %#x..%#x: uc_err %d", begin, end, int(rc))
	}
	return nil
}
