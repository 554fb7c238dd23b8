// Package jit holds what the per-arch JITs (jit/x86, jit/arm64) produce: an
// image of machine code whose every instruction carries the annotation and
// the BPF instruction it came from, plus the addresses a harness needs to
// watch and patch tail calls.
package jit

import (
	"fmt"
	"strings"

	"tailsim/prog"
)

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
	Site *prog.TailCallSite // the fix-up's record: where, which maps, which key
	Kind prog.SiteKind      // the path this variant's code takes
	// Start is the first byte of the sequence, Out the fall-through label
	// (the instruction after the tail call).
	Start, Out int
	// Jump is the indirect jump to the target (indirect, static, dynamic).
	Jump int
	// Thunk names the thunk the jump at Jump goes through (x86's
	// retpoline), "" when it jumps to the target itself.
	Thunk string
	// Bypass and Target are x86's 5-byte poke sites of a direct call.
	Bypass, Target int
	// Checks are the branches to out, one per check, in the order the
	// code makes them; a tracer reads each decision off the next PC.
	Checks []Check
}

// Check is the branch of one of a tail call's checks: taken (to out) when
// the check fails.
type Check struct {
	Off int // the branch instruction, in the image
	// Guard is the fall-through the branch takes: FallBounds for the
	// bounds check, FallLimit for the counter, FallEmpty for the slot
	// (x86's bypass poke site at a direct call).
	Guard prog.Reason
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
	// Thunk returns the address of a kernel thunk the code jumps through
	// (x86's retpoline and return thunks).
	Thunk(name string) (uint64, bool)
}

// TailCall is what a JIT knows of one tail-call instruction once it has
// decoded the instruction's imm: the path to emit and, for the patched
// static path, the map whose max_entries becomes an immediate.
type TailCall struct {
	Site *prog.TailCallSite
	Kind prog.SiteKind
	Map  *prog.ProgArray // used_maps[map index]; nil on upstream's paths
}

// DecodeTailCall is the decoding both JITs share, as the kernel's JITs
// share the series' imm layout. The fix-up decides each site's path
// (TailCallSite.Kind) and encodes the decision in insn->imm, as the
// verifier's do_misc_fixups() does; a kernel JIT sees only the imm, so
// ours decode it too rather than read the decision. The round trip is
// kept on purpose — it is the interface the series changes — and checked:
// an imm that decodes to another path than the fix-up chose is an error.
//
// Upstream: a nonzero imm is the poke index + 1 of a direct call, which
// only a JIT with direct tail calls uses. The series: bits 0–7 the
// used_maps[] index, bits 8–15 the dynamic flag, bits 16–31 the poke index
// + 1 (prog.DecodeTailCallImm).
func DecodeTailCall(fx *prog.Fixup, fn, insn int, v prog.Kernel, directTailCalls bool) (TailCall, error) {
	site := fx.Site(fn, insn)
	if site == nil {
		return TailCall{}, fmt.Errorf("tail call without a fix-up record")
	}
	tc := TailCall{Site: site}
	imm, err := site.Imm(v)
	if err != nil {
		return tc, err
	}
	if !v.Series() {
		tc.Kind = prog.Indirect
		if imm != 0 && directTailCalls {
			tc.Kind = prog.Direct
		}
	} else {
		mapIndex, dynamic, pokePlusOne, err := prog.DecodeTailCallImm(imm)
		if err != nil {
			return tc, err
		}
		switch {
		case pokePlusOne != 0 && directTailCalls:
			tc.Kind = prog.Direct
		case dynamic != 0:
			tc.Kind = prog.Dynamic
		default:
			// struct bpf_map *map = prog->aux->used_maps[map_index];
			if mapIndex >= len(fx.UsedMaps) {
				return tc, fmt.Errorf("tail call names used_maps[%d] of %d", mapIndex, len(fx.UsedMaps))
			}
			a, ok := fx.UsedMaps[mapIndex].(*prog.ProgArray)
			if !ok {
				return tc, fmt.Errorf("tail call names used_maps[%d], %s, which is no prog array", mapIndex, fx.UsedMaps[mapIndex].MapName())
			}
			tc.Kind, tc.Map = prog.Static, a
		}
	}
	if want := site.Kind(v, directTailCalls); tc.Kind != want {
		return tc, fmt.Errorf("tail call: imm %#x decodes to the %s path, the fix-up chose %s", uint32(imm), tc.Kind, want)
	}
	return tc, nil
}

// RoundUp is the kernel's round_up() for the positive sizes the JITs
// round (stack depths).
func RoundUp(n, to int) int { return (n + to - 1) / to * to }

// TrimNote drops the part of a JIT annotation that only repeats the
// decoded instruction text: "push rbp" on push rbp, the "mov edx, edx: "
// of "mov edx, edx: index = (u32)R3". Listings and traces print both.
func TrimNote(note, text string) string {
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
