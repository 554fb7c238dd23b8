// Package emu is the Unicorn harness, and the only cgo in tailsim. A
// Backend (NewX86, NewArm64) loads a world into an engine from its pool
// (load.go) and runs and checks it there (run.go). An engine wraps one
// Unicorn instance with the memory model every backend needs (exactly
// bounded objects, lazily paged sparse regions, faults as values) and is
// the only code that touches the instance, so its code shadow and guards
// stay true.
package emu

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// arch is an emulated CPU.
type arch uint8

//go:generate go tool stringer -type=arch -linecomment -output=arch_string.go

const (
	archX86   arch = iota // x86_64
	archArm64             // arm64
)

// pageSize is Unicorn's mapping granularity on both arches.
const pageSize = 0x1000

func pageDown(a uint64) uint64 { return a &^ (pageSize - 1) }
func pageUp(a uint64) uint64   { return (a + pageSize - 1) &^ (pageSize - 1) }

// lazy is a sparse region: its pages are mapped on first touch and filled
// by Fill, so a prog array of any u32 size costs only the pages a run reads.
type lazy struct {
	Name       string
	Start, End uint64 // [Start, End): accesses outside are faults
	// Fill writes the initial contents of the page at addr (pageSize bytes).
	Fill func(addr uint64, page []byte)
}

// access is a memory access that hit nothing the scenario declared.
type access struct {
	Addr  uint64
	Size  int
	Write bool
	Fetch bool
	// ReadOnly: the address is mapped, but only for reading.
	ReadOnly bool
	PC       uint64
	// Regs are the general registers when the access was made (arm64:
	// x0–x30 then sp; x86-64: x86GPRs), so the faulting instruction can
	// be found: Unicorn does not keep the PC exact inside memory hooks
	// (arm64: the block's start; x86-64, at an unmapped access: the last
	// memory access before it).
	Regs []uint64
}

// x86GPRs are rax…r15 in the encoding's order (x86asm.RAX + n).
var x86GPRs = []int{uc.X86_REG_RAX, uc.X86_REG_RCX, uc.X86_REG_RDX, uc.X86_REG_RBX, uc.X86_REG_RSP,
	uc.X86_REG_RBP, uc.X86_REG_RSI, uc.X86_REG_RDI, uc.X86_REG_R8, uc.X86_REG_R9, uc.X86_REG_R10,
	uc.X86_REG_R11, uc.X86_REG_R12, uc.X86_REG_R13, uc.X86_REG_R14, uc.X86_REG_R15}

var arm64GPRs = func() []int {
	var r []int
	for i := 0; i <= 28; i++ {
		r = append(r, uc.ARM64_REG_X0+i)
	}
	return append(r, uc.ARM64_REG_X29, uc.ARM64_REG_X30, uc.ARM64_REG_SP)
}()

// engine is one Unicorn instance and what is mapped in it.
type engine struct {
	arch arch
	u    uc.Unicorn

	// What the current world has mapped. Between begin and commit the
	// previous world's spans and pages wait in kept and retained: the next
	// world reuses those it maps again in the same shape (rewriting their
	// contents) and commit unmaps the rest. Loads of similar worlds then
	// cost memory writes instead of mappings and hook churn.
	fixed    []span
	kept     []span
	lazies   []*lazy             // sorted by Start
	paged    map[uint64]pageInfo // lazily mapped page -> its region and guards
	retained map[uint64]pageInfo
	pageBuf  []byte

	// code mirrors what writeCode put in the arena, a page at a time, so
	// a rewrite touches (and drops the translations of) changed bytes only.
	code map[uint64]*[pageSize]byte
	// arenas are where code goes ([start, end) each); images are the
	// current world's code ranges in them (setImages).
	arenas [][2]uint64
	images [][2]uint64
	// ownCode is code in the arenas for the engine's life (the helper
	// stubs and the return sentinel): with the images, where a run may
	// execute in an arena (setFence).
	ownCode [][2]uint64
	// Code hooks stay installed from one load to the next while their
	// address is wanted; onCode is the current world's handler.
	codeHooks map[uint64]uc.Hook
	onCode    func(addr uint64)
	// complete[page][a]: every translation Unicorn holds that covers a
	// calls the hook at a (see setCodeHooks and ran).
	complete map[uint64]map[uint64]bool
	// churn counts hooks added and deleted. Unicorn 2.0.1 keeps ~440
	// bytes for each until the engine is closed (measured), so owners
	// retire an engine after enough churn.
	churn int
	// loads counts the worlds loaded (maxLoads).
	loads int
	// pristine is the CPU as set up; a wild run (cpuDirty) may have left
	// anything in it (a trap flag, segment or control registers), so the
	// next run starts from pristine again (restoreCPU).
	pristine uc.Context
	cpuDirty bool

	undo      []undoWrite // writes to read-only objects, to undo after the run
	fault     *access     // the first bad access of the current run
	exception *uint32     // the first CPU exception of the current run
	pcReg     int
	pcBatch   *uc.RegBatch
	// halted: a stepped run's budget stopped the CPU; run must not resume.
	halted bool
	// budget counts a run's blocks (budget.go).
	budget budget
	// host backs lazily mapped pages (hostpages.go).
	host hostPages
	// private engines (stepped runs) never go back to a pool.
	private bool

	// The run budget: a watchdog goroutine stops a run past its deadline.
	// Unicorn's own timeout starts a thread per run (~90 µs measured) and
	// its instruction count, combined with address hooks, makes every
	// instruction walk every hook (~6x slower measured); this costs two
	// atomic stores per run.
	deadline atomic.Int64 // unix ns; 0 while idle
	done     chan struct{}
	stopped  chan struct{} // closed when the watchdog has exited

	// alignedMapped is one past the last PlaceAligned struct bpf_prog
	// page mapped so far (pages 1 .. alignedMapped-1, by program index;
	// 0: none, nor their guard), kept for the engine's life like the
	// others; alignedWritten is how many of them the last load may have
	// filled.
	alignedMapped  int
	alignedWritten int
	// progsWritten is how many struct bpf_prog pages the last load wrote
	// (machine.load clears the ones the next world does not use).
	progsWritten int
}

// span is a fixed mapping: the pages [start, end) holding the object
// [obj, objEnd) with prot, and the guards on the rest of its pages.
type span struct {
	start, end, obj, objEnd uint64
	prot                    int
	guards                  []uc.Hook
}

func (s span) sameShape(o span) bool {
	return s.start == o.start && s.end == o.end && s.obj == o.obj && s.objEnd == o.objEnd && s.prot == o.prot
}

// pageInfo is a lazily mapped page: the part of it its region covers
// (the rest is guarded) and those guards.
type pageInfo struct {
	l      *lazy
	lo, hi uint64
	guards []uc.Hook
	host   unsafe.Pointer // the pooled host page behind it (hostpages.go)
}

// newEngine creates an engine with the hooks that turn bad accesses into
// findings.
func newEngine(a arch) (*engine, error) {
	var u uc.Unicorn
	var err error
	e := &engine{arch: a, paged: map[uint64]pageInfo{}, code: map[uint64]*[pageSize]byte{},
		codeHooks: map[uint64]uc.Hook{}, complete: map[uint64]map[uint64]bool{}, pageBuf: make([]byte, pageSize)}
	switch a {
	case archX86:
		u, err = uc.NewUnicorn(uc.ARCH_X86, uc.MODE_64)
		e.pcReg = uc.X86_REG_RIP
	case archArm64:
		u, err = uc.NewUnicorn(uc.ARCH_ARM64, uc.MODE_ARM)
		e.pcReg = uc.ARM64_REG_PC
	default:
		return nil, fmt.Errorf("emu: unknown arch %d", a)
	}
	if err != nil {
		return nil, fmt.Errorf("emu: creating a %s engine: %w", a, err)
	}
	e.u = u
	// The binding's RegRead allocates; a batch of one reads in place.
	if e.pcBatch, err = uc.NewRegBatch([]int{e.pcReg}); err != nil {
		u.Close()
		return nil, err
	}
	if err := e.addBudget(); err != nil {
		u.Close()
		return nil, err
	}
	e.done, e.stopped = make(chan struct{}), make(chan struct{})
	go e.watchdog()
	// Unmapped accesses: page in a lazy region or record the fault.
	if _, err := u.HookAdd(uc.HOOK_MEM_UNMAPPED, e.onUnmapped, 1, 0); err != nil {
		e.close()
		return nil, err
	}
	// CPU exceptions (an undefined instruction, a breakpoint) end the run.
	if _, err := u.HookAdd(uc.HOOK_INTR, func(u uc.Unicorn, intno uint32) {
		if e.exception == nil {
			n := intno
			e.exception = &n
		}
		u.Stop()
	}, 1, 0); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// close releases the Unicorn instance.
func (e *engine) close() error {
	// The watchdog must be gone before the instance is: a stop it sends
	// after uc_close would use freed memory.
	close(e.done)
	<-e.stopped
	err := e.u.Close()
	if err == nil {
		e.budget.free()
		e.host.freeAll()
	}
	return err
}

const watchdogTick = 5 * time.Millisecond

func (e *engine) watchdog() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	defer close(e.stopped)
	for {
		select {
		case <-e.done:
			return
		case now := <-t.C:
			if d := e.deadline.Load(); d != 0 && now.UnixNano() > d {
				// A stop that arrives after this run ended reaches the
				// next one early; Run notices and resumes.
				e.u.Stop()
			}
		}
	}
}

// pc reads the program counter.
func (e *engine) pc() uint64 {
	v, err := e.pcBatch.ReadFast(e.u)
	if err != nil {
		return 0
	}
	return v[0]
}

// The guest's registers and memory are read and written through the
// engine only: it keeps a shadow of the code, guards and lazily mapped
// pages that a write behind its back would leave stale.

func (e *engine) regRead(reg int) (uint64, error)    { return e.u.RegRead(reg) }
func (e *engine) regWrite(reg int, val uint64) error { return e.u.RegWrite(reg, val) }

// regBatchRead reads b's registers in one call, into b's own buffer.
func (e *engine) regBatchRead(b *uc.RegBatch) ([]uint64, error) { return b.ReadFast(e.u) }

func (e *engine) regBatchWrite(b *uc.RegBatch, vals []uint64) error { return b.Write(e.u, vals) }

func (e *engine) memRead(addr, size uint64) ([]byte, error) { return e.u.MemRead(addr, size) }
func (e *engine) memReadInto(dst []byte, addr uint64) error { return e.u.MemReadInto(dst, addr) }

// memWrite writes data memory. Code goes through writeCode, which keeps
// the shadow and drops stale translations; a plain write into an arena is
// refused.
func (e *engine) memWrite(addr uint64, data []byte) error {
	end := addr + uint64(len(data))
	for _, a := range e.arenas {
		if addr < a[1] && a[0] < end {
			return fmt.Errorf("emu: a data write to %#x..%#x, in the code arena", addr, end)
		}
	}
	return e.u.MemWrite(addr, data)
}

func (e *engine) onUnmapped(u uc.Unicorn, typ int, addr uint64, size int, value int64) bool {
	if l := e.lazyAt(addr); l != nil && addr+uint64(size) <= l.End {
		page := pageDown(addr)
		if err := e.mapLazyPage(l, page); err == nil {
			// An access straddling into the next page faults again there
			// and is paged in the same way.
			return true
		}
	}
	e.recordFault(access{Addr: addr, Size: size, Write: typ == uc.MEM_WRITE_UNMAPPED, Fetch: typ == uc.MEM_FETCH_UNMAPPED})
	return false
}

func (e *engine) recordFault(a access) {
	if e.fault == nil {
		a.PC = e.pc()
		switch e.arch {
		case archArm64:
			a.Regs, _ = e.u.RegReadBatch(arm64GPRs)
		case archX86:
			a.Regs, _ = e.u.RegReadBatch(x86GPRs)
		}
		e.fault = &a
	}
}

// fenced records a run that reached code outside the fence as a fetch
// fault there, as one outside any mapping is.
func (e *engine) fenced() {
	if at := e.budget.outside(); at != 0 && e.fault == nil && e.exception == nil {
		e.fault = &access{Addr: at, Size: 1, Fetch: true, PC: at}
	}
}

func (e *engine) lazyAt(addr uint64) *lazy {
	i := sort.Search(len(e.lazies), func(i int) bool { return e.lazies[i].End > addr })
	if i < len(e.lazies) && e.lazies[i].Start <= addr {
		return e.lazies[i]
	}
	return nil
}

func (e *engine) mapLazyPage(l *lazy, page uint64) error {
	host, err := e.mapHostPage(page)
	if err != nil {
		return err
	}
	pi := pageInfo{l: l, lo: max(page, l.Start), hi: min(page+pageSize, l.End), host: host}
	if err := e.fillPage(pi, page); err != nil {
		e.unmapHostPage(page, pi)
		return err
	}
	// Bytes of the page outside the region are guarded exactly.
	if pi.lo > page {
		pi.guards = append(pi.guards, e.guard(page, pi.lo)...)
	}
	if pi.hi < page+pageSize {
		pi.guards = append(pi.guards, e.guard(pi.hi, page+pageSize)...)
	}
	e.paged[page] = pi
	return nil
}

func (e *engine) fillPage(pi pageInfo, page uint64) error {
	clear(e.pageBuf)
	pi.l.Fill(page, e.pageBuf)
	return e.u.MemWrite(page, e.pageBuf)
}

// mapObject maps [addr, addr+len(data)) with data and guards the rest of its
// pages, so an access one byte outside the object is a fault.
func (e *engine) mapObject(addr uint64, data []byte, prot int) error {
	if len(data) == 0 {
		return nil
	}
	sp := span{start: pageDown(addr), end: pageUp(addr + uint64(len(data))), obj: addr, objEnd: addr + uint64(len(data)), prot: prot}
	reused := false
	for i, k := range e.kept {
		if k.sameShape(sp) {
			sp, reused = k, true
			e.kept = append(e.kept[:i], e.kept[i+1:]...)
			break
		}
	}
	if !reused {
		// A kept mapping in the way goes now.
		if err := e.dropKept(func(k span) bool { return k.start < sp.end && sp.start < k.end }); err != nil {
			return err
		}
		if err := e.u.MemMapProt(sp.start, sp.end-sp.start, prot); err != nil {
			return fmt.Errorf("emu: mapping %#x..%#x: %w", sp.start, sp.end, err)
		}
		if sp.start < sp.obj {
			sp.guards = append(sp.guards, e.guard(sp.start, sp.obj)...)
		}
		if sp.objEnd < sp.end {
			sp.guards = append(sp.guards, e.guard(sp.objEnd, sp.end)...)
		}
	}
	e.fixed = append(e.fixed, sp)
	return e.u.MemWrite(addr, data)
}

func (e *engine) dropKept(drop func(span) bool) error {
	var errs []error
	kept := e.kept[:0]
	for _, k := range e.kept {
		if !drop(k) {
			kept = append(kept, k)
			continue
		}
		errs = append(errs, e.delHooks(k.guards), e.u.MemUnmap(k.start, k.end-k.start))
	}
	e.kept = kept
	return errors.Join(errs...)
}

// addLazy registers a sparse region; nothing is mapped until touched, but
// pages the previous world left in the same shape are refilled and kept.
func (e *engine) addLazy(l *lazy) error {
	for _, o := range e.lazies {
		if l.Start < o.End && o.Start < l.End {
			return fmt.Errorf("emu: lazy region %s overlaps %s", l.Name, o.Name)
		}
	}
	e.lazies = append(e.lazies, l)
	sort.Slice(e.lazies, func(i, j int) bool { return e.lazies[i].Start < e.lazies[j].Start })
	for page, pi := range e.retained {
		if page+pageSize <= l.Start || page >= l.End || pi.lo != max(page, l.Start) || pi.hi != min(page+pageSize, l.End) {
			continue
		}
		pi.l = l
		if err := e.fillPage(pi, page); err != nil {
			return err
		}
		delete(e.retained, page)
		e.paged[page] = pi
	}
	return nil
}

// lazyPageMapped reports whether the page holding addr has been paged in.
func (e *engine) lazyPageMapped(addr uint64) bool {
	_, ok := e.paged[pageDown(addr)]
	return ok
}

// guard makes [start, end) of an already mapped page a fault on any access.
func (e *engine) guard(start, end uint64) []uc.Hook {
	// Unicorn matches a hook's range against the access's first byte, so
	// the hook starts early enough to see accesses that straddle into the
	// guard and filters them exactly.
	const widest = 8 // the widest access the JITs emit
	from := start - min(start, widest-1)
	h, err := e.u.HookAdd(uc.HOOK_MEM_READ|uc.HOOK_MEM_WRITE, func(u uc.Unicorn, typ int, addr uint64, size int, value int64) {
		if addr+uint64(size) <= start || addr >= end {
			return
		}
		e.recordFault(access{Addr: addr, Size: size, Write: typ == uc.MEM_WRITE})
		u.Stop()
	}, from, end-1)
	if err != nil {
		return nil
	}
	e.churn++
	return []uc.Hook{h}
}

// guardWrites makes every write to [start, end) a fault while reads
// proceed, for objects the code must only read. Unicorn calls a write hook
// before the store and makes the store even when the hook stops the CPU,
// so the hook saves the bytes and Run puts them back: the write never
// happened, as on a kernel's read-only page.
func (e *engine) guardWrites(start, end uint64) error {
	_, err := e.u.HookAdd(uc.HOOK_MEM_WRITE, func(u uc.Unicorn, typ int, addr uint64, size int, value int64) {
		if addr+uint64(size) <= start || addr >= end {
			return
		}
		if old, err := u.MemRead(addr, uint64(size)); err == nil {
			e.undo = append(e.undo, undoWrite{addr, old})
		}
		e.recordFault(access{Addr: addr, Size: size, Write: true, ReadOnly: true})
		u.Stop()
	}, start-min(start, 7), end-1)
	return err
}

// undoWrite is the memory a blocked write overwrote.
type undoWrite struct {
	addr uint64
	old  []byte
}

// undoBlocked restores what blocked writes overwrote, newest first, and
// drops any translation made of overwritten code.
func (e *engine) undoBlocked() error {
	var errs []error
	for i := len(e.undo) - 1; i >= 0; i-- {
		u := e.undo[i]
		errs = append(errs, e.u.MemWrite(u.addr, u.old), e.removeCache(u.addr, u.addr+uint64(len(u.old))))
	}
	e.undo = e.undo[:0]
	return errors.Join(errs...)
}

func (e *engine) delHooks(hs []uc.Hook) error {
	var errs []error
	for _, h := range hs {
		errs = append(errs, e.u.HookDel(h))
		e.churn++
	}
	return errors.Join(errs...)
}

// arena maps a region that lives as long as the engine: code goes there,
// written with writeCode. Code unmapped and mapped again at the same address
// would run its old translations, and a full translation flush costs over a
// second, so code is never unmapped, only rewritten.
func (e *engine) arena(addr, size uint64) error {
	if err := e.u.MemMapProt(addr, size, uc.PROT_ALL); err != nil {
		return fmt.Errorf("emu: mapping the arena %#x..%#x: %w", addr, addr+size, err)
	}
	e.arenas = append(e.arenas, [2]uint64{addr, addr + size})
	return nil
}

// mapForLife maps a data region that lives as long as the engine, as the
// arenas do: what every world uses at the same place (the stack, the
// struct bpf_prog pages) is mapped once, not per load.
func (e *engine) mapForLife(addr, size uint64, prot int) error {
	return e.u.MemMapProt(addr, size, prot)
}

// begin starts loading another world: what the current one mapped is kept
// aside for reuse until commit.
func (e *engine) begin() {
	e.kept = append(e.kept, e.fixed...)
	e.fixed, e.lazies, e.fault = nil, nil, nil
	if e.retained == nil {
		e.retained = map[uint64]pageInfo{}
	}
	for page, pi := range e.paged {
		e.retained[page] = pi
	}
	clear(e.paged)
}

// commit unmaps what the previous world had mapped and the new one did not
// take over.
func (e *engine) commit() error {
	errs := []error{e.dropKept(func(span) bool { return true })}
	for page, pi := range e.retained {
		errs = append(errs, e.delHooks(pi.guards), e.unmapHostPage(page, pi))
	}
	clear(e.retained)
	return errors.Join(errs...)
}

// reset unmaps everything but the arenas and the engine's own mappings.
func (e *engine) reset() error {
	e.begin()
	return e.commit()
}

// unpage drops the lazily mapped pages (they refill from the model on the
// next touch), keeping memory flat over many runs.
func (e *engine) unpage() error {
	var errs []error
	for page, pi := range e.paged {
		errs = append(errs, e.delHooks(pi.guards), e.unmapHostPage(page, pi))
	}
	clear(e.paged)
	return errors.Join(errs...)
}

// setCodeHooks installs code hooks at exactly addrs, each calling fn.
// Hooks already at a wanted address stay: Unicorn compiles a hook call into
// the translations of hooked instructions only, so reusing hooks (and
// translations) across loads is what makes a load cheap.
func (e *engine) setCodeHooks(addrs []uint64, fn func(addr uint64)) error {
	e.onCode = fn
	want := make(map[uint64]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	var errs []error
	for a, h := range e.codeHooks {
		if !want[a] {
			errs = append(errs, e.delHooks([]uc.Hook{h}))
			delete(e.codeHooks, a)
		}
	}
	for _, a := range addrs {
		if _, ok := e.codeHooks[a]; ok {
			continue
		}
		h, err := e.u.HookAdd(uc.HOOK_CODE, func(_ uc.Unicorn, addr uint64, _ uint32) {
			if e.onCode != nil {
				e.onCode(addr)
			}
		}, a, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.churn++
		e.codeHooks[a] = h
		// A translation made while a was not hooked has no call to the
		// hook: drop it, unless none can exist.
		pg := e.complete[pageDown(a)]
		if pg == nil {
			pg = map[uint64]bool{}
			e.complete[pageDown(a)] = pg
		}
		if !pg[a] {
			errs = append(errs, e.removeCache(a, a+1))
			pg[a] = true
		}
	}
	return errors.Join(errs...)
}

// ran tells the engine what the last run may have translated: code in
// the [start, end) ranges only, or anything when wild (a fault or a broken
// check: the CPU may have gone anywhere). Addresses not hooked during the
// run may now have translations without hook calls.
func (e *engine) ran(code [][2]uint64, wild bool) {
	e.cpuDirty = e.cpuDirty || wild
	forget := func(pg map[uint64]bool) {
		for a := range pg {
			if _, ok := e.codeHooks[a]; !ok {
				delete(pg, a)
			}
		}
	}
	if wild {
		for _, pg := range e.complete {
			forget(pg)
		}
		return
	}
	// Only the pages of the ranges: a run's code is a few pages, the
	// engine may know of many (every world it has held).
	for _, r := range code {
		for page := pageDown(r[0]); page < r[1]; page += pageSize {
			if pg := e.complete[page]; len(pg) > 0 {
				forget(pg)
			}
		}
	}
}

// saveCPU records the CPU state every later run may return to.
func (e *engine) saveCPU() error {
	ctx, err := e.u.ContextSave(nil)
	if err != nil {
		return fmt.Errorf("emu: saving the CPU context: %w", err)
	}
	e.pristine = ctx
	return nil
}

// restoreCPU puts the saved CPU state back when a wild run may have
// changed more than the registers each run sets.
func (e *engine) restoreCPU() error {
	if !e.cpuDirty || e.pristine == nil {
		return nil
	}
	e.cpuDirty = false
	return e.u.ContextRestore(e.pristine)
}

// outcome is how a Start ended.
type outcome struct {
	Fault     *access // a bad access, when there was one
	Exception *uint32 // a CPU exception (x86 vector or arm64 EXCP number)
	Err       error   // Unicorn's error (invalid instruction, ...)
	Budget    bool    // the run entered more blocks than its budget
	Timeout   bool    // the time limit ran out first: the machine was too slow
	PC        uint64
}

// halt stops the current run for good (a stepped run's exact budget).
func (e *engine) halt() {
	e.halted = true
	e.u.Stop()
}

// addStepHooks calls code before every instruction in the ranges
// ([first, last] each) and
// mem on every memory read and write. Unicorn calls hooks only from
// translations made after they were added, so this is for a fresh engine
// whose code has not run (Backend.Load of a stepped world).
func (e *engine) addStepHooks(ranges [][2]uint64, code func(addr uint64, size uint32), mem func(write bool, addr uint64, size int, value int64)) error {
	for _, r := range ranges {
		if _, err := e.u.HookAdd(uc.HOOK_CODE, func(_ uc.Unicorn, addr uint64, size uint32) { code(addr, size) }, r[0], r[1]); err != nil {
			return err
		}
	}
	_, err := e.u.HookAdd(uc.HOOK_MEM_READ|uc.HOOK_MEM_WRITE, func(_ uc.Unicorn, typ int, addr uint64, size int, value int64) {
		mem(typ == uc.MEM_WRITE, addr, size, value)
	}, 1, 0)
	return err
}

// run emulates from pc until the CPU reaches until, a fault, the budget
// of blocks, or the time limit, a safety net for a machine too slow to
// finish the budget in time.
func (e *engine) run(pc, until, blocks uint64, limit time.Duration) outcome {
	e.fault, e.exception = nil, nil
	start := time.Now()
	deadline := start.Add(limit)
	e.deadline.Store(deadline.UnixNano())
	e.halted = false
	e.budget.start(blocks)
	err := e.u.Start(pc, until)
	e.fenced()
	for err == nil && e.fault == nil && e.exception == nil && !e.halted && !e.budget.exhausted() && e.pc() != until && time.Now().Before(deadline) {
		// Stopped early by a late watchdog: resume, without counting
		// again the block the stop interrupted.
		pc := e.pc()
		e.budget.resumeAt(pc)
		err = e.u.Start(pc, until)
		e.fenced()
	}
	e.deadline.Store(0)
	if len(e.undo) > 0 {
		if uerr := e.undoBlocked(); uerr != nil && err == nil {
			err = uerr
		}
	}
	out := outcome{Fault: e.fault, Exception: e.exception, PC: e.pc()}
	if out.Fault != nil {
		out.PC = out.Fault.PC
		return out
	}
	if out.Exception != nil {
		return out
	}
	if err != nil {
		out.Err = err
		return out
	}
	switch {
	case e.budget.exhausted():
		out.Budget = true
	case out.PC != until:
		out.Timeout = true
	}
	return out
}
