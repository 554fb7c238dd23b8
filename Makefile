# tailsim — see README.md. `make run` and `make test` work on a fresh Debian machine.
GO      ?= go
BIN     := bin/tailsim
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZTIME ?= 60s
FUZZWORKERS ?= $(shell nproc)

.PHONY: bpf-objects all deps browser-deps build run test browser-test lint vet generate fuzz bench rss clean oracle-guests kernel-oracle oracle-record

all: build

# The emulated backends link against Unicorn 2.0.1 (Debian's libunicorn-dev).
# Install it only when pkg-config cannot find it.
deps:
	@if ! pkg-config --exists unicorn 2>/dev/null; then \
		echo "installing libunicorn-dev and pkg-config"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q libunicorn-dev pkg-config; \
	fi

# The HTML report's browser test drives Debian's headless Chromium.
# Install it only when it is not on PATH.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; \
	fi

# The BPF objects the tests read (scenarios/library/objects) are committed, so
# that make test needs no clang; this rebuilds them with Debian's clang
# and libbpf-dev headers, installed when missing, and records the clang
# version beside them. Paths are stripped from the debug info
# (-fdebug-prefix-map) so that a rebuild elsewhere is byte for byte the same.
BPF_OBJ_DIR := scenarios/library/objects
BPF_SRCS := $(wildcard $(BPF_OBJ_DIR)/*.bpf.c)
bpf-objects:
	@if ! command -v clang >/dev/null 2>&1 || [ ! -f /usr/include/bpf/bpf_helpers.h ]; then \
		echo "installing clang and libbpf-dev"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q clang libbpf-dev; \
	fi
	@for src in $(BPF_SRCS); do \
		obj=$${src%.c}.o; \
		echo "clang $$src"; \
		clang -target bpf -O2 -g -I/usr/include/$$(uname -m)-linux-gnu \
			-fdebug-prefix-map=$(CURDIR)=. -c $$src -o $$obj || exit 1; \
	done
	clang --version | head -n 1 > $(BPF_OBJ_DIR)/CLANG_VERSION

build: deps
	$(GO) build -o $(BIN) ./cmd/tailsim

run: build
	./$(BIN) run

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test ./...
	@# The fuzz benchmarks' short forms: their every input is checked.
	$(GO) test ./fuzz -run '^$$' -bench 'Inputs|Campaign' -benchtime 300x

# The HTML report in a real browser (report/browser_test.go, build tag
# browser): no console errors, stepping moves the highlight and the
# picture, a screenshot that is not blank. It fails when CI is set and
# Chromium is missing.
browser-test: deps
	$(GO) vet -tags browser ./report
	$(GO) test -tags browser -count=1 -run TestBrowser -v ./report

# The real-kernel oracle (docs/oracle.md): Debian's kernels for x86-64 and
# arm64 booted under QEMU with a static agent as PID 1, running
# every library scenario a real kernel can run; results and JITed bytes are
# compared with tailsim's v6.1. x86-64 boots once per Spectre v2 mitigation
# the JIT emits differently for. QEMU and the kernel packages are fetched
# once into ORACLE_DIR. ORACLE_VMLINUZ_X86_64 / ORACLE_VMLINUZ_ARM64 boot
# other kernel images instead.
ORACLE_DIR ?= .cache/kernel-oracle
oracle-guests:
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -o bin/oracle-guest-x86_64 ./oracle/guest
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -o bin/oracle-guest-arm64 ./oracle/guest

kernel-oracle: build oracle-guests
	@oracle/fetch-kernels $(ORACLE_DIR) >/dev/null
	./$(BIN) oracle -console $(ORACLE_DIR) -spectre-v2 auto,off,lfence $(ORACLE_FLAGS) \
		-vmlinuz-x86_64 $${ORACLE_VMLINUZ_X86_64:-$$(ls $(ORACLE_DIR)/amd64/boot/vmlinuz-* | head -n 1)} \
		-vmlinuz-arm64 $${ORACLE_VMLINUZ_ARM64:-$$(ls $(ORACLE_DIR)/arm64/boot/vmlinuz-* | head -n 1)}

# Records both boots' results into oracle/testdata, which make test replays
# (oracle.TestRecordedBoots) without QEMU: run it when the library changes.
oracle-record:
	$(MAKE) kernel-oracle ORACLE_FLAGS="-record oracle/testdata"

# The String methods of the enums (stringer, a tool directive in go.mod).
# .ci/run checks that the committed files are what this writes.
generate:
	$(GO) generate ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Time-boxed fuzzing: the assembler, the scenario parser, the case generator,
# then a differential campaign whose findings land in fuzz-findings/
# (make test runs only the seed corpora and a short campaign).
fuzz: build
	$(GO) test ./prog/asm -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./scenarios -run '^$$' -fuzz FuzzParseScenario -fuzztime $(FUZZTIME)
	$(GO) test ./fuzz -run '^$$' -fuzz FuzzCase -fuzztime $(FUZZTIME)
	$(GO) test ./fuzz -run '^$$' -fuzz FuzzParams -fuzztime $(FUZZTIME)
	@# The seeds are whole objects: without a bound the engine spends its time
	@# minimising the first interesting one (measured: 10 execs in 60 s).
	$(GO) test ./prog/object -run '^$$' -fuzz FuzzLoadObject -fuzztime $(FUZZTIME) -fuzzminimizetime 5x
	@# Known findings (library/findings/) are listed; only new ones fail (exit 1).
	./$(BIN) fuzz -duration $(FUZZTIME) -workers $(FUZZWORKERS) -out fuzz-findings

# Speed: a fuzz worker's checked inputs/s over the campaign's default mix
# (shapes loaded once, 64 inputs each), its checked cases/s with a new
# shape every case (-inputs 1), and checked inputs/s on one loaded shape
# with data-only inputs; each with the Unicorn floor over the same code and
# inputs measured in the same run (fuzz/bench_test.go explains the
# columns); then the 34-program chain, checked and bare.
bench: deps
	$(GO) test ./fuzz -run '^$$' -bench Campaign -benchtime 20000x -count 3
	$(GO) test ./fuzz -run '^$$' -bench Shapes -benchtime 3000x -count 3
	$(GO) test ./fuzz -run '^$$' -bench Inputs -benchtime 100000x -count 3
	$(GO) test ./emu -run '^$$' -bench . -benchtime 3000x -count 3
	$(GO) test ./prog -run '^$$' -bench Fixup100k -benchtime 10x -count 3

# Memory over a long campaign: 10 million inputs on one worker (about 50
# minutes); the summary line ends with the peak resident memory.
RSS_CASES ?= 10000000
rss: build
	./$(BIN) fuzz -cases $(RSS_CASES) -workers 1 -out $$(mktemp -d) | tail -n 1

clean:
	rm -rf bin
