package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"tailsim/prog"
)

func init() {
	register(&command{
		name: "completion",
		summary: `print a shell completion script (bash or zsh)

The script completes commands, each command's flags, the values of
-arch, -kernel, -config, -layout and -syntax, and scenario files (.txtar) and
directories. Load it in the shell's start-up file:
  bash: source <(tailsim completion bash)
  zsh:  source <(tailsim completion zsh)
The zsh script runs the bash one through zsh's bashcompinit. It is made
from the commands and flags of this build, so it follows them.`,
		usage: "tailsim completion bash|zsh",
		run:   completionCmd,
	})
}

func completionCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name the shell: tailsim completion bash|zsh")
	}
	switch pos[0] {
	case "bash":
		_, err = io.WriteString(stdout, bashCompletion())
	case "zsh":
		_, err = io.WriteString(stdout, zshPrelude+bashCompletion())
	default:
		return usagef("no completion for %q (bash, zsh)", pos[0])
	}
	return err
}

// zshPrelude lets zsh run the bash completion function.
const zshPrelude = "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"

// flagValues are the values a flag takes, by flag name; archValues are
// -arch's, by command (fuzz and disasm take only the emulated arches,
// run and trace the reference model too).
func flagValues() map[string][]string {
	var layouts []string
	for _, l := range prog.Presets {
		layouts = append(layouts, l.Name)
	}
	return map[string][]string{
		"kernel": {"v6.1", "v6.18", "v6.18+series", "all"},
		"layout": layouts,
		"config": append(prog.ConfigNames(), "all"),
		"syntax": {"intel", "att"},
		"shard":  {"env"},
	}
}

func archValues() map[string][]string {
	return map[string][]string{
		"run":     append(backendNames(), "all"),
		"trace":   backendNames(),
		"fuzz":    append(emulatedNames(), "all"),
		"disasm":  emulatedNames(),
		"compare": emulatedNames(),
	}
}

// bashCompletion is the bash script: a case per command listing its
// flags, and the flag values.
func bashCompletion() string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	names = append(names, "help", "version")
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# tailsim completion for bash (tailsim completion bash)\n_tailsim() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]}\n")
	fmt.Fprintf(&b, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " "))
	// fuzz merge: its own flag, and directories.
	b.WriteString("\tif [ \"$cmd\" = fuzz ] && [ \"$COMP_CWORD\" -eq 2 ] && [[ $cur != -* ]]; then\n\t\tCOMPREPLY=($(compgen -W merge -- \"$cur\"))\n\t\t[ ${#COMPREPLY[@]} -gt 0 ] && return\n\tfi\n")
	b.WriteString("\tif [ \"$cmd\" = fuzz ] && [ \"${COMP_WORDS[2]}\" = merge ]; then\n\t\tif [[ $cur == -* ]]; then COMPREPLY=($(compgen -W -out -- \"$cur\")); else local IFS=$'\\n'; COMPREPLY=($(compgen -d -- \"$cur\")); fi\n\t\treturn\n\tfi\n")
	b.WriteString("\tcase $cmd:$prev in\n")
	// A case per command's -arch, then one per flag with values.
	writeCases := func(pattern string, values map[string][]string) {
		keys := slices.Sorted(maps.Keys(values))
		for _, k := range keys {
			fmt.Fprintf(&b, "\t"+pattern+") COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", k, strings.Join(values[k], " "))
		}
	}
	writeCases("%s:-arch", archValues())
	writeCases("*:-%s", flagValues())
	b.WriteString("\tesac\n\tcase $cmd in\n")
	for _, n := range names {
		var flags []string
		if setup := flagSetups[n]; setup != nil {
			fs := flag.NewFlagSet(n, flag.ContinueOnError)
			setup(fs)
			fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "-"+f.Name) })
		}
		switch n {
		case "help":
			fmt.Fprintf(&b, "\thelp) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", strings.Join(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == "help" }), " "))
		case "completion":
			b.WriteString("\tcompletion) COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\")); return ;;\n")
		default:
			if len(flags) > 0 {
				fmt.Fprintf(&b, "\t%s) if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi ;;\n", n, strings.Join(flags, " "))
			}
		}
	}
	b.WriteString("\tesac\n")
	// Scenario files and directories, one per line (names with spaces).
	b.WriteString("\tlocal IFS=$'\\n'\n\tCOMPREPLY=($(compgen -d -- \"$cur\") $(compgen -f -X '!*.txtar' -- \"$cur\"))\n}\ncomplete -o filenames -F _tailsim tailsim\n")
	return b.String()
}
