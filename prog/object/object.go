// Package object reads a BPF ELF object, as clang -target bpf writes it,
// into tailsim's program model: its programs (with the subprograms each
// calls), its prog arrays and their .maps initialisers, its arrays and
// global data (.bss, .data, .rodata) with their variables, and the C
// source line of each instruction from the object's BTF line info. The
// ELF and BTF are read by github.com/cilium/ebpf, which needs no kernel.
//
// What tailsim does not model is refused with the object, section and
// instruction named: other map types, kfuncs, callbacks, and helpers
// without a stub.
package object

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"tailsim/prog"
)

// Object is the programs and maps of one ELF object.
type Object struct {
	Path  string
	Progs []*Prog
	Maps  []*Map
}

// Prog is one program: its main function first, then the subprograms it
// calls, each under its symbol's name.
type Prog struct {
	Name    string
	Type    string // as scenarios name it: "sched_cls", "socket_filter", ...
	Section string
	Funcs   []*prog.Function
}

// Map is a prog array and the programs its .maps initialiser puts in it,
// or (Array) an array map: one declared in .maps, or global data
// (.bss, .data, .rodata: one value holding the variables).
type Map struct {
	Name       string
	MaxEntries uint32
	Values     map[uint32]string
	Array      bool
	ValueSize  uint32
	// Init is the array's values as loaded, elements round_up(ValueSize,
	// 8) apart; Vars the global variables in its first value.
	Init     []byte
	Vars     []prog.Var
	ReadOnly bool // .rodata: BPF_F_RDONLY_PROG
}

// Error is an object that cannot be read or modelled.
type Error struct {
	Path    string
	Section string // "" when not about one section
	Prog    string
	Insn    int // -1 when not about one instruction
	Msg     string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Section != "" {
		fmt.Fprintf(&b, ": section %s", e.Section)
	}
	if e.Prog != "" {
		fmt.Fprintf(&b, ", program %s", e.Prog)
	}
	if e.Insn >= 0 {
		fmt.Fprintf(&b, ", instruction %d", e.Insn)
	}
	return b.String() + ": " + e.Msg
}

// progTypes names the program types as scenarios do (the kernel's
// bpf_prog_type without BPF_PROG_TYPE_, lower case).
var progTypes = map[ebpf.ProgramType]string{
	ebpf.SocketFilter: "socket_filter", ebpf.SchedCLS: "sched_cls", ebpf.SchedACT: "sched_act",
	ebpf.XDP: "xdp", ebpf.CGroupSKB: "cgroup_skb", ebpf.Kprobe: "kprobe", ebpf.TracePoint: "tracepoint",
	ebpf.RawTracepoint: "raw_tracepoint", ebpf.PerfEvent: "perf_event", ebpf.LWTIn: "lwt_in",
	ebpf.LWTOut: "lwt_out", ebpf.LWTXmit: "lwt_xmit", ebpf.SkSKB: "sk_skb", ebpf.SkMsg: "sk_msg",
	ebpf.Tracing: "tracing", ebpf.FlowDissector: "flow_dissector", ebpf.CGroupSock: "cgroup_sock",
}

// Load reads the object in data; path names it in errors.
func Load(path string, data []byte) (obj *Object, err error) {
	defer func() {
		// cilium/ebpf parses untrusted ELF: a panic there is this
		// object's error, not the caller's crash.
		if r := recover(); r != nil {
			obj, err = nil, &Error{Path: path, Insn: -1, Msg: fmt.Sprintf("not a BPF object tailsim can read (%v)", r)}
		}
	}()
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(data))
	if err != nil {
		return nil, &Error{Path: path, Insn: -1, Msg: fmt.Sprintf("not a BPF ELF object: %v", cut(err))}
	}
	obj = &Object{Path: path}
	var mapNames []string
	for name := range spec.Maps {
		mapNames = append(mapNames, name)
	}
	sort.Strings(mapNames)
	for _, name := range mapNames {
		m, err := convertMap(path, spec.Maps[name])
		if err != nil {
			return nil, err
		}
		if m != nil {
			obj.Maps = append(obj.Maps, m)
		}
	}
	var progNames []string
	for name := range spec.Programs {
		progNames = append(progNames, name)
	}
	// In the object's order: by section, then by offset (the order clang
	// wrote them), which the symbols' positions give.
	sort.Strings(progNames)
	for _, name := range progNames {
		p, err := convertProg(path, spec.Programs[name], obj.Maps)
		if err != nil {
			return nil, err
		}
		obj.Progs = append(obj.Progs, p)
	}
	for _, m := range obj.Maps {
		for _, v := range m.Values {
			if !slices.ContainsFunc(obj.Progs, func(p *Prog) bool { return p.Name == v }) {
				return nil, &Error{Path: path, Section: ".maps", Insn: -1, Msg: fmt.Sprintf("prog array %s holds %q, which is no program of the object", m.Name, v)}
			}
		}
	}
	return obj, nil
}

// cut shortens cilium/ebpf's chained errors to their first two parts.
func cut(err error) string {
	parts := strings.SplitN(err.Error(), ": ", 3)
	return strings.Join(parts[:min(2, len(parts))], ": ")
}

func convertMap(path string, m *ebpf.MapSpec) (*Map, error) {
	fail := func(format string, args ...any) error {
		return &Error{Path: path, Section: ".maps", Insn: -1, Msg: fmt.Sprintf("map %s: ", m.Name) + fmt.Sprintf(format, args...)}
	}
	if m.MaxEntries == 0 {
		return nil, fail("max_entries 0 is rejected by the kernel (EINVAL)")
	}
	switch m.Type {
	case ebpf.ProgramArray:
	case ebpf.Array:
		return convertArray(m, fail)
	default:
		return nil, fail("%s is not modelled: tailsim models prog arrays and arrays (global data among them)", m.Type)
	}
	out := &Map{Name: m.Name, MaxEntries: m.MaxEntries, Values: map[uint32]string{}}
	for _, kv := range m.Contents {
		k, ok := kv.Key.(uint32)
		if !ok {
			return nil, fail("a key of type %T in its initialiser", kv.Key)
		}
		v, ok := kv.Value.(string)
		if !ok {
			return nil, fail("slot %d holds a %T, not a program", k, kv.Value)
		}
		if k >= m.MaxEntries {
			return nil, fail("slot %d is beyond max_entries %d", k, m.MaxEntries)
		}
		out.Values[k] = v
	}
	return out, nil
}

// convertArray is an array map, with its initial values and, for global
// data, the variables its BTF datasec places.
func convertArray(m *ebpf.MapSpec, fail func(string, ...any) error) (*Map, error) {
	if m.KeySize != 4 || m.ValueSize == 0 {
		return nil, fail("an array needs a 4-byte key and a value (key_size %d, value_size %d)", m.KeySize, m.ValueSize)
	}
	a, err := prog.NewArrayMap(m.Name, m.MaxEntries, m.ValueSize)
	if err != nil {
		return nil, fail("%v", err)
	}
	out := &Map{Name: m.Name, MaxEntries: m.MaxEntries, Array: true, ValueSize: m.ValueSize, Init: a.Values,
		ReadOnly: m.Flags&bpfFRdonlyProg != 0}
	for _, kv := range m.Contents {
		k, ok := kv.Key.(uint32)
		v, vok := kv.Value.([]byte)
		if !ok || !vok || k >= m.MaxEntries || len(v) > int(m.ValueSize) {
			return nil, fail("an initial value %v = %v that is no element", kv.Key, kv.Value)
		}
		copy(out.Init[uint64(k)*uint64(a.ElemSize()):], v)
	}
	if ds, ok := m.Value.(*btf.Datasec); ok {
		for _, v := range ds.Vars {
			if v.Offset+v.Size > m.ValueSize {
				return nil, fail("variable %s spans past the value", v.Type.TypeName())
			}
			out.Vars = append(out.Vars, prog.Var{Name: v.Type.TypeName(), Offset: v.Offset, Size: v.Size})
		}
	}
	return out, nil
}

// bpfFRdonlyProg is BPF_F_RDONLY_PROG, the map flag of .rodata: programs
// may only read it.
const bpfFRdonlyProg = 1 << 7

func convertProg(path string, ps *ebpf.ProgramSpec, maps []*Map) (*Prog, error) {
	typ, ok := progTypes[ps.Type]
	if !ok {
		return nil, &Error{Path: path, Section: ps.SectionName, Prog: ps.Name, Insn: -1, Msg: fmt.Sprintf("program type %v is not one tailsim names", ps.Type)}
	}
	p := &Prog{Name: ps.Name, Type: typ, Section: ps.SectionName}
	var f *prog.Function
	file, line := "", uint32(0)
	for i, ins := range ps.Instructions {
		fail := func(format string, args ...any) error {
			return &Error{Path: path, Section: ps.SectionName, Prog: ps.Name, Insn: i, Msg: fmt.Sprintf(format, args...)}
		}
		if sym := ins.Symbol(); sym != "" || f == nil {
			if sym == "" {
				return nil, fail("the program does not start at a symbol")
			}
			f = &prog.Function{Name: sym}
			if len(p.Funcs) == 0 && sym != ps.Name {
				return nil, fail("the program starts at symbol %s, not at its own name", sym)
			}
			p.Funcs = append(p.Funcs, f)
		}
		pi, err := convertInsn(ins, maps)
		if err != nil {
			return nil, fail("%v", err)
		}
		if src, ok := ins.Source().(*btf.Line); ok && src != nil {
			// Line 0 is code the compiler made up (no source line).
			if n := src.LineNumber(); n != 0 && (n != line || src.FileName() != file) {
				file, line = src.FileName(), n
				pi.Source = fmt.Sprintf("%s:%d: %s", pathBase(file), n, strings.TrimSpace(src.Line()))
			}
		}
		f.Insns = append(f.Insns, pi)
	}
	return p, nil
}

func pathBase(p string) string { return path.Base(strings.ReplaceAll(p, "\\", "/")) }

// convertInsn is one instruction in tailsim's form: its raw encoding, with
// the map or subprogram it names.
func convertInsn(ins asm.Instruction, maps []*Map) (prog.Instruction, error) {
	if ins.IsFunctionCall() {
		if ins.Reference() == "" {
			return prog.Instruction{}, errors.New("a bpf2bpf call without its target's symbol")
		}
		return prog.Instruction{OpCode: prog.Jmp(prog.OpCall, prog.SourceK), Src: prog.PseudoCall, Reference: ins.Reference()}, nil
	}
	switch {
	case ins.IsKfuncCall():
		return prog.Instruction{}, errors.New("a kfunc call, which tailsim does not model")
	case ins.IsLoadOfFunctionPointer():
		return prog.Instruction{}, errors.New("a load of a function's address (a callback), which tailsim does not model")
	case ins.OpCode.IsDWordLoad() && ins.Src == asm.PseudoMapValue:
		// BPF_PSEUDO_MAP_VALUE: the offset is the second half's imm.
		name := ins.Reference()
		if !slices.ContainsFunc(maps, func(m *Map) bool { return m.Name == name && m.Array }) {
			return prog.Instruction{}, fmt.Errorf("a load of map %q's value, which is no array of the object", name)
		}
		return prog.Instruction{OpCode: prog.LoadImm64(), Dst: prog.Register(ins.Dst), Src: prog.PseudoMapValue,
			Imm: int64(uint32(uint64(ins.Constant) >> 32)), Reference: name}, nil
	}
	var b bytes.Buffer
	if err := (asm.Instructions{ins}).Marshal(&b, binary.LittleEndian); err != nil {
		return prog.Instruction{}, fmt.Errorf("cannot encode %v: %v", ins, err)
	}
	raw := b.Bytes()
	out := prog.Instruction{
		OpCode: prog.OpCode(raw[0]),
		Dst:    prog.Register(raw[1] & 0x0f),
		Src:    prog.Register(raw[1] >> 4),
		Off:    int16(binary.LittleEndian.Uint16(raw[2:])),
		Imm:    int64(int32(binary.LittleEndian.Uint32(raw[4:]))),
	}
	if len(raw) == 16 {
		out.Imm = int64(uint64(binary.LittleEndian.Uint32(raw[4:])) | uint64(binary.LittleEndian.Uint32(raw[12:]))<<32)
	}
	if why := out.Modelled(); why != "" {
		return prog.Instruction{}, fmt.Errorf("%s, outside the instructions tailsim models", why)
	}
	if ins.IsLoadFromMap() {
		name := ins.Reference()
		if !slices.ContainsFunc(maps, func(m *Map) bool { return m.Name == name }) {
			return prog.Instruction{}, fmt.Errorf("a load of map %q, which the object does not define", name)
		}
		out.Src, out.Imm, out.Reference = prog.PseudoMapFD, 0, name
	}
	if out.IsHelperCall() {
		if _, ok := prog.HelperByID(int32(out.Imm)); !ok {
			return prog.Instruction{}, fmt.Errorf("helper %v (%d), which has no stub in tailsim", asm.BuiltinFunc(out.Imm), out.Imm)
		}
	}
	return out, nil
}
