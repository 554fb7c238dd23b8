package listing_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current listings")

// golden is a listing kept whole in testdata/NAME.golden.
type golden struct {
	name string
	file string // from the repository root, as the header shows it
	arch string
	v    prog.Kernel
	o    listing.Options // Source and Config come from the scenario
	hex  bool
	rel  bool // TextOptions.Rel
	// layout overrides the scenario's, as -layout does.
	layout string
}

// goldens are "tailsim disasm" listings kept whole: a change to the
// listing's text shows as a diff here. The set covers each site kind on
// both variants, both arches, subprograms, hardening, -hex, -syntax att,
// -layout, PROG and PROG/FUNC, the header's notes, and direct tail calls'
// poke sites with a filled slot, an empty one and as JITed (-as-jited),
// and -rel.
var goldens = []golden{
	{name: "x86_upstream_indirect", file: "scenarios/library/test_bpf/01_tail_call_2.txtar", arch: "x86_64"},
	{name: "x86_patched_static", file: "scenarios/library/test_bpf/01_tail_call_2.txtar", arch: "x86_64", v: prog.Linux618Series},
	{name: "x86_upstream_direct", file: "scenarios/library/edges/self_loop_direct.txtar", arch: "x86_64"},
	{name: "x86_patched_dynamic", file: "scenarios/library/edges/poisoned_map.txtar", arch: "x86_64", v: prog.Linux618Series},
	{name: "x86_patched_mixed_sites", file: "scenarios/library/findings/patched_x86_mixed_sites.txtar", arch: "x86_64", v: prog.Linux618Series},
	{name: "x86_upstream_subprograms", file: "scenarios/library/selftests/tailcall_bpf2bpf_hierarchy_1.txtar", arch: "x86_64"},
	{name: "x86_hex", file: "scenarios/library/edges/self_loop_direct.txtar", arch: "x86_64", v: prog.Linux618Series, hex: true},
	{name: "x86_att", file: "scenarios/library/edges/poisoned_map.txtar", arch: "x86_64", v: prog.Linux618Series, o: listing.Options{Syntax: "att"}},
	{name: "x86_hardening", file: "scenarios/library/edges/hardening.txtar", arch: "x86_64"},
	{name: "x86_distro", file: "scenarios/library/edges/empty_slot.txtar", arch: "x86_64", o: listing.Options{Config: prog.Configs[1].Config}},
	{name: "x86_distro_eibrs_patched", file: "scenarios/library/edges/poisoned_map.txtar", arch: "x86_64", v: prog.Linux618Series, o: listing.Options{Config: prog.Configs[2].Config}},
	{name: "x86_smp_processor_id", file: "scenarios/library/edges/smp_processor_id_inlined.txtar", arch: "x86_64"},
	{name: "arm64_smp_processor_id", file: "scenarios/library/edges/smp_processor_id_inlined.txtar", arch: "arm64"},
	{name: "x86_object_globals", file: "scenarios/library/objects/globals.txtar", arch: "x86_64", v: prog.Linux618Series, o: listing.Options{Prog: "classifier"}},
	{name: "arm64_array_lookup", file: "scenarios/library/edges/array_map_lookup.txtar", arch: "arm64", o: listing.Options{Prog: "entry"}},
	{name: "x86_layout_prog", file: "scenarios/library/test_bpf/01_tail_call_2.txtar", arch: "x86_64", layout: "pre-v6.18", o: listing.Options{Prog: "tail_call_2"}},
	{name: "x86_prog_func", file: "scenarios/library/selftests/tailcall_bpf2bpf_1.txtar", arch: "x86_64", hex: true,
		o: listing.Options{Syntax: "att", Prog: "entry", Func: "subprog_tail"}},
	// Direct tail calls' poke sites as the slots leave them at load, and
	// as JITed: the same program, so the two files differ in the pokes.
	{name: "x86_direct_filled", file: "listing/testdata/subprog.txtar", arch: "x86_64", hex: true},
	{name: "x86_as_jited", file: "listing/testdata/subprog.txtar", arch: "x86_64", hex: true, o: listing.Options{AsJITed: true}},
	{name: "x86_direct_empty", file: "scenarios/library/edges/empty_slot.txtar", arch: "x86_64", o: listing.Options{Prog: "entry"}},
	// -rel: branch targets as offsets, calls and tail-call jumps into other
	// functions by name, no bpf_func.
	{name: "x86_rel", file: "scenarios/library/selftests/tailcall_bpf2bpf_1.txtar", arch: "x86_64", rel: true},
	// tail_call_reachable: entry and tc get the counter pair, leaf (called
	// after tc) does not.
	{name: "x86_tail_call_reachable", file: "scenarios/library/edges/tail_call_reachable.txtar", arch: "x86_64"},
	{name: "arm64_upstream_indirect", file: "scenarios/library/test_bpf/01_tail_call_2.txtar", arch: "arm64"},
	{name: "arm64_patched_static", file: "scenarios/library/test_bpf/01_tail_call_2.txtar", arch: "arm64", v: prog.Linux618Series},
	{name: "arm64_patched_subprograms", file: "scenarios/library/selftests/tailcall_bpf2bpf_3.txtar", arch: "arm64", v: prog.Linux618Series},
	{name: "arm64_hex", file: "scenarios/library/edges/poisoned_map.txtar", arch: "arm64", hex: true},
	{name: "arm64_hardening", file: "scenarios/library/edges/hardening.txtar", arch: "arm64", v: prog.Linux618Series},
	{name: "arm64_restricted", file: "listing/testdata/restricted.txtar", arch: "arm64"},
	{name: "arm64_rel", file: "scenarios/library/selftests/tailcall_bpf2bpf_3.txtar", arch: "arm64", v: prog.Linux618Series, rel: true},
}

func TestGolden(t *testing.T) {
	for _, tt := range goldens {
		t.Run(tt.name, func(t *testing.T) {
			sc := load(t, tt.file)
			layout := sc.Layout
			if tt.layout != "" {
				var err error
				if layout, err = prog.LayoutByName(tt.layout); err != nil {
					t.Fatal(err)
				}
			}
			l := build(t, sc, layout, tt.arch, tt.v, tt.o)
			var got bytes.Buffer
			if err := l.WriteText(&got, listing.TextOptions{Hex: tt.hex, Rel: tt.rel}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./listing -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s differs (-want +got; go test ./listing -update rewrites it):\n%s", path, diff)
			}
		})
	}
}

// Every golden file belongs to a case: a renamed case leaves none behind.
func TestGoldenFilesHaveCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".golden")
		if !slices.ContainsFunc(goldens, func(g golden) bool { return g.name == name }) {
			t.Errorf("%s has no case in goldens", f)
		}
	}
}

// load parses a scenario named from the repository root under that name.
func load(t *testing.T, file string) *scenarios.Scenario {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	// Named from the root, read from here: an object it names too.
	sc, err := scenarios.ParseWith(file, data, func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join("..", filepath.Dir(file), name))
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// build lists a scenario as "tailsim disasm" does.
func build(t *testing.T, sc *scenarios.Scenario, layout prog.Layout, arch string, v prog.Kernel, o listing.Options) *listing.Listing {
	t.Helper()
	w, err := sc.BuildFor(v, &layout, arch)
	if err != nil {
		t.Fatal(err)
	}
	o.Config = sc.Config.Under(o.Config)
	o.Source = listing.Source{File: sc.File, Title: sc.Title, Arches: sc.Arches, Kernels: sc.Kernels}
	l, err := listing.Build(w, listing.ArchByName(arch), v, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
