package prog

import (
	"strings"
	"testing"
)

// TestPresets checks the presets against the table of docs/kernel.md §8.
func TestPresets(t *testing.T) {
	want := []Layout{
		{Name: "v6.18", MaxEntries: 0x44, Ptrs: 0x130, BpfFunc: 0x48},
		{Name: "v6.18-nosec", MaxEntries: 0x3c, Ptrs: 0x128, BpfFunc: 0x48},
		{Name: "pre-v6.18", MaxEntries: 0x24, Ptrs: 0x110, BpfFunc: 0x30},
	}
	if len(Presets) != len(want) {
		t.Fatalf("%d presets, want %d", len(Presets), len(want))
	}
	for i, w := range want {
		if Presets[i] != w {
			t.Errorf("preset %d = %+v, want %+v", i, Presets[i], w)
		}
		l, err := LayoutByName(w.Name)
		if err != nil || l != w {
			t.Errorf("LayoutByName(%q) = %+v, %v", w.Name, l, err)
		}
		if err := w.Validate(); err != nil {
			t.Errorf("preset %s does not validate: %v", w.Name, err)
		}
	}
	if DefaultLayout != want[0] {
		t.Errorf("DefaultLayout = %+v, want the v6.18 preset", DefaultLayout)
	}
	if _, err := LayoutByName("v5.10"); err == nil || !strings.Contains(err.Error(), "v6.18") {
		t.Errorf("LayoutByName(v5.10) error %v, want one listing the presets", err)
	}
}

func TestLayoutValidate(t *testing.T) {
	tests := []struct {
		name string
		l    Layout
		msg  string // "" means valid
	}{
		{"minimal", Layout{MaxEntries: 0, Ptrs: 8, BpfFunc: 0}, ""},
		{"ptrs right after max_entries", Layout{MaxEntries: 0x44, Ptrs: 0x48, BpfFunc: 0x48}, ""},
		{"largest", Layout{MaxEntries: 0xff0, Ptrs: 0xff8, BpfFunc: 0xff8}, ""},
		{"max_entries misaligned", Layout{MaxEntries: 0x46, Ptrs: 0x130, BpfFunc: 0x48}, "4-byte"},
		{"ptrs misaligned", Layout{MaxEntries: 0x44, Ptrs: 0x134, BpfFunc: 0x48}, "8-byte"},
		{"bpf_func misaligned", Layout{MaxEntries: 0x44, Ptrs: 0x130, BpfFunc: 0x4c}, "8-byte"},
		{"ptrs before max_entries", Layout{MaxEntries: 0x44, Ptrs: 0x40, BpfFunc: 0x48}, "after max_entries"},
		{"ptrs overlapping max_entries", Layout{MaxEntries: 0x44, Ptrs: 0x44 &^ 7, BpfFunc: 0x48}, "after max_entries"},
		{"ptrs too far", Layout{MaxEntries: 0x44, Ptrs: 0x1000, BpfFunc: 0x48}, "below"},
		{"bpf_func too far", Layout{MaxEntries: 0x44, Ptrs: 0x130, BpfFunc: 0x1000}, "below"},
		// max_entries + 4 must not wrap around: no structure has its
		// max_entries 4 bytes below 4 GiB.
		{"max_entries near 4G", Layout{MaxEntries: 0xfffffffc, Ptrs: 0x130, BpfFunc: 0x48}, "after max_entries"},
		{"max_entries far", Layout{MaxEntries: 0x10000, Ptrs: 0x130, BpfFunc: 0x48}, "after max_entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			switch {
			case tt.msg == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.msg != "" && err == nil:
				t.Errorf("Validate accepted %+v", tt.l)
			case err != nil && !strings.Contains(err.Error(), tt.msg):
				t.Errorf("Validate error %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}
