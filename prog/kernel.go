package prog

import "encoding/binary"

// Kernel data that the verifier's inlined helpers read: read-only
// objects every backend keeps at the same addresses, with the values the
// helper stubs return (prog/rewrite.go; docs/kernel.md §12).

// x86-64 per-CPU data, as a kernel from v6.15 on lays it out: the per-CPU
// symbols are linked in the kernel image (no longer zero-based), so
// (u32)&cpu_number sign-extends back to the symbol's address, and CPU n's
// copy of a symbol is at the symbol plus __per_cpu_offset[n], which is
// also its this_cpu_off and the GS base while it runs.
const (
	X86PerCPUStart = 0xffff_ffff_8300_0000 // __per_cpu_start, in the kernel image
	X86CPUNumber   = X86PerCPUStart + 0x20 // &cpu_number
	X86ThisCPUOff  = X86PerCPUStart + 0x28 // &this_cpu_off
	X86PerCPUArea  = 0xffff_8881_7fc0_0000 // CPU 0's copy of the section, in the direct map
	// AddrPercpu is BPF_ADDR_PERCPU: the off of the verifier's
	// "dst = src + this CPU's per-CPU offset" (BPF_MOV64_PERCPU_REG).
	AddrPercpu = -1
)

// Sext32 is addr as the s32 immediate the kernel writes for it with
// (u32)(unsigned long)&sym: a kernel-image address sign-extends back.
func Sext32(addr uint64) int64 { return int64(int32(uint32(addr))) }

// X86PerCPUOffset is __per_cpu_offset[0]: where CPU 0's copies are
// relative to the symbols.
func X86PerCPUOffset() uint64 {
	area, start := uint64(X86PerCPUArea), uint64(X86PerCPUStart)
	return area - start
}

// KernelObject is one object of kernel data at its address.
type KernelObject struct {
	Name  string
	Addr  uint64
	Value []byte
}

// KernelObjects lists the kernel data every backend maps read-only:
// jiffies, and x86's per-CPU cpu_number (0: runs are on CPU 0, which
// the helper stub also returns) and this_cpu_off.
func KernelObjects() []KernelObject {
	return []KernelObject{
		{"jiffies", JiffiesAddr, binary.LittleEndian.AppendUint64(nil, Jiffies())},
		{"cpu_number (CPU 0)", X86CPUNumber + X86PerCPUOffset(), binary.LittleEndian.AppendUint32(nil, 0)},
		{"this_cpu_off (CPU 0)", X86ThisCPUOff + X86PerCPUOffset(), binary.LittleEndian.AppendUint64(nil, X86PerCPUOffset())},
	}
}

// KernelRead returns the n bytes at addr when they lie inside one of the
// KernelObjects.
func KernelRead(addr uint64, n int) ([]byte, bool) {
	for _, o := range KernelObjects() {
		if addr >= o.Addr && addr-o.Addr <= uint64(len(o.Value)-n) && n <= len(o.Value) {
			return o.Value[addr-o.Addr:][:n], true
		}
	}
	return nil, false
}
