package object_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/go-cmp/cmp"

	"tailsim/prog"
	"tailsim/prog/object"
)

// objects holds the library's BPF objects and their C sources (make
// bpf-objects rebuilds them).
const objects = "../../scenarios/library/objects"

func load(t *testing.T, name string) *object.Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(objects, name))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := object.Load(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// The chain object: three programs, the subprogram one of them calls,
// the prog array with the slots its initialiser fills, and C lines.
func TestLoadChain(t *testing.T) {
	obj := load(t, "chain.bpf.o")
	var names []string
	for _, p := range obj.Progs {
		var fns []string
		for _, f := range p.Funcs {
			fns = append(fns, f.Name)
		}
		names = append(names, p.Name+"("+strings.Join(fns, ",")+"):"+p.Type)
	}
	if got := strings.Join(names, " "); got != "first(first,enter):sched_cls second(second):sched_cls third(third):sched_cls" {
		t.Errorf("programs %s", got)
	}
	if len(obj.Maps) != 1 || obj.Maps[0].Name != "steps" || obj.Maps[0].MaxEntries != 4 ||
		len(obj.Maps[0].Values) != 2 || obj.Maps[0].Values[1] != "second" || obj.Maps[0].Values[2] != "third" {
		t.Errorf("maps %+v", obj.Maps[0])
	}
	// Every instruction keeps its encoding; references are by name.
	var calls, loads, tails int
	for _, p := range obj.Progs {
		for _, f := range p.Funcs {
			for _, ins := range f.Insns {
				switch {
				case ins.IsSubprogCall():
					calls++
					if ins.Reference != "enter" {
						t.Errorf("%s: a call to %q", f.Name, ins.Reference)
					}
				case ins.IsMapLoad():
					loads++
					if ins.Reference != "steps" || ins.Imm != 0 {
						t.Errorf("%s: map load %+v", f.Name, ins)
					}
				case ins.IsTailCall():
					tails++
				}
			}
		}
	}
	if calls != 1 || loads != 2 || tails != 2 {
		t.Errorf("%d bpf2bpf calls, %d map loads, %d tail calls; want 1, 2, 2", calls, loads, tails)
	}
	second := obj.Progs[1].Funcs[0].Insns
	if !strings.HasPrefix(second[0].Source, "chain.bpf.c:") {
		t.Errorf("second's first instruction has source %q", second[0].Source)
	}
	withSource := 0
	for _, ins := range second {
		if strings.Contains(ins.Source, "skb->cb[0] += 10;") {
			withSource++
		}
	}
	if withSource != 1 {
		t.Errorf("the line skb->cb[0] += 10 heads %d instructions, want 1", withSource)
	}
}

// Each converted instruction encodes to the bytes the object holds (but
// for the names that stand for map and subprogram references).
func TestInstructionsKeepTheirEncoding(t *testing.T) {
	for _, name := range []string{"chain.bpf.o", "loop.bpf.o", "globals.bpf.o"} {
		spec, err := ebpf.LoadCollectionSpec(filepath.Join(objects, name))
		if err != nil {
			t.Fatal(err)
		}
		obj := load(t, name)
		for _, p := range obj.Progs {
			var got []prog.Instruction
			for _, f := range p.Funcs {
				got = append(got, f.Insns...)
			}
			want := spec.Programs[p.Name].Instructions
			if len(got) != len(want) {
				t.Fatalf("%s/%s: %d instructions, want %d", name, p.Name, len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if w.IsFunctionCall() || w.IsLoadFromMap() {
					continue
				}
				var b bytes.Buffer
				if err := (asm.Instructions{w}).Marshal(&b, binary.LittleEndian); err != nil {
					t.Fatal(err)
				}
				raw := b.Bytes()
				imm := int64(int32(binary.LittleEndian.Uint32(raw[4:])))
				if len(raw) == 16 {
					imm = int64(uint64(binary.LittleEndian.Uint32(raw[4:])) | uint64(binary.LittleEndian.Uint32(raw[12:]))<<32)
				}
				if prog.OpCode(raw[0]) != g.OpCode || prog.Register(raw[1]&15) != g.Dst || prog.Register(raw[1]>>4) != g.Src ||
					int16(binary.LittleEndian.Uint16(raw[2:])) != g.Off || imm != g.Imm {
					t.Errorf("%s/%s insn %d: % x, converted %+v", name, p.Name, i, raw, g)
				}
			}
		}
	}
}

// What cannot be read or modelled is an error naming the object and,
// where it applies, the section and the instruction; never a panic.
func TestLoadErrors(t *testing.T) {
	chain, err := os.ReadFile(objects + "/chain.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := os.ReadFile(objects + "/hash.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	printk, err := os.ReadFile(objects + "/printk.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty.o", nil, "empty.o: not a BPF ELF object"},
		{"truncated.o", chain[:len(chain)/3], "truncated.o: not a BPF ELF object"},
		{"text.o", []byte("not an ELF file at all"), "text.o: not a BPF ELF object"},
		{"x86.o", self[:min(len(self), 1<<20)], "x86.o: not a BPF ELF object"},
		{"hash.bpf.o", hash, "hash.bpf.o: section .maps: map seen: Hash is not modelled"},
		{"printk.bpf.o", printk, "printk.bpf.o: section tc, program entry, instruction "},
	} {
		obj, err := object.Load(tc.name, tc.data)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, %v; want an error starting %q", tc.name, obj, err, tc.want)
		}
	}
}

// Any bytes at all: an object or an error, never a panic. The committed
// objects are the seed corpus, run by every go test.
func FuzzLoadObject(f *testing.F) {
	for _, name := range []string{"chain.bpf.o", "loop.bpf.o", "globals.bpf.o", "hash.bpf.o", "printk.bpf.o"} {
		data, err := os.ReadFile(filepath.Join(objects, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := object.Load("fuzz.o", data)
		if (obj == nil) == (err == nil) {
			t.Fatalf("object %v and error %v", obj, err)
		}
		if obj == nil {
			return
		}
		// What the object gives must also be safe to verify (with the
		// verifier and without), which is where bad registers once
		// crashed: an error, never a panic.
		for _, noVerifier := range []bool{false, true} {
			w := &prog.World{Layout: prog.DefaultLayout}
			for _, m := range obj.Maps {
				if m.Array {
					a, err := prog.NewArrayMap(m.Name, m.MaxEntries, m.ValueSize)
					if err != nil {
						t.Fatalf("map %s: %v", m.Name, err)
					}
					w.Maps = append(w.Maps, a)
				} else {
					a, _ := prog.NewProgArray(m.Name, m.MaxEntries)
					w.Arrays = append(w.Arrays, a)
				}
			}
			for _, op := range obj.Progs {
				pool := map[string]*prog.Function{}
				for _, f := range op.Funcs[1:] {
					pool[f.Name] = f
				}
				if p, err := prog.NewProgram(op.Name, op.Type, op.Funcs[0], pool); err == nil {
					w.Progs = append(w.Progs, p)
				}
			}
			_ = w.Fix(prog.FixupOptions{NoVerifier: noVerifier})
		}
	})
}

// Global data: .bss, .data and .rodata are arrays of one value holding
// the variables (with .data's initial value, .rodata read-only), the
// "noise" array is one too, and the programs address the variables with
// map_value loads.
func TestLoadGlobals(t *testing.T) {
	obj := load(t, "globals.bpf.o")
	got := map[string]string{}
	for _, m := range obj.Maps {
		got[m.Name] = fmt.Sprintf("array=%v size=%d max=%d vars=%v ro=%v init=% x", m.Array, m.ValueSize, m.MaxEntries, m.Vars, m.ReadOnly, m.Init)
	}
	want := map[string]string{
		".bss":      "array=true size=4 max=1 vars=[{count 0 4}] ro=false init=00 00 00 00 00 00 00 00",
		".data":     "array=true size=4 max=1 vars=[{first_key 0 4}] ro=false init=07 00 00 00 00 00 00 00",
		".rodata":   "array=true size=4 max=1 vars=[{stop 0 4}] ro=true init=14 00 00 00 00 00 00 00",
		"noise":     "array=true size=8 max=1 vars=[] ro=false init=00 00 00 00 00 00 00 00",
		"jmp_table": "array=false size=0 max=2 vars=[] ro=false init=",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("maps (-want +got):\n%s", diff)
	}
	values := 0
	for _, p := range obj.Progs {
		for _, ins := range p.Funcs[0].Insns {
			if ins.IsMapValueLoad() {
				values++
				if ins.Imm != 0 || !strings.HasPrefix(ins.Reference, ".") {
					t.Errorf("%s: map value load %+v", p.Name, ins)
				}
			}
		}
	}
	if values != 3 {
		t.Errorf("%d map value loads, want 3 (count, kept in r7; stop; first_key)", values)
	}
}

// An instruction outside the modelled subset is refused at load, naming
// it: a register past r10 once crashed the analysis after Load.
func TestLoadRefusesUnmodelledInstructions(t *testing.T) {
	data, err := os.ReadFile(objects + "/chain.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	// third's first instruction: r0 = *(u32 *)(r1 + 48).
	insn := []byte{0x61, 0x10, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00}
	at := bytes.Index(data, insn)
	if at < 0 || bytes.Index(data[at+1:], insn) >= 0 {
		t.Fatalf("the instruction is not in chain.bpf.o once")
	}
	for _, tc := range []struct {
		b0, b1 byte
		want   string
	}{
		{0x61, 0xf0, "third, instruction 0: register r0 or r15 past r10"},
		{0x61, 0x1b, "third, instruction 0: register r11 or r1 past r10"},
		{0xdb, 0x10, "third, instruction 0: opcode 0xdb"},
	} {
		bad := append([]byte(nil), data...)
		bad[at], bad[at+1] = tc.b0, tc.b1
		if _, err := object.Load("bad.o", bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("% x: %v, want %q", bad[at:at+2], err, tc.want)
		}
	}
}
