// Package emu is the Unicorn harness, and the only cgo in tailsim: an Engine
// wraps one Unicorn instance with the memory model every backend needs
// (exactly bounded objects, lazily paged sparse regions, faults as values).
package emu

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// Arch is an emulated CPU.
type Arch uint8

const (
	X86_64 Arch = iota
	ARM64
)

func (a Arch) String() string { return [...]string{"x86_64", "arm64"}[a] }

// PageSize is Unicorn's mapping granularity on both arches.
const PageSize = 0x1000

func pageDown(a uint64) uint64 { return a &^ (PageSize - 1) }
func pageUp(a uint64) uint64   { return (a + PageSize - 1) &^ (PageSize - 1) }

// Lazy is a sparse region: its pages are mapped on first touch and filled
// by Fill, so a prog array of any u32 size costs only the pages a run reads.
type Lazy struct {
	Name       string
	Start, End uint64 // [Start, End): accesses outside are faults
	// Fill writes the initial contents of the page at addr (PageSize bytes).
	Fill func(addr uint64, page []byte)
}

// Access is a memory access that hit nothing the scenario declared.
type Access struct {
	Addr  uint64
	Size  int
	Write bool
	Fetch bool
	PC    uint64
	// Regs are the general registers when the access was made (arm64:
	// x0–x30 then sp), so the faulting instruction can be found: Unicorn
	// does not keep the arm64 PC exact inside memory hooks.
	Regs []uint64
}

var arm64GPRs = func() []int {
	var r []int
	for i := 0; i <= 28; i++ {
		r = append(r, uc.ARM64_REG_X0+i)
	}
	return append(r, uc.ARM64_REG_X29, uc.ARM64_REG_X30, uc.ARM64_REG_SP)
}()

// Engine is one Unicorn instance and what is mapped in it.
type Engine struct {
	Arch Arch
	U    uc.Unicorn

	fixed     []span           // regions mapped for the whole load
	lazies    []*Lazy          // sorted by Start
	paged     map[uint64]*Lazy // lazily mapped page -> region
	guards    []uc.Hook        // hooks on mapped bytes that belong to no object
	fault     *Access          // the first bad access of the current run
	exception *uint32          // the first CPU exception of the current run
	pcReg     int

	// The run budget: a watchdog goroutine stops a run past its deadline.
	// Unicorn's own timeout starts a thread per run (~90 µs measured) and
	// its instruction count, combined with address hooks, makes every
	// instruction walk every hook (~6x slower measured); this costs two
	// atomic stores per run.
	deadline atomic.Int64 // unix ns; 0 while idle
	done     chan struct{}

	loads int // worlds loaded so far (see Backend.release)
}

type span struct{ start, end uint64 }

// NewEngine creates an engine with the hooks that turn bad accesses into
// findings.
func NewEngine(arch Arch) (*Engine, error) {
	var u uc.Unicorn
	var err error
	e := &Engine{Arch: arch, paged: map[uint64]*Lazy{}}
	switch arch {
	case X86_64:
		u, err = uc.NewUnicorn(uc.ARCH_X86, uc.MODE_64)
		e.pcReg = uc.X86_REG_RIP
	case ARM64:
		u, err = uc.NewUnicorn(uc.ARCH_ARM64, uc.MODE_ARM)
		e.pcReg = uc.ARM64_REG_PC
	default:
		return nil, fmt.Errorf("emu: unknown arch %d", arch)
	}
	if err != nil {
		return nil, fmt.Errorf("emu: creating a %s engine: %w", arch, err)
	}
	e.U = u
	e.done = make(chan struct{})
	go e.watchdog()
	// Unmapped accesses: page in a lazy region or record the fault.
	if _, err := u.HookAdd(uc.HOOK_MEM_UNMAPPED, e.onUnmapped, 1, 0); err != nil {
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
		return nil, err
	}
	return e, nil
}

// Close releases the Unicorn instance.
func (e *Engine) Close() error {
	close(e.done)
	return e.U.Close()
}

const watchdogTick = 5 * time.Millisecond

func (e *Engine) watchdog() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case now := <-t.C:
			if d := e.deadline.Load(); d != 0 && now.UnixNano() > d {
				// A stop that arrives after this run ended reaches the
				// next one early; Run notices and resumes.
				e.U.Stop()
			}
		}
	}
}

// PC reads the program counter.
func (e *Engine) PC() uint64 {
	pc, _ := e.U.RegRead(e.pcReg)
	return pc
}

func (e *Engine) onUnmapped(u uc.Unicorn, typ int, addr uint64, size int, value int64) bool {
	if l := e.lazyAt(addr); l != nil && addr+uint64(size) <= l.End {
		page := pageDown(addr)
		if err := e.mapLazyPage(l, page); err == nil {
			// An access straddling into the next page faults again there
			// and is paged in the same way.
			return true
		}
	}
	e.recordFault(Access{Addr: addr, Size: size, Write: typ == uc.MEM_WRITE_UNMAPPED, Fetch: typ == uc.MEM_FETCH_UNMAPPED})
	return false
}

func (e *Engine) recordFault(a Access) {
	if e.fault == nil {
		a.PC = e.PC()
		if e.Arch == ARM64 {
			a.Regs, _ = e.U.RegReadBatch(arm64GPRs)
		}
		e.fault = &a
	}
}

func (e *Engine) lazyAt(addr uint64) *Lazy {
	i := sort.Search(len(e.lazies), func(i int) bool { return e.lazies[i].End > addr })
	if i < len(e.lazies) && e.lazies[i].Start <= addr {
		return e.lazies[i]
	}
	return nil
}

func (e *Engine) mapLazyPage(l *Lazy, page uint64) error {
	if err := e.U.MemMapProt(page, PageSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return err
	}
	buf := make([]byte, PageSize)
	l.Fill(page, buf)
	if err := e.U.MemWrite(page, buf); err != nil {
		return err
	}
	e.paged[page] = l
	// Bytes of the page outside the region are guarded exactly.
	if page < l.Start {
		e.guard(page, l.Start)
	}
	if end := page + PageSize; end > l.End {
		e.guard(l.End, end)
	}
	return nil
}

// Map maps [addr, addr+len(data)) with data and guards the rest of its
// pages, so an access one byte outside the object is a fault.
func (e *Engine) Map(addr uint64, data []byte, prot int) error {
	if len(data) == 0 {
		return nil
	}
	start, end := pageDown(addr), pageUp(addr+uint64(len(data)))
	if err := e.U.MemMapProt(start, end-start, prot); err != nil {
		return fmt.Errorf("emu: mapping %#x..%#x: %w", start, end, err)
	}
	e.fixed = append(e.fixed, span{start, end})
	if err := e.U.MemWrite(addr, data); err != nil {
		return err
	}
	if start < addr {
		e.guard(start, addr)
	}
	if last := addr + uint64(len(data)); last < end {
		e.guard(last, end)
	}
	return nil
}

// AddLazy registers a sparse region; nothing is mapped until touched.
func (e *Engine) AddLazy(l *Lazy) error {
	for _, o := range e.lazies {
		if l.Start < o.End && o.Start < l.End {
			return fmt.Errorf("emu: lazy region %s overlaps %s", l.Name, o.Name)
		}
	}
	e.lazies = append(e.lazies, l)
	sort.Slice(e.lazies, func(i, j int) bool { return e.lazies[i].Start < e.lazies[j].Start })
	return nil
}

// LazyPageMapped reports whether the page holding addr has been paged in.
func (e *Engine) LazyPageMapped(addr uint64) bool { return e.paged[pageDown(addr)] != nil }

// guard makes [start, end) of an already mapped page a fault on any access.
func (e *Engine) guard(start, end uint64) {
	// Unicorn matches a hook's range against the access's first byte, so
	// the hook starts early enough to see accesses that straddle into the
	// guard and filters them exactly.
	const widest = 8 // the widest access the JITs emit
	from := start - min(start, widest-1)
	h, err := e.U.HookAdd(uc.HOOK_MEM_READ|uc.HOOK_MEM_WRITE, func(u uc.Unicorn, typ int, addr uint64, size int, value int64) {
		if addr+uint64(size) <= start || addr >= end {
			return
		}
		e.recordFault(Access{Addr: addr, Size: size, Write: typ == uc.MEM_WRITE})
		u.Stop()
	}, from, end-1)
	if err == nil {
		e.guards = append(e.guards, h)
	}
}

// Arena maps a region that lives as long as the engine: code goes there,
// written with WriteCode. Code unmapped and mapped again at the same address
// would run its old translations, and a full translation flush costs over a
// second, so code is never unmapped, only rewritten.
func (e *Engine) Arena(addr, size uint64) error {
	if err := e.U.MemMapProt(addr, size, uc.PROT_ALL); err != nil {
		return fmt.Errorf("emu: mapping the arena %#x..%#x: %w", addr, addr+size, err)
	}
	return nil
}

// Reset unmaps everything but the arenas, so the engine can load another
// world.
func (e *Engine) Reset() error {
	var errs []error
	for _, s := range e.fixed {
		errs = append(errs, e.U.MemUnmap(s.start, s.end-s.start))
	}
	for page := range e.paged {
		errs = append(errs, e.U.MemUnmap(page, PageSize))
	}
	for _, h := range e.guards {
		errs = append(errs, e.U.HookDel(h))
	}
	e.fixed, e.lazies, e.guards, e.fault = nil, nil, nil, nil
	clear(e.paged)
	return errors.Join(errs...)
}

// Unpage drops the lazily mapped pages (they refill from the model on the
// next touch), keeping memory flat over many runs.
func (e *Engine) Unpage() error {
	var errs []error
	for page := range e.paged {
		errs = append(errs, e.U.MemUnmap(page, PageSize))
	}
	clear(e.paged)
	return errors.Join(errs...)
}

// Outcome is how a Start ended.
type Outcome struct {
	Fault     *Access // a bad access, when there was one
	Exception *uint32 // a CPU exception (x86 vector or arm64 EXCP number)
	Err       error   // Unicorn's error (invalid instruction, ...)
	Timeout   bool    // the time budget ran out
	PC        uint64
}

// Run emulates from pc until the CPU reaches until, a fault, or the time
// limit.
func (e *Engine) Run(pc, until uint64, limit time.Duration) Outcome {
	e.fault, e.exception = nil, nil
	start := time.Now()
	deadline := start.Add(limit)
	e.deadline.Store(deadline.UnixNano())
	err := e.U.Start(pc, until)
	for err == nil && e.fault == nil && e.exception == nil && e.PC() != until && time.Now().Before(deadline) {
		err = e.U.Start(e.PC(), until) // stopped early by a late watchdog: resume
	}
	e.deadline.Store(0)
	out := Outcome{Fault: e.fault, Exception: e.exception, PC: e.PC()}
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
	if out.PC != until {
		out.Timeout = true
	}
	return out
}
