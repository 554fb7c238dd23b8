package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"tailsim/emu"
	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/jit/x86"
	"tailsim/prog"
	"tailsim/prog/asm"
	"tailsim/scenarios"
)

func init() {
	register(&command{
		name: "disasm",
		summary: `list the machine code a JIT emits for a scenario's programs

The listing is grouped under the BPF instruction each machine instruction
came from: its slot index, its assembly and its struct bpf_insn encoding
(tail calls as the verifier leaves them after fix-up), then the machine
instructions with their offset in the function, optionally their bytes,
the decoded text and the JIT's annotation. The prologue and epilogue get
their own groups. PROG is a program name (every function of it, main
first) or PROG/FUNC; with no PROG every program of the scenario is listed.
Exit status: 0 listed, 2 usage or input error.`,
		usage: "tailsim disasm [-arch A] [-variant V] [-layout L] [-syntax att|intel] [-hex] SCENARIO [PROG]",
		run:   disasmCmd,
	})
	flagSetups["disasm"] = func(fs *flag.FlagSet) { newDisasmFlags(fs) }
}

// disasmArch is one arch's entry in the disassembler table, in the manner
// of Go's cmd/internal/objfile: how to get the arch's images for a world
// and how to decode one machine instruction. Adding an arch is adding an
// entry to disasmArches.
type disasmArch struct {
	name string
	// syntaxes the decoder can print; the first is the default.
	syntaxes []string
	// tailEntry names the arch's tail-call landing offset.
	tailEntry string
	compile   func(w *prog.World, v prog.Variant, h prog.Hardening) ([]*emu.Loaded, error)
	decode    func(code []byte, pc uint64, syntax string) decoded
}

// decoded is one decoded machine instruction; n == 0 when the bytes do not
// decode.
type decoded struct {
	text string
	// plain is the text in the syntax the JIT's annotations use (Intel
	// for x86), so that annotations repeating it can be trimmed.
	plain  string
	n      int
	target uint64 // branch target, when branch is set
	branch bool
}

var disasmArches = []*disasmArch{
	{
		name:      "x86_64",
		syntaxes:  []string{"intel", "att"},
		tailEntry: "X86_TAIL_CALL_OFFSET",
		compile: func(w *prog.World, v prog.Variant, h prog.Hardening) ([]*emu.Loaded, error) {
			return emu.CompileX86(w, v, h&prog.IBT != 0)
		},
		decode: decodeX86,
	},
	{
		name:      "arm64",
		syntaxes:  []string{"gnu"},
		tailEntry: "4 * PROLOGUE_OFFSET",
		compile: func(w *prog.World, v prog.Variant, h prog.Hardening) ([]*emu.Loaded, error) {
			return emu.CompileArm64(w, v, h&prog.BTI != 0, h&prog.PAC != 0)
		},
		decode: decodeArm64,
	},
}

func decodeArm64(code []byte, pc uint64, syntax string) decoded {
	in, err := arm64.Decode(code, pc)
	if err != nil {
		return decoded{}
	}
	return decoded{n: in.Len, text: in.Text, plain: in.Text, target: in.Target, branch: in.Branch}
}

func decodeX86(code []byte, pc uint64, syntax string) decoded {
	in, err := x86.Decode(code, pc, x86.Intel)
	if err != nil {
		return decoded{}
	}
	d := decoded{n: in.Len, text: in.Text, plain: in.Text, target: in.Target, branch: in.Branch}
	if syntax == "att" {
		att, _ := x86.Decode(code, pc, x86.ATT)
		d.text = att.Text
	}
	return d
}

func disasmArchNames() string {
	var names []string
	for _, a := range disasmArches {
		names = append(names, a.name)
	}
	return strings.Join(names, ", ")
}

func lookupDisasmArch(name string) (*disasmArch, error) {
	for _, a := range disasmArches {
		if a.name == name {
			return a, nil
		}
	}
	switch {
	case name == (scenarios.Ref{}).Name():
		return nil, fmt.Errorf("arch %q is the reference model and has no machine code (available: %s)", name, disasmArchNames())
	case slices.Contains(scenarios.KnownArches, name):
		return nil, fmt.Errorf("arch %q is not available in this build yet (available: %s)", name, disasmArchNames())
	}
	return nil, fmt.Errorf("unknown arch %q (available: %s)", name, disasmArchNames())
}

type disasmFlags struct {
	arch, variant, layout, syntax *string
	hex                           *bool
}

func newDisasmFlags(fs *flag.FlagSet) disasmFlags {
	return disasmFlags{
		arch:    fs.String("arch", disasmArches[0].name, "arch whose JIT to list ("+disasmArchNames()+")"),
		variant: fs.String("variant", prog.Upstream.String(), "variant (upstream, patched)"),
		layout:  fs.String("layout", "", "structure layout preset (v6.18, v6.18-nosec, pre-v6.18), overriding the scenario's"),
		syntax:  fs.String("syntax", "", "assembly syntax: intel (default) or att"),
		hex:     fs.Bool("hex", false, "show each machine instruction's bytes"),
	}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("disasm x.txtar -hex" works too).
func parseInterspersed(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args, stderr); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func disasmCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("disasm", flag.ContinueOnError)
	f := newDisasmFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tailsim disasm: "+format+"\n", a...)
		return exitUsage
	}
	switch len(pos) {
	case 0:
		return usage("missing SCENARIO argument\nusage: %s", commands["disasm"].usage)
	case 1, 2:
	default:
		return usage("too many arguments (%q...); want SCENARIO [PROG]", pos[2])
	}
	arch, err := lookupDisasmArch(*f.arch)
	if err != nil {
		return usage("%v", err)
	}
	syntax := *f.syntax
	if syntax == "" {
		syntax = arch.syntaxes[0]
	} else if !slices.Contains(arch.syntaxes, syntax) {
		return usage("unknown syntax %q (%s: %s)", syntax, arch.name, strings.Join(arch.syntaxes, ", "))
	}
	v, err := prog.ParseVariant(*f.variant)
	if err != nil {
		return usage("%v", err)
	}
	scs, err := scenarios.LoadPaths(pos[:1])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if len(scs) != 1 {
		return usage("%s holds %d scenarios; name one scenario file", pos[0], len(scs))
	}
	sc := scs[0]
	layout := sc.Layout
	if *f.layout != "" {
		if layout, err = prog.LayoutByName(*f.layout); err != nil {
			return usage("%v", err)
		}
	}
	w, err := sc.BuildWith(layout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	var progName, funcName string
	if len(pos) == 2 {
		progName, funcName, _ = strings.Cut(pos[1], "/")
		p := w.Prog(progName)
		if p == nil {
			var names []string
			for _, p := range w.Progs {
				names = append(names, p.Name)
			}
			return usage("unknown program %q in %s (programs: %s)", progName, sc.File, strings.Join(names, ", "))
		}
		if funcName != "" && p.FuncIndex(funcName) < 0 {
			var names []string
			for _, f := range p.Funcs {
				names = append(names, f.Name)
			}
			return usage("program %s has no function %q (functions: %s)", progName, funcName, strings.Join(names, ", "))
		}
	}
	images, err := arch.compile(w, v, sc.Hardening)
	if err != nil {
		fmt.Fprintf(stderr, "tailsim disasm: %s: %s %s: %v\n", sc.File, arch.name, v, err)
		return exitUsage
	}

	l := &listing{arch: arch, v: v, syntax: syntax, hex: *f.hex, w: w}
	fmt.Fprintf(stdout, "%s %s, layout %s", arch.name, v, layout)
	if sc.Hardening != 0 {
		fmt.Fprintf(stdout, ", hardening %s", sc.Hardening)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "%s: %s\n", sc.File, sc.Title)
	if len(sc.Arches) > 0 && !slices.Contains(sc.Arches, arch.name) {
		fmt.Fprintf(stdout, "note: the scenario runs only on %s\n", strings.Join(sc.Arches, ", "))
	}
	if len(sc.Variants) > 0 && !slices.Contains(sc.Variants, v) {
		var names []string
		for _, sv := range sc.Variants {
			names = append(names, sv.String())
		}
		fmt.Fprintf(stdout, "note: the scenario runs only on the %s variant\n", strings.Join(names, ", "))
	}
	// In the scenario's order, programs then their functions: the arena
	// places them by shape, not in order.
	order := map[*prog.Program]int{}
	for i, p := range w.Progs {
		order[p] = i
	}
	sort.SliceStable(images, func(i, j int) bool {
		a, b := images[i], images[j]
		return order[a.Prog] < order[b.Prog] || order[a.Prog] == order[b.Prog] && a.Fn < b.Fn
	})
	for _, im := range images {
		if progName != "" && (im.Prog.Name != progName || (funcName != "" && im.Prog.Funcs[im.Fn].Name != funcName)) {
			continue
		}
		l.function(im)
	}
	l.print(stdout)
	return exitOK
}

// listing collects the lines of every listed function, so that columns
// line up across the whole output.
type listing struct {
	arch   *disasmArch
	v      prog.Variant
	syntax string
	hex    bool
	w      *prog.World
	lines  []line
	// marks are the current function's labels by code offset: where tail
	// calls land, where a failed tail call continues.
	marks map[int][]string
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

func (l *listing) add(ln line) { l.lines = append(l.lines, ln) }

func (l *listing) function(im *emu.Loaded) {
	img := im.Img
	p, f := im.Prog, im.Prog.Funcs[im.Fn]
	name := p.Name
	var attrs []string
	attrs = append(attrs, fmt.Sprintf("bpf_func %#x", im.Addr))
	if im.Fn == 0 {
		attrs = append(attrs, fmt.Sprintf("tail-call entry +%#x", img.TailEntry))
	} else {
		name += "/" + f.Name
		attrs = append(attrs, "subprogram")
	}
	if img.StackSize > 0 {
		attrs = append(attrs, fmt.Sprintf("stack %d", img.StackSize))
	}
	attrs = append(attrs, fmt.Sprintf("%d bytes", len(img.Code)))
	l.add(line{kind: lineBlank})
	l.add(line{kind: lineFunc, text: fmt.Sprintf("%s (%s):", name, strings.Join(attrs, ", "))})

	pos, _ := f.Slots()
	var fx *prog.Fixup
	if l.w.Fixups != nil {
		fx = l.w.Fixups[p]
	}
	next := 0 // the next BPF instruction that needs a header
	header := func(i int, empty bool) {
		ins := f.Insns[i]
		for _, lab := range ins.Labels {
			l.add(line{kind: lineLabel, text: lab + ":"})
		}
		enc := ins
		var extra []string
		if ins.IsTailCall() && fx != nil {
			if s := fx.Site(im.Fn, i); s != nil {
				desc := s.Describe(l.v)
				for _, ts := range img.Sites {
					if ts.BPF == i && ts.Kind != s.Kind(l.v) {
						desc = ts.Kind.String() + strings.TrimPrefix(desc, s.Kind(l.v).String())
					}
				}
				if imm, err := s.Imm(l.v); err == nil {
					enc = prog.Instruction{OpCode: prog.Jmp(prog.OpTailCall, prog.SourceK), Dst: ins.Dst, Src: ins.Src, Off: ins.Off, Imm: int64(imm)}
				}
				extra = append(extra, "tail call: "+desc)
			}
		}
		if ins.Comment != "" {
			extra = append(extra, "# "+ins.Comment)
		}
		if empty {
			extra = append(extra, "(no code)")
		}
		l.add(line{kind: lineGroup, text: fmt.Sprintf("; %d: %s", pos[i], asm.Format(enc)),
			bpf: "[bpf: " + hexBytes(enc.Encode(nil)) + "]", extra: strings.Join(extra, "  ")})
	}
	flush := func(upto int) {
		for ; next < upto && next < len(f.Insns); next++ {
			header(next, true)
		}
	}
	l.marks = map[int][]string{}
	if im.Fn == 0 {
		l.marks[img.TailEntry] = append(l.marks[img.TailEntry], fmt.Sprintf("<tail calls land here: %s = %#x>", l.arch.tailEntry, img.TailEntry))
	}
	for _, ts := range img.Sites {
		if ts.BPF >= 0 && ts.BPF < len(pos) {
			l.marks[ts.Out] = append(l.marks[ts.Out], fmt.Sprintf("<out: the tail call at %d falls through to here>", pos[ts.BPF]))
		}
	}
	owner := 0
	end := 0
	for k, in := range img.Insns {
		if k == 0 || in.BPF != owner {
			switch {
			case in.BPF == jit.Prologue:
				l.add(line{kind: lineGroup, text: "; prologue"})
			case in.BPF == jit.Epilogue:
				flush(len(f.Insns))
				l.add(line{kind: lineGroup, text: "; epilogue"})
			case in.BPF >= 0 && in.BPF < len(f.Insns):
				flush(in.BPF)
				header(in.BPF, false)
				if in.BPF >= next {
					next = in.BPF + 1
				}
			default:
				l.add(line{kind: lineGroup, text: fmt.Sprintf("; BPF instruction %d (outside the function)", in.BPF)})
			}
			owner = in.BPF
		}
		if in.Off > end {
			l.rows(im, end, in.Off-end, "not claimed by any instruction", false)
		}
		l.rows(im, in.Off, in.Len, in.Note, true)
		end = in.Off + in.Len
	}
	flush(len(f.Insns))
	if end < len(img.Code) {
		l.add(line{kind: lineGroup, text: "; unclaimed"})
		l.rows(im, end, len(img.Code)-end, "not claimed by any instruction", false)
	}
}

// rows decodes one emitted piece, which is normally one machine
// instruction; the note goes on its first line.
func (l *listing) rows(im *emu.Loaded, off, n int, note string, decode bool) {
	code := im.Img.Code[off : off+n]
	for len(code) > 0 {
		d := decoded{}
		if decode {
			d = l.arch.decode(code, im.Addr+uint64(off), l.syntax)
		}
		if d.n == 0 {
			d = decoded{text: "?", n: len(code)}
		}
		for _, m := range l.marks[off] {
			l.add(line{kind: lineMark, text: m})
		}
		ann := trimNote(note, d.plain)
		if d.branch && d.target >= im.Addr && d.target <= im.Addr+uint64(len(im.Img.Code)) {
			arrow := fmt.Sprintf("-> %x", d.target-im.Addr)
			if ann == "" {
				ann = arrow
			} else {
				ann += " " + arrow
			}
		}
		ln := line{kind: lineRow, off: fmt.Sprintf("%x:", off), asm: d.text, note: ann}
		if l.hex {
			ln.bytes = hexBytes(code[:d.n])
		}
		l.add(ln)
		off += d.n
		code = code[d.n:]
		note = ""
	}
}

// trimNote drops the part of a JIT annotation that only repeats the
// decoded instruction: "push rbp" on push rbp, "mov edx, edx: " on mov
// edx, edx.
func trimNote(note, text string) string {
	if text == "" {
		return note
	}
	if note == text {
		return ""
	}
	if rest, ok := strings.CutPrefix(note, text+": "); ok {
		return rest
	}
	return note
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

func (l *listing) print(w io.Writer) {
	var offW, bytesW, asmW, groupW int
	for _, ln := range l.lines {
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
	// Rows are indented under their group header; the header's bpf column
	// starts where the rows' annotation does when that is wide enough.
	rowIndent := 4
	annCol := rowIndent + offW + 2 + asmW + 2
	if l.hex {
		annCol += bytesW + 2
	}
	if !l.hex {
		groupW = max(groupW, annCol-2)
	}
	for _, ln := range l.lines {
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
			if l.hex {
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
