package prog_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/prog"
	"tailsim/prog/asm"
)

// tailcall1 is the entry of selftests' tailcall_1: constant keys 0, 1, 2
// (the last one written through a 32-bit move), then return 3. The tail
// calls are instructions 3, 7 and 11.
const tailcall1 = `
	r6 = r1
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r1 = r6
	r2 = map[jmp]
	r3 = 1
	call bpf_tail_call
	r1 = r6
	r2 = map[jmp]
	w3 = 2
	call bpf_tail_call
	r0 = 3
	exit`

// siteWant is what the verifier would decide for one tail call.
type siteWant struct {
	fn, insn int
	maps     []string // names of the maps reaching R2
	keyConst bool
	key      uint64
	poke     int // -1: not direct
	mapIndex int
	kinds    [2]prog.SiteKind // upstream, patched
	imms     [2]uint32        // upstream, patched
}

func mkMaps(t testing.TB, sizes map[string]uint32) map[string]*prog.ProgArray {
	t.Helper()
	maps := map[string]*prog.ProgArray{}
	for n, sz := range sizes {
		a, err := prog.NewProgArray(n, sz)
		if err != nil {
			t.Fatal(err)
		}
		maps[n] = a
	}
	return maps
}

func names[M prog.Map](ms []M) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MapName())
	}
	return out
}

func TestFixupSites(t *testing.T) {
	const (
		up      = 0
		patched = 1
		poke1   = 1 << 16 // poke index 0, stored + 1
		dynamic = 1 << 8
	)
	tests := []struct {
		name     string
		maps     map[string]uint32
		main     string
		subs     map[string]string
		opts     prog.FixupOptions
		usedMaps []string
		sites    []siteWant
	}{
		{
			name: "constant keys are direct, pokes in instruction order",
			maps: map[string]uint32{"jmp": 3},
			main: tailcall1, usedMaps: []string{"jmp"},
			sites: []siteWant{
				{0, 3, []string{"jmp"}, true, 0, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, 1 * poke1}},
				{0, 7, []string{"jmp"}, true, 1, 1, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{2, 2 * poke1}},
				{0, 11, []string{"jmp"}, true, 2, 2, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{3, 3 * poke1}},
			},
		},
		{
			name: "NoDirect keeps the key but makes no poke",
			maps: map[string]uint32{"jmp": 3},
			main: tailcall1, opts: prog.FixupOptions{NoDirect: true}, usedMaps: []string{"jmp"},
			sites: []siteWant{
				{0, 3, []string{"jmp"}, true, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}},
				{0, 7, []string{"jmp"}, true, 1, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}},
				{0, 11, []string{"jmp"}, true, 2, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}},
			},
		},
		{
			name: "key = max_entries is indirect",
			maps: map[string]uint32{"jmp": 3},
			main: "r2 = map[jmp]\nr3 = 3\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 2, []string{"jmp"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "key max_entries-1 is direct",
			maps: map[string]uint32{"jmp": 3},
			main: "r2 = map[jmp]\nr3 = 2\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 2, []string{"jmp"}, true, 2, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			// (u32)(2^32+1) = 1 < 11, but the verifier compares all 64 bits.
			name: "64-bit constant 2^32+1 is not a key",
			maps: map[string]uint32{"jmp": 11},
			main: "r2 = map[jmp]\nr3 = 0x100000001 ll\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 2, []string{"jmp"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "w3 = -1 is 0xffffffff, out of range",
			maps: map[string]uint32{"jmp": 11},
			main: "r2 = map[jmp]\nw3 = -1\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 2, []string{"jmp"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "constant folded through ALU",
			maps: map[string]uint32{"jmp": 11},
			main: "r2 = map[jmp]\nr3 = 5\nr3 *= 2\nw3 -= 0\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 4, []string{"jmp"}, true, 10, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			name: "key loaded from memory is indirect",
			maps: map[string]uint32{"jmp": 11},
			main: "r2 = map[jmp]\nr3 = *(u32 *)(r1 + 0)\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 2, []string{"jmp"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "key masked from ctx is not a constant",
			maps: map[string]uint32{"jmp": 11},
			main: "r2 = map[jmp]\nr3 = *(u32 *)(r1 + 0)\nr3 &= 1\ncall bpf_tail_call\nr0 = 0\nexit", usedMaps: []string{"jmp"},
			sites: []siteWant{{0, 3, []string{"jmp"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "two maps reaching R2 poison the site",
			maps: map[string]uint32{"a": 4, "b": 4},
			main: `
	r2 = map[a]
	r3 = 0
	if r1 == 0 goto go
	r2 = map[b]
go:	call bpf_tail_call
	r0 = 0
	exit`,
			usedMaps: []string{"a", "b"},
			sites:    []siteWant{{0, 4, []string{"a", "b"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Dynamic}, [2]uint32{0, dynamic}}},
		},
		{
			name: "the same map on both branches is not poisoned",
			maps: map[string]uint32{"a": 4},
			main: `
	r3 = 0
	if r1 == 0 goto other
	r2 = map[a]
	goto go
other:
	r2 = map[a]
go:
	call bpf_tail_call
	r0 = 0
	exit`,
			usedMaps: []string{"a"},
			sites:    []siteWant{{0, 5, []string{"a"}, true, 0, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			name: "keys differing by branch are not a constant",
			maps: map[string]uint32{"a": 4},
			main: `
	r2 = map[a]
	r3 = 0
	if r1 == 0 goto go
	r3 = 1
go:	call bpf_tail_call
	r0 = 0
	exit`,
			usedMaps: []string{"a"},
			sites:    []siteWant{{0, 4, []string{"a"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "the same key on every branch is a constant",
			maps: map[string]uint32{"a": 4},
			main: `
	r2 = map[a]
	r3 = 1
	if r1 == 0 goto go
	w3 = 1
go:	call bpf_tail_call
	r0 = 0
	exit`,
			usedMaps: []string{"a"},
			sites:    []siteWant{{0, 4, []string{"a"}, true, 1, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			// used_maps in order of first load, over main then subprograms;
			// the site is in the subprogram and uses the third map.
			name: "map loaded in a subprogram",
			maps: map[string]uint32{"a": 4, "b": 2, "c": 4},
			main: `
	r2 = map[c]
	r2 = map[a]
	r2 = map[c]
	call sub
	exit`,
			subs: map[string]string{"sub": `
	r2 = map[b]
	r3 = 1
	call bpf_tail_call
	r0 = 0
	exit`},
			usedMaps: []string{"c", "a", "b"},
			sites:    []siteWant{{1, 2, []string{"b"}, true, 1, 0, 2, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1 | 2}}},
		},
		{
			name:     "map and key passed to a subprogram",
			maps:     map[string]uint32{"a": 4},
			main:     "r2 = map[a]\nr3 = 3\ncall sub\nexit",
			subs:     map[string]string{"sub": "call bpf_tail_call\nr0 = 0\nexit"},
			usedMaps: []string{"a"},
			sites:    []siteWant{{1, 0, []string{"a"}, true, 3, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			// The verifier's key state is per instruction, merged over
			// every call of the subprogram.
			name: "subprogram called with two keys",
			maps: map[string]uint32{"a": 4},
			main: `
	r6 = r1
	r3 = 0
	call sub
	r1 = r6
	r3 = 1
	call sub
	exit`,
			subs:     map[string]string{"sub": "r2 = map[a]\ncall bpf_tail_call\nr0 = 0\nexit"},
			usedMaps: []string{"a"},
			sites:    []siteWant{{1, 1, []string{"a"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
		{
			name: "subprogram called twice with one key",
			maps: map[string]uint32{"a": 4},
			main: `
	r6 = r1
	r3 = 1
	call sub
	r1 = r6
	r3 = 1
	call sub
	exit`,
			subs:     map[string]string{"sub": "r2 = map[a]\ncall bpf_tail_call\nr0 = 0\nexit"},
			usedMaps: []string{"a"},
			sites:    []siteWant{{1, 1, []string{"a"}, true, 1, 0, 0, [2]prog.SiteKind{prog.Direct, prog.Direct}, [2]uint32{1, poke1}}},
		},
		{
			// lib/test_bpf: no verifier. Upstream keeps imm 0 (indirect);
			// the patched series takes the static path with map index 0,
			// whatever R2 holds. Reading R0 unset is not checked.
			name: "NoVerifier",
			maps: map[string]uint32{"a": 4, "b": 4},
			main: `
	r2 = map[b]
	r2 = map[a]
	r3 = 0
	call bpf_tail_call
	exit`,
			opts:     prog.FixupOptions{NoVerifier: true},
			usedMaps: []string{"b", "a"},
			sites:    []siteWant{{0, 3, []string{"b"}, false, 0, -1, 0, [2]prog.SiteKind{prog.Indirect, prog.Static}, [2]uint32{0, 0}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps := mkMaps(t, tt.maps)
			p := newProg(t, "main", tt.main, tt.subs)
			fx, err := prog.FixupProgram(p, maps, tt.opts)
			if err != nil {
				t.Fatalf("FixupProgram: %v", err)
			}
			if diff := cmp.Diff(tt.usedMaps, names(fx.UsedMaps)); diff != "" {
				t.Errorf("UsedMaps (-want +got):\n%s", diff)
			}
			if len(fx.Sites) != len(tt.sites) {
				t.Fatalf("%d sites, want %d", len(fx.Sites), len(tt.sites))
			}
			for i, w := range tt.sites {
				s := fx.Sites[i]
				if s.Func != w.fn || s.Insn != w.insn || fx.Site(w.fn, w.insn) != s {
					t.Errorf("site %d at %d/%d, want %d/%d", i, s.Func, s.Insn, w.fn, w.insn)
				}
				if want := p.Loc(w.fn, w.insn); s.Loc != want || s.Loc.Line != p.Funcs[w.fn].Insns[w.insn].Line {
					t.Errorf("site %d: Loc %v, want %v on the instruction's line %d", i, s.Loc, want, p.Funcs[w.fn].Insns[w.insn].Line)
				}
				if diff := cmp.Diff(w.maps, names(s.Maps)); diff != "" {
					t.Errorf("site %d maps (-want +got):\n%s", i, diff)
				}
				if s.Poisoned() != (len(w.maps) > 1) {
					t.Errorf("site %d: Poisoned = %v", i, s.Poisoned())
				}
				if s.KeyConst != w.keyConst || (w.keyConst && s.Key != w.key) {
					t.Errorf("site %d: KeyConst %v key %d, want %v %d", i, s.KeyConst, s.Key, w.keyConst, w.key)
				}
				if s.Direct != (w.poke >= 0) || s.PokeIndex != w.poke {
					t.Errorf("site %d: Direct %v poke %d, want poke %d", i, s.Direct, s.PokeIndex, w.poke)
				}
				if s.MapIndex != w.mapIndex || s.ImmMap == nil || s.ImmMap != fx.UsedMaps[w.mapIndex] {
					t.Errorf("site %d: MapIndex %d ImmMap %v, want %d (%s)", i, s.MapIndex, s.ImmMap, w.mapIndex, tt.usedMaps[w.mapIndex])
				}
				// v6.1's verifier encodes the site as v6.18's does (imm =
				// poke index + 1) and its JITs take the same paths.
				for _, direct := range []bool{true, false} {
					if k61, k618 := s.Kind(prog.Linux61, direct), s.Kind(prog.Linux618, direct); k61 != k618 {
						t.Errorf("site %d: Kind(v6.1, %v) = %v, v6.18's %v", i, direct, k61, k618)
					}
				}
				if i61, _ := s.Imm(prog.Linux61); i61 != mustImm(t, s, prog.Linux618) {
					t.Errorf("site %d: Imm(v6.1) = %#x, not v6.18's", i, i61)
				}
				for vi, v := range []prog.Kernel{prog.Linux618, prog.Linux618Series} {
					if k := s.Kind(v, true); k != w.kinds[vi] {
						t.Errorf("site %d: Kind(%v, direct) = %v, want %v", i, v, k, w.kinds[vi])
					}
					// arm64 has no direct calls: upstream's direct sites
					// are indirect there, the patched series' (dynamic
					// flag clear) static (docs/kernel.md §6, §7).
					arm64 := w.kinds[vi]
					if arm64 == prog.Direct {
						arm64 = map[prog.Kernel]prog.SiteKind{prog.Linux618: prog.Indirect, prog.Linux618Series: prog.Static}[v]
					}
					if k := s.Kind(v, false); k != arm64 {
						t.Errorf("site %d: Kind(%v, no direct) = %v, want %v", i, v, k, arm64)
					}
					imm, err := s.Imm(v)
					if err != nil || uint32(imm) != w.imms[vi] {
						t.Errorf("site %d: Imm(%v) = %#x, %v; want %#x", i, v, uint32(imm), err, w.imms[vi])
					}
				}
			}
			if fx.Site(0, 0) != nil && !p.Funcs[0].Insns[0].IsTailCall() {
				t.Errorf("Site(0, 0) found a site at a non-tail-call")
			}
		})
	}
}

// TestFixupErrors: what the verifier rejects, and (noVerifier) whether
// lib/test_bpf's path still accepts it.
func TestFixupErrors(t *testing.T) {
	tests := []struct {
		name       string
		main       string
		subs       map[string]string
		line       int
		msg        []string
		noVerifier bool        // accepted with NoVerifier
		kernel     prog.Kernel // the verifier's (v6.18 unless set)
	}{
		{name: "write to r10", main: "r0 = 0\nr10 = 1\nexit", line: 2, msg: []string{"frame pointer is read only"}, noVerifier: true},
		{name: "add to r10", main: "r0 = 0\nr10 += 8\nexit", line: 2, msg: []string{"frame pointer is read only"}, noVerifier: true},
		{name: "load into r10", main: "r0 = 0\nr10 = *(u64 *)(r1 + 0)\nexit", line: 2, msg: []string{"frame pointer is read only"}, noVerifier: true},
		{name: "read above the frame", main: "r0 = *(u64 *)(r10 + 8)\nexit", line: 1, msg: []string{"invalid read from stack R10 off=8 size=8"}, noVerifier: true},
		{name: "write across the frame pointer", main: "*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit", line: 1, msg: []string{"invalid write to stack R10 off=0 size=8"}, noVerifier: true},
		{name: "misaligned, across the frame pointer", main: "*(u64 *)(r10 - 4) = 1\nr0 = 0\nexit", line: 1, msg: []string{"misaligned stack access off (0x0; 0x0)+0+-4 size 8"}, noVerifier: true},
		{name: "misaligned u32", main: "*(u32 *)(r10 - 6) = 1\nr0 = 0\nexit", line: 1, msg: []string{"misaligned stack access off (0x0; 0x0)+0+-6 size 4"}, noVerifier: true},
		{name: "misaligned through a copy", main: "r2 = r10\nr2 += -8\nr0 = *(u16 *)(r2 - 3)\nexit", line: 3, msg: []string{"misaligned stack access off (0x0; 0x0)+-8+-3 size 2"}, noVerifier: true},
		{name: "read at r10 through a copy", main: "r2 = r10\nr0 = *(u64 *)(r2 + 0)\nexit", line: 2, msg: []string{"invalid read from stack r2 off=0 size=8"}, noVerifier: true},
		{name: "write above the frame through a moved copy", main: "r2 = r10\nr2 += -8\n*(u64 *)(r2 + 16) = 1\nr0 = 0\nexit", line: 3, msg: []string{"invalid write to stack r2 off=8 size=8"}, noVerifier: true},
		{name: "below the declared frame through a copy", main: "r2 = r10\nr2 -= 8\n*(u64 *)(r2 - 8) = 1\nr0 = 0\nexit", line: 3, msg: []string{"touches r10 - 16 through r2"}, noVerifier: true},
		{name: "div by constant zero", main: "r0 = 1\nr0 /= 0\nexit", line: 2, msg: []string{"div by zero"}, noVerifier: true},
		// The ctx pointer, followed from R1 as the verifier follows
		// PTR_TO_CTX.
		{name: "immediate stored through ctx (6.1)", main: "*(u32 *)(r1 + 0) = 1\nr0 = 0\nexit", line: 1, msg: []string{"BPF_ST stores into R1 ctx is not allowed"}, noVerifier: true, kernel: prog.Linux61},
		{name: "immediate stored through a copy of ctx (6.1)", main: "r6 = r1\n*(u8 *)(r6 + 3) = 1\nr0 = 0\nexit", line: 2, msg: []string{"BPF_ST stores into R6 ctx"}, noVerifier: true, kernel: prog.Linux61},
		{name: "load through moved ctx", main: "r1 += 4\nr0 = *(u32 *)(r1 + 0)\nexit", line: 2, msg: []string{"dereference of modified ctx ptr R1 off=4"}, noVerifier: true},
		{name: "store through moved ctx", main: "r2 = r1\nr2 += 8\nr2 -= 4\nr0 = 0\n*(u32 *)(r2 + 0) = r0\nexit", line: 5, msg: []string{"dereference of modified ctx ptr R2 off=4"}, noVerifier: true},
		{name: "negative ctx offset", main: "r1 += -4\nr0 = *(u32 *)(r1 + 4)\nexit", line: 2, msg: []string{"negative offset ctx ptr R1 off=-4"}, noVerifier: true},
		{name: "ctx masked", main: "r1 &= -8\nr0 = 0\nexit", line: 1, msg: []string{"R1 bitwise operator &= on pointer prohibited"}, noVerifier: true},
		{name: "ctx shifted", main: "r1 <<= 1\nr0 = 0\nexit", line: 1, msg: []string{"R1 pointer arithmetic with <<= operator prohibited"}, noVerifier: true},
		{name: "32-bit add to ctx", main: "w1 += 1\nr0 = 0\nexit", line: 1, msg: []string{"R1 32-bit pointer arithmetic prohibited"}, noVerifier: true},
		{name: "scalar minus ctx", main: "r2 = 5\nr2 -= r1\nr0 = 0\nexit", line: 2, msg: []string{"R2 tried to subtract pointer from scalar"}, noVerifier: true},
		{name: "ctx plus the stack", main: "r1 += r10\nr0 = 0\nexit", line: 1, msg: []string{"R1 pointer += pointer prohibited"}, noVerifier: true},
		{name: "tail call with moved ctx", main: "r1 += 8\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", line: 4, msg: []string{"modified ctx ptr R1"}, noVerifier: true},
		{name: "tail call with a constant for ctx", main: "r1 = 0\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", line: 4, msg: []string{"R1 type=scalar expected=ctx"}, noVerifier: true},
		{name: "moved ctx in a subprogram", main: "call sub\nr0 = 0\nexit", subs: map[string]string{"sub": "r1 += 4\nr0 = *(u32 *)(r1 + 0)\nexit"}, line: 101, msg: []string{"modified ctx ptr R1 off=4"}, noVerifier: true},
		{name: "mod by constant zero", main: "w0 = 1\nw0 %= 0\nexit", line: 2, msg: []string{"div by zero"}, noVerifier: true},
		{
			name: "unreachable instructions",
			main: "r0 = 0\nexit\nr0 = r7\nexit",
			line: 3, msg: []string{"unreachable instruction in main"}, noVerifier: true,
		},
		{
			name: "r0 read after a tail call",
			main: "r2 = map[a]\nr3 = 0\ncall bpf_tail_call\nexit",
			line: 4, msg: []string{"r0", "R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "r0 copied after a tail call",
			main: "r2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr1 = r0\nr0 = 0\nexit",
			line: 4, msg: []string{"R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "r1 read after a helper call",
			main: "call bpf_ktime_get_ns\nr0 = *(u32 *)(r1 + 0)\nexit",
			line: 2, msg: []string{"r1", "R1 !read_ok"}, noVerifier: true,
		},
		{
			name: "r1 passed to a tail call after a helper call",
			main: "call bpf_ktime_get_ns\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
			line: 4, msg: []string{"R1 !read_ok"}, noVerifier: true,
		},
		{
			name: "r3 read after a tail call",
			main: "r2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr3 += 1\nr0 = 0\nexit",
			line: 4, msg: []string{"R3 !read_ok"}, noVerifier: true,
		},
		{
			name: "r5 read after a subprogram call",
			main: "r5 = 1\ncall sub\nr0 = r5\nexit",
			subs: map[string]string{"sub": "r0 = 0\nexit"},
			line: 3, msg: []string{"R5 !read_ok"}, noVerifier: true,
		},
		{
			name: "exit without r0",
			main: "exit",
			line: 1, msg: []string{"R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "r0 set on one path only",
			main: "if r1 == 0 goto out\nr0 = 0\nout: exit",
			line: 3, msg: []string{"R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "uninitialised r6 compared",
			main: "if r6 > 0 goto +0\nr0 = 0\nexit",
			line: 1, msg: []string{"R6 !read_ok"}, noVerifier: true,
		},
		{
			name: "subprogram reads a callee-saved register it was not given",
			main: "r6 = 1\ncall sub\nexit",
			subs: map[string]string{"sub": "r0 = r6\nexit"},
			line: subLine, msg: []string{"R6 !read_ok"}, noVerifier: true,
		},
		{
			// The subprogram's exit is allowed (only the main function's
			// return value is checked); its caller reading R0 is not.
			name: "r0 a subprogram left unset, read by the caller",
			main: "call sub\nexit",
			subs: map[string]string{"sub": "r1 = 0\nexit"},
			line: 2, msg: []string{"R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "r0 unset through two subprograms",
			main: "call a\nr1 = r0\nr0 = 0\nexit",
			subs: map[string]string{"a": "call b\nexit", "b": "r1 = 0\nexit"},
			line: 2, msg: []string{"R0 !read_ok"}, noVerifier: true,
		},
		{
			name: "R2 is not a map",
			main: "r2 = 0\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
			line: 3, msg: []string{"tail call at ", "+2 (line 3): R2 does not hold a prog array"},
		},
		{
			name: "R2 a map on one path only",
			main: "r2 = 0\nif r1 == 0 goto +2\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
			line: 5, msg: []string{"+5 (line 5): R2 does not hold a prog array"}, noVerifier: true,
		},
		{
			name: "unknown map",
			main: "r2 = map[nope]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit",
			line: 1, msg: []string{`unknown map "nope"`},
		},
		{
			name: "falls off the end",
			main: "r0 = 0",
			line: 1, msg: []string{"falls off"},
		},
		{
			name: "falls off the end after a call",
			main: "r0 = 0\ncall bpf_ktime_get_ns",
			line: 2, msg: []string{"falls off"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps := mkMaps(t, map[string]uint32{"a": 4})
			p := newProg(t, "main", tt.main, tt.subs)
			_, err := prog.FixupProgram(p, maps, prog.FixupOptions{Kernel: tt.kernel})
			var pe *prog.PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a PosError", err)
			}
			if pe.Line != tt.line {
				t.Errorf("error at line %d, want %d: %v", pe.Line, tt.line, err)
			}
			for _, m := range tt.msg {
				if !strings.Contains(pe.Msg, m) {
					t.Errorf("error %q does not mention %q", pe.Msg, m)
				}
			}
			_, err = prog.FixupProgram(p, maps, prog.FixupOptions{NoVerifier: true})
			if tt.noVerifier && err != nil {
				t.Errorf("NoVerifier: %v", err)
			}
			if !tt.noVerifier && err == nil {
				t.Errorf("NoVerifier accepted it")
			}
		})
	}
}

// TestFixupAccepts: reads the verifier allows.
func TestFixupAccepts(t *testing.T) {
	tests := []struct {
		name string
		main string
		subs map[string]string
	}{
		{"r0 after a helper", "call bpf_ktime_get_ns\nexit", nil},
		{"r0 after a subprogram", "call sub\nexit", map[string]string{"sub": "r0 = 1\nexit"}},
		{"r6 across a helper", "r6 = r1\ncall bpf_ktime_get_ns\nr0 = *(u32 *)(r6 + 0)\nexit", nil},
		{"r6 across a tail call", "r6 = r1\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = r6\nexit", nil},
		{"fp everywhere", "r0 = r10\nexit", nil},
		{"fp in a subprogram", "call sub\nexit", map[string]string{"sub": "r0 = r10\nexit"}},
		{"arguments to a subprogram", "r5 = 1\ncall sub\nexit", map[string]string{"sub": "r0 = r5\nr0 += r1\nexit"}},
		{"mov writes without reading", "r0 = 1\nw0 = 2\nexit", nil},
		{"loop", "r0 = 0\nloop: r0 += 1\nif r0 < 10 goto loop\nexit", nil},
		// ctx: moved and back, arithmetic never dereferenced, a 32-bit
		// copy (a scalar for root), a register store, the pointer minus
		// itself, ctx reloaded from a spill (not followed).
		{"ctx moved and back", "r2 = r1\nr2 += 8\nr2 -= 8\nr0 = *(u32 *)(r2 + 4)\nexit", nil},
		{"ctx arithmetic kept", "r2 = r1\nr2 += 8\nr0 = 0\nexit", nil},
		{"32-bit copy of ctx", "w2 = w1\nw2 += 1\nr0 = 0\nexit", nil},
		{"register stored through ctx", "r2 = 1\n*(u32 *)(r1 + 0) = r2\nr0 = 0\nexit", nil},
		{"ctx minus ctx", "r2 = r1\nr2 -= r1\nr0 = r2\nexit", nil},
		// v6.4 on: an immediate may be stored through ctx.
		{"immediate stored through ctx (v6.18)", "*(u32 *)(r1 + 0) = 1\nr0 = 0\nexit", nil},
		// An amount tailsim does not know, which the verifier may
		// (here a tnum: r2 & 0 is 0): not followed, not refused.
		{"ctx plus an unknown amount", "r2 = *(u32 *)(r1 + 0)\nr2 &= 0\nr1 += r2\nr0 = *(u32 *)(r1 + 0)\nexit", nil},
		// Minus what may be a pointer tailsim does not follow (the
		// caller's stack): root may subtract pointers.
		{"unknown minus ctx", "r2 = r10\nr2 += -8\ncall sub\nexit", map[string]string{"sub": "r2 -= r1\nr0 = 0\nexit"}},
		{"ctx through a spill", "*(u64 *)(r10 - 8) = r1\nr1 = *(u64 *)(r10 - 8)\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maps := mkMaps(t, map[string]uint32{"a": 4})
			p := newProg(t, "main", tt.main, tt.subs)
			if _, err := prog.FixupProgram(p, maps, prog.FixupOptions{}); err != nil {
				t.Errorf("FixupProgram: %v", err)
			}
		})
	}
}

func TestFixupNoVerifierWithoutMap(t *testing.T) {
	p := newProg(t, "main", "r2 = 0\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", nil)
	_, err := prog.FixupProgram(p, nil, prog.FixupOptions{NoVerifier: true})
	if err == nil || !strings.Contains(err.Error(), "no map") {
		t.Errorf("error %v, want one about the missing map", err)
	}
}

// TestFixupMapLimit: used_maps holds 64 (MAX_USED_MAPS); the last one is map
// index 63 in the patched imm.
func TestFixupMapLimit(t *testing.T) {
	for _, n := range []int{64, 65} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sizes := map[string]uint32{}
			var b strings.Builder
			for i := range n {
				name := fmt.Sprintf("m%02d", i)
				sizes[name] = 1
				fmt.Fprintf(&b, "r2 = map[%s]\n", name)
			}
			b.WriteString("r3 = 0\ncall bpf_tail_call\nr0 = 0\nexit\n")
			p := newProg(t, "main", b.String(), nil)
			fx, err := prog.FixupProgram(p, mkMaps(t, sizes), prog.FixupOptions{})
			if n > prog.MaxUsedMaps {
				var pe *prog.PosError
				if !errors.As(err, &pe) || pe.Line != 65 || !strings.Contains(pe.Msg, "64 maps") {
					t.Fatalf("error %v, want one at line 65 about 64 maps", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := fx.Sites[0]
			if len(fx.UsedMaps) != 64 || s.MapIndex != 63 || s.ImmMap.Name != "m63" {
				t.Fatalf("%d used maps, site map index %d (%s)", len(fx.UsedMaps), s.MapIndex, s.ImmMap.Name)
			}
			// Direct (key 0 < 1): poke 0 + 1 in bits 16–31, 63 in bits 0–7.
			if imm, err := s.Imm(prog.Linux618Series); err != nil || uint32(imm) != 0x0001_003f {
				t.Errorf("Imm(patched) = %#x, %v; want 0x1003f", uint32(imm), err)
			}
		})
	}
}

// TestFixupPokeLimit: the poke table holds 1024 direct tail calls.
func TestFixupPokeLimit(t *testing.T) {
	for _, n := range []int{1024, 1025} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var b strings.Builder
			b.WriteString("r6 = r1\n")
			for range n {
				b.WriteString("r1 = r6\nr2 = map[a]\nr3 = 0\ncall bpf_tail_call\n")
			}
			b.WriteString("r0 = 0\nexit\n")
			p := newProg(t, "main", b.String(), nil)
			maps := mkMaps(t, map[string]uint32{"a": 1})
			fx, err := prog.FixupProgram(p, maps, prog.FixupOptions{})
			if n > prog.MaxPokes {
				// The 1025th call is on line 1 + 1024*4 + 4.
				var pe *prog.PosError
				if !errors.As(err, &pe) || pe.Line != 1+1024*4+4 || !strings.Contains(pe.Msg, "1024") {
					t.Fatalf("error %v, want one at line %d about 1024 direct calls", err, 1+1024*4+4)
				}
				// Without direct calls there is no limit.
				if _, err := prog.FixupProgram(p, maps, prog.FixupOptions{NoDirect: true}); err != nil {
					t.Errorf("NoDirect: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			last := fx.Sites[len(fx.Sites)-1]
			if last.PokeIndex != 1023 {
				t.Fatalf("last poke index %d, want 1023", last.PokeIndex)
			}
			for v, want := range map[prog.Kernel]uint32{prog.Linux618: 1024, prog.Linux618Series: 1024 << 16} {
				if imm, err := last.Imm(v); err != nil || uint32(imm) != want {
					t.Errorf("Imm(%v) = %#x, %v; want %#x", v, uint32(imm), err, want)
				}
			}
			for i, s := range fx.Sites {
				if s.PokeIndex != i {
					t.Fatalf("site %d has poke %d", i, s.PokeIndex)
				}
			}
		})
	}
}

// TestWorldFix runs the fix-up over a world and names the failing program.
func TestWorldFix(t *testing.T) {
	a, _ := prog.NewProgArray("a", 2)
	good := newProg(t, "good", "r2 = map[a]\nr3 = 1\ncall bpf_tail_call\nr0 = 0\nexit", nil)
	bad := newProg(t, "bad", "exit", nil)
	w := &prog.World{Arrays: []*prog.ProgArray{a}, Progs: []*prog.Program{good}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Fatal(err)
	}
	if fx := w.Fixups[good]; fx == nil || len(fx.Sites) != 1 || !fx.Sites[0].Direct {
		t.Errorf("fix-up of good: %+v", fx)
	}
	if w.Array("a") != a || w.Prog("good") != good || w.Array("b") != nil || w.Prog("bad") != nil {
		t.Errorf("World lookups wrong")
	}
	w.Progs = append(w.Progs, bad)
	err := w.Fix(prog.FixupOptions{})
	var pe *prog.PosError
	if err == nil || !strings.HasPrefix(err.Error(), "program bad: ") || !errors.As(err, &pe) {
		t.Errorf("error %v, want it to name program bad and wrap a PosError", err)
	}
	sub := newProg(t, "p", "r1 = 1 ll\ncall s\nexit", map[string]string{"s": "r0 = 0\nr1 = 2 ll\nr0 = 1\nexit"})
	for _, tt := range []struct {
		fn, insn int
		want     string
	}{
		{0, 0, "p+0 (line 1)"},
		{0, 1, "p+2 (line 2)"},     // after a two-slot ld_imm64
		{1, 3, "p/s+4 (line 103)"}, // newProg numbers subprograms from 100
	} {
		if got := sub.Loc(tt.fn, tt.insn).String(); got != tt.want {
			t.Errorf("Loc(%d, %d) = %q, want %q", tt.fn, tt.insn, got, tt.want)
		}
	}
	if got := (prog.Loc{Prog: "q", Slot: 3}).String(); got != "q+3" {
		t.Errorf("a Loc without a line = %q", got)
	}
	if !slices.Equal(names(w.Arrays), []string{"a"}) {
		t.Errorf("arrays changed")
	}
}

// For a poisoned site the verifier keeps the map of the path it explores
// last: it follows a branch's fall-through first and the jump target
// after, so the map loaded on the jump-target path is the one whose index
// goes into the patched imm.
func TestPoisonedSiteKeepsLastExploredMap(t *testing.T) {
	for _, tt := range []struct {
		ft, target string
	}{{"b", "a"}, {"a", "b"}} {
		src := "r0 = *(u32 *)(r1 + 0)\nr2 = map[" + tt.target + "]\nif r0 == 0 goto t\nr2 = map[" + tt.ft + "]\nt:\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit"
		maps := mkMaps(t, map[string]uint32{"a": 4, "b": 4})
		p := newProg(t, "main", src, nil)
		fx, err := prog.FixupProgram(p, maps, prog.FixupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := fx.Sites[0]
		want := slices.IndexFunc(fx.UsedMaps, func(m prog.Map) bool { return m.MapName() == tt.target })
		if !s.Poisoned() || s.MapIndex != want || s.ImmMap.Name != tt.target {
			t.Errorf("target path loads %s: map index %d (%s), want %d", tt.target, s.MapIndex, s.ImmMap.Name, want)
		}
		imm, _ := s.Imm(prog.Linux618Series)
		if imm != int32(0x100|want) {
			t.Errorf("imm %#x, want %#x", imm, 0x100|want)
		}
	}
}

// bigProgram is n instructions of ALU work with a forward branch every
// 100 (so that the analysis joins states) and a tail call at the end.
func bigProgram(n int) string {
	var b strings.Builder
	b.WriteString("r6 = r1\nr0 = 0\n")
	for i := range n / 100 {
		fmt.Fprintf(&b, "if r0 > 1000000 goto l%d\n", i)
		for range 9 {
			b.WriteString("r0 += 1\n")
		}
		fmt.Fprintf(&b, "l%d:\n", i)
		for range 90 {
			b.WriteString("r0 += 1\n")
		}
	}
	b.WriteString("r1 = r6\nr2 = map[jt]\nr3 = 1\ncall bpf_tail_call\nr0 = 0\nexit\n")
	return b.String()
}

// The analysis is linear in the program's size (it was quadratic: 40 000
// instructions took 78 s). make bench-fixup reports it; a 100 000-
// instruction program takes ~0.1 s.
func BenchmarkFixup100k(b *testing.B) {
	p := newProg(b, "big", bigProgram(100_000), nil)
	maps := mkMaps(b, map[string]uint32{"jt": 4})
	for b.Loop() {
		if _, err := prog.FixupProgram(p, maps, prog.FixupOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A program over the kernel's size limit is refused at its first line;
// one at the limit gets past the size check (to the next error, an
// unknown map, which spares the test the analysis of a million
// instructions).
func TestFixupSizeLimit(t *testing.T) {
	tail := fn(t, "tail", "r1 = r6\nr2 = map[nosuch]\nr3 = 1\ncall bpf_tail_call\nr0 = 0\nexit\n", 1).Insns // 7 slots
	add := fn(t, "add", "r0 += 1\n", 1).Insns[0]
	for _, tc := range []struct {
		pad  int
		want string
	}{{0, `unknown map "nosuch"`}, {1, "big has 1000001 instructions, more than the kernel's limit of 1000000"}} {
		insns := make([]prog.Instruction, 0, prog.MaxInsns+tc.pad)
		insns = append(insns, fn(t, "head", "r6 = r1\nr0 = 0\n", 1).Insns...)
		for range prog.MaxInsns - 9 + tc.pad {
			insns = append(insns, add)
		}
		insns = append(insns, tail...)
		p, err := prog.NewProgram("big", "xdp", &prog.Function{Name: "big", Insns: insns, Line: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = prog.FixupProgram(p, nil, prog.FixupOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d slots: %v, want %q", prog.MaxInsns+tc.pad, err, tc.want)
		}
	}
}

// The verifier's guard around a division or modulo by a register, and
// every jump moved with it: over it, to it (its label lands on the
// guard), and back from after it.
func TestDivModGuard(t *testing.T) {
	p := newProg(t, "main", `r0 = 10
r2 = 0
if r2 > 5 goto over
div:
r0 /= r2
w3 = 7
w3 %= w2
if r3 == 0 goto div
over:
exit`, nil)
	w := &prog.World{Progs: []*prog.Program{p}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ins := range p.Funcs[0].Insns {
		got = append(got, asm.Format(ins))
	}
	want := []string{
		"r0 = 10", "r2 = 0", "if r2 > 5 goto over",
		"if r2 != 0 goto +2", "w0 ^= w0", "goto +1", "r0 /= r2",
		"w3 = 7",
		"if w2 == 0 goto +2", "w3 %= w2", "goto +1", "w3 = w3",
		"if r3 == 0 goto div",
		"exit",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rewritten program (-want +got):\n%s", d)
	}
	// The displacements are what the JITs use: over to exit, back to
	// the guard.
	if insns := p.Funcs[0].Insns; insns[2].Off != 10 || insns[12].Off != -10 {
		t.Errorf("offsets %d and %d, want 10 and -10", insns[2].Off, insns[12].Off)
	}
	if labels := p.Funcs[0].Insns[3].Labels; len(labels) != 1 || labels[0] != "div" {
		t.Errorf("the label div is on %v, want the guard", labels)
	}
}

// bpf_jiffies64() becomes a load of jiffies in the program every backend
// runs; the program is still verified as written (R1 is dead after the
// call).
func TestJiffiesInlined(t *testing.T) {
	p := newProg(t, "main", "r6 = 5\ncall bpf_jiffies64\nr0 += r6\nexit", nil)
	w := &prog.World{Progs: []*prog.Program{p}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Fatal(err)
	}
	ins := p.Funcs[0].Insns
	if len(ins) != 5 || !ins[1].OpCode.IsLoadImm64() || uint64(ins[1].Imm) != prog.JiffiesAddr || !ins[2].OpCode.IsMemLoad() || ins[2].Src != prog.R0 {
		t.Errorf("rewritten: %v", ins)
	}
	bad := newProg(t, "main", "r1 = 5\ncall bpf_jiffies64\nr0 = r1\nexit", nil)
	w = &prog.World{Progs: []*prog.Program{bad}}
	if err := w.Fix(prog.FixupOptions{}); err == nil || !strings.Contains(err.Error(), "R1 !read_ok") {
		t.Errorf("reading R1 after the call: %v", err)
	}
}

// bpf_get_smp_processor_id() is inlined for x86-64 only: a per-CPU load
// of cpu_number, three instructions where the call was; arm64 and the
// model alone keep the call (arm64's JIT inlines it itself).
func TestSmpProcessorIDInlined(t *testing.T) {
	src := "r6 = 5\ncall bpf_get_smp_processor_id\nr0 += r6\nexit"
	for _, arch := range []string{"x86_64", "arm64", ""} {
		p := newProg(t, "main", src, nil)
		w := &prog.World{Progs: []*prog.Program{p}}
		if err := w.Fix(prog.FixupOptions{Arch: arch}); err != nil {
			t.Fatal(err)
		}
		ins := p.Funcs[0].Insns
		if arch != "x86_64" {
			if len(ins) != 4 || !ins[1].IsHelperCall() {
				t.Errorf("%q: %v, want the call kept", arch, ins)
			}
			continue
		}
		if len(ins) != 6 || ins[1].OpCode != prog.ALU64(prog.OpMov, prog.SourceK) || uint64(ins[1].Imm) != prog.X86CPUNumber ||
			!ins[2].IsMovPercpuAddr() || ins[2].Dst != prog.R0 || ins[2].Src != prog.R0 ||
			ins[3].OpCode != prog.LoadMem(prog.SizeW) || ins[3].Src != prog.R0 || ins[3].Dst != prog.R0 {
			t.Errorf("x86_64: rewritten %v", ins)
		}
		// What the load reads: CPU 0's cpu_number, through this CPU's
		// offset, which this_cpu_off (read at the symbol plus the
		// offset) holds.
		off, ok := prog.KernelRead(prog.X86ThisCPUOff+prog.X86PerCPUOffset(), 8)
		cpu, ok2 := prog.KernelRead(prog.X86CPUNumber+prog.X86PerCPUOffset(), 4)
		if !ok || !ok2 || binary.LittleEndian.Uint64(off) != prog.X86PerCPUOffset() || binary.LittleEndian.Uint32(cpu) != 0 {
			t.Errorf("kernel data: this_cpu_off % x, cpu_number % x", off, cpu)
		}
		if _, ok := prog.KernelRead(prog.X86CPUNumber+prog.X86PerCPUOffset()+2, 4); ok {
			t.Errorf("a read past cpu_number's 4 bytes succeeds")
		}
	}
	bad := newProg(t, "main", "r2 = 5\ncall bpf_get_smp_processor_id\nr0 = r2\nexit", nil)
	w := &prog.World{Progs: []*prog.Program{bad}}
	if err := w.Fix(prog.FixupOptions{Arch: "x86_64"}); err == nil || !strings.Contains(err.Error(), "R2 !read_ok") {
		t.Errorf("reading R2 after the call: %v", err)
	}
}

// A subprogram may exit without setting R0 when its caller overwrites it,
// as clang compiles a static function whose result is ignored.
func TestSubprogramMayLeaveR0Unset(t *testing.T) {
	p := newProg(t, "main", "call sub\nr0 = 1001\nexit", map[string]string{"sub": "r1 = 0\nexit"})
	w := &prog.World{Progs: []*prog.Program{p}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Errorf("refused: %v", err)
	}
}

// A key computed by a division is never constant (v6.18 tracks no value
// through one), before and after the verifier's guard: the site is
// indirect whatever the dividend (review: 0 made it direct).
func TestKeyByDivisionNotDirect(t *testing.T) {
	for _, k := range []int{0, 6} {
		p := newProg(t, "main", fmt.Sprintf("r3 = %d\nr4 = 3\nr3 /= r4\nr2 = map[jt]\ncall bpf_tail_call\nr0 = 0\nexit", k), nil)
		w := &prog.World{Progs: []*prog.Program{p}, Arrays: []*prog.ProgArray{mkMaps(t, map[string]uint32{"jt": 4})["jt"]}}
		if err := w.Fix(prog.FixupOptions{}); err != nil {
			t.Fatal(err)
		}
		if s := w.Fixups[p].Sites[0]; s.Direct || s.KeyConst {
			t.Errorf("r3 = %d / 3: the site is direct (%v) or its key constant (%v)", k, s.Direct, s.KeyConst)
		}
	}
}

// array_map_gen_lookup() replaces a lookup on a known array map, with the
// index mask for an unprivileged program and a multiply for an element
// size that is not a power of two; two maps reaching R1 keep the call.
func TestArrayLookupInlined(t *testing.T) {
	src := "*(u32 *)(r10 - 4) = 1\nr2 = r10\nr2 += -4\nr1 = map[vals]\ncall bpf_map_lookup_elem\nr0 = 0\nexit"
	for _, tc := range []struct {
		valueSize    uint32
		unprivileged bool
		want         []string
	}{
		{8, false, []string{"r1 += 304", "r0 = *(u32 *)(r2 + 0)", "if r0 >= 5 goto +3", "r0 <<= 3", "r0 += r1", "goto +1", "r0 = 0"}},
		{12, true, []string{"r1 += 304", "r0 = *(u32 *)(r2 + 0)", "if r0 >= 5 goto +4", "w0 &= 7", "r0 <<= 4", "r0 += r1", "goto +1", "r0 = 0"}},
		{24, false, []string{"r1 += 304", "r0 = *(u32 *)(r2 + 0)", "if r0 >= 5 goto +3", "r0 *= 24", "r0 += r1", "goto +1", "r0 = 0"}},
	} {
		p := newProg(t, "main", src, nil)
		if tc.unprivileged {
			p.Type = "socket_filter"
		}
		vals, err := prog.NewArrayMap("vals", 5, tc.valueSize)
		if err != nil {
			t.Fatal(err)
		}
		w := &prog.World{Layout: prog.DefaultLayout, Progs: []*prog.Program{p}, Maps: []*prog.ArrayMap{vals}}
		if err := w.Fix(prog.FixupOptions{Unprivileged: tc.unprivileged}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ins := range p.Funcs[0].Insns[4 : 4+len(tc.want)] {
			got = append(got, asm.Format(ins))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("value_size %d, unprivileged %v (-want +got):\n%s", tc.valueSize, tc.unprivileged, diff)
		}
	}
	// Two maps reach R1: the verifier does not know which, and calls.
	two := "r1 = map[vals]\nif r6 == 0 goto skip\nr1 = map[more]\nskip: *(u32 *)(r10 - 4) = 1\nr2 = r10\nr2 += -4\ncall bpf_map_lookup_elem\nr0 = 0\nexit"
	p := newProg(t, "main", "r6 = *(u32 *)(r1 + 0)\n"+two, nil)
	a, _ := prog.NewArrayMap("vals", 5, 8)
	b, _ := prog.NewArrayMap("more", 5, 8)
	w := &prog.World{Layout: prog.DefaultLayout, Progs: []*prog.Program{p}, Maps: []*prog.ArrayMap{a, b}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(p.Funcs[0].Insns, func(ins prog.Instruction) bool { return ins.IsHelperCall() && ins.Imm == prog.HelperMapLookup }) {
		t.Errorf("a lookup two maps reach was inlined")
	}
}

// What the verifier refuses of array maps: a tail call through one, and
// a map_value offset past the value.
func TestArrayMapRefusals(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"r2 = map[vals]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit", "cannot pass map_type 2 into func bpf_tail_call#12"},
		{"r1 = map_value[one] + 8\nr0 = 0\nexit", "invalid access to map value pointer, value_size=8 off=8"},
		{"r1 = map_value[vals]\nr0 = 0\nexit", "direct value access needs an array of one element, not 2"},
		{"*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[jt]\ncall bpf_map_lookup_elem\nr0 = 0\nexit", "cannot pass map_type 3 into func bpf_map_lookup_elem#1"},
	} {
		p := newProg(t, "main", tc.src, nil)
		vals, _ := prog.NewArrayMap("vals", 2, 8)
		one, _ := prog.NewArrayMap("one", 1, 8)
		jt, _ := prog.NewProgArray("jt", 2)
		w := &prog.World{Layout: prog.DefaultLayout, Progs: []*prog.Program{p}, Maps: []*prog.ArrayMap{vals, one}, Arrays: []*prog.ProgArray{jt}}
		if err := w.Fix(prog.FixupOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}

// Several rewrites in one function: a division's guard before two
// lookups moves them, and each is still found and inlined.
func TestRewritesInOneFunction(t *testing.T) {
	src := `r6 = *(u32 *)(r1 + 0)
r7 = 10
r7 /= r6
*(u32 *)(r10 - 4) = 1
r2 = r10
r2 += -4
r1 = map[vals]
call bpf_map_lookup_elem
*(u32 *)(r10 - 8) = 2
r2 = r10
r2 += -8
r1 = map[vals]
call bpf_map_lookup_elem
r0 = 0
exit`
	p := newProg(t, "main", src, nil)
	vals, _ := prog.NewArrayMap("vals", 4, 24)
	w := &prog.World{Layout: prog.DefaultLayout, Progs: []*prog.Program{p}, Maps: []*prog.ArrayMap{vals}}
	if err := w.Fix(prog.FixupOptions{}); err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, ins := range p.Funcs[0].Insns {
		text = append(text, asm.Format(ins))
	}
	all := strings.Join(text, "\n")
	if strings.Contains(all, "call bpf_map_lookup_elem") || strings.Count(all, "r0 *= 24") != 2 || !strings.Contains(all, "if r6 != 0 goto +2") {
		t.Errorf("rewritten:\n%s", all)
	}
}

func mustImm(t *testing.T, s *prog.TailCallSite, k prog.Kernel) int32 {
	t.Helper()
	imm, err := s.Imm(k)
	if err != nil {
		t.Fatalf("Imm(%v): %v", k, err)
	}
	return imm
}
