// Package job is what the host and the guest agent of the real-kernel
// oracle say to each other: the scenarios a boot runs, packed in the
// initramfs as JSON, and the lines the guest prints on its console. It
// holds types only, so the guest (a static binary, no cgo) can share them.
package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Job is everything one boot runs.
type Job struct {
	Scenarios []Scenario `json:"scenarios"`
}

// CbOffset is offsetof(struct __sk_buff, cb): a scenario's ctx bytes are
// the program's cb[], so its ctx accesses are moved by this much. In 6.1
// the verifier rewrites them to struct sk_buff's cb data, which is at the
// same offset (0x28 + offsetof(struct qdisc_skb_cb, data) = 0x30), on both
// arches.
const CbOffset = 0x30

// CbSize is sizeof(__sk_buff.cb): five u32s.
const CbSize = 20

// Scenario is one scenario as the kernel can run it.
type Scenario struct {
	File  string `json:"file"`
	Maps  []Map  `json:"maps"`
	Progs []Prog `json:"progs"`
	Slots []Slot `json:"slots"`
	// Ctx is the initial ctx (hex), placed at CtxAt in struct __sk_buff:
	// CbOffset when a scenario's ctx stands for cb[] (its accesses were
	// moved), 0 when it is __sk_buff itself (a C program's). Only cb[]
	// comes back: the rest is the kernel's (skb->len, …).
	Ctx   string `json:"ctx"`
	CtxAt int    `json:"ctx_at"`
	Steps []Step `json:"steps"`
	// Unprivileged: the maps are created and the programs loaded without
	// CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON (the scenario's "privileged
	// off"), so that the verifier treats them as a user's.
	Unprivileged bool `json:"unprivileged,omitempty"`
}

// Map is a prog array, or an array (Array) of ValueSize-byte values
// starting as Values (hex, ValueSize bytes per element). A ReadOnly array
// is created as libbpf creates .rodata: BPF_F_RDONLY_PROG, and frozen
// once its values are written, so that the verifier reads its values as
// constants.
type Map struct {
	Name       string `json:"name"`
	MaxEntries uint32 `json:"max_entries"`
	Array      bool   `json:"array,omitempty"`
	ValueSize  uint32 `json:"value_size,omitempty"`
	Values     string `json:"values,omitempty"`
	ReadOnly   bool   `json:"read_only,omitempty"`
}

// Prog is one program as user space loads it: struct bpf_insn words (hex)
// of the main function followed by its subprograms, and the instructions
// (by index of their 8-byte slot) that load a map's fd.
type Prog struct {
	Name string `json:"name"`
	// Type is one of ProgTypes; "" is sched_cls.
	Type    string   `json:"type,omitempty"`
	Insns   string   `json:"insns"`
	MapRefs []MapRef `json:"map_refs"`
	// Funcs are where each function starts (main first), for the BTF
	// func info without which 6.1 refuses a tail call in a subprogram.
	Funcs []FuncStart `json:"funcs"`
}

// FuncStart names the function that starts at slot Insn.
type FuncStart struct {
	Insn int    `json:"insn"`
	Name string `json:"name"`
}

// MapRef says that the ld_imm64 at slot Insn loads Map's fd, or with
// Value the address of its first value (BPF_PSEUDO_MAP_VALUE, the offset
// already in the second half's imm).
type MapRef struct {
	Insn  int    `json:"insn"`
	Map   string `json:"map"`
	Value bool   `json:"value,omitempty"`
}

// Slot is an initial prog array entry.
type Slot struct {
	Map   string `json:"map"`
	Index uint32 `json:"index"`
	Prog  string `json:"prog"`
}

// Step kinds.
const (
	Run    = "run"
	Update = "update"
	Delete = "delete"
	Set    = "set" // Bytes written at Off into ctx, or into Map's element Index
)

// Step is a run (Repeat times), or an update or delete of a slot.
type Step struct {
	Kind   string `json:"kind"`
	Line   int    `json:"line"`
	Prog   string `json:"prog,omitempty"`
	Repeat int    `json:"repeat,omitempty"`
	Map    string `json:"map,omitempty"`
	Index  uint32 `json:"index,omitempty"`
	Off    int    `json:"off,omitempty"`
	Bytes  string `json:"bytes,omitempty"`
}

// Prefix starts every line the guest prints for the host; the rest of the
// line is a Result in JSON.
const Prefix = "TAILSIM-ORACLE "

// Result kinds.
const (
	Hello  = "hello"  // first: the kernel's uname and settings
	Loaded = "loaded" // a scenario's programs loaded and slots filled: the images
	Ran    = "ran"    // one iteration of a run step
	Change = "change" // an update or delete, and its errno
	Failed = "failed" // the scenario could not be set up (the kernel refused it)
	Done   = "done"   // last: every scenario was tried
	// KernelTests: lib/test_bpf's tail-call suite, run in the kernel
	// (the module, when the initramfs has it), before Done;
	// KernelTestsStart just before the module is loaded, so that a guest
	// the tests stop is told apart from one that did not boot.
	KernelTests      = "kernel-tests"
	KernelTestsStart = "kernel-tests-start"
	// Garbled is the host's, for a console line with Prefix whose JSON
	// did not parse (the kernel's log cut into it); Err holds the line.
	Garbled = "garbled"
)

// Result is one line of the guest's report.
type Result struct {
	Kind string `json:"kind"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Iter int    `json:"iter,omitempty"`
	// Ran: the return value, ctx and the array maps' values (hex,
	// ValueSize bytes per element) after the run.
	Retval uint32            `json:"retval,omitempty"`
	Ctx    string            `json:"ctx,omitempty"`
	Maps   map[string]string `json:"maps,omitempty"`
	// Change: "" or the errno's name (E2BIG, ENOENT, EINVAL).
	Errno string `json:"errno,omitempty"`
	// Loaded: each program's JITed functions; Failed/errors: why.
	Images map[string][]Func `json:"images,omitempty"`
	Err    string            `json:"err,omitempty"`
	// Hello: what the kernel is.
	Uname string            `json:"uname,omitempty"`
	Info  map[string]string `json:"info,omitempty"`
	// Loaded: Hash of the scenario as the guest received it, so that a
	// recorded boot can tell which scenarios it still speaks for.
	Hash string `json:"hash,omitempty"`
	// KernelTests: each test of lib/test_bpf's test_tail_calls as the
	// module reported it, and every test_bpf line of the kernel log.
	Tests []KernelTest `json:"tests,omitempty"`
	Log   []string     `json:"log,omitempty"`
}

// KernelTest is one line of lib/test_bpf's report: "#N NAME jited:J
// DURATION PASS", or "… ret GOT != WANT FAIL".
type KernelTest struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Jited  bool   `json:"jited"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"` // the rest of the line
}

// TestBPFModule is where the guest finds lib/test_bpf's module in its
// initramfs, and the suite it runs.
const (
	TestBPFModule = "test_bpf.ko"
	TestBPFSuite  = "test_tail_calls"
)

// Hash is the digest Loaded results carry: SHA-256 of the scenario's
// JSON encoding.
func Hash(sc Scenario) string {
	b, _ := json.Marshal(sc)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Func is one JITed function: its ksym address and code (hex).
type Func struct {
	Addr uint64 `json:"addr"`
	Code string `json:"code"`
}

// KernelSyms are the kernel functions a 6.1 program's code reaches, each
// with the name tailsim's images give the place: the guest reports their
// kallsyms addresses (Info "ksym NAME") so that the host names a call's
// target on the kernel's side too, and a call to the wrong function is a
// difference. do_misc_fixups() turns a map helper on an array into a
// direct call of the map's op (array_map_update_elem() for
// bpf_map_update_elem), which tailsim's stub stands for; the lookup is
// inlined (array_map_gen_lookup()) unless the site sees several maps.
var KernelSyms = map[string]string{
	"__x86_indirect_thunk_rcx": "__x86_indirect_thunk_rcx",
	"__x86_return_thunk":       "__x86_return_thunk",
	"array_map_lookup_elem":    "bpf_map_lookup_elem",
	"array_map_update_elem":    "bpf_map_update_elem",
	"array_map_delete_elem":    "bpf_map_delete_elem",
	"bpf_map_lookup_elem":      "bpf_map_lookup_elem",
	"bpf_map_update_elem":      "bpf_map_update_elem",
	"bpf_map_delete_elem":      "bpf_map_delete_elem",
	"bpf_strtoul":              "bpf_strtoul",
	"bpf_get_smp_processor_id": "bpf_get_smp_processor_id",
	// The helpers whose result is the machine's (compared by bytes only);
	// bpf_get_prandom_u32's function is bpf_user_rnd_u32(), and
	// bpf_jiffies64 is inlined as a load of jiffies (a data symbol, which
	// the guest finds by a probe when kallsyms lacks it).
	"bpf_ktime_get_ns":        "bpf_ktime_get_ns",
	"bpf_user_rnd_u32":        "bpf_get_prandom_u32",
	"bpf_get_numa_node_id":    "bpf_get_numa_node_id",
	"bpf_ktime_get_boot_ns":   "bpf_ktime_get_boot_ns",
	"bpf_ktime_get_coarse_ns": "bpf_ktime_get_coarse_ns",
	"jiffies":                 "jiffies",
}

// ProgTypes are the program types the guest loads, by the scenario's
// type= word; SkbProgTypes those among them whose ctx is struct
// __sk_buff, which the guest may run with the scenario's ctx as cb[]. The
// others are loaded to be put into slots, where a prog array's owner type
// decides (bpf_prog_map_compatible()).
var (
	ProgTypes    = []string{"sched_cls", "sched_act", "socket_filter", "cgroup_skb", "xdp"}
	SkbProgTypes = []string{"sched_cls", "sched_act", "socket_filter", "cgroup_skb"}
)
