// Package asm reads and writes BPF assembly in the syntax of llvm-objdump and
// the verifier log: "r1 += 2", "if w0 > 5 goto out", "*(u64 *)(r10 - 8) = r1".
package asm

import (
	"fmt"
	"strings"
)

type tokKind uint8

const (
	tIdent tokKind = iota // r0, w3, goto, map, u32, names
	tNum                  // 12, 0x1f (no sign)
	tPunct                // operators and brackets
)

type token struct {
	kind tokKind
	text string
	col  int // 1-based
}

// Longest first so "<<=" wins over "<<" and "<".
var puncts = []string{
	"s>>=", "<<=", ">>=", "s>=", "s<=",
	"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "==", "!=", ">=", "<=", "s>", "s<",
	"=", "(", ")", "*", "[", "]", "+", "-", ">", "<", "&", ":", ",",
}

// stripComment removes a trailing comment: '#', "//" or ';'.
func stripComment(line string) (code, comment string) {
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '#' || line[i] == ';':
			return line[:i], strings.TrimSpace(line[i+1:])
		case line[i] == '/' && i+1 < len(line) && line[i+1] == '/':
			return line[:i], strings.TrimSpace(line[i+2:])
		}
	}
	return line, ""
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func lex(line string) ([]token, error) {
	var toks []token
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == 's' && i+1 < len(line) && (line[i+1] == '>' || line[i+1] == '<'):
			// signed operators: s> s>= s< s<= s>>=
			fallthrough
		case !isIdentStart(c) && !(c >= '0' && c <= '9'):
			matched := false
			for _, p := range puncts {
				if strings.HasPrefix(line[i:], p) {
					toks = append(toks, token{tPunct, p, i + 1})
					i += len(p)
					matched = true
					break
				}
			}
			if !matched {
				return nil, &colError{i + 1, fmt.Sprintf("unexpected character %q", c)}
			}
		case c >= '0' && c <= '9':
			j := i
			for j < len(line) && isIdentChar(line[j]) {
				j++
			}
			toks = append(toks, token{tNum, line[i:j], i + 1})
			i = j
		default:
			j := i
			for j < len(line) && isIdentChar(line[j]) {
				j++
			}
			toks = append(toks, token{tIdent, line[i:j], i + 1})
			i = j
		}
	}
	return toks, nil
}

type colError struct {
	col int
	msg string
}

func (e *colError) Error() string { return e.msg }
