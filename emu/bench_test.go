package emu

import (
	"testing"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"tailsim/prog"
	"tailsim/scenarios"
)

func chain34(b *testing.B, be *Backend, v prog.Kernel) (*machine, *prog.World, []byte) {
	b.Helper()
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range scs {
		if sc.File != "library/edges/chain_34.txtar" {
			continue
		}
		w, err := sc.Build()
		if err != nil {
			b.Fatal(err)
		}
		m, err := be.Load(w, v, prog.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Close)
		return m.(*machine), w, append([]byte(nil), w.Ctx...)
	}
	b.Fatal("chain_34 not in the library")
	return nil, nil, nil
}

// benchRun runs the 34-program chain (33 tail calls) with every check on,
// on one reused engine.
func benchRun(b *testing.B, newBackend func() *Backend) {
	for _, v := range prog.Kernels {
		b.Run(v.String(), func(b *testing.B) {
			m, w, ctx := chain34(b, newBackend(), v)
			entry := w.Progs[0]
			for b.Loop() {
				clear(ctx)
				r := m.Run(entry, ctx)
				if r.Count != 33 || r.Fault != nil || len(r.Violations) > 0 {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}

// benchFloor is Unicorn's floor for the same code: one bare Start, no
// hooks of ours, no budget, no checks.
func benchFloor(b *testing.B, newBackend func() *Backend) {
	for _, v := range prog.Kernels {
		b.Run(v.String(), func(b *testing.B) {
			m, w, ctx := chain34(b, newBackend(), v)
			if err := m.e.setCodeHooks(nil, nil); err != nil {
				b.Fatal(err)
			}
			entry := m.entry[w.Progs[0]]
			m.Run(w.Progs[0], ctx) // page in the array, write the return address
			at := m.spec.at
			sp := at.runSP()
			regs := []int{m.spec.spReg, m.spec.r1Reg}
			if m.spec.arch == archArm64 {
				regs = append(regs, uc.ARM64_REG_X30)
			}
			vals := []uint64{sp, ctxBase, at.sentinel()}[:len(regs)]
			for b.Loop() {
				if err := m.e.bareStart(regs, vals, entry, at.sentinel()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bareStart is the floor's run: the registers written and one Start, with
// no watchdog deadline (a run's two atomic stores) and nothing undone.
func (e *engine) bareStart(regs []int, vals []uint64, pc, until uint64) error {
	e.u.RegWriteBatch(regs, vals)
	return e.u.Start(pc, until)
}

func BenchmarkRunX86(b *testing.B)   { benchRun(b, func() *Backend { return NewX86(0) }) }
func BenchmarkFloorX86(b *testing.B) { benchFloor(b, func() *Backend { return NewX86(0) }) }
func BenchmarkRunArm64(b *testing.B) { benchRun(b, func() *Backend { return NewArm64(0) }) }
func BenchmarkFloorArm64(b *testing.B) {
	benchFloor(b, func() *Backend { return NewArm64(0) })
}

// BenchmarkNewEngine is what retiring an engine costs (maxLoads, maxChurn):
// a new Unicorn instance set up for any world of the arch, and closed.
func BenchmarkNewEngine(b *testing.B) {
	for _, be := range []*Backend{NewX86(0), NewArm64(0)} {
		b.Run(be.Name(), func(b *testing.B) {
			for b.Loop() {
				e, err := be.newReadyEngine()
				if err != nil {
					b.Fatal(err)
				}
				e.close()
			}
		})
	}
}
