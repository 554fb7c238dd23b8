package prog

import (
	"fmt"
	"strings"
)

// Config is a kernel build configuration together with the CPU features
// its JIT consults at boot: everything that changes the bytes a JIT emits
// for the same program. It is a set of options; each arch's JIT takes the
// ones it has and ignores the others, so one Config names a whole build
// (a distribution's x86-64 and arm64 kernels) and a scenario runs on both
// arches under it. None of them changes what a program computes: the
// reference model ignores the Config.
type Config uint16

const (
	// IBT is x86-64 CONFIG_X86_KERNEL_IBT: endbr64 at each program's start,
	// and X86_TAIL_CALL_OFFSET grows by 4.
	IBT Config = 1 << iota
	// BTI is arm64 CONFIG_ARM64_BTI_KERNEL: "bti jc" at each program's start.
	BTI
	// PAC is arm64 CONFIG_ARM64_PTR_AUTH_KERNEL: paciasp/autiasp.
	PAC
	// Retpoline is x86-64 CONFIG_MITIGATION_RETPOLINE built in. Alone (a
	// CPU that needs no retpolines) it adds an int3 after "jmp rcx".
	Retpoline
	// SLS is x86-64 CONFIG_MITIGATION_SLS: an int3 after "ret" and after
	// "jmp rcx", against straight-line speculation.
	SLS
	// Thunk is X86_FEATURE_RETPOLINE, set at boot when Spectre v2 is
	// mitigated with retpolines: indirect jumps go through
	// __x86_indirect_thunk_rcx. Needs Retpoline.
	Thunk
	// Lfence is X86_FEATURE_RETPOLINE_LFENCE (spectre_v2=retpoline,lfence,
	// chosen on some AMD CPUs): "lfence; jmp rcx". Needs Retpoline.
	Lfence
	// Rethunk is a return thunk in use (CONFIG_MITIGATION_RETHUNK on a CPU
	// that wants one, cpu_wants_rethunk()): returns jump to
	// x86_return_thunk. Needs Retpoline (Kconfig: RETHUNK depends on
	// RETPOLINE).
	Rethunk
	// BMI2 is a CPU with BMI2: shifts by a register are shlx/shrx/sarx.
	BMI2
)

var configNames = []struct {
	c    Config
	name string
}{
	{IBT, "ibt"}, {BTI, "bti"}, {PAC, "pac"},
	{Retpoline, "retpoline"}, {SLS, "sls"}, {Thunk, "thunk"}, {Lfence, "lfence"}, {Rethunk, "rethunk"},
	{BMI2, "bmi2"},
}

// NamedConfig is a preset: a build and machine people run.
type NamedConfig struct {
	Name   string
	Config Config
	Doc    string
}

// distroBuild is what distribution kernels build in on both arches
// (Debian's, among others): retpolines and SLS on x86-64, BTI and PAC on
// arm64; the x86 CPU then decides which mitigations run.
const distroBuild = Retpoline | SLS | BTI | PAC

// Configs lists the presets, in display order; -config all
// runs each.
var Configs = []NamedConfig{
	{"default", 0, "no mitigation or protection built in: jmp rcx, ret, shifts through cl"},
	{"distro", distroBuild | Thunk | Rethunk | BMI2,
		"a distribution build on a CPU that needs retpolines and a return thunk (no eIBRS, Retbleed): " +
			"jmp __x86_indirect_thunk_rcx, jmp x86_return_thunk, BMI2 shifts; arm64 BTI and PAC"},
	{"distro-eibrs", distroBuild | BMI2,
		"the same build on a CPU with eIBRS and no Retbleed: jmp rcx; int3, ret; int3, BMI2 shifts; arm64 BTI and PAC"},
	{"distro-lfence", distroBuild | Lfence | Rethunk | BMI2,
		"the same build with spectre_v2=retpoline,lfence and a return thunk (AMD Zen 1/2): lfence; jmp rcx, " +
			"jmp x86_return_thunk, BMI2 shifts; arm64 BTI and PAC"},
}

// String names the Config as ParseConfig (and -config) reads it: a
// preset's name when it is one, else its options joined with "+"
// ("ibt+pac"), so that a list of configurations stays comma-separated.
func (c Config) String() string {
	for _, p := range Configs {
		if p.Config == c {
			return p.Name
		}
	}
	return c.Options()
}

// Options lists the options, "none" for none.
func (c Config) Options() string {
	var names []string
	for _, n := range configNames {
		if c&n.c != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// ParseConfig reads a list of presets and options separated by commas or
// "+", whose union it is: "distro", "ibt,bti,pac", "distro-eibrs+ibt",
// "none".
func ParseConfig(list string) (Config, error) {
	var c Config
	for _, w := range strings.Split(strings.ReplaceAll(list, "+", ","), ",") {
		w = strings.TrimSpace(w)
		if w == "none" {
			continue
		}
		found := false
		for _, p := range Configs {
			if w == p.Name {
				c, found = c|p.Config, true
			}
		}
		for _, n := range configNames {
			if w == n.name {
				c, found = c|n.c, true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown config %q (%s, or options: %s)", w, strings.Join(ConfigNames(), ", "), allOptions())
		}
	}
	return c, c.Check()
}

// Check refuses what no kernel boots with: a boot-time choice whose code
// the build does not have, or two choices where the kernel makes one.
func (c Config) Check() error {
	switch {
	case c&Thunk != 0 && c&Lfence != 0:
		return fmt.Errorf("config %s: thunk and lfence are two spectre_v2 choices; a kernel makes one", c.Options())
	case c&(Thunk|Lfence) != 0 && c&Retpoline == 0:
		return fmt.Errorf("config %s: thunk and lfence need retpoline (CONFIG_MITIGATION_RETPOLINE builds the thunks)", c.Options())
	case c&Rethunk != 0 && c&Retpoline == 0:
		return fmt.Errorf("config %s: rethunk needs retpoline (CONFIG_MITIGATION_RETHUNK depends on CONFIG_MITIGATION_RETPOLINE)", c.Options())
	}
	return nil
}

// Under is c for a run whose configuration is run: the union, except
// that c's own spectre_v2 choice, if it makes one, replaces run's (a
// scenario that asks for lfence runs with lfence under every preset).
func (c Config) Under(run Config) Config {
	if c&(Thunk|Lfence) != 0 {
		run &^= Thunk | Lfence
	}
	return run | c
}

// ConfigNames lists the presets' names.
func ConfigNames() []string {
	var names []string
	for _, p := range Configs {
		names = append(names, p.Name)
	}
	return names
}

func allOptions() string {
	var names []string
	for _, n := range configNames {
		names = append(names, n.name)
	}
	return strings.Join(names, ", ")
}
