package listing

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// TextOptions shape the text listing.
type TextOptions struct {
	Hex bool // show each machine instruction's bytes
	// Rel prints no load address, so that listings of two loads (upstream
	// and patched) diff line by line: no bpf_func in function lines,
	// branch targets as RelText names them, and columns of fixed width
	// rather than as wide as the listing's widest entry.
	Rel bool
}

// WriteText writes the listing as "tailsim disasm" prints it: a header,
// then per function its groups, each a header line with the BPF
// instruction's slot, assembly and struct bpf_insn encoding, then its
// machine instructions with their offset, optionally their bytes, the
// decoded text and the JIT's annotation. Columns line up across the whole
// listing.
func (l *Listing) WriteText(w io.Writer, o TextOptions) error {
	bw := bufio.NewWriter(w)
	l.writeHeader(bw)
	t := &text{hex: o.Hex, rel: o.Rel}
	for _, f := range l.Funcs {
		t.function(l, f)
	}
	t.print(bw)
	return bw.Flush()
}

func (l *Listing) writeHeader(w io.Writer) {
	for _, ln := range l.Heading() {
		fmt.Fprintln(w, ln)
	}
}

// Heading is the listing's header, a line each: arch, variant, layout and
// hardening; the scenario; notes on what it is restricted to.
func (l *Listing) Heading() []string {
	first := fmt.Sprintf("%s %s, layout %s", l.Arch.Name, l.Kernel, l.Layout)
	if l.Config != 0 {
		first += fmt.Sprintf(", config %s", l.Config)
	}
	out := []string{first}
	src := l.Source
	if src.File != "" || src.Title != "" {
		out = append(out, fmt.Sprintf("%s: %s", src.File, src.Title))
	}
	if len(src.Arches) > 0 && !slices.Contains(src.Arches, l.Arch.Name) {
		out = append(out, fmt.Sprintf("note: the scenario runs only on %s", strings.Join(src.Arches, ", ")))
	}
	if len(src.Kernels) > 0 && !slices.Contains(src.Kernels, l.Kernel) {
		var names []string
		for _, v := range src.Kernels {
			names = append(names, v.String())
		}
		out = append(out, fmt.Sprintf("note: the scenario runs only on %s", strings.Join(names, ", ")))
	}
	if l.AsJITed {
		out = append(out, "as JITed: direct tail calls' poke sites before the load's bpf_tail_call_direct_fixup()")
	}
	return out
}

// text collects the lines of every function first, so that columns line
// up across the whole output.
type text struct {
	hex, rel bool
	lines    []line
}

// line is a blank line, a function or group header (text, with bpf and
// extra columns for BPF instructions), or a machine-instruction row.
type line struct {
	kind             lineKind
	text, bpf, extra string
	off              string
	bytes            string
	asm, note        string
}

type lineKind uint8

const (
	lineBlank lineKind = iota
	lineFunc
	lineLabel
	lineMark
	lineGroup
	lineRow
)

func (t *text) add(ln line) { t.lines = append(t.lines, ln) }

func (t *text) function(l *Listing, f *Func) {
	t.add(line{kind: lineBlank})
	t.add(line{kind: lineFunc, text: l.FuncHeading(f, t.rel) + ":"})
	for _, g := range f.Groups {
		t.group(g)
		for _, r := range g.Rows {
			for _, m := range r.Marks {
				t.add(line{kind: lineMark, text: "<" + l.MarkText(f, m) + ">"})
			}
			t.row(l, f, r)
		}
	}
}

// FuncHeading is a function's header as the text listing prints it:
// "leaf (bpf_func 0x15e2000, tail-call entry +0xc, 21 bytes)"; rel leaves
// out the load address.
func (l *Listing) FuncHeading(f *Func, rel bool) string {
	var attrs []string
	if !rel {
		attrs = append(attrs, fmt.Sprintf("bpf_func %#x", f.Addr))
	}
	if f.Subprogram() {
		attrs = append(attrs, "subprogram")
	} else {
		attrs = append(attrs, fmt.Sprintf("tail-call entry +%#x", f.TailEntry))
	}
	if f.StackSize > 0 {
		attrs = append(attrs, fmt.Sprintf("stack %d", f.StackSize))
	}
	attrs = append(attrs, fmt.Sprintf("%d bytes", len(f.Code)))
	return fmt.Sprintf("%s (%s)", f.Name(), strings.Join(attrs, ", "))
}

// Heading is a group's header as the text listing prints it: the BPF
// instruction ("entry+4 (line 17): call bpf_tail_call"), or "prologue",
// "epilogue" and the like.
func (g Group) Heading() string {
	switch g.Kind {
	case InsnGroup:
		return fmt.Sprintf("%s: %s", g.Loc, g.Asm)
	case OutsideGroup:
		return fmt.Sprintf("BPF instruction %d (outside the function)", g.Index)
	}
	return g.Kind.String()
}

func (t *text) group(g Group) {
	if g.Kind != InsnGroup {
		t.add(line{kind: lineGroup, text: "; " + g.Heading()})
		return
	}
	if g.BPF.Source != "" {
		// The C line an object's instruction came from, as objdump -l
		// heads the instructions of each line.
		t.add(line{kind: lineLabel, text: "// " + g.BPF.Source})
	}
	for _, lab := range g.Labels {
		t.add(line{kind: lineLabel, text: lab + ":"})
	}
	var extra []string
	if g.TailCall != "" {
		extra = append(extra, "tail call: "+g.TailCall)
	}
	if g.Comment != "" {
		extra = append(extra, "# "+g.Comment)
	}
	if len(g.Rows) == 0 {
		extra = append(extra, "(no code)")
	}
	t.add(line{kind: lineGroup, text: "; " + g.Heading(),
		bpf: "[bpf: " + hexBytes(g.Encoding) + "]", extra: strings.Join(extra, "  ")})
}

// RowNote is a row's annotation as the listing prints it: the JIT's, or
// at a direct tail call's poke site what the site is and why.
func (l *Listing) RowNote(r Row) string {
	if r.Poke != nil {
		return l.pokeNote(r.Poke)
	}
	return r.Note
}

func (t *text) row(l *Listing, f *Func, r Row) {
	note := l.RowNote(r)
	text := r.Text
	if t.rel {
		// RelText prints the offset the -> note would.
		text = l.RelText(f, r)
	} else if off, ok := f.Offset(r.Target); r.Branch && ok {
		arrow := fmt.Sprintf("-> %x", off)
		if note == "" {
			note = arrow
		} else {
			note += " " + arrow
		}
	}
	ln := line{kind: lineRow, off: fmt.Sprintf("%x:", r.Off), asm: text, note: note}
	if t.hex {
		ln.bytes = hexBytes(r.Bytes)
	}
	t.add(ln)
}

// pokeNote says what a poke site is in the listed code and why: the state
// the slot leaves it in, or, as JITed, what the load will poke.
func (l *Listing) pokeNote(p *Poke) string {
	slot := fmt.Sprintf("%s[%d]", p.Array.Name, p.Key)
	if p.Prog == nil {
		if p.Role == TargetPoke {
			return fmt.Sprintf("poke site: target, nop (%s empty: the bypass jumps over the call)", slot)
		}
		return fmt.Sprintf("poke site: bypass, jmp out (%s empty)", slot)
	}
	slot += " = " + p.Prog.Name
	jmp, _ := l.Symbol(p.Entry)
	jmp = "jmp " + jmp
	switch {
	case p.Role == TargetPoke && p.Poked:
		return fmt.Sprintf("poke site: target, %s (%s)", jmp, slot)
	case p.Role == TargetPoke:
		return fmt.Sprintf("poke site: target, nop as JITed (loading with %s pokes %s)", slot, jmp)
	case p.Poked:
		return fmt.Sprintf("poke site: bypass, nop (%s: on to the tail call)", slot)
	}
	return fmt.Sprintf("poke site: bypass, jmp out as JITed (loading with %s pokes a nop)", slot)
}

// MarkText says what a mark names, as the listing prints it between
// angle brackets: "tail calls land here: X86_TAIL_CALL_OFFSET = 0xc".
func (l *Listing) MarkText(f *Func, m Mark) string {
	if m.Kind == OutMark {
		return fmt.Sprintf("out: the tail call at %s falls through to here", m.Site)
	}
	return fmt.Sprintf("tail calls land here: %s = %#x", l.Arch.TailEntry, f.TailEntry)
}

func hexBytes(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

// The columns' widths with TextOptions.Rel: offsets up to 0xfff, ten
// bytes (an x86 movabs), and the longest instruction texts the JITs emit
// but for a few; a wider entry moves only its own line's columns.
const (
	relOffW   = len("fff:")
	relBytesW = 10*3 - 1
	relAsmW   = 40
)

func (t *text) print(w io.Writer) {
	var offW, bytesW, asmW, groupW int
	for _, ln := range t.lines {
		switch ln.kind {
		case lineRow:
			offW = max(offW, len(ln.off))
			bytesW = max(bytesW, len(ln.bytes))
			asmW = max(asmW, len(ln.asm))
		case lineGroup:
			if ln.bpf != "" {
				groupW = max(groupW, len(ln.text))
			}
		}
	}
	// Rows are indented under their group header; without bytes, the
	// header's bpf column starts where the rows' annotation does when that
	// is wide enough.
	rowIndent := 4
	if t.rel {
		// Widths of their own: the other load's widest entry may differ.
		offW, bytesW, asmW = relOffW, relBytesW, relAsmW
		groupW = rowIndent + offW + 2 + asmW
	}
	if !t.hex {
		groupW = max(groupW, rowIndent+offW+2+asmW)
	}
	for _, ln := range t.lines {
		var s string
		switch ln.kind {
		case lineBlank:
		case lineFunc:
			s = ln.text
		case lineLabel:
			s = " " + ln.text
		case lineMark:
			s = fmt.Sprintf("%*s%s", rowIndent, "", ln.text)
		case lineGroup:
			s = "  " + ln.text
			if ln.bpf != "" {
				s = fmt.Sprintf("  %-*s  %s", groupW-2, ln.text, ln.bpf)
			}
			if ln.extra != "" {
				s += "  " + ln.extra
			}
		case lineRow:
			s = fmt.Sprintf("%*s%*s  ", rowIndent, "", offW, ln.off)
			if t.hex {
				s += fmt.Sprintf("%-*s  ", bytesW, ln.bytes)
			}
			s += fmt.Sprintf("%-*s", asmW, ln.asm)
			if ln.note != "" {
				s += "  ; " + ln.note
			}
		}
		fmt.Fprintln(w, strings.TrimRight(s, " "))
	}
}
