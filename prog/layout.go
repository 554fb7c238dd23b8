package prog

import (
	"fmt"
	"strings"
)

// Layout holds the structure offsets the JITs bake into their code:
// offsetof(struct bpf_array, map.max_entries), offsetof(struct bpf_array,
// ptrs) and offsetof(struct bpf_prog, bpf_func). They depend on the kernel
// version and config, so they are parameters rather than constants.
type Layout struct {
	Name       string
	MaxEntries uint32
	Ptrs       uint32
	BpfFunc    uint32
}

// Presets are the layouts of docs/kernel.md §8. The first is the default.
var Presets = []Layout{
	{Name: "v6.18", MaxEntries: 0x44, Ptrs: 0x130, BpfFunc: 0x48},
	{Name: "v6.18-nosec", MaxEntries: 0x3c, Ptrs: 0x128, BpfFunc: 0x48},
	{Name: "pre-v6.18", MaxEntries: 0x24, Ptrs: 0x110, BpfFunc: 0x30},
}

// DefaultLayout is the layout used when a scenario names none.
var DefaultLayout = Presets[0]

// LayoutByName finds a preset.
func LayoutByName(name string) (Layout, error) {
	var names []string
	for _, l := range Presets {
		if l.Name == name {
			return l, nil
		}
		names = append(names, l.Name)
	}
	return Layout{}, fmt.Errorf("unknown layout %q (presets: %s)", name, strings.Join(names, ", "))
}

// LayoutError is a layout an arch's JIT cannot encode.
type LayoutError struct {
	Arch   string
	Layout Layout
	Msg    string
}

func (e *LayoutError) Error() string {
	return fmt.Sprintf("%s: layout %s: %s", e.Arch, e.Layout.Name, e.Msg)
}

// maxStructOffset bounds offsets to something a kernel structure could have:
// struct bpf_map and struct bpf_prog are a few hundred bytes.
const maxStructOffset = 4096

// Validate rejects offsets no kernel could have. Arch-specific limits (x86's
// disp8 fields) are the JIT's to report.
func (l Layout) Validate() error {
	switch {
	case l.MaxEntries%4 != 0:
		return fmt.Errorf("layout %s: max_entries offset %#x is not 4-byte aligned", l.Name, l.MaxEntries)
	case l.Ptrs%8 != 0:
		return fmt.Errorf("layout %s: ptrs offset %#x is not 8-byte aligned", l.Name, l.Ptrs)
	case l.BpfFunc%8 != 0:
		return fmt.Errorf("layout %s: bpf_func offset %#x is not 8-byte aligned", l.Name, l.BpfFunc)
	case uint64(l.Ptrs) < uint64(l.MaxEntries)+4:
		return fmt.Errorf("layout %s: ptrs (%#x) must come after max_entries (%#x..%#x)", l.Name, l.Ptrs, l.MaxEntries, uint64(l.MaxEntries)+4)
	case l.Ptrs >= maxStructOffset || l.BpfFunc >= maxStructOffset:
		return fmt.Errorf("layout %s: offsets must be below %#x", l.Name, maxStructOffset)
	}
	return nil
}

func (l Layout) String() string {
	return fmt.Sprintf("%s (max_entries %#x, ptrs %#x, bpf_func %#x)", l.Name, l.MaxEntries, l.Ptrs, l.BpfFunc)
}
