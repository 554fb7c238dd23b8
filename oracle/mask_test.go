package oracle

import (
	"encoding/hex"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func none(uint64) string { return "" }

// Placement is masked and nothing else: two images that differ only in a
// map address and in a rel32 to a thunk match; one changed immediate, or
// a branch to another instruction, does not.
func TestMaskX86(t *testing.T) {
	const base = 0xffffffffc0000000
	// movabs rsi, MAP; cmp eax, 0x21; jae +2; jmp rel32 (thunk); nop2; ret
	a := mustHex(t, "48be00c6f71f000011ff"+"83f821"+"7305"+"e900100000"+"6690"+"c3")
	b := mustHex(t, "48be0000000082888fff"+"83f821"+"7305"+"e9aabbccdd"+"6690"+"c3")
	ta, err := Mask("x86_64", base, a, none)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := Mask("x86_64", base+0x1000, b, none)
	if d := Compare(ta, tb); !d.Equal() {
		t.Errorf("placement-only difference reported at %v", d.Bad)
	}
	for _, tc := range []struct{ name, code string }{
		{"immediate", "48be0000000082888fff" + "83f820" + "7305" + "e9aabbccdd" + "6690" + "c3"},
		{"branch", "48be0000000082888fff" + "83f821" + "7307" + "e9aabbccdd" + "6690" + "c3"},
		{"register", "48bf0000000082888fff" + "83f821" + "7305" + "e9aabbccdd" + "6690" + "c3"},
	} {
		tc2, err := Mask("x86_64", base, mustHex(t, tc.code), none)
		if err != nil {
			t.Fatal(err)
		}
		if Compare(ta, tc2).Equal() {
			t.Errorf("%s: a real difference was masked", tc.name)
		}
	}
	// Known symbols must agree.
	sym := func(s string) Resolver { return func(uint64) string { return s } }
	ta, _ = Mask("x86_64", base, a, sym("leaf#0+0xb"))
	tb, _ = Mask("x86_64", base, a, sym("leaf#0+0xc"))
	if Compare(ta, tb).Equal() {
		t.Errorf("jumps to leaf+0xb and leaf+0xc compared equal")
	}
}

// arm64: an address built in two instructions matches one built in three,
// and the PLT's alignment nop that the difference brings is not counted;
// branches are compared by the instruction they reach.
func TestMaskArm64(t *testing.T) {
	const base = 0xffff800000000000
	// mov x1, #0xffff000000000000; movk x1, #0x824, lsl #16; movk x1, #0x6a00;
	// cbz x11, +2; mov x7, #7; ret; ldr x10, #8; br x10
	k := mustHex(t, "e1ffffd2"+"8104a1f2"+"01408df2"+"4b0000b4"+"e70080d2"+"c0035fd6"+"4a000058"+"40011fd6")
	// mov x1, #0xffff000000000000; movk x1, #2, lsl #32; cbz; mov; ret; nop; ldr; br
	o := mustHex(t, "e1ffffd2"+"4100c0f2"+"4b0000b4"+"e70080d2"+"c0035fd6"+"1f2003d5"+"4a000058"+"40011fd6")
	tk, err := Mask("arm64", base, k, none)
	if err != nil {
		t.Fatal(err)
	}
	to, err := Mask("arm64", base, o, none)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(tk, to); !d.Equal() {
		t.Errorf("placement-only difference reported at %v: %+v / %+v", d.Bad, tk, to)
	}
	// cbz to the ret instead of the mov.
	bad := mustHex(t, "e1ffffd2"+"4100c0f2"+"6b0000b4"+"e70080d2"+"c0035fd6"+"1f2003d5"+"4a000058"+"40011fd6")
	tbad, _ := Mask("arm64", base, bad, none)
	if Compare(tk, tbad).Equal() {
		t.Errorf("a branch to another instruction compared equal")
	}
}
