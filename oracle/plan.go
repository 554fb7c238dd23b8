package oracle

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"tailsim/oracle/job"
	"tailsim/prog"
	"tailsim/scenarios"
)

// Plan is one scenario as the guest runs it, or why it cannot.
type Plan struct {
	Scenario *scenarios.Scenario
	// Skip says why the scenario cannot be expressed in a real kernel;
	// "" when Job holds it.
	Skip string
	Job  job.Scenario
	// Shifted is the scenario with its ctx accesses moved to cb[]
	// (job.CbOffset), as the kernel runs it: what tailsim compiles for
	// the byte comparison.
	Shifted *scenarios.Scenario
	// BytesOnly says why only the images are compared ("" when the runs
	// and slot changes are too): the job then has no steps.
	BytesOnly string
}

// helpersOK are the helpers whose result does not depend on the machine:
// a scenario calling another would compare tailsim's stub value with the
// kernel's.
var helpersOK = map[int64]bool{prog.HelperTailCall: true, prog.HelperMapLookup: true, prog.HelperMapUpdate: true,
	prog.HelperMapDelete: true, prog.HelperStrtoul: true,
	// CPU 0: the guest has one, and tailsim's runs are on CPU 0.
	prog.HelperSmpProcessorID: true}

// machineHelpers are the helpers whose result is the machine's (a clock,
// a random number, the NUMA node, jiffies): a scenario calling one is
// compared by its images only. Each is a kernel function the guest names
// (job.KernelSyms), or inlined (bpf_jiffies64: a load of jiffies).
var machineHelpers = map[int64]bool{5: true, 7: true, 42: true, prog.HelperJiffies64: true, 125: true, 160: true}

// maxArrayBytes bounds the values the guest writes and reads back after
// every run.
const maxArrayBytes = 64 << 10

// maxSlotBytes bounds a prog array's ptrs[]: 6.1's array_map_alloc()
// allocates max_entries pointers up front (root's arrays are not rounded
// to a power of two), and the guest boots with 512 MiB.
const maxSlotBytes = 64 << 20

// PlanScenario decides whether sc can run in a real 6.1 kernel on arch and
// translates it: prog arrays, programs as user space loads them (with
// ctx accesses moved to __sk_buff.cb[], which BPF_PROG_TEST_RUN takes in
// and gives back), slots and steps.
func PlanScenario(sc *scenarios.Scenario, arch string) *Plan {
	p := &Plan{Scenario: sc}
	if why := skipReason(sc, arch); why != "" {
		p.Skip = why
		return p
	}
	shifted, ctxAt, err := placeCtx(sc)
	if err != nil {
		p.Skip = err.Error()
		return p
	}
	p.Shifted = shifted
	p.BytesOnly = bytesOnlyReason(sc)
	js := job.Scenario{File: sc.File, Ctx: hex.EncodeToString(sc.Ctx), CtxAt: ctxAt, Unprivileged: sc.Fixup.Unprivileged}
	for _, m := range sc.Maps {
		jm := job.Map{Name: m.Name, MaxEntries: m.MaxEntries}
		if m.Array {
			jm.Array, jm.ValueSize, jm.ReadOnly = true, m.ValueSize, m.ReadOnly
			jm.Values = hex.EncodeToString(packValues(m.Init, m.MaxEntries, m.ValueSize))
		}
		js.Maps = append(js.Maps, jm)
	}
	pool := map[string]*prog.Function{}
	for _, d := range shifted.Subprogs {
		pool[d.Name] = &prog.Function{Name: d.Name, Insns: d.Insns, StackDepth: d.Stack}
	}
	for _, d := range shifted.Progs {
		pr, err := prog.NewProgram(d.Name, d.Type, &prog.Function{Name: d.Name, Insns: d.Insns, StackDepth: d.Stack}, pool)
		if err != nil {
			p.Skip = err.Error()
			return p
		}
		jp := job.Prog{Name: d.Name}
		if d.Type != "sched_cls" {
			jp.Type = d.Type
		}
		var raw []byte
		slot := 0
		for _, f := range pr.Funcs {
			jp.Funcs = append(jp.Funcs, job.FuncStart{Insn: slot, Name: f.Name})
			for _, ins := range f.Insns {
				switch {
				case ins.IsMapLoad():
					jp.MapRefs = append(jp.MapRefs, job.MapRef{Insn: slot, Map: ins.Reference})
					ins.Imm = 0 // the guest writes the map's fd
				case ins.IsMapValueLoad():
					// The fd (the guest's) in the first half, the
					// offset in the second.
					jp.MapRefs = append(jp.MapRefs, job.MapRef{Insn: slot, Map: ins.Reference, Value: true})
					ins.Imm = int64(uint64(uint32(ins.Imm)) << 32)
				}
				raw = ins.Encode(raw)
				slot += ins.Slots()
			}
		}
		jp.Insns = hex.EncodeToString(raw)
		js.Progs = append(js.Progs, jp)
	}
	for _, s := range sc.Slots {
		js.Slots = append(js.Slots, job.Slot{Map: s.Map, Index: uint32(s.Index), Prog: s.Prog})
	}
	for _, st := range sc.Steps {
		if p.BytesOnly != "" {
			break
		}
		switch st.Kind {
		case scenarios.StepRun:
			js.Steps = append(js.Steps, job.Step{Kind: job.Run, Line: st.Line, Prog: st.Prog, Repeat: max(st.Repeat, 1)})
		case scenarios.StepUpdate:
			js.Steps = append(js.Steps, job.Step{Kind: job.Update, Line: st.Line, Prog: st.Prog, Map: st.Map, Index: uint32(st.Index)})
		case scenarios.StepDelete:
			js.Steps = append(js.Steps, job.Step{Kind: job.Delete, Line: st.Line, Map: st.Map, Index: uint32(st.Index)})
		case scenarios.StepSet:
			js.Steps = append(js.Steps, setStep(sc, st))
		}
	}
	p.Job = js
	return p
}

// skipReason is what a real kernel cannot be asked, or what the guest
// does not express yet; "" when nothing stands in the way.
func skipReason(sc *scenarios.Scenario, arch string) string {
	switch {
	case len(sc.Kernels) > 0 && !slices.Contains(sc.Kernels, prog.Linux61):
		return "restricted to other kernels"
	case len(sc.Arches) > 0 && !slices.Contains(sc.Arches, arch):
		return "restricted to other arches"
	case sc.Fixup.NoVerifier:
		return "verifier off: lib/test_bpf builds programs without the verifier, a real load always verifies"
	case sc.Fixup.NoDirect:
		return "direct off models a blinded program; a real kernel decides blinding itself"
	case sc.LayoutLine > 0:
		return "a structure layout of its own: the real kernel has its own"
	case sc.Config != 0 || len(sc.Configs) > 0:
		return "a build configuration of its own: the guest runs Debian's"
	}
	for _, m := range sc.Maps {
		if m.Array && uint64(m.MaxEntries)*uint64(m.ValueSize) > maxArrayBytes {
			return fmt.Sprintf("array %s holds more than %d bytes, which the guest reads back after every run", m.Name, maxArrayBytes)
		}
		if !m.Array && uint64(m.MaxEntries)*8 > maxSlotBytes {
			return fmt.Sprintf("prog array %s's %d slots need %d MiB, more than the guest's memory holds (a real kernel refuses with ENOMEM)", m.Name, m.MaxEntries, uint64(m.MaxEntries)*8>>20)
		}
	}
	for _, d := range sc.Progs {
		if slices.Contains(job.SkbProgTypes, d.Type) {
			continue
		}
		if !slices.Contains(job.ProgTypes, d.Type) {
			return fmt.Sprintf("program %s of type %s, which the guest does not load", d.Name, d.Type)
		}
		for _, st := range sc.Steps {
			if st.Kind == scenarios.StepRun && st.Prog == d.Name {
				return fmt.Sprintf("line %d: a run of %s, a %s program: the guest runs programs whose ctx is __sk_buff only", st.Line, d.Name, d.Type)
			}
		}
		for _, ins := range d.Insns {
			op, base := ins.OpCode, ins.Src
			if op.IsMemStore() {
				base = ins.Dst
			}
			if (op.IsMemLoad() || op.IsMemStore()) && base != prog.R10 {
				return fmt.Sprintf("line %d: %s, a %s program, accesses memory other than its stack: its ctx is not __sk_buff", ins.Line, d.Name, d.Type)
			}
			if ins.IsSubprogCall() {
				return fmt.Sprintf("line %d: %s, a %s program, calls a subprogram", ins.Line, d.Name, d.Type)
			}
		}
	}
	for _, st := range sc.Steps {
		switch {
		case st.Stopped || st.Kind == scenarios.StepFinish:
			return fmt.Sprintf("line %d: a slot change stopped between the kernel's steps, which only the emulators can hold", st.Line)
		case st.Kind == scenarios.StepSet && st.Set.Key == scenarios.KeyCtx && st.Set.Off+len(setBytes(st.Set)) > len(sc.Ctx):
			return fmt.Sprintf("line %d: a set step past ctx", st.Line)
		case st.TailCallCnt != 0:
			return fmt.Sprintf("line %d: a preset tail-call count, which a real run cannot start with", st.Line)
		case (st.Kind == scenarios.StepUpdate || st.Kind == scenarios.StepDelete) && st.Index > 0xffffffff:
			return fmt.Sprintf("line %d: a slot index past 32 bits, which the bpf() syscall's 4-byte key cannot carry", st.Line)
		}
		for _, e := range st.Expect {
			if !e.Applies(arch, prog.Linux61.String()) {
				continue
			}
			switch e.Key {
			case scenarios.KeyFault:
				return fmt.Sprintf("line %d: a run that faults, which a real kernel's verifier refuses", e.Line)
			case scenarios.KeyDivergence, scenarios.KeyBroken:
				return fmt.Sprintf("line %d: expects the modelled code to break", e.Line)
			}
		}
	}
	for _, d := range append(slices.Clone(sc.Progs), sc.Subprogs...) {
		for _, ins := range d.Insns {
			if ins.IsHelperCall() && !helpersOK[ins.Imm] && !machineHelpers[ins.Imm] {
				name := fmt.Sprint(ins.Imm)
				if h, ok := prog.HelperByID(int32(ins.Imm)); ok {
					name = "bpf_" + h.Name
				}
				return fmt.Sprintf("calls %s, whose result is tailsim's stub value, not the kernel's", name)
			}
		}
	}
	return ""
}

// bytesOnlyReason is why a scenario's runs cannot be compared, though its
// images can: a call of a helper whose result is the machine's.
func bytesOnlyReason(sc *scenarios.Scenario) string {
	for _, d := range append(slices.Clone(sc.Progs), sc.Subprogs...) {
		for _, ins := range d.Insns {
			if ins.IsHelperCall() && machineHelpers[ins.Imm] {
				h, _ := prog.HelperByID(int32(ins.Imm))
				return fmt.Sprintf("line %d: calls bpf_%s, whose result is the machine's (tailsim's stub returns %#x)", ins.Line, h.Name, h.Ret)
			}
		}
	}
	return ""
}

// setBytes is what a set step writes into ctx.
func setBytes(e scenarios.Expect) []byte {
	if e.Size > 0 {
		return binary.LittleEndian.AppendUint64(nil, e.Value)[:e.Size]
	}
	return e.Bytes
}

func mapDecl(sc *scenarios.Scenario, name string) scenarios.MapDecl {
	for _, m := range sc.Maps {
		if m.Name == name {
			return m
		}
	}
	return scenarios.MapDecl{}
}

func roundUp8(n uint32) uint32 { return (n + 7) &^ 7 }

// packValues is tailsim's array values (elements round_up(value_size, 8)
// apart, as array maps store them) as the bpf() syscall reads and writes
// them: value_size bytes per key.
func packValues(strided []byte, maxEntries, valueSize uint32) []byte {
	elem := roundUp8(valueSize)
	out := make([]byte, 0, maxEntries*valueSize)
	for k := uint32(0); k < maxEntries; k++ {
		v := make([]byte, valueSize)
		if at := k * elem; at < uint32(len(strided)) {
			copy(v, strided[at:])
		}
		out = append(out, v...)
	}
	return out
}

// setStep is a set step for the guest: into ctx, or into an array's
// element (tailsim's offset is into its strided values).
func setStep(sc *scenarios.Scenario, st scenarios.Step) job.Step {
	e := st.Set
	js := job.Step{Kind: job.Set, Line: st.Line, Off: e.Off, Bytes: hex.EncodeToString(setBytes(e))}
	if e.Key == scenarios.KeyMap {
		m := mapDecl(sc, e.Map)
		elem := int(roundUp8(m.ValueSize))
		js.Map, js.Index, js.Off = m.Name, uint32(e.Off/elem), e.Off%elem
	}
	return js
}
