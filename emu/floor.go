package emu

import (
	"fmt"
	"time"

	"tailsim/prog"
)

// BareStart is the Unicorn floor for a loaded world: one Start from the
// entry to the return, with none of our code hooks, no checks and no
// reading of results; the registers are set as for a checked run. The run
// keeps its time limit (an atomic store for the watchdog): a generated
// case may loop. The world's code hooks are removed for good, so the
// machine is for timing only afterwards. Benchmarks compare a checked run
// with it.
func BareStart(pm prog.Machine, entry *prog.Program, ctx []byte) (time.Duration, error) {
	m, ok := pm.(*machine)
	if !ok {
		return 0, fmt.Errorf("emu: %T is not an emulated machine", pm)
	}
	if err := m.e.setCodeHooks(nil, nil); err != nil {
		return 0, err
	}
	if _, err := m.prepare(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	out := m.e.run(m.entry[entry], sentinel, uint64(m.o.Budget), timeLimit(m.o.Budget))
	d := time.Since(start)
	// Whatever the code did, the engine's next user starts clean.
	m.e.ran(nil, true)
	return d, out.Err
}
