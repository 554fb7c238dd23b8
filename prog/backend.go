package prog

// Backend runs worlds on one architecture: the reference model, or an
// emulated JIT. It lives beside World and Result so that backends depend on
// the program model only, never on the scenario layer that drives them.
type Backend interface {
	// Name is the arch name scenarios and -arch use.
	Name() string
	// DirectTailCalls reports whether the arch's JIT turns the verifier's
	// direct tail calls into patched jumps (x86-64) or ignores the mark
	// and reads the array like any other site (arm64). TailCallSite.Kind
	// takes it, and the reference model beside a backend takes it too.
	DirectTailCalls() bool
	// Load prepares w for the variant. The Machine reads the world's arrays
	// as they are now and is told of every later change through Apply.
	Load(w *World, v Kernel, o LoadOptions) (Machine, error)
}

// LoadOptions apply to every run of a loaded world.
type LoadOptions struct {
	Budget int  // instructions per invocation; 0 means the backend's default
	Trace  bool // record events
	// Step records every instruction executed (Result.Execs) and the cost
	// of each tail call, and implies Trace. It is slow, for teaching and
	// for explaining one run: the budget then counts instructions exactly.
	Step bool
	// Cost measures each tail call (Result.Costs) as Step does, but keeps
	// only the instructions of tail calls while it measures them, so that
	// whole scenarios can report costs (run -json). Ignored by backends
	// without machine code.
	Cost bool
	// Config adds control-flow protections to the backend's own; each
	// arch takes the ones it has (x86-64 IBT, arm64 BTI and PAC). They
	// move where a tail call lands, not what it does, so the reference
	// model ignores them.
	Config Config
	// Placement is where the backend puts the struct bpf_progs; the
	// reference model ignores it.
	Placement Placement
}

// Recorder is a Machine loaded with Step that can run without recording:
// a caller that keeps only some runs of a stepped world (the first and
// last of a repeated step) runs the others quietly, at a fraction of the
// cost. The budget still counts instructions.
type Recorder interface {
	Record(on bool)
}

// CountPresetter is a Machine that can start a run near the tail-call
// limit without running the chain that would get there: the first tail
// call of every following run finds the counter at n, as n taken tail
// calls before it would have left it (the frame and the counter are the
// invocation's, so nothing else of the chain survives into the site). A
// fuzzer reaches "counter 32 at the site" with one call instead of 33;
// fuzz's TestCountPresetEquivalence holds the shortcut to real chains on
// both arches and variants and under both counting rules, for sampled
// sites: indirect, direct, static and dynamic paths, in a main function
// or a subprogram, with stack depths that differ along the chain, with
// and without control-flow hardening, default layout. A run that makes
// no tail call reports count 0 either way.
type CountPresetter interface {
	PresetCount(n uint64)
}

// Machine is a loaded world.
type Machine interface {
	// Run invokes entry once. ctx (nil for a NULL ctx) is updated in place so
	// repeated runs share state.
	Run(entry *Program, ctx []byte) *Result
	// Apply mirrors one step of a slot change that the runner has already
	// applied to the model arrays.
	Apply(e Effect) error
	// Close releases what Load took (engines go back to their pool).
	Close()
}
