package prog

import (
	"errors"
	"fmt"
	"maps"
	"sort"
)

// Errors a prog array update or delete returns, as the kernel's errno names.
var (
	ErrE2BIG  = errors.New("E2BIG")
	ErrENOENT = errors.New("ENOENT")
	ErrEINVAL = errors.New("EINVAL")
)

// ProgArray is a BPF_MAP_TYPE_PROG_ARRAY. Slots are stored sparsely so any
// u32 max_entries costs only what is populated.
type ProgArray struct {
	Name       string
	MaxEntries uint32
	Line       int

	ptrs map[uint32]*Program
	// cached is the patched series' second half, ptrs[max_entries+i]: the
	// program whose bpf_func + tail-call entry offset is stored there.
	cached map[uint32]*Program
	// poked is what the target poke sites of the direct calls through each
	// index jump to (absent: nop); open holds the indexes whose bypass
	// poke site is a nop (absent: the bypass jumps past the call to out).
	// Outside a slot change a filled slot is poked and open, an empty one
	// neither.
	poked map[uint32]*Program
	open  map[uint32]bool
	// owner is the program type fixed by the first compatibility check.
	owner string
}

// NewProgArray creates an empty prog array; max_entries 0 is EINVAL as in
// array_map_alloc_check().
func NewProgArray(name string, maxEntries uint32) (*ProgArray, error) {
	if maxEntries == 0 {
		return nil, fmt.Errorf("prog array %s: max_entries 0: %w", name, ErrEINVAL)
	}
	return &ProgArray{Name: name, MaxEntries: maxEntries,
		ptrs: map[uint32]*Program{}, cached: map[uint32]*Program{}, poked: map[uint32]*Program{}, open: map[uint32]bool{}}, nil
}

// Ptr returns ptrs[i] (nil for empty or out of range).
func (a *ProgArray) Ptr(i uint32) *Program { return a.ptrs[i] }

// Cached returns the program whose entry the cached slot max_entries+i holds.
func (a *ProgArray) Cached(i uint32) *Program { return a.cached[i] }

// Poked returns what the target poke sites of direct calls through index i
// jump to (nil: they are nops).
func (a *ProgArray) Poked(i uint32) *Program { return a.poked[i] }

// Bypassed reports whether the bypass poke sites of direct calls through
// index i jump past the call (to its fall-through), as while the slot is
// empty.
func (a *ProgArray) Bypassed(i uint32) bool { return !a.open[i] }

// Clone is a copy of the array as it is now, which later slot changes
// leave alone: what a run found in it.
func (a *ProgArray) Clone() *ProgArray {
	c := *a
	c.ptrs, c.cached, c.poked, c.open = maps.Clone(a.ptrs), maps.Clone(a.cached), maps.Clone(a.poked), maps.Clone(a.open)
	return &c
}

// Populated returns the populated indexes in increasing order.
func (a *ProgArray) Populated() []uint32 {
	idx := make([]uint32, 0, len(a.ptrs))
	for i := range a.ptrs {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(x, y int) bool { return idx[x] < idx[y] })
	return idx
}

// Compatible applies bpf_prog_map_compatible(): the first program checked
// fixes the array's owner type.
func (a *ProgArray) Compatible(p *Program) bool {
	if a.owner == "" {
		a.owner = p.Type
	}
	return a.owner == p.Type
}

// EffectKind is one of the steps of a slot change.
type EffectKind uint8

const (
	// EffectPtr exchanges ptrs[i].
	EffectPtr EffectKind = iota // ptrs
	// EffectCached rewrites ptrs[max_entries+i] (patched series only).
	EffectCached // cached
	// EffectTarget rewrites the target poke sites of the direct calls
	// through index i (x86): a jump to the new program, or a nop.
	EffectTarget // target
	// EffectBypass rewrites their bypass poke sites: a nop once the slot
	// is filled, a jump past the call to out once it is emptied.
	EffectBypass // bypass
	// EffectMapWrite writes Bytes at Off into array map Map's values, as
	// user space writes an element (or a global) between runs. Each
	// backend keeps its own values and applies it itself.
	EffectMapWrite // map write
)

// Effect is one observable step of a slot update or delete. Applying the
// steps one at a time lets a scenario run code between them.
type Effect struct {
	Kind  EffectKind
	Array *ProgArray
	Index uint32
	Old   *Program
	New   *Program // nil for a delete
	// Map, Off and Bytes are an EffectMapWrite's.
	Map   *ArrayMap
	Off   uint32
	Bytes []byte
}

// Update checks an update of slot i the way prog_array_map_update_elem()
// would and returns its steps without applying them.
func (a *ProgArray) Update(i uint32, p *Program) ([]Effect, error) {
	if i >= a.MaxEntries {
		return nil, ErrE2BIG
	}
	if !a.Compatible(p) {
		return nil, ErrEINVAL
	}
	return a.steps(i, p), nil
}

// Delete checks a delete of slot i and returns its steps.
func (a *ProgArray) Delete(i uint32) ([]Effect, error) {
	if i >= a.MaxEntries {
		return nil, ErrE2BIG
	}
	if a.ptrs[i] == nil {
		return nil, ErrENOENT
	}
	return a.steps(i, nil), nil
}

// steps are the slot change's steps in the kernel's order
// (bpf_fd_array_map_update_elem, then prog_array_map_poke_run calling
// bpf_arch_poke_desc_update for each direct call): ptrs, the cached half,
// then the pokes. A filled slot gets its target jump before its bypass
// becomes a nop; an emptied one its bypass jump back before its target
// becomes a nop (with synchronize_rcu() between the two); a replaced one
// only its target. So no window has the bypass a nop while the target is
// one too: a CPU there would count the call and unwind the frame, then
// run on into out.
func (a *ProgArray) steps(i uint32, p *Program) []Effect {
	old := a.ptrs[i]
	step := func(k EffectKind) Effect { return Effect{Kind: k, Array: a, Index: i, Old: old, New: p} }
	es := []Effect{step(EffectPtr), step(EffectCached)}
	switch {
	case p == nil:
		return append(es, step(EffectBypass), step(EffectTarget))
	case old == nil:
		return append(es, step(EffectTarget), step(EffectBypass))
	}
	return append(es, step(EffectTarget))
}

// Apply performs one step on the model.
func (e Effect) Apply() {
	set := func(m map[uint32]*Program) {
		if e.New == nil {
			delete(m, e.Index)
		} else {
			m[e.Index] = e.New
		}
	}
	switch e.Kind {
	case EffectPtr:
		set(e.Array.ptrs)
	case EffectCached:
		set(e.Array.cached)
	case EffectTarget:
		set(e.Array.poked)
	case EffectBypass:
		if e.New == nil {
			delete(e.Array.open, e.Index)
		} else {
			e.Array.open[e.Index] = true
		}
	}
}

func (e Effect) String() string {
	name := func(p *Program) string {
		if p == nil {
			return "empty"
		}
		return p.Name
	}
	return fmt.Sprintf("%s %s[%d]: %s -> %s", e.Kind, e.Array.Name, e.Index, name(e.Old), name(e.New))
}
