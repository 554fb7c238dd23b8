package oracle

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tailsim/oracle/job"
	"tailsim/prog"
	"tailsim/scenarios"
)

func parse(t *testing.T, text string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Parse("t.txtar", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

const ctxChain = `ctx through a copy and a subprogram
-- maps --
jt max_entries=2
-- subprog bump --
	r2 = *(u32 *)(r1 + 4)
	r2 += 1
	*(u32 *)(r1 + 4) = r2
	r0 = 0
	exit
-- prog entry --
	r6 = r1
	r3 = *(u32 *)(r6 + 0)
	call bump
	r1 = r6
	r2 = map[jt]
	r3 = 1
	call bpf_tail_call
	r2 = *(u64 *)(r10 - 8)
	r0 = 7
	exit
-- ctx --
u32 0
u32 5
-- run --
run entry
`

// userChain is ctxChain as a user may load it: privileged off, a
// socket_filter, no subprogram.
func userChain() string {
	user := strings.Replace(ctxChain, "-- maps --", "-- config --\nprivileged off\n-- maps --", 1)
	user = strings.Replace(strings.Replace(user, "-- prog entry --", "-- prog entry type=socket_filter --", 1), "\tcall bump\n", "", 1)
	return user[:strings.Index(user, "-- subprog bump --")] + user[strings.Index(user, "-- prog entry"):]
}

// The ctx accesses the verifier would see as ctx accesses, and only those,
// move to cb[]: through a copy of R1, and in a subprogram R1 reaches; the
// stack load and the map load stay.
func TestShiftCtx(t *testing.T) {
	sc := parse(t, strings.Replace(ctxChain, "r2 = *(u64 *)(r10 - 8)", "r2 = 9\n\t*(u64 *)(r10 - 8) = r2\n\tr2 = *(u64 *)(r10 - 8)", 1))
	p := PlanScenario(sc, "x86_64")
	if p.Skip != "" {
		t.Fatalf("skipped: %s", p.Skip)
	}
	offs := func(d scenarios.FuncDecl) []int16 {
		var out []int16
		for _, ins := range d.Insns {
			if ins.OpCode.IsMemLoad() || ins.OpCode.IsMemStore() {
				out = append(out, ins.Off)
			}
		}
		return out
	}
	if got := offs(p.Shifted.Progs[0]); len(got) != 3 || got[0] != 0x30 || got[1] != -8 || got[2] != -8 {
		t.Errorf("entry's accesses %v, want ctx+0 at 0x30 and the stack untouched", got)
	}
	if got := offs(p.Shifted.Subprogs[0]); len(got) != 2 || got[0] != 0x34 || got[1] != 0x34 {
		t.Errorf("bump's accesses %v, want 0x34 twice", got)
	}
	if got := offs(sc.Progs[0]); got[0] != 0 {
		t.Errorf("the original scenario changed: %v", got)
	}
	// The program as user space loads it: main then bump, the map's
	// ld_imm64 named for the guest, the function starts for BTF.
	jp := p.Job.Progs[0]
	raw, _ := hex.DecodeString(jp.Insns)
	if len(jp.MapRefs) != 1 || jp.MapRefs[0].Map != "jt" || len(jp.Funcs) != 2 || jp.Funcs[1].Name != "bump" ||
		8*jp.Funcs[1].Insn >= len(raw) || raw[8*jp.MapRefs[0].Insn] != 0x18 {
		t.Errorf("job program %+v", jp)
	}
	if p.Job.Ctx != "0000000005000000" || len(p.Job.Steps) != 1 || p.Job.Steps[0].Kind != job.Run {
		t.Errorf("job %+v", p.Job)
	}
}

// What a real kernel cannot be asked is skipped, with the reason.
func TestSkipReasons(t *testing.T) {
	for _, tt := range []struct{ change, with, want string }{
		{"-- maps --", "-- config --\nverifier off\n-- maps --", "verifier off"},
		{"-- maps --", "-- config --\nkernel v6.18\n-- maps --", "restricted to other kernels"},
		{"-- maps --", "-- config --\nconfig ibt\n-- maps --", "build configuration"},
		{"u32 5", "u32 5\nzero 16", "ctx+4 is not zero: as struct __sk_buff"},
		{"u32 5", "u32 5\nzero 80", "a ctx of 88 bytes"},
		{"r3 = *(u32 *)(r6 + 0)", "r3 = *(u32 *)(r6 + 18)", "outside cb[] or misaligned"},
		{"r3 = *(u32 *)(r6 + 0)", "r3 = *(u32 *)(r6 + 2)", "outside cb[] or misaligned"},
		{"r3 = *(u32 *)(r6 + 0)", "r7 = r10\n\t*(u64 *)(r7 - 8) = r6", "stored to memory"},
		{"r3 = *(u32 *)(r6 + 0)", "*(u32 *)(r10 - 8) = r6", "stored to memory"}, // 4 bytes: no spill
		{"r0 = 7", "call bpf_get_current_pid_tgid", "bpf_get_current_pid_tgid"},
		{"run entry", "run entry tail_call_cnt=3", "preset tail-call count"},
		{"r3 = *(u32 *)(r6 + 0)", "r7 = r6\n\tr7 += 8\n\tr7 -= 8\n\tr3 = *(u32 *)(r7 + 4)", "arithmetic on the ctx pointer"},
		{"r3 = *(u32 *)(r6 + 0)", "*(u64 *)(r10 - 16) = r6\n\tr8 = r10\n\tr7 = *(u64 *)(r8 - 16)", "while ctx is spilled"},
		{"r3 = *(u32 *)(r6 + 0)", "*(u64 *)(r10 - 16) = r6", "a call while ctx is spilled"},
		{"-- prog entry --", "-- prog other type=kprobe --\n\tr0 = 0\n\texit\n-- prog entry --", "which the guest does not load"},
		{"-- prog entry --", "-- prog other type=xdp --\n\tr0 = *(u32 *)(r1 + 0)\n\texit\n-- prog entry --", "its ctx is not __sk_buff"},
		{"jt max_entries=2", "jt max_entries=0x1000000", "ENOMEM"},
		{"run entry", "delete jt[4294967296]\nrun entry", "past 32 bits"},
		{"run entry", "run entry\nexpect fault = budget", "faults"},
	} {
		sc := parse(t, strings.Replace(ctxChain, tt.change, tt.with, 1))
		if p := PlanScenario(sc, "arm64"); !strings.Contains(p.Skip, tt.want) {
			t.Errorf("%q: skip %q, want %q", tt.with, p.Skip, tt.want)
		}
	}
	// A helper whose result is the machine's: the images are compared, the
	// runs not (the job has no steps).
	for _, h := range []string{"bpf_ktime_get_ns", "bpf_get_prandom_u32", "bpf_jiffies64"} {
		p := PlanScenario(parse(t, strings.Replace(ctxChain, "r0 = 7", "call "+h, 1)), "arm64")
		if p.Skip != "" || !strings.Contains(p.BytesOnly, h) || len(p.Job.Steps) != 0 || len(p.Job.Progs) != 1 {
			t.Errorf("%s: skip %q, bytes only %q, %d steps", h, p.Skip, p.BytesOnly, len(p.Job.Steps))
		}
	}
	// A user's load: the job says so, and the agent lowers its
	// capabilities for it.
	if p := PlanScenario(parse(t, userChain()), "x86_64"); p.Skip != "" || !p.Job.Unprivileged || p.Job.Progs[0].Type != "socket_filter" {
		t.Errorf("privileged off: skip %q, job unprivileged %v, programs %+v", p.Skip, p.Job.Unprivileged, p.Job.Progs)
	}
	// Another type: loaded to be put into slots, not run.
	xdp := strings.Replace(ctxChain, "-- prog entry --", "-- prog other type=xdp --\n\tr0 = 0\n\texit\n-- prog entry --", 1)
	if p := PlanScenario(parse(t, xdp), "arm64"); p.Skip != "" || p.Job.Progs[0].Type != "xdp" || p.Job.Progs[1].Type != "" {
		t.Errorf("an xdp program beside: skip %q, job programs %+v", p.Skip, p.Job.Progs)
	}
	if p := PlanScenario(parse(t, xdp+"run other\n"), "arm64"); !strings.Contains(p.Skip, "whose ctx is __sk_buff only") {
		t.Errorf("an xdp program run: skip %q", p.Skip)
	}
	for _, ok := range []struct{ change, with string }{
		{"r3 = *(u32 *)(r6 + 0)", "r3 = 0\n\tr3 += 4"},            // arithmetic, not on ctx
		{"r3 = *(u32 *)(r6 + 0)", "r6 = 0\n\tr6 += 4\n\tr6 = r1"}, // ctx overwritten first
		{"run entry", "run entry\nexpect[v6.18] fault = budget"},  // scoped away from Debian 12's v6.1
		{"", ""},
	} {
		sc := parse(t, strings.Replace(ctxChain, ok.change, ok.with, 1))
		if p := PlanScenario(sc, "arm64"); p.Skip != "" {
			t.Errorf("%q: skipped: %s", ok.with, p.Skip)
		}
	}
}

// ctx spilled to the stack and filled back is ctx, as the verifier tracks
// it; a store over the slot ends the spill.
func TestCtxSpill(t *testing.T) {
	spill := strings.Replace(ctxChain, "r3 = *(u32 *)(r6 + 0)", "*(u64 *)(r10 - 16) = r6\n\tr7 = *(u64 *)(r10 - 16)\n\tr3 = *(u32 *)(r7 + 0)", 1)
	spill = strings.Replace(spill, "\tcall bump\n", "\t*(u64 *)(r10 - 16) = r3 # the spill ends before the call\n\tcall bump\n", 1)
	sc := parse(t, spill)
	p := PlanScenario(sc, "x86_64")
	if p.Skip != "" {
		t.Fatalf("skipped: %s", p.Skip)
	}
	var got []int16
	for _, ins := range p.Shifted.Progs[0].Insns {
		if ins.OpCode.IsMemLoad() || ins.OpCode.IsMemStore() {
			got = append(got, ins.Off)
		}
	}
	// spill, fill, the ctx load (moved to cb[]), the overwrite, the final
	// stack load.
	if fmt.Sprint(got) != "[-16 -16 48 -16 -8]" {
		t.Errorf("accesses %v, want [-16 -16 48 -16 -8]", got)
	}
	// Overwritten before the fill: r7 is not ctx, and its load stays.
	over := strings.Replace(spill, "\tr7 = *(u64 *)(r10 - 16)", "\tr0 = 0\n\t*(u32 *)(r10 - 12) = r0\n\tr7 = *(u64 *)(r10 - 16)", 1)
	p = PlanScenario(parse(t, over), "x86_64")
	got = nil
	for _, ins := range p.Shifted.Progs[0].Insns {
		if ins.OpCode.IsMemLoad() && ins.Src == prog.R7 {
			got = append(got, ins.Off)
		}
	}
	if p.Skip != "" || fmt.Sprint(got) != "[0]" {
		t.Errorf("after an overwrite: skip %q, r7 load at %v, want [0] (not ctx)", p.Skip, got)
	}
}

// The library is not vacuous for the oracle: most scenarios run, and each
// one skipped says why.
func TestPlanLibrary(t *testing.T) {
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"x86_64", "arm64"} {
		n := 0
		for _, sc := range scs {
			p := PlanScenario(sc, arch)
			if p.Skip == "" {
				n++
				if len(p.Job.Progs) != len(sc.Progs) || p.Shifted == nil {
					t.Errorf("%s: plan %+v", sc.File, p.Job)
				}
			}
		}
		if n < 30 {
			t.Errorf("%s: %d library scenarios expressible", arch, n)
		}
	}
}

// The initramfs is a gzipped newc archive the kernel unpacks: /init
// executable, the job, and the console device.
func TestInitrd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i.cpio.gz")
	if err := writeInitrd(path, []byte("ELF..."), []byte(`{"scenarios":[]}`), []byte("module")); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	entries := map[string][3]int64{} // mode, rdevmajor, size
	for len(b) >= 110 {
		if string(b[:6]) != "070701" {
			t.Fatalf("bad magic %q", b[:6])
		}
		field := func(i int) int64 { v, _ := strconv.ParseInt(string(b[6+8*i:14+8*i]), 16, 64); return v }
		mode, size, rmaj, nameLen := field(1), field(6), field(9), field(11)
		name := string(b[110 : 110+nameLen-1])
		data := (110 + nameLen + 3) &^ 3
		entries[name] = [3]int64{mode, rmaj, size}
		b = b[(data+size+3)&^3:]
		if name == "TRAILER!!!" {
			break
		}
	}
	if e := entries["init"]; e[0] != 0o100755 || e[2] != 6 {
		t.Errorf("init: %o", e)
	}
	if e := entries["dev/console"]; e[0] != 0o020600 || e[1] != 5 {
		t.Errorf("dev/console: %o", e)
	}
	if e := entries[job.TestBPFModule]; e[2] != 6 {
		t.Errorf("%s: %v", job.TestBPFModule, e)
	}
	if _, ok := entries["job.json"]; !ok || len(entries) != 9 {
		t.Errorf("entries %v", entries)
	}
	// The boot's own parameters reach the kernel's command line.
	_, args, err := Machine{Arch: "x86_64", Kernel: "k", Cmdline: []string{"spectre_v2=off"}}.qemu("i")
	if err != nil || !slices.Contains(args, "console=ttyS0 panic=-1 quiet nokaslr spectre_v2=off") {
		t.Errorf("qemu %v, %v", args, err)
	}
	// A Debian package's module sits beside its vmlinuz.
	dir := t.TempDir()
	vmlinuz := filepath.Join(dir, "boot", "vmlinuz-6.1.0-57-amd64")
	mod := filepath.Join(dir, "lib", "modules", "6.1.0-57-amd64", "kernel", "lib", job.TestBPFModule)
	if TestBPFModule(vmlinuz) != "" {
		t.Errorf("a module found where there is none")
	}
	os.MkdirAll(filepath.Dir(mod), 0o755)
	os.WriteFile(mod, nil, 0o644)
	if got := TestBPFModule(vmlinuz); filepath.Clean(got) != mod {
		t.Errorf("TestBPFModule = %q, want %q", got, mod)
	}
}

// The agent's lines are found among the kernel's, and a boot without the
// last line is incomplete.
func TestParseConsole(t *testing.T) {
	out := "[    1.0] random: crng init done\r\n" + job.Prefix + `{"kind":"hello","uname":"Linux"}` + "\r\nnoise " +
		job.Prefix + `{"kind":"ran","file":"a","line":3,"iter":1,"retval":7}` + "\n" + job.Prefix + "{broken\n"
	rs, done := parseConsole([]byte(out))
	if done || len(rs) != 3 || rs[1].Retval != 7 || rs[1].Line != 3 || rs[2].Kind != job.Garbled || !strings.Contains(rs[2].Err, "{broken") {
		t.Errorf("%+v done=%v", rs, done)
	}
	rs, done = parseConsole([]byte(out + job.Prefix + `{"kind":"done"}` + "\n"))
	if !done || len(rs) != 4 {
		t.Errorf("%+v done=%v", rs, done)
	}
}

// What makes a whole boot doubtful fails it, whatever the scenarios say:
// a garbled agent line, a JIT that is off or blinds root's constants, a
// guest that never said what it runs. Another kernel than 6.1 is a
// warning.
func TestBootProblems(t *testing.T) {
	hello := func(info map[string]string) job.Result {
		return job.Result{Kind: job.Hello, Uname: "Linux 6.1.0-57-amd64 #1 SMP x86_64", Info: info}
	}
	ok := map[string]string{"/proc/sys/net/core/bpf_jit_enable": "1", "/proc/sys/net/core/bpf_jit_harden": "0",
		spectreV2Path: "Mitigation: Retpolines; IBPB: conditional; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Retpoline",
		itsPath:       "Not affected"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name    string
		results []job.Result
		want    string // a problem; "" for none
	}{
		{"plain", []job.Result{hello(ok)}, ""},
		{"harden 1 (root is not blinded)", []job.Result{hello(with("/proc/sys/net/core/bpf_jit_harden", "1"))}, ""},
		{"harden 2", []job.Result{hello(with("/proc/sys/net/core/bpf_jit_harden", "2"))}, "blinds"},
		{"jit off", []job.Result{hello(with("/proc/sys/net/core/bpf_jit_enable", "0"))}, "JIT is not on"},
		{"no hello", nil, "no hello"},
		{"garbled", []job.Result{hello(ok), {Kind: job.Garbled, Err: "TAILSIM-ORACLE {bro"}}, "garbled"},
		{"no spectre_v2", []job.Result{hello(with(spectreV2Path, ""))}, ""}, // present, if empty
		{"ITS thunk", []job.Result{hello(with(itsPath, "Mitigation: Aligned branch/return thunks"))}, "indirect target selection"},
	} {
		rep := Evaluate("x86_64", nil, tc.results)
		got := strings.Join(rep.Problems, "; ")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) || rep.Failed() != (tc.want != "") {
			t.Errorf("%s: problems %q (failed %v), want %q", tc.name, got, rep.Failed(), tc.want)
		}
	}
	// bpf_jit_harden 1 blinds a user's load: a privileged off scenario is
	// skipped under it, and compared under 0.
	user := parse(t, userChain())
	for _, tc := range []struct {
		harden string
		skip   bool
	}{{"0", false}, {"1", true}} {
		rep := Evaluate("x86_64", []*scenarios.Scenario{user}, []job.Result{hello(with("/proc/sys/net/core/bpf_jit_harden", tc.harden))})
		if got := strings.Contains(rep.Outcomes[0].Skip, "blinds a user's constants"); got != tc.skip {
			t.Errorf("harden %s: skip %q", tc.harden, rep.Outcomes[0].Skip)
		}
	}
	noV2 := map[string]string{}
	for k, v := range ok {
		if k != spectreV2Path {
			noV2[k] = v
		}
	}
	if rep := Evaluate("x86_64", nil, []job.Result{hello(noV2)}); !strings.Contains(strings.Join(rep.Problems, ";"), "Spectre v2") {
		t.Errorf("a guest that did not report spectre_v2: problems %q", rep.Problems)
	}
	r := hello(ok)
	r.Uname = "Linux 6.12.0 #1 SMP x86_64"
	if rep := Evaluate("x86_64", nil, []job.Result{r}); len(rep.Warnings) != 1 || rep.Failed() {
		t.Errorf("a 6.12 guest: warnings %q, failed %v", rep.Warnings, rep.Failed())
	}
}

// compare holds tailsim's results against the kernel's: equal results
// pass; one changed retval, ctx or errno is named at its line.
func TestCompareResults(t *testing.T) {
	text := strings.Replace(ctxChain, "-- ctx --", "-- slots --\njt[1] = leaf\n-- prog leaf --\n\tr0 = 42\n\texit\n-- ctx --", 1) +
		"delete jt[1]\nexpect error = none\ndelete jt[1]\nexpect error = ENOENT\n"
	sc := parse(t, text)
	for _, arch := range []string{"x86_64", "arm64"} {
		p := PlanScenario(sc, arch)
		if p.Skip != "" {
			t.Fatal(p.Skip)
		}
		cfg := BootConfig(arch, map[string]string{"/sys/devices/system/cpu/vulnerabilities/spectre_v2": "Mitigation: Retpolines"})
		// The kernel's images are tailsim's own here: the test is about
		// the results.
		ours, err := Build(p.Shifted, arch, prog.Linux61, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		images := map[string][]job.Func{}
		for _, pi := range ours.Progs {
			for _, f := range pi.Funcs {
				images[pi.Prog] = append(images[pi.Prog], job.Func{Addr: f.Addr, Code: hex.EncodeToString(f.Code)})
			}
		}
		good := []job.Result{{Kind: job.Loaded, File: sc.File, Images: images, Hash: job.Hash(p.Job)},
			{Kind: job.Ran, File: sc.File, Line: 30, Iter: 1, Retval: 42, Ctx: "0000000006000000"},
			{Kind: job.Change, File: sc.File, Line: 31}, {Kind: job.Change, File: sc.File, Line: 33, Errno: "ENOENT"}}
		o := &Outcome{}
		compare(o, p, arch, cfg, good, nil)
		if o.Status() != "PASS" || o.Runs != 1 || o.Funcs != 3 {
			t.Fatalf("%s: %+v", arch, o)
		}
		for k, want := range map[int]string{1: "line 30 iteration 1: r0 0x2a, the kernel's 0x2b", 2: "ctx 0000000006000000, the kernel's cb[] 0000000007000000",
			3: "error ENOENT, the kernel's none"} {
			bad := append([]job.Result(nil), good...)
			switch k {
			case 1:
				bad[1].Retval = 43
			case 2:
				bad[1].Ctx = "0000000007000000"
			case 3:
				bad[3].Errno = ""
			}
			o := &Outcome{}
			compare(o, p, arch, cfg, bad, nil)
			if o.Status() != "FAIL" || !strings.Contains(strings.Join(o.Mismatches, "\n"), want) {
				t.Errorf("%s case %d: %v, want %q", arch, k, o.Mismatches, want)
			}
		}
		// A byte changed in the kernel's image is listed.
		bad := append([]job.Result(nil), good...)
		img := map[string][]job.Func{}
		for k, v := range images {
			img[k] = append([]job.Func(nil), v...)
		}
		code, _ := hex.DecodeString(img["leaf"][0].Code)
		code[len(code)-8] ^= 0x01
		img["leaf"][0].Code = hex.EncodeToString(code)
		bad[0].Images = img
		o = &Outcome{}
		compare(o, p, arch, cfg, bad, nil)
		if len(o.Bytes) != 1 || o.Bytes[0].Name != "leaf#0" {
			t.Errorf("%s: a changed byte gives %+v", arch, o.Bytes)
		}
		// A program whose image the kernel did not report is named.
		missing := map[string][]job.Func{}
		for k, v := range images {
			if k != "leaf" {
				missing[k] = v
			}
		}
		bad[0].Images = missing
		o = &Outcome{}
		compare(o, p, arch, cfg, bad, nil)
		if !strings.Contains(strings.Join(o.Mismatches, "\n"), "leaf: the kernel reported no image") {
			t.Errorf("%s: a missing image gives %v", arch, o.Mismatches)
		}
	}
}

// A C object's ctx is struct __sk_buff itself: its accesses stay, and
// its global data go to the guest as arrays, .rodata frozen, loaded by
// value (BPF_PSEUDO_MAP_VALUE) with the offset in the second half.
func TestPlanObject(t *testing.T) {
	sc := libraryScenario(t, "objects/globals.txtar")
	p := PlanScenario(sc, "x86_64")
	if p.Skip != "" {
		t.Fatal(p.Skip)
	}
	if p.Job.CtxAt != 0 || len(p.Job.Ctx) != 2*len(sc.Ctx) {
		t.Errorf("ctx at %d, %s", p.Job.CtxAt, p.Job.Ctx)
	}
	arrays, frozen, values := 0, 0, 0
	for _, m := range p.Job.Maps {
		if m.Array {
			arrays++
			if len(m.Values) != 2*int(m.MaxEntries*m.ValueSize) {
				t.Errorf("%s: values %s for %d x %d", m.Name, m.Values, m.MaxEntries, m.ValueSize)
			}
			if m.ReadOnly {
				frozen++
			}
		}
	}
	for _, jp := range p.Job.Progs {
		raw, _ := hex.DecodeString(jp.Insns)
		for _, r := range jp.MapRefs {
			if r.Value {
				values++
				if raw[8*r.Insn+1]>>4 != 2 {
					t.Errorf("%s: value load's src %d, want BPF_PSEUDO_MAP_VALUE", jp.Name, raw[8*r.Insn+1]>>4)
				}
			}
		}
	}
	if arrays < 2 || frozen != 1 || values == 0 {
		t.Errorf("%d arrays, %d frozen, %d value loads in %+v", arrays, frozen, values, p.Job.Maps)
	}
	for i, d := range p.Shifted.Progs {
		if !slices.EqualFunc(d.Insns, sc.Progs[i].Insns, func(a, b prog.Instruction) bool { return a.Off == b.Off && a.OpCode == b.OpCode }) {
			t.Errorf("%s: the __sk_buff program was changed", d.Name)
		}
	}
}

// A translation of lib/test_bpf's test is held against the kernel's own
// run of it: equal when the module's test passed with the JIT and
// tailsim's run passes, a difference otherwise, skipped without the
// module.
func TestKernelTests(t *testing.T) {
	sc := libraryScenario(t, "test_bpf/01_tail_call_2.txtar")
	hello := job.Result{Kind: job.Hello, Uname: "Linux 6.1.0 x86_64", Info: map[string]string{
		"/proc/sys/net/core/bpf_jit_enable": "1", "/proc/sys/net/core/bpf_jit_harden": "0"}}
	pass := job.KernelTest{Index: 1, Name: "Tail call 2", Jited: true, Pass: true, Detail: "12 PASS"}
	for _, tc := range []struct {
		name   string
		change func(*job.KernelTest)
		want   string // "" for equal
	}{
		{"passed", func(*job.KernelTest) {}, ""},
		{"failed", func(k *job.KernelTest) { k.Pass, k.Detail = false, "ret 2 != 3 FAIL" }, "ret 2 != 3"},
		{"interpreted", func(k *job.KernelTest) { k.Jited = false }, "without the JIT"},
		{"another test", func(k *job.KernelTest) { k.Name = "Tail call 3" }, `"Tail call 3"`},
		{"missing", func(k *job.KernelTest) { k.Index = 5 }, "no test #1"},
	} {
		k := pass
		tc.change(&k)
		rep := Evaluate("x86_64", []*scenarios.Scenario{sc}, []job.Result{hello, {Kind: job.KernelTests, Tests: []job.KernelTest{k}}})
		o := rep.Outcomes[0]
		got := strings.Join(o.Mismatches, "; ")
		if tc.want == "" && (o.Status() != "PASS" || o.KernelTest == "") || tc.want != "" && (o.Status() != "FAIL" || !strings.Contains(got, tc.want)) {
			t.Errorf("%s: %s %q, want %q", tc.name, o.Status(), got, tc.want)
		}
	}
	if rep := Evaluate("x86_64", []*scenarios.Scenario{sc}, []job.Result{hello}); rep.Outcomes[0].Status() != "SKIP" {
		t.Errorf("without the module's results: %s", rep.Outcomes[0].Status())
	}
	// The kernel passed, but the translation computes something else than
	// the table's result (and expects it), or runs another number of
	// times: a difference, though tailsim's own run passes.
	data, err := os.ReadFile(filepath.Join("..", "scenarios", "library", "test_bpf", "01_tail_call_2.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"r1 += 2\n", "r1 += 3\n", "tailsim's r0 after 1000 runs is 4, the kernel's table's 3"},
		{"repeat=1000", "repeat=10", "repeat=1000"},
	} {
		text := strings.Replace(string(data), tc.old, tc.new, 1)
		text = strings.Replace(text, "expect r0 = 3", "expect r0 = "+map[bool]string{true: "4", false: "3"}[tc.old == "r1 += 2\n"], 1)
		mod := parse(t, text)
		rep := Evaluate("x86_64", []*scenarios.Scenario{mod}, []job.Result{hello, {Kind: job.KernelTests, Tests: []job.KernelTest{pass}}})
		if o := rep.Outcomes[0]; o.Status() != "FAIL" || !strings.Contains(strings.Join(o.Mismatches, "; "), tc.want) {
			t.Errorf("%s: %s %q, want %q", tc.new, o.Status(), o.Mismatches, tc.want)
		}
	}
	// A title alone does not make a scenario one of the kernel's tests.
	retitled := parse(t, strings.Replace(ctxChain, "ctx through a copy and a subprogram", "Tail call 2 (lib/test_bpf.c, test 1)", 1))
	if _, ok := testBPFIndex(retitled); ok {
		t.Errorf("a verified scenario titled as test 1 was taken for it")
	}
}

// libraryScenario is the library scenario whose file ends in suffix.
func libraryScenario(t *testing.T, suffix string) *scenarios.Scenario {
	t.Helper()
	scs, err := scenarios.LoadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scs {
		if strings.HasSuffix(s.File, suffix) {
			return s
		}
	}
	t.Fatalf("no %s in the library", suffix)
	return nil
}

// The build comes from the mitigation's first field, and a mitigation a
// boot asked for must be the one it got.
func TestBootConfigAndCmdline(t *testing.T) {
	for _, tc := range []struct {
		v2   string
		want prog.Config
	}{
		{"Mitigation: Retpolines; IBPB: conditional; BHI: Retpoline", prog.Retpoline | prog.SLS | prog.Thunk},
		{"Mitigation: LFENCE; IBPB: conditional", prog.Retpoline | prog.SLS | prog.Lfence},
		{"Vulnerable; IBPB: disabled; BHI: Retpoline", prog.Retpoline | prog.SLS}, // a later field's "Retpoline" is not the mitigation
	} {
		if got := BootConfig("x86_64", map[string]string{spectreV2Path: tc.v2}); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.v2, got.Options(), tc.want.Options())
		}
	}
	report := func(cmdline, v2 string) *Report {
		h := job.Result{Kind: job.Hello, Info: map[string]string{"/proc/cmdline": "console=ttyS0 quiet " + cmdline, spectreV2Path: v2}}
		return &Report{Config: BootConfig("x86_64", h.Info), Info: h.Info}
	}
	for _, tc := range []struct {
		asked, cmdline, v2, want string
	}{
		{"spectre_v2=off", "spectre_v2=off", "Vulnerable", ""},
		{"spectre_v2=off", "spectre_v2=off", "Mitigation: Retpolines", "did not take"},
		{"spectre_v2=retpoline,lfence", "spectre_v2=retpoline,lfence", "Mitigation: LFENCE", ""},
		{"spectre_v2=retpoline,lfence", "spectre_v2=retpoline,lfence", "Mitigation: Retpolines", "did not take"},
		{"spectre_v2=off", "", "Vulnerable", "lacks spectre_v2=off"},
	} {
		got := strings.Join(cmdlineProblems([]string{tc.asked}, report(tc.cmdline, tc.v2)), "; ")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s with %q: %q, want %q", tc.asked, tc.v2, got, tc.want)
		}
	}
}
