// Command tailsim runs the Linux BPF JITs' tail-call code against a
// reference model. See "tailsim help".
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
)

const version = "0.1.0"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // a check failed
	exitUsage = 2 // no verdict: a usage or input error, or the command could not do its work
)

type command struct {
	name    string
	summary string
	usage   string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	os.Exit(tailsim(os.Args[1:], os.Stdout, os.Stderr))
}

func tailsim(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		help(nil, stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(args[1:], stdout)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "tailsim %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tailsim: unknown command %q; run \"tailsim help\"\n", args[0])
		return exitUsage
	}
	err := c.run(args[1:], stdout, stderr)
	report(stderr, c.name, err)
	return exitStatus(err)
}

func help(args []string, w io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		args = nil
	}
	if len(args) > 0 {
		c, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(w, "tailsim: no help for %q\n", args[0])
			return exitUsage
		}
		fmt.Fprintf(w, "usage: %s\n\n%s\n", c.usage, c.summary)
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if setup := flagSetups[c.name]; setup != nil {
			setup(fs)
			fmt.Fprintln(w, "\nflags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
		return exitOK
	}
	fmt.Fprintf(w, "tailsim runs the Linux BPF JITs' tail-call code without a kernel.\n\nusage: tailsim COMMAND [flags] [args]\n\ncommands:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, firstLine(commands[n].summary))
	}
	fmt.Fprintf(w, "  %-8s %s\n  %-8s %s\n\nRun \"tailsim help COMMAND\" for a command's flags.\n", "help", "show help for a command", "version", "print the version")
	return exitOK
}

var flagSetups = map[string]func(*flag.FlagSet){}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// parseFlags parses a command's flags. The flag package prints its own
// errors, so they come back reported; -h comes back as flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	// -h and --help print what "tailsim help COMMAND" prints; a
	// subcommand ("fuzz merge") gets its command's help.
	if name, _, _ := strings.Cut(fs.Name(), " "); commands[name] != nil {
		fs.Usage = func() { help([]string{name}, stderr) }
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return reported{usageError{err}}
	}
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("disasm x.txtar -hex" works too).
func parseInterspersed(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args, stderr); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// The kinds of error commands return besides their operational ones, each
// with what exitStatus and report make of it.

// errChecksFailed is a command's verdict that a check failed: exit status
// 1. The command's report has said which.
var errChecksFailed = errors.New("checks failed")

// usageError is a mistake on the command line, or an input the command
// cannot use: exit status 2, printed after "tailsim CMD: ".
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// inputError is an input file that does not load or build: exit status 2,
// printed as it is, since it starts with the file and line.
type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }

// reported wraps an error that has been printed already, by the flag
// package or in the command's report.
type reported struct{ error }

func (e reported) Unwrap() error { return e.error }

// exitStatus maps a command's error to its exit status. Errors that are
// neither verdicts nor usage or input errors (a reproducer that cannot be
// written, an emulator that cannot start) leave no verdict either, so they
// share status 2.
func exitStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errChecksFailed):
		return exitFail
	}
	return exitUsage
}

// report prints a command's error, unless it is a verdict or printed
// already.
func report(w io.Writer, name string, err error) {
	var in inputError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, errChecksFailed), errors.As(err, new(reported)):
	case errors.As(err, &in):
		fmt.Fprintln(w, in.error)
	default:
		fmt.Fprintf(w, "tailsim %s: %v\n", name, err)
	}
}
