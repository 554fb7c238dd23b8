package interp_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"tailsim/prog"
	"tailsim/prog/asm"
	"tailsim/prog/interp"
)

// A world described in the table: arrays, programs (assembly), a pool of
// subprograms, the fix-up options and the initial slots.
type arrayDef struct {
	name string
	max  uint32
}

type progDef struct{ name, src string }

type slotDef struct {
	array string
	index uint32
	prog  string
}

type worldDef struct {
	arrays []arrayDef
	progs  []progDef
	subs   map[string]string
	opts   prog.FixupOptions
	slots  []slotDef
}

func fn(t *testing.T, name, src string) *prog.Function {
	t.Helper()
	insns, err := asm.Parse(src, 1)
	if err != nil {
		t.Fatalf("assembling %s: %v", name, err)
	}
	return &prog.Function{Name: name, Insns: insns, StackDepth: prog.StackDepthOf(insns)}
}

func (d worldDef) build(t *testing.T) *prog.World {
	t.Helper()
	w := &prog.World{Layout: prog.DefaultLayout}
	for _, a := range d.arrays {
		arr, err := prog.NewProgArray(a.name, a.max)
		if err != nil {
			t.Fatal(err)
		}
		w.Arrays = append(w.Arrays, arr)
	}
	pool := map[string]*prog.Function{}
	for n, s := range d.subs {
		pool[n] = fn(t, n, s)
	}
	for _, pd := range d.progs {
		p, err := prog.NewProgram(pd.name, "xdp", fn(t, pd.name, pd.src), pool)
		if err != nil {
			t.Fatal(err)
		}
		w.Progs = append(w.Progs, p)
	}
	if err := w.Fix(d.opts); err != nil {
		t.Fatal(err)
	}
	for _, s := range d.slots {
		effects, err := w.Array(s.array).Update(s.index, w.Prog(s.prog))
		if err != nil {
			t.Fatalf("%s[%d] = %s: %v", s.array, s.index, s.prog, err)
		}
		applyAll(effects)
	}
	return w
}

func applyAll(es []prog.Effect) {
	for _, e := range es {
		e.Apply()
	}
}

// configs is every combination of variant, counting rule and NoDirect.
func configs() []interp.Config {
	var cs []interp.Config
	for _, v := range prog.Kernels {
		for _, r := range []prog.CountRule{prog.RuleJIT, prog.RuleInterp} {
			for _, nd := range []bool{false, true} {
				cs = append(cs, interp.Config{Kernel: v, Rule: r, NoDirectTailCalls: nd})
			}
		}
	}
	return cs
}

func cfgName(c interp.Config) string {
	s := fmt.Sprintf("%v/%v", c.Kernel, c.Rule)
	if c.NoDirectTailCalls {
		s += "/nodirect"
	}
	return s
}

// outcome is the part of a Result the tables state.
type outcome struct {
	R0    uint64
	Count uint64
	Path  []string
	Falls []prog.Reason
}

func outcomeOf(r *prog.Result) outcome {
	return outcome{R0: r.R0, Count: r.Count, Path: r.Path, Falls: r.Falls}
}

func repeat[T any](x T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = x
	}
	return out
}

func cat[T any](parts ...[]T) []T { return slices.Concat(parts...) }

var emptyOK = cmpopts.EquateEmpty()

func u32ctx(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64ctx(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// TestLibTestBPF runs the tail-call suite of lib/test_bpf.c (docs/kernel.md §10):
// one array of 11 with the tests in slots 0–9, programs built without the
// verifier, each test run 1000 times. The state tests pass a ctx holding an
// int that persists across the runs.
func TestLibTestBPF(t *testing.T) {
	const stateInc = `
	r2 = *(u32 *)(r1 + 0)
	r2 += 1
	*(u32 *)(r1 + 0) = r2
`
	tail := func(slot int) string {
		return fmt.Sprintf("\tr2 = map[progs]\n\tw3 = %d\n\tcall bpf_tail_call\n", slot)
	}
	progs := []progDef{
		{"leaf", "r0 = r1\nr0 += 1\nexit"},
		{"tail_call_2", "r1 += 2\n" + tail(0) + "r0 = -1\nexit"},
		{"tail_call_3", "r1 += 3\n" + tail(1) + "r0 = -1\nexit"},
		{"tail_call_4", "r1 += 4\n" + tail(2) + "r0 = -1\nexit"},
		{"load_store_leaf", `
	r1 = 1
	r2 = 2
	r3 = r10
	*(u64 *)(r3 - 8) = r1
	*(u64 *)(r3 - 16) = r2
	r0 = *(u64 *)(r10 - 8)
	if r0 != r1 goto fail
	r0 = *(u64 *)(r10 - 16)
	if r0 != r2 goto fail
	r0 = 0
	exit
fail:
	r0 = -1
	exit`},
		{"load_store", "r0 = 3\n*(u64 *)(r10 - 8) = r0\n" + tail(4) + "r0 = -1\nexit"},
		{"max_count", stateInc + tail(6) + "exit"},
		{"count_across_calls", stateInc + `
	*(u64 *)(r10 - 8) = r1
	call bpf_get_numa_node_id
	call bpf_ktime_get_ns
	call bpf_ktime_get_boot_ns
	call bpf_ktime_get_coarse_ns
	call bpf_jiffies64
	call bpf_test_func
	r1 = *(u64 *)(r10 - 8)
	w0 = w1
` + tail(7) + "exit"},
		{"null_target", stateInc + tail(10) + "exit"},
		{"out_of_range", stateInc + tail(11) + "exit"},
	}
	d := worldDef{arrays: []arrayDef{{"progs", 11}}, progs: progs, opts: prog.FixupOptions{NoVerifier: true}}
	for i, p := range progs {
		d.slots = append(d.slots, slotDef{"progs", uint32(i), p.name})
	}
	// The expectations of the table in docs/kernel.md §10, per run: R0 (tests
	// 0–5) or the state after 1000 runs (tests 6–9), and the chain.
	tests := []struct {
		name      string
		state     bool
		r0        uint64
		final     uint32
		path      []string
		falls     []prog.Reason
		jitCount  uint64
		interpCnt uint64
	}{
		{name: "leaf", r0: 1, path: []string{"leaf"}},
		{name: "tail_call_2", r0: 3, path: []string{"tail_call_2", "leaf"}, jitCount: 1, interpCnt: 1},
		{name: "tail_call_3", r0: 6, path: []string{"tail_call_3", "tail_call_2", "leaf"}, jitCount: 2, interpCnt: 2},
		{name: "tail_call_4", r0: 10, path: []string{"tail_call_4", "tail_call_3", "tail_call_2", "leaf"}, jitCount: 3, interpCnt: 3},
		{name: "load_store_leaf", r0: 0, path: []string{"load_store_leaf"}},
		{name: "load_store", r0: 0, path: []string{"load_store", "load_store_leaf"}, jitCount: 1, interpCnt: 1},
		{name: "max_count", state: true, final: 34000, path: repeat("max_count", 34),
			falls: []prog.Reason{prog.FallLimit}, jitCount: 33, interpCnt: 33},
		{name: "count_across_calls", state: true, final: 34000, path: repeat("count_across_calls", 34),
			falls: []prog.Reason{prog.FallLimit}, jitCount: 33, interpCnt: 33},
		{name: "null_target", state: true, final: 1000, path: []string{"null_target"},
			falls: []prog.Reason{prog.FallEmpty}, jitCount: 0, interpCnt: 1},
		{name: "out_of_range", state: true, final: 1000, path: []string{"out_of_range"},
			falls: []prog.Reason{prog.FallBounds}},
	}
	for _, cfg := range configs() {
		t.Run(cfgName(cfg), func(t *testing.T) {
			w := d.build(t)
			m := interp.New(w, cfg)
			for _, tt := range tests {
				var ctx []byte
				if tt.state {
					ctx = u32ctx(0)
				}
				wantCount := tt.jitCount
				if cfg.Rule == prog.RuleInterp || cfg.Kernel.CountsBeforeSlot() {
					wantCount = tt.interpCnt
				}
				for run := range 1000 {
					res := m.Run(w.Prog(tt.name), ctx)
					if res.Fault != nil {
						t.Fatalf("%s run %d: %v", tt.name, run, res.Fault)
					}
					if run > 0 {
						continue
					}
					got := outcomeOf(res)
					want := outcome{R0: got.R0, Count: wantCount, Path: tt.path, Falls: tt.falls}
					if !tt.state {
						want.R0 = tt.r0
					}
					if diff := cmp.Diff(want, got, emptyOK); diff != "" {
						t.Errorf("%s (-want +got):\n%s", tt.name, diff)
					}
					// Tests 6–9 return the R0 of a failed tail call.
					if res.R0Dead != tt.state {
						t.Errorf("%s: R0Dead = %v, want %v", tt.name, res.R0Dead, tt.state)
					}
				}
				if tt.state {
					if got := binary.LittleEndian.Uint32(ctx); got != tt.final {
						t.Errorf("%s: state %d after 1000 runs, want %d", tt.name, got, tt.final)
					}
				}
			}
		})
	}
}

// keyFromCtx tail-calls jmp[R3] with R3 read as a u64 from ctx, so the
// verifier cannot know the key; the fall-through returns 99.
const keyFromCtx = `
	r3 = *(u64 *)(r1 + 0)
	r2 = map[jmp]
	call bpf_tail_call
	r0 = 99
	exit`

const target7 = "r0 = 7\nexit"

// TestBounds: index = (u32)R3; index >= max_entries falls through
// (docs/kernel.md §1 steps 1–2).
func TestBounds(t *testing.T) {
	taken := outcome{R0: 7, Count: 1, Path: []string{"entry", "t"}}
	bounds := outcome{R0: 99, Path: []string{"entry"}, Falls: []prog.Reason{prog.FallBounds}}
	tests := []struct {
		name string
		max  uint32
		slot uint32
		r3   uint64
		want outcome
	}{
		{"max-1", 4, 3, 3, taken},
		{"max", 4, 3, 4, bounds},
		{"0", 4, 0, 0, taken},
		{"2^32+1 is index 1", 4, 1, 1<<32 + 1, taken},
		{"2^32+4 is index 4", 4, 3, 1<<32 + 4, bounds},
		{"-1", 4, 3, 0xffff_ffff_ffff_ffff, bounds},
		{"u32 array, index 0xfffffffe", 0xffffffff, 0xfffffffe, 0xfffffffe, taken},
		{"u32 array, index -2", 0xffffffff, 0xfffffffe, 0xffff_ffff_ffff_fffe, taken},
		{"u32 array, index 0xffffffff", 0xffffffff, 0xfffffffe, 0xffffffff, bounds},
		{"u32 array, index -1", 0xffffffff, 0xfffffffe, 0xffff_ffff_ffff_ffff, bounds},
		{"1-entry array, index 0", 1, 0, 0, taken},
		{"1-entry array, index 1", 1, 0, 1, bounds},
	}
	for _, tt := range tests {
		for _, cfg := range configs() {
			t.Run(tt.name+"/"+cfgName(cfg), func(t *testing.T) {
				w := worldDef{
					arrays: []arrayDef{{"jmp", tt.max}},
					progs:  []progDef{{"entry", keyFromCtx}, {"t", target7}},
					slots:  []slotDef{{"jmp", tt.slot, "t"}},
				}.build(t)
				cfg.Trace = true
				res := interp.New(w, cfg).Run(w.Prog("entry"), u64ctx(tt.r3))
				if res.Fault != nil {
					t.Fatal(res.Fault)
				}
				if diff := cmp.Diff(tt.want, outcomeOf(res), emptyOK); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				// The trace reports R3 as the program left it.
				i := slices.IndexFunc(res.Trace, func(e prog.Event) bool { return e.Kind == prog.EvTailCall })
				if i < 0 {
					t.Fatal("no tail-call event")
				}
				if e := res.Trace[i]; e.Index != tt.r3 || e.Count != 0 || e.Reason != firstFall(tt.want) {
					t.Errorf("event %+v, want index %#x count 0 reason %v", e, tt.r3, firstFall(tt.want))
				}
			})
		}
	}
}

func firstFall(o outcome) prog.Reason {
	if len(o.Falls) == 0 {
		return 0
	}
	return o.Falls[0]
}

// selfLoops are three shapes of a program that tail-calls itself (slot 0 of
// jmp, and of other when there is one) and then returns 5: a constant key
// (direct upstream), a key from ctx (indirect/static), and two maps on two
// paths (dynamic in the patched series).
var selfLoops = []struct {
	name   string
	arrays []arrayDef
	src    string
}{
	{"const key", []arrayDef{{"jmp", 1}}, `
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r0 = 5
	exit`},
	{"ctx key", []arrayDef{{"jmp", 1}}, `
	r3 = *(u32 *)(r1 + 0)
	r2 = map[jmp]
	call bpf_tail_call
	r0 = 5
	exit`},
	{"poisoned map", []arrayDef{{"jmp", 1}, {"other", 1}}, `
	r3 = 0
	r2 = map[jmp]
	r4 = *(u32 *)(r1 + 0)
	if r4 == 0 goto go
	r2 = map[other]
go:	call bpf_tail_call
	r0 = 5
	exit`},
}

// TestLimit: a program tail-calling itself runs 34 times; the counter ends at
// 33 and the last attempt falls through on the limit (docs/kernel.md §1).
func TestLimit(t *testing.T) {
	for _, sl := range selfLoops {
		for _, cfg := range configs() {
			t.Run(sl.name+"/"+cfgName(cfg), func(t *testing.T) {
				d := worldDef{arrays: sl.arrays, progs: []progDef{{"self", sl.src}}}
				for _, a := range sl.arrays {
					d.slots = append(d.slots, slotDef{a.name, 0, "self"})
				}
				w := d.build(t)
				cfg.Trace = true
				res := interp.New(w, cfg).Run(w.Prog("self"), u32ctx(0))
				if res.Fault != nil {
					t.Fatal(res.Fault)
				}
				want := outcome{R0: 5, Count: 33, Path: repeat("self", 34), Falls: []prog.Reason{prog.FallLimit}}
				if diff := cmp.Diff(want, outcomeOf(res), emptyOK); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				var tcs []prog.Event
				for _, e := range res.Trace {
					if e.Kind == prog.EvTailCall {
						tcs = append(tcs, e)
					}
				}
				if len(tcs) != 34 {
					t.Fatalf("%d tail-call events, want 34", len(tcs))
				}
				for i, e := range tcs {
					wantReason := prog.Reason(0)
					if i == 33 {
						wantReason = prog.FallLimit
					}
					if e.Count != uint64(i) || e.Reason != wantReason {
						t.Errorf("attempt %d: count %d reason %v, want %d %v", i, e.Count, e.Reason, i, wantReason)
					}
				}
				if last := res.Trace[len(res.Trace)-1]; last.Kind != prog.EvExit || last.Value != 5 {
					t.Errorf("last event %v, want exit r0=5", last)
				}
			})
		}
	}
}

// TestEmptySlot: the JITs count a tail call only when the slot holds a
// program; the interpreter counts before the NULL check (docs/kernel.md §1,
// "known divergence"). The program first tail-calls the empty slot 1, then
// itself in slot 0.
func TestEmptySlot(t *testing.T) {
	srcs := map[string]string{
		"const keys": `
	r6 = r1
	r2 = map[jmp]
	r3 = 1
	call bpf_tail_call
	r1 = r6
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r0 = 5
	exit`,
		"ctx keys": `
	r6 = r1
	r2 = map[jmp]
	r3 = *(u32 *)(r1 + 0)
	r3 += 1
	call bpf_tail_call
	r1 = r6
	r2 = map[jmp]
	r3 = *(u32 *)(r1 + 0)
	call bpf_tail_call
	r0 = 5
	exit`,
	}
	// JIT rule: each program spends one count (on itself); the 34th finds
	// the limit at both calls, the limit being checked before the slot.
	jit := outcome{R0: 5, Count: 33, Path: repeat("p", 34),
		Falls: cat(repeat(prog.FallEmpty, 33), []prog.Reason{prog.FallLimit, prog.FallLimit})}
	// Interpreter rule: each program spends two; the 17th enters with 32,
	// spends the last on the empty slot and hits the limit on itself.
	interpRule := outcome{R0: 5, Count: 33, Path: repeat("p", 17),
		Falls: cat(repeat(prog.FallEmpty, 17), []prog.Reason{prog.FallLimit})}
	for name, src := range srcs {
		for _, cfg := range configs() {
			t.Run(name+"/"+cfgName(cfg), func(t *testing.T) {
				w := worldDef{
					arrays: []arrayDef{{"jmp", 2}},
					progs:  []progDef{{"p", src}},
					slots:  []slotDef{{"jmp", 0, "p"}},
				}.build(t)
				res := interp.New(w, cfg).Run(w.Prog("p"), u32ctx(0))
				if res.Fault != nil {
					t.Fatal(res.Fault)
				}
				want := jit
				if cfg.Rule == prog.RuleInterp || cfg.Kernel.CountsBeforeSlot() {
					want = interpRule
				}
				if diff := cmp.Diff(want, outcomeOf(res), emptyOK); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
	// A single attempt on an empty slot: count unchanged (JIT) or 1 (interp).
	for _, cfg := range configs() {
		w := worldDef{
			arrays: []arrayDef{{"jmp", 2}},
			progs:  []progDef{{"entry", "r2 = map[jmp]\nr3 = 1\ncall bpf_tail_call\nr0 = 99\nexit"}, {"t", target7}},
			slots:  []slotDef{{"jmp", 0, "t"}},
		}.build(t)
		res := interp.New(w, cfg).Run(w.Prog("entry"), nil)
		want := outcome{R0: 99, Path: []string{"entry"}, Falls: []prog.Reason{prog.FallEmpty}}
		if cfg.Rule == prog.RuleInterp || cfg.Kernel.CountsBeforeSlot() {
			want.Count = 1
		}
		if diff := cmp.Diff(want, outcomeOf(res), emptyOK); diff != "" {
			t.Errorf("single empty slot, %s (-want +got):\n%s", cfgName(cfg), diff)
		}
		if res.R0Dead {
			t.Errorf("single empty slot, %s: R0Dead although r0 = 99 follows the call", cfgName(cfg))
		}
	}
}

// TestSlotHalves sets up an array whose three halves disagree by applying
// only some steps of an update or delete (docs/kernel.md §3: ptrs, then the cached
// slot, then the pokes), and checks which half each kind of site reads.
func TestSlotHalves(t *testing.T) {
	type half int
	const (
		ptrs half = iota
		cached
		poked
	)
	const constKey = "r2 = map[jmp]\nr3 = 0\ncall bpf_tail_call\nr0 = 99\nexit"
	tests := []struct {
		name     string
		entry    string
		opts     prog.FixupOptions
		variant  prog.Kernel
		rule     prog.CountRule
		noDirect bool
		reads    half
		via      string // the trace's name for the path
	}{
		{"direct, upstream", constKey, prog.FixupOptions{}, prog.Linux618, prog.RuleJIT, false, poked, "direct"},
		{"direct, patched", constKey, prog.FixupOptions{}, prog.Linux618Series, prog.RuleJIT, false, poked, "direct"},
		// arm64 (NoDirect machine): upstream's only path reads ptrs; the
		// patched series' sites with the dynamic flag clear take the static
		// path, which reads the cached half.
		{"direct site on arm64, upstream", constKey, prog.FixupOptions{}, prog.Linux618, prog.RuleJIT, true, ptrs, "indirect"},
		{"direct site on arm64, patched", constKey, prog.FixupOptions{}, prog.Linux618Series, prog.RuleJIT, true, cached, "static"},
		{"indirect (verifier NoDirect), upstream", constKey, prog.FixupOptions{NoDirect: true}, prog.Linux618, prog.RuleJIT, false, ptrs, "indirect"},
		{"static (verifier NoDirect), patched", constKey, prog.FixupOptions{NoDirect: true}, prog.Linux618Series, prog.RuleJIT, false, cached, "static"},
		{"static on arm64, patched", constKey, prog.FixupOptions{NoDirect: true}, prog.Linux618Series, prog.RuleJIT, true, cached, "static"},
		{"indirect (ctx key), upstream", keyFromCtx, prog.FixupOptions{}, prog.Linux618, prog.RuleJIT, false, ptrs, "indirect"},
		{"static (ctx key), patched", keyFromCtx, prog.FixupOptions{}, prog.Linux618Series, prog.RuleJIT, false, cached, "static"},
		{"no verifier, upstream", constKey, prog.FixupOptions{NoVerifier: true}, prog.Linux618, prog.RuleJIT, false, ptrs, "indirect"},
		{"no verifier, patched", constKey, prog.FixupOptions{NoVerifier: true}, prog.Linux618Series, prog.RuleJIT, false, cached, "static"},
		// kernel/bpf/core.c reads ptrs, whatever the JIT would do.
		{"interpreter, direct site", constKey, prog.FixupOptions{}, prog.Linux618, prog.RuleInterp, false, ptrs, "interpreter"},
		{"interpreter, patched static", keyFromCtx, prog.FixupOptions{}, prog.Linux618Series, prog.RuleInterp, false, ptrs, "interpreter"},
	}
	// Step k of a change reaches the half it names: ptrs with the first
	// step, cached with the second, the pokes with the third.
	reached := func(h half, steps int) bool { return steps > int(h) }
	for _, tt := range tests {
		for _, change := range []string{"update", "delete"} {
			for steps := 0; steps <= 3; steps++ {
				t.Run(fmt.Sprintf("%s/%s/%d", tt.name, change, steps), func(t *testing.T) {
					w := worldDef{
						arrays: []arrayDef{{"jmp", 1}},
						progs:  []progDef{{"entry", tt.entry}, {"a", "r0 = 1\nexit"}, {"b", "r0 = 2\nexit"}},
						opts:   tt.opts,
						slots:  []slotDef{{"jmp", 0, "a"}},
					}.build(t)
					arr := w.Array("jmp")
					var es []prog.Effect
					var err error
					if change == "update" {
						es, err = arr.Update(0, w.Prog("b"))
					} else {
						es, err = arr.Delete(0)
					}
					if err != nil {
						t.Fatal(err)
					}
					applyAll(es[:steps])
					// What the half holds: a until reached, then b (or
					// nothing for a delete).
					want := outcome{R0: 1, Count: 1, Path: []string{"entry", "a"}}
					if reached(tt.reads, steps) {
						if change == "update" {
							want = outcome{R0: 2, Count: 1, Path: []string{"entry", "b"}}
						} else {
							want = outcome{R0: 99, Path: []string{"entry"}, Falls: []prog.Reason{prog.FallEmpty}}
							if tt.rule == prog.RuleInterp {
								want.Count = 1
							}
						}
					}
					cfg := interp.Config{Kernel: tt.variant, Rule: tt.rule, NoDirectTailCalls: tt.noDirect, Trace: true}
					res := interp.New(w, cfg).Run(w.Prog("entry"), u64ctx(0))
					if res.Fault != nil {
						t.Fatal(res.Fault)
					}
					if diff := cmp.Diff(want, outcomeOf(res), emptyOK); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
					i := slices.IndexFunc(res.Trace, func(e prog.Event) bool { return e.Kind == prog.EvTailCall })
					if i < 0 || res.Trace[i].Via() != tt.via {
						t.Errorf("tail-call event %v, want it to go via %s", res.Trace, tt.via)
					}
				})
			}
		}
	}
}

// TestPoisonedReadsPtrs: the patched series' dynamic path is upstream's.
func TestPoisonedReadsPtrs(t *testing.T) {
	for _, v := range prog.Kernels {
		sl := selfLoops[2]
		w := worldDef{
			arrays: sl.arrays,
			progs:  []progDef{{"entry", sl.src}, {"a", "r0 = 1\nexit"}, {"b", "r0 = 2\nexit"}},
			slots:  []slotDef{{"jmp", 0, "a"}, {"other", 0, "a"}},
		}.build(t)
		if k := w.Fixups[w.Prog("entry")].Sites[0].Kind(v, true); k == prog.Static || k == prog.Direct {
			t.Fatalf("%v: poisoned site is %v", v, k)
		}
		es, _ := w.Array("jmp").Update(0, w.Prog("b"))
		es[0].Apply() // ptrs only
		res := interp.New(w, interp.Config{Kernel: v}).Run(w.Prog("entry"), u32ctx(0))
		if res.R0 != 2 {
			t.Errorf("%v: r0 = %d, want 2 (ptrs[0] = b)", v, res.R0)
		}
	}
}

// TestSubprograms: bpf2bpf calls share the counter (docs/kernel.md §1), keep
// R6–R9 and the frame pointer, and a tail call inside a subprogram replaces
// only the subprogram: the target returns to the caller.
func TestSubprograms(t *testing.T) {
	const lenCtx = 10 // the "len" the selftests read from skb; here ctx u32 at 0
	type run struct {
		deleteFirst []uint32 // slots of jmp deleted before the run
		r0          uint64
		count       uint64 // tail-call counter, JIT rule
		icount      uint64 // tail-call counter, interpreter rule (empty slots count)
		// count61 is 6.1's when it is not icount: 6.1 counts empty slots
		// too, but a subprogram counts in its own copy.
		count61 *uint64
		ctx     uint32 // the u32 at ctx+0 after the run
		path    []string
	}
	tests := []struct {
		name  string
		d     worldDef
		entry string
		ctx   uint32
		runs  []run
		// runaway61: under 6.1 the first run exhausts the budget.
		runaway61 bool
	}{
		{
			name: "callee-saved registers and fp survive a call",
			d: worldDef{
				progs: []progDef{{"main", `
	r6 = 6
	r7 = 7
	r8 = 8
	r9 = 9
	r1 = 100
	*(u64 *)(r10 - 8) = r1
	call sub
	r0 = *(u64 *)(r10 - 8)
	r0 += r6
	r0 += r7
	r0 += r8
	r0 += r9
	exit`}},
				subs: map[string]string{"sub": `
	r6 = 0
	r7 = 0
	r8 = 0
	r9 = 0
	r1 = 200
	*(u64 *)(r10 - 8) = r1
	r0 = 0
	exit`},
			},
			entry: "main",
			runs:  []run{{r0: 130, path: []string{"main"}}},
		},
		{
			name: "tail call in a subprogram returns to the caller",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 1}},
				progs: []progDef{{"main", `
	r6 = 100
	call sub
	r0 += r6
	exit`}, {"t", "r6 = 1\nr0 = 5\nexit"}},
				subs:  map[string]string{"sub": "r2 = map[jmp]\nr3 = 0\ncall bpf_tail_call\nr0 = 1\nexit"},
				slots: []slotDef{{"jmp", 0, "t"}},
			},
			entry: "main",
			runs: []run{
				{r0: 105, count: 1, icount: 1, path: []string{"main", "t"}},
				{deleteFirst: []uint32{0}, r0: 101, icount: 1, path: []string{"main"}},
			},
		},
		{
			name: "counter shared with the subprogram",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 2}},
				progs: []progDef{{"main", `
	r6 = r1
	call sub
	r1 = r6
	r2 = map[jmp]
	r3 = 1
	call bpf_tail_call
	r0 = 99
	exit`}, {"t0", "r0 = 0\nexit"}, {"t1", target7}},
				subs:  map[string]string{"sub": "r2 = map[jmp]\nr3 = 0\ncall bpf_tail_call\nr0 = 1\nexit"},
				slots: []slotDef{{"jmp", 0, "t0"}, {"jmp", 1, "t1"}},
			},
			entry: "main",
			runs:  []run{{r0: 7, count: 2, icount: 2, count61: ptr(uint64(1)), path: []string{"main", "t0", "t1"}}},
		},
		{
			// selftests bpf2bpf_1: slots return 0 and 1; entry tail-calls
			// slot 1, then returns subprog(ctx), which tail-calls slot 0
			// and returns len*2.
			name: "tailcall_bpf2bpf_1",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 2}},
				progs: []progDef{{"entry", `
	r6 = r1
	r2 = map[jmp]
	r3 = 1
	call bpf_tail_call
	r1 = r6
	call sub
	exit`}, {"s0", "r0 = 0\nexit"}, {"s1", "r0 = 1\nexit"}},
				subs: map[string]string{"sub": `
	r6 = r1
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r0 = *(u32 *)(r6 + 0)
	r0 *= 2
	exit`},
				slots: []slotDef{{"jmp", 0, "s0"}, {"jmp", 1, "s1"}},
			},
			entry: "entry", ctx: lenCtx,
			runs: []run{
				{r0: 1, count: 1, icount: 1, ctx: lenCtx, path: []string{"entry", "s1"}},
				{deleteFirst: []uint32{1}, r0: 0, count: 1, icount: 2, ctx: lenCtx, path: []string{"entry", "s0"}},
				{deleteFirst: []uint32{0}, r0: 2 * lenCtx, icount: 2, ctx: lenCtx, path: []string{"entry"}},
			},
		},
		{
			// selftests bpf2bpf_2: slot 0 counts, then returns subprog(),
			// which tail-calls slot 0 and returns 1. 33 nested tail calls
			// from subprograms: the real stack grows by one frame each.
			name: "tailcall_bpf2bpf_2",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 1}},
				progs: []progDef{{"entry", `
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r0 = 0
	exit`}, {"classifier_0", `
	r2 = *(u32 *)(r1 + 0)
	r2 += 1
	*(u32 *)(r1 + 0) = r2
	call sub
	exit`}},
				subs:  map[string]string{"sub": "r2 = map[jmp]\nr3 = 0\ncall bpf_tail_call\nr0 = 1\nexit"},
				slots: []slotDef{{"jmp", 0, "classifier_0"}},
			},
			entry: "entry",
			runs: []run{
				{r0: 1, count: 33, icount: 33, ctx: 33, path: cat([]string{"entry"}, repeat("classifier_0", 33))},
				{deleteFirst: []uint32{0}, r0: 0, icount: 1, ctx: 33, path: []string{"entry"}},
			},
		},
		{
			// selftests bpf2bpf_3: entry → subprog → slot 0; slot 0 →
			// subprog2 → slot 1; slot 1 returns 3*len. Frames of 128 and
			// 64 bytes.
			name: "tailcall_bpf2bpf_3",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 2}},
				progs: []progDef{
					{"entry", "*(u64 *)(r10 - 128) = 0\ncall subprog_tail\nexit"},
					{"classifier_0", "*(u64 *)(r10 - 128) = 0\ncall subprog_tail2\nexit"},
					{"classifier_1", "*(u64 *)(r10 - 128) = 0\nr0 = *(u32 *)(r1 + 0)\nr0 *= 3\nexit"},
				},
				subs: map[string]string{
					"subprog_tail": `
	*(u64 *)(r10 - 64) = 0
	r6 = r1
	r2 = map[jmp]
	r3 = 0
	call bpf_tail_call
	r0 = *(u32 *)(r6 + 0)
	r0 *= 2
	exit`,
					"subprog_tail2": `
	*(u64 *)(r10 - 64) = 0
	r6 = r1
	r2 = map[jmp]
	r3 = 1
	call bpf_tail_call
	r0 = *(u32 *)(r6 + 0)
	exit`,
				},
				slots: []slotDef{{"jmp", 0, "classifier_0"}, {"jmp", 1, "classifier_1"}},
			},
			entry: "entry", ctx: lenCtx,
			runs: []run{
				{r0: 3 * lenCtx, count: 2, icount: 2, ctx: lenCtx, path: []string{"entry", "classifier_0", "classifier_1"}},
				{deleteFirst: []uint32{1}, r0: lenCtx, count: 1, icount: 2, ctx: lenCtx, path: []string{"entry", "classifier_0"}},
				{deleteFirst: []uint32{0}, r0: 2 * lenCtx, icount: 1, ctx: lenCtx, path: []string{"entry"}},
			},
		},
		{
			// selftests hierarchy_1: slot 0 is entry itself; entry counts,
			// then calls twice a subprogram that tail-calls slot 0.
			name: "tailcall_bpf2bpf_hierarchy_1",
			d: worldDef{
				arrays: []arrayDef{{"jmp", 1}},
				progs: []progDef{{"entry", `
	r2 = *(u32 *)(r1 + 0)
	r2 += 1
	*(u32 *)(r1 + 0) = r2
	r6 = r1
	call sub
	r1 = r6
	call sub
	r0 = 1
	exit`}},
				subs:  map[string]string{"sub": "r2 = map[jmp]\nr3 = 0\ncall bpf_tail_call\nr0 = 0\nexit"},
				slots: []slotDef{{"jmp", 0, "entry"}},
			},
			entry: "entry", runaway61: true,
			runs: []run{
				{r0: 1, count: 33, icount: 33, ctx: 34, path: repeat("entry", 34)},
				{deleteFirst: []uint32{0}, r0: 1, icount: 2, ctx: 35, path: []string{"entry"}},
			},
		},
	}
	for _, tt := range tests {
		for _, cfg := range configs() {
			t.Run(tt.name+"/"+cfgName(cfg), func(t *testing.T) {
				w := tt.d.build(t)
				m := interp.New(w, cfg)
				ctx := u32ctx(tt.ctx)
				if tt.runaway61 && cfg.Kernel == prog.Linux61 && cfg.Rule == prog.RuleJIT {
					// Each subprogram counts from its own copy: the tree
					// of tail calls has 2^33 leaves.
					if res := m.Run(w.Prog(tt.entry), ctx); res.Fault == nil || res.Fault.Kind != prog.FaultBudget {
						t.Errorf("6.1: %+v, want the budget exhausted", res)
					}
					return
				}
				for i, r := range tt.runs {
					for _, idx := range r.deleteFirst {
						applyAll(must(w.Array("jmp").Delete(idx)))
					}
					res := m.Run(w.Prog(tt.entry), ctx)
					if res.Fault != nil {
						t.Fatalf("run %d: %v", i, res.Fault)
					}
					want := outcome{R0: r.r0, Count: r.count, Path: r.path}
					switch {
					case cfg.Rule == prog.RuleInterp:
						want.Count = r.icount
					case cfg.Kernel == prog.Linux61 && r.count61 != nil:
						want.Count = *r.count61
					case cfg.Kernel == prog.Linux61:
						want.Count = r.icount
					}
					got := outcomeOf(res)
					got.Falls = nil // stated by the other tests
					if diff := cmp.Diff(want, got, emptyOK); diff != "" {
						t.Errorf("run %d (-want +got):\n%s", i, diff)
					}
					if c := binary.LittleEndian.Uint32(ctx); c != r.ctx {
						t.Errorf("run %d: ctx %d, want %d", i, c, r.ctx)
					}
				}
			})
		}
	}
}

func must(es []prog.Effect, err error) []prog.Effect {
	if err != nil {
		panic(err)
	}
	return es
}

// TestCallDepth: MAX_CALL_FRAMES is 8 frames of one program's call chain
// (deeper chains are NewProgram's to reject).
func TestCallDepth(t *testing.T) {
	chain := func(n int) map[string]string {
		subs := map[string]string{}
		for i := 1; i < n; i++ {
			subs[fmt.Sprintf("f%d", i)] = fmt.Sprintf("call f%d\nr0 += 1\nexit", i+1)
		}
		subs[fmt.Sprintf("f%d", n)] = "r0 = 0\nexit"
		return subs
	}
	for _, tt := range []struct {
		frames int
		fault  bool
	}{{2, false}, {7, false}, {8, false}} {
		t.Run(fmt.Sprint(tt.frames), func(t *testing.T) {
			w := worldDef{progs: []progDef{{"main", "call f1\nexit"}}, subs: chain(tt.frames - 1)}.build(t)
			res := interp.New(w, interp.Config{}).Run(w.Prog("main"), nil)
			if tt.fault {
				if res.Fault == nil || res.Fault.Kind != prog.FaultInsn {
					t.Fatalf("fault %v, want an insn fault", res.Fault)
				}
				return
			}
			if res.Fault != nil || res.R0 != uint64(tt.frames-2) {
				t.Fatalf("r0 %d fault %v, want r0 %d", res.R0, res.Fault, tt.frames-2)
			}
		})
	}
}

// TestHelpers: a helper returns its stub value in R0 and leaves R1–R5
// clobbered; R6 survives. Reading R1–R5 afterwards needs the verifier off.
func TestHelpers(t *testing.T) {
	for _, name := range []string{"ktime_get_ns", "get_prandom_u32", "jiffies64", "test_func", "map_lookup_elem"} {
		t.Run(name, func(t *testing.T) {
			h, ok := prog.HelperByName(name)
			if !ok {
				t.Fatalf("no helper %s", name)
			}
			w := worldDef{
				progs: []progDef{{"main", fmt.Sprintf(`
	r6 = r1
	r1 = 1
	r2 = 2
	r3 = 3
	r4 = 4
	r5 = 5
	call %d
	*(u64 *)(r6 + 0) = r0
	*(u64 *)(r6 + 8) = r1
	*(u64 *)(r6 + 16) = r2
	*(u64 *)(r6 + 24) = r3
	*(u64 *)(r6 + 32) = r4
	*(u64 *)(r6 + 40) = r5
	r0 = 0
	exit`, h.ID)}},
				opts: prog.FixupOptions{NoVerifier: true},
			}.build(t)
			ctx := make([]byte, 48)
			res := interp.New(w, interp.Config{Trace: true}).Run(w.Prog("main"), ctx)
			if res.Fault != nil {
				t.Fatal(res.Fault)
			}
			if got := binary.LittleEndian.Uint64(ctx); got != h.Ret {
				t.Errorf("r0 = %#x, want the stub's %#x", got, h.Ret)
			}
			for r := prog.R1; r <= prog.R5; r++ {
				got := binary.LittleEndian.Uint64(ctx[8*int(r):])
				if got == uint64(r) || got != prog.ClobberValue(r) {
					t.Errorf("%v = %#x after the call, want the clobber value %#x", r, got, prog.ClobberValue(r))
				}
			}
			i := slices.IndexFunc(res.Trace, func(e prog.Event) bool { return e.Kind == prog.EvHelper })
			if i < 0 || res.Trace[i].Helper != h.ID || locNoLine(res.Trace[i].At) != "main+6" {
				t.Errorf("helper event missing or wrong: %v", res.Trace)
			}
		})
	}
	w := worldDef{progs: []progDef{{"main", "call 999\nexit"}}}.build(t)
	if res := interp.New(w, interp.Config{}).Run(w.Prog("main"), nil); res.Fault == nil || res.Fault.Kind != prog.FaultInsn || locNoLine(res.Fault.At) != "main+0" {
		t.Errorf("unknown helper: fault %v, want an insn fault at main+0", res.Fault)
	}
}

// TestBudget: a run that does not end stops after Budget instructions.
func TestBudget(t *testing.T) {
	for _, tt := range []struct{ budget, want int }{{50, 50}, {1, 1}, {0, interp.DefaultBudget}} {
		w := worldDef{progs: []progDef{{"spin", "r0 = 0\nloop: r0 += 1\ngoto loop"}}}.build(t)
		res := interp.New(w, interp.Config{Budget: tt.budget}).Run(w.Prog("spin"), nil)
		if res.Fault == nil || res.Fault.Kind != prog.FaultBudget || res.Steps != tt.want {
			t.Errorf("budget %d: fault %v after %d steps, want a budget fault after %d", tt.budget, res.Fault, res.Steps, tt.want)
		}
	}
	// The budget counts across tail calls: 34 programs of 4 instructions.
	sl := selfLoops[0]
	w := worldDef{arrays: sl.arrays, progs: []progDef{{"self", sl.src}}, slots: []slotDef{{"jmp", 0, "self"}}}.build(t)
	if res := interp.New(w, interp.Config{}).Run(w.Prog("self"), nil); res.Steps != 33*3+5 {
		t.Errorf("self loop took %d steps, want %d", res.Steps, 33*3+5)
	}
	if res := interp.New(w, interp.Config{Budget: 100}).Run(w.Prog("self"), nil); res.Fault == nil || res.Fault.Kind != prog.FaultBudget || res.Count != 33 {
		t.Errorf("self loop with budget 100: fault %v count %d, want a budget fault with count 33", res.Fault, res.Count)
	}
}

// TestAccessFaults: only ctx and live stack frames are memory.
func TestAccessFaults(t *testing.T) {
	const top = interp.StackBase + prog.MaxStackDepth // r10 of the first frame
	tests := []struct {
		name  string
		src   string
		subs  map[string]string
		ctx   []byte
		addr  uint64
		site  string
		fault bool
		r0    uint64
	}{
		{name: "NULL ctx", src: "r0 = *(u8 *)(r1 + 16)\nexit", fault: true, addr: 16, site: "main+0"},
		{name: "ctx read in bounds", src: "r0 = *(u64 *)(r1 + 0)\nexit", ctx: u64ctx(0x1122334455667788), r0: 0x1122334455667788},
		{name: "ctx read narrow", src: "r0 = *(u16 *)(r1 + 6)\nexit", ctx: u64ctx(0x1122334455667788), r0: 0x1122},
		{name: "ctx read straddling the end", src: "r0 = *(u64 *)(r1 + 4)\nexit", ctx: u64ctx(0), fault: true, addr: prog.CtxBase + 4, site: "main+0"},
		{name: "ctx write past the end", src: "r0 = 0\n*(u32 *)(r1 + 8) = 1\nexit", ctx: u64ctx(0), fault: true, addr: prog.CtxBase + 8, site: "main+1"},
		{name: "ctx below", src: "r0 = *(u8 *)(r1 - 1)\nexit", ctx: u64ctx(0), fault: true, addr: prog.CtxBase - 1, site: "main+0"},
		// (Through a copy: the verifier refuses r10 + 0 itself, see
		// prog.TestFixupErrors.)
		{name: "stack at fp", src: "r1 = r10\nr0 = *(u64 *)(r1 + 0)\nexit", fault: true, addr: top, site: "main+1"},
		{name: "stack bottom", src: "r1 = 9\n*(u64 *)(r10 - 512) = r1\nr0 = *(u64 *)(r10 - 512)\nexit", r0: 9},
		{name: "stack below the frame", src: "*(u64 *)(r10 - 512) = 1\nr1 = r10\n*(u64 *)(r1 - 520) = 1\nr0 = 0\nexit", fault: true, addr: top - 520, site: "main+2"},
		// The frame is the declared depth (StackDepthOf: 8 here); a copy
		// of r10 reaching below it faults.
		{name: "below the declared depth", src: "*(u64 *)(r10 - 8) = 1\nr1 = r10\nr0 = *(u64 *)(r1 - 16)\nexit", fault: true, addr: top - 16, site: "main+2"},
		{name: "within the declared depth", src: "r2 = 5\n*(u64 *)(r10 - 16) = r2\nr1 = r10\nr0 = *(u64 *)(r1 - 16)\nexit", r0: 5},
		{name: "no stack declared", src: "r1 = r10\nr0 = *(u8 *)(r1 - 1)\nexit", fault: true, addr: top - 1, site: "main+1"},
		{name: "address wraps", src: "r1 = -8 ll\nr0 = *(u64 *)(r1 + 4)\nexit", fault: true, addr: 0xffff_ffff_ffff_fffc, site: "main+2"},
		{
			name:  "stale frame of a returned subprogram",
			src:   "call sub\nr0 = *(u64 *)(r0 - 8)\nexit",
			subs:  map[string]string{"sub": "r0 = r10\nexit"},
			fault: true, addr: top + interp.FrameSize - 8, site: "main+1",
		},
		{
			name: "caller's frame through a pointer",
			src:  "r1 = 77\n*(u64 *)(r10 - 8) = r1\nr1 = r10\ncall sub\nexit",
			subs: map[string]string{"sub": "r0 = *(u64 *)(r1 - 8)\nexit"},
			r0:   77,
		},
		{
			name:  "fault inside a subprogram",
			src:   "call sub\nexit",
			subs:  map[string]string{"sub": "r0 = 0\nr0 = *(u32 *)(r0 + 0)\nexit"},
			fault: true, addr: 0, site: "main/sub+1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Without the verifier, which refuses most of these programs
			// (prog.TestFixupErrors): the model must fault on them all the
			// same, as lib/test_bpf's unverified programs may meet.
			w := worldDef{progs: []progDef{{"main", tt.src}}, subs: tt.subs, opts: prog.FixupOptions{NoVerifier: true}}.build(t)
			res := interp.New(w, interp.Config{}).Run(w.Prog("main"), tt.ctx)
			if !tt.fault {
				if res.Fault != nil || res.R0 != tt.r0 {
					t.Fatalf("r0 %#x fault %v, want r0 %#x", res.R0, res.Fault, tt.r0)
				}
				return
			}
			f := res.Fault
			if f == nil || f.Kind != prog.FaultAccess || f.Addr != tt.addr || locNoLine(f.At) != tt.site {
				t.Fatalf("fault %+v, want access at %#x, site %s", f, tt.addr, tt.site)
			}
			if !strings.Contains(f.Insn, "*(") {
				t.Errorf("fault instruction %q is not the access", f.Insn)
			}
		})
	}
}

// TestCtxPersistence: ctx is updated in place, so repeated runs accumulate;
// the Result holds a copy.
func TestCtxPersistence(t *testing.T) {
	w := worldDef{progs: []progDef{{"inc", `
	r2 = *(u32 *)(r1 + 0)
	r2 += 1
	*(u32 *)(r1 + 0) = r2
	r0 = r2
	exit`}}}.build(t)
	m := interp.New(w, interp.Config{})
	ctx := u32ctx(40)
	var last *prog.Result
	for i := 1; i <= 3; i++ {
		last = m.Run(w.Prog("inc"), ctx)
		if last.R0 != uint64(40+i) {
			t.Errorf("run %d: r0 %d, want %d", i, last.R0, 40+i)
		}
	}
	if got := binary.LittleEndian.Uint32(ctx); got != 43 {
		t.Errorf("ctx %d after 3 runs, want 43", got)
	}
	if !slices.Equal(last.Ctx, ctx) {
		t.Errorf("Result.Ctx % x, want % x", last.Ctx, ctx)
	}
	last.Ctx[0] = 0xff
	if ctx[0] == 0xff {
		t.Errorf("Result.Ctx aliases the caller's ctx")
	}
	// A NULL ctx: R1 = 0 and no Ctx in the result.
	w = worldDef{progs: []progDef{{"r1", "r0 = r1\nexit"}}}.build(t)
	if res := interp.New(w, interp.Config{}).Run(w.Prog("r1"), nil); res.R0 != 0 || res.Ctx != nil {
		t.Errorf("NULL ctx: r0 %#x ctx %v", res.R0, res.Ctx)
	}
	if res := interp.New(w, interp.Config{}).Run(w.Prog("r1"), []byte{}); res.R0 != prog.CtxBase {
		t.Errorf("empty ctx: r1 = %#x, want CtxBase", res.R0)
	}
}

// TestALUAndJumps runs the instruction subset end to end: a few programs
// whose results are worked out by hand.
func TestALUAndJumps(t *testing.T) {
	tests := []struct {
		name string
		src  string
		r0   uint64
	}{
		{"mov imm sign-extends", "r0 = -1\nexit", 0xffff_ffff_ffff_ffff},
		{"alu32 zero-extends", "r0 = -1\nw0 += 0\nexit", 0xffff_ffff},
		{"ld_imm64", "r0 = 0x123456789abcdef0 ll\nexit", 0x123456789abcdef0},
		{"div by zero", "r0 = 7\nr1 = 0\nr0 /= r1\nexit", 0},
		{"mod by zero", "r0 = 7\nr1 = 0\nr0 %= r1\nexit", 7},
		{"neg", "r0 = 5\nr0 = -r0\nexit", 0xffff_ffff_ffff_fffb},
		{"arsh", "r0 = -16\nr0 s>>= 2\nexit", 0xffff_ffff_ffff_fffc},
		{"jmp32 ignores the upper half", "r0 = 0x100000005 ll\nif w0 == 5 goto +1\nr0 = 0\nexit", 0x100000005},
		{"jmp64 sees it", "r0 = 0x100000005 ll\nif r0 == 5 goto +1\nr0 = 0\nexit", 0},
		{"signed compare", "r0 = -1\nif r0 s< 0 goto +1\nr0 = 0\nexit", 0xffff_ffff_ffff_ffff},
		{"unsigned compare", "r0 = -1\nif r0 < 0 goto +1\nr0 = 0\nexit", 0},
		{"jump over ld_imm64", "r0 = 1\nif r0 == 1 goto +2\nr0 = 2 ll\nexit", 1},
		{"backward jump loop", "r0 = 0\nr1 = 10\nloop: r0 += r1\nr1 -= 1\nif r1 != 0 goto loop\nexit", 55},
		{"store imm u8 then load u64", "*(u64 *)(r10 - 8) = -1\n*(u8 *)(r10 - 8) = 0\nr0 = *(u64 *)(r10 - 8)\nexit", 0xffff_ffff_ffff_ff00},
		{"store imm u64 sign-extends", "*(u64 *)(r10 - 8) = -2\nr0 = *(u64 *)(r10 - 8)\nexit", 0xffff_ffff_ffff_fffe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := worldDef{progs: []progDef{{"main", tt.src}}}.build(t)
			res := interp.New(w, interp.Config{}).Run(w.Prog("main"), nil)
			if res.Fault != nil || res.R0 != tt.r0 {
				t.Errorf("r0 %#x fault %v, want %#x", res.R0, res.Fault, tt.r0)
			}
		})
	}
}

// locNoLine is a location without its source line, as tests write it.
func locNoLine(l prog.Loc) string {
	l.Line = 0
	return l.String()
}

func ptr[T any](v T) *T { return &v }
