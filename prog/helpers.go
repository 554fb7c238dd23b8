package prog

import "strings"

// Helper is a kernel helper the scenarios may call. Real helpers read the
// world; these stubs return a fixed value so every backend computes the same
// R0, and they clobber R1–R5 the way any helper call may.
type Helper struct {
	ID   int32
	Name string // without the bpf_ prefix
	Ret  uint64 // the stub's return value
}

// Helpers lists the stubs by ID (include/uapi/linux/bpf.h numbering).
var Helpers = []Helper{
	{1, "map_lookup_elem", 0},
	{2, "map_update_elem", 0},
	{3, "map_delete_elem", 0},
	{5, "ktime_get_ns", 1_000_000_000},
	{7, "get_prandom_u32", 0x2545f491},
	{8, "get_smp_processor_id", 0},
	{HelperTailCall, "tail_call", 0},
	{14, "get_current_pid_tgid", 0x0000_0457_0000_0457},
	{42, "get_numa_node_id", 0},
	{118, "jiffies64", 4_294_967_296 + 300},
	{HelperStrtoul, "strtoul", 0}, // emulated: see CallHelper
	{125, "ktime_get_boot_ns", 2_000_000_000},
	{160, "ktime_get_coarse_ns", 999_000_000},
	// lib/test_bpf.c defines its own helper at __BPF_FUNC_MAX_ID; it returns
	// the length of an snprintf, 17 for the small arguments the tests pass.
	{212, "test_func", 17},
}

// HelperMapLookup is bpf_map_lookup_elem(), which the verifier inlines for
// an array map it knows (see rewriteProgram).
const HelperMapLookup = 1

// HelperSmpProcessorID is bpf_get_smp_processor_id(), which the verifier
// inlines on x86-64 as a per-CPU load (see rewriteProgram).
const HelperSmpProcessorID = 8

// HelperJiffies64 is bpf_jiffies64(), which the verifier inlines for the
// 64-bit JITs as a load of the kernel's jiffies (see rewriteProgram).
const HelperJiffies64 = 118

// JiffiesAddr is where every backend keeps the kernel's jiffies, read by
// the inlined bpf_jiffies64(); like CtxBase, one kernel address for both
// arches and the model, 1 MiB past ctx. It holds the helper's value.
const JiffiesAddr = CtxBase + 0x10_0000

// Jiffies is the value there: what the helper returns.
func Jiffies() uint64 {
	h, _ := HelperByID(HelperJiffies64)
	return h.Ret
}

// ClobberValue is what a helper stub leaves in caller-saved register r
// (R1–R5), so code that wrongly relies on them after a call shows it.
func ClobberValue(r Register) uint64 { return 0xdead_beef_0000_0000 | uint64(r) }

// HelperByName finds a helper by name, with or without the bpf_ prefix.
func HelperByName(name string) (Helper, bool) {
	name = strings.TrimPrefix(name, "bpf_")
	for _, h := range Helpers {
		if h.Name == name {
			return h, true
		}
	}
	return Helper{}, false
}

// HelperByID finds a helper by ID.
func HelperByID(id int32) (Helper, bool) {
	for _, h := range Helpers {
		if h.ID == id {
			return h, true
		}
	}
	return Helper{}, false
}
