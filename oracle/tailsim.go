package oracle

import (
	"fmt"

	"tailsim/emu"
	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

// Build is tailsim's side of a comparison: what its JIT gives every
// program of sc for kernel k on arch under build c, as loading leaves it
// (direct tail calls poked for the slots the scenario fills) or, with
// asJITed, as emitted. Its Resolve names functions as Images.Resolve
// does, and thunks and helpers by their kernel names.
func Build(sc *scenarios.Scenario, arch string, k prog.Kernel, c prog.Config, asJITed bool) (*Images, error) {
	var la *listing.Arch
	for _, a := range listing.Arches {
		if a.Name == arch {
			la = a
		}
	}
	if la == nil {
		return nil, fmt.Errorf("oracle: no JIT for arch %q", arch)
	}
	w, err := sc.BuildFor(k, nil, arch)
	if err != nil {
		return nil, err
	}
	l, err := listing.Build(w, la, k, listing.Options{Config: sc.Config.Under(c), AsJITed: asJITed})
	if err != nil {
		return nil, err
	}
	im := &Images{Syms: map[uint64]string{}, more: func(addr uint64) string {
		if s, ok := emu.MapAt(w, addr); ok {
			return s
		}
		return stubSym(addr)
	}}
	byProg := map[*prog.Program]*Image{}
	for _, f := range l.Funcs {
		p := byProg[f.Prog]
		if p == nil {
			p = &Image{Prog: f.Prog.Name}
			byProg[f.Prog] = p
			im.Progs = append(im.Progs, p)
		}
		for len(p.Funcs) <= f.Fn {
			p.Funcs = append(p.Funcs, Func{})
		}
		p.Funcs[f.Fn] = Func{Addr: f.Addr, Code: f.Code}
	}
	return im, nil
}

// stubSym names the emulator's thunks and helper stubs by the kernel
// symbols they stand for.
func stubSym(addr uint64) string {
	for _, o := range prog.KernelObjects() {
		if addr == o.Addr {
			return o.Name
		}
	}
	if t, ok := emu.ThunkAt(addr); ok {
		return t
	}
	if h, ok := emu.HelperAt(addr); ok {
		return "bpf_" + h.Name
	}
	return ""
}
