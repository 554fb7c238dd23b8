// Package jit holds what the per-arch JITs (jit/x86, jit/arm64) produce: an
// image of machine code whose every instruction carries the annotation and
// the BPF instruction it came from, plus the addresses a harness needs to
// watch and patch tail calls.
package jit

import "tailsim/prog"

// Insn is one emitted machine instruction.
type Insn struct {
	Off, Len int
	// BPF is the index in Function.Insns of the instruction this came from;
	// -1 for the prologue, -2 for the epilogue.
	BPF  int
	Note string // "bounds check", "poke site: target", ...
}

// Owners of instructions that no BPF instruction produced.
const (
	Prologue = -1
	Epilogue = -2
)

// TailSite locates the code of one tail call in an image.
type TailSite struct {
	BPF  int           // index in Function.Insns
	Kind prog.SiteKind // the path this variant's code takes
	Site *prog.TailCallSite
	// Start is the first byte of the sequence, Out the fall-through label
	// (the instruction after the tail call).
	Start, Out int
	// Jump is the indirect jump to the target (indirect, static, dynamic).
	Jump int
	// Bypass and Target are x86's 5-byte poke sites of a direct call.
	Bypass, Target int
}

// Image is one JITed function.
type Image struct {
	Func  *prog.Function
	Code  []byte
	Insns []Insn
	// TailEntry is where tail calls land: bpf_func + X86_TAIL_CALL_OFFSET,
	// or + 4 * PROLOGUE_OFFSET on arm64.
	TailEntry int
	Sites     []TailSite
	// StackSize is the frame the JIT allocates (rounded as the arch does).
	StackSize int
}

// Resolver gives the addresses a JIT needs while emitting calls.
type Resolver interface {
	// Helper returns the address of the helper with the given ID.
	Helper(id int32) (uint64, bool)
	// Func returns the address (bpf_func) of function fn of the program.
	Func(fn int) uint64
	// Map returns the address of a prog array: the verifier rewrites a map
	// reference into the map's kernel address before the JIT sees it.
	Map(name string) uint64
}
