package prog

import (
	"fmt"
	"strings"
)

//go:generate go tool stringer -type=Object,Field -linecomment -output=step_string.go

// Exec is one executed instruction of a stepped run (LoadOptions.Step): a
// machine instruction on an emulated backend, a BPF instruction on the
// reference model. A run's Execs, with its Events placed among them by
// Event.Step, are the whole story of the run; the trace renderers read
// nothing else.
type Exec struct {
	PC      uint64 // machine address; 0 on the reference model
	Machine string // the PC symbolised: entry+0x2e
	// At is the BPF instruction whose code this is; zero in a prologue, an
	// epilogue or a helper.
	At   Loc
	Part string // "prologue", "epilogue", "helper", "thunk" when At is zero
	BPF  string // the BPF instruction At names, in the assembler's syntax
	// Source is the C line the BPF instruction heads, for a program read
	// from an object (Instruction.Source); "" otherwise.
	Source string
	Insn   string // the instruction, disassembled (the BPF one on the reference model)
	Note   string // the JIT's annotation of it
	// Regs are the registers it changed, Mem the memory it read and wrote,
	// in order.
	Regs []RegChange
	Mem  []MemAccess
	// Loads are the registers it loaded from memory (emulated backends).
	Loads []string `json:"loads,omitempty"`
	// Checks are the tail-call checks it decided: the branch to out of an
	// emulated tail call, or all of them at the reference model's call.
	Checks []CheckDecision
}

// RegChange is one register an instruction changed.
type RegChange struct {
	Name string `json:"name"` // "rdx (R3)": the machine's name and the BPF register it holds
	Old  uint64 `json:"old"`
	New  uint64 `json:"new"`
}

// Object is what a memory access touched, for naming it and for the cost
// of a tail call.
type Object uint8

const (
	_ Object = iota // none
	// ObjArray: a struct bpf_array: max_entries, ptrs[], cached[].
	ObjArray // array
	// ObjProg: a struct bpf_prog: bpf_func.
	ObjProg // prog
	// ObjCounter: tail_call_cnt, or the tcc_ptr that points at it.
	ObjCounter // counter
	// ObjStack: the BPF stack and the JIT's frame.
	ObjStack // stack
	ObjCtx   // ctx
	ObjOther // other
)

// MemAccess is one memory read or write of an instruction.
type MemAccess struct {
	Write bool   `json:"write"`
	Addr  uint64 `json:"addr"`
	Size  int    `json:"size"`
	Value uint64 `json:"value"`
	// Obj and What name the memory: "jt->ptrs[1]", "prog leaf->bpf_func",
	// "tail_call_cnt", "ctx+8", "stack fp-0x8".
	Obj  Object `json:"obj"`
	What string `json:"what"`
	// Of, Field and Slot say what What says as data, for drawing the
	// memory: the field of the prog array or program Of, or the counter,
	// and for FieldPtrs and FieldCached the slot i of ptrs[i], cached[i].
	// On the stack Slot is the offset from the register Of names: "fp",
	// or "sp0", the stack pointer the run began with, before a prologue
	// set fp ("fp of sub": a caller's frame on the reference model).
	// Regs are the registers the instruction made the address of; an
	// implicit stack access (push, pop) has none.
	Regs  []string `json:"regs,omitempty"`
	Of    string   `json:"of,omitempty"`
	Field Field    `json:"field,omitempty"`
	Slot  int64    `json:"slot,omitempty"`
}

// Field is the field a memory access touched, of a prog array, a struct
// bpf_prog or the counter; the zero Field names none (the stack, ctx, a
// field a tail call does not read).
type Field uint8

const (
	_               Field = iota
	FieldMaxEntries       // max_entries
	FieldPtrs             // ptrs
	FieldCached           // cached
	FieldBpfFunc          // bpf_func
	FieldCount            // tail_call_cnt
	FieldTccPtr           // tcc_ptr
)

func (a MemAccess) String() string {
	dir := "read"
	if a.Write {
		dir = "write"
	}
	return fmt.Sprintf("%s %s = %#x", dir, a.What, a.Value)
}

// CheckDecision is one of a tail call's three checks as it was decided:
// Check names it by the fall-through it guards against (FallBounds: the
// bounds check, FallLimit: the counter, FallEmpty: the slot).
type CheckDecision struct {
	Check  Reason `json:"check"`
	Passed bool   `json:"passed"`
	// The operands: the index against max_entries, the counter against
	// MAX_TAIL_CALL_CNT.
	Index      uint32 `json:"index"`
	MaxEntries uint32 `json:"max_entries"`
	Count      uint64 `json:"count"`
	// Astray says where a failed check's branch went when that was not
	// the tail call's out label: the code is broken there.
	Astray string `json:"astray,omitempty"`
}

// CheckName is what a student calls the check that a fall-through of
// reason r fails.
func CheckName(r Reason) string {
	switch r {
	case FallBounds:
		return "bounds check"
	case FallLimit:
		return "count check"
	case FallEmpty:
		return "empty-slot check"
	}
	return r.String()
}

func (d CheckDecision) String() string {
	var cond string
	switch d.Check {
	case FallBounds:
		op := "<"
		if !d.Passed {
			op = ">="
		}
		cond = fmt.Sprintf("index %d %s max_entries %d", d.Index, op, d.MaxEntries)
	case FallLimit:
		op := "<"
		if !d.Passed {
			op = ">="
		}
		cond = fmt.Sprintf("tail_call_cnt %d %s %d", d.Count, op, MaxTailCallCnt)
	case FallEmpty:
		cond = "the slot holds a program"
		if !d.Passed {
			cond = "the slot is empty"
		}
	}
	verdict := "passed"
	switch {
	case d.Astray != "":
		verdict = "failed, and " + d.Astray
	case !d.Passed:
		verdict = "failed: falls through to out"
	}
	return fmt.Sprintf("%s %s (%s)", CheckName(d.Check), verdict, cond)
}

// TailCost is what one tail call cost on an emulated backend, measured
// over the instructions it executed from its first to where it went: the
// target's tail-call entry, or out.
type TailCost struct {
	At    Loc      `json:"at"`
	Path  SiteKind `json:"path"`
	Taken bool     `json:"taken"`
	Insns int      `json:"insns"` // machine instructions executed
	// Loads from the prog array and the struct bpf_progs (what the series
	// removes), and from the counter and the stack (what it keeps).
	ArrayProgLoads    int `json:"array_prog_loads"`
	CounterStackLoads int `json:"counter_stack_loads"`
	// Dependent loads read an address that an earlier load of the same
	// tail call produced (ptrs[i] then ->bpf_func; tcc_ptr then the
	// counter): each waits for the one before.
	DependentLoads int `json:"dependent_loads"`
	Stores         int `json:"stores"`
	CodeBytes      int `json:"code_bytes"` // the size of the site's machine code
}

func (c TailCost) String() string {
	out := "to out"
	if c.Taken {
		out = "taken"
	}
	return fmt.Sprintf("%s %s %s: %d instructions, loads: %d array/prog + %d counter/stack (%d dependent), %d stores, %d bytes of code",
		c.At, c.Path, out, c.Insns, c.ArrayProgLoads, c.CounterStackLoads, c.DependentLoads, c.Stores, c.CodeBytes)
}

// MeasureTailCost works out a tail call's cost from the instructions it
// executed. A load is dependent when its address is made of a register
// that an earlier load of the same call wrote, and nothing but a load
// wrote since: a pointer chase (ptrs[i] then ->bpf_func; tcc_ptr then the
// counter), whose load waits for the one before.
func MeasureTailCost(at Loc, path SiteKind, taken bool, execs []Exec, codeBytes int) TailCost {
	c := TailCost{At: at, Path: path, Taken: taken, Insns: len(execs), CodeBytes: codeBytes}
	loaded := map[string]bool{} // registers holding what a load returned
	for _, e := range execs {
		for _, a := range e.Mem {
			if a.Write {
				c.Stores++
				continue
			}
			switch a.Obj {
			case ObjArray, ObjProg:
				c.ArrayProgLoads++
			case ObjCounter, ObjStack:
				c.CounterStackLoads++
			}
			for _, r := range a.Regs {
				if loaded[r] {
					c.DependentLoads++
					break
				}
			}
		}
		for _, r := range e.Regs {
			name, _, _ := strings.Cut(r.Name, " ")
			delete(loaded, name) // computed, not loaded
		}
		for _, r := range e.Loads {
			loaded[r] = true
		}
	}
	return c
}

// MarshalText writes the names people read in JSON reports.
func (k SiteKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText writes the reason's name.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// MarshalText writes the field's name.
func (f Field) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// MarshalText writes the object's name.
func (o Object) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// MarshalText writes the location as String does.
func (l Loc) MarshalText() ([]byte, error) { return []byte(l.String()), nil }
