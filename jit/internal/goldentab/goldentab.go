// Package goldentab reads the golden tables both JITs' tests share: cases
// of "case k=v ..." lines, section lines "<func>.<part> [k=v ...]", and
// tab-indented instruction lines "<encoding> | <llvm-mc text>". The
// encoding's form (bytes on x86, one word on arm64) is the caller's.
package goldentab

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Insn is one instruction of a table: its encoding and its text as
// llvm-mc prints it, whitespace normalised.
type Insn[E any] struct {
	Code E
	Text string
	Line int
}

// Section is a named run of instructions: "main.prologue", "sub.tailcall".
type Section[E any] struct {
	Name  string
	Attrs map[string]string
	Insns []Insn[E]
	Line  int
}

// Case is one table case.
type Case[E any] struct {
	File     string
	Line     int
	Params   map[string]string
	Sections []*Section[E]
}

// Name is the case's name parameter.
func (c *Case[E]) Name() string { return c.Params["name"] }

// Where is the case's file:line.
func (c *Case[E]) Where() string { return fmt.Sprintf("%s:%d", c.File, c.Line) }

// Section finds a section by name, or nil.
func (c *Case[E]) Section(name string) *Section[E] {
	for _, s := range c.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Norm folds white space.
func Norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// KV parses key=value fields.
func KV(fields []string) (map[string]string, error) {
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", f)
		}
		m[k] = v
	}
	return m, nil
}

// Load parses the table at path; parse reads an instruction's encoding.
func Load[E any](t testing.TB, path string, parse func(hex string) (E, error)) []*Case[E] {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []*Case[E]
	var cur *Case[E]
	var sec *Section[E]
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "case "):
			params, err := KV(strings.Fields(line)[1:])
			if err != nil {
				fail("%v", err)
			}
			if params["name"] == "" {
				fail("case without a name")
			}
			cur = &Case[E]{File: path, Line: n, Params: params}
			sec = nil
			cases = append(cases, cur)
		case strings.HasPrefix(line, "\t"):
			if sec == nil {
				fail("instruction outside a section")
			}
			hexPart, text, ok := strings.Cut(line, "|")
			if !ok {
				fail("instruction line without '|'")
			}
			code, err := parse(strings.TrimSpace(hexPart))
			if err != nil {
				fail("%v", err)
			}
			if Norm(text) == "" {
				fail("instruction without text")
			}
			sec.Insns = append(sec.Insns, Insn[E]{Code: code, Text: Norm(text), Line: n})
		default:
			if cur == nil {
				fail("section outside a case")
			}
			fields := strings.Fields(line)
			attrs, err := KV(fields[1:])
			if err != nil {
				fail("%v", err)
			}
			sec = &Section[E]{Name: fields[0], Attrs: attrs, Line: n}
			cur.Sections = append(cur.Sections, sec)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return cases
}
