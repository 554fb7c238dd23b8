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

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type command struct {
	name    string
	summary string
	usage   string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	os.Exit(tailsim(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks a problem with the command line or its input files.
type usageError struct{ error }

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
	return c.run(args[1:], stdout, stderr)
}

func help(args []string, w io.Writer) int {
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

// parseFlags parses with errors reported as usage errors.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
