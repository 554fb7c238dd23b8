package x86_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/arch/x86/x86asm"

	"tailsim/jit"
	"tailsim/jit/x86"
)

// One direct tail call's slot through its life, as
// bpf_arch_poke_desc_update() pokes it: each row starts from the code the
// row before left (the first from what emit_bpf_tail_call_direct()
// emits), and every poke must find its Old bytes there, as the kernel
// checks before it writes. The bytes are the kernel's encodings worked
// out by hand; x86asm then decodes each one.
func TestPokeDescUpdate(t *testing.T) {
	const (
		image  = 0x0100_0000
		bypass = image + 0x40 // the site's Bypass, Target and Out
		target = image + 0x5a
		out    = image + 0x5f
		ahead  = 0x0100_300c // bpf_func + X86_TAIL_CALL_OFFSET of a program after the site
		behind = 0x0100_000c // the image's own tail-call entry, before the site
	)
	site := &jit.TailSite{Bypass: bypass - image, Target: target - image, Out: out - image}
	nop5 := [5]byte{0x0F, 0x1F, 0x44, 0x00, 0x00}
	jmpOut := [5]byte{0xE9, 0x1A, 0x00, 0x00, 0x00}    // out - (bypass+5) = 0x1a
	jmpAhead := [5]byte{0xE9, 0xAD, 0x2F, 0x00, 0x00}  // ahead - (target+5) = 0x2fad
	jmpBehind := [5]byte{0xE9, 0xAD, 0xFF, 0xFF, 0xFF} // behind - (target+5) = -0x53
	code := map[uint64][5]byte{bypass: jmpOut, target: nop5}
	for _, tt := range []struct {
		name     string
		old, new uint64
		want     []x86.TextPoke
	}{
		{"fill (bpf_tail_call_direct_fixup)", 0, ahead, []x86.TextPoke{
			{IP: target, Old: nop5, New: jmpAhead},
			{IP: bypass, Old: jmpOut, New: nop5},
		}},
		{"same program again", ahead, ahead, nil},
		{"replace", ahead, behind, []x86.TextPoke{
			{IP: target, Old: jmpAhead, New: jmpBehind},
		}},
		{"delete", behind, 0, []x86.TextPoke{
			{IP: bypass, Old: nop5, New: jmpOut},
			{IP: target, Old: jmpBehind, New: nop5},
		}},
		{"delete an empty slot", 0, 0, nil},
		{"fill again", 0, behind, []x86.TextPoke{
			{IP: target, Old: nop5, New: jmpBehind},
			{IP: bypass, Old: jmpOut, New: nop5},
		}},
	} {
		got := x86.PokeDescUpdate(image, site, tt.old, tt.new)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: pokes (-want +got):\n%s", tt.name, diff)
			continue
		}
		for _, p := range got {
			if code[p.IP] != p.Old {
				t.Errorf("%s: %#x holds % x, the poke expects % x (-EBUSY)", tt.name, p.IP, code[p.IP], p.Old)
			}
			code[p.IP] = p.New
			checkPokeInsn(t, tt.name, p.IP, p.Old[:])
			checkPokeInsn(t, tt.name, p.IP, p.New[:])
		}
	}
}

// checkPokeInsn decodes a poke site's bytes with x86asm: one 5-byte
// instruction, a nop or a jmp whose destination JumpDest agrees with.
func checkPokeInsn(t *testing.T, name string, ip uint64, insn []byte) {
	t.Helper()
	in, err := x86asm.Decode(insn, 64)
	if err != nil || in.Len != x86.X86PatchSize {
		t.Errorf("%s: % x at %#x: %v, length %d", name, insn, ip, err, in.Len)
		return
	}
	dest, ok := x86.JumpDest(insn, ip)
	switch in.Op {
	case x86asm.NOP:
		if ok {
			t.Errorf("%s: JumpDest(% x) = %#x, want none for a nop", name, insn, dest)
		}
	case x86asm.JMP:
		rel, isRel := in.Args[0].(x86asm.Rel)
		if want := ip + uint64(in.Len) + uint64(int64(rel)); !isRel || !ok || dest != want {
			t.Errorf("%s: JumpDest(% x at %#x) = %#x, %v; x86asm: %v, to %#x", name, insn, ip, dest, ok, in, want)
		}
	default:
		t.Errorf("%s: % x at %#x decodes to %v, not a jmp or nop", name, insn, ip, in)
	}
}
