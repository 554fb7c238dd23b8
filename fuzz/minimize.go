package fuzz

import "tailsim/prog"

// Minimize simplifies a case while a finding with the same signature (and
// the same Known explanation) stays:
// it drops, one at a time, each ingredient a case can do without, keeping
// each change that keeps the finding. max_entries and the index stay: they
// are what a finding is about.
func Minimize(f Finding, backends []prog.Backend, variants []prog.Kernel) Finding {
	simplify := []func(c *Case){
		// A stream's world declares what every input may use; the case
		// alone needs less.
		func(c *Case) { c.Stream = false },
		func(c *Case) { c.Window = NoWindow },
		func(c *Case) { c.Noise = 0 },
		func(c *Case) { c.Chain = 0 },
		// A chain the finding needs only for its count: the counter
		// preset reaches the same count with one program fewer to read.
		func(c *Case) { c.Chain, c.Preset = 0, c.Chain },
		func(c *Case) { c.Preset = 0 },
		func(c *Case) { c.InSub = false },
		func(c *Case) { c.Saved = 1 },
		func(c *Case) { c.Stack = 0 },
		func(c *Case) { c.Other = false },
		func(c *Case) { c.Poisoned, c.Other = false, false },
		func(c *Case) { c.KeyALU = false },
		func(c *Case) { c.Target = Leaf },
		func(c *Case) { c.Fill = FillIndex },
		func(c *Case) { c.Config = 0 },
		func(c *Case) { c.NoDirect = false },
		func(c *Case) { c.Placement = prog.PlaceKernel },
		func(c *Case) { c.Unprivileged = false },
		func(c *Case) { c.Layout = prog.DefaultLayout },
	}
	best := f
	for _, s := range simplify {
		c := best.Case
		s(&c)
		if c == best.Case {
			continue
		}
		fs, err := Check(c, backends, variants)
		if err != nil {
			continue
		}
		for _, g := range fs {
			// Same failure, same explanation: a new finding must not
			// minimise into the shape of a known one, nor the reverse.
			if g.Signature == best.Signature && g.Arch == best.Arch && g.Kernel == best.Kernel && Known(g) == Known(best) {
				best = g
				break
			}
		}
	}
	return best
}
