// Package listing lays out the machine code a BPF JIT emits for a world as
// data: every function with its code grouped under the BPF instruction it
// came from (as the JIT recorded it, not as a disassembler would guess),
// each machine instruction decoded beside the JIT's annotation. Front ends
// render the data: WriteText is "tailsim disasm"'s listing; an HTML report
// or a trace can walk the same Funcs, Groups and Rows.
package listing

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"tailsim/emu"
	"tailsim/jit"
	"tailsim/prog"
	"tailsim/prog/asm"
)

// Listing is the machine code of a world's functions on one arch and
// variant, in the world's order: programs, then each program's functions.
type Listing struct {
	Arch   *Arch
	Kernel prog.Kernel
	Layout prog.Layout
	Config prog.Config
	Syntax string // one of Arch.Syntaxes
	Source Source
	// AsJITed: the code is as the JIT emitted it, before the load pokes
	// direct tail calls (Options.AsJITed).
	AsJITed bool
	Funcs   []*Func
	// syms are every function of the world, listed or not: what Symbol
	// names addresses by.
	syms []*emu.Loaded
}

// Source says where the world came from, for a listing's header; the zero
// Source says nothing.
type Source struct {
	File, Title string
	// Arches and Kernels are those the scenario is restricted to (empty:
	// any), so that a listing for another can say so.
	Arches  []string
	Kernels []prog.Kernel
}

// Options select what Build lists and how.
type Options struct {
	Config prog.Config
	Syntax string // "" is the arch's default
	Source Source
	// Prog, when set, lists only that program's functions, and Func only
	// that function of it; names that match nothing list nothing.
	Prog, Func string
	// AsJITed lists the code as the JIT emitted it. Without it, the code
	// is as loading the world leaves it: x86's direct tail calls whose
	// slot the world fills are poked (bpf_tail_call_direct_fixup()), their
	// target site a jmp to the slot's program and their bypass a nop.
	AsJITed bool
	// Slots, when set, says which program the poke sites' slots hold (by
	// array and key; "" for an empty slot) instead of the world's load
	// state: a run after slot updates ran the code as they re-poked it.
	Slots func(array string, key uint32) string
}

// Func is one JITed function.
type Func struct {
	Prog *prog.Program
	Fn   int // index in Prog.Funcs: 0 is the program's main function
	Addr uint64
	// TailEntry is where tail calls land, an offset in Code; it is the
	// main function's only, since tail calls enter programs.
	TailEntry int
	StackSize int // the frame the JIT allocates
	// Code is the function's machine code as listed: as loaded, or as
	// JITed (Listing.AsJITed); the two differ only at poke sites.
	Code   []byte
	Groups []Group
}

// Name is "prog" for a main function and "prog/func" for a subprogram.
func (f *Func) Name() string {
	if f.Fn == 0 {
		return f.Prog.Name
	}
	return f.Prog.Name + "/" + f.Prog.Funcs[f.Fn].Name
}

// Symbol names addr by the function of the world it falls in, listed or
// not, as emulator reports do: "leaf+0xc", or "leaf" at its bpf_func;
// false for an address in no function (a helper).
func (l *Listing) Symbol(addr uint64) (string, bool) {
	for _, im := range l.syms {
		if addr < im.Addr || addr >= im.Addr+uint64(len(im.Img.Code)) {
			continue
		}
		name := im.Prog.Name
		if im.Fn != 0 {
			name += "/" + im.Prog.Funcs[im.Fn].Name
		}
		if addr == im.Addr {
			return name, true
		}
		return fmt.Sprintf("%s+%#x", name, addr-im.Addr), true
	}
	if h, ok := emu.HelperAt(addr); ok {
		return "bpf_" + h.Name, true
	}
	if name, ok := emu.ThunkAt(addr); ok {
		return name, true
	}
	return "", false
}

// RelText is r's text with its branch target named without the load's
// addresses, so that two loads of a world compare line by line: a target
// in f as its offset, in hex as the offset column prints it ("jnb 4d"),
// one in another function or a helper as Symbol names it ("call
// entry/helper", "jmp leaf+0xc", "call bpf_ktime_get_ns").
func (l *Listing) RelText(f *Func, r Row) string {
	if !r.Branch {
		return r.Text
	}
	rel, ok := "", false
	if off, in := f.Offset(r.Target); in {
		rel, ok = fmt.Sprintf("%x", off), true
	} else {
		rel, ok = l.Symbol(r.Target)
	}
	if !ok {
		return r.Text
	}
	return replaceAddr(r.Text, r.Target, rel)
}

// replaceAddr replaces the last operand of text that is addr, as the
// decoders print a branch target ("0x11f804d"), with s.
func replaceAddr(text string, addr uint64, s string) string {
	tok := fmt.Sprintf("%#x", addr)
	for end := len(text); ; {
		i := strings.LastIndex(text[:end], tok)
		if i < 0 {
			return text
		}
		j := i + len(tok)
		if (i == 0 || !isWordByte(text[i-1])) && (j == len(text) || !isWordByte(text[j])) {
			return text[:i] + s + text[j:]
		}
		end = i
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Subprogram reports whether f is a bpf2bpf callee rather than a program.
func (f *Func) Subprogram() bool { return f.Fn != 0 }

// Offset is where addr falls in f's code, when it does; the end counts,
// since a branch can go just past the last instruction.
func (f *Func) Offset(addr uint64) (int, bool) {
	if addr < f.Addr || addr > f.Addr+uint64(len(f.Code)) {
		return 0, false
	}
	return int(addr - f.Addr), true
}

// GroupKind says what a group's code came from.
type GroupKind uint8

//go:generate go tool stringer -type=GroupKind,MarkKind,PokeRole -linecomment -output=kind_string.go

const (
	// InsnGroup: a BPF instruction's code.
	InsnGroup GroupKind = iota + 1 // insn
	// PrologueGroup and EpilogueGroup: the JIT's own.
	PrologueGroup // prologue
	EpilogueGroup // epilogue
	// OutsideGroup: code owned by an instruction index outside the
	// function; UnclaimedGroup: trailing code no instruction claimed.
	// Both are JIT bugs.
	OutsideGroup   // outside
	UnclaimedGroup // unclaimed
)

// Group is the machine code of one BPF instruction, or of the prologue or
// epilogue. Every BPF instruction has a group in order, one that emitted
// no code (an exit falling into the epilogue) an empty one.
type Group struct {
	Kind GroupKind
	// Index is the BPF instruction's index in Function.Insns (InsnGroup,
	// OutsideGroup); Loc is its name (InsnGroup), the one traces and
	// reports use: program, function, struct bpf_insn slot, line.
	Index  int
	Loc    prog.Loc
	Labels []string
	// BPF is the instruction as the JIT saw it: a tail call carries the
	// imm the verifier's fix-up gave it.
	BPF      prog.Instruction
	Asm      string // BPF in the assembler's syntax
	Encoding []byte // BPF as struct bpf_insn
	// Site is the tail-call site BPF is, nil for other instructions, and
	// TailCall the fix-up's description of it with the path this JIT's
	// code takes: "indirect map=progs imm=0x0".
	Site     *prog.TailCallSite
	TailCall string
	Comment  string // the scenario's comment on the instruction
	Rows     []Row
}

// Row is one machine instruction, or a piece of code that does not decode.
type Row struct {
	Off   int // in the function
	Bytes []byte
	Text  string // in the listing's syntax; "?" when the bytes do not decode
	// Target is the absolute address a branch goes to, when Branch is set.
	Target uint64
	Branch bool
	// Note is the JIT's annotation, less a repeat of the instruction
	// itself ("push rbp" on push rbp); it goes on an emitted piece's first
	// row.
	Note  string
	Marks []Mark // what happens at Off
	// Check is the tail-call check whose branch to out this is (the
	// fall-through it takes when the check fails), zero on other rows.
	Check prog.Reason
	// Poke is set on the poke sites of a direct tail call: the site's
	// state in the listed code.
	Poke *Poke
}

// Poke is one of the two 5-byte sites of an x86 direct tail call that
// bpf_arch_poke_desc_update() rewrites as the call's slot changes: the
// target site (nop5 while the slot is empty, else jmp to the slot's
// program's tail-call entry) and the bypass before the unwind (jmp out
// while the slot is empty, else nop5).
type Poke struct {
	Role PokeRole
	// Array and Key are the slot the site follows, Prog what the slot
	// holds as the world's slots leave it when the program is loaded (nil:
	// empty), and Entry where Prog's tail calls land: its bpf_func plus
	// the tail-call entry.
	Array *prog.ProgArray
	Key   uint32
	Prog  *prog.Program
	Entry uint64
	// Poked: the listed bytes are as the load's fix-up leaves them; false
	// in a listing AsJITed, where a filled slot's sites still hold what
	// the JIT emitted.
	Poked bool
}

// PokeRole says which of a direct tail call's poke sites a Poke is.
type PokeRole uint8

const (
	// BypassPoke: the jump over the unwind and the target site.
	BypassPoke PokeRole = iota + 1 // bypass
	// TargetPoke: the site that becomes the tail call's jump.
	TargetPoke // target
)

// Jumps reports whether the listed site is a jmp (else a nop5): the
// bypass jumps out until a filled slot is poked, the target jumps to Prog
// once it is.
func (p *Poke) Jumps() bool {
	filled := p.Prog != nil && p.Poked
	return filled == (p.Role == TargetPoke)
}

// Mark names an offset that tail calls reach.
type Mark struct {
	Kind MarkKind
	Site prog.Loc // OutMark: the tail call that falls through here
}

// MarkKind is what a Mark names.
type MarkKind uint8

const (
	// TailEntryMark: where tail calls land.
	TailEntryMark MarkKind = iota + 1 // tail entry
	// OutMark: where a failed tail call continues.
	OutMark // out
)

// Build JITs every function of w for arch and variant v, as the emulator
// loads them, and lists them: with direct tail calls poked as the world's
// slots leave them at load, unless o.AsJITed.
func Build(w *prog.World, arch *Arch, v prog.Kernel, o Options) (*Listing, error) {
	if arch == nil || arch.compile == nil {
		return nil, errors.New("listing: no arch (take one from Arches)")
	}
	syntax, err := arch.Syntax(o.Syntax)
	if err != nil {
		return nil, err
	}
	if err := selected(w, o); err != nil {
		return nil, err
	}
	images, err := arch.compile(w, v, o.Config)
	if err != nil {
		return nil, err
	}
	// The arena places functions by shape, not in the world's order.
	order := map[*prog.Program]int{}
	for i, p := range w.Progs {
		order[p] = i
	}
	sort.SliceStable(images, func(i, j int) bool {
		a, b := images[i], images[j]
		return order[a.Prog] < order[b.Prog] || order[a.Prog] == order[b.Prog] && a.Fn < b.Fn
	})
	l := &Listing{Arch: arch, Kernel: v, Layout: w.Layout, Config: o.Config, Syntax: syntax, Source: o.Source,
		AsJITed: o.AsJITed, syms: images}
	// Where each program's tail calls land, for the poke sites.
	entries := map[*prog.Program]uint64{}
	for _, im := range images {
		if im.Fn == 0 {
			entries[im.Prog] = im.Addr + uint64(im.Img.TailEntry)
		}
	}
	for _, im := range images {
		if o.Prog != "" && (im.Prog.Name != o.Prog || o.Func != "" && im.Prog.Funcs[im.Fn].Name != o.Func) {
			continue
		}
		b := &funcBuilder{l: l, im: im, entries: entries, w: w, slots: o.Slots}
		if w.Fixups != nil {
			b.fx = w.Fixups[im.Prog]
		}
		f, err := b.build()
		if err != nil {
			return nil, err
		}
		l.Funcs = append(l.Funcs, f)
	}
	return l, nil
}

// SelectionError is an Options.Prog or Func that names nothing in the
// world: the user's mistake, not the JIT's.
type SelectionError struct{ Msg string }

func (e *SelectionError) Error() string { return e.Msg }

// selected checks that o.Prog and o.Func name a program and a function of
// it, so that a typo is an error rather than an empty listing.
func selected(w *prog.World, o Options) error {
	if o.Prog == "" {
		return nil
	}
	in := ""
	if o.Source.File != "" {
		in = " in " + o.Source.File
	}
	p := w.Prog(o.Prog)
	if p == nil {
		var names []string
		for _, p := range w.Progs {
			names = append(names, p.Name)
		}
		return &SelectionError{fmt.Sprintf("unknown program %q%s (programs: %s)", o.Prog, in, strings.Join(names, ", "))}
	}
	if o.Func != "" && p.FuncIndex(o.Func) < 0 {
		var names []string
		for _, f := range p.Funcs {
			names = append(names, f.Name)
		}
		return &SelectionError{fmt.Sprintf("program %s has no function %q (functions: %s)", o.Prog, o.Func, strings.Join(names, ", "))}
	}
	return nil
}

// funcBuilder lists one function.
type funcBuilder struct {
	l  *Listing
	im *emu.Loaded
	fx *prog.Fixup
	f  *Func
	// entries are where each program's tail calls land.
	entries map[*prog.Program]uint64
	w       *prog.World
	slots   func(array string, key uint32) string
	// marks are the function's marks by code offset, pokes its poke
	// sites', checks its tail-call checks' branches.
	marks  map[int][]Mark
	pokes  map[int]*Poke
	checks map[int]prog.Reason
}

func (b *funcBuilder) build() (*Func, error) {
	im, img := b.im, b.im.Img
	b.f = &Func{Prog: im.Prog, Fn: im.Fn, Addr: im.Addr, StackSize: img.StackSize, Code: img.Code}
	if err := b.poke(); err != nil {
		return nil, err
	}
	fn := im.Prog.Funcs[im.Fn]
	slots, _ := fn.Slots()
	b.marks = map[int][]Mark{}
	if im.Fn == 0 {
		b.f.TailEntry = img.TailEntry
		b.marks[img.TailEntry] = append(b.marks[img.TailEntry], Mark{Kind: TailEntryMark})
	}
	b.checks = map[int]prog.Reason{}
	for _, ts := range img.Sites {
		b.marks[ts.Out] = append(b.marks[ts.Out], Mark{Kind: OutMark, Site: ts.Site.Loc})
		for _, c := range ts.Checks {
			b.checks[c.Off] = c.Guard
		}
	}

	next := 0 // the next BPF instruction that needs a group
	noCode := func(upto int) {
		for ; next < upto && next < len(fn.Insns); next++ {
			b.insnGroup(next, slots[next])
		}
	}
	owner, end := 0, 0
	for k, in := range img.Insns {
		if k == 0 || in.BPF != owner {
			switch {
			case in.BPF == jit.Prologue:
				b.group(Group{Kind: PrologueGroup})
			case in.BPF == jit.Epilogue:
				noCode(len(fn.Insns))
				b.group(Group{Kind: EpilogueGroup})
			case in.BPF >= 0 && in.BPF < len(fn.Insns):
				noCode(in.BPF)
				b.insnGroup(in.BPF, slots[in.BPF])
				next = max(next, in.BPF+1)
			default:
				b.group(Group{Kind: OutsideGroup, Index: in.BPF})
			}
			owner = in.BPF
		}
		if in.Off > end {
			b.rows(end, in.Off-end, "not claimed by any instruction", false)
		}
		b.rows(in.Off, in.Len, in.Note, true)
		end = in.Off + in.Len
	}
	noCode(len(fn.Insns))
	if end < len(img.Code) {
		b.group(Group{Kind: UnclaimedGroup})
		b.rows(end, len(img.Code)-end, "not claimed by any instruction", false)
	}
	return b.f, nil
}

// poke finds the function's direct tail calls and, unless the listing is
// as JITed, makes the text pokes bpf_tail_call_direct_fixup() makes when
// the program is loaded: each site whose slot is filled moves from the
// empty slot to the slot's program, in a copy of the code.
func (b *funcBuilder) poke() error {
	b.pokes = map[int]*Poke{}
	cloned := false // the image's code is the JIT's: poke a copy
	for i := range b.im.Img.Sites {
		s := &b.im.Img.Sites[i]
		if s.Kind != prog.Direct {
			continue
		}
		if b.l.Arch.pokes == nil {
			return fmt.Errorf("listing: %s: a direct tail call, which the %s JIT does not emit", s.Site.Loc, b.l.Arch.Name)
		}
		a, key := s.Site.Maps[0], uint32(s.Site.Key)
		p := Poke{Array: a, Key: key, Prog: a.Poked(key), Poked: !b.l.AsJITed}
		if b.slots != nil {
			p.Prog = b.w.Prog(b.slots(a.Name, key))
		}
		if p.Prog != nil {
			p.Entry = b.entries[p.Prog]
		}
		bypass, target := p, p
		bypass.Role, target.Role = BypassPoke, TargetPoke
		b.pokes[s.Bypass], b.pokes[s.Target] = &bypass, &target
		if p.Prog == nil || !p.Poked {
			continue
		}
		if !cloned {
			b.f.Code, cloned = slices.Clone(b.f.Code), true
		}
		for _, tp := range b.l.Arch.pokes(b.f.Addr, s, 0, p.Entry) {
			at, ok := b.f.Offset(tp.IP)
			if !ok || at+len(tp.Old) > len(b.f.Code) || !bytes.Equal(b.f.Code[at:at+len(tp.Old)], tp.Old[:]) {
				// __bpf_arch_text_poke()'s -EBUSY: the site is not what
				// the poke expects.
				return fmt.Errorf("listing: %s: the poke at %s+%#x does not find the bytes it replaces", s.Site.Loc, b.f.Name(), int64(tp.IP-b.f.Addr))
			}
			copy(b.f.Code[at:], tp.New[:])
		}
	}
	return nil
}

func (b *funcBuilder) group(g Group) { b.f.Groups = append(b.f.Groups, g) }

// insnGroup starts the group of BPF instruction i.
func (b *funcBuilder) insnGroup(i, slot int) {
	ins := b.im.Prog.Funcs[b.im.Fn].Insns[i]
	g := Group{Kind: InsnGroup, Index: i, Loc: b.loc(slot, ins.Line), Labels: ins.Labels, BPF: ins, Comment: ins.Comment}
	if ins.IsTailCall() && b.fx != nil {
		if s := b.fx.Site(b.im.Fn, i); s != nil {
			g.Site, g.TailCall = s, s.Describe(b.l.Kernel, b.l.Arch.DirectTailCalls)
			if imm, err := s.Imm(b.l.Kernel); err == nil {
				g.BPF = prog.Instruction{OpCode: prog.Jmp(prog.OpTailCall, prog.SourceK), Dst: ins.Dst, Src: ins.Src, Off: ins.Off, Imm: int64(imm)}
			}
		}
	}
	g.Asm, g.Encoding = asm.Format(g.BPF), g.BPF.Encode(nil)
	b.group(g)
}

// loc names the function's instruction at slot, written on line (what
// Program.Loc computes, without walking the function again).
func (b *funcBuilder) loc(slot, line int) prog.Loc {
	l := prog.Loc{Prog: b.im.Prog.Name, Slot: slot, Line: line}
	if b.im.Fn != 0 {
		l.Func = b.im.Prog.Funcs[b.im.Fn].Name
	}
	return l
}

// rows decodes one emitted piece, which is normally one machine
// instruction, into the current group; the note goes on its first row.
func (b *funcBuilder) rows(off, n int, note string, decode bool) {
	g := &b.f.Groups[len(b.f.Groups)-1]
	code := b.f.Code[off : off+n]
	for len(code) > 0 {
		d, ok := decoded{}, false
		if decode {
			d, ok = b.l.Arch.decode(code, b.f.Addr+uint64(off), b.l.Syntax)
		}
		if !ok {
			d = decoded{text: "?", n: len(code)}
		}
		g.Rows = append(g.Rows, Row{Off: off, Bytes: code[:d.n], Text: d.text, Target: d.target, Branch: d.branch,
			Note: jit.TrimNote(note, d.plain), Marks: b.marks[off], Poke: b.pokes[off], Check: b.checks[off]})
		off += d.n
		code = code[d.n:]
		note = ""
	}
}
