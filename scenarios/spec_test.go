package scenarios

import (
	"strings"
	"testing"

	"tailsim/prog"
)

// A well-formed scenario the error cases below break one line at a time.
const good = `Two programs
-- maps --
jt max_entries=4
-- prog entry --
	r2 = map[jt]
	w3 = 1
	call bpf_tail_call
	r0 = 7
	exit
-- prog leaf --
	r0 = 1
	exit
-- slots --
jt[1] = leaf
-- run --
run entry
expect r0 = 1
`

func TestParseGood(t *testing.T) {
	sc, err := Parse("good.txtar", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Title != "Two programs" || len(sc.Progs) != 2 || len(sc.Maps) != 1 || len(sc.Steps) != 1 {
		t.Fatalf("parsed %+v", sc)
	}
	if e := sc.Steps[0].Expect[0]; e.Key != KeyR0 || e.Value != 1 || e.Line != 17 {
		t.Errorf("expectation %+v", e)
	}
	// Run options parse into the step and print back as written.
	sc, err = Parse("good.txtar", []byte(strings.Replace(good, "run entry\n", "run entry repeat=2 tail_call_cnt=32\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if st := sc.Steps[0]; st.Repeat != 2 || st.TailCallCnt != 32 || st.String() != "run entry repeat=2 tail_call_cnt=32" {
		t.Errorf("step %+v, printed %q", st, st)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // replace old by new in good ("" old: whole file is new)
		extra    string // appended to the file
		line     int
		msg      string
	}{
		{"empty file", "", " ", "", 1, "title"},
		{"truncated after title", "", "Title only\n", "", 2, "no sections"},
		{"truncated marker", "-- run --", "-- run", "", 15, "malformed section marker"},
		{"truncated in run section", "run entry\nexpect r0 = 1\n", "", "", 0, "no run steps"},
		{"unknown mnemonic", "r0 = 7", "mov r0, 7", "", 8, "unknown instruction"},
		{"bad register", "r0 = 7", "r11 = 7", "", 8, "bad register"},
		{"w and r mixed", "r0 = 7", "w0 = r1", "", 8, "mixes 32-bit and 64-bit"},
		{"jump out of range", "r0 = 7", "goto +9", "", 8, "outside the function"},
		{"unknown label", "r0 = 7", "goto nowhere", "", 8, "unknown label"},
		{"unknown map in program", "map[jt]", "map[nope]", "", 5, "unknown map"},
		{"array without value_size", "jt max_entries=4", "jt max_entries=4\nvals type=array max_entries=2", "", 4, "array vals needs value_size=N"},
		{"unknown map type", "jt max_entries=4", "jt max_entries=4\nh type=hash max_entries=2", "", 4, `unknown map type "hash"`},
		{"prog array with value_size", "jt max_entries=4", "jt max_entries=4 value_size=8", "", 3, "no value_size"},
		{"array element past max_entries", "jt max_entries=4", "jt max_entries=4\nvals type=array max_entries=2 value_size=4", "expect vals[2] u32 = 1\n", 19, "bad index"},
		{"array bytes past the value", "jt max_entries=4", "jt max_entries=4\nvals type=array max_entries=2 value_size=4", "expect vals[1]+2 u32 = 1\n", 19, "pass the 4-byte value"},
		{"no such global", "expect r0 = 1", "expect global count = 1", "", 17, `no global "count"`},
		{"unknown map in slots", "jt[1] = leaf", "xx[1] = leaf", "", 14, "unknown map"},
		{"unknown program in slots", "jt[1] = leaf", "jt[1] = nope", "", 14, "unknown program"},
		{"unknown program in run", "run entry", "run nope", "", 16, "unknown program"},
		{"tail_call_cnt past the limit", "run entry", "run entry tail_call_cnt=34", "", 16, `bad tail_call_cnt "34"`},
		{"tail_call_cnt not a number", "run entry", "run entry tail_call_cnt=lots", "", 16, `bad tail_call_cnt "lots"`},
		{"unknown run option", "run entry", "run entry count=3", "", 16, "count"},
		{"unknown subprogram", "r0 = 7", "call nope", "", 8, "unknown subprogram"},
		{"slot beyond max_entries", "jt[1] = leaf", "jt[4] = leaf", "", 14, "beyond max_entries"},
		{"duplicate program", "-- prog leaf --", "-- prog entry --", "", 10, "duplicate name"},
		{"program named like a map", "-- prog leaf --\n", "-- prog jt --\n", "", 10, "duplicate name"},
		{"duplicate label", "r0 = 7", "a:\na:\nr0 = 7", "", 9, "defined twice"},
		{"impossible layout", "-- maps --", "-- config --\nlayout custom max_entries=0x44 ptrs=0x40 bpf_func=0x48\n-- maps --", "", 3, "must come after max_entries"},
		{"misaligned layout", "-- maps --", "-- config --\nlayout custom max_entries=0x45 ptrs=0x130 bpf_func=0x48\n-- maps --", "", 3, "not 4-byte aligned"},
		{"unknown config", "-- maps --", "-- config --\nconfig ibt,cet\n-- maps --", "", 3, `unknown config "cet"`},
		{"empty config", "-- maps --", "-- config --\nconfig\n-- maps --", "", 3, "unknown config"},
		{"the old hardening key", "-- maps --", "-- config --\nhardening ibt pac\n-- maps --", "", 3, "the hardening key is now config: config ibt,pac"},
		{"rethunk alone", "-- maps --", "-- config --\nconfig rethunk\n-- maps --", "", 3, "rethunk needs retpoline"},
		{"two spectre_v2 choices", "-- maps --", "-- config --\nconfig distro,lfence\n-- maps --", "", 3, "a kernel makes one"},
		{"thunk without retpoline", "-- maps --", "-- config --\nconfig thunk\n-- maps --", "", 3, "thunk and lfence need retpoline"},
		{"unknown placement", "-- maps --", "-- config --\nplacement low\n-- maps --", "", 3, `unknown placement "low" (kernel, aligned)`},
		{"two placements", "-- maps --", "-- config --\nplacement kernel aligned\n-- maps --", "", 3, "placement takes one value"},
		{"unknown layout", "-- maps --", "-- config --\nlayout v2.6\n-- maps --", "", 3, "unknown layout"},
		{"unknown property", "expect r0 = 1", "expect broken = R1 changed", "", 17, `unknown property "R1 changed"`},
		{"unknown fault kind", "expect r0 = 1", "expect fault = segv", "", 17, `unknown fault kind "segv"`},
		{"fault address of another kind", "expect r0 = 1", "expect fault = budget @0x10", "", 17, "expected fault = access @ADDRESS"},
		{"unknown expectation", "expect r0 = 1", "expect r9 = 1", "", 17, `unknown expectation "r9"`},
		{"max_entries zero", "max_entries=4", "max_entries=0", "", 3, "EINVAL"},
		{"max_entries beyond u32", "max_entries=4", "max_entries=0x100000000", "", 3, "bad max_entries"},
		{"unknown section", "-- slots --", "-- slot --", "", 13, "unknown section"},
		{"second run section", "expect r0 = 1\n", "expect r0 = 1\n-- run --\nrun leaf\n", "", 18, "second run section"},
		{"unknown expectation", "expect r0 = 1", "expect r9 = 1", "", 17, "unknown expectation"},
		{"bad fall-through reason", "expect r0 = 1", "expect fallthrough = nope", "", 17, "unknown fall-through"},
		{"error after run", "expect r0 = 1", "expect error = ENOENT", "", 17, "belong to update and delete"},
		{"ctx expectation past ctx", "expect r0 = 1", "expect ctx+0 u32 = 1", "", 17, "past the 0-byte ctx"},
		{"unknown arch scope", "expect r0 = 1", "expect[mips] r0 = 1", "", 17, "unknown arch"},
		{"stack too large", "-- prog leaf --", "-- prog leaf stack=1024 --", "", 10, "bad stack size"},
		{"falls off the end", "r0 = 1\n\texit\n-- slots", "r0 = 1\n-- slots", "", 11, "falls off its end"},
		{"r0 read after a tail call", "r0 = 7\n", "", "", 8, "R0 !read_ok"},
		{"unknown helper number", "r0 = 7", "call 9999", "", 8, "unknown helper"},
		{"recursive subprogram", "r0 = 7\n", "call s\n\tr0 = 7\n", "-- subprog s --\n\tcall s\n\texit\n", 20, "recursive call"},
		{"slot with no program", "jt[1] = leaf", "jt[1] =", "", 14, "found no program"},
		{"misspelled section with arguments", "-- prog leaf --", "-- program leaf --", "", 10, "unknown section"},
		{"program named like a helper", "-- prog leaf --", "-- prog ktime_get_ns --", "", 10, "helper's name"},
		{"ctx expectation too wide", "expect r0 = 1", "expect ctx+0 u8 = 0x1ff", "\n-- ctx --\nu8 0\n", 17, "does not fit u8"},
		{"ctx value wraps", "-- run --", "-- ctx --\nu32 18446744073709551600\n-- run --", "", 16, "does not fit u32"},
		{"empty ctx section", "-- run --", "-- ctx --\n-- run --", "", 15, "empty ctx"},
		{"stack smaller than accesses", "-- prog leaf --", "-- prog leaf stack=8 --\n\t*(u64 *)(r10 - 16) = 1", "", 10, "declares stack=8"},
		{"path names an unknown program", "expect r0 = 1", "expect path = entry lef", "", 17, "not a program"},
		{"finish without a stopped change", "expect r0 = 1", "expect r0 = 1\nfinish jt[1]", "", 18, "no update or delete of it was stopped"},
		{"stop after the pokes", "expect r0 = 1", "expect r0 = 1\ndelete jt[1] stop=poke", "", 18, "stops after ptrs, cached, target or bypass"},
		{"a second change before finish", "expect r0 = 1", "expect r0 = 1\ndelete jt[1] stop=ptrs\nupdate jt[1] = leaf", "", 19, "not finished"},
		{"expect after finish", "expect r0 = 1", "expect r0 = 1\ndelete jt[1] stop=ptrs\nfinish jt[1]\nexpect error = none", "", 20, "finish has no expectations"},
		{"set without ctx", "expect r0 = 1", "expect r0 = 1\nset ctx+0 u32 = 1", "", 18, "set needs a ctx section"},
		{"set beyond ctx", "expect r0 = 1", "expect r0 = 1\nset ctx+4 u32 = 1", "\n-- ctx --\nu32 0\n", 18, "past the 4-byte ctx"},
		{"set with an expectation", "expect r0 = 1", "expect r0 = 1\nset ctx+0 u8 = 1\nexpect r0 = 1", "\n-- ctx --\nu32 0\n", 19, "set has no expectations"},
		{"name with a dash", "-- prog leaf --", "-- prog le-af --", "", 10, "bad name"},
		{"privileged maybe", "-- maps --", "-- config --\nprivileged maybe\n-- maps --", "", 3, `privileged is on or off, not "maybe"`},
		{"unprivileged without the verifier", "-- maps --", "-- config --\nprivileged off\nverifier off\n-- maps --", "", 0, "privileged off needs the verifier"},
		{"a program of another type in a used array", "-- prog leaf --", "-- prog leaf type=xdp --", "", 14, "filling jt[1] with leaf: EINVAL"},
		{"a user of another type", "-- prog leaf --\n\tr0 = 1", "-- prog leaf type=xdp --\n\tr2 = map[jt]\n\tr3 = 0\n\tcall bpf_tail_call\n\tr0 = 1", "", 10, "program leaf of type xdp uses prog array jt, which holds programs of type sched_cls: bpf_prog_map_compatible() refuses it (EINVAL)"},
		{"empty scope", "expect r0 = 1", "expect[] r0 = 1", "", 17, "empty item in expect scope [] (ARCH, KERNEL or ARCH/KERNEL"},
		{"empty scope items", "expect r0 = 1", "expect[,] r0 = 1", "", 17, "empty item in expect scope [,]"},
		{"empty scope halves", "expect r0 = 1", "expect[/] r0 = 1", "", 17, "empty item in expect scope [/]"},
		{"half a scope", "expect r0 = 1", "expect[x86_64/] r0 = 1", "", 17, "empty item in expect scope [x86_64/]"},
		{"w0 past 32 bits", "expect r0 = 1", "expect w0 = 0x100000000", "", 17, "w0 is the low 32 bits of R0: 0x100000000 can never match"},
		{"unscoped divergence", "expect r0 = 1", "expect divergence", "", 17, "divergence is about an emulated arch's code: scope it"},
		{"divergence of the model", "expect r0 = 1", "expect[ref] divergence", "", 17, `each scope item names x86_64 or arm64, not "ref"`},
		{"broken scoped by kernel only", "expect r0 = 1", "expect[patched] broken = R1 unchanged", "", 17, `each scope item names x86_64 or arm64, not "v6.18+series"`},
		{"variant key", "-- maps --", "-- config --\nvariant patched\n-- maps --", "", 3, "the variant key is now kernel (v6.1, v6.18, v6.18+series): kernel patched"},
		{"unknown kernel", "-- maps --", "-- config --\nkernel v6.2\n-- maps --", "", 3, `unknown kernel "v6.2" (v6.1, v6.18, v6.18+series)`},
		{"unknown kernel in scope", "expect r0 = 1", "expect[v5.10] r0 = 1", "", 17, `unknown arch "v5.10" in expect scope`},
		{"budget past a verified program's reach", "-- maps --", "-- config --\nbudget 2147483648\n-- maps --", "", 3, `bad budget "2147483648" (instructions per run, 1..34000000`},
		{"repeat past the work a scenario may ask", "run entry\n", "run entry repeat=1000000\n", "", 16, "may execute 1000000000000 instructions (repeat × budget 1000000, summed), more than the 1073741824"},
		{"work summed over the steps", "run entry\nexpect r0 = 1\n", "run entry repeat=1000\nrun entry repeat=1000\n", "", 17, "may execute 2000000000 instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.new
			if tt.old != "" {
				if !strings.Contains(good, tt.old) {
					t.Fatalf("test bug: %q not in the good scenario", tt.old)
				}
				src = strings.Replace(good, tt.old, tt.new, 1)
			}
			src += tt.extra
			_, err := Parse("bad.txtar", []byte(src))
			if err == nil {
				t.Fatalf("no error for:\n%s", src)
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v is not a located *Error", err, err)
			}
			if e.File != "bad.txtar" || e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %q (line %d); want line %d containing %q", err, e.Line, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "bad.txtar") {
				t.Errorf("message %q does not start with the file name", err)
			}
		})
	}
}

// FuzzParseScenario checks that no input makes the parser or the builder
// panic, and that a file that parses can be built again.
func FuzzParseScenario(f *testing.F) {
	f.Add(good)
	f.Add("t\n-- run --\nrun x\n")
	f.Add("t\n-- ctx --\nu32 -1\nbytes ff 00\nzero 3\n-- prog p --\nexit\n")
	f.Add("t\n-- config --\nlayout custom max_entries=4 ptrs=8 bpf_func=8\n")
	f.Add(strings.Replace(good, "expect r0 = 1", "expect[x86_64/patched,arm64] path = entry leaf*3\nexpect fallthrough = empty*2 bounds", 1))
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse("fuzz.txtar", []byte(src))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("unlocated error %T: %v", err, err)
			}
			return
		}
		if _, err := sc.Build(); err != nil {
			t.Fatalf("parsed but does not build: %v", err)
		}
	})
}

// Words of the input are quoted in errors only up to a length: a
// megabyte number used to be echoed whole.
func TestLongWordsCut(t *testing.T) {
	src := strings.Replace(good, "expect r0 = 1", "expect r0 = "+strings.Repeat("9", 1<<20), 1)
	_, err := Parse("bad.txtar", []byte(src))
	want := `bad.txtar:17: bad number "99999999999999999999999…(1048578 bytes)"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	for _, ok := range []string{"expect w0 = 0xffffffff", "expect w0 = -1", "expect w0 = -0x80000000"} {
		if _, err := Parse("ok.txtar", []byte(strings.Replace(good, "expect r0 = 1", ok, 1))); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// "config" takes a list of presets and options in either separator, and
// later lines override.
func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   prog.Config
	}{
		{"", 0},
		{"config none", 0},
		{"config default", 0},
		{"config ibt", prog.IBT},
		{"config bti,pac", prog.BTI | prog.PAC},
		{"config ibt bti", prog.IBT | prog.BTI},
		{"config pac\nconfig none", 0},
		{"config distro", prog.Retpoline | prog.SLS | prog.Thunk | prog.Rethunk | prog.BMI2 | prog.BTI | prog.PAC},
		{"config distro-eibrs,ibt", prog.Retpoline | prog.SLS | prog.BMI2 | prog.BTI | prog.PAC | prog.IBT},
		{"config retpoline lfence", prog.Retpoline | prog.Lfence},
	} {
		text := strings.Replace(good, "-- maps --", "-- config --\n"+tc.config+"\n-- maps --", 1)
		sc, err := Parse("h.txtar", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", tc.config, err)
		}
		if sc.Config != tc.want {
			t.Errorf("%q: config %v, want %v", tc.config, sc.Config, tc.want)
		}
	}
}

// An unprivileged program: its sites are never direct, and a site two
// maps reach is refused as the verifier refuses it.
func TestUnprivileged(t *testing.T) {
	unpriv := strings.Replace(good, "-- maps --", "-- config --\nprivileged off\n-- maps --", 1)
	unpriv = strings.ReplaceAll(unpriv, " --\n\t", " type=socket_filter --\n\t")
	sc, err := Parse("u.txtar", []byte(unpriv))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, fx := range w.Fixups {
		for _, s := range fx.Sites {
			if s.Direct {
				t.Errorf("an unprivileged site at %s is direct", s.Loc)
			}
		}
	}
	if sc, _ := Parse("p.txtar", []byte(good)); sc != nil {
		if w, _ := sc.Build(); w != nil && !w.Fixups[w.Prog("entry")].Sites[0].Direct {
			t.Error("the privileged site with a constant key is not direct")
		}
	}
	// What an unprivileged load refuses before any tail call matters.
	for _, tc := range []struct{ old, new, want string }{
		{"-- prog leaf type=socket_filter --", "-- prog leaf --", "type sched_cls needs CAP_BPF"},
		{"jt max_entries=4", "jt max_entries=2147483649", "rounds its size up to a power of two, past 2^32 (E2BIG)"},
		{"\tr0 = 1\n", "\tr0 = 1\n\tif r0 == 1 goto -1\n", "back-edge from insn 1 to 1"},
		{"\tr0 = 1\n", "\tcall sub\n", "allowed for CAP_BPF and CAP_SYS_ADMIN"},
	} {
		src := strings.Replace(unpriv, tc.old, tc.new, 1) + "-- subprog sub --\n\tr0 = 1\n\texit\n"
		if _, err := Parse("r.txtar", []byte(src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.new, err, tc.want)
		}
	}
	poisoned := strings.Replace(unpriv, "jt max_entries=4", "jt max_entries=4\nother max_entries=4", 1)
	poisoned = strings.Replace(poisoned, "\tr2 = map[jt]\n", "\tr2 = map[jt]\n\tif r1 == 0 goto +2\n\tr2 = map[other]\n", 1)
	_, err = Parse("p.txtar", []byte(poisoned))
	if err == nil || !strings.Contains(err.Error(), "tail_call abusing map_ptr") {
		t.Errorf("an unprivileged site two maps reach: %v", err)
	}
}

// "placement" names one placement; the default is the kernel's.
func TestParsePlacement(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   prog.Placement
	}{
		{"", prog.PlaceKernel},
		{"placement kernel", prog.PlaceKernel},
		{"placement aligned", prog.PlaceAligned},
		{"placement aligned\nplacement kernel", prog.PlaceKernel},
	} {
		text := strings.Replace(good, "-- maps --", "-- config --\n"+tc.config+"\n-- maps --", 1)
		sc, err := Parse("p.txtar", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", tc.config, err)
		}
		if sc.Placement != tc.want {
			t.Errorf("%q: placement %v, want %v", tc.config, sc.Placement, tc.want)
		}
	}
}

// check_max_stack_depth(): the selftest pair "tail call from subprog with
// 240 / 256 bytes of caller stack", and the combined 512-byte limit.
func TestStackDepthRules(t *testing.T) {
	const src = `stack rules
-- maps --
jt max_entries=1
-- subprog sub STACK --
	r2 = map[jt]
	r3 = 0
	call bpf_tail_call
	r0 = 0
	exit
-- prog entry stack=CALLER --
	call sub
	r0 = 0
	exit
-- run --
run entry
`
	for _, tc := range []struct {
		caller, sub string
		want        string // "" means accepted
	}{
		{"240", "", ""},
		{"256", "", "case.txtar:11: tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large"},
		{"0", "stack=512", ""},
		{"200", "stack=320", "combined stack size of 2 calls is 528. Too large"},
	} {
		text := strings.NewReplacer("CALLER", tc.caller, "STACK", tc.sub).Replace(src)
		sc, err := Parse("case.txtar", []byte(text))
		if err == nil {
			_, err = sc.Build()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("caller %s, %q: %v", tc.caller, tc.sub, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("caller %s, %q: error %v, want %q", tc.caller, tc.sub, err, tc.want)
		}
	}
}

// An object's global data: variables by name, read and written, but not
// .rodata's, which the kernel freezes at load; a second object; a missing
// object, or one with a map tailsim does not model, is an error at the
// object's line.
func TestObjectGlobals(t *testing.T) {
	const head = "Globals\n-- config --\nobject globals.bpf.o\n-- ctx --\nzero 64\n-- run --\nrun entry\n"
	file := "library/objects/t.txtar"
	sc, err := Parse(file, []byte(head+"expect global count = 20\nset global first_key = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := sc.Steps[0].Expect[0]
	if e.Key != KeyMap || e.Map != ".bss" || e.Off != 0 || e.Size != 4 || e.Value != 20 {
		t.Errorf("global count: %+v", e)
	}
	if set := sc.Steps[1].Set; set.Map != ".data" || set.Size != 4 || set.Value != 3 {
		t.Errorf("set global first_key: %+v", set)
	}
	for _, tc := range []struct{ text, want string }{
		{head + "set global stop = 1\n", "t.txtar:8: global stop is in .rodata, which the kernel freezes at load"},
		{strings.Replace(head, "globals.bpf.o", "nope.bpf.o", 1), "t.txtar:3: object nope.bpf.o:"},
		{strings.Replace(head, "globals.bpf.o", "hash.bpf.o", 1), "t.txtar:3: hash.bpf.o: section .maps: map seen: Hash is not modelled"},
		{strings.Replace(head, "object globals.bpf.o", "object globals.bpf.o\nobject chain.bpf.o", 1), "t.txtar:4: a second object"},
		{strings.Replace(head, "run entry", "run nope", 1), `t.txtar:7: unknown program "nope"`},
		{strings.Replace(head, "globals.bpf.o", "printk.bpf.o", 1), "t.txtar:3: printk.bpf.o: section tc, program entry, instruction 3: helper FnTracePrintk (6), which has no stub"},
	} {
		if _, err := Parse(file, []byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// interp.* needs a program the kernel interpreter loads: one with
// bpf-to-bpf calls and a tail call it refuses, and the note says so.
func TestInterpRefused(t *testing.T) {
	calls := strings.Replace(good, "\tr0 = 7\n", "\tcall sub\n\tr0 = 7\n", 1) + "-- subprog sub --\n\tr0 = 0\n\texit\n"
	if _, err := Parse("calls.txtar", []byte(calls)); err != nil {
		t.Fatalf("without interp.*: %v", err)
	}
	withInterp := strings.Replace(calls, "expect r0 = 1\n", "expect r0 = 1\nexpect interp.count = 1\n", 1)
	_, err := Parse("calls.txtar", []byte(withInterp))
	e, ok := err.(*Error)
	if !ok || e.Line != 19 || !strings.Contains(e.Msg, "interpreter refuses program entry") {
		t.Errorf("error %v, want one at line 19 naming entry", err)
	}
	// Without the call the interpreter loads it, and interp.* is fine.
	if _, err := Parse("plain.txtar", []byte(strings.Replace(good, "expect r0 = 1\n", "expect r0 = 1\nexpect interp.count = 1\n", 1))); err != nil {
		t.Errorf("interp.* on a program without calls: %v", err)
	}
}
