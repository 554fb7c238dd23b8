package prog

import (
	"errors"
	"runtime"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

func newArray(t *testing.T, max uint32) *ProgArray {
	t.Helper()
	a, err := NewProgArray("jmp", max)
	if err != nil {
		t.Fatalf("NewProgArray(%d): %v", max, err)
	}
	return a
}

func applyAll(es []Effect) {
	for _, e := range es {
		e.Apply()
	}
}

func TestNewProgArray(t *testing.T) {
	if _, err := NewProgArray("zero", 0); !errors.Is(err, ErrEINVAL) {
		t.Errorf("max_entries 0: error %v, want EINVAL", err)
	}
	for _, max := range []uint32{1, 11, 0xffffffff} {
		a := newArray(t, max)
		if a.MaxEntries != max || len(a.Populated()) != 0 {
			t.Errorf("NewProgArray(%d): MaxEntries %d, populated %v", max, a.MaxEntries, a.Populated())
		}
	}
}

// TestSparse: max_entries 0xffffffff would be 32 GiB of pointers (twice that
// with the cached half) if stored densely.
func TestSparse(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := newArray(t, 0xffffffff)
	p := &Program{Name: "p", Type: "xdp"}
	for _, i := range []uint32{0, 0x7fffffff, 0xfffffffe} {
		es, err := a.Update(i, p)
		if err != nil {
			t.Fatalf("Update(%#x): %v", i, err)
		}
		applyAll(es)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("a max_entries 0xffffffff array with 3 programs allocated %d bytes", grew)
	}
	if diff := gocmp.Diff([]uint32{0, 0x7fffffff, 0xfffffffe}, a.Populated()); diff != "" {
		t.Errorf("Populated (-want +got):\n%s", diff)
	}
	if a.Ptr(0xfffffffe) != p || a.Cached(0xfffffffe) != p || a.Poked(0xfffffffe) != p {
		t.Errorf("slot 0xfffffffe not filled in every half")
	}
	if a.Ptr(1) != nil || a.Ptr(0xffffffff) != nil {
		t.Errorf("unfilled slots are not empty")
	}
}

// TestUpdateDeleteErrors follows prog_array_map_update_elem / fd_array_map_delete_elem
// (docs/kernel.md §9): index >= max_entries is E2BIG, checked before
// compatibility; deleting an empty slot is ENOENT; a program of another type
// than the owner's is EINVAL.
func TestUpdateDeleteErrors(t *testing.T) {
	xdp := &Program{Name: "x", Type: "xdp"}
	xdp2 := &Program{Name: "x2", Type: "xdp"}
	tc := &Program{Name: "t", Type: "sched_cls"}
	type op struct {
		del   bool
		index uint32
		prog  *Program
		want  error
	}
	tests := []struct {
		name string
		max  uint32
		ops  []op
	}{
		{"last index", 3, []op{{index: 2, prog: xdp}}},
		{"index = max", 3, []op{{index: 3, prog: xdp, want: ErrE2BIG}}},
		{"index max u32", 3, []op{{index: 0xffffffff, prog: xdp, want: ErrE2BIG}}},
		{"max u32 entries, last index", 0xffffffff, []op{{index: 0xfffffffe, prog: xdp}}},
		{"max u32 entries, index u32 max", 0xffffffff, []op{{index: 0xffffffff, prog: xdp, want: ErrE2BIG}}},
		{"max u32 entries, delete", 0xffffffff, []op{
			{index: 0xfffffffe, prog: xdp}, {del: true, index: 0xfffffffe}, {del: true, index: 0xffffffff, want: ErrE2BIG}}},
		{"delete empty", 3, []op{{del: true, index: 1, want: ErrENOENT}}},
		{"delete out of range before empty", 3, []op{{del: true, index: 3, want: ErrE2BIG}}},
		{"delete twice", 3, []op{{index: 1, prog: xdp}, {del: true, index: 1}, {del: true, index: 1, want: ErrENOENT}}},
		{"owner fixed by first", 3, []op{{index: 0, prog: xdp}, {index: 1, prog: tc, want: ErrEINVAL}, {index: 1, prog: xdp2}}},
		{"owner other way round", 3, []op{{index: 0, prog: tc}, {index: 0, prog: xdp, want: ErrEINVAL}}},
		{"owner survives delete", 3, []op{{index: 0, prog: tc}, {del: true, index: 0}, {index: 0, prog: xdp, want: ErrEINVAL}}},
		{"E2BIG does not fix the owner", 3, []op{{index: 5, prog: tc, want: ErrE2BIG}, {index: 0, prog: xdp}, {index: 1, prog: tc, want: ErrEINVAL}}},
		{"replace", 3, []op{{index: 0, prog: xdp}, {index: 0, prog: xdp2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArray(t, tt.max)
			for i, o := range tt.ops {
				var es []Effect
				var err error
				if o.del {
					es, err = a.Delete(o.index)
				} else {
					es, err = a.Update(o.index, o.prog)
				}
				if !errors.Is(err, o.want) || (err != nil) != (o.want != nil) {
					t.Fatalf("op %d: error %v, want %v", i, err, o.want)
				}
				if err != nil {
					if es != nil {
						t.Errorf("op %d: effects %v with error", i, es)
					}
					continue
				}
				applyAll(es)
				want := o.prog
				if o.del {
					want = nil
				}
				if a.Ptr(o.index) != want || a.Cached(o.index) != want || a.Poked(o.index) != want {
					t.Errorf("op %d: slot %d is %v/%v/%v, want %v", i, o.index, a.Ptr(o.index), a.Cached(o.index), a.Poked(o.index), want)
				}
			}
		})
	}
}

// TestEffects: an update or delete is ptrs, then the cached slot, then the
// pokes in the kernel's order (docs/kernel.md §3); each step changes only its
// own part, and no step leaves the bypass a nop with the target one too.
func TestEffects(t *testing.T) {
	a := newArray(t, 4)
	old := &Program{Name: "old", Type: "xdp"}
	nu := &Program{Name: "new", Type: "xdp"}
	applyAll(must(a.Update(2, old)))

	type state struct {
		ptr, cached, poked *Program
		bypassed           bool
	}
	look := func() state { return state{a.Ptr(2), a.Cached(2), a.Poked(2), a.Bypassed(2)} }
	tests := []struct {
		name    string
		effects func() ([]Effect, error)
		newP    *Program
		kinds   []EffectKind
		after   []state // after applying 1, 2, ... steps
	}{
		{"replace", func() ([]Effect, error) { return a.Update(2, nu) }, nu, []EffectKind{EffectPtr, EffectCached, EffectTarget},
			[]state{{nu, old, old, false}, {nu, nu, old, false}, {nu, nu, nu, false}}},
		{"delete", func() ([]Effect, error) { return a.Delete(2) }, nil, []EffectKind{EffectPtr, EffectCached, EffectBypass, EffectTarget},
			[]state{{nil, nu, nu, false}, {nil, nil, nu, false}, {nil, nil, nu, true}, {nil, nil, nil, true}}},
		{"refill", func() ([]Effect, error) { return a.Update(2, old) }, old, []EffectKind{EffectPtr, EffectCached, EffectTarget, EffectBypass},
			[]state{{old, nil, nil, true}, {old, old, nil, true}, {old, old, old, true}, {old, old, old, false}}},
	}
	for _, tt := range tests {
		prev := look()
		es, err := tt.effects()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(es) != len(tt.kinds) {
			t.Fatalf("%s: %d effects, want %d", tt.name, len(es), len(tt.kinds))
		}
		if look() != prev {
			t.Errorf("%s: computing the effects changed the array", tt.name)
		}
		for i, e := range es {
			if e.Kind != tt.kinds[i] || e.Array != a || e.Index != 2 || e.Old != prev.ptr || e.New != tt.newP {
				t.Errorf("%s: effect %d = %+v, want kind %v old %v new %v", tt.name, i, e, tt.kinds[i], prev.ptr, tt.newP)
			}
			e.Apply()
			got := look()
			if got != tt.after[i] {
				t.Errorf("%s: after step %d (%v): %+v, want %+v", tt.name, i+1, e, got, tt.after[i])
			}
			if !got.bypassed && got.poked == nil {
				t.Errorf("%s: after step %d the bypass and the target are both nops", tt.name, i+1)
			}
		}
	}
	if got, want := []string{EffectPtr.String(), EffectCached.String(), EffectTarget.String(), EffectBypass.String()}, []string{"ptrs", "cached", "target", "bypass"}; !gocmp.Equal(got, want) {
		t.Errorf("effect names %v, want %v", got, want)
	}
}

// A clone keeps the slots as they were when it was taken.
func TestClone(t *testing.T) {
	a := newArray(t, 4)
	leaf := &Program{Name: "leaf", Type: "xdp"}
	applyAll(must(a.Update(1, leaf)))
	c := a.Clone()
	applyAll(must(a.Delete(1)))
	if c.Ptr(1) != leaf || c.Cached(1) != leaf || c.Poked(1) != leaf || c.Bypassed(1) || c.Name != a.Name || c.MaxEntries != 4 {
		t.Errorf("clone after a delete: ptrs %v cached %v poked %v", c.Ptr(1), c.Cached(1), c.Poked(1))
	}
	if a.Ptr(1) != nil {
		t.Errorf("the array kept its slot")
	}
}

func must(es []Effect, err error) []Effect {
	if err != nil {
		panic(err)
	}
	return es
}

func TestKernelAndReasonNames(t *testing.T) {
	for _, s := range KernelNames() {
		v, err := ParseKernel(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseKernel(%q) = %v, %v", s, v, err)
		}
	}
	if _, err := ParseKernel("next"); err == nil {
		t.Errorf("ParseKernel(next) succeeded")
	}
	for _, tt := range []struct {
		s string
		r Reason
	}{{"bounds", FallBounds}, {"limit", FallLimit}, {"empty", FallEmpty}} {
		r, ok := ParseReason(tt.s)
		if !ok || r != tt.r || r.String() != tt.s {
			t.Errorf("ParseReason(%q) = %v, %v; want %v", tt.s, r, ok, tt.r)
		}
	}
	if _, ok := ParseReason(""); ok {
		t.Errorf("ParseReason(\"\") succeeded")
	}
}

func TestHelpers(t *testing.T) {
	// IDs from enum bpf_func_id in include/uapi/linux/bpf.h.
	tests := []struct {
		name string
		id   int32
	}{
		{"map_lookup_elem", 1}, {"map_update_elem", 2}, {"map_delete_elem", 3},
		{"ktime_get_ns", 5}, {"get_prandom_u32", 7}, {"get_smp_processor_id", 8},
		{"tail_call", 12}, {"get_current_pid_tgid", 14}, {"get_numa_node_id", 42},
	}
	for _, tt := range tests {
		for _, n := range []string{tt.name, "bpf_" + tt.name} {
			h, ok := HelperByName(n)
			if !ok || h.ID != tt.id {
				t.Errorf("HelperByName(%q) = %d, %v; want %d", n, h.ID, ok, tt.id)
			}
		}
		if h, ok := HelperByID(tt.id); !ok || h.Name != tt.name {
			t.Errorf("HelperByID(%d) = %q, %v; want %q", tt.id, h.Name, ok, tt.name)
		}
	}
	if _, ok := HelperByName("bpf_no_such_helper"); ok {
		t.Errorf("unknown helper found")
	}
	seen := map[uint64]bool{}
	for r := R0; r <= R5; r++ {
		v := ClobberValue(r)
		if seen[v] || v < 1<<32 {
			t.Errorf("ClobberValue(%v) = %#x: not distinct or not obviously garbage", r, v)
		}
		seen[v] = true
	}
}
