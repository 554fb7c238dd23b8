// Package scenarios reads scenario files (docs/scenario-format.md), builds
// the prog model they describe, and runs them on every selected backend,
// checking the expectations and comparing emulated results with the
// reference model.
package scenarios

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"tailsim/prog"
	"tailsim/prog/asm"
	"tailsim/prog/object"
)

// Scenario is a parsed scenario file.
type Scenario struct {
	File    string
	Title   string
	Comment string

	Layout prog.Layout
	// LayoutLine is the config line that set Layout (0: the default).
	LayoutLine int
	Arches     []string // empty: every selected arch
	// Configs are the run configurations (-config) the scenario runs
	// under, as Arches and Kernels restrict theirs; empty: every one.
	Configs []prog.Config
	Kernels []prog.Kernel // empty: every selected variant
	Fixup   prog.FixupOptions
	Budget  int
	// Config is the kernel build the backends emit for (config "config");
	// a run's -config adds to it (prog.Config.Under).
	Config prog.Config
	// Placement is passed to the backends (config "placement").
	Placement prog.Placement

	// Object is the BPF ELF object the config section names ("" for none);
	// its programs, subprograms, prog arrays and initial slots are among
	// the others, declared at its line.
	Object     string
	ObjectLine int
	Maps       []MapDecl
	Progs      []FuncDecl
	Subprogs   []FuncDecl
	Slots      []SlotDecl
	Ctx        []byte // nil: no ctx section, R1 = 0
	Steps      []Step
}

// MapDecl declares a prog array.
type MapDecl struct {
	Name       string
	MaxEntries uint32
	// Array is set for a BPF_MAP_TYPE_ARRAY of ValueSize-byte values
	// (type=array); a prog array otherwise.
	Array     bool
	ValueSize uint32
	Line      int
	// An object's array: its values as loaded, its global variables, and
	// whether programs and user space may only read it (.rodata).
	Init     []byte
	Vars     []prog.Var
	ReadOnly bool
}

// FuncDecl is a program or subprogram section.
type FuncDecl struct {
	Name       string
	Type       string
	Stack      int
	StackGiven bool
	Insns      []prog.Instruction
	Line       int
}

// SlotDecl is an initial slot content.
type SlotDecl struct {
	Map   string
	Index uint64
	Prog  string
	Line  int
}

// StepKind is what a run step does.
type StepKind uint8

const (
	StepRun StepKind = iota + 1
	StepUpdate
	StepDelete
	StepFinish // applies the rest of a stopped update or delete
	StepSet    // writes ctx memory between runs, as user space writes a global
)

// Step is one line of the run section with the expectations that follow it.
type Step struct {
	Kind   StepKind
	Prog   string // run: entry; update: the program
	Map    string
	Index  uint64
	Repeat int
	// TailCallCnt starts a run's first tail call with the counter where a
	// chain of that many taken tail calls would have left it
	// (prog.CountPresetter).
	TailCallCnt uint64
	Line        int
	Expect      []Expect
	// Stopped updates and deletes apply the kernel's steps up to and
	// including Stop, and leave the rest for a later finish step.
	Stopped bool
	Stop    prog.EffectKind
	// Set is the ctx write of a set step (Key "ctx").
	Set Expect
}

func (s Step) String() string {
	stop := ""
	if s.Stopped {
		stop = " stop=" + s.Stop.String()
	}
	switch s.Kind {
	case StepUpdate:
		return fmt.Sprintf("update %s[%d] = %s%s", s.Map, s.Index, s.Prog, stop)
	case StepDelete:
		return fmt.Sprintf("delete %s[%d]%s", s.Map, s.Index, stop)
	case StepFinish:
		return fmt.Sprintf("finish %s[%d]", s.Map, s.Index)
	case StepSet:
		return "set " + s.Set.Source
	}
	out := "run " + s.Prog
	if s.Repeat > 1 {
		out += fmt.Sprintf(" repeat=%d", s.Repeat)
	}
	if s.TailCallCnt > 0 {
		out += fmt.Sprintf(" tail_call_cnt=%d", s.TailCallCnt)
	}
	return out
}

// Key is what an expectation checks; its String is the word scenarios use
// ("ctx" for every ctx+OFF).
type Key uint8

const (
	_              Key = iota // none
	KeyR0                     // r0
	KeyW0                     // w0
	KeyCount                  // count
	KeyPath                   // path
	KeyFallthrough            // fallthrough
	KeyCtx                    // ctx
	KeyFault                  // fault
	KeyDivergence             // divergence
	KeyBroken                 // broken
	KeyError                  // error
	KeyMap                    // map
)

// keys lists the words an expectation may start with, in the order error
// messages give them.
var keys = []Key{KeyR0, KeyW0, KeyCount, KeyPath, KeyFallthrough, KeyCtx, KeyFault, KeyDivergence, KeyBroken, KeyError}

// Expect is one checked property. Scope limits it to some arch/variant
// combinations; Interp checks the kernel interpreter's counting rule instead.
type Expect struct {
	Key    Key
	Interp bool
	Scope  []scope
	Value  uint64
	Path   []string
	Falls  []prog.Reason
	Off    int
	Size   int    // ctx: 1, 2, 4, 8, or 0 for bytes
	Bytes  []byte // ctx bytes
	// Map names the array map of a KeyMap (Off is into its values).
	Map string
	// Fault is the fault kind "fault = KIND" asks for; 0 with NoFault
	// unset is any fault ("expect fault").
	Fault   prog.FaultKind
	NoFault bool // "fault = none"
	// HasAddr pins a fault's data address (Value): "fault = access @0x10".
	HasAddr  bool
	Property prog.Property // broken
	Errno    string        // error: none, E2BIG, ENOENT or EINVAL
	Line     int
	Source   string // the text after "expect", for messages
}

type scope struct{ arch, kernel string }

func (s scope) String() string {
	switch {
	case s.arch == "":
		return s.kernel
	case s.kernel == "":
		return s.arch
	}
	return s.arch + "/" + s.kernel
}

// Applies reports whether the expectation is checked on arch under kernel.
func (e Expect) Applies(arch, kernel string) bool {
	if len(e.Scope) == 0 {
		return true
	}
	for _, s := range e.Scope {
		if (s.arch == "" || s.arch == arch) && (s.kernel == "" || s.kernel == kernel) {
			return true
		}
	}
	return false
}

// KnownArches are the names a scenario may select or scope to.
var KnownArches = []string{"ref", "x86_64", "arm64"}

// Parse reads a scenario file. Every error names the file and line. An
// object it names is read from the file system, relative to file's
// directory.
func Parse(file string, data []byte) (*Scenario, error) {
	return ParseWith(file, data, func(name string) ([]byte, error) {
		left := int64(MaxFileSize)
		return readFileWithin(filepath.Join(filepath.Dir(file), filepath.FromSlash(name)), &left)
	})
}

// ParseWith is Parse with the files a scenario names (objects) read by
// read, given their path relative to the scenario's directory.
func ParseWith(file string, data []byte, read func(name string) ([]byte, error)) (*Scenario, error) {
	comment, secs, err := splitTxtar(file, string(data))
	if err != nil {
		return nil, err
	}
	sc := &Scenario{File: file, Layout: prog.DefaultLayout}
	comment = strings.TrimSpace(comment)
	if comment == "" {
		return nil, &Error{File: file, Line: 1, Msg: "a scenario starts with a title line"}
	}
	title, rest, _ := strings.Cut(comment, "\n")
	sc.Title, sc.Comment = strings.TrimSpace(title), strings.TrimSpace(rest)
	if len(secs) == 0 {
		return nil, &Error{File: file, Line: strings.Count(string(data), "\n") + 1, Msg: "no sections: a scenario needs at least a prog and a run section (truncated file?)"}
	}
	p := &specParser{sc: sc, file: file, names: map[string]int{}, read: read}
	seen := map[string]int{}
	for _, s := range secs {
		if !slices.Contains([]string{"config", "maps", "prog", "subprog", "slots", "ctx", "run"}, s.Kind) {
			return nil, p.errf(s.Line, "unknown section %q (config, maps, prog, subprog, slots, ctx, run)", s.Kind)
		}
		single := s.Kind != "prog" && s.Kind != "subprog"
		if single {
			if prev, dup := seen[s.Kind]; dup {
				return nil, p.errf(s.Line, "second %s section (first at line %d)", s.Kind, prev)
			}
			seen[s.Kind] = s.Line
			if len(s.Args) > 0 {
				return nil, p.errf(s.Line, "the %s section takes no arguments", s.Kind)
			}
		}
		var err error
		switch s.Kind {
		case "config":
			err = p.config(s)
		case "maps":
			err = p.maps(s)
		case "prog", "subprog":
			err = p.function(s)
		case "slots":
			err = p.slots(s)
		case "ctx":
			err = p.ctx(s)
		case "run":
			err = p.run(s)
		default:
			err = p.errf(s.Line, "unknown section %q (config, maps, prog, subprog, slots, ctx, run)", s.Kind)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(sc.Progs) == 0 {
		return nil, &Error{File: file, Msg: "no prog section"}
	}
	if len(sc.Steps) == 0 {
		return nil, &Error{File: file, Msg: "no run steps: add a run section with at least one \"run PROG\""}
	}
	if err := p.checkWork(); err != nil {
		return nil, err
	}
	if sc.Fixup.Unprivileged && sc.Fixup.NoVerifier {
		// The rewrite and refusals of an unprivileged load are the
		// verifier's; lib/test_bpf, which verifier off models, loads as root.
		return nil, &Error{File: file, Msg: "privileged off needs the verifier: verifier off models lib/test_bpf, whose programs the kernel loads without one"}
	}
	// Build once so that every reference is checked at parse time.
	w, err := sc.Build()
	if err != nil {
		return nil, err
	}
	// interp.* states what the kernel interpreter would give, which
	// refuses a program with calls and a tail call.
	for _, st := range sc.Steps {
		for _, e := range st.Expect {
			if !e.Interp {
				continue
			}
			for _, pr := range w.Progs {
				if pr.InterpreterRefuses() {
					return nil, p.errf(e.Line, "interp.%s: the kernel interpreter refuses program %s (%s: check_map_func_compatibility()), so it gives no result to expect", e.Key, pr.Name, prog.InterpreterRefusal)
				}
			}
		}
	}
	return sc, nil
}

// Locate gives an error from building or loading sc's programs the
// scenario line that caused it: a program's (prog.PosError) or, for a
// layout an arch's JIT cannot encode, the layout line. Others come back
// as they are.
func (sc *Scenario) Locate(err error) error {
	var pe *prog.PosError
	var le *prog.LayoutError
	switch {
	case errors.As(err, &pe) && pe.Line > 0:
		return &Error{File: sc.File, Line: pe.Line, Msg: pe.Msg}
	case errors.As(err, &le) && sc.LayoutLine > 0:
		return &Error{File: sc.File, Line: sc.LayoutLine, Msg: le.Error()}
	}
	return err
}

type specParser struct {
	sc    *Scenario
	file  string
	names map[string]int // map, prog and subprog names -> line
	read  func(name string) ([]byte, error)
}

func (p *specParser) errf(line int, format string, args ...any) error {
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// lines yields the non-empty, comment-stripped lines of a section body with
// their file line numbers.
func lines(s section) []struct {
	n    int
	text string
} {
	var out []struct {
		n    int
		text string
	}
	for i, l := range strings.Split(s.Body, "\n") {
		if j := strings.IndexAny(l, "#"); j >= 0 {
			l = l[:j]
		}
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, struct {
				n    int
				text string
			}{s.Line + 1 + i, l})
		}
	}
	return out
}

func (p *specParser) declare(name string, line int) error {
	if !validName(name) {
		return p.errf(line, "bad name %q (letters, digits, _ and .; not starting with a digit)", name)
	}
	if _, isHelper := prog.HelperByName(name); isHelper {
		return p.errf(line, "%q is a helper's name; \"call %s\" would call the helper", name, name)
	}
	if prev, dup := p.names[name]; dup {
		return p.errf(line, "duplicate name %q (first declared at line %d)", name, prev)
	}
	p.names[name] = line
	return nil
}

func validName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// parseUint reads decimal, hex (0x), octal (0o) or binary (0b), with _ separators.
func parseUint(s string) (uint64, error) {
	return strconv.ParseUint(s, 0, 64)
}

// fits reports whether the number written as s fits n bytes, signed or unsigned.
func fits(s string, v uint64, n int) bool {
	if n == 8 {
		return true
	}
	if strings.HasPrefix(s, "-") {
		return int64(v) >= -(1 << (8*n - 1))
	}
	return v < 1<<(8*n)
}

// parseValue reads an integer that may be negative; the result is the 64-bit
// two's complement pattern.
func parseValue(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseUint(s[1:], 0, 64)
		if err != nil || v > 1<<63 {
			return 0, fmt.Errorf("bad number %q", s)
		}
		return -v, nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}

// keyValues splits "a=1 b=2" words into a map, rejecting unknown keys.
func (p *specParser) keyValues(line int, words []string, allowed ...string) (map[string]string, error) {
	kv := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || v == "" {
			return nil, p.errf(line, "expected key=value, found %q", w)
		}
		if !slices.Contains(allowed, k) {
			return nil, p.errf(line, "unknown option %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
		if _, dup := kv[k]; dup {
			return nil, p.errf(line, "option %q given twice", k)
		}
		kv[k] = v
	}
	return kv, nil
}

func (p *specParser) config(s section) error {
	for _, l := range lines(s) {
		words := strings.Fields(l.text)
		key, args := words[0], words[1:]
		one := func() (string, error) {
			if len(args) != 1 {
				return "", p.errf(l.n, "%s takes one value", key)
			}
			return args[0], nil
		}
		switch key {
		case "layout":
			if len(args) == 0 {
				return p.errf(l.n, "layout needs a preset name or \"custom max_entries=.. ptrs=.. bpf_func=..\"")
			}
			if args[0] == "custom" {
				kv, err := p.keyValues(l.n, args[1:], "max_entries", "ptrs", "bpf_func")
				if err != nil {
					return err
				}
				lay := prog.Layout{Name: "custom"}
				for _, f := range []struct {
					k   string
					dst *uint32
				}{{"max_entries", &lay.MaxEntries}, {"ptrs", &lay.Ptrs}, {"bpf_func", &lay.BpfFunc}} {
					k, dst := f.k, f.dst
					v, ok := kv[k]
					if !ok {
						return p.errf(l.n, "custom layout needs %s=", k)
					}
					n, err := parseUint(v)
					if err != nil || n > math.MaxUint32 {
						return p.errf(l.n, "bad %s offset %q", k, v)
					}
					*dst = uint32(n)
				}
				if err := lay.Validate(); err != nil {
					return p.errf(l.n, "%v", err)
				}
				p.sc.Layout, p.sc.LayoutLine = lay, l.n
				continue
			}
			name, err := one()
			if err != nil {
				return err
			}
			lay, err := prog.LayoutByName(name)
			if err != nil {
				return p.errf(l.n, "%v, or custom max_entries=N ptrs=N bpf_func=N", err)
			}
			p.sc.Layout, p.sc.LayoutLine = lay, l.n
		case "arch":
			for _, a := range splitList(args) {
				if !slices.Contains(KnownArches, a) {
					return p.errf(l.n, "unknown arch %q (%s)", a, strings.Join(KnownArches, ", "))
				}
				p.sc.Arches = append(p.sc.Arches, a)
			}
		case "variant":
			return p.errf(l.n, "the variant key is now kernel (v6.1, v6.18, v6.18+series): kernel %s", strings.Join(splitList(args), ","))
		case "kernel":
			for _, a := range splitList(args) {
				v, err := prog.ParseKernel(a)
				if err != nil {
					return p.errf(l.n, "%v", err)
				}
				p.sc.Kernels = append(p.sc.Kernels, v)
			}
		case "verifier", "direct", "privileged":
			v, err := one()
			if err != nil {
				return err
			}
			if v != "on" && v != "off" {
				return p.errf(l.n, "%s is on or off, not %q", key, v)
			}
			switch key {
			case "verifier":
				p.sc.Fixup.NoVerifier = v == "off"
			case "direct":
				p.sc.Fixup.NoDirect = v == "off"
			default:
				p.sc.Fixup.Unprivileged = v == "off"
			}
		case "config":
			c, err := prog.ParseConfig(strings.Join(splitList(args), ","))
			if err != nil {
				return p.errf(l.n, "%v", err)
			}
			p.sc.Config = c
		case "hardening":
			return p.errf(l.n, "the hardening key is now config: config %s", strings.Join(splitList(args), ","))
		case "configs":
			if len(args) == 0 {
				return p.errf(l.n, "configs lists the run configurations the scenario runs under (%s, or options joined with +)", strings.Join(prog.ConfigNames(), ", "))
			}
			for _, a := range splitList(args) {
				c, err := prog.ParseConfig(a)
				if err != nil {
					return p.errf(l.n, "%v", err)
				}
				p.sc.Configs = append(p.sc.Configs, c)
			}
		case "placement":
			v, err := one()
			if err != nil {
				return err
			}
			pl, err := prog.ParsePlacement(v)
			if err != nil {
				return p.errf(l.n, "%v", err)
			}
			p.sc.Placement = pl
		case "object":
			name, err := one()
			if err != nil {
				return err
			}
			if err := p.object(name, l.n); err != nil {
				return err
			}
		case "budget":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := parseUint(v)
			if err != nil || n == 0 || n > MaxBudget {
				return p.errf(l.n, "bad budget %q (instructions per run, 1..%d: a million per program, 34 programs)", v, MaxBudget)
			}
			p.sc.Budget = int(n)
		default:
			return p.errf(l.n, "unknown config key %q (layout, arch, kernel, verifier, direct, privileged, config, configs, placement, object, budget)", key)
		}
	}
	return nil
}

func splitList(args []string) []string {
	var out []string
	for _, a := range args {
		for _, x := range strings.Split(a, ",") {
			if x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// object declares what a BPF ELF object holds, as if its programs,
// subprograms, prog arrays and their initialisers were written in the
// scenario, at the object's line.
func (p *specParser) object(name string, line int) error {
	if p.sc.Object != "" {
		return p.errf(line, "a second object (the first is %s)", p.sc.Object)
	}
	data, err := p.read(name)
	if err != nil {
		return p.errf(line, "object %s: %v", name, err)
	}
	obj, err := object.Load(name, data)
	if err != nil {
		return p.errf(line, "%v", err)
	}
	p.sc.Object, p.sc.ObjectLine = name, line
	for _, m := range obj.Maps {
		if err := p.declare(m.Name, line); err != nil {
			return p.errf(line, "%s: map %s: %v", name, m.Name, err.(*Error).Msg)
		}
		if m.Array {
			for _, v := range m.Vars {
				if other, dup := p.global(v.Name); dup {
					return p.errf(line, "%s: global %s is in both %s and %s", name, v.Name, other.Name, m.Name)
				}
			}
			p.sc.Maps = append(p.sc.Maps, MapDecl{Name: m.Name, MaxEntries: m.MaxEntries, Array: true, ValueSize: m.ValueSize,
				Line: line, Init: m.Init, Vars: m.Vars, ReadOnly: m.ReadOnly})
			continue
		}
		p.sc.Maps = append(p.sc.Maps, MapDecl{Name: m.Name, MaxEntries: m.MaxEntries, Line: line})
		for _, i := range slices.Sorted(maps.Keys(m.Values)) {
			p.sc.Slots = append(p.sc.Slots, SlotDecl{Map: m.Name, Index: uint64(i), Prog: m.Values[i], Line: line})
		}
	}
	subs := map[string]bool{}
	for _, op := range obj.Progs {
		for k, f := range op.Funcs {
			if k > 0 && subs[f.Name] {
				continue // the same static function, called from another program
			}
			if err := p.declare(f.Name, line); err != nil {
				return p.errf(line, "%s: %s %s: %v", name, map[bool]string{true: "program", false: "subprogram"}[k == 0], f.Name, err.(*Error).Msg)
			}
			d := FuncDecl{Name: f.Name, Type: op.Type, Insns: f.Insns, Line: line}
			if d.Stack = prog.StackDepthOf(f.Insns); d.Stack > prog.MaxStackDepth {
				return p.errf(line, "%s: %s touches r10 - %d, beyond the %d-byte BPF stack", name, f.Name, d.Stack, prog.MaxStackDepth)
			}
			if k == 0 {
				p.sc.Progs = append(p.sc.Progs, d)
			} else {
				d.Type = ""
				subs[f.Name] = true
				p.sc.Subprogs = append(p.sc.Subprogs, d)
			}
		}
	}
	return nil
}

func (p *specParser) maps(s section) error {
	for _, l := range lines(s) {
		words := strings.Fields(l.text)
		if err := p.declare(words[0], l.n); err != nil {
			return err
		}
		kv, err := p.keyValues(l.n, words[1:], "max_entries", "type", "value_size")
		if err != nil {
			return err
		}
		d := MapDecl{Name: words[0], Line: l.n}
		switch kv["type"] {
		case "", "prog_array":
			if _, ok := kv["value_size"]; ok {
				return p.errf(l.n, "a prog array's values are programs: no value_size")
			}
		case "array":
			v, ok := kv["value_size"]
			n, err := parseUint(v)
			if !ok || err != nil || n == 0 || n > prog.MaxArrayBytes {
				return p.errf(l.n, "array %s needs value_size=N (1..%d)", words[0], prog.MaxArrayBytes)
			}
			d.Array, d.ValueSize = true, uint32(n)
		default:
			return p.errf(l.n, "unknown map type %q (prog_array, array)", kv["type"])
		}
		v, ok := kv["max_entries"]
		if !ok {
			return p.errf(l.n, "map %s needs max_entries=N", words[0])
		}
		n, err := parseUint(v)
		if err != nil || n > math.MaxUint32 {
			return p.errf(l.n, "bad max_entries %q (a u32)", v)
		}
		if n == 0 {
			return p.errf(l.n, "max_entries 0 is rejected by the kernel (EINVAL)")
		}
		d.MaxEntries = uint32(n)
		if d.Array {
			if _, err := prog.NewArrayMap(d.Name, d.MaxEntries, d.ValueSize); err != nil {
				return p.errf(l.n, "%v", err)
			}
		}
		p.sc.Maps = append(p.sc.Maps, d)
	}
	return nil
}

// global finds an object's global variable: the array that holds it.
func (p *specParser) global(name string) (*MapDecl, bool) {
	for i := range p.sc.Maps {
		for _, v := range p.sc.Maps[i].Vars {
			if v.Name == name {
				return &p.sc.Maps[i], true
			}
		}
	}
	return nil, false
}

// arrayMap is the array map a scenario declared under name, or nil.
func (p *specParser) arrayMap(name string) *MapDecl {
	for i := range p.sc.Maps {
		if m := &p.sc.Maps[i]; m.Name == name && m.Array {
			return m
		}
	}
	return nil
}

func (p *specParser) function(s section) error {
	if len(s.Args) == 0 {
		return p.errf(s.Line, "%s section needs a name: -- %s NAME --", s.Kind, s.Kind)
	}
	d := FuncDecl{Name: s.Args[0], Line: s.Line}
	if err := p.declare(d.Name, s.Line); err != nil {
		return err
	}
	allowed := []string{"stack"}
	if s.Kind == "prog" {
		allowed = append(allowed, "type")
	}
	kv, err := p.keyValues(s.Line, s.Args[1:], allowed...)
	if err != nil {
		return err
	}
	if v, ok := kv["stack"]; ok {
		n, err := parseUint(v)
		if err != nil || n > prog.MaxStackDepth {
			return p.errf(s.Line, "bad stack size %q (0..%d bytes)", v, prog.MaxStackDepth)
		}
		d.Stack, d.StackGiven = int(n), true
	}
	d.Type = kv["type"]
	if d.Type == "" {
		d.Type = "sched_cls"
	}
	insns, err := asm.Parse(s.Body, s.Line+1)
	if err != nil {
		return p.wrap(err)
	}
	if len(insns) == 0 {
		return p.errf(s.Line, "%s %s has no instructions", s.Kind, d.Name)
	}
	for _, ins := range insns {
		if ins.IsHelperCall() {
			if _, ok := prog.HelperByID(int32(ins.Imm)); !ok {
				return p.errf(ins.Line, "unknown helper %d", ins.Imm)
			}
		}
	}
	d.Insns = insns
	if depth := prog.StackDepthOf(insns); depth > prog.MaxStackDepth {
		return p.errf(s.Line, "%s %s touches r10 - %d, beyond the %d-byte BPF stack", s.Kind, d.Name, depth, prog.MaxStackDepth)
	} else if !d.StackGiven {
		d.Stack = depth
	} else if depth > d.Stack {
		return p.errf(s.Line, "%s %s touches r10 - %d but declares stack=%d", s.Kind, d.Name, depth, d.Stack)
	}
	if s.Kind == "prog" {
		p.sc.Progs = append(p.sc.Progs, d)
	} else {
		p.sc.Subprogs = append(p.sc.Subprogs, d)
	}
	return nil
}

// wrap turns a prog.PosError into a file-located Error.
func (p *specParser) wrap(err error) error {
	return locate(p.file, err)
}

func locate(file string, err error) error {
	var pe *prog.PosError
	if asPosError(err, &pe) {
		return &Error{File: file, Line: pe.Line, Col: pe.Col, Msg: pe.Msg}
	}
	return &Error{File: file, Msg: err.Error()}
}

// slotRef parses "map[index]".
func (p *specParser) slotRef(line int, s string) (string, uint64, error) {
	name, rest, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", 0, p.errf(line, "expected MAP[INDEX], found %q", s)
	}
	idx, err := parseUint(strings.TrimSuffix(rest, "]"))
	if err != nil {
		return "", 0, p.errf(line, "bad index in %q", s)
	}
	return name, idx, nil
}

func (p *specParser) slots(s section) error {
	for _, l := range lines(s) {
		lhs, rhs, ok := strings.Cut(l.text, "=")
		if !ok {
			return p.errf(l.n, "expected MAP[INDEX] = PROG")
		}
		m, idx, err := p.slotRef(l.n, strings.TrimSpace(lhs))
		if err != nil {
			return err
		}
		if p.arrayMap(m) != nil {
			return p.errf(l.n, "%s is an array map: its values are set with set %s[INDEX] TYPE = VALUE in the run section", m, m)
		}
		if strings.TrimSpace(rhs) == "" {
			return p.errf(l.n, "expected MAP[INDEX] = PROG, found no program")
		}
		p.sc.Slots = append(p.sc.Slots, SlotDecl{Map: m, Index: idx, Prog: strings.TrimSpace(rhs), Line: l.n})
	}
	return nil
}

func (p *specParser) ctx(s section) error {
	ctx := []byte{}
	for _, l := range lines(s) {
		words := strings.Fields(l.text)
		switch kind := words[0]; kind {
		case "u8", "u16", "u32", "u64":
			if len(words) != 2 {
				return p.errf(l.n, "%s takes one value", kind)
			}
			v, err := parseValue(words[1])
			if err != nil {
				return p.errf(l.n, "%v", err)
			}
			n := map[string]int{"u8": 1, "u16": 2, "u32": 4, "u64": 8}[kind]
			if !fits(words[1], v, n) {
				return p.errf(l.n, "%s does not fit %s", words[1], kind)
			}
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(v >> (8 * i))
			}
			ctx = append(ctx, b...)
		case "bytes":
			for _, w := range words[1:] {
				v, err := strconv.ParseUint(w, 16, 8)
				if err != nil {
					return p.errf(l.n, "bad byte %q (two hex digits)", w)
				}
				ctx = append(ctx, byte(v))
			}
		case "zero":
			if len(words) != 2 {
				return p.errf(l.n, "zero takes a byte count")
			}
			n, err := parseUint(words[1])
			if err != nil || n > 1<<16 {
				return p.errf(l.n, "bad byte count %q", words[1])
			}
			ctx = append(ctx, make([]byte, n)...)
		default:
			return p.errf(l.n, "unknown ctx item %q (u8, u16, u32, u64, bytes, zero)", kind)
		}
	}
	if len(ctx) == 0 {
		return p.errf(s.Line, "empty ctx section (leave it out for a NULL ctx)")
	}
	if len(ctx) > 1<<16 {
		return p.errf(s.Line, "ctx larger than 64 KiB")
	}
	p.sc.Ctx = ctx
	return nil
}
