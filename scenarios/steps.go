package scenarios

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"tailsim/prog"
)

func asPosError(err error, pe **prog.PosError) bool { return errors.As(err, pe) }

// MaxRepeat bounds "run P repeat=N".
const MaxRepeat = 1_000_000

// Bounds on the work a scenario may ask for, so that a run ends in
// minutes at worst however its programs loop.
const (
	// DefaultBudget is a run's budget without "budget N".
	DefaultBudget = 1_000_000
	// MaxBudget is the most one run may execute: a verified program is
	// at most a million instructions walked (BPF_COMPLEXITY_LIMIT_INSNS,
	// loops unrolled by the verifier included), and one invocation enters
	// at most 34 programs (33 tail calls).
	MaxBudget = 34 * 1_000_000
	// MaxWork bounds the sum over the run steps of repeat × budget (the
	// library's largest is 1000 × the default, 10^9). The emulators count
	// blocks, which may be long: a 4000-instruction loop body took 6.5 s
	// per 34-million-block run on x86-64 (a one-block loop 1.8 s), so a
	// scenario at the bound runs about three and a half minutes per
	// backend at worst.
	MaxWork = 1 << 30
)

// checkWork refuses run steps that together may execute more than
// MaxWork instructions, at the step that crosses it.
func (p *specParser) checkWork() error {
	budget := p.sc.Budget
	if budget == 0 {
		budget = DefaultBudget
	}
	total := 0
	for _, st := range p.sc.Steps {
		if st.Kind != StepRun {
			continue
		}
		total += st.Repeat * budget
		if total > MaxWork {
			return p.errf(st.Line, "the run steps up to here may execute %d instructions (repeat × budget %d, summed), more than the %d a scenario may ask for: lower repeat or budget", total, budget, MaxWork)
		}
	}
	return nil
}

// stopOption reads "stop=ptrs|cached|target|bypass": the slot change
// stops after that step of the kernel's order, until "finish". target and
// bypass are x86's two poke sites of direct calls; which of them a change
// has, and in which order, depends on the slot (prog.ProgArray steps), so
// the runner checks that.
func (p *specParser) stopOption(st *Step, words []string, pending map[string]bool) error {
	key := fmt.Sprintf("%s[%d]", st.Map, st.Index)
	if pending[key] {
		return p.errf(st.Line, "%s: the stopped change of %s is not finished", st, key)
	}
	kv, err := p.keyValues(st.Line, words, "stop")
	if err != nil {
		return err
	}
	v, ok := kv["stop"]
	if !ok {
		return nil
	}
	switch v {
	case "ptrs":
		st.Stop = prog.EffectPtr
	case "cached":
		st.Stop = prog.EffectCached
	case "target":
		st.Stop = prog.EffectTarget
	case "bypass":
		st.Stop = prog.EffectBypass
	default:
		return p.errf(st.Line, "stop=%s: a slot change stops after ptrs, cached, target or bypass", v)
	}
	st.Stopped = true
	pending[key] = true
	return nil
}

func (p *specParser) run(s section) error {
	pending := map[string]bool{}
	for _, l := range lines(s) {
		words := strings.Fields(l.text)
		switch {
		case words[0] == "run":
			if len(words) < 2 {
				return p.errf(l.n, "run needs a program: run PROG [repeat=N] [tail_call_cnt=N]")
			}
			kv, err := p.keyValues(l.n, words[2:], "repeat", "tail_call_cnt")
			if err != nil {
				return err
			}
			st := Step{Kind: StepRun, Prog: words[1], Repeat: 1, Line: l.n}
			if v, ok := kv["repeat"]; ok {
				n, err := parseUint(v)
				if err != nil || n == 0 || n > MaxRepeat {
					return p.errf(l.n, "bad repeat %q (1..%d)", v, MaxRepeat)
				}
				st.Repeat = int(n)
			}
			if v, ok := kv["tail_call_cnt"]; ok {
				n, err := parseUint(v)
				if err != nil || n > prog.MaxTailCallCnt {
					return p.errf(l.n, "bad tail_call_cnt %q (0..%d: what a chain of tail calls can leave)", v, prog.MaxTailCallCnt)
				}
				st.TailCallCnt = n
			}
			p.sc.Steps = append(p.sc.Steps, st)
		case words[0] == "update":
			rest := strings.TrimSpace(strings.TrimPrefix(l.text, "update"))
			lhs, rhs, ok := strings.Cut(rest, "=")
			if !ok || strings.TrimSpace(rhs) == "" {
				return p.errf(l.n, "expected update MAP[INDEX] = PROG [stop=ptrs|cached|target|bypass]")
			}
			m, idx, err := p.slotRef(l.n, strings.TrimSpace(lhs))
			if err != nil {
				return err
			}
			rw := strings.Fields(rhs)
			st := Step{Kind: StepUpdate, Map: m, Index: idx, Prog: rw[0], Line: l.n}
			if err := p.stopOption(&st, rw[1:], pending); err != nil {
				return err
			}
			p.sc.Steps = append(p.sc.Steps, st)
		case words[0] == "delete":
			if len(words) < 2 {
				return p.errf(l.n, "expected delete MAP[INDEX] [stop=ptrs|cached|target|bypass]")
			}
			m, idx, err := p.slotRef(l.n, words[1])
			if err != nil {
				return err
			}
			st := Step{Kind: StepDelete, Map: m, Index: idx, Line: l.n}
			if err := p.stopOption(&st, words[2:], pending); err != nil {
				return err
			}
			p.sc.Steps = append(p.sc.Steps, st)
		case words[0] == "set":
			rest := strings.TrimSpace(strings.TrimPrefix(l.text, "set"))
			lhs, rhs, ok := strings.Cut(rest, "=")
			lw := strings.Fields(lhs)
			var e Expect
			var err error
			switch {
			case ok && len(lw) > 0 && lw[0] == "global":
				e, err = p.expectGlobal(l.n, Expect{Key: KeyMap, Line: l.n, Source: rest}, lw, strings.TrimSpace(rhs), true)
			case ok && len(lw) > 0 && p.mapRef(lw[0]):
				if name, _, _ := strings.Cut(lw[0], "["); p.arrayMap(name).ReadOnly {
					return p.errf(l.n, "%s is frozen at load (.rodata): user space cannot write it (EPERM)", name)
				}
				e, err = p.expectMap(l.n, Expect{Key: KeyMap, Line: l.n, Source: rest}, lw, strings.TrimSpace(rhs))
			case !ok || len(lw) == 0 || !strings.HasPrefix(lw[0], "ctx"):
				return p.errf(l.n, "expected set ctx+OFF TYPE = VALUE or set MAP[INDEX]+OFF TYPE = VALUE")
			default:
				e, err = p.expectCtx(l.n, Expect{Key: KeyCtx, Line: l.n, Source: rest}, lw, strings.TrimSpace(rhs))
			}
			if err != nil {
				return err
			}
			p.sc.Steps = append(p.sc.Steps, Step{Kind: StepSet, Set: e, Line: l.n})
		case words[0] == "finish":
			if len(words) != 2 {
				return p.errf(l.n, "expected finish MAP[INDEX]")
			}
			m, idx, err := p.slotRef(l.n, words[1])
			if err != nil {
				return err
			}
			key := fmt.Sprintf("%s[%d]", m, idx)
			if !pending[key] {
				return p.errf(l.n, "finish %s: no update or delete of it was stopped", key)
			}
			delete(pending, key)
			p.sc.Steps = append(p.sc.Steps, Step{Kind: StepFinish, Map: m, Index: idx, Line: l.n})
		case words[0] == "expect" || strings.HasPrefix(words[0], "expect["):
			if len(p.sc.Steps) == 0 {
				return p.errf(l.n, "expect before any run, update or delete step")
			}
			e, err := p.expect(l.n, l.text)
			if err != nil {
				return err
			}
			st := &p.sc.Steps[len(p.sc.Steps)-1]
			if err := checkExpectFits(st, e); err != nil {
				return p.errf(l.n, "%v", err)
			}
			st.Expect = append(st.Expect, e)
		default:
			return p.errf(l.n, "unknown step %q (run, update, delete, finish, set, expect)", words[0])
		}
	}
	return nil
}

func checkExpectFits(st *Step, e Expect) error {
	if st.Kind == StepRun && e.Key == KeyError {
		return fmt.Errorf("\"error\" expectations belong to update and delete steps")
	}
	if st.Kind == StepFinish || st.Kind == StepSet {
		return fmt.Errorf("%s has no expectations", strings.Fields(st.String())[0])
	}
	if st.Kind != StepRun && e.Key != KeyError {
		return fmt.Errorf("after %s only \"expect error = ...\" applies", st)
	}
	return nil
}

func (p *specParser) scope(line int, s string) ([]scope, error) {
	var out []scope
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		a, v, hasSlash := strings.Cut(item, "/")
		if item == "" || hasSlash && (a == "" || v == "") {
			// An empty scope would apply everywhere, which no one
			// writes brackets for.
			return nil, p.errf(line, "empty item in expect scope [%s] (ARCH, KERNEL or ARCH/KERNEL, comma-separated)", s)
		}
		var sc scope
		if hasSlash {
			sc = scope{a, v}
		} else if _, err := prog.ParseKernel(item); err == nil {
			sc = scope{kernel: item}
		} else {
			sc = scope{arch: item}
		}
		if sc.arch != "" && !slices.Contains(KnownArches, sc.arch) {
			return nil, p.errf(line, "unknown arch %q in expect scope", sc.arch)
		}
		if sc.kernel != "" {
			k, err := prog.ParseKernel(sc.kernel)
			if err != nil {
				return nil, p.errf(line, "%v in expect scope", err)
			}
			sc.kernel = k.String() // "patched" is v6.18+series
		}
		out = append(out, sc)
	}
	return out, nil
}

func (p *specParser) expect(line int, text string) (Expect, error) {
	e := Expect{Line: line}
	head, rest := text, ""
	if i := strings.IndexAny(text, " \t"); i >= 0 {
		head, rest = text[:i], text[i+1:]
	}
	if strings.HasPrefix(head, "expect[") {
		if !strings.HasSuffix(head, "]") {
			return e, p.errf(line, "expected expect[SCOPE] with no spaces in SCOPE")
		}
		sc, err := p.scope(line, strings.TrimSuffix(strings.TrimPrefix(head, "expect["), "]"))
		if err != nil {
			return e, err
		}
		e.Scope = sc
	}
	rest = strings.TrimSpace(rest)
	e.Source = rest
	lhs, rhs, hasEq := strings.Cut(rest, "=")
	lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
	if !hasEq && lhs != "fault" && lhs != "divergence" {
		return e, p.errf(line, "expected expect KEY = VALUE")
	}
	if strings.HasPrefix(lhs, "interp.") {
		e.Interp, lhs = true, strings.TrimPrefix(lhs, "interp.")
	}
	lw := strings.Fields(lhs)
	if len(lw) == 0 {
		return e, p.errf(line, "missing key before =")
	}
	if strings.HasPrefix(lw[0], "ctx+") || lw[0] == "ctx" {
		e.Key = KeyCtx
		return p.expectCtx(line, e, lw, rhs)
	}
	if p.mapRef(lw[0]) {
		e.Key = KeyMap
		return p.expectMap(line, e, lw, rhs)
	}
	if lw[0] == "global" {
		e.Key = KeyMap
		return p.expectGlobal(line, e, lw, rhs, false)
	}
	for _, k := range keys {
		if k.String() == lw[0] {
			e.Key = k
		}
	}
	if e.Key == 0 {
		return e, p.errf(line, "unknown expectation %q (r0, w0, count, path, fallthrough, ctx+OFF, fault, divergence, broken, error)", lw[0])
	}
	if len(lw) != 1 {
		return e, p.errf(line, "unexpected %q after %s", lw[1], e.Key)
	}
	switch e.Key {
	case KeyR0, KeyW0, KeyCount:
		v, err := parseValue(rhs)
		if err != nil {
			return e, p.errf(line, "%v", err)
		}
		if e.Key == KeyW0 && v > math.MaxUint32 && (int64(v) >= 0 || int64(v) < math.MinInt32) {
			return e, p.errf(line, "w0 is the low 32 bits of R0: %s can never match (expect r0 for 64 bits)", rhs)
		}
		e.Value = v
	case KeyPath:
		for _, w := range strings.Fields(rhs) {
			name, n, ok := repeated(w)
			if !ok {
				return e, p.errf(line, "bad repetition %q (NAME*N)", w)
			}
			for range n {
				e.Path = append(e.Path, name)
			}
		}
		if len(e.Path) == 0 {
			return e, p.errf(line, "path needs at least the entry program")
		}
	case KeyFallthrough:
		if rhs == "none" {
			e.Falls = []prog.Reason{}
			break
		}
		for _, w := range strings.Fields(rhs) {
			name, n, ok := repeated(w)
			if !ok {
				return e, p.errf(line, "bad repetition %q (REASON*N)", w)
			}
			r, ok := prog.ParseReason(name)
			if !ok {
				return e, p.errf(line, "unknown fall-through reason %q (bounds, limit, empty, or none)", w)
			}
			for range n {
				e.Falls = append(e.Falls, r)
			}
		}
		if len(e.Falls) == 0 {
			return e, p.errf(line, "fallthrough needs reasons or none")
		}
	case KeyFault:
		if e.Interp {
			return e, p.errf(line, "fault has no interp. form")
		}
		kind, at, hasAt := strings.Cut(rhs, "@")
		kind = strings.TrimSpace(kind)
		if hasEq {
			if kind == "none" {
				e.NoFault = true
			} else if k, ok := prog.ParseFaultKind(kind); ok {
				e.Fault = k
			} else {
				return e, p.errf(line, "unknown fault kind %q (access, budget, insn, none)", rhs)
			}
		}
		if hasAt {
			v, err := parseUint(strings.TrimSpace(at))
			if err != nil || e.Fault != prog.FaultAccess {
				return e, p.errf(line, "expected fault = access @ADDRESS")
			}
			e.Value, e.HasAddr = v, true
		}
	case KeyBroken:
		if e.Interp || rhs == "" {
			return e, p.errf(line, "expected broken = PROPERTY (a machine-level check's name)")
		}
		prop, ok := prog.ParseProperty(rhs)
		if !ok {
			var names []string
			for _, p := range prog.Properties {
				names = append(names, p.String())
			}
			return e, p.errf(line, "unknown property %q (%s)", rhs, strings.Join(names, "; "))
		}
		e.Property = prop
	case KeyDivergence:
		if e.Interp || hasEq {
			return e, p.errf(line, "divergence takes no value and has no interp. form")
		}
	case KeyError:
		if e.Interp {
			return e, p.errf(line, "error has no interp. form")
		}
		if !slices.Contains([]string{"none", "E2BIG", "ENOENT", "EINVAL"}, rhs) {
			return e, p.errf(line, "unknown error %q (none, E2BIG, ENOENT, EINVAL)", rhs)
		}
		e.Errno = rhs
	}
	if e.Key == KeyDivergence || e.Key == KeyBroken {
		// Both describe an emulated arch's machine code: the reference
		// model neither departs from itself nor has machine-level checks.
		if len(e.Scope) == 0 {
			return e, p.errf(line, "%s is about an emulated arch's code: scope it, e.g. expect[x86_64/patched] %s", e.Key, e.Key)
		}
		for _, sc := range e.Scope {
			if sc.arch == "" || sc.arch == "ref" {
				return e, p.errf(line, "%s is about an emulated arch's code: each scope item names x86_64 or arm64, not %q", e.Key, sc)
			}
		}
	}
	return e, nil
}

// expectGlobal reads "global NAME = VALUE": an object's global variable of
// 1, 2, 4 or 8 bytes, in the array (.bss, .data, .rodata) that holds it.
// Writing .rodata is refused as the kernel refuses it once the map is
// frozen at load.
func (p *specParser) expectGlobal(line int, e Expect, lw []string, rhs string, write bool) (Expect, error) {
	if len(lw) != 2 {
		return e, p.errf(line, "expected global NAME = VALUE")
	}
	m, ok := p.global(lw[1])
	if !ok {
		return e, p.errf(line, "no global %q (the object's .bss, .data and .rodata variables)", lw[1])
	}
	v, _ := (&prog.ArrayMap{Vars: m.Vars}).Var(lw[1])
	if write && m.ReadOnly {
		return e, p.errf(line, "global %s is in %s, which the kernel freezes at load: user space cannot write it (EPERM)", lw[1], m.Name)
	}
	types := map[uint32]string{1: "u8", 2: "u16", 4: "u32", 8: "u64"}
	typ, ok := types[v.Size]
	if !ok {
		return e, p.errf(line, "global %s is %d bytes: use %s[0]+%d bytes = ...", lw[1], v.Size, m.Name, v.Offset)
	}
	e, err := p.expectCtx(line, e, []string{"ctx", typ}, rhs)
	if err != nil {
		return e, err
	}
	e.Map, e.Off = m.Name, int(v.Offset)
	return e, nil
}

// mapRef reports whether w names an array map's element: NAME[INDEX],
// with an optional +OFF.
func (p *specParser) mapRef(w string) bool {
	name, _, ok := strings.Cut(w, "[")
	return ok && p.arrayMap(name) != nil
}

// expectMap reads MAP[INDEX]+OFF TYPE = VALUE: bytes of an element of an
// array map, as the runs leave it (expect) or user space writes it (set).
func (p *specParser) expectMap(line int, e Expect, lw []string, rhs string) (Expect, error) {
	name, rest, _ := strings.Cut(lw[0], "[")
	idxText, offText, _ := strings.Cut(rest, "]")
	m := p.arrayMap(name)
	idx, err := parseUint(idxText)
	if err != nil || idx >= uint64(m.MaxEntries) {
		return e, p.errf(line, "bad index in %q (the map has %d elements)", lw[0], m.MaxEntries)
	}
	off := uint64(0)
	if offText != "" {
		if off, err = parseUint(strings.TrimPrefix(offText, "+")); err != nil || !strings.HasPrefix(offText, "+") {
			return e, p.errf(line, "bad offset in %q (MAP[INDEX]+OFF)", lw[0])
		}
	}
	ctx := append([]string{"ctx"}, lw[1:]...)
	if e, err = p.expectCtx(line, e, ctx, rhs); err != nil {
		return e, err
	}
	n := uint64(e.Size)
	if n == 0 {
		n = uint64(len(e.Bytes))
	}
	if off+n > uint64(m.ValueSize) {
		return e, p.errf(line, "%s: %d bytes at offset %d pass the %d-byte value", lw[0], n, off, m.ValueSize)
	}
	e.Map, e.Off = name, int(idx*uint64((m.ValueSize+7)&^7)+off)
	return e, nil
}

func (p *specParser) expectCtx(line int, e Expect, lw []string, rhs string) (Expect, error) {
	off := 0
	if lw[0] != "ctx" {
		n, err := parseUint(strings.TrimPrefix(lw[0], "ctx+"))
		if err != nil || n > 1<<16 {
			return e, p.errf(line, "bad ctx offset in %q", lw[0])
		}
		off = int(n)
	}
	e.Off = off
	if len(lw) != 2 {
		return e, p.errf(line, "expected ctx+OFF TYPE = VALUE (TYPE u8, u16, u32, u64 or bytes)")
	}
	switch lw[1] {
	case "u8", "u16", "u32", "u64":
		e.Size = map[string]int{"u8": 1, "u16": 2, "u32": 4, "u64": 8}[lw[1]]
		v, err := parseValue(rhs)
		if err != nil {
			return e, p.errf(line, "%v", err)
		}
		if !fits(rhs, v, e.Size) {
			return e, p.errf(line, "%s does not fit %s", rhs, lw[1])
		}
		if e.Size < 8 {
			v &= 1<<(8*e.Size) - 1
		}
		e.Value = v
	case "bytes":
		for _, w := range strings.Fields(rhs) {
			b, err := strconv.ParseUint(w, 16, 8)
			if err != nil {
				return e, p.errf(line, "bad byte %q (two hex digits)", w)
			}
			e.Bytes = append(e.Bytes, byte(b))
		}
		if len(e.Bytes) == 0 {
			return e, p.errf(line, "bytes needs at least one byte")
		}
	default:
		return e, p.errf(line, "unknown ctx type %q (u8, u16, u32, u64, bytes)", lw[1])
	}
	return e, nil
}

// repeated reads "NAME" or "NAME*N" (N from 1 to 100000).
func repeated(w string) (string, int, bool) {
	name, times, rep := strings.Cut(w, "*")
	if !rep {
		return name, 1, true
	}
	n, err := strconv.Atoi(times)
	if err != nil || n < 1 || n > 100000 {
		return "", 0, false
	}
	return name, n, true
}
