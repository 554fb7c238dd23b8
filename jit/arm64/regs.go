// Package arm64 is the arm64 BPF JIT of arch/arm64/net/bpf_jit_comp.c, for
// the instruction subset tailsim models, emitting the same instruction
// words as bpf-next (late 2025) and as patch 3/4 of the "Eliminate
// max_entries and bpf_func access at runtime" series. Helpers carry the
// kernel's names so each has a findable twin: emit_bpf_tail_call is
// emitTailCall, emit_a64_mov_i64 is emitA64MovI64, the A64_* macros of
// bpf_jit.h are a64*, the generators of arch/arm64/lib/insn.c are
// aarch64InsnGen*, and so on.
//
// Configuration fixed here, as a kernel build would: no kCFI
// (CONFIG_CFI_CLANG=n, so bpf_func is the image start), BTI and pointer
// authentication optional (Options), no private stack, no arena, no
// exception boundary or callback, eBPF programs only (never converted
// classic BPF, so no BHB mitigation in the epilogue), no constant blinding.
package arm64

import "tailsim/prog"

// A64 register numbers. 31 is SP or XZR depending on the instruction, as in
// the kernel (A64_SP and A64_ZR are both 31).
const (
	regFP = 29 // A64_FP, the frame pointer x29
	regLR = 30 // A64_LR, x30
	regSP = 31 // A64_SP
	regZR = 31 // A64_ZR
)

// Extra registers beyond BPF's R0–R10, as the kernel numbers them
// (MAX_BPF_JIT_REG + n); BPF_REG_AX is MAX_BPF_REG.
const (
	bpfRegAX  = 11
	tmpReg1   = 12 // TMP_REG_1
	tmpReg2   = 13 // TMP_REG_2
	tcCntPtr  = 14 // TCCNT_PTR
	tmpReg3   = 15 // TMP_REG_3
	privateSP = 16 // PRIVATE_SP (unused: no private stack)
	arenaVM   = 17 // ARENA_VM_START (unused: no arena)
)

// bpf2a64 maps BPF registers to A64 registers.
var bpf2a64 = [...]int{
	prog.R0:   7,  // return value from in-kernel function, and exit value from eBPF
	prog.R1:   0,  // arguments from eBPF program to in-kernel function
	prog.R2:   1,  //
	prog.R3:   2,  //
	prog.R4:   3,  //
	prog.R5:   4,  //
	prog.R6:   19, // callee saved registers that in-kernel function will preserve
	prog.R7:   20, //
	prog.R8:   21, //
	prog.R9:   22, //
	prog.R10:  25, // read-only frame pointer to access stack
	tmpReg1:   10, // temporary registers for BPF JIT
	tmpReg2:   11, //
	tmpReg3:   12, //
	tcCntPtr:  26, // tail_call_cnt_ptr
	bpfRegAX:  9,  // temporary register for blinding constants
	privateSP: 27, // callee saved register for private stack pointer
	arenaVM:   28, // callee saved register for kern_vm_start address
}

// DirectTailCalls is false: the arm64 JIT has no poke descriptors, so the
// verifier's direct tail calls read the array like any other site.
const DirectTailCalls = false

// ThreadInfoCPU is offsetof(struct thread_info, cpu) on arm64 without
// CONFIG_ARM64_SW_TTBR0_PAN and CONFIG_SHADOW_CALL_STACK (flags, then the
// 8-byte preempt_count union, then cpu): the JIT inlines
// bpf_get_smp_processor_id() as a load from sp_el0 + ThreadInfoCPU.
const ThreadInfoCPU = 0x10

// Helper IDs the JIT inlines instead of calling (include/uapi/linux/bpf.h).
const (
	funcGetSmpProcessorID = 8
	funcGetCurrentTask    = 35
	funcGetCurrentTaskBTF = 158
)
