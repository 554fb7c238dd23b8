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
	// The kernel names its thunk, not its map; tailsim names both.
	ksym := func(v uint64) string {
		if v >= base-1<<32 {
			return "__x86_indirect_thunk_rcx"
		}
		return ""
	}
	tsym := func(v uint64) string {
		if s := ksym(v); s != "" {
			return s
		}
		return "map jt"
	}
	// movabs rsi, MAP; cmp eax, 0x21; jae +2; jmp rel32 (thunk); nop2; ret
	a := mustHex(t, "48be00c6f71f000011ff"+"83f821"+"7305"+"e900100000"+"6690"+"c3")
	b := mustHex(t, "48be0000000082888fff"+"83f821"+"7305"+"e9aabbccdd"+"6690"+"c3")
	ta, err := Mask("x86_64", base, a, ksym)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := Mask("x86_64", base+0x1000, b, tsym)
	if d := Compare(ta, tb, &Binding{}); !d.Equal() {
		t.Errorf("placement-only difference reported at %v", d.Bad)
	}
	for _, tc := range []struct{ name, code string }{
		{"immediate", "48be0000000082888fff" + "83f820" + "7305" + "e9aabbccdd" + "6690" + "c3"},
		{"branch", "48be0000000082888fff" + "83f821" + "7307" + "e9aabbccdd" + "6690" + "c3"},
		{"register", "48bf0000000082888fff" + "83f821" + "7305" + "e9aabbccdd" + "6690" + "c3"},
	} {
		tc2, err := Mask("x86_64", base, mustHex(t, tc.code), tsym)
		if err != nil {
			t.Fatal(err)
		}
		if Compare(ta, tc2, &Binding{}).Equal() {
			t.Errorf("%s: a real difference was masked", tc.name)
		}
	}
	// Known symbols must agree.
	sym := func(s string) Resolver { return func(uint64) string { return s } }
	ta, _ = Mask("x86_64", base, a, sym("leaf#0+0xb"))
	tb, _ = Mask("x86_64", base, a, sym("leaf#0+0xc"))
	if Compare(ta, tb, nil).Equal() {
		t.Errorf("jumps to leaf+0xb and leaf+0xc compared equal")
	}
	// A symbol one side cannot name is a difference: a call the kernel
	// makes to a function outside what it reports.
	ta, _ = Mask("x86_64", base, a, none)
	tb, _ = Mask("x86_64", base, a, sym("__x86_indirect_thunk_rcx"))
	if Compare(ta, tb, &Binding{}).Equal() {
		t.Errorf("a thunk only tailsim names compared equal")
	}
	// An address neither side names is a constant: it must be equal.
	if !Compare(ta, ta, nil).Equal() {
		t.Errorf("an image differs from itself")
	}
	tc, _ := Mask("x86_64", base, b, none)
	if Compare(ta, tc, nil).Equal() {
		t.Errorf("two unnamed 64-bit constants that differ compared equal")
	}
}

// One kernel address stands for one of tailsim's maps, and one map for
// one address, over all of a scenario's images.
func TestBinding(t *testing.T) {
	const base = 0xffffffffc0000000
	load := func(addr string) []byte { return mustHex(t, "48be"+addr+"c3") } // movabs rsi, addr; ret
	k1, k2 := "00c6f71f000011ff", "00c8f71f000011ff"
	t1, t2 := "0000000082888fff", "0000000083888fff"
	tsym := func(v uint64) string {
		return map[uint64]string{0xff8f888200000000: "map jt", 0xff8f888300000000: "map other", 0xff8f888200000110: "map jt+0x110"}[v]
	}
	mask := func(code []byte, r Resolver) []Token {
		toks, err := Mask("x86_64", base, code, r)
		if err != nil {
			t.Fatal(err)
		}
		return toks
	}
	for _, tc := range []struct {
		name  string
		pairs [][2]string // kernel, tailsim
		equal bool
	}{
		{"consistent", [][2]string{{k1, t1}, {k2, t2}, {k1, t1}}, true},
		{"one address, two maps", [][2]string{{k1, t1}, {k1, t2}}, false},
		{"two addresses, one map", [][2]string{{k1, t1}, {k2, t1}}, false},
		// A value at base+0x110 on both sides, then the base itself.
		{"value then base", [][2]string{{"10c7f71f000011ff", "1001000082888fff"}, {k1, t1}}, true},
		// The kernel's value is 8 bytes further than tailsim's.
		{"value at another offset", [][2]string{{k1, t1}, {"18c7f71f000011ff", "1001000082888fff"}}, false},
	} {
		var m Binding
		equal := true
		for _, p := range tc.pairs {
			d := Compare(mask(load(p[0]), none), mask(load(p[1]), tsym), &m)
			equal = equal && d.Equal()
		}
		if equal != tc.equal {
			t.Errorf("%s: equal %v, want %v", tc.name, equal, tc.equal)
		}
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
	to, err := Mask("arm64", base, o, func(uint64) string { return "map jt" })
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(tk, to, &Binding{}); !d.Equal() {
		t.Errorf("placement-only difference reported at %v: %+v / %+v", d.Bad, tk, to)
	}
	// The same address built another way (movz of the low half, then
	// movks upwards): not emit_a64_mov_i64()'s sequence, so a difference.
	// movz x1, #0x6a00; movk x1, #0x824, lsl #16; movk x1, #0xffff, lsl #48
	other := mustHex(t, "01408dd2"+"8104a1f2"+"e1fffff2"+"4b0000b4"+"e70080d2"+"c0035fd6"+"4a000058"+"40011fd6")
	tother, err := Mask("arm64", base, other, none)
	if err != nil {
		t.Fatal(err)
	}
	if tother[0].Addr != tk[0].Addr || tother[0].Len != 12 {
		t.Fatalf("the other sequence was masked as %+v", tother[0])
	}
	if Compare(tk, tother, nil).Equal() {
		t.Errorf("an address built by another sequence compared equal: %s / %s", tk[0].Text, tother[0].Text)
	}
	// cbz to the ret instead of the mov.
	bad := mustHex(t, "e1ffffd2"+"4100c0f2"+"6b0000b4"+"e70080d2"+"c0035fd6"+"1f2003d5"+"4a000058"+"40011fd6")
	tbad, _ := Mask("arm64", base, bad, func(uint64) string { return "map jt" })
	if Compare(tk, tbad, &Binding{}).Equal() {
		t.Errorf("a branch to another instruction compared equal")
	}
}
