// Command gengolden writes the x86 JIT's golden byte tables
// (../tailcalls.txt, ../prologues.txt, ../extras.txt) by concatenating byte
// fragments of arch/x86/net/bpf_jit_comp.c as the kernel emits them:
// emit_prologue() and emit_prologue_tail_call() (upstream prologue and the
// tcc_ptr protocol), push_callee_regs()/pop_callee_regs() and the epilogue,
// emit_bpf_tail_call_indirect() and emit_bpf_tail_call_direct() (upstream
// indirect and direct tail calls), the same emit_bpf_tail_call_indirect()
// as the "Eliminate max_entries and bpf_func access at runtime" series
// changes it (static and dynamic forms), and the offsetof() values of the
// structure-offset presets. docs/kernel.md §4, §5 and §8 describe each
// fragment.
//
// It deliberately imports nothing from tailsim: the tables must not be a
// copy of the emitter under test. Every fragment below carries the bytes
// and the Intel-syntax text llvm-mc 14 prints for it
// (llvm-mc --disassemble -triple=x86_64 -output-asm-variant=1), so the same
// tables drive the byte comparison (golden_test.go) and the disassembler
// oracles (llvmmc_test.go).
//
// Relative branches to the "out" label are computed from the fragment
// lengths, exactly as the kernel computes them from ctx->tail_call_*_label:
// rel = out - (end of the branch).
//
// Run from jit/x86: go generate (see golden_test.go), or
//
//	go run ./testdata/gengolden testdata
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// insn is one machine instruction of a golden sequence. toOut marks a
// branch to the sequence's out label whose displacement is filled in once
// the sequence length is known: rel8 (1) or rel32 (4).
type insn struct {
	b     []byte
	text  string
	toOut int
}

func i(text string, b ...byte) insn { return insn{b: b, text: text} }

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// mem formats a displacement the way llvm-mc does: "[base + d]", "[base - d]",
// "[base]" for 0.
func mem(base string, d int64) string {
	if d == 0 {
		return "[" + base + "]"
	}
	if d < 0 {
		return fmt.Sprintf("[%s - %d]", base, -d)
	}
	return fmt.Sprintf("[%s + %d]", base, d)
}

// Structure offsets, docs/kernel.md §8 (written out again here on purpose).
type layout struct {
	name                     string
	maxEntries, ptrs, bpfFun uint32
}

var (
	v618      = layout{"v6.18", 0x44, 0x130, 0x48}
	v618nosec = layout{"v6.18-nosec", 0x3c, 0x128, 0x48}
	prev618   = layout{"pre-v6.18", 0x24, 0x110, 0x30}
	presets   = []layout{v618, v618nosec, prev618}
	// The largest offsets x86's disp8 fields can carry.
	edge = layout{"custom:0x7c:0x180:0x78", 0x7c, 0x180, 0x78}
)

func roundUp8(n int) int { return (n + 7) / 8 * 8 }

// ---- docs/kernel.md §4: prologue ----

var (
	endbr64 = i("endbr64", 0xf3, 0x0f, 0x1e, 0xfa)
	nop5    = i("nop dword ptr [rax + rax]", 0x0f, 0x1f, 0x44, 0x00, 0x00)
	xorRAX  = i("xor rax, rax", 0x48, 0x31, 0xc0)
	nop3    = i("nop dword ptr [rax]", 0x0f, 0x1f, 0x00)
	pushRBP = i("push rbp", 0x55)
	movRBP  = i("mov rbp, rsp", 0x48, 0x89, 0xe5)
	leave   = i("leave", 0xc9)
	ret     = i("ret", 0xc3)
	popRAX  = i("pop rax", 0x58)
)

// regs: which of R6..R9 (rbx, r13, r14, r15) a function names.
type regs struct {
	name string
	used [4]bool
}

var (
	regsNone = regs{"none", [4]bool{}}
	regs68   = regs{"r6,r8", [4]bool{true, false, true, false}}
	regsAll  = regs{"r6,r7,r8,r9", [4]bool{true, true, true, true}}
	regSets  = []regs{regsNone, regs68, regsAll}
)

var (
	pushes = []insn{i("push rbx", 0x53), i("push r13", 0x41, 0x55), i("push r14", 0x41, 0x56), i("push r15", 0x41, 0x57)}
	pops   = []insn{i("pop rbx", 0x5b), i("pop r13", 0x41, 0x5d), i("pop r14", 0x41, 0x5e), i("pop r15", 0x41, 0x5f)}
)

func pushCallee(r regs) []insn {
	var out []insn
	for k := 0; k < 4; k++ {
		if r.used[k] {
			out = append(out, pushes[k])
		}
	}
	return out
}

func popCallee(r regs) []insn {
	var out []insn
	for k := 3; k >= 0; k-- {
		if r.used[k] {
			out = append(out, pops[k])
		}
	}
	return out
}

// prologue is docs/kernel.md §4's prologue table.
func prologue(ibt, subprog, tcReachable bool, stack int, r regs) []insn {
	var s []insn
	if ibt {
		s = append(s, endbr64)
	}
	s = append(s, nop5)
	if tcReachable && !subprog {
		s = append(s, xorRAX)
	} else {
		s = append(s, nop3)
	}
	s = append(s, pushRBP, movRBP)
	// X86_TAIL_CALL_OFFSET: 12, or 16 with IBT.
	if ibt {
		s = append(s, endbr64)
	}
	if stack != 0 {
		rsd := roundUp8(stack)
		s = append(s, i(fmt.Sprintf("sub rsp, %d", rsd), cat([]byte{0x48, 0x81, 0xec}, le32(uint32(rsd)))...))
	}
	if tcReachable {
		if subprog {
			s = append(s, i("push rax", 0x50), i("push rax", 0x50))
		} else {
			s = append(s,
				i("cmp rax, 33", 0x48, 0x83, 0xf8, 0x21),
				i("ja 6", 0x77, 0x06),
				i("push rax", 0x50),
				i("mov rax, rsp", 0x48, 0x89, 0xe0),
				i("jmp 1", 0xeb, 0x01),
				i("push rax", 0x50),
				i("push rax", 0x50))
		}
	}
	return append(s, pushCallee(r)...)
}

// epilogue: pops in reverse, leave, ret (emit_return()).
func epilogue(r regs) []insn { return epilogueFor(r, plain) }

func epilogueFor(r regs, m mitigation) []insn {
	return append(append(popCallee(r), leave), m.ret()...)
}

// ---- docs/kernel.md §13: build configurations ----

// mitigation is what emit_indirect_jump() and emit_return() consult: the
// options built in (CONFIG_MITIGATION_RETPOLINE, CONFIG_MITIGATION_SLS)
// and what the CPU and boot chose (X86_FEATURE_RETPOLINE: thunk,
// X86_FEATURE_RETPOLINE_LFENCE: lfence, a return thunk wanted: rethunk).
// opts is the list as tailsim's config line reads it; preset the
// tailsim preset whose x86 part this is, if any.
type mitigation struct {
	name, opts, preset                     string
	retpoline, sls, thunk, lfence, rethunk bool
	bmi2                                   bool
}

var (
	plain        = mitigation{name: "none"}
	retpolineOff = mitigation{name: "retpoline-built", opts: "retpoline", retpoline: true}
	slsOnly      = mitigation{name: "sls", opts: "sls", sls: true}
	rethunkOnly  = mitigation{name: "retpoline-rethunk", opts: "retpoline,rethunk", retpoline: true, rethunk: true}
	// Debian 12's build on QEMU's -cpu max: retpolines chosen, no return
	// thunk (ret; int3).
	thunkSLS     = mitigation{name: "thunk-sls", opts: "retpoline,sls,thunk", retpoline: true, sls: true, thunk: true}
	distro       = mitigation{name: "distro", opts: "retpoline,sls,thunk,rethunk,bmi2", preset: "distro", retpoline: true, sls: true, thunk: true, rethunk: true, bmi2: true}
	distroEIBRS  = mitigation{name: "distro-eibrs", opts: "retpoline,sls,bmi2", preset: "distro-eibrs", retpoline: true, sls: true, bmi2: true}
	distroLfence = mitigation{name: "distro-lfence", opts: "retpoline,sls,lfence,rethunk,bmi2", preset: "distro-lfence", retpoline: true, sls: true, lfence: true, rethunk: true, bmi2: true}
	mitigations  = []mitigation{retpolineOff, slsOnly, rethunkOnly, thunkSLS, distro, distroEIBRS, distroLfence}
)

// A jump to a thunk holds rel32 0 in the tables: the displacement depends
// on where the image is loaded, and the test checks it reaches the thunk.
func jmpThunk(name string) insn { return i("jmp "+name, 0xe9, 0, 0, 0, 0) }

// indirectJump is emit_indirect_jump(&prog, rcx, ip).
func (m mitigation) indirectJump() []insn {
	switch {
	case m.lfence:
		return []insn{i("lfence", 0x0f, 0xae, 0xe8), i("jmp rcx", 0xff, 0xe1)}
	case m.thunk:
		return []insn{jmpThunk("__x86_indirect_thunk_rcx")}
	}
	s := []insn{i("jmp rcx", 0xff, 0xe1)}
	if m.retpoline || m.sls {
		s = append(s, i("int3", 0xcc))
	}
	return s
}

// ret is emit_return().
func (m mitigation) ret() []insn {
	if m.rethunk {
		return []insn{jmpThunk("__x86_return_thunk")}
	}
	if m.sls {
		return []insn{ret, i("int3", 0xcc)}
	}
	return []insn{ret}
}

// x86 registers of BPF R0..R9 as do_jit() maps them, with their 64- and
// 32-bit names.
var bpfRegs = []struct {
	num          int
	name, name32 string
}{
	{0, "rax", "eax"}, {7, "rdi", "edi"}, {6, "rsi", "esi"}, {2, "rdx", "edx"}, {1, "rcx", "ecx"},
	{8, "r8", "r8d"}, {3, "rbx", "ebx"}, {13, "r13", "r13d"}, {14, "r14", "r14d"}, {15, "r15", "r15d"},
}

func regName(r int, is64 bool) string {
	if is64 {
		return bpfRegs[r].name
	}
	return bpfRegs[r].name32
}

// shiftOp: a register shift's BPF operator, its legacy /ext (d3 /4, /5,
// /7) and its BMI2 mnemonic with the VEX pp that selects it (66, f2, f3).
type shiftOp struct {
	name, bpf, legacy, bmi2 string
	ext, pp                 byte
}

var shiftOps = []shiftOp{
	{"lsh", "<<=", "shl", "shlx", 4, 1},
	{"rsh", ">>=", "shr", "shrx", 5, 3},
	{"arsh", "s>>=", "sar", "sarx", 7, 2},
}

// shiftx is emit_shiftx(): VEX.LZ.<pp>.0F38.W<is64> F7 /r with dst in
// both ModRM fields and src in vvvv.
func shiftx(op shiftOp, dst, src int, is64 bool) insn {
	d, s := bpfRegs[dst].num, bpfRegs[src].num
	b1 := byte(0x40 | 0x02) // ~X set (no index), map 0f38
	if d < 8 {
		b1 |= 0x80 | 0x20 // ~R, ~B
	}
	b2 := byte((^s&0xf)<<3) | op.pp
	if is64 {
		b2 |= 0x80
	}
	modrm := byte(0xc0 | (d&7)<<3 | d&7)
	return i(fmt.Sprintf("%s %s, %s, %s", op.bmi2, regName(dst, is64), regName(dst, is64), regName(src, is64)), 0xc4, b1, b2, 0xf7, modrm)
}

// movReg64 is EMIT_mov(dst, src): always 64-bit, x86 register numbers.
func movReg64(dst, src int, dstName, srcName string) insn {
	rex := byte(0x48)
	if dst >= 8 {
		rex |= 1
	}
	if src >= 8 {
		rex |= 4
	}
	return i(fmt.Sprintf("mov %s, %s", dstName, srcName), rex, 0x89, byte(0xc0|(src&7)<<3|dst&7))
}

// shiftCL is "shl/shr/sar dst, cl" on x86 register d.
func shiftCL(op shiftOp, d int, name string, is64 bool) insn {
	var b []byte
	switch {
	case is64 && d >= 8:
		b = []byte{0x49}
	case is64:
		b = []byte{0x48}
	case d >= 8:
		b = []byte{0x41}
	}
	b = append(b, 0xd3, 0xc0|op.ext<<3|byte(d&7))
	return i(fmt.Sprintf("%s %s, cl", op.legacy, name), b...)
}

// shift is do_jit()'s BPF_ALU{,64} | BPF_{LSH,RSH,ARSH} | BPF_X.
func shift(op shiftOp, dst, src int, is64, bmi2 bool) []insn {
	const rcx, r11 = 1, 11
	if bmi2 && src != 4 {
		return []insn{shiftx(op, dst, src, is64)}
	}
	if src == 4 {
		return []insn{shiftCL(op, bpfRegs[dst].num, regName(dst, is64), is64)}
	}
	s := bpfRegs[src]
	if dst == 4 {
		r11name := "r11"
		if !is64 {
			r11name = "r11d"
		}
		return []insn{movReg64(r11, rcx, "r11", "rcx"), movReg64(rcx, s.num, "rcx", s.name),
			shiftCL(op, r11, r11name, is64), movReg64(rcx, r11, "rcx", "r11")}
	}
	return []insn{i("push rcx", 0x51), movReg64(rcx, s.num, "rcx", s.name),
		shiftCL(op, bpfRegs[dst].num, regName(dst, is64), is64), i("pop rcx", 0x59)}
}

// loadTccPtr is mov rax, [rbp - 16 - round_up(stack, 8)], always disp32.
func loadTccPtr(stack int) insn {
	d := int64(-16 - roundUp8(stack))
	return i("mov rax, qword ptr "+mem("rbp", d), cat([]byte{0x48, 0x8b, 0x85}, le32(uint32(int32(d))))...)
}

// ---- docs/kernel.md §4/§5: tail calls ----

type form int

const (
	indirect form = iota // upstream emit_bpf_tail_call_indirect
	dynamic              // patched, flag 1
	static               // patched, flag 0
	direct               // emit_bpf_tail_call_direct (both variants)
)

func (f form) kind() string { return [...]string{"indirect", "dynamic", "static", "direct"}[f] }

func br(text string, op byte) insn { return insn{b: []byte{op, 0}, text: text, toOut: 1} }

// unwind is the common tail: count++, callee pops, the two tcc pops, add rsp.
func unwind(stack int, r regs) []insn {
	s := []insn{i("add qword ptr [rax], 1", 0x48, 0x83, 0x00, 0x01)}
	s = append(s, popCallee(r)...)
	s = append(s, popRAX, popRAX)
	if stack != 0 {
		rsd := roundUp8(stack)
		s = append(s, i(fmt.Sprintf("add rsp, %d", rsd), cat([]byte{0x48, 0x81, 0xc4}, le32(uint32(rsd)))...))
	}
	return s
}

// tailCall composes one tail-call sequence and resolves its branches to out.
// maxEntries is the static path's map size; tcOff is X86_TAIL_CALL_OFFSET.
func tailCall(f form, l layout, maxEntries uint32, stack int, r regs, tcOff int) []insn {
	return tailCallFor(f, l, maxEntries, stack, r, tcOff, plain)
}

func tailCallFor(f form, l layout, maxEntries uint32, stack int, r regs, tcOff int, m mitigation) []insn {
	var s []insn
	if f == direct {
		s = append(s, loadTccPtr(stack),
			i("cmp qword ptr [rax], 33", 0x48, 0x83, 0x38, 0x21),
			br("jae", 0x73),
			insn{b: []byte{0xe9, 0, 0, 0, 0}, text: "jmp", toOut: 4}) // bypass
		s = append(s, unwind(stack, r)...)
		s = append(s, nop5) // target
		return resolve(s)
	}
	s = append(s, i("mov edx, edx", 0x89, 0xd2))
	switch f {
	case indirect:
		s = append(s, i(fmt.Sprintf("cmp dword ptr %s, edx", mem("rsi", int64(l.maxEntries))), 0x39, 0x56, byte(l.maxEntries)),
			br("jbe", 0x76))
	case dynamic:
		s = append(s, i(fmt.Sprintf("cmp edx, dword ptr %s", mem("rsi", int64(l.maxEntries))), 0x3b, 0x56, byte(l.maxEntries)),
			br("jae", 0x73))
	case static:
		s = append(s, i(fmt.Sprintf("cmp edx, %d", maxEntries), cat([]byte{0x81, 0xfa}, le32(maxEntries))...),
			br("jae", 0x73))
	}
	s = append(s, loadTccPtr(stack),
		i("cmp qword ptr [rax], 33", 0x48, 0x83, 0x38, 0x21),
		br("jae", 0x73))
	// The slot (or, static, the cached target at ptrs[max_entries + index]):
	// the series computes offsetof(ptrs) + max_entries * 8 in a C int, so
	// the disp32 is the low 32 bits of the sum.
	disp := l.ptrs
	if f == static {
		disp = uint32(uint64(l.ptrs) + uint64(maxEntries)*8)
	}
	s = append(s, i("mov rcx, qword ptr "+mem("rsi + 8*rdx", int64(int32(disp))), cat([]byte{0x48, 0x8b, 0x8c, 0xd6}, le32(disp))...),
		i("test rcx, rcx", 0x48, 0x85, 0xc9),
		br("je", 0x74))
	s = append(s, unwind(stack, r)...)
	if f != static {
		s = append(s,
			i(fmt.Sprintf("mov rcx, qword ptr %s", mem("rcx", int64(l.bpfFun))), 0x48, 0x8b, 0x49, byte(l.bpfFun)),
			i(fmt.Sprintf("add rcx, %d", tcOff), 0x48, 0x83, 0xc1, byte(tcOff)))
	}
	s = append(s, m.indirectJump()...)
	return resolve(s)
}

// resolve fills every branch to out (the end of the sequence).
func resolve(s []insn) []insn {
	total := 0
	for _, x := range s {
		total += len(x.b)
	}
	off := 0
	for k := range s {
		x := &s[k]
		off += len(x.b)
		if x.toOut == 0 {
			continue
		}
		rel := total - off
		if x.toOut == 1 {
			if rel > 127 {
				panic("rel8 out of range")
			}
			x.b = []byte{x.b[0], byte(int8(rel))}
		} else {
			x.b = append([]byte{x.b[0]}, le32(uint32(int32(rel)))...)
		}
		x.text = fmt.Sprintf("%s %d", x.text, rel)
		x.toOut = 0
	}
	return s
}

// ---- cases ----

type section struct {
	name  string // "main.prologue", ...
	attrs string // "kind=static sites=1"
	insns []insn
}

type gcase struct {
	params   []string // key=value, "name=" first
	comment  string
	sections []section
}

// spec describes one program the test builds (see golden_test.go's shapes)
// and what the kernel does with it.
type spec struct {
	name    string
	shape   string // program shape, built by the test
	variant string
	fixup   string // default, noverifier, nodirect
	layout  layout
	stack   int
	regs    regs
	ibt     bool
	max     uint32 // max_entries of "progs"
	form    form
	sites   int // tail-call sites in the function holding them
	hasTC   bool
	inSub   bool // the tail call (if any) lives in subprogram "sub"
	hasSub  bool // main calls subprogram "sub"
	// plainSub: the subprogram names no callee-saved register whatever
	// regs says (the shape's sub has no {regs}).
	plainSub bool
	// mit is the build configuration; set, the case says config=.
	mit     mitigation
	comment string
}

func (sp spec) subRegs() regs {
	if sp.plainSub {
		return regsNone
	}
	return sp.regs
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (sp spec) build() gcase {
	tcOff := 12
	if sp.ibt {
		tcOff = 16
	}
	sites := sp.sites
	if sites == 0 {
		sites = 1
	}
	c := gcase{comment: sp.comment, params: []string{
		"name=" + sp.name,
		"shape=" + sp.shape,
		"variant=" + sp.variant,
		"fixup=" + sp.fixup,
		"layout=" + sp.layout.name,
		fmt.Sprintf("stack=%d", sp.stack),
		"regs=" + sp.regs.name,
		"ibt=" + onOff(sp.ibt),
		fmt.Sprintf("max=%d", sp.max),
	}}
	if sp.mit.opts != "" {
		c.params = append(c.params, "config="+sp.mit.opts)
		if sp.mit.preset != "" {
			c.params = append(c.params, "preset="+sp.mit.preset)
		}
	}
	// The main program is tail-call reachable when it or a function it
	// calls contains a tail call.
	mainTC := sp.hasTC
	c.sections = append(c.sections, section{name: "main.prologue", insns: prologue(sp.ibt, false, mainTC, sp.stack, sp.regs)})
	if sp.hasSub {
		var pre []insn
		if mainTC {
			pre = append(pre, loadTccPtr(sp.stack))
		}
		c.sections = append(c.sections, section{name: "main.precall", insns: pre})
	}
	tc := func(fn string) {
		if !sp.hasTC {
			c.sections = append(c.sections, section{name: fn + ".tailcall", attrs: "sites=0"})
			return
		}
		c.sections = append(c.sections, section{name: fn + ".tailcall",
			attrs: fmt.Sprintf("kind=%s sites=%d", sp.form.kind(), sites),
			insns: tailCallFor(sp.form, sp.layout, sp.max, sp.stack, sp.regs, tcOff, sp.mit)})
	}
	if !sp.inSub {
		tc("main")
	} else {
		c.sections = append(c.sections, section{name: "main.tailcall", attrs: "sites=0"})
	}
	c.sections = append(c.sections, section{name: "main.epilogue", insns: epilogueFor(sp.regs, sp.mit)})
	if sp.hasSub {
		// A subprogram is tail-call reachable only when it (or a function
		// it calls) contains a tail call.
		subTC := sp.inSub && sp.hasTC
		c.sections = append(c.sections, section{name: "sub.prologue", insns: prologue(sp.ibt, true, subTC, sp.stack, sp.subRegs())})
		if subTC {
			tc("sub")
		} else {
			c.sections = append(c.sections, section{name: "sub.tailcall", attrs: "sites=0"})
		}
		c.sections = append(c.sections, section{name: "sub.epilogue", insns: epilogueFor(sp.subRegs(), sp.mit)})
	}
	return c
}

// forms of the cross product: the program shape and variant that make the
// verifier and JIT take each path (docs/kernel.md §3–§5).
var forms = []struct {
	name, shape, variant string
	form                 form
}{
	{"upstream-indirect", "tc-var", "upstream", indirect},
	{"upstream-direct", "tc-const", "upstream", direct},
	{"patched-static", "tc-var", "patched", static},
	{"patched-dynamic", "tc-poisoned", "patched", dynamic},
	{"patched-direct", "tc-const", "patched", direct},
}

var stacks = []int{0, 24}

func tailcallTable() []gcase {
	var out []gcase
	for _, f := range forms {
		for _, l := range presets {
			for _, st := range stacks {
				for _, r := range regSets {
					for _, ibt := range []bool{false, true} {
						sp := spec{shape: f.shape, variant: f.variant, fixup: "default", layout: l, stack: st, regs: r, ibt: ibt,
							max: 4, form: f.form, hasTC: true}
						sp.name = fmt.Sprintf("%s/%s/stack%d/%s/ibt-%s", f.name, l.name, st, r.name, onOff(ibt))
						out = append(out, sp.build())
					}
				}
			}
		}
	}
	return out
}

func prologueTable() []gcase {
	var out []gcase
	subForms := []struct {
		name, shape, variant string
		form                 form
	}{
		{"upstream-indirect", "sub-tc-var", "upstream", indirect},
		{"patched-static", "sub-tc-var", "patched", static},
		{"patched-direct", "sub-tc-const", "patched", direct},
	}
	for _, st := range stacks {
		for _, r := range regSets {
			for _, ibt := range []bool{false, true} {
				for _, f := range subForms {
					sp := spec{shape: f.shape, variant: f.variant, fixup: "default", layout: v618, stack: st, regs: r, ibt: ibt,
						max: 4, form: f.form, hasTC: true, inSub: true, hasSub: true,
						comment: "main calls sub, which tail-calls: main gets xor rax,rax and the full tail-call prologue and loads tcc_ptr before the call; sub gets nop3 and push rax; push rax"}
					sp.name = fmt.Sprintf("subprog-%s/stack%d/%s/ibt-%s", f.name, st, r.name, onOff(ibt))
					out = append(out, sp.build())
				}
				for _, v := range []string{"upstream", "patched"} {
					sp := spec{shape: "notail-sub", variant: v, fixup: "default", layout: v618, stack: st, regs: r, ibt: ibt,
						max: 4, hasSub: true,
						comment: "no tail call anywhere: nop3 in both prologues, no tail-call prologue, no tcc_ptr load before the call"}
					sp.name = fmt.Sprintf("notail-sub/%s/stack%d/%s/ibt-%s", v, st, r.name, onOff(ibt))
					out = append(out, sp.build())
				}
				sp := spec{shape: "notail-leaf", variant: "upstream", fixup: "default", layout: v618, stack: st, regs: r, ibt: ibt, max: 4,
					comment: "a leaf program with no tail call and no call"}
				sp.name = fmt.Sprintf("notail-leaf/stack%d/%s/ibt-%s", st, r.name, onOff(ibt))
				out = append(out, sp.build())
			}
		}
	}
	return out
}

func extrasTable() []gcase {
	var out []gcase
	add := func(sp spec) {
		if sp.fixup == "" {
			sp.fixup = "default"
		}
		if sp.layout.name == "" {
			sp.layout = v618
		}
		if sp.max == 0 {
			sp.max = 4
		}
		sp.hasTC = true
		out = append(out, sp.build())
	}
	// The static path's C-int displacement, offsetof(ptrs) + max_entries*8
	// truncated to 32 bits, at its boundaries (v6.18: ptrs = 0x130).
	for _, m := range []struct {
		max  uint32
		note string
	}{
		{1, "smallest map"},
		{0x0fffffd9, "disp32 = 0x7ffffff8, the largest positive"},
		{0x0fffffda, "disp32 = 0x80000000: the sum no longer fits an int and wraps negative"},
		{0x1fffffda, "disp32 = 0x00000000: wrapped to 0"},
		{0x20000000, "disp32 = 0x130: the cached slot aliases ptrs[index]"},
		{0xffffffff, "disp32 = 0x128: u32 max"},
	} {
		add(spec{name: fmt.Sprintf("static-max-%#x", m.max), shape: "tc-var", variant: "patched", max: m.max, regs: regsNone, form: static,
			comment: "patched static path, max_entries " + fmt.Sprint(m.max) + ": " + m.note})
	}
	add(spec{name: "static-map-index-1", shape: "tc-var-mapidx1", variant: "patched", regs: regsNone, form: static,
		comment: "progs is used_maps[1] (another map, max_entries 7, is loaded first): the immediate is progs' max_entries, 4"})
	add(spec{name: "noverifier-const-key/upstream", shape: "tc-const", variant: "upstream", fixup: "noverifier", regs: regsNone, form: indirect,
		comment: "lib/test_bpf builds without the verifier: a constant key stays indirect upstream"})
	add(spec{name: "noverifier-const-key/patched", shape: "tc-const", variant: "patched", fixup: "noverifier", regs: regsNone, form: static,
		comment: "without the verifier every patched site takes the static path with map index 0"})
	add(spec{name: "noverifier-poisoned/patched", shape: "tc-poisoned", variant: "patched", fixup: "noverifier", regs: regsNone, form: static,
		comment: "without the verifier even a two-map site is static on used_maps[0] = progs"})
	add(spec{name: "nodirect-const-key/upstream", shape: "tc-const", variant: "upstream", fixup: "nodirect", regs: regs68, form: indirect,
		comment: "unprivileged or blinded: no direct call, the indirect form"})
	add(spec{name: "nodirect-const-key/patched", shape: "tc-const", variant: "patched", fixup: "nodirect", regs: regs68, form: static,
		comment: "unprivileged or blinded: the static form"})
	add(spec{name: "poisoned/upstream", shape: "tc-poisoned", variant: "upstream", regs: regsAll, form: indirect,
		comment: "two maps reach the site: upstream has one form for it, indirect"})
	for _, v := range []struct {
		variant string
		form    form
	}{{"upstream", indirect}, {"patched", static}} {
		add(spec{name: "edge-layout/" + v.variant, shape: "tc-var", variant: v.variant, layout: edge, regs: regs68, ibt: true, form: v.form,
			comment: "max_entries at 0x7c and bpf_func at 0x78, the largest disp8 offsets"})
	}
	add(spec{name: "edge-layout/patched-dynamic", shape: "tc-poisoned", variant: "patched", layout: edge, regs: regs68, ibt: true, form: dynamic,
		comment: "max_entries at 0x7c and bpf_func at 0x78, the largest disp8 offsets"})
	for _, v := range []struct {
		variant string
		form    form
	}{{"upstream", indirect}, {"patched", static}} {
		for _, x := range []struct {
			stack int
			ibt   bool
			r     regs
		}{{0, false, regsNone}, {24, true, regsAll}} {
			add(spec{name: fmt.Sprintf("main-tc-calls-plain-sub/%s/stack%d/%s/ibt-%s", v.variant, x.stack, x.r.name, onOff(x.ibt)),
				shape: "tc-var-then-sub", variant: v.variant, stack: x.stack, regs: x.r, ibt: x.ibt, form: v.form, hasSub: true, plainSub: true,
				comment: "main tail-calls, then calls a subprogram without tail calls: main loads tcc_ptr before the call; the subprogram is not tail-call reachable (nop3, no push rax)"})
		}
	}
	for _, st := range []int{8, 20, 512} {
		add(spec{name: fmt.Sprintf("stack%d/upstream-indirect", st), shape: "tc-var", variant: "upstream", stack: st, regs: regs68, form: indirect,
			comment: "round_up(stack_depth, 8) everywhere: sub rsp, the tcc_ptr slot, add rsp"})
		add(spec{name: fmt.Sprintf("stack%d/patched-direct", st), shape: "tc-const", variant: "patched", stack: st, regs: regs68, form: direct,
			comment: "round_up(stack_depth, 8) everywhere: sub rsp, the tcc_ptr slot, add rsp"})
	}
	// The verifier's inlined bpf_get_smp_processor_id() (docs/kernel.md
	// §12): its BPF_MOV64_PERCPU_REG(r0, r0) is do_jit()'s "add <dst>,
	// gs:[<off>]" with off = (u32)&this_cpu_off, tailsim's 0xffffffff83000028.
	out = append(out, gcase{params: []string{"name=percpu-mov/r0", "shape=percpu", "variant=upstream", "fixup=noverifier",
		"layout=v6.18", "stack=0", "regs=none", "ibt=off", "max=4"},
		comment: "r0 = &(void __percpu *)(r0): no mov (dst is src), then add rax, gs:[this_cpu_off]",
		sections: []section{{name: "main.percpu", insns: []insn{
			i("add rax, qword ptr gs:[-2097151960]", cat([]byte{0x65, 0x48, 0x03, 0x04, 0x25}, le32(0x83000028))...)}}}})
	for _, f := range forms {
		add(spec{name: "two-sites/" + f.name, shape: strings.Replace(f.shape, "tc-", "tc2-", 1), variant: f.variant, regs: regsAll, stack: 16, form: f.form, sites: 2,
			comment: "two sites in one function: the same bytes, both branches use the label of the sequence (its length)"})
	}
	return out
}

// configsTable: every tail-call form under each build configuration
// (emit_indirect_jump() and emit_return()), with IBT off and on, and every
// register shift with and without BMI2 (emit_shiftx()).
func configsTable() []gcase {
	var out []gcase
	for _, m := range mitigations {
		for _, f := range forms {
			for _, ibt := range []bool{false, true} {
				for _, x := range []struct {
					stack int
					r     regs
				}{{0, regsNone}, {24, regsAll}} {
					sp := spec{shape: f.shape, variant: f.variant, fixup: "default", layout: v618, stack: x.stack, regs: x.r, ibt: ibt,
						max: 4, form: f.form, hasTC: true, mit: m}
					sp.name = fmt.Sprintf("%s/%s/stack%d/%s/ibt-%s", m.name, f.name, x.stack, x.r.name, onOff(ibt))
					out = append(out, sp.build())
				}
			}
		}
		// A subprogram's epilogue too.
		sp := spec{shape: "sub-tc-var", variant: "patched", fixup: "default", layout: v618, stack: 8, regs: regs68, max: 4, form: static,
			hasTC: true, inSub: true, hasSub: true, mit: m}
		sp.name = m.name + "/subprog-patched-static"
		out = append(out, sp.build())
	}
	// Shifts by a register: every pairing that changes the encoding (an
	// extended register on either side, rcx as the destination or the
	// count), both widths, with BMI2 (and without, for comparison).
	pairs := [][2]int{{1, 2}, {0, 9}, {7, 1}, {9, 8}, {4, 2}, {2, 4}, {5, 0}, {3, 6}}
	for _, bmi2 := range []bool{true, false} {
		for _, op := range shiftOps {
			for _, is64 := range []bool{true, false} {
				for _, p := range pairs {
					w, alu := "r", "64"
					if !is64 {
						w, alu = "w", "32"
					}
					opts := "none"
					if bmi2 {
						opts = "bmi2"
					}
					c := gcase{params: []string{
						fmt.Sprintf("name=shift/%s/%s%d-%s%d/bmi2-%s", op.name, w, p[0], w, p[1], onOff(bmi2)),
						"shape=shift", "op=" + op.name, "alu=" + alu, fmt.Sprintf("dst=%d", p[0]), fmt.Sprintf("src=%d", p[1]),
						"variant=upstream", "fixup=noverifier", "layout=v6.18", "stack=0", "regs=none", "ibt=off", "max=4", "config=" + opts,
					}, comment: fmt.Sprintf("%s%d %s %s%d", w, p[0], op.bpf, w, p[1])}
					c.sections = []section{{name: "main.shift", insns: shift(op, p[0], p[1], is64, bmi2)}}
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func write(path, title string, cases []gcase) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# %s\n", title)
	fmt.Fprintf(w, "# GENERATED by testdata/gengolden from docs/kernel.md §4, §5 and §8 byte fragments (not by the JIT). DO NOT EDIT.\n")
	fmt.Fprintf(w, "#\n# case <key=value ...>: the program golden_test.go builds (shape) and the JIT options.\n")
	fmt.Fprintf(w, "# <func>.<part> [attrs]: a section; each following tab-indented line is one instruction:\n")
	fmt.Fprintf(w, "#   hex bytes | Intel-syntax text as llvm-mc 14 prints it\n")
	fmt.Fprintf(w, "# %d cases.\n", len(cases))
	for _, c := range cases {
		fmt.Fprintln(w)
		if c.comment != "" {
			fmt.Fprintf(w, "# %s\n", c.comment)
		}
		fmt.Fprintf(w, "case %s\n", strings.Join(c.params, " "))
		for _, s := range c.sections {
			if s.attrs != "" {
				fmt.Fprintf(w, "%s %s\n", s.name, s.attrs)
			} else {
				fmt.Fprintf(w, "%s\n", s.name)
			}
			for _, x := range s.insns {
				hex := make([]string, len(x.b))
				for k, b := range x.b {
					hex[k] = fmt.Sprintf("%02x", b)
				}
				fmt.Fprintf(w, "\t%-24s| %s\n", strings.Join(hex, " "), x.text)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	for _, t := range []struct {
		file, title string
		cases       []gcase
	}{
		{"tailcalls.txt", "Tail-call forms x layout x stack x callee-saved x IBT, with each program's prologue and epilogue.", tailcallTable()},
		{"prologues.txt", "Main-program vs subprogram prologues, programs without tail calls, the tcc_ptr load before a bpf2bpf call.", prologueTable()},
		{"extras.txt", "Boundaries: the static path's C-int displacement, map index, verifier options, disp8 layouts, stack rounding, two sites.", extrasTable()},
		{"configs.txt", "Build configurations: the tail call's jump and the return under Spectre v2 / SLS / return-thunk options, and register shifts with BMI2. A jmp to a thunk holds rel32 0: the test checks that its displacement reaches the thunk.", configsTable()},
	} {
		if err := write(filepath.Join(dir, t.file), t.title, t.cases); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
