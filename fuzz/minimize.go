package fuzz

import "tailsim/prog"

// Minimize simplifies a case while a finding with the same signature stays:
// it drops callee-saved registers, the stack, the second map, the self
// loop and the custom layout, one at a time, keeping each change that
// keeps the finding.
func Minimize(f Finding, backends []prog.Backend, variants []prog.Variant) Finding {
	simplify := []func(c *Case){
		func(c *Case) { c.Saved = 0 },
		func(c *Case) { c.Stack = 0 },
		func(c *Case) { c.Poisoned = false },
		func(c *Case) { c.SelfLoop = false },
		func(c *Case) { c.Layout = prog.DefaultLayout.Name },
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
			if g.Signature == best.Signature {
				best = g
				break
			}
		}
	}
	return best
}
