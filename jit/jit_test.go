package jit

import (
	"strings"
	"testing"

	"tailsim/prog"
)

// The imm round trip: what the fix-up encodes, DecodeTailCall reads back
// as the path the fix-up chose, on JITs with and without direct calls;
// an imm that says otherwise is an error, not a silent other path.
func TestDecodeTailCall(t *testing.T) {
	a, _ := prog.NewProgArray("a", 4)
	b, _ := prog.NewProgArray("b", 8)
	for _, tt := range []struct {
		name string
		site prog.TailCallSite
		// kinds by kernel (v6.1, v6.18, v6.18+series) and capability
		// (direct, none)
		want [3][2]prog.SiteKind
	}{
		{"constant key", prog.TailCallSite{Maps: []*prog.ProgArray{a}, KeyConst: true, Direct: true, PokeIndex: 0},
			[3][2]prog.SiteKind{{prog.Direct, prog.Indirect}, {prog.Direct, prog.Indirect}, {prog.Direct, prog.Static}}},
		{"run-time key", prog.TailCallSite{Maps: []*prog.ProgArray{b}, PokeIndex: -1, MapIndex: 1},
			[3][2]prog.SiteKind{{prog.Indirect, prog.Indirect}, {prog.Indirect, prog.Indirect}, {prog.Static, prog.Static}}},
		{"poisoned", prog.TailCallSite{Maps: []*prog.ProgArray{a, b}, PokeIndex: -1},
			[3][2]prog.SiteKind{{prog.Indirect, prog.Indirect}, {prog.Indirect, prog.Indirect}, {prog.Dynamic, prog.Dynamic}}},
	} {
		site := tt.site
		site.ImmMap = site.Maps[0]
		fx := &prog.Fixup{UsedMaps: []prog.Map{a, b}, Sites: []*prog.TailCallSite{&site}}
		for vi, v := range prog.Kernels {
			for di, direct := range []bool{true, false} {
				tc, err := DecodeTailCall(fx, 0, 0, v, direct)
				if err != nil || tc.Kind != tt.want[vi][di] || tc.Kind != site.Kind(v, direct) {
					t.Errorf("%s %s direct=%v: %v, %v; want %v", tt.name, v, direct, tc.Kind, err, tt.want[vi][di])
				}
				if tc.Kind == prog.Static && tc.Map != fx.UsedMaps[site.MapIndex] {
					t.Errorf("%s %s: static path on map %v, want used_maps[%d]", tt.name, v, tc.Map, site.MapIndex)
				}
			}
		}
	}
	// A direct site whose poke index was lost encodes no poke: the JIT
	// would emit the static path while the fix-up chose a direct call.
	bad := prog.TailCallSite{Loc: prog.Loc{Prog: "p", Slot: 2}, Maps: []*prog.ProgArray{a}, KeyConst: true, Direct: true, PokeIndex: -1, ImmMap: a}
	fx := &prog.Fixup{UsedMaps: []prog.Map{a}, Sites: []*prog.TailCallSite{&bad}}
	if _, err := DecodeTailCall(fx, 0, 0, prog.Linux618Series, true); err == nil || !strings.Contains(err.Error(), "decodes to the static path, the fix-up chose direct") {
		t.Errorf("a disagreeing imm: err %v, want one naming both paths", err)
	}
	if _, err := DecodeTailCall(fx, 0, 5, prog.Linux618Series, true); err == nil {
		t.Errorf("no fix-up record: no error")
	}
}
