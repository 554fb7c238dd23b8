package emu

/*
#include <stdlib.h>
#include <string.h>

// A page of host memory, aligned and touched, for uc_mem_map_ptr.
static void *tailsim_host_page(size_t size) {
	void *p = NULL;
	if (posix_memalign(&p, size, size) != 0) {
		return NULL;
	}
	memset(p, 0, size);
	return p;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// hostPages backs lazily mapped guest pages with host pages the engine
// keeps: uc_mem_map of a fresh page costs a host mmap, a page fault and
// later a munmap (134–290 µs measured here through Go), uc_mem_map_ptr
// over a page already touched 15–19 µs. A page goes back to the pool when
// its guest page is unmapped, and all are freed with the engine.
type hostPages struct {
	free []unsafe.Pointer
	all  []unsafe.Pointer
}

func (h *hostPages) get() (unsafe.Pointer, error) {
	if n := len(h.free); n > 0 {
		p := h.free[n-1]
		h.free = h.free[:n-1]
		return p, nil
	}
	p := C.tailsim_host_page(pageSize)
	if p == nil {
		return nil, fmt.Errorf("emu: no host memory for a guest page")
	}
	h.all = append(h.all, p)
	return p, nil
}

func (h *hostPages) put(p unsafe.Pointer) {
	if p != nil {
		h.free = append(h.free, p)
	}
}

// freeAll releases every page; the engine's Unicorn instance must be
// closed first.
func (h *hostPages) freeAll() {
	for _, p := range h.all {
		C.free(p)
	}
	h.all, h.free = nil, nil
}

// mapHostPage maps the guest page at page onto a pooled host page.
func (e *engine) mapHostPage(page uint64) (unsafe.Pointer, error) {
	p, err := e.host.get()
	if err != nil {
		return nil, err
	}
	if err := e.u.MemMapPtr(page, pageSize, uc.PROT_READ|uc.PROT_WRITE, p); err != nil {
		e.host.put(p)
		return nil, err
	}
	return p, nil
}

// unmapHostPage unmaps a lazily mapped guest page and pools its host page.
func (e *engine) unmapHostPage(page uint64, pi pageInfo) error {
	err := e.u.MemUnmap(page, pageSize)
	if err == nil {
		e.host.put(pi.host)
	}
	return err
}
