package prog

import (
	"fmt"
	"strings"
)

// Kernel is the kernel version whose tail-call code is modelled: its JITs'
// sequences, its verifier's encoding of a site's path in insn->imm, its
// structure offsets and its counting rule. A build configuration (Config)
// and the loader's privilege complete the notion of "which kernel"; the
// three travel together but vary independently.
type Kernel uint8

//go:generate go tool stringer -type=Kernel,EffectKind -linecomment -output=array_string.go

const (
	// Linux618 is v6.18 as released (bpf-next of late 2025): the x86
	// counter behind a pointer (tcc_ptr), counted only when a call is
	// taken.
	Linux618 Kernel = iota // v6.18
	// Linux618Series is v6.18 with the "Eliminate max_entries and bpf_func
	// access at runtime" series: cached targets, max_entries as an
	// immediate on the static path.
	Linux618Series // v6.18+series
	// Linux61 is 6.1 as Debian 12 builds it: the counter passed by value
	// (x86's pushed rax, arm64's x26) and incremented before the
	// empty-slot test, so a tail call into an empty slot uses up budget;
	// the pre-v6.18 structure offsets; no direct tail calls on arm64.
	Linux61 // v6.1
)

// Kernels lists every kernel in release order.
var Kernels = []Kernel{Linux61, Linux618, Linux618Series}

// kernelAliases are the names the series' two sides had before v6.1 was
// modelled; scenario files and scripts that say "upstream" or "patched"
// keep working.
var kernelAliases = map[string]Kernel{"upstream": Linux618, "patched": Linux618Series}

// ParseKernel is the inverse of String; it also takes the aliases
// "upstream" (v6.18) and "patched" (v6.18+series).
func ParseKernel(s string) (Kernel, error) {
	if v, ok := byName(s, Kernels...); ok {
		return v, nil
	}
	if v, ok := kernelAliases[s]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("unknown kernel %q (%s)", s, strings.Join(KernelNames(), ", "))
}

// KernelNames lists the kernels' names in release order.
func KernelNames() []string {
	var out []string
	for _, k := range Kernels {
		out = append(out, k.String())
	}
	return out
}

// Series reports the patched series' imm layout and cached targets.
func (k Kernel) Series() bool { return k == Linux618Series }

// CountsBeforeSlot reports a counter incremented before the slot is
// loaded and tested, as 6.1's JITs do (and every kernel's interpreter):
// a tail call into an empty slot then counts. Later JITs count only a
// taken call.
func (k Kernel) CountsBeforeSlot() bool { return k == Linux61 }

// CounterByValue reports a counter a bpf2bpf callee gets a copy of, so the
// tail calls a subprogram makes are forgotten when it returns (6.1: x86
// pushes rax in each function's frame, arm64 saves x26 in each prologue).
// v6.18 passes a pointer to the main program's counter instead.
func (k Kernel) CounterByValue() bool { return k == Linux61 }

// StoresImmIntoCtx reports a verifier that takes an immediate stored
// through ctx (BPF_ST): v6.4 on ("bpf: allow ctx writes using BPF_ST_MEM
// instruction"); 6.1's do_check() refuses it ("BPF_ST stores into R1 ctx
// is not allowed").
func (k Kernel) StoresImmIntoCtx() bool { return k != Linux61 }

// DefaultLayout is the kernel's struct bpf_array and struct bpf_prog
// offsets, which a scenario's layout line may replace.
func (k Kernel) DefaultLayout() Layout {
	if k == Linux61 {
		l, _ := LayoutByName("pre-v6.18")
		return l
	}
	l, _ := LayoutByName("v6.18")
	return l
}

// frameRound is how the verifier's check_max_stack_depth() rounds a
// frame: v6.18's round_up_stack_depth() rounds a JITed program's to 16
// bytes; 6.1 rounds every frame to 32, the interpreter's granularity, and
// counts an empty one as 32 (round_up(max(depth, 1), 32)).
func (k Kernel) frameRound(depth int) int {
	if k == Linux61 {
		return (max(depth, 1) + 31) &^ 31
	}
	return (depth + 15) &^ 15
}

// CounterRegister names the register that is the tail-call counter
// itself on arch under k (6.1's arm64 x26), "" where the counter is in
// memory (v6.18's behind tcc_ptr on both arches, 6.1's x86 frame slot).
func CounterRegister(arch string, k Kernel) string {
	if arch == "arm64" && k == Linux61 {
		return "x26"
	}
	return ""
}
