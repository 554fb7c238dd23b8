package oracle

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Diff is the outcome of comparing one function's tokens.
type Diff struct {
	Kernel, Tailsim []Token
	// Bad are the token indexes that differ (by Text, or by what the
	// masked address names); an index past the shorter side counts as
	// differing.
	Bad []int
}

// Equal reports a function that matched.
func (d *Diff) Equal() bool { return len(d.Bad) == 0 }

// Compare matches the kernel's tokens with tailsim's, position by
// position: JITs emit in BPF order, so a difference shows where it starts.
// A masked address must name the same thing on both sides: a symbol known
// to one side only is a difference, and one neither side names (a program
// constant in the kernel's half of the address space) must be the same
// value. A kernel cannot name its maps' addresses; maps, when not nil,
// pairs them with tailsim's maps.
func Compare(kernel, tailsim []Token, maps *Binding) *Diff {
	d := &Diff{Kernel: kernel, Tailsim: tailsim}
	for k := 0; k < max(len(kernel), len(tailsim)); k++ {
		if k >= len(kernel) || k >= len(tailsim) {
			d.Bad = append(d.Bad, k)
			continue
		}
		a, b := kernel[k], tailsim[k]
		if a.Sym == "" && isMapSym(b.Sym) && maps != nil {
			// An address inside a map (a value's) binds the map's
			// base, so the offset is checked too.
			base, off := splitMapSym(b.Sym)
			a.Sym = maps.bind(a.Addr-off, base)
			if a.Sym == base {
				a.Sym = b.Sym
			}
			kernel[k].Sym = a.Sym
		}
		if a.Text != b.Text || a.Sym != b.Sym || a.Sym == "" && a.Addr != b.Addr {
			d.Bad = append(d.Bad, k)
		}
	}
	return d
}

// Binding pairs the addresses of a kernel's maps with tailsim's maps over
// one boot's images of a scenario: one address stands for one map
// throughout, and one map for one address. An address inside a map (a
// value's, "map X+0x110") stands for the map's base at that offset.
type Binding struct {
	byAddr map[uint64]string
	byName map[string]uint64
}

// bind names the kernel's addr as tailsim's map name, the first time
// either is seen; after that, by what the first pairing said
// ("?" when addr was never paired and name was paired with another).
func (m *Binding) bind(addr uint64, name string) string {
	if m.byAddr == nil {
		m.byAddr, m.byName = map[uint64]string{}, map[string]uint64{}
	}
	if s, ok := m.byAddr[addr]; ok {
		return s
	}
	if _, ok := m.byName[name]; ok {
		return fmt.Sprintf("map ? (%s is elsewhere)", strings.TrimPrefix(name, "map "))
	}
	m.byAddr[addr], m.byName[name] = name, addr
	return name
}

func isMapSym(s string) bool { return strings.HasPrefix(s, "map ") }

// splitMapSym splits "map X+0x110" (emu.MapAt's name for an address inside
// a map) into "map X" and 0x110.
func splitMapSym(s string) (string, uint64) {
	i := strings.LastIndex(s, "+0x")
	if i < 0 {
		return s, 0
	}
	off, err := strconv.ParseUint(s[i+3:], 16, 64)
	if err != nil {
		return s, 0
	}
	return s[:i], off
}

// Write lists both sides token by token, marking the ones that differ
// with "!": what a failure shows.
func (d *Diff) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	bad := map[int]bool{}
	for _, k := range d.Bad {
		bad[k] = true
	}
	cell := func(ts []Token, k int) string {
		if k >= len(ts) {
			return "-"
		}
		t := ts[k]
		s := fmt.Sprintf("+%#03x %s", t.Off, t.Asm)
		if t.Sym != "" {
			s += " <" + t.Sym + ">"
		}
		return s
	}
	fmt.Fprintf(tw, "\tkernel\ttailsim\n")
	for k := 0; k < max(len(d.Kernel), len(d.Tailsim)); k++ {
		mark := " "
		if bad[k] {
			mark = "!"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, cell(d.Kernel, k), cell(d.Tailsim, k))
	}
	return tw.Flush()
}

// Image is what a kernel returned for one program: each function's
// address (its ksym) and code.
type Image struct {
	Prog  string
	Funcs []Func
}

// Func is one JITed function of an Image.
type Func struct {
	Addr uint64
	Code []byte
}

// Images are the programs of one kernel boot, with the kernel symbols
// their code reaches (thunks, helpers).
type Images struct {
	Progs []*Image
	Syms  map[uint64]string
	more  Resolver // what else names addresses (tailsim's stubs)
}

// Prog returns the named program's image, or nil.
func (im *Images) Prog(name string) *Image {
	for _, p := range im.Progs {
		if p.Prog == name {
			return p
		}
	}
	return nil
}

// Resolve names an address inside one of the boot's functions as
// "prog#fn+off" (fn the function's index, "+off" left out at 0), or by a
// kernel symbol.
func (im *Images) Resolve(addr uint64) string {
	for _, p := range im.Progs {
		if strings.Contains(p.Prog, "@") {
			continue // an earlier image of a program listed again
		}
		for fn, f := range p.Funcs {
			if addr >= f.Addr && addr < f.Addr+uint64(len(f.Code)) {
				return FuncSym(p.Prog, fn, addr-f.Addr)
			}
		}
	}
	if s, ok := im.Syms[addr]; ok {
		return s
	}
	if im.more != nil {
		return im.more(addr)
	}
	return ""
}

// FuncSym is how both sides name a place in a program's function.
func FuncSym(prog string, fn int, off uint64) string {
	s := fmt.Sprintf("%s#%d", prog, fn)
	if off != 0 {
		s += fmt.Sprintf("+%#x", off)
	}
	return s
}

// ReadImages parses the images file format:
//
//	# comment
//	prog NAME
//	func ADDR HEX      (one per function, main first)
//	sym ADDR NAME      (a kernel symbol)
func ReadImages(r io.Reader) (*Images, error) {
	im := &Images{Syms: map[uint64]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(msg string) error { return fmt.Errorf("images line %d: %s", n, msg) }
		switch {
		case f[0] == "prog" && len(f) == 2:
			im.Progs = append(im.Progs, &Image{Prog: f[1]})
		case f[0] == "func" && len(f) == 3:
			if len(im.Progs) == 0 {
				return nil, bad("func before any prog")
			}
			a, err := strconv.ParseUint(f[1], 0, 64)
			if err != nil {
				return nil, bad(err.Error())
			}
			code, err := hex.DecodeString(f[2])
			if err != nil {
				return nil, bad(err.Error())
			}
			p := im.Progs[len(im.Progs)-1]
			p.Funcs = append(p.Funcs, Func{Addr: a, Code: code})
		case f[0] == "sym" && len(f) == 3:
			a, err := strconv.ParseUint(f[1], 0, 64)
			if err != nil {
				return nil, bad(err.Error())
			}
			im.Syms[a] = f[2]
		default:
			return nil, bad(fmt.Sprintf("expected prog NAME, func ADDR HEX or sym ADDR NAME, found %q", sc.Text()))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(im.Progs, func(i, j int) bool { return im.Progs[i].Prog < im.Progs[j].Prog })
	return im, nil
}
