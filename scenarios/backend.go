package scenarios

import (
	"tailsim/prog"
	"tailsim/prog/interp"
)

// Backend runs worlds on one architecture. The reference model is one; the
// emulated x86-64 and arm64 JITs are the others.
type Backend interface {
	// Name is the arch name scenarios and -arch use.
	Name() string
	// Load prepares w for the variant. The Machine reads the world's arrays
	// as they are now and is told of every later change through Apply.
	Load(w *prog.World, v prog.Variant, o LoadOptions) (Machine, error)
}

// LoadOptions apply to every run of a loaded world.
type LoadOptions struct {
	Budget int  // instructions per invocation; 0 means the backend's default
	Trace  bool // record events
}

// Machine is a loaded world.
type Machine interface {
	// Run invokes entry once. ctx (nil for a NULL ctx) is updated in place so
	// repeated runs share state.
	Run(entry *prog.Program, ctx []byte) *prog.Result
	// Apply mirrors one step of a slot change that the runner has already
	// applied to the model arrays.
	Apply(e prog.Effect) error
	// Close releases what Load took (engines go back to their pool).
	Close()
}

// Ref is the reference model's backend.
type Ref struct {
	// Rule is the counting rule; the zero value is the JITs' rule.
	Rule prog.CountRule
	// NoDirect reads ptrs[] at direct sites, as arm64 does.
	NoDirect bool
}

// Name implements Backend.
func (Ref) Name() string { return "ref" }

// Load implements Backend.
func (r Ref) Load(w *prog.World, v prog.Variant, o LoadOptions) (Machine, error) {
	return refMachine{interp.New(w, interp.Config{Variant: v, Rule: r.Rule, NoDirect: r.NoDirect, Budget: o.Budget, Trace: o.Trace})}, nil
}

type refMachine struct{ *interp.Machine }

// Apply needs no work: the interpreter reads the model arrays directly.
func (refMachine) Apply(prog.Effect) error { return nil }
func (refMachine) Close()                  {}
