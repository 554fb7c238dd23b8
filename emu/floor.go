package emu

import (
	"fmt"
	"time"

	"tailsim/prog"
)

// BareStart is the Unicorn floor for a loaded world: one Start from the
// entry to the return, with none of our code hooks, no checks and no
// reading of results; only the registers a call needs are set. The run
// keeps its time limit (an atomic store for the watchdog): a generated
// case may loop. The
// world's code hooks are removed for good, so the machine is for timing
// only afterwards. Benchmarks compare a checked run with it.
func BareStart(pm prog.Machine, entry *prog.Program, ctx []byte) (time.Duration, error) {
	m, ok := pm.(*machine)
	if !ok {
		return 0, fmt.Errorf("emu: %T is not an emulated machine", pm)
	}
	u := m.e.U
	if err := m.e.SetCodeHooks(nil, nil); err != nil {
		return 0, err
	}
	if len(ctx) > 0 {
		if err := u.MemWrite(CtxBase, ctx); err != nil {
			return 0, err
		}
	}
	sp, _ := m.spec.enter(m, StackHi-0x100)
	m.entryVals[0], m.entryVals[1] = sp, CtxBase
	if err := m.entryBatch.Write(u, m.entryVals); err != nil {
		return 0, err
	}
	start := time.Now()
	out := m.e.Run(m.entry[entry], Sentinel, TimeLimit(m.o.Budget))
	d := time.Since(start)
	// Whatever the code did, the engine's next user starts clean.
	m.e.cpuDirty = true
	m.e.Ran(nil, true)
	return d, out.Err
}
