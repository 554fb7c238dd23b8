module tailsim

go 1.26.0

require github.com/google/go-cmp v0.7.0

require github.com/unicorn-engine/unicorn v0.0.0-20221116141649-e9c1c17f6df8

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/arch v0.32.0
	golang.org/x/sys v0.49.0
)

require (
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)

tool golang.org/x/tools/cmd/stringer
