package emu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/jit"
	"tailsim/jit/x86"
	"tailsim/prog"
)

func (a addrMap) helperAddr(id int32) (uint64, bool) {
	for i, h := range prog.Helpers {
		if h.ID == id {
			return a.stubs + uint64(i)*stubSize, true
		}
	}
	return 0, false
}

// thunks are the x86 kernel's thunks a JITed jump may go through, in the
// stubs' page after the helpers' stubs. Each does what the kernel's does
// architecturally: __x86_indirect_thunk_rcx (a retpoline: a call whose
// return address it overwrites with rcx, then ret, so the CPU predicts a
// harmless loop) ends at rcx; __x86_return_thunk is "ret; int3". The
// retpoline's speculation trap has no architectural effect, so the
// emulated thunk is "jmp rcx": a tail call through it runs one more
// instruction, as a trace shows.
var thunks = []struct {
	name string
	off  uint64
	code []byte
	note string // for traces
}{
	{x86.ThunkRCX, thunksOff, []byte{0xFF, 0xE1}, "the retpoline's effect: on to rcx"},
	{x86.ReturnThunk, thunksOff + 0x40, []byte{0xC3, 0xCC}, "ret"},
}

// thunkAddr is where thunk name is (x86 only: no other JIT asks).
func (a addrMap) thunkAddr(name string) (uint64, bool) {
	for _, t := range thunks {
		if t.name == name {
			return a.stubs + t.off, true
		}
	}
	return 0, false
}

// thunkAt names the thunk whose code holds addr.
func (a addrMap) thunkAt(addr uint64) (string, bool) {
	for _, t := range thunks {
		if at := a.stubs + t.off; addr >= at && addr < at+uint64(len(t.code)) {
			return t.name, true
		}
	}
	return "", false
}

// ThunkAt names the x86 thunk that starts at addr, for listings.
func ThunkAt(addr uint64) (string, bool) {
	for _, t := range thunks {
		if addr == x86Addrs.stubs+t.off {
			return t.name, true
		}
	}
	return "", false
}

// helperAt is the helper whose stub starts at addr.
func (a addrMap) helperAt(addr uint64) (prog.Helper, bool) {
	if addr < a.stubs || (addr-a.stubs)%stubSize != 0 || (addr-a.stubs)/stubSize >= uint64(len(prog.Helpers)) {
		return prog.Helper{}, false
	}
	return prog.Helpers[(addr-a.stubs)/stubSize], true
}

// HelperAt names the helper whose stub starts at addr, on either arch
// (their kernel texts do not overlap), for listings that name a call's
// target instead of printing its address.
func HelperAt(addr uint64) (prog.Helper, bool) {
	if h, ok := x86Addrs.helperAt(addr); ok {
		return h, true
	}
	return arm64Addrs.helperAt(addr)
}

// MapAt names the map of w that addr points into, as both arches load
// w: "map NAME" at its struct bpf_array, "map NAME+0x..." inside it (an
// array's value, as a map-value ld_imm64 loads it). Listings and the
// kernel oracle name a program's map addresses with it.
func MapAt(w *prog.World, addr uint64) (string, bool) {
	name := func(n string, off uint64) (string, bool) {
		if off == 0 {
			return "map " + n, true
		}
		return fmt.Sprintf("map %s+%#x", n, off), true
	}
	for k, m := range w.Maps {
		if base := prog.ArrayMapAddr(k); addr >= base && addr < base+prog.ArrayMapStride {
			return name(m.Name, addr-base)
		}
	}
	for _, at := range []addrMap{x86Addrs, arm64Addrs} {
		for k, a := range w.Arrays {
			if base := at.arrays + uint64(k)*arrayStride; addr >= base && addr < base+arrayStride {
				return name(a.Name, addr-base)
			}
		}
	}
	return "", false
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
	e       *engine
	w       *prog.World
	v       prog.Kernel
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
	// signed are the return addresses signed and not yet authenticated,
	// innermost last, with the stack pointer that modified them.
	signed   [][2]uint64
	pacBatch *uc.RegBatch // x30 and sp
	// step records every instruction of a stepped run (LoadOptions.Step).
	step    *stepper
	counter counterLoc
	// lastCount is the counter as the last tail call left it.
	lastCount uint64
	preset    uint64 // PresetCount's n
	// presetDone: the run's preset is in place (atBody), or its entry
	// was entered and the first tail call does not preset.
	presetDone bool
	counted    bool // lastCount was read from the current counter
	// tailEntry is where tail calls land in bpf_func under m.v.
	tailEntry int
	batch     *uc.RegBatch
	buf8      [8]byte
	// The registers every run starts with: sp, R1, then the scratch and
	// callee-saved ones, written in one call.
	entryBatch *uc.RegBatch
	entryVals  []uint64
	// The registers read at the top-level return, in one call: R0, sp,
	// then the callee-saved ones in retRegs' order.
	retBatch *uc.RegBatch
	retRegs  []int
}

type siteKind uint8

const (
	atStart siteKind = iota
	atJump
	atTarget
	atOut
	// paciasp and autiasp (archSpec.pac), which need no tail site.
	atSign
	atAuth
	// the stub of an emulated helper (prog.Emulated): the helper's effect
	// happens there.
	atHelper
	// the first body instruction of a program whose subprograms make tail
	// calls, under a kernel that passes the counter by value: a preset
	// counter goes into the entry's own counter there, which the
	// subprograms copy (a chain would have left it in the entry's).
	atBody
)

// PAC's instruction words.
const (
	a64Paciasp = 0xd503233f
	a64Autiasp = 0xd50323bf
)

type siteEvent struct {
	kind   siteKind
	l      *Loaded
	s      *jit.TailSite
	helper int32 // atHelper's
}

type pendingCall struct {
	l     *Loaded
	s     *jit.TailSite
	regs  [16]uint64
	count uint64
	// stepStart is where its instructions begin in a stepped run's Execs.
	stepStart int
}

func newMachine(spec *archSpec, w *prog.World, v prog.Kernel) *machine {
	return &machine{spec: spec, w: w, v: v, tailEntry: spec.tailEntry(v), entry: map[*prog.Program]uint64{}, progAt: map[uint64]*prog.Program{},
		arrays: map[*prog.ProgArray]*arrayImage{}, structs: map[*prog.Program]uint64{}, sites: map[uint64][]siteEvent{}}
}

// compileWorld JITs every function of w at the address the emulator loads
// it at, without an engine: for listings.
func compileWorld(spec *archSpec, w *prog.World, v prog.Kernel) ([]*Loaded, error) {
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
		if scale >= codePages {
			return m.arenaError("the code does not fit")
		}
	}
}

var errOutgrown = errors.New("an image outgrew its pages")

// arenaError says the world's code does not fit the code arena, at the
// largest program's line: that is the one to shrink.
func (m *machine) arenaError(what string) error {
	var largest *prog.Program
	size := func(p *prog.Program) int {
		n := 0
		for _, f := range p.Funcs {
			n += len(f.Insns)
		}
		return n
	}
	for _, p := range m.w.Progs {
		if largest == nil || size(p) > size(largest) {
			largest = p
		}
	}
	return &prog.PosError{Line: largest.Line, Msg: fmt.Sprintf("%s: %s the %d-page code arena (%d MiB, 64 bytes reserved per BPF instruction: about %d instructions per world); the largest program is %s, %d instructions",
		m.spec.name, what, codePages, codePages*pageSize>>20, codePages*pageSize/64, largest.Name, size(largest))}
}

// pagesFor is the room a function gets: generous for the JITs' longest
// sequences (a tail call is ~40 instructions), times scale.
func pagesFor(f *prog.Function, scale int) int {
	return (scale*(512+64*len(f.Insns)) + pageSize - 1) / pageSize
}

func (m *machine) compileScaled(scale int) error {
	w := m.w
	clear(m.entry)
	clear(m.progAt)
	m.images = m.images[:0]
	pages := 0
	for _, p := range w.Progs {
		for _, f := range p.Funcs {
			pages += pagesFor(f, scale)
		}
	}
	if pages > codePages {
		return m.arenaError(fmt.Sprintf("%d pages of code are more than", pages))
	}
	pl := newPlacer()
	funcAddr := map[*prog.Program][]uint64{}
	room := map[uint64]int{}
	for pi, p := range w.Progs {
		m.structs[p] = m.spec.at.structAddr(pi, m.o.Placement)
		for fn, f := range p.Funcs {
			n := pagesFor(f, scale)
			page, ok := pl.place(funcPage(w, p, fn, m.v, uint64(m.tailEntry), n), n)
			if !ok {
				return m.arenaError(fmt.Sprintf("%d pages of code do not fit", pages))
			}
			addr := m.spec.at.code + uint64(page)*pageSize
			funcAddr[p] = append(funcAddr[p], addr)
			room[addr] = n * pageSize
		}
		m.entry[p] = funcAddr[p][0]
		m.progAt[funcAddr[p][0]+uint64(m.tailEntry)] = p
	}
	entries := map[*prog.Program]uint64{}
	for p, a := range m.entry {
		entries[p] = a + uint64(m.tailEntry)
	}
	for ai, a := range w.Arrays {
		m.arrays[a] = &arrayImage{a: a, base: m.spec.at.arrays + uint64(ai)*arrayStride, layout: w.Layout, patched: m.v == prog.Linux618Series,
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
// loaded before (see engine.begin and funcPage): what this one shares with
// them is rewritten in place, not mapped, hooked and translated again.
func (m *machine) load() error {
	w, e := m.w, m.e
	if err := m.compile(); err != nil {
		return err
	}
	if len(w.Progs) > maxProgs {
		return fmt.Errorf("%s: more than %d programs", m.spec.name, maxProgs)
	}
	if len(w.Arrays) > maxArrays {
		return fmt.Errorf("%s: more than %d prog arrays", m.spec.name, maxArrays)
	}
	e.begin()
	for _, a := range w.Arrays {
		img := m.arrays[a]
		if err := e.addLazy(&lazy{Name: a.Name, Start: img.base, End: img.end(), Fill: img.fill}); err != nil {
			return err
		}
	}
	// struct bpf_prog: only bpf_func is read. Pages a bigger world wrote
	// before are cleared, so no stale program is reachable.
	st := e.pageBuf
	at := m.spec.at
	for i := range max(len(w.Progs), e.progsWritten) {
		clear(st)
		if i < len(w.Progs) && m.structs[w.Progs[i]] == at.structAddr(i, prog.PlaceKernel) {
			binary.LittleEndian.PutUint64(st[w.Layout.BpfFunc:], m.entry[w.Progs[i]])
		}
		if err := e.memWrite(at.structAddr(i, prog.PlaceKernel), st); err != nil {
			return err
		}
	}
	e.progsWritten = len(w.Progs)
	// The aligned pages are mapped once per engine as the others are
	// (read-write with a write guard, so a store into one is the same
	// fault under either placement), and cleared when a world no longer
	// uses them.
	aligned := 0
	if m.o.Placement == prog.PlaceAligned {
		aligned = len(w.Progs)
	}
	for i := 1; i < max(aligned, e.alignedWritten); i++ {
		addr := at.structAddr(i, prog.PlaceAligned)
		if e.alignedMapped == 0 {
			// One guard over every page an aligned program can have:
			// each store pays a range check per write hook.
			if err := e.guardWrites(at.structAddr(1, prog.PlaceAligned), at.structAddr(maxProgs, prog.PlaceAligned)); err != nil {
				return err
			}
			e.alignedMapped = 1
		}
		if i == e.alignedMapped {
			// Pages are mapped in order: 1 .. alignedMapped-1 are.
			if err := e.mapForLife(addr, pageSize, uc.PROT_READ|uc.PROT_WRITE); err != nil {
				return err
			}
			e.alignedMapped++
		}
		clear(st)
		if i < aligned {
			binary.LittleEndian.PutUint64(st[w.Layout.BpfFunc:], m.entry[w.Progs[i]])
		}
		if err := e.memWrite(addr, st); err != nil {
			return err
		}
	}
	e.alignedWritten = aligned
	for _, l := range m.images {
		if err := e.writeCode(l.Addr, l.Img.Code); err != nil {
			return err
		}
	}
	if err := e.setImages(m.code); err != nil {
		return err
	}
	if len(w.Ctx) > 0 {
		if err := e.mapObject(ctxBase, w.Ctx, uc.PROT_READ|uc.PROT_WRITE); err != nil {
			return err
		}
	}
	// The array maps, as struct bpf_array: the header with max_entries,
	// then the values from ptrs[]'s offset, with exact bounds.
	for k, a := range w.Maps {
		obj := make([]byte, uint64(w.Layout.Ptrs)+uint64(len(a.Values)))
		binary.LittleEndian.PutUint32(obj[w.Layout.MaxEntries:], a.MaxEntries)
		copy(obj[w.Layout.Ptrs:], a.Values)
		if err := e.mapObject(prog.ArrayMapAddr(k), obj, uc.PROT_READ|uc.PROT_WRITE); err != nil {
			return err
		}
	}
	if err := e.commit(); err != nil {
		return err
	}
	for _, l := range m.images {
		if m.spec.pac {
			for off := 0; off+4 <= len(l.Img.Code); off += 4 {
				switch binary.LittleEndian.Uint32(l.Img.Code[off:]) {
				case a64Paciasp:
					m.at(l.Addr+uint64(off), siteEvent{kind: atSign, l: l})
				case a64Autiasp:
					m.at(l.Addr+uint64(off), siteEvent{kind: atAuth, l: l})
				}
			}
		}
		if l.Fn == 0 && m.v.CounterByValue() && subprogTailCalls(l.Prog) {
			for _, in := range l.Img.Insns {
				if in.BPF >= 0 {
					m.at(l.Addr+uint64(in.Off), siteEvent{kind: atBody, l: l})
					break
				}
			}
		}
		for i := range l.Img.Sites {
			s := &l.Img.Sites[i]
			// Direct calls: bpf_tail_call_direct_fixup() pokes the sites
			// whose slot is filled when the program is loaded.
			if s.Kind == prog.Direct {
				a, key := s.Site.Maps[0], uint32(s.Site.Key)
				if t := a.Poked(key); t != nil {
					if err := m.poke(l, s, nil, t, prog.EffectTarget); err != nil {
						return err
					}
					if !a.Bypassed(key) {
						if err := m.poke(l, s, nil, t, prog.EffectBypass); err != nil {
							return err
						}
					}
				}
			}
			m.at(l.Addr+uint64(s.Start), siteEvent{kind: atStart, l: l, s: s})
			m.at(l.Addr+uint64(s.Out), siteEvent{kind: atOut, l: l, s: s})
			if s.Kind == prog.Direct {
				m.at(l.Addr+uint64(s.Target), siteEvent{kind: atTarget, l: l, s: s})
			} else {
				m.at(l.Addr+uint64(s.Jump), siteEvent{kind: atJump, l: l, s: s})
			}
		}
	}
	// Only the emulated helpers the programs call are hooked: every
	// hook costs a load something.
	called := map[int32]bool{}
	for _, p := range w.Progs {
		for _, f := range p.Funcs {
			for _, ins := range f.Insns {
				if id := int32(ins.Imm); ins.IsHelperCall() && prog.Emulated(id) && !called[id] {
					called[id] = true
					at, _ := m.spec.at.helperAddr(id)
					m.at(at, siteEvent{kind: atHelper, helper: id})
				}
			}
		}
	}
	addrs := make([]uint64, 0, len(m.sites))
	for a := range m.sites {
		addrs = append(addrs, a)
	}
	return e.setCodeHooks(addrs, m.onSite)
}

func (m *machine) at(addr uint64, ev siteEvent) { m.sites[addr] = append(m.sites[addr], ev) }

type resolver struct {
	m     *machine
	funcs []uint64
}

func (r resolver) Helper(id int32) (uint64, bool) { return r.m.spec.at.helperAddr(id) }
func (r resolver) Func(fn int) uint64             { return r.funcs[fn] }
func (r resolver) Map(name string) uint64 {
	if k := slices.IndexFunc(r.m.w.Maps, func(a *prog.ArrayMap) bool { return a.Name == name }); k >= 0 {
		return prog.ArrayMapAddr(k)
	}
	return r.m.arrays[r.m.w.Array(name)].base
}
func (r resolver) Thunk(name string) (uint64, bool) { return r.m.spec.at.thunkAddr(name) }

// poke makes the text poke of x86's bpf_arch_poke_desc_update() at one
// site of a direct call (which: EffectTarget or EffectBypass) whose slot
// goes from old to new (nil: empty).
func (m *machine) poke(l *Loaded, s *jit.TailSite, old, new *prog.Program, which prog.EffectKind) error {
	landing := func(p *prog.Program) uint64 {
		if p == nil {
			return 0
		}
		return m.entry[p] + uint64(m.tailEntry)
	}
	ip := l.Addr + uint64(s.Target)
	if which == prog.EffectBypass {
		ip = l.Addr + uint64(s.Bypass)
	}
	for _, p := range x86.PokeDescUpdate(l.Addr, s, landing(old), landing(new)) {
		if p.IP != ip {
			continue
		}
		if err := m.e.writeCode(p.IP, p.New[:]); err != nil {
			return err
		}
		if m.step != nil {
			delete(m.step.info, p.IP) // its text changed
		}
	}
	return nil
}

// Apply implements prog.Machine: the memory and code the kernel changes for
// each step of a slot update.
func (m *machine) Apply(ef prog.Effect) error {
	if ef.Kind == prog.EffectMapWrite {
		k := slices.Index(m.w.Maps, ef.Map)
		return m.e.u.MemWrite(prog.ArrayMapAddr(k)+uint64(m.w.Layout.Ptrs)+uint64(ef.Off), ef.Bytes)
	}
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
	case prog.EffectTarget, prog.EffectBypass:
		if !m.spec.directTailCalls {
			return nil
		}
		for _, l := range m.images {
			for i := range l.Img.Sites {
				s := &l.Img.Sites[i]
				if s.Kind == prog.Direct && s.Site.Maps[0] == ef.Array && uint32(s.Site.Key) == ef.Index {
					if err := m.poke(l, s, ef.Old, ef.New, ef.Kind); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if !m.e.lazyPageMapped(at) {
		return nil // filled from the model when first touched
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], val)
	return m.e.memWrite(at, b[:])
}

// Close implements prog.Machine. The world stays in the engine for the
// next load to reuse. A second Close does nothing: releasing the engine
// twice would hand it to two machines.
func (m *machine) Close() {
	if m.e != nil {
		m.b.release(m.e)
		m.e = nil
	}
}

// callHelper performs an emulated helper at its stub's first instruction:
// its arguments are in R1–R5's registers, its result goes in the
// register the stub returns (the stub then clobbers R1–R5 and returns).
func (m *machine) callHelper(id int32) {
	var args [5]uint64
	for i, r := range m.spec.helperArgs {
		v, err := m.e.u.RegRead(r)
		if err != nil {
			return
		}
		args[i] = v
	}
	r0 := prog.CallHelper(id, args, m.w, helperMemory{m})
	_ = m.e.regWrite(m.spec.helperRet, r0)
	if m.o.Trace {
		ev := prog.Event{Kind: prog.EvHelperDone, Helper: id, Text: prog.HelperNote(id, args, r0)}
		if m.step != nil {
			// After the call into the stub, which the stepper records next.
			ev.Step = len(m.res.Execs) + 1
		}
		m.event(ev)
	}
}

// helperMemory is a loaded world's memory as an emulated helper sees it:
// the memory a program may pass a helper (the stack, ctx, array values),
// as the reference model's helpers see theirs: a pointer elsewhere (a
// map's struct bpf_array, code) is EFAULT on every backend alike.
type helperMemory struct{ m *machine }

func (h helperMemory) allowed(addr uint64, n int) bool {
	end := addr + uint64(n)
	if end < addr {
		return false
	}
	at := h.m.spec.at
	in := func(lo, hi uint64) bool { return addr >= lo && end <= hi }
	ok := in(at.stackLo(), at.stackHi) || in(ctxBase, ctxBase+uint64(len(h.m.w.Ctx)))
	for k, a := range h.m.w.Maps {
		v := prog.ArrayMapAddr(k) + uint64(h.m.w.Layout.Ptrs)
		ok = ok || in(v, v+uint64(len(a.Values)))
	}
	return ok
}

func (h helperMemory) Read(addr uint64, n int) ([]byte, bool) {
	if !h.allowed(addr, n) {
		return nil, false
	}
	b, err := h.m.e.memRead(addr, uint64(n))
	return b, err == nil
}

func (h helperMemory) Write(addr uint64, b []byte) bool {
	return h.allowed(addr, len(b)) && h.m.e.u.MemWrite(addr, b) == nil
}

// subprogTailCalls reports a program with a subprogram that makes tail
// calls.
func subprogTailCalls(p *prog.Program) bool {
	for _, f := range p.Funcs[1:] {
		if f.HasTailCall() {
			return true
		}
	}
	return false
}
