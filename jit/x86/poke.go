package x86

import (
	"encoding/binary"

	"tailsim/jit"
)

// TextPoke is one __bpf_arch_text_poke(BPF_MOD_JUMP) that changes code:
// the X86PatchSize bytes at IP must be Old (the kernel refuses the poke
// with -EBUSY otherwise) and become New. Each is a jmp rel32 or nop5.
type TextPoke struct {
	IP       uint64
	Old, New [X86PatchSize]byte
}

// PokeDescUpdate is bpf_arch_poke_desc_update() for the direct tail call s
// of the image at image: the text pokes, in the kernel's order, that move
// its slot from the program landing at oldAddr to the one landing at
// newAddr (bpf_func + X86_TAIL_CALL_OFFSET; 0 for an empty slot). The
// order is the one that keeps every intermediate state safe for a CPU
// running the code: a filled slot gets its target jump before the bypass
// stops skipping the unwind, an emptied one its bypass back before the
// target goes. bpf_tail_call_direct_fixup() at load is the update from an
// empty slot. Pokes whose bytes are already in place (the kernel's return
// of 1) are left out.
func PokeDescUpdate(image uint64, s *jit.TailSite, oldAddr, newAddr uint64) []TextPoke {
	target, bypass := image+uint64(s.Target), image+uint64(s.Bypass)
	bypassAddr := image + uint64(s.Out) // poke->bypass_addr: just past the target site
	var pokes []TextPoke
	poke := func(ip, old, new uint64) {
		if p := textPoke(ip, old, new); p.Old != p.New {
			pokes = append(pokes, p)
		}
	}
	if newAddr != 0 {
		poke(target, oldAddr, newAddr)
		if oldAddr == 0 {
			poke(bypass, bypassAddr, 0)
		}
		return pokes
	}
	oldBypassAddr := bypassAddr
	if oldAddr != 0 {
		oldBypassAddr = 0
	}
	poke(bypass, oldBypassAddr, bypassAddr)
	poke(target, oldAddr, 0)
	return pokes
}

// textPoke is __bpf_arch_text_poke()'s old_insn and new_insn for a jump
// site at ip: a jump to the address, or nop5 for 0.
func textPoke(ip, oldAddr, newAddr uint64) TextPoke {
	p := TextPoke{IP: ip}
	copy(p.Old[:], nop5)
	copy(p.New[:], nop5)
	if oldAddr != 0 {
		p.Old = emitJump(oldAddr, ip)
	}
	if newAddr != 0 {
		p.New = emitJump(newAddr, ip)
	}
	return p
}

// emitJump is emit_jump(): jmp rel32 from ip to to. The kernel's range
// check (-ERANGE) never fires for tail calls, whose sites and targets are
// all JITed code, within 2 GiB of each other.
func emitJump(to, ip uint64) [X86PatchSize]byte {
	b := [X86PatchSize]byte{0xE9}
	binary.LittleEndian.PutUint32(b[1:], uint32(int64(to)-int64(ip+X86PatchSize)))
	return b
}

// JumpDest is where the poke site at ip holding insn jumps: the
// destination of its jmp rel32, or false for anything else (the nop5 of an
// empty slot).
func JumpDest(insn []byte, ip uint64) (uint64, bool) {
	if len(insn) < X86PatchSize || insn[0] != 0xE9 {
		return 0, false
	}
	return ip + X86PatchSize + uint64(int64(int32(binary.LittleEndian.Uint32(insn[1:])))), true
}
