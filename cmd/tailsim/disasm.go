package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

func init() {
	register(&command{
		name: "disasm",
		summary: `list the machine code a JIT emits for a scenario's programs

The listing is grouped under the BPF instruction each machine instruction
came from: its slot index, its assembly and its struct bpf_insn encoding
(tail calls as the verifier leaves them after fix-up), then the machine
instructions with their offset in the function, optionally their bytes,
the decoded text and the JIT's annotation. The prologue and epilogue get
their own groups. x86's direct tail calls are shown as the scenario's slots
leave them when the program is loaded (a filled slot's target site poked
to jmp the slot's program); -as-jited lists the code before those pokes.
-rel prints no load address (function-relative branch targets, other
functions by name), for diffing two listings. PROG is a program name
(every function of it, main first) or PROG/FUNC; with no PROG every
program of the scenario is listed.
Exit status: 0 listed, 2 usage or input error.`,
		usage: "tailsim disasm [-arch A] [-kernel K] [-config C] [-layout L] [-syntax att|intel] [-hex] [-as-jited] [-rel] SCENARIO [PROG]",
		run:   disasmCmd,
	})
	flagSetups["disasm"] = func(fs *flag.FlagSet) { newDisasmFlags(fs) }
}

func disasmArchNames() string {
	var names []string
	for _, a := range listing.Arches {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func lookupDisasmArch(name string) (*listing.Arch, error) {
	if a := listing.ArchByName(name); a != nil {
		return a, nil
	}
	switch {
	case name == (scenarios.Ref{}).Name():
		return nil, fmt.Errorf("arch %q is the reference model and has no machine code (available: %s)", name, disasmArchNames())
	case slices.Contains(scenarios.KnownArches, name):
		return nil, fmt.Errorf("arch %q is not available in this build yet (available: %s)", name, disasmArchNames())
	}
	return nil, fmt.Errorf("unknown arch %q (available: %s)", name, disasmArchNames())
}

type disasmFlags struct {
	arch, kernel, config, layout, syntax *string
	hex, asJITed, rel                    *bool
}

func newDisasmFlags(fs *flag.FlagSet) disasmFlags {
	return disasmFlags{
		arch:    fs.String("arch", listing.Arches[0].Name, "arch whose JIT to list ("+disasmArchNames()+")"),
		kernel:  fs.String("kernel", prog.Linux618.String(), kernelUsage),
		config:  fs.String("config", "default", configUsage),
		layout:  fs.String("layout", "", "structure layout preset (v6.18, v6.18-nosec, pre-v6.18), overriding the scenario's"),
		syntax:  fs.String("syntax", "", "assembly syntax: intel (default) or att"),
		hex:     fs.Bool("hex", false, "show each machine instruction's bytes"),
		asJITed: fs.Bool("as-jited", false, "list the code as JITed, before the load pokes direct tail calls whose slot is filled"),
		rel:     fs.Bool("rel", false, "print no load address: branch targets as offsets in the function or name+off, for diffs"),
	}
}

func disasmCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("disasm", flag.ContinueOnError)
	f := newDisasmFlags(fs)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		return usagef("missing SCENARIO argument\nusage: %s", commands["disasm"].usage)
	case 1, 2:
	default:
		return usagef("too many arguments (%q...); want SCENARIO [PROG]", pos[2])
	}
	arch, err := lookupDisasmArch(*f.arch)
	if err != nil {
		return usageError{err}
	}
	if _, err := arch.Syntax(*f.syntax); err != nil {
		return usageError{err}
	}
	v, err := prog.ParseKernel(*f.kernel)
	if err != nil {
		return usageError{err}
	}
	cfg, err := selectConfig(*f.config)
	if err != nil {
		return usageError{err}
	}
	scs, err := scenarios.LoadPaths(pos[:1])
	if err != nil {
		return inputError{err}
	}
	if len(scs) != 1 {
		return usagef("%s holds %d scenarios; name one scenario file", pos[0], len(scs))
	}
	sc := scs[0]
	var layout *prog.Layout
	if *f.layout != "" {
		l, err := prog.LayoutByName(*f.layout)
		if err != nil {
			return usageError{err}
		}
		layout = &l
	}
	w, err := sc.BuildFor(v, layout, arch.Name)
	if err != nil {
		return inputError{err}
	}
	o := listing.Options{Config: sc.Config.Under(cfg), Syntax: *f.syntax, AsJITed: *f.asJITed,
		Source: listing.Source{File: sc.File, Title: sc.Title, Arches: sc.Arches, Kernels: sc.Kernels}}
	if len(pos) == 2 {
		o.Prog, o.Func, _ = strings.Cut(pos[1], "/")
	}
	l, err := listing.Build(w, arch, v, o)
	var selErr *listing.SelectionError
	switch {
	case errors.As(err, &selErr):
		return usageError{err}
	case err != nil:
		if located := sc.Locate(err); located != err {
			return inputError{located}
		}
		return usageError{fmt.Errorf("%s: %s %s: %w", sc.File, arch.Name, v, err)}
	}
	return l.WriteText(stdout, listing.TextOptions{Hex: *f.hex, Rel: *f.rel})
}
