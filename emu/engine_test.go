package emu

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

const (
	codeAt   = 0x10000
	stopAt   = 0x20000 // inside the arena: reaching it ends a run
	dataAt   = 0x30000
	sparseAt = 0x10_0000_0000
)

func newX86Engine(t *testing.T) *engine {
	t.Helper()
	e, err := newEngine(archX86)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close() })
	if err := e.arena(codeAt, 0x20000); err != nil {
		t.Fatal(err)
	}
	return e
}

// run writes code (which must end by jumping to the sentinel) into the
// arena, when given, and runs it.
func run(t *testing.T, e *engine, prog []byte, rax uint64) (outcome, uint64) {
	t.Helper()
	if prog != nil {
		if err := e.writeCode(codeAt, prog); err != nil {
			t.Fatal(err)
		}
	}
	e.regWrite(uc.X86_REG_RAX, rax)
	out := e.run(codeAt, stopAt, 1000, time.Second)
	rax, _ = e.regRead(uc.X86_REG_RAX)
	return out, rax
}

// mov rax, [rax]; mov ecx, 0x20000; jmp rcx
var loadViaRAX = []byte{0x48, 0x8b, 0x00, 0xb9, 0x00, 0x00, 0x02, 0x00, 0xff, 0xe1}

func TestMapExactBounds(t *testing.T) {
	e := newX86Engine(t)
	obj := make([]byte, 12) // mapped on a page, the other 4084 bytes guarded
	binary.LittleEndian.PutUint64(obj[4:], 0x1122334455667788)
	if err := e.mapObject(dataAt+0x100, obj, uc.PROT_READ|uc.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	out, rax := run(t, e, loadViaRAX, dataAt+0x104)
	if out.Fault != nil || out.Err != nil || rax != 0x1122334455667788 {
		t.Fatalf("in-bounds load: %+v rax=%#x", out, rax)
	}
	for _, addr := range []uint64{dataAt + 0x100 + 8, dataAt + 0xff, dataAt} {
		out, _ = run(t, e, nil, addr)
		if out.Fault == nil || out.Fault.Addr != addr || out.Fault.PC != codeAt {
			t.Errorf("load at %#x: want a fault at that address from pc %#x, got %+v", addr, codeAt, out.Fault)
		}
	}
	out, _ = run(t, e, nil, dataAt+0x5000)
	if out.Fault == nil || out.Fault.Addr != dataAt+0x5000 {
		t.Errorf("unmapped load: %+v", out)
	}
}

func TestLazyRegion(t *testing.T) {
	e := newX86Engine(t)
	fills := 0
	// A 2^35-byte region: only touched pages exist.
	err := e.addLazy(&lazy{Name: "array", Start: sparseAt + 0x40, End: sparseAt + 1<<35, Fill: func(addr uint64, page []byte) {
		fills++
		for i := 0; i < len(page); i += 8 {
			binary.LittleEndian.PutUint64(page[i:], addr+uint64(i))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	prog := loadViaRAX
	for _, addr := range []uint64{sparseAt + 0x40, sparseAt + 1<<35 - 8, sparseAt + 1<<34} {
		out, rax := run(t, e, prog, addr)
		prog = nil
		if out.Fault != nil || out.Err != nil || rax != addr {
			t.Fatalf("load at %#x: %+v rax=%#x", addr, out, rax)
		}
		if !e.lazyPageMapped(addr) {
			t.Errorf("page of %#x not recorded", addr)
		}
	}
	if fills != 3 {
		t.Errorf("%d pages filled, want 3", fills)
	}
	for _, addr := range []uint64{sparseAt + 0x38, sparseAt + 1<<35} {
		out, _ := run(t, e, nil, addr)
		if out.Fault == nil || out.Fault.Addr != addr {
			t.Errorf("load at %#x outside the region: %+v", addr, out)
		}
	}
	if err := e.unpage(); err != nil || e.lazyPageMapped(sparseAt+0x40) {
		t.Fatalf("unpage: %v", err)
	}
	if err := e.reset(); err != nil {
		t.Fatal(err)
	}
	// (The binding's MemRegions crashes on an engine with no regions, so
	// the reset is checked by behaviour.)
	if out, _ := run(t, e, nil, sparseAt+0x40); out.Fault == nil || out.Fault.Addr != sparseAt+0x40 {
		t.Errorf("the region survived Reset: %+v", out)
	}
}

func TestBudgetAndInvalidInstruction(t *testing.T) {
	e := newX86Engine(t)
	out, _ := run(t, e, []byte{0xeb, 0xfe}, 0) // jmp .
	if !out.Budget || out.Timeout {
		t.Errorf("endless loop: %+v", out)
	}
	// Rewriting code in the arena replaces what Unicorn translated before.
	out, _ = run(t, e, []byte{0x0f, 0x0b}, 0) // ud2
	var ucErr uc.UcError
	if !errors.As(out.Err, &ucErr) || ucErr != uc.ERR_INSN_INVALID || out.PC != codeAt {
		t.Errorf("ud2: want UC_ERR_INSN_INVALID at %#x, got %+v", codeAt, out)
	}
}

// Poke sites are rewritten between runs: the new bytes must be what runs.
func TestWriteCodeReplacesTranslations(t *testing.T) {
	e := newX86Engine(t)
	jmpSentinel := []byte{0xb9, 0x00, 0x00, 0x02, 0x00, 0xff, 0xe1}
	for _, imm := range []byte{1, 2, 3} {
		_, rax := run(t, e, append([]byte{0xb0, imm}, jmpSentinel...), 0) // mov al, imm
		if rax != uint64(imm) {
			t.Fatalf("after writing mov al, %d: rax = %d", imm, rax)
		}
	}
}

// Code changes only through writeCode, which keeps the shadow and drops
// stale translations: a data write that reaches into an arena is refused.
func TestMemWriteRefusesCode(t *testing.T) {
	e := newX86Engine(t)
	for _, at := range []uint64{codeAt, codeAt - 1, stopAt + 0xfff} {
		if err := e.memWrite(at, []byte{0x90, 0x90}); err == nil {
			t.Errorf("a data write at %#x into the arena went through", at)
		}
	}
	if err := e.mapObject(dataAt, make([]byte, 8), uc.PROT_READ|uc.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	if err := e.memWrite(dataAt, []byte{1, 2}); err != nil {
		t.Errorf("a data write: %v", err)
	}
}

// The budget counts blocks: a loop that never ends is stopped after
// exactly that many, however fast the machine; the wall clock is only a
// safety net, reported apart.
func TestBlockBudget(t *testing.T) {
	e := newX86Engine(t)
	// inc rax; jmp back: one block per turn.
	if err := e.writeCode(codeAt, []byte{0x48, 0xFF, 0xC0, 0xEB, 0xFB}); err != nil {
		t.Fatal(err)
	}
	for _, blocks := range []uint64{1, 1000, 50_000} {
		e.regWrite(uc.X86_REG_RAX, 0)
		out := e.run(codeAt, stopAt, blocks, 10*time.Second)
		rax, _ := e.regRead(uc.X86_REG_RAX)
		if !out.Budget || out.Timeout || out.Err != nil || rax != blocks {
			t.Errorf("budget %d: %+v after %d turns", blocks, out, rax)
		}
	}
	// A limit the machine cannot meet in time is a timeout, not a budget.
	e.regWrite(uc.X86_REG_RAX, 0)
	if out := e.run(codeAt, stopAt, 1<<62, 20*time.Millisecond); out.Budget || !out.Timeout {
		t.Errorf("no time: %+v", out)
	}
}

// Lazily mapped pages are backed by pooled host pages: unmapped pages go
// back to the pool and the next ones reuse them, with the contents the
// model gives them, not the old ones.
func TestHostPagePool(t *testing.T) {
	e := newX86Engine(t)
	fill := byte(1)
	if err := e.addLazy(&lazy{Name: "array", Start: sparseAt, End: sparseAt + 1<<20, Fill: func(addr uint64, page []byte) {
		for i := range page {
			page[i] = fill
		}
	}}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		fill = byte(round + 1)
		for _, addr := range []uint64{sparseAt, sparseAt + 0x5000, sparseAt + 0x9000} {
			out, rax := run(t, e, loadViaRAX, addr)
			if out.Fault != nil || rax != uint64(fill)*0x0101010101010101 {
				t.Fatalf("round %d, load at %#x: %+v rax=%#x", round, addr, out, rax)
			}
		}
		if err := e.unpage(); err != nil {
			t.Fatal(err)
		}
		if len(e.host.all) != 3 || len(e.host.free) != 3 {
			t.Errorf("round %d: %d host pages, %d free; want 3 reused", round, len(e.host.all), len(e.host.free))
		}
	}
}
