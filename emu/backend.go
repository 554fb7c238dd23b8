package emu

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/prog"
)

// Backend is an emulated arch: the kernel's JIT output run in Unicorn.
// Engines are pooled and reused across loads.
type Backend struct {
	spec *archSpec
	// hard is what the spec emits; newSpec builds the spec for another set
	// of the protections in has, for loads that ask for more.
	hard, has prog.Config
	newSpec   func(prog.Config) *archSpec
	pool      *enginePool

	mu       sync.Mutex
	hardened map[prog.Config]*Backend
}

// enginePool holds idle engines of one arch. A backend and its hardened
// siblings share one: the engine's own set-up (stubs, system registers)
// does not depend on the protections, and every engine costs memory (its
// arena, its code shadow, Unicorn's translation buffer).
type enginePool struct {
	mu   sync.Mutex
	free []*engine
}

func newBackend(hard, has prog.Config, newSpec func(prog.Config) *archSpec) *Backend {
	hard &= has
	return &Backend{spec: newSpec(hard), hard: hard, has: has, newSpec: newSpec, pool: &enginePool{}}
}

// with is the backend emitting h, sharing b's engines.
func (b *Backend) with(h prog.Config) *Backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hardened == nil {
		b.hardened = map[prog.Config]*Backend{}
	}
	o := b.hardened[h]
	if o == nil {
		o = &Backend{spec: b.newSpec(h), hard: h, has: b.has, newSpec: b.newSpec, pool: b.pool}
		b.hardened[h] = o
	}
	return o
}

// Name implements prog.Backend.
func (b *Backend) Name() string { return b.spec.name }

// DirectTailCalls implements prog.Backend.
func (b *Backend) DirectTailCalls() bool { return b.spec.directTailCalls }

// defaultBudget bounds the instructions of one emulated invocation.
const defaultBudget = 1_000_000

func (b *Backend) acquire() (*engine, error) {
	p := b.pool
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return e, nil
	}
	p.mu.Unlock()
	return b.newReadyEngine()
}

// newReadyEngine is an engine set up for any world of the arch.
func (b *Backend) newReadyEngine() (_ *engine, err error) {
	e, err := newEngine(b.spec.arch)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.close() // a half-made engine is no engine
		}
	}()
	at := b.spec.at
	if err := e.arena(at.stubs, pageSize); err != nil {
		return nil, err
	}
	if err := e.arena(at.code, codePages*pageSize); err != nil {
		return nil, err
	}
	// The stack lives as long as the engine too: mapping and zeroing a
	// megabyte per load was a third of a fuzz case. Nothing is mapped
	// around it, so running off either end is still a fault.
	if err := e.mapForLife(at.stackLo(), stackSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, err
	}
	// So do the struct bpf_prog slots, rewritten per load. The code only
	// reads them, but they are mapped writable with a hook that makes a
	// write a fault: Unicorn turns a read-only region writable and back
	// for every MemWrite into it, which rebuilds its memory map and cost
	// more than the rest of a load together (measured).
	if err := e.mapForLife(at.progs, maxProgs*pageSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, err
	}
	if err := e.guardWrites(at.progs, at.progs+maxProgs*pageSize); err != nil {
		return nil, err
	}
	if err := e.mapForLife(at.threadInfo, pageSize, uc.PROT_READ); err != nil {
		return nil, err
	}
	if err := e.mapKernelData(); err != nil {
		return nil, err
	}
	if err := e.writeCode(at.stubs, b.spec.stubs(at)); err != nil {
		return nil, err
	}
	// The stubs' page holds the return sentinel too.
	e.ownCode = [][2]uint64{{at.stubs, at.stubs + pageSize}}
	if b.spec.setup != nil {
		if err := b.spec.setup(e); err != nil {
			return nil, err
		}
	}
	// JITed code is read-only in the kernel (set_memory_ro): a store into
	// it is a finding, and it keeps the arena equal to writeCode's shadow.
	for _, a := range e.arenas {
		if err := e.guardWrites(a[0], a[1]); err != nil {
			return nil, err
		}
	}
	if err := e.saveCPU(); err != nil {
		return nil, err
	}
	return e, nil
}

// maxChurn is how many hooks an engine may add and delete before it is
// retired: Unicorn 2.0.1 keeps ~440 bytes for each (measured), ~22 MB here,
// and only closing the engine gives that memory back.
const maxChurn = 50_000

// maxLoads is how many worlds an engine loads before it is retired.
// Unicorn never gives back its translation buffer's pages: every world's
// new code adds translations (~17 KB per load and engine, measured over
// fuzz streams), and a fuzz worker holds an engine per arch, variant and
// hardening set (up to twelve), so without a bound resident memory swung
// between 160 and 545 MiB over a 5.5-million-input campaign. At 500 loads
// it stayed near 90 MiB but peaked at 309 MiB when the engines grew old
// together (7.6 million inputs); 200 keeps the sum of their buffers small.
// A new engine costs ~1 ms (BenchmarkNewEngine), under a hundredth of its
// loads' time, and fresh engines run faster.
const maxLoads = 200

func (b *Backend) release(e *engine) {
	e.onCode = nil
	if e.churn >= maxChurn || e.loads >= maxLoads || e.private {
		e.close()
		return
	}
	b.pool.mu.Lock()
	b.pool.free = append(b.pool.free, e)
	b.pool.mu.Unlock()
}

// CloseIdleEngines closes the engines waiting in b's pool (shared with
// its hardened siblings), as http.Transport.CloseIdleConnections does: a
// caller done with a backend gives their memory back; the backend stays
// usable. Each engine holds Unicorn's code buffer and mappings until
// closed, so a program that makes backends by the thousand (a long reuse
// test did) runs out of memory without this (UC_ERR_NOMEM).
func (b *Backend) CloseIdleEngines() {
	b.pool.mu.Lock()
	free := b.pool.free
	b.pool.free = nil
	b.pool.mu.Unlock()
	for _, e := range free {
		e.close()
	}
}

// Load implements prog.Backend.
func (b *Backend) Load(w *prog.World, v prog.Kernel, o prog.LoadOptions) (prog.Machine, error) {
	if o.Budget <= 0 {
		o.Budget = defaultBudget
	}
	if h := b.hard | o.Config&b.has; h != b.hard {
		return b.with(h).Load(w, v, o)
	}
	// A stepped world gets an engine of its own: every translation must
	// carry the step hooks, and no other world may inherit them.
	acquire := b.acquire
	stepped := o.Step || o.Cost
	if o.Step {
		o.Trace = true
	}
	if stepped {
		acquire = b.newReadyEngine
	}
	e, err := acquire()
	if err != nil {
		return nil, err
	}
	e.private = stepped
	e.loads++
	m := newMachine(b.spec, w, v)
	m.b, m.e, m.o = b, e, o
	if m.batch, err = uc.NewRegBatch(b.spec.regs); err != nil {
		m.Close()
		return nil, err
	}
	regs := []int{b.spec.spReg, b.spec.r1Reg}
	m.entryVals = []uint64{0, 0}
	for _, r := range b.spec.scratch {
		regs, m.entryVals = append(regs, r), append(m.entryVals, 0)
	}
	for r, v := range b.spec.saved {
		regs, m.entryVals = append(regs, r), append(m.entryVals, v)
	}
	if m.entryBatch, err = uc.NewRegBatch(regs); err != nil {
		m.Close()
		return nil, err
	}
	if b.spec.pac {
		if m.pacBatch, err = uc.NewRegBatch([]int{uc.ARM64_REG_X30, b.spec.spReg}); err != nil {
			m.Close()
			return nil, err
		}
	}
	m.retRegs = []int{b.spec.r0Reg, b.spec.spReg}
	for r := range b.spec.saved {
		m.retRegs = append(m.retRegs, r)
	}
	if m.retBatch, err = uc.NewRegBatch(m.retRegs); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	if stepped {
		if m.step, err = newStepper(m, o.Budget, o.Step); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// mapKernelData maps the kernel data the inlined helpers read
// (prog.KernelObjects: jiffies, x86's per-CPU cpu_number and
// this_cpu_off), read-only, at the addresses the reference model has them;
// the rest of their pages faults, as in the model.
func (e *engine) mapKernelData() error {
	pages := map[uint64][]prog.KernelObject{}
	var order []uint64
	for _, o := range prog.KernelObjects() {
		p := pageDown(o.Addr)
		if pages[p] == nil {
			order = append(order, p)
		}
		pages[p] = append(pages[p], o)
	}
	for _, p := range order {
		if err := e.mapForLife(p, pageSize, uc.PROT_READ); err != nil {
			return err
		}
		objs := pages[p]
		slices.SortFunc(objs, func(a, b prog.KernelObject) int { return cmp.Compare(a.Addr, b.Addr) })
		at := p
		for _, o := range objs {
			if err := e.u.MemWrite(o.Addr, o.Value); err != nil {
				return err
			}
			if o.Addr > at && len(e.guard(at, o.Addr)) == 0 {
				return fmt.Errorf("emu: guarding the page of %s", o.Name)
			}
			at = o.Addr + uint64(len(o.Value))
		}
		if at < p+pageSize && len(e.guard(at, p+pageSize)) == 0 {
			return fmt.Errorf("emu: guarding the page at %#x", p)
		}
	}
	return nil
}
