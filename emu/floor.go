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
	return m.bareRun(entry, ctx)
}

// bareRun times one Start with whatever hooks the engine has.
func (m *machine) bareRun(entry *prog.Program, ctx []byte) (time.Duration, error) {
	if _, err := m.prepare(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	out := m.e.run(m.entry[entry], m.spec.at.sentinel(), uint64(m.o.Budget), timeLimit(m.o.Budget))
	d := time.Since(start)
	// Whatever the code did, the engine's next user starts clean.
	m.e.ran(nil, true)
	return d, out.Err
}

// BareStartPreset is BareStart for a run whose counter starts at n, as
// PresetCount makes it: the preset is written by a hook where tail calls
// start (at the first of them, as a checked run writes it), so that is the
// one hook the floor keeps, at every tail-call start whatever n is. The
// floor then runs the instructions the checked run does, plus a callback
// per tail call.
func BareStartPreset(pm prog.Machine, entry *prog.Program, ctx []byte, n uint64) (time.Duration, error) {
	m, ok := pm.(*machine)
	if !ok {
		return 0, fmt.Errorf("emu: %T is not an emulated machine", pm)
	}
	var starts []uint64
	for addr, evs := range m.sites {
		for _, ev := range evs {
			if ev.kind == atStart {
				starts = append(starts, addr)
				break
			}
		}
	}
	first := true
	err := m.e.setCodeHooks(starts, func(addr uint64) {
		if !first || n == 0 {
			return
		}
		for _, ev := range m.sites[addr] {
			if ev.kind == atStart {
				m.presetCounter(m.spec.counter(m, m.regs(), ev.l.Img), n)
				first = false
				return
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return m.bareRun(entry, ctx)
}
