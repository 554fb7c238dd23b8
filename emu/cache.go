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

// WriteCode writes code and drops Unicorn's translations of those bytes.
// Measured with Unicorn 2.0.1: a plain MemWrite over code that has run
// leaves the old translation in use, and a full flush costs over a second,
// so the range is removed from the cache instead (microseconds).
func (e *Engine) WriteCode(addr uint64, code []byte) error {
	if err := e.U.MemWrite(addr, code); err != nil {
		return err
	}
	end := addr + uint64(len(code))
	if rc := C.tailsim_remove_cache(unsafe.Pointer(e.U.Handle()), C.uint64_t(addr), C.uint64_t(end)); rc != C.UC_ERR_OK {
		return fmt.Errorf("emu: dropping translations of %#x..%#x: uc_err %d", addr, end, int(rc))
	}
	return nil
}
