package prog

import "fmt"

//go:generate go tool stringer -type=Placement -linecomment -output=placement_string.go

// Placement chooses where a backend puts the struct bpf_progs, whose
// addresses no JITed code contains: only the array's ptrs[] hold them.
// Every placement is a kernel's; they differ in which pointers have their
// low 32 bits zero, which is what an empty-slot test of a pointer's low
// half (test ecx, ecx; cbz w11) gets wrong. The reference model ignores
// it.
type Placement uint8

const (
	// PlaceKernel puts the struct bpf_progs on consecutive vmalloc pages
	// from a 4 GiB boundary: the first program's pointer has its low 32
	// bits zero, the others do not.
	PlaceKernel Placement = iota // kernel
	// PlaceAligned puts every struct bpf_prog at a 4 GiB boundary: every
	// filled ptrs[] slot has its low 32 bits zero.
	PlaceAligned // aligned
)

// Placements are the placements, in order.
var Placements = []Placement{PlaceKernel, PlaceAligned}

// ParsePlacement is the inverse of String.
func ParsePlacement(s string) (Placement, error) {
	if p, ok := byName(s, Placements...); ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown placement %q (kernel, aligned)", s)
}
