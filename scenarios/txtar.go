package scenarios

import (
	"fmt"
	"strings"

	"tailsim/prog"
)

// section is one "-- name --" part of a txtar archive, with the line its
// body starts on so errors can point into the file.
type section struct {
	Kind string   // first word of the marker: prog, subprog, maps, ...
	Args []string // the remaining words
	Body string
	Line int // 1-based line of the marker
}

// splitTxtar reads the txtar layout: a free comment, then sections opened by
// lines "-- NAME --". It is a few lines, and owning it keeps line numbers.
func splitTxtar(file, data string) (comment string, secs []section, err error) {
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	var body []string
	cur := -1
	flush := func() {
		text := strings.Join(body, "\n")
		if cur < 0 {
			comment = text
		} else {
			secs[cur].Body = text
		}
		body = nil
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "-- ") && l != "--" && !strings.HasPrefix(l, "--\t") {
			body = append(body, l)
			continue
		}
		t := strings.TrimSpace(l)
		if len(t) < 6 || !strings.HasSuffix(t, " --") {
			return "", nil, &Error{File: file, Line: i + 1, Msg: fmt.Sprintf("malformed section marker %q (want \"-- name --\")", l)}
		}
		flush()
		words := strings.Fields(strings.TrimSpace(t[2 : len(t)-2]))
		if len(words) == 0 {
			return "", nil, &Error{File: file, Line: i + 1, Msg: "section marker names no section"}
		}
		secs = append(secs, section{Kind: words[0], Args: words[1:], Line: i + 1})
		cur = len(secs) - 1
	}
	flush()
	return comment, secs, nil
}

// Error is a problem in a scenario file, located by file and line.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	msg := prog.CutLong(e.Msg)
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, msg)
	case e.Col == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, msg)
}
