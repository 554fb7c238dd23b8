package emu

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/jit"
	"tailsim/jit/x86"
	"tailsim/prog"
)

// X86 is the emulated x86-64 backend: the kernel's x86 JIT output run in
// Unicorn. Engines are pooled and reused across loads.
type X86 struct {
	IBT bool

	mu   sync.Mutex
	pool []*Engine
}

// Name implements prog.Backend.
func (*X86) Name() string { return "x86_64" }

// DefaultBudget bounds the instructions of one emulated invocation.
const DefaultBudget = 1_000_000

// Values the callee-saved registers hold on entry, so the return checks
// can tell whether they were restored.
var x86Saved = map[int]uint64{
	uc.X86_REG_RBX: 0x5a5a_0000_0000_0006, uc.X86_REG_R13: 0x5a5a_0000_0000_0007,
	uc.X86_REG_R14: 0x5a5a_0000_0000_0008, uc.X86_REG_R15: 0x5a5a_0000_0000_0009,
	uc.X86_REG_RBP: 0x5a5a_0000_0000_000a,
}

func (b *X86) engine() (*Engine, error) {
	b.mu.Lock()
	if n := len(b.pool); n > 0 {
		e := b.pool[n-1]
		b.pool = b.pool[:n-1]
		b.mu.Unlock()
		return e, nil
	}
	b.mu.Unlock()
	e, err := NewEngine(X86_64)
	if err != nil {
		return nil, err
	}
	if err := e.Arena(StubBase, ArenaSize); err != nil {
		return nil, err
	}
	if err := e.WriteCode(StubBase, x86Stubs()); err != nil {
		return nil, err
	}
	return e, nil
}

func (b *X86) release(e *Engine) {
	b.mu.Lock()
	b.pool = append(b.pool, e)
	b.mu.Unlock()
}

// x86Stubs builds the helper stubs: rax = the stub's return value, the
// caller-saved argument registers clobbered, ret. The sentinel is a hlt.
func x86Stubs() []byte {
	page := make([]byte, PageSize)
	for i, h := range prog.Helpers {
		code := page[i*64:]
		n := 0
		mov := func(prefix, op byte, v uint64) {
			code[n], code[n+1] = prefix, op
			binary.LittleEndian.PutUint64(code[n+2:], v)
			n += 10
		}
		mov(0x48, 0xB8, h.Ret)                      // rax
		mov(0x48, 0xBF, prog.ClobberValue(prog.R1)) // rdi
		mov(0x48, 0xBE, prog.ClobberValue(prog.R2)) // rsi
		mov(0x48, 0xBA, prog.ClobberValue(prog.R3)) // rdx
		mov(0x48, 0xB9, prog.ClobberValue(prog.R4)) // rcx
		mov(0x49, 0xB8, prog.ClobberValue(prog.R5)) // r8
		code[n] = 0xC3
	}
	page[Sentinel-StubBase] = 0xF4
	return page
}

func helperAddr(id int32) (uint64, bool) {
	for i, h := range prog.Helpers {
		if h.ID == id {
			return StubBase + uint64(i)*64, true
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

type loaded = Loaded

// CompileX86 JITs every function of w at the address the emulator loads it
// at, exactly as Load does, without an engine: for listings.
func CompileX86(w *prog.World, v prog.Variant, ibt bool) ([]*Loaded, error) {
	m := &x86Machine{w: w, v: v, jo: x86.Options{Variant: v, Layout: w.Layout, IBT: ibt},
		entry: map[*prog.Program]uint64{}, progAt: map[uint64]*prog.Program{}, arrays: map[*prog.ProgArray]*arrayImage{}}
	if _, err := m.compile(); err != nil {
		return nil, err
	}
	return m.images, nil
}

// compile places and JITs every function; it returns the struct bpf_prog
// addresses.
func (m *x86Machine) compile() (map[*prog.Program]uint64, error) {
	w := m.w
	progStruct := map[*prog.Program]uint64{}
	slot := 0
	funcAddr := map[*prog.Program][]uint64{}
	for pi, p := range w.Progs {
		progStruct[p] = ProgBase + uint64(pi)*PageSize
		for range p.Funcs {
			if slot == MaxFuncs {
				return nil, fmt.Errorf("x86_64: more than %d functions", MaxFuncs)
			}
			funcAddr[p] = append(funcAddr[p], CodeBase+uint64(slot)*CodeSlot)
			slot++
		}
		m.entry[p] = funcAddr[p][0]
		m.progAt[funcAddr[p][0]+uint64(m.jo.TailCallOffset())] = p
	}
	entries := map[*prog.Program]uint64{}
	for p, a := range m.entry {
		entries[p] = a + uint64(m.jo.TailCallOffset())
	}
	for ai, a := range w.Arrays {
		m.arrays[a] = &arrayImage{a: a, base: ArrayBase + uint64(ai)*ArrayStride, layout: w.Layout, patched: m.v == prog.Patched,
			progs: progStruct, entries: entries}
	}
	for _, p := range w.Progs {
		for fn := range p.Funcs {
			res := resolver{m: m, funcs: funcAddr[p]}
			img, err := x86.Compile(p, fn, w.Fixups[p], funcAddr[p][fn], res, m.jo)
			if err != nil {
				return nil, fmt.Errorf("program %s: %w", p.Name, err)
			}
			if len(img.Code) > CodeSlot {
				return nil, fmt.Errorf("x86_64: %s/%s is %d bytes, more than a %d-byte code slot", p.Name, p.Funcs[fn].Name, len(img.Code), CodeSlot)
			}
			m.images = append(m.images, &Loaded{Prog: p, Fn: fn, Addr: funcAddr[p][fn], Img: img})
		}
	}
	sort.Slice(m.images, func(i, j int) bool { return m.images[i].Addr < m.images[j].Addr })
	return progStruct, nil
}

type x86Machine struct {
	b      *X86
	e      *Engine
	w      *prog.World
	v      prog.Variant
	o      prog.LoadOptions
	jo     x86.Options
	images []*loaded // sorted by addr
	entry  map[*prog.Program]uint64
	progAt map[uint64]*prog.Program // tail-call entry address -> program
	arrays map[*prog.ProgArray]*arrayImage
	hooks  []uc.Hook
	sites  map[uint64][]siteEvent // hook address -> what happens there

	// per run
	res     *prog.Result
	pending *pendingCall
	pend    pendingCall // the storage pending points at
	tccPtr  uint64
	batch   *uc.RegBatch
	buf8    [8]byte
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
	l    *loaded
	s    *jit.TailSite
}

type pendingCall struct {
	l     *loaded
	s     *jit.TailSite
	regs  [len(x86PendingRegsArr)]uint64
	count uint64
}

var x86PendingRegsArr = [...]int{uc.X86_REG_RDI, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RBX, uc.X86_REG_R13,
	uc.X86_REG_R14, uc.X86_REG_R15, uc.X86_REG_RBP, uc.X86_REG_RSP, uc.X86_REG_RCX}

var x86PendingRegs = x86PendingRegsArr[:]

const (
	pRDI = iota
	pRSI
	pRDX
	pRBX
	pR13
	pR14
	pR15
	pRBP
	pRSP
	pRCX
)

// Load implements prog.Backend.
func (b *X86) Load(w *prog.World, v prog.Variant, o prog.LoadOptions) (prog.Machine, error) {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	e, err := b.engine()
	if err != nil {
		return nil, err
	}
	m := &x86Machine{b: b, e: e, w: w, v: v, o: o, jo: x86.Options{Variant: v, Layout: w.Layout, IBT: b.IBT},
		entry: map[*prog.Program]uint64{}, progAt: map[uint64]*prog.Program{}, arrays: map[*prog.ProgArray]*arrayImage{},
		sites: map[uint64][]siteEvent{}}
	if m.batch, err = uc.NewRegBatch(x86PendingRegs); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *x86Machine) load() error {
	w, e := m.w, m.e
	progStruct, err := m.compile()
	if err != nil {
		return err
	}
	for _, a := range w.Arrays {
		img := m.arrays[a]
		if err := e.AddLazy(&Lazy{Name: a.Name, Start: img.base, End: img.end(), Fill: img.fill}); err != nil {
			return err
		}
	}
	for _, p := range w.Progs {
		st := make([]byte, w.Layout.BpfFunc+8)
		binary.LittleEndian.PutUint64(st[w.Layout.BpfFunc:], m.entry[p])
		if err := e.Map(progStruct[p], st, uc.PROT_READ); err != nil {
			return err
		}
	}
	for _, l := range m.images {
		if err := e.WriteCode(l.Addr, l.Img.Code); err != nil {
			return err
		}
	}
	if len(w.Ctx) > 0 {
		if err := e.Map(CtxBase, w.Ctx, uc.PROT_READ|uc.PROT_WRITE); err != nil {
			return err
		}
	}
	if err := e.Map(StackLo, make([]byte, StackHi-StackLo), uc.PROT_READ|uc.PROT_WRITE); err != nil {
		return err
	}
	// Direct calls: bpf_tail_call_direct_fixup() pokes the sites whose
	// slot is filled when the program is loaded.
	for _, l := range m.images {
		for i := range l.Img.Sites {
			s := &l.Img.Sites[i]
			if s.Kind == prog.Direct {
				if t := s.Site.Maps[0].Poked(uint32(s.Site.Key)); t != nil {
					if err := m.poke(l, s, nil, t); err != nil {
						return err
					}
				}
			}
			m.sites[l.Addr+uint64(s.Start)] = append(m.sites[l.Addr+uint64(s.Start)], siteEvent{atStart, l, s})
			m.sites[l.Addr+uint64(s.Out)] = append(m.sites[l.Addr+uint64(s.Out)], siteEvent{atOut, l, s})
			if s.Kind == prog.Direct {
				m.sites[l.Addr+uint64(s.Target)] = append(m.sites[l.Addr+uint64(s.Target)], siteEvent{atTarget, l, s})
			} else {
				m.sites[l.Addr+uint64(s.Jump)] = append(m.sites[l.Addr+uint64(s.Jump)], siteEvent{atJump, l, s})
			}
		}
	}
	for addr := range m.sites {
		h, err := e.U.HookAdd(uc.HOOK_CODE, m.onSite, addr, addr)
		if err != nil {
			return err
		}
		m.hooks = append(m.hooks, h)
	}
	return nil
}

type resolver struct {
	m     *x86Machine
	funcs []uint64
}

func (r resolver) Helper(id int32) (uint64, bool) { return helperAddr(id) }
func (r resolver) Func(fn int) uint64             { return r.funcs[fn] }
func (r resolver) Map(name string) uint64         { return r.m.arrays[r.m.w.Array(name)].base }

// poke rewrites a direct call's two sites as bpf_arch_poke_desc_update()
// does for a slot going from old to new.
func (m *x86Machine) poke(l *loaded, s *jit.TailSite, old, new *prog.Program) error {
	target, bypass := l.Addr+uint64(s.Target), l.Addr+uint64(s.Bypass)
	out := l.Addr + uint64(s.Out)
	jmp := func(at, to uint64) []byte {
		b := []byte{0xE9, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(int64(to)-int64(at+5))))
		return b
	}
	nop5 := []byte{0x0F, 0x1F, 0x44, 0x00, 0x00}
	var writes [][2]any
	switch {
	case new != nil && old == nil:
		writes = [][2]any{{target, jmp(target, m.entry[new]+uint64(m.jo.TailCallOffset()))}, {bypass, nop5}}
	case new != nil:
		writes = [][2]any{{target, jmp(target, m.entry[new]+uint64(m.jo.TailCallOffset()))}}
	case old != nil:
		writes = [][2]any{{bypass, jmp(bypass, out)}, {target, nop5}}
	}
	for _, wr := range writes {
		if err := m.e.WriteCode(wr[0].(uint64), wr[1].([]byte)); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements prog.Machine: the memory and code the kernel changes for
// each step of a slot update.
func (m *x86Machine) Apply(ef prog.Effect) error {
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

// Close implements prog.Machine.
func (m *x86Machine) Close() {
	for _, h := range m.hooks {
		m.e.U.HookDel(h)
	}
	for _, l := range m.images {
		zero := make([]byte, len(l.Img.Code))
		m.e.WriteCode(l.Addr, zero)
	}
	if err := m.e.Reset(); err != nil {
		m.e.Close() // not reusable
		return
	}
	m.b.release(m.e)
}
