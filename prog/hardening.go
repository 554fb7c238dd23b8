package prog

import (
	"fmt"
	"strings"
)

// Hardening is a set of the kernel's control-flow protections for JITed
// code: each puts a landing pad or a signing instruction at the program
// start and so moves the tail-call entry.
type Hardening uint8

const (
	IBT Hardening = 1 << iota // x86-64 CONFIG_X86_KERNEL_IBT: endbr64
	BTI                       // arm64 CONFIG_ARM64_BTI_KERNEL: bti jc
	PAC                       // arm64 CONFIG_ARM64_PTR_AUTH_KERNEL: paciasp/autiasp
)

var hardeningNames = []struct {
	h    Hardening
	name string
}{{IBT, "ibt"}, {BTI, "bti"}, {PAC, "pac"}}

// String lists the set as ParseHardening reads it: "ibt,pac", or "none".
func (h Hardening) String() string {
	var names []string
	for _, n := range hardeningNames {
		if h&n.h != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// ParseHardening reads a comma-separated list of ibt, bti, pac, or none.
func ParseHardening(list string) (Hardening, error) {
	var h Hardening
	for _, w := range strings.Split(list, ",") {
		w = strings.TrimSpace(w)
		if w == "none" {
			continue
		}
		found := false
		for _, n := range hardeningNames {
			if w == n.name {
				h, found = h|n.h, true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown hardening %q (ibt, bti, pac, none)", w)
		}
	}
	return h, nil
}
