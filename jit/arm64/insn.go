package arm64

// The instruction generators of arch/arm64/lib/insn.c and the A64_* macros
// of arch/arm64/net/bpf_jit.h. A generator that cannot encode its operands
// returns aarch64BreakFault, as the kernel's do; validate_code() then
// rejects the image.

import "math/bits"

// aarch64BreakFault is AARCH64_BREAK_FAULT: brk #0x100
// (AARCH64_BREAK_MON | FAULT_BRK_IMM << 5), also the hole-fill pattern.
const aarch64BreakFault uint32 = 0xd4202000

// Instruction bits shared by several classes.
const (
	insnSFBit = 1 << 31 // AARCH64_INSN_SF_BIT
	insnNBit  = 1 << 22 // AARCH64_INSN_N_BIT
	insnLSL12 = 1 << 22 // AARCH64_INSN_LSL_12
)

// Base values of the instruction classes (insn.h __AARCH64_INSN_FUNCS).
const (
	insnAddImm    = 0x11000000
	insnAddsImm   = 0x31000000
	insnSubImm    = 0x51000000
	insnSubsImm   = 0x71000000
	insnMovn      = 0x12800000
	insnMovz      = 0x52800000
	insnMovk      = 0x72800000
	insnSbfm      = 0x13000000
	insnUbfm      = 0x53000000
	insnAdd       = 0x0B000000
	insnAdds      = 0x2B000000
	insnSub       = 0x4B000000
	insnSubs      = 0x6B000000
	insnMadd      = 0x1B000000
	insnMsub      = 0x1B008000
	insnUdiv      = 0x1AC00800
	insnSdiv      = 0x1AC00C00
	insnLslv      = 0x1AC02000
	insnLsrv      = 0x1AC02400
	insnAsrv      = 0x1AC02800
	insnAnd       = 0x0A000000
	insnOrr       = 0x2A000000
	insnOrn       = 0x2A200000
	insnEor       = 0x4A000000
	insnAnds      = 0x6A000000
	insnAndImm    = 0x12000000
	insnOrrImm    = 0x32000000
	insnEorImm    = 0x52000000
	insnAndsImm   = 0x72000000
	insnB         = 0x14000000
	insnBL        = 0x94000000
	insnCbz       = 0x34000000
	insnCbnz      = 0x35000000
	insnBcond     = 0x54000000
	insnHint      = 0xD503201F
	insnBr        = 0xD61F0000
	insnBlr       = 0xD63F0000
	insnRet       = 0xD65F0000
	insnLdrReg    = 0x38606800
	insnStrReg    = 0x38206800
	insnLdrImm    = 0x39400000
	insnStrImm    = 0x39000000
	insnStpPre    = 0x29800000
	insnLdpPost   = 0x28C00000
	insnLdrLit    = 0x18000000
	insnMrs       = 0xD5300000
	sysregSPEL0   = 0xC208 // AARCH64_INSN_SYSREG_SP_EL0
	sz128M        = 128 << 20
	sz1M          = 1 << 20
	immMask19     = 1<<19 - 1
	immMask26     = 1<<26 - 1
	ldstSize8     = 0
	ldstSize16    = 1
	ldstSize32    = 2
	ldstSize64    = 3
	hintNOP       = 0x0 << 5
	hintPACIASP   = 0x19 << 5
	hintAUTIASP   = 0x1D << 5
	hintBTIJ      = 0x24 << 5
	hintBTIJC     = 0x26 << 5
	condEQ        = 0x0
	condNE        = 0x1
	condCS        = 0x2
	condCC        = 0x3
	condHI        = 0x8
	condLS        = 0x9
	condGE        = 0xa
	condLT        = 0xb
	condGT        = 0xc
	condLE        = 0xd
	regFieldRd    = 0
	regFieldRn    = 5
	regFieldRt2   = 10
	regFieldRm    = 16
	immShift12    = 10
	immShift16    = 5
	immShift19    = 5
	immShiftR     = 16
	immShiftS     = 10
	immShift7     = 15
	movewideShift = 21
)

func reg(insn uint32, field uint, r int) uint32 {
	return insn&^(0x1f<<field) | uint32(r&0x1f)<<field
}

func sf(insn uint32, is64 bool) uint32 {
	if is64 {
		return insn | insnSFBit
	}
	return insn
}

// aarch64InsnGenAddSubImm is aarch64_insn_gen_add_sub_imm().
func aarch64InsnGenAddSubImm(rd, rn int, imm int64, is64 bool, base uint32) uint32 {
	insn := sf(base, is64)
	// We can't encode more than a 24bit value (12bit + 12bit shift).
	if imm < 0 || imm >= 1<<24 {
		return aarch64BreakFault
	}
	// If we have something in the top 12 bits and in the low 12 bits: error.
	if imm&^0xfff != 0 {
		if imm&0xfff != 0 {
			return aarch64BreakFault
		}
		imm >>= 12
		insn |= insnLSL12
	}
	insn = reg(insn, regFieldRd, rd)
	insn = reg(insn, regFieldRn, rn)
	return insn | uint32(imm)<<immShift12
}

// aarch64InsnGenMovewide is aarch64_insn_gen_movewide().
func aarch64InsnGenMovewide(rd int, imm uint64, shift int, is64 bool, base uint32) uint32 {
	if imm&^0xffff != 0 {
		return aarch64BreakFault
	}
	insn := uint32(base)
	if is64 {
		insn |= insnSFBit
		if shift != 0 && shift != 16 && shift != 32 && shift != 48 {
			return aarch64BreakFault
		}
	} else if shift != 0 && shift != 16 {
		return aarch64BreakFault
	}
	insn |= uint32(shift>>4) << movewideShift
	insn = reg(insn, regFieldRd, rd)
	return insn | uint32(imm)<<immShift16
}

// aarch64InsnGenBitfield is aarch64_insn_gen_bitfield().
func aarch64InsnGenBitfield(rd, rn int, immr, imms int64, is64 bool, base uint32) uint32 {
	insn := uint32(base)
	mask := int64(31)
	if is64 {
		insn |= insnSFBit | insnNBit
		mask = 63
	}
	if immr&^mask != 0 || imms&^mask != 0 {
		return aarch64BreakFault
	}
	insn = reg(insn, regFieldRd, rd)
	insn = reg(insn, regFieldRn, rn)
	return insn | uint32(immr)<<immShiftR | uint32(imms)<<immShiftS
}

// aarch64InsnGen3Reg covers aarch64_insn_gen_add_sub_shifted_reg(),
// _logical_shifted_reg() and _data2() with shift 0, as the JIT uses them:
// base | SF, Rd, Rn, Rm (register 31 is XZR here).
func aarch64InsnGen3Reg(rd, rn, rm int, is64 bool, base uint32) uint32 {
	insn := sf(base, is64)
	insn = reg(insn, regFieldRd, rd)
	insn = reg(insn, regFieldRn, rn)
	return reg(insn, regFieldRm, rm)
}

// aarch64InsnGenData3 is aarch64_insn_gen_data3(): Rd = Ra ± Rn * Rm.
func aarch64InsnGenData3(rd, ra, rn, rm int, is64 bool, base uint32) uint32 {
	insn := aarch64InsnGen3Reg(rd, rn, rm, is64, base)
	return reg(insn, regFieldRt2, ra)
}

// labelImmCommon is label_imm_common(): the offset, or range when it is
// misaligned or out of range.
func labelImmCommon(pc, addr uint64, rng int64) int64 {
	if pc&3 != 0 || addr&3 != 0 {
		return rng
	}
	off := int64(addr - pc)
	if off < -rng || off >= rng {
		return rng
	}
	return off
}

// aarch64InsnGenBranchImm is aarch64_insn_gen_branch_imm().
func aarch64InsnGenBranchImm(pc, addr uint64, link bool) uint32 {
	off := labelImmCommon(pc, addr, sz128M)
	if off >= sz128M {
		return aarch64BreakFault
	}
	insn := uint32(insnB)
	if link {
		insn = insnBL
	}
	return insn | uint32(off>>2)&immMask26
}

// aarch64InsnGenCondBranchImm is aarch64_insn_gen_cond_branch_imm().
func aarch64InsnGenCondBranchImm(pc, addr uint64, cond uint32) uint32 {
	off := labelImmCommon(pc, addr, sz1M)
	if off >= sz1M {
		return aarch64BreakFault
	}
	return insnBcond | cond | (uint32(off>>2)&immMask19)<<immShift19
}

// aarch64InsnGenCompBranchImm is aarch64_insn_gen_comp_branch_imm().
func aarch64InsnGenCompBranchImm(pc, addr uint64, rt int, is64, nonzero bool) uint32 {
	off := labelImmCommon(pc, addr, sz1M)
	if off >= sz1M {
		return aarch64BreakFault
	}
	insn := uint32(insnCbz)
	if nonzero {
		insn = insnCbnz
	}
	insn = sf(insn, is64)
	insn = reg(insn, regFieldRd, rt)
	return insn | (uint32(off>>2)&immMask19)<<immShift19
}

// aarch64InsnGenBranchReg is aarch64_insn_gen_branch_reg().
func aarch64InsnGenBranchReg(rn int, base uint32) uint32 {
	return reg(base, regFieldRn, rn)
}

// aarch64InsnGenHint is aarch64_insn_gen_hint().
func aarch64InsnGenHint(op uint32) uint32 { return insnHint | op }

// aarch64InsnGenLoadStoreImm is aarch64_insn_gen_load_store_imm() for the
// unsigned-offset forms.
func aarch64InsnGenLoadStoreImm(rt, rn int, imm int64, size uint, base uint32) uint32 {
	if imm&^(int64(1)<<(12+size)-int64(1)<<size) != 0 {
		return aarch64BreakFault
	}
	imm >>= size
	insn := base | uint32(size)<<30
	insn = reg(insn, regFieldRd, rt)
	insn = reg(insn, regFieldRn, rn)
	return insn | uint32(imm)<<immShift12
}

// aarch64InsnGenLoadStoreReg is aarch64_insn_gen_load_store_reg(): [Xn, Xm],
// option LSL, no scaling.
func aarch64InsnGenLoadStoreReg(rt, rn, rm int, size uint, base uint32) uint32 {
	insn := base | uint32(size)<<30
	insn = reg(insn, regFieldRd, rt)
	insn = reg(insn, regFieldRn, rn)
	return reg(insn, regFieldRm, rm)
}

// aarch64InsnGenLoadStorePair is aarch64_insn_gen_load_store_pair() for
// the 64-bit variant.
func aarch64InsnGenLoadStorePair(rt, rt2, rn int, offset int64, base uint32) uint32 {
	if offset&7 != 0 || offset < -512 || offset > 504 {
		return aarch64BreakFault
	}
	insn := base | insnSFBit
	insn = reg(insn, regFieldRd, rt)
	insn = reg(insn, regFieldRt2, rt2)
	insn = reg(insn, regFieldRn, rn)
	return insn | uint32(offset>>3)&0x7f<<immShift7
}

// aarch64InsnGenLoadLiteral is aarch64_insn_gen_load_literal().
func aarch64InsnGenLoadLiteral(pc, addr uint64, rt int, is64 bool) uint32 {
	off := labelImmCommon(pc, addr, sz1M)
	insn := uint32(insnLdrLit)
	if is64 {
		insn |= 1 << 30
	}
	insn = reg(insn, regFieldRd, rt)
	return insn | (uint32(off>>2)&immMask19)<<immShift19
}

// aarch64InsnGenMrs is aarch64_insn_gen_mrs().
func aarch64InsnGenMrs(rt int, sysreg uint32) uint32 {
	return reg(insnMrs|sysreg<<5, regFieldRd, rt)
}

// rangeOfOnes is range_of_ones(): val is 0..01..10..0 (not all ones or 0).
func rangeOfOnes(val uint64) bool {
	sval := val >> bits.TrailingZeros64(val)
	return (sval+1)&sval == 0
}

// aarch64EncodeImmediate is aarch64_encode_immediate(): the bitmask
// immediate (N, immr, imms) of a logical instruction, or the fault.
func aarch64EncodeImmediate(imm uint64, is64 bool, insn uint32) uint32 {
	esz := uint(32)
	if is64 {
		insn |= insnSFBit
		esz = 64
	}
	mask := uint64(1)<<esz - 1
	if esz == 64 {
		mask = ^uint64(0)
	}
	// Can't encode full zeroes, full ones, or value wider than the mask.
	if imm == 0 || imm == mask || imm&^mask != 0 {
		return aarch64BreakFault
	}
	// Inverse of Replicate(). Try to spot a repeating pattern with a pow2
	// stride.
	for tmp := esz / 2; tmp >= 2; tmp /= 2 {
		emask := uint64(1)<<tmp - 1
		if imm&emask != (imm>>tmp)&emask {
			break
		}
		esz = tmp
		mask = emask
	}
	// N is only set if we're encoding a 64bit value.
	var n uint32
	if esz == 64 {
		n = 1
	}
	imm &= mask
	ones := uint32(bits.OnesCount64(imm))
	// imms is set to (ones - 1), prefixed with a string of ones and a zero
	// if they fit. Cap it to 6 bits. (ffs is 1-based.)
	imms := ones - 1
	imms |= 0xf << (bits.TrailingZeros64(uint64(esz)) + 1)
	imms &= 1<<6 - 1
	var ror uint
	if rangeOfOnes(imm) {
		// Pattern: 0..01..10..0; rotate it right.
		ror = uint(bits.TrailingZeros64(imm))
	} else {
		// Pattern: 0..01..10..01..1; fill the unused top bits with ones
		// and check the result is all ones with one range of zeroes.
		imm |= ^mask
		if !rangeOfOnes(^imm) {
			return aarch64BreakFault
		}
		ror = uint(64 - bits.LeadingZeros64(^imm)) // fls64
	}
	immr := uint32((esz - ror) % esz)
	insn |= n << 22
	insn = insn&^(0x3f<<immShiftR) | immr<<immShiftR
	return insn&^(0x3f<<immShiftS) | imms<<immShiftS
}

// aarch64InsnGenLogicalImmediate is aarch64_insn_gen_logical_immediate().
func aarch64InsnGenLogicalImmediate(base uint32, is64 bool, rn, rd int, imm uint64) uint32 {
	insn := reg(base, regFieldRd, rd)
	insn = reg(insn, regFieldRn, rn)
	return aarch64EncodeImmediate(imm, is64, insn)
}

// The A64_* macros of bpf_jit.h. sf is the macro's first argument: 64-bit
// (X registers) when true.

func a64AddI(is64 bool, rd, rn int, imm int64) uint32 {
	return aarch64InsnGenAddSubImm(rd, rn, imm, is64, insnAddImm)
}
func a64SubI(is64 bool, rd, rn int, imm int64) uint32 {
	return aarch64InsnGenAddSubImm(rd, rn, imm, is64, insnSubImm)
}
func a64CmnI(is64 bool, rn int, imm int64) uint32 {
	return aarch64InsnGenAddSubImm(regZR, rn, imm, is64, insnAddsImm)
}
func a64CmpI(is64 bool, rn int, imm int64) uint32 {
	return aarch64InsnGenAddSubImm(regZR, rn, imm, is64, insnSubsImm)
}

// a64Mov is A64_MOV: ADD_I #0, so register 31 is SP (mov x29, sp).
func a64Mov(is64 bool, rd, rn int) uint32 { return a64AddI(is64, rd, rn, 0) }

func a64Movn(is64 bool, rd int, imm16 uint64, shift int) uint32 {
	return aarch64InsnGenMovewide(rd, imm16, shift, is64, insnMovn)
}
func a64Movz(is64 bool, rd int, imm16 uint64, shift int) uint32 {
	return aarch64InsnGenMovewide(rd, imm16, shift, is64, insnMovz)
}
func a64Movk(is64 bool, rd int, imm16 uint64, shift int) uint32 {
	return aarch64InsnGenMovewide(rd, imm16, shift, is64, insnMovk)
}

func a64Add(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnAdd) }
func a64Sub(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnSub) }
func a64Neg(is64 bool, rd, rm int) uint32     { return a64Sub(is64, rd, regZR, rm) }
func a64Cmp(is64 bool, rn, rm int) uint32 {
	return aarch64InsnGen3Reg(regZR, rn, rm, is64, insnSubs)
}
func a64Udiv(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnUdiv) }
func a64Sdiv(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnSdiv) }
func a64Lslv(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnLslv) }
func a64Lsrv(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnLsrv) }
func a64Asrv(is64 bool, rd, rn, rm int) uint32 { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnAsrv) }
func a64And(is64 bool, rd, rn, rm int) uint32  { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnAnd) }
func a64Orr(is64 bool, rd, rn, rm int) uint32  { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnOrr) }
func a64Eor(is64 bool, rd, rn, rm int) uint32  { return aarch64InsnGen3Reg(rd, rn, rm, is64, insnEor) }
func a64Tst(is64 bool, rn, rm int) uint32 {
	return aarch64InsnGen3Reg(regZR, rn, rm, is64, insnAnds)
}

// a64Madd is A64_MADD(sf, Rd, Ra, Rn, Rm): Rd = Ra + Rn * Rm.
func a64Madd(is64 bool, rd, ra, rn, rm int) uint32 {
	return aarch64InsnGenData3(rd, ra, rn, rm, is64, insnMadd)
}

// a64Msub is A64_MSUB(sf, Rd, Ra, Rn, Rm): Rd = Ra - Rn * Rm.
func a64Msub(is64 bool, rd, ra, rn, rm int) uint32 {
	return aarch64InsnGenData3(rd, ra, rn, rm, is64, insnMsub)
}
func a64Mul(is64 bool, rd, rn, rm int) uint32 { return a64Madd(is64, rd, regZR, rn, rm) }

// a64LogicImm is A64_LOGIC_IMM: the s32 imm is sign-extended for 64-bit
// operations and zero-extended for 32-bit ones.
func a64LogicImm(is64 bool, rd, rn int, imm int32, base uint32) uint32 {
	imm64 := uint64(uint32(imm))
	if is64 {
		imm64 = uint64(int64(imm))
	}
	return aarch64InsnGenLogicalImmediate(base, is64, rn, rd, imm64)
}
func a64AndI(is64 bool, rd, rn int, imm int32) uint32 {
	return a64LogicImm(is64, rd, rn, imm, insnAndImm)
}
func a64OrrI(is64 bool, rd, rn int, imm int32) uint32 {
	return a64LogicImm(is64, rd, rn, imm, insnOrrImm)
}
func a64EorI(is64 bool, rd, rn int, imm int32) uint32 {
	return a64LogicImm(is64, rd, rn, imm, insnEorImm)
}
func a64TstI(is64 bool, rn int, imm int32) uint32 {
	return a64LogicImm(is64, regZR, rn, imm, insnAndsImm)
}

// a64Lsl is A64_LSL: UBFM Rd, Rn, #(-shift % sz), #(sz - 1 - shift).
func a64Lsl(is64 bool, rd, rn int, shift int32) uint32 {
	sz := int64(32)
	if is64 {
		sz = 64
	}
	immr := int64(uint32(-shift) % uint32(sz))
	return aarch64InsnGenBitfield(rd, rn, immr, sz-1-int64(shift), is64, insnUbfm)
}

// a64Lsr is A64_LSR: UBFM Rd, Rn, #shift, #(sz - 1).
func a64Lsr(is64 bool, rd, rn int, shift int32) uint32 {
	return aarch64InsnGenBitfield(rd, rn, int64(shift), topBit(is64), is64, insnUbfm)
}

// a64Asr is A64_ASR: SBFM Rd, Rn, #shift, #(sz - 1).
func a64Asr(is64 bool, rd, rn int, shift int32) uint32 {
	return aarch64InsnGenBitfield(rd, rn, int64(shift), topBit(is64), is64, insnSbfm)
}

func a64Sxtb(is64 bool, rd, rn int) uint32 {
	return aarch64InsnGenBitfield(rd, rn, 0, 7, is64, insnSbfm)
}
func a64Sxth(is64 bool, rd, rn int) uint32 {
	return aarch64InsnGenBitfield(rd, rn, 0, 15, is64, insnSbfm)
}
func a64Sxtw(is64 bool, rd, rn int) uint32 {
	return aarch64InsnGenBitfield(rd, rn, 0, 31, is64, insnSbfm)
}

func topBit(is64 bool) int64 {
	if is64 {
		return 63
	}
	return 31
}

// a64B is A64_B(imm26): a branch by a signed instruction count.
func a64B(imm26 int) uint32 { return aarch64InsnGenBranchImm(0, uint64(int64(imm26)<<2), false) }

// a64BCond is A64_B_(cond, imm19).
func a64BCond(cond uint32, imm19 int) uint32 {
	return aarch64InsnGenCondBranchImm(0, uint64(int64(imm19)<<2), cond)
}

// a64Cbz is A64_CBZ(sf, Rt, imm19).
func a64Cbz(is64 bool, rt int, imm19 int) uint32 {
	return aarch64InsnGenCompBranchImm(0, uint64(int64(imm19)<<2), rt, is64, false)
}

func a64Br(rn int) uint32  { return aarch64InsnGenBranchReg(rn, insnBr) }
func a64Blr(rn int) uint32 { return aarch64InsnGenBranchReg(rn, insnBlr) }
func a64Ret(rn int) uint32 { return aarch64InsnGenBranchReg(rn, insnRet) }

// a64LsReg is A64_LS_REG (register offset).
func a64LdrReg(rt, rn, rm int, size uint) uint32 {
	return aarch64InsnGenLoadStoreReg(rt, rn, rm, size, insnLdrReg)
}
func a64StrReg(rt, rn, rm int, size uint) uint32 {
	return aarch64InsnGenLoadStoreReg(rt, rn, rm, size, insnStrReg)
}

// a64LdrImm and a64StrImm are A64_LS_IMM (unsigned immediate offset).
func a64LdrImm(rt, rn int, imm int64, size uint) uint32 {
	return aarch64InsnGenLoadStoreImm(rt, rn, imm, size, insnLdrImm)
}
func a64StrImm(rt, rn int, imm int64, size uint) uint32 {
	return aarch64InsnGenLoadStoreImm(rt, rn, imm, size, insnStrImm)
}

// a64Push is A64_PUSH: stp Rt, Rt2, [Rn, #-16]!.
func a64Push(rt, rt2, rn int) uint32 {
	return aarch64InsnGenLoadStorePair(rt, rt2, rn, -16, insnStpPre)
}

// a64Pop is A64_POP: ldp Rt, Rt2, [Rn], #16.
func a64Pop(rt, rt2, rn int) uint32 { return aarch64InsnGenLoadStorePair(rt, rt2, rn, 16, insnLdpPost) }

// a64Ldr64Lit is A64_LDR64LIT(Xt, offset).
func a64Ldr64Lit(rt int, offset int64) uint32 {
	return aarch64InsnGenLoadLiteral(0, uint64(offset), rt, true)
}

// a64MrsSPEL0 is A64_MRS_SP_EL0(Rt).
func a64MrsSPEL0(rt int) uint32 { return aarch64InsnGenMrs(rt, sysregSPEL0) }

var (
	a64Nop     = aarch64InsnGenHint(hintNOP)
	a64Paciasp = aarch64InsnGenHint(hintPACIASP)
	a64Autiasp = aarch64InsnGenHint(hintAUTIASP)
	a64BtiJ    = aarch64InsnGenHint(hintBTIJ)
	a64BtiJC   = aarch64InsnGenHint(hintBTIJC)
)
