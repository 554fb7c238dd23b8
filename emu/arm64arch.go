package emu

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
	"golang.org/x/arch/arm64/arm64asm"

	"tailsim/jit"
	"tailsim/jit/arm64"
	"tailsim/prog"
)

// NewArm64 is the emulated arm64 backend for the build c: its arm64 part
// is CONFIG_ARM64_BTI_KERNEL and CONFIG_ARM64_PTR_AUTH_KERNEL. Unicorn's
// default CPU runs their hint instructions as nops.
func NewArm64(c prog.Config) *Backend {
	return newBackend(c, prog.BTI|prog.PAC, func(c prog.Config) *archSpec { return arm64Spec(c&prog.BTI != 0, c&prog.PAC != 0) })
}

// Indexes into arm64Regs.
const (
	aX0 = iota // R1
	aX1        // R2
	aX2        // R3
	aX19
	aX20
	aX21
	aX22
	aX25 // FP
	aX26 // the tail-call counter pointer
	aX29
	aSP
	aX10
	aX11
)

var arm64Regs = []int{uc.ARM64_REG_X0, uc.ARM64_REG_X1, uc.ARM64_REG_X2, uc.ARM64_REG_X19, uc.ARM64_REG_X20,
	uc.ARM64_REG_X21, uc.ARM64_REG_X22, uc.ARM64_REG_X25, uc.ARM64_REG_X26, uc.ARM64_REG_X29, uc.ARM64_REG_SP,
	uc.ARM64_REG_X10, uc.ARM64_REG_X11}

func arm64Spec(bti, pac bool) *archSpec {
	o := func(v prog.Kernel, l prog.Layout) arm64.Options {
		return arm64.Options{Kernel: v, Layout: l, BTI: bti, PAC: pac}
	}
	saved := map[int]uint64{}
	names := map[int]string{}
	for i := 0; i <= 9; i++ { // x19–x28 are consecutive in Unicorn's enum
		saved[uc.ARM64_REG_X19+i] = 0x5a5a_0000_0000_0013 + uint64(i)
		names[uc.ARM64_REG_X19+i] = fmt.Sprintf("x%d", 19+i)
	}
	saved[uc.ARM64_REG_X29], names[uc.ARM64_REG_X29] = 0x5a5a_0000_0000_001d, "x29"
	spec := &archSpec{
		name:            "arm64",
		arch:            archArm64,
		tailEntry:       func(v prog.Kernel) int { return 4 * o(v, prog.Layout{}).PrologueOffset() },
		directTailCalls: arm64.DirectTailCalls,
		stepRegs:        arm64StepRegs,
		compile: func(p *prog.Program, fn int, fx *prog.Fixup, image uint64, res jit.Resolver, v prog.Kernel, l prog.Layout) (*jit.Image, error) {
			return arm64.Compile(p, fn, fx, image, res, o(v, l))
		},
		stubs: arm64Stubs,
		at:    arm64Addrs,
		regs:  arm64Regs,
		names: []string{"x0", "x1", "x2", "x19", "x20", "x21", "x22", "x25", "x26", "x29", "sp", "x10", "x11"},
		r1:    aX0, r2: aX1, r3: aX2, sp: aSP,
		kept: []int{aX19, aX20, aX21, aX22, aX25, aX26, aX29},
		// Tail calls land past "stp x29, x30; mov x29, sp" and the 16
		// bytes the counter (main) or its pointer (subprogram) occupies.
		// 6.1 lands past all four callee-saved pairs instead.
		expectedSP: func(v prog.Kernel, r []uint64) (uint64, string) {
			if v == prog.Linux61 {
				return r[aX29] - 64, "sp == x29 - 64"
			}
			return r[aX29] - 16, "sp == x29 - 16"
		},
		counter: func(m *machine, r []uint64, _ *jit.Image) counterLoc {
			if m.v.CounterByValue() {
				return counterLoc{reg: aX26} // 6.1: x26 is the count
			}
			return counterLoc{addr: r[aX26], size: 8} // x26 is tcc_ptr
		},
		jumpTarget: func(r []uint64, k prog.SiteKind) uint64 {
			if k == prog.Static {
				return r[aX11]
			}
			return r[aX10]
		},
		helperArgs: []int{uc.ARM64_REG_X0, uc.ARM64_REG_X1, uc.ARM64_REG_X2, uc.ARM64_REG_X3, uc.ARM64_REG_X4},
		helperRet:  uc.ARM64_REG_X0,
		spReg:      uc.ARM64_REG_SP,
		r1Reg:      uc.ARM64_REG_X0,
		r0Reg:      uc.ARM64_REG_X0, // the epilogue's "mov x0, x7"
		scratch:    []int{uc.ARM64_REG_X1, uc.ARM64_REG_X2, uc.ARM64_REG_X3, uc.ARM64_REG_X4, uc.ARM64_REG_X7, uc.ARM64_REG_X10, uc.ARM64_REG_X11, uc.ARM64_REG_X12},
		saved:      saved,
		savedNames: names,
		// The return address is in x30: "bl" into bpf_func.
		enter: func(m *machine, sp uint64) (uint64, uint64) {
			m.e.regWrite(uc.ARM64_REG_X30, m.spec.at.sentinel())
			return sp, sp
		},
		disasm: arm64Disasm,
		operands: func(code []byte) ([]string, []string) {
			in, _ := arm64.Decode(code, 0)
			return in.AddrRegs, in.Loads
		},
		locateFault: locateArm64Fault,
		// The JIT inlines bpf_get_smp_processor_id() as a load of
		// thread_info->cpu through sp_el0: give it a thread_info on CPU 0,
		// what the helper stubs return elsewhere.
		// (The page is mapped zeroed; the JIT's code never writes sp_el0.)
		setup: func(e *engine) error {
			return e.regWrite(uc.ARM64_REG_SP_EL0, arm64Addrs.threadInfo)
		},
	}
	spec.pac = pac
	if bti {
		// BTI: the tail call's "br x10" (not x16/x17) must land on
		// "bti j" or "bti jc", or the CPU raises a Branch Target
		// exception.
		spec.landingPad = func(code []byte) (bool, string) {
			if len(code) < 4 {
				return false, "bti j"
			}
			w := binary.LittleEndian.Uint32(code)
			return w == 0xd503249f || w == 0xd50324df, "bti j"
		}
	}
	return spec
}

// arm64StepRegs are x0–x30 and sp, named with the BPF register each holds
// as jit/arm64 maps them (bpf2a64).
var arm64StepRegs = func() stepRegs {
	role := map[int]string{7: "R0", 0: "R1", 1: "R2", 2: "R3", 3: "R4", 4: "R5", 19: "R6", 20: "R7", 21: "R8", 22: "R9",
		25: "R10", 9: "AX", 10: "tmp1", 11: "tmp2", 12: "tmp3", 26: "tail_call_cnt_ptr", 29: "fp", 30: "lr"}
	var r stepRegs
	for i := 0; i <= 30; i++ {
		id := uc.ARM64_REG_X0 + i
		switch i {
		case 29:
			id = uc.ARM64_REG_X29
		case 30:
			id = uc.ARM64_REG_X30
		}
		name := fmt.Sprintf("x%d", i)
		if role[i] != "" {
			name += " (" + role[i] + ")"
		}
		r.ids, r.names = append(r.ids, id), append(r.names, name)
	}
	r.ids, r.names = append(r.ids, uc.ARM64_REG_SP), append(r.names, "sp")
	r.r0, r.fp = 7, 29 // the frame record's x29, which every function sets up
	return r
}()

// memOperand matches arm64asm's GNU memory operands: [xN], [xN,#imm],
// [xN,xM], [xN,xM,lsl #k], pre-index [xN,#imm]! and post-index [xN],#imm.
// The text is read because arm64asm.MemImmediate keeps its offset
// unexported.
var memOperand = regexp.MustCompile(`\[(x\d+|sp)(?:,(?:#(-?(?:0x)?[0-9a-f]+)|([xw]\d+)(?:,(?:lsl|uxtw|sxtw|sxtx) #(\d+))?))?\](!)?`)

// locateArm64Fault finds the instruction that made a bad access. Unicorn
// reports the start of the translated block as the PC inside memory hooks
// on arm64, but the registers are those of the access, so the first load
// or store from there whose effective address covers the fault is it.
func locateArm64Fault(m *machine, pc uint64, f *access) uint64 {
	if len(f.Regs) < 32 {
		return pc
	}
	reg := func(name string) uint64 {
		if name == "sp" {
			return f.Regs[31]
		}
		n, _ := strconv.Atoi(name[1:])
		v := f.Regs[n]
		if name[0] == 'w' {
			v = uint64(uint32(v))
		}
		return v
	}
	var word [4]byte
	for at := pc; at < pc+4*64; at += 4 {
		if err := m.e.memReadInto(word[:], at); err != nil {
			break
		}
		in, err := arm64asm.Decode(word[:])
		if err != nil {
			continue
		}
		text := arm64asm.GNUSyntax(in)
		mm := memOperand.FindStringSubmatch(text)
		if mm == nil || strings.HasPrefix(text, "adr") {
			continue
		}
		ea := reg(mm[1])
		switch {
		case mm[2] != "":
			imm, _ := strconv.ParseInt(mm[2], 0, 64)
			ea += uint64(imm)
		case mm[3] != "":
			idx := reg(mm[3])
			if mm[4] != "" {
				k, _ := strconv.Atoi(mm[4])
				idx <<= k
			}
			ea += idx
		}
		if f.Addr+uint64(f.Size) > ea && f.Addr < ea+16 {
			return at
		}
	}
	return pc
}

// arm64Stubs builds the helper stubs: x0 = the stub's return value (the
// JIT then moves it to x7, R0), x1–x4 clobbered, ret. The sentinel is brk.
func arm64Stubs(addrMap) []byte {
	page := make([]byte, pageSize)
	put := func(at int, w uint32) { binary.LittleEndian.PutUint32(page[at:], w) }
	for i, h := range prog.Helpers {
		at := i * stubSize
		mov := func(reg uint32, v uint64) {
			for hw := uint32(0); hw < 4; hw++ {
				imm := uint32(v>>(16*hw)) & 0xffff
				op := uint32(0xF2800000) // movk
				if hw == 0 {
					op = 0xD2800000 // movz
				}
				put(at, op|hw<<21|imm<<5|reg)
				at += 4
			}
		}
		if !prog.Emulated(h.ID) {
			mov(0, h.Ret) // an emulated helper's x0 is set at the stub (callHelper)
		}
		for r := uint32(1); r <= 4; r++ {
			mov(r, prog.ClobberValue(prog.Register(r+1)))
		}
		put(at, 0xD65F03C0) // ret
	}
	put(sentinelOff, 0xD4200000) // brk #0
	return page
}

func arm64Disasm(code []byte, pc uint64) string {
	in, err := arm64.Decode(code, pc)
	if err != nil {
		return "?"
	}
	return in.Text
}

// CompileArm64 JITs every function of w at the address the emulator loads
// it at, without an engine: for listings.
func CompileArm64(w *prog.World, v prog.Kernel, bti, pac bool) ([]*Loaded, error) {
	return compileWorld(arm64Spec(bti, pac), w, v)
}
