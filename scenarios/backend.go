package scenarios

import (
	"tailsim/prog"
	"tailsim/prog/interp"
)

// Backend, Machine and LoadOptions are prog's; the aliases keep the
// runner's signatures short.
type (
	Backend     = prog.Backend
	Machine     = prog.Machine
	LoadOptions = prog.LoadOptions
)

// Ref is the reference model's backend.
type Ref struct {
	// Rule is the counting rule; the zero value is the JITs' rule.
	Rule prog.CountRule
	// NoDirectTailCalls models a JIT without direct tail calls (arm64):
	// direct sites read the array like any other. The zero value has them,
	// as x86-64 does.
	NoDirectTailCalls bool
}

// Name implements Backend.
func (Ref) Name() string { return "ref" }

// DirectTailCalls implements Backend.
func (r Ref) DirectTailCalls() bool { return !r.NoDirectTailCalls }

// Load implements Backend.
func (r Ref) Load(w *prog.World, v prog.Kernel, o LoadOptions) (Machine, error) {
	return refMachine{interp.New(w, interp.Config{Kernel: v, Rule: r.Rule, NoDirectTailCalls: r.NoDirectTailCalls, Budget: o.Budget, Trace: o.Trace, Step: o.Step})}, nil
}

type refMachine struct{ *interp.Machine }

// Apply needs no work for a slot change: the interpreter reads the model
// arrays directly. A map write goes to the machine's own values.
func (m refMachine) Apply(e prog.Effect) error {
	if e.Kind == prog.EffectMapWrite {
		m.WriteMap(e)
	}
	return nil
}
func (refMachine) Close() {}
