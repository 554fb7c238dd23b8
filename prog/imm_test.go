package prog

import (
	"fmt"
	"testing"
)

// TestEncodeTailCallImm: bits 0–7 map index (≤ 63, MAX_USED_MAPS = 64),
// bits 8–15 the dynamic flag (0 or 1), bits 16–31 poke index + 1 (≤ 1024,
// the poke table size). docs/kernel.md §3.
func TestEncodeTailCallImm(t *testing.T) {
	tests := []struct {
		mapIndex, dynamic, poke int
		want                    uint32
		ok                      bool
	}{
		{0, 0, 0, 0x0000_0000, true},
		{5, 0, 0, 0x0000_0005, true},
		{63, 0, 0, 0x0000_003f, true},
		{64, 0, 0, 0, false},
		{255, 0, 0, 0, false},
		{-1, 0, 0, 0, false},
		{0, 1, 0, 0x0000_0100, true},
		{0, 2, 0, 0, false},
		{0, -1, 0, 0, false},
		{0, 0, 1, 0x0001_0000, true},
		{0, 0, 1024, 0x0400_0000, true},
		{0, 0, 1025, 0, false},
		{0, 0, -1, 0, false},
		{63, 1, 1024, 0x0400_013f, true},
		{7, 0, 3, 0x0003_0007, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d/%d", tt.mapIndex, tt.dynamic, tt.poke), func(t *testing.T) {
			got, err := EncodeTailCallImm(tt.mapIndex, tt.dynamic, tt.poke)
			if (err == nil) != tt.ok {
				t.Fatalf("error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && uint32(got) != tt.want {
				t.Errorf("imm %#08x, want %#08x", uint32(got), tt.want)
			}
		})
	}
}

func TestDecodeTailCallImm(t *testing.T) {
	tests := []struct {
		imm                     uint32
		mapIndex, dynamic, poke int
		ok                      bool
	}{
		{0x0000_0000, 0, 0, 0, true},
		{0x0400_013f, 63, 1, 1024, true},
		{0x0002_0001, 1, 0, 2, true},
		{0x0000_0040, 64, 0, 0, false},
		{0x0000_0200, 0, 2, 0, false},
		{0x0401_0000, 0, 0, 1025, false},
		{0xffff_ffff, 255, 255, 0xffff, false},
		{0x8000_0000, 0, 0, 0x8000, false},
	}
	for _, tt := range tests {
		m, d, p, err := DecodeTailCallImm(int32(tt.imm))
		if (err == nil) != tt.ok || m != tt.mapIndex || d != tt.dynamic || p != tt.poke {
			t.Errorf("DecodeTailCallImm(%#08x) = %d, %d, %d, %v; want %d, %d, %d, ok=%v",
				tt.imm, m, d, p, err, tt.mapIndex, tt.dynamic, tt.poke, tt.ok)
		}
	}
}

func TestTailCallImmRoundTrip(t *testing.T) {
	for m := 0; m < MaxUsedMaps; m++ {
		for d := 0; d <= 1; d++ {
			for _, p := range []int{0, 1, 2, 255, 256, 511, 1023, 1024} {
				imm, err := EncodeTailCallImm(m, d, p)
				if err != nil {
					t.Fatalf("Encode(%d, %d, %d): %v", m, d, p, err)
				}
				if want := uint32(m) + uint32(d)*0x100 + uint32(p)*0x10000; uint32(imm) != want {
					t.Fatalf("Encode(%d, %d, %d) = %#x, want %#x", m, d, p, uint32(imm), want)
				}
				m2, d2, p2, err := DecodeTailCallImm(imm)
				if err != nil || m2 != m || d2 != d || p2 != p {
					t.Fatalf("Decode(Encode(%d, %d, %d)) = %d, %d, %d, %v", m, d, p, m2, d2, p2, err)
				}
			}
		}
	}
}
