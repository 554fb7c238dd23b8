// Command guest is the real-kernel oracle's agent: PID 1 of a QEMU guest
// booted with the kernel under test. It reads /job.json, loads each
// scenario's prog arrays and programs with cilium/ebpf, fills the slots,
// reports the JITed images, runs the steps with BPF_PROG_TEST_RUN (the
// scenario's ctx is the program's cb[]), prints one job.Result per line on
// the console and powers the machine off. It is built static (no cgo) for
// the guest's arch; nothing here runs on the host.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"tailsim/oracle/job"
)

func main() {
	defer powerOff()
	setup()
	say(job.Result{Kind: job.Hello, Uname: uname(), Info: info()})
	data, err := os.ReadFile("/job.json")
	if err != nil {
		say(job.Result{Kind: job.Failed, Err: err.Error()})
		return
	}
	var j job.Job
	if err := json.Unmarshal(data, &j); err != nil {
		say(job.Result{Kind: job.Failed, Err: err.Error()})
		return
	}
	for _, sc := range j.Scenarios {
		if err := guarded(sc); err != nil {
			say(job.Result{Kind: job.Failed, File: sc.File, Err: err.Error()})
		}
	}
	if r, ok := kernelTests(); ok {
		say(r)
	}
	say(job.Result{Kind: job.Done})
}

func say(r job.Result) {
	b, _ := json.Marshal(r)
	// One write per line: the console is shared with the kernel's log.
	os.Stdout.Write(append(append([]byte("\n"+job.Prefix), b...), '\n'))
}

// setup mounts what the agent reads and lifts the locked-memory limit
// (6.1 charges BPF memory to the memcg; older kernels used the rlimit).
func setup() {
	_ = os.MkdirAll("/proc", 0o755)
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	_ = os.MkdirAll("/sys", 0o755)
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	inf := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
	_ = syscall.Setrlimit(8 /* RLIMIT_MEMLOCK */, &inf)
}

func powerOff() {
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

func uname() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	str := func(f [65]int8) string {
		var b []byte
		for _, c := range f {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return strings.Join([]string{str(u.Sysname), str(u.Release), str(u.Version), str(u.Machine)}, " ")
}

// info reports the settings that change what the JIT emits.
func info() map[string]string {
	m := map[string]string{}
	for _, f := range []string{"/proc/sys/net/core/bpf_jit_enable", "/proc/sys/net/core/bpf_jit_harden",
		"/proc/sys/kernel/kptr_restrict", "/proc/cmdline", "/sys/devices/system/cpu/vulnerabilities/spectre_v2",
		"/sys/devices/system/cpu/vulnerabilities/retbleed",
		"/sys/devices/system/cpu/vulnerabilities/indirect_target_selection"} {
		if b, err := os.ReadFile(f); err == nil {
			m[f] = strings.TrimSpace(string(b))
		}
	}
	// The thunks and helpers the programs reach, for the host to name
	// call targets.
	if b, err := os.ReadFile("/proc/kallsyms"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			if _, ok := job.KernelSyms[f[2]]; ok {
				m["ksym "+f[2]] = f[0]
			}
		}
	}
	// jiffies is a data symbol, which a kernel without KALLSYMS_ALL
	// (Debian's arm64) does not list: the verifier's inlined
	// bpf_jiffies64 loads its address, so a probe program's translated
	// instructions give it.
	if _, ok := m["ksym jiffies"]; !ok {
		if a, err := jiffiesAddr(); err == nil {
			m["ksym jiffies"] = fmt.Sprintf("%x", a)
		} else {
			m["jiffies probe"] = err.Error()
		}
	}
	return m
}

// jiffiesAddr loads "r0 = bpf_jiffies64(); exit" and reads the address of
// jiffies out of its translated instructions (do_misc_fixups() made the
// call an ld_imm64 of &jiffies and a load).
func jiffiesAddr() (uint64, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "jiffies_probe", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.FnJiffies64.Call(), asm.Return()}})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	inf, err := p.Info()
	if err != nil {
		return 0, err
	}
	insns, err := inf.Instructions()
	if err != nil {
		return 0, err
	}
	for _, ins := range insns {
		if ins.OpCode.IsDWordLoad() && ins.Dst == asm.R0 {
			return uint64(ins.Constant), nil
		}
	}
	return 0, fmt.Errorf("no ld_imm64 in the probe's translated instructions: %v", insns)
}

// scenario is one scenario's kernel objects.
type scenario struct {
	sc    job.Scenario
	maps  map[string]*ebpf.Map
	progs map[string]*ebpf.Program
	ctx   []byte
}

// bpfFRdonlyProg is BPF_F_RDONLY_PROG (include/uapi/linux/bpf.h): programs
// may only read the map, and once it is frozen the verifier takes its
// values for constants (bpf_map_is_rdonly()).
const bpfFRdonlyProg = 1 << 7

// newMap creates a prog array, or an array with its initial values
// (a read-only one as libbpf creates .rodata).
func newMap(m job.Map) (*ebpf.Map, error) {
	if !m.Array {
		return ebpf.NewMap(&ebpf.MapSpec{Name: trim(m.Name), Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: m.MaxEntries})
	}
	vals, err := hex.DecodeString(m.Values)
	if err != nil || len(vals) != int(m.MaxEntries*m.ValueSize) {
		return nil, fmt.Errorf("values of %d bytes for %d elements of %d", len(vals), m.MaxEntries, m.ValueSize)
	}
	spec := &ebpf.MapSpec{Name: trim(m.Name), Type: ebpf.Array, KeySize: 4, ValueSize: m.ValueSize, MaxEntries: m.MaxEntries}
	if m.ReadOnly {
		spec.Flags = bpfFRdonlyProg
	}
	for k := uint32(0); k < m.MaxEntries; k++ {
		spec.Contents = append(spec.Contents, ebpf.MapKV{Key: k, Value: vals[k*m.ValueSize : (k+1)*m.ValueSize]})
	}
	mp, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, err
	}
	// cilium/ebpf freezes a map named .rodata once written, as libbpf
	// does; any other read-only array is frozen here.
	if m.ReadOnly && m.Name != ".rodata" {
		if err := mp.Freeze(); err != nil {
			mp.Close()
			return nil, err
		}
	}
	return mp, nil
}

// readArrays reads every array map's values back, ValueSize bytes per
// element.
func (s *scenario) readArrays() (map[string]string, error) {
	out := map[string]string{}
	for _, m := range s.sc.Maps {
		if !m.Array {
			continue
		}
		var all []byte
		v := make([]byte, m.ValueSize)
		for k := uint32(0); k < m.MaxEntries; k++ {
			if err := s.maps[m.Name].Lookup(k, &v); err != nil {
				return nil, fmt.Errorf("map %s[%d]: %w", m.Name, k, err)
			}
			all = append(all, v...)
		}
		out[m.Name] = hex.EncodeToString(all)
	}
	return out, nil
}

// set writes a set step's bytes into ctx, or into an array's element.
func (s *scenario) set(st job.Step) error {
	b, err := hex.DecodeString(st.Bytes)
	if err != nil {
		return err
	}
	if st.Map == "" {
		if st.Off < 0 || st.Off+len(b) > len(s.ctx) {
			return errors.New("a set step past ctx")
		}
		copy(s.ctx[st.Off:], b)
		return nil
	}
	m := s.maps[st.Map]
	if m == nil {
		return fmt.Errorf("no map %s", st.Map)
	}
	v := make([]byte, m.ValueSize())
	if err := m.Lookup(st.Index, &v); err != nil {
		return err
	}
	if st.Off < 0 || st.Off+len(b) > len(v) {
		return errors.New("a set step past the element")
	}
	copy(v[st.Off:], b)
	return m.Update(st.Index, v, ebpf.UpdateAny)
}

// guarded runs one scenario after checking the names it uses: a panic
// (a bug of the agent, or a kernel answer it did not expect) is that
// scenario's failure, with the stack, and the next scenario still runs.
func guarded(sc job.Scenario) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agent panic: %v\n%s", r, debug.Stack())
		}
	}()
	if err := validate(sc); err != nil {
		return err
	}
	return runScenario(sc)
}

// validate checks that every map and program a scenario's slots, steps
// and map references name is one of its own.
func validate(sc job.Scenario) error {
	maps, progs := map[string]bool{}, map[string]bool{}
	for _, m := range sc.Maps {
		maps[m.Name] = true
	}
	for _, p := range sc.Progs {
		progs[p.Name] = true
		if _, ok := progTypes[p.Type]; !ok {
			return fmt.Errorf("program %s of type %q, which the agent does not load", p.Name, p.Type)
		}
		for _, r := range p.MapRefs {
			if !maps[r.Map] {
				return fmt.Errorf("program %s refers to no map %q", p.Name, r.Map)
			}
		}
	}
	for _, sl := range sc.Slots {
		if !maps[sl.Map] || !progs[sl.Prog] {
			return fmt.Errorf("slot %s[%d] = %s: no such map or program", sl.Map, sl.Index, sl.Prog)
		}
	}
	for _, st := range sc.Steps {
		switch {
		case st.Kind == job.Run && !progs[st.Prog],
			st.Kind == job.Update && (!maps[st.Map] || !progs[st.Prog]),
			st.Kind == job.Delete && !maps[st.Map],
			st.Kind == job.Set && st.Map != "" && !maps[st.Map]:
			return fmt.Errorf("line %d: %s step names no such map or program (map %q, program %q)", st.Line, st.Kind, st.Map, st.Prog)
		}
	}
	return nil
}

func runScenario(sc job.Scenario) error {
	s := &scenario{sc: sc, maps: map[string]*ebpf.Map{}, progs: map[string]*ebpf.Program{}}
	defer s.close()
	create := func() error {
		for _, m := range sc.Maps {
			mp, err := newMap(m)
			if err != nil {
				return fmt.Errorf("map %s: %w", m.Name, err)
			}
			s.maps[m.Name] = mp
		}
		for _, p := range sc.Progs {
			pr, err := s.load(p)
			if err != nil {
				return fmt.Errorf("program %s: %w", p.Name, err)
			}
			s.progs[p.Name] = pr
		}
		return nil
	}
	var err error
	if sc.Unprivileged {
		err = asUser(create)
	} else {
		err = create()
	}
	if err != nil {
		return err
	}
	for _, sl := range sc.Slots {
		if err := s.maps[sl.Map].Update(sl.Index, s.progs[sl.Prog], ebpf.UpdateAny); err != nil {
			return fmt.Errorf("slot %s[%d] = %s: %w", sl.Map, sl.Index, sl.Prog, err)
		}
	}
	images := map[string][]job.Func{}
	for name, pr := range s.progs {
		fs, err := jited(pr)
		if err != nil {
			return fmt.Errorf("program %s: %w", name, err)
		}
		images[name] = fs
	}
	say(job.Result{Kind: job.Loaded, File: sc.File, Images: images, Hash: job.Hash(sc)})
	ctx, err := hex.DecodeString(sc.Ctx)
	if err != nil {
		return err
	}
	s.ctx = ctx
	for _, st := range sc.Steps {
		switch st.Kind {
		case job.Run:
			for it := 1; it <= max(st.Repeat, 1); it++ {
				ret, err := s.run(s.progs[st.Prog])
				if err != nil {
					say(job.Result{Kind: job.Ran, File: sc.File, Line: st.Line, Iter: it, Err: err.Error()})
					return nil
				}
				maps, err := s.readArrays()
				if err != nil {
					return err
				}
				say(job.Result{Kind: job.Ran, File: sc.File, Line: st.Line, Iter: it, Retval: ret, Ctx: hex.EncodeToString(s.ctx), Maps: maps})
			}
		case job.Update, job.Delete:
			m := s.maps[st.Map]
			var err error
			if st.Kind == job.Update {
				err = m.Update(st.Index, s.progs[st.Prog], ebpf.UpdateAny)
			} else {
				err = m.Delete(st.Index)
			}
			say(job.Result{Kind: job.Change, File: sc.File, Line: st.Line, Errno: errnoName(err)})
		case job.Set:
			if err := s.set(st); err != nil {
				return fmt.Errorf("line %d: %w", st.Line, err)
			}
		}
	}
	return nil
}

// trim fits a name into BPF_OBJ_NAME_LEN with the kernel's alphabet.
func trim(s string) string {
	var b []byte
	for _, c := range []byte(s) {
		if c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b = append(b, c)
		}
	}
	if len(b) > 15 {
		b = b[:15]
	}
	return string(b)
}

// progTypes are job.ProgTypes as cilium/ebpf names them ("" is sched_cls).
var progTypes = map[string]ebpf.ProgramType{"": ebpf.SchedCLS, "sched_cls": ebpf.SchedCLS, "sched_act": ebpf.SchedACT,
	"socket_filter": ebpf.SocketFilter, "cgroup_skb": ebpf.CGroupSKB, "xdp": ebpf.XDP}

// load writes each map's fd into its ld_imm64 and loads the program as
// its type (sched_cls unless the job says; cb[] is readable and writable
// in it).
func (s *scenario) load(p job.Prog) (*ebpf.Program, error) {
	raw, err := hex.DecodeString(p.Insns)
	if err != nil {
		return nil, err
	}
	for _, r := range p.MapRefs {
		at := 8 * r.Insn
		if at+16 > len(raw) || s.maps[r.Map] == nil {
			return nil, fmt.Errorf("bad map reference %+v", r)
		}
		// ld_imm64's first imm is the fd; a value load's offset stays in
		// the second.
		binary.LittleEndian.PutUint32(raw[at+4:], uint32(s.maps[r.Map].FD()))
	}
	starts := map[int]string{}
	for _, f := range p.Funcs {
		starts[f.Insn] = f.Name
	}
	var insns asm.Instructions
	for r, slot := bytes.NewReader(raw), 0; r.Len() > 0; {
		var ins asm.Instruction
		if err := ins.Unmarshal(r, binary.LittleEndian, "linux"); err != nil {
			return nil, err
		}
		if name, ok := starts[slot]; ok && !s.sc.Unprivileged {
			// A func info per function: 6.1 refuses a tail call in a
			// subprogram of a program without BTF. A user may not load
			// BTF, nor make bpf2bpf calls, so a user's load has none.
			linkage := btf.StaticFunc
			if slot == 0 {
				linkage = btf.GlobalFunc
			}
			ins = btf.WithFuncMetadata(ins, &btf.Func{Name: trim(name), Linkage: linkage,
				Type: &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}})
		}
		slot += int(ins.Width())
		insns = append(insns, ins)
	}
	typ, ok := progTypes[p.Type]
	if !ok {
		return nil, fmt.Errorf("program type %q", p.Type)
	}
	return ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{Name: trim(p.Name), Type: typ, Instructions: insns, License: "GPL"},
		ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch, LogSizeStart: 1 << 20})
}

// jited reads a program's functions back: their ksym addresses, lengths
// and the code, which the kernel returns contiguous.
func jited(p *ebpf.Program) ([]job.Func, error) {
	inf, err := p.Info()
	if err != nil {
		return nil, err
	}
	code, ok := inf.JitedInsns()
	if !ok {
		return nil, errors.New("no JITed code (JIT off, or no permission)")
	}
	addrs, _ := inf.JitedKsymAddrs()
	lens, _ := inf.JitedFuncLens()
	if len(lens) == 0 {
		lens = []uint32{uint32(len(code))}
	}
	if len(addrs) != len(lens) {
		return nil, fmt.Errorf("%d ksyms for %d functions", len(addrs), len(lens))
	}
	var out []job.Func
	off := 0
	for i, n := range lens {
		if off+int(n) > len(code) {
			return nil, fmt.Errorf("function lengths %v past %d bytes", lens, len(code))
		}
		out = append(out, job.Func{Addr: uint64(addrs[i]), Code: hex.EncodeToString(code[off : off+int(n)])})
		off += int(n)
	}
	return out, nil
}

// skbCtx is struct __sk_buff up to the end of cb[]: the part of the ctx
// BPF_PROG_TEST_RUN takes in and gives back that a scenario uses.
const skbCtx = job.CbOffset + job.CbSize

// run runs a program once with ctx as the scenario left it, placed at
// CtxAt in struct __sk_buff; only cb[] is taken back into it.
func (s *scenario) run(p *ebpf.Program) (uint32, error) {
	at := s.sc.CtxAt
	if at < 0 || at+len(s.ctx) > skbCtx {
		return 0, fmt.Errorf("ctx of %d bytes at %d past cb[]", len(s.ctx), at)
	}
	in := make([]byte, skbCtx)
	copy(in[at:], s.ctx)
	// All of struct __sk_buff comes back, or ENOSPC: room for it.
	out := make([]byte, 512)
	ret, err := p.Run(&ebpf.RunOptions{Data: make([]byte, 64), Context: in, ContextOut: out})
	if err != nil {
		return 0, err
	}
	for i := range s.ctx {
		if o := at + i; o >= job.CbOffset && o < skbCtx {
			s.ctx[i] = out[o]
		}
	}
	return ret, nil
}

func (s *scenario) close() {
	for _, p := range s.progs {
		p.Close()
	}
	for _, m := range s.maps {
		m.Close()
	}
}

func errnoName(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.E2BIG):
		return "E2BIG"
	case errors.Is(err, syscall.ENOENT):
		return "ENOENT"
	case errors.Is(err, syscall.EINVAL):
		return "EINVAL"
	}
	return err.Error()
}
