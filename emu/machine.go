package emu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/jit"
	"tailsim/prog"
)

// archSpec is what differs between the emulated arches; everything else —
// memory layout, arrays, slot changes, hooks and checks — is shared.
type archSpec struct {
	name      string
	arch      Arch
	tailEntry int // where tail calls land in bpf_func
	compile   func(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, v prog.Variant, l prog.Layout) (*jit.Image, error)
	stubs     func() []byte // the helper stubs page, with the sentinel

	// Registers read at every tail-call hook, their names, and the roles
	// some of them play (indexes into regs).
	regs           []int
	names          []string
	r1, r2, r3, sp int
	kept           []int // R6–R9 and the BPF frame pointer: unchanged on fall-through
	// expectedSP is where the stack pointer must be when a tail call jumps.
	expectedSP func(regs []uint64) (uint64, string)
	// tccPtr finds the pointer to the shared tail-call counter.
	tccPtr func(m *machine, regs []uint64, img *jit.Image) uint64
	// jumpTarget is the register a non-direct tail call jumps through.
	jumpTarget func(regs []uint64, kind prog.SiteKind) uint64

	spReg, r1Reg, r0Reg int
	scratch             []int // zeroed before each run
	// saved are the ABI callee-saved registers, given these values on
	// entry and checked at the return.
	saved      map[int]uint64
	savedNames map[int]string
	// enter prepares the return to the sentinel; it returns the stack
	// pointer to start with and the one expected after the return.
	enter func(m *machine, sp uint64) (start, after uint64)
	// directTailCalls is the JIT's (x86: direct calls with poke sites).
	directTailCalls bool
	disasm          func(code []byte, pc uint64) string
	// setup prepares, once per engine, what the arch's inlined code reads
	// besides the world.
	setup func(e *Engine) error
	// locateFault corrects the PC Unicorn reports for a bad access.
	locateFault func(m *machine, pc uint64, f *Access) uint64
}

// Backend is an emulated arch: the kernel's JIT output run in Unicorn.
// Engines are pooled and reused across loads.
type Backend struct {
	spec *archSpec
	// hard is what the spec emits; newSpec builds the spec for another set
	// of the protections in has, for loads that ask for more.
	hard, has prog.Hardening
	newSpec   func(prog.Hardening) *archSpec
	pool      *enginePool

	mu       sync.Mutex
	hardened map[prog.Hardening]*Backend
}

// enginePool holds idle engines of one arch. A backend and its hardened
// siblings share one: the engine's own set-up (stubs, system registers)
// does not depend on the protections, and every engine costs memory (its
// arena, its code shadow, Unicorn's translation buffer).
type enginePool struct {
	mu   sync.Mutex
	free []*Engine
}

func newBackend(hard, has prog.Hardening, newSpec func(prog.Hardening) *archSpec) *Backend {
	hard &= has
	return &Backend{spec: newSpec(hard), hard: hard, has: has, newSpec: newSpec, pool: &enginePool{}}
}

// with is the backend emitting h, sharing b's engines.
func (b *Backend) with(h prog.Hardening) *Backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hardened == nil {
		b.hardened = map[prog.Hardening]*Backend{}
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

// DefaultBudget bounds the instructions of one emulated invocation.
const DefaultBudget = 1_000_000

func (b *Backend) engine() (*Engine, error) {
	p := b.pool
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return e, nil
	}
	p.mu.Unlock()
	e, err := NewEngine(b.spec.arch)
	if err != nil {
		return nil, err
	}
	if err := e.Arena(StubBase, ArenaSize); err != nil {
		return nil, err
	}
	// The stack lives as long as the engine too: mapping and zeroing a
	// megabyte per load was a third of a fuzz case. Nothing is mapped
	// around it, so running off either end is still a fault.
	if err := e.U.MemMapProt(StackLo, StackHi-StackLo, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, err
	}
	// So do the struct bpf_prog slots, rewritten per load. The code only
	// reads them, but they are mapped writable with a hook that makes a
	// write a fault: Unicorn turns a read-only region writable and back
	// for every MemWrite into it, which rebuilds its memory map and cost
	// more than the rest of a load together (measured).
	if err := e.U.MemMapProt(ProgBase, MaxProgs*PageSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return nil, err
	}
	if err := e.GuardWrites(ProgBase, ProgBase+MaxProgs*PageSize); err != nil {
		return nil, err
	}
	if err := e.U.MemMapProt(ThreadInfo, PageSize, uc.PROT_READ); err != nil {
		return nil, err
	}
	if err := e.WriteCode(StubBase, b.spec.stubs()); err != nil {
		return nil, err
	}
	if b.spec.setup != nil {
		if err := b.spec.setup(e); err != nil {
			return nil, err
		}
	}
	// JITed code is read-only in the kernel (set_memory_ro): a store into
	// it is a finding, and it keeps the arena equal to WriteCode's shadow.
	if err := e.GuardWrites(StubBase, StubBase+ArenaSize); err != nil {
		return nil, err
	}
	if err := e.SaveCPU(); err != nil {
		return nil, err
	}
	return e, nil
}

// maxChurn is how many hooks an engine may add and delete before it is
// retired: Unicorn 2.0.1 keeps ~440 bytes for each (measured), ~22 MB here,
// and only closing the engine gives that memory back.
const maxChurn = 50_000

func (b *Backend) release(e *Engine) {
	e.onCode = nil
	if e.Churn() >= maxChurn {
		e.Close()
		return
	}
	b.pool.mu.Lock()
	b.pool.free = append(b.pool.free, e)
	b.pool.mu.Unlock()
}

func helperAddr(id int32) (uint64, bool) {
	for i, h := range prog.Helpers {
		if h.ID == id {
			return StubBase + uint64(i)*StubSize, true
		}
	}
	return 0, false
}

// Loaded is one function image at its address in the emulated memory.
type Loaded struct {
	Prog *prog.Program
	Fn   int
	Addr uint64
	Img  *jit.Image
}

type machine struct {
	spec    *archSpec
	b       *Backend
	e       *Engine
	w       *prog.World
	v       prog.Variant
	o       prog.LoadOptions
	images  []*Loaded // sorted by Addr
	entry   map[*prog.Program]uint64
	progAt  map[uint64]*prog.Program // tail-call entry address -> program
	arrays  map[*prog.ProgArray]*arrayImage
	structs map[*prog.Program]uint64 // struct bpf_prog addresses
	sites   map[uint64][]siteEvent   // hook address -> what happens there
	code    [][2]uint64              // the images of the world: [start, end) each, by address
	// ctxSaved is ctx as a run started, for its rerun (Run).
	ctxSaved []byte

	// per run
	res     *prog.Result
	pending *pendingCall
	pend    pendingCall // the storage pending points at
	tccPtr  uint64
	// lastCount is the counter as the last tail call left it.
	lastCount uint64
	counted   bool // lastCount was read from the current tccPtr
	batch     *uc.RegBatch
	buf8      [8]byte
	// The registers every run starts with: sp, R1, then the scratch and
	// callee-saved ones, written in one call.
	entryBatch *uc.RegBatch
	entryVals  []uint64
}

type siteKind uint8

const (
	atStart siteKind = iota
	atJump
	atTarget
	atOut
)

type siteEvent struct {
	kind siteKind
	l    *Loaded
	s    *jit.TailSite
}

type pendingCall struct {
	l     *Loaded
	s     *jit.TailSite
	regs  [16]uint64
	count uint64
}

// Load implements prog.Backend.
func (b *Backend) Load(w *prog.World, v prog.Variant, o prog.LoadOptions) (prog.Machine, error) {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if h := b.hard | o.Hardening&b.has; h != b.hard {
		return b.with(h).Load(w, v, o)
	}
	e, err := b.engine()
	if err != nil {
		return nil, err
	}
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
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func newMachine(spec *archSpec, w *prog.World, v prog.Variant) *machine {
	return &machine{spec: spec, w: w, v: v, entry: map[*prog.Program]uint64{}, progAt: map[uint64]*prog.Program{},
		arrays: map[*prog.ProgArray]*arrayImage{}, structs: map[*prog.Program]uint64{}, sites: map[uint64][]siteEvent{}}
}

// compileWorld JITs every function of w at the address the emulator loads
// it at, without an engine: for listings.
func compileWorld(spec *archSpec, w *prog.World, v prog.Variant) ([]*Loaded, error) {
	m := newMachine(spec, w, v)
	if err := m.compile(); err != nil {
		return nil, err
	}
	return m.images, nil
}

// compile places and JITs every function. Each function gets pages in
// proportion to its instructions; one that outgrows them is placed again
// with twice the room.
func (m *machine) compile() error {
	for scale := 1; ; scale *= 2 {
		err := m.compileScaled(scale)
		if err != errOutgrown {
			return err
		}
		if scale >= CodePages {
			return fmt.Errorf("%s: the code does not fit the %d-page code arena", m.spec.name, CodePages)
		}
	}
}

var errOutgrown = errors.New("an image outgrew its pages")

// codePages is the room a function gets: generous for the JITs' longest
// sequences (a tail call is ~40 instructions), times scale.
func codePages(f *prog.Function, scale int) int {
	return (scale*(512+64*len(f.Insns)) + PageSize - 1) / PageSize
}

func (m *machine) compileScaled(scale int) error {
	w := m.w
	clear(m.entry)
	clear(m.progAt)
	m.images = m.images[:0]
	pages := 0
	for _, p := range w.Progs {
		for _, f := range p.Funcs {
			pages += codePages(f, scale)
		}
	}
	if pages > CodePages {
		return fmt.Errorf("%s: %d pages of code, more than the %d-page code arena", m.spec.name, pages, CodePages)
	}
	pl := newPlacer()
	funcAddr := map[*prog.Program][]uint64{}
	room := map[uint64]int{}
	for pi, p := range w.Progs {
		m.structs[p] = ProgBase + uint64(pi)*PageSize
		for fn, f := range p.Funcs {
			n := codePages(f, scale)
			page, ok := pl.place(funcPage(w, p, fn, m.v, uint64(m.spec.tailEntry), n), n)
			if !ok {
				return fmt.Errorf("%s: %d pages of code do not fit the %d-page code arena", m.spec.name, pages, CodePages)
			}
			addr := CodeBase + uint64(page)*PageSize
			funcAddr[p] = append(funcAddr[p], addr)
			room[addr] = n * PageSize
		}
		m.entry[p] = funcAddr[p][0]
		m.progAt[funcAddr[p][0]+uint64(m.spec.tailEntry)] = p
	}
	entries := map[*prog.Program]uint64{}
	for p, a := range m.entry {
		entries[p] = a + uint64(m.spec.tailEntry)
	}
	for ai, a := range w.Arrays {
		m.arrays[a] = &arrayImage{a: a, base: ArrayBase + uint64(ai)*ArrayStride, layout: w.Layout, patched: m.v == prog.Patched,
			progs: m.structs, entries: entries}
	}
	for _, p := range w.Progs {
		for fn := range p.Funcs {
			res := resolver{m: m, funcs: funcAddr[p]}
			img, err := m.spec.compile(p, fn, w.Fixups[p], funcAddr[p][fn], res, m.v, w.Layout)
			if err != nil {
				return fmt.Errorf("program %s: %w", p.Name, err)
			}
			if len(img.Code) > room[funcAddr[p][fn]] {
				return errOutgrown
			}
			m.images = append(m.images, &Loaded{Prog: p, Fn: fn, Addr: funcAddr[p][fn], Img: img})
		}
	}
	sort.Slice(m.images, func(i, j int) bool { return m.images[i].Addr < m.images[j].Addr })
	m.code = m.code[:0]
	for _, l := range m.images {
		m.code = append(m.code, [2]uint64{l.Addr, l.Addr + uint64(len(l.Img.Code))})
	}
	return nil
}

// load puts the world into the engine. The engine still holds the worlds
// loaded before (see Engine.Begin and funcPage): what this one shares with
// them is rewritten in place, not mapped, hooked and translated again.
func (m *machine) load() error {
	w, e := m.w, m.e
	if err := m.compile(); err != nil {
		return err
	}
	if len(w.Progs) > MaxProgs {
		return fmt.Errorf("%s: more than %d programs", m.spec.name, MaxProgs)
	}
	e.Begin()
	for _, a := range w.Arrays {
		img := m.arrays[a]
		if err := e.AddLazy(&Lazy{Name: a.Name, Start: img.base, End: img.end(), Fill: img.fill}); err != nil {
			return err
		}
	}
	// struct bpf_prog: only bpf_func is read. Pages a bigger world wrote
	// before are cleared, so no stale program is reachable.
	st := e.pageBuf
	for i := range max(len(w.Progs), e.progsWritten) {
		clear(st)
		if i < len(w.Progs) {
			binary.LittleEndian.PutUint64(st[w.Layout.BpfFunc:], m.entry[w.Progs[i]])
		}
		if err := e.U.MemWrite(ProgBase+uint64(i)*PageSize, st); err != nil {
			return err
		}
	}
	e.progsWritten = len(w.Progs)
	for _, l := range m.images {
		if err := e.WriteCode(l.Addr, l.Img.Code); err != nil {
			return err
		}
	}
	if err := e.SetImages(m.code); err != nil {
		return err
	}
	if len(w.Ctx) > 0 {
		if err := e.Map(CtxBase, w.Ctx, uc.PROT_READ|uc.PROT_WRITE); err != nil {
			return err
		}
	}
	if err := e.Commit(); err != nil {
		return err
	}
	for _, l := range m.images {
		for i := range l.Img.Sites {
			s := &l.Img.Sites[i]
			// Direct calls: bpf_tail_call_direct_fixup() pokes the sites
			// whose slot is filled when the program is loaded.
			if s.Kind == prog.Direct {
				if t := s.Site.Maps[0].Poked(uint32(s.Site.Key)); t != nil {
					if err := m.poke(l, s, nil, t); err != nil {
						return err
					}
				}
			}
			m.at(l.Addr+uint64(s.Start), siteEvent{atStart, l, s})
			m.at(l.Addr+uint64(s.Out), siteEvent{atOut, l, s})
			if s.Kind == prog.Direct {
				m.at(l.Addr+uint64(s.Target), siteEvent{atTarget, l, s})
			} else {
				m.at(l.Addr+uint64(s.Jump), siteEvent{atJump, l, s})
			}
		}
	}
	addrs := make([]uint64, 0, len(m.sites))
	for a := range m.sites {
		addrs = append(addrs, a)
	}
	return e.SetCodeHooks(addrs, m.onSite)
}

func (m *machine) at(addr uint64, ev siteEvent) { m.sites[addr] = append(m.sites[addr], ev) }

type resolver struct {
	m     *machine
	funcs []uint64
}

func (r resolver) Helper(id int32) (uint64, bool) { return helperAddr(id) }
func (r resolver) Func(fn int) uint64             { return r.funcs[fn] }
func (r resolver) Map(name string) uint64         { return r.m.arrays[r.m.w.Array(name)].base }

// poke rewrites a direct call's two x86 sites as bpf_arch_poke_desc_update()
// does for a slot going from old to new.
func (m *machine) poke(l *Loaded, s *jit.TailSite, old, new *prog.Program) error {
	target, bypass := l.Addr+uint64(s.Target), l.Addr+uint64(s.Bypass)
	out := l.Addr + uint64(s.Out)
	jmp := func(at, to uint64) []byte {
		b := []byte{0xE9, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(int64(to)-int64(at+5))))
		return b
	}
	nop5 := []byte{0x0F, 0x1F, 0x44, 0x00, 0x00}
	type write struct {
		at   uint64
		code []byte
	}
	var writes []write
	switch {
	case new != nil && old == nil:
		writes = []write{{target, jmp(target, m.entry[new]+uint64(m.spec.tailEntry))}, {bypass, nop5}}
	case new != nil:
		writes = []write{{target, jmp(target, m.entry[new]+uint64(m.spec.tailEntry))}}
	case old != nil:
		writes = []write{{bypass, jmp(bypass, out)}, {target, nop5}}
	}
	for _, wr := range writes {
		if err := m.e.WriteCode(wr.at, wr.code); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements prog.Machine: the memory and code the kernel changes for
// each step of a slot update.
func (m *machine) Apply(ef prog.Effect) error {
	ai := m.arrays[ef.Array]
	var at, val uint64
	switch ef.Kind {
	case prog.EffectPtr:
		at = ai.slotAddr(uint64(ef.Index))
		if ef.New != nil {
			val = ai.progs[ef.New]
		}
	case prog.EffectCached:
		if !ai.patched {
			return nil
		}
		at = ai.slotAddr(uint64(ai.a.MaxEntries) + uint64(ef.Index))
		if ef.New != nil {
			val = ai.entries[ef.New]
		}
	case prog.EffectPoke:
		if !m.spec.directTailCalls {
			return nil
		}
		for _, l := range m.images {
			for i := range l.Img.Sites {
				s := &l.Img.Sites[i]
				if s.Kind == prog.Direct && s.Site.Maps[0] == ef.Array && uint32(s.Site.Key) == ef.Index {
					if err := m.poke(l, s, ef.Old, ef.New); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if !m.e.LazyPageMapped(at) {
		return nil // filled from the model when first touched
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], val)
	return m.e.U.MemWrite(at, b[:])
}

// Close implements prog.Machine. The world stays in the engine for the
// next load to reuse.
func (m *machine) Close() { m.b.release(m.e) }
