// Package cliargs is the command line the Go runner and the program binaries it builds share:
//
//	[--stack NAME] [--expect-no-changes] [--build-only] PROGRAM_DIR up|preview|refresh|destroy
//
// the same shape as tools/run-program.py and tools/run-program.js (options anywhere).
package cliargs

import (
	"errors"
	"fmt"
	"strings"
)

// Usage is the one-line synopsis printed with argument errors.
const Usage = "usage: run-program-go [--stack NAME] [--expect-no-changes] [--build-only] PROGRAM_DIR up|preview|refresh|destroy"

// Actions are the Pulumi operations a program can be run with.
var Actions = []string{"up", "preview", "refresh", "destroy"}

// Args is a parsed command line.
type Args struct {
	// Stack is the stack to select, created when missing (default "dev").
	Stack string
	// ExpectNoChanges makes up, preview and refresh fail when anything would change.
	ExpectNoChanges bool
	// BuildOnly builds the program and runs nothing (the action may then be left out).
	BuildOnly bool
	// Dir is the Pulumi project directory.
	Dir string
	// Action is one of Actions ("" with BuildOnly and no action given).
	Action string
}

// Parse reads the arguments after the command name.
func Parse(argv []string) (Args, error) {
	args := Args{Stack: "dev"}
	var positional []string
	for i := 0; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "--stack":
			if i+1 >= len(argv) || argv[i+1] == "" {
				return args, errors.New("--stack needs a stack name\n" + Usage)
			}
			i++
			args.Stack = argv[i]
		case strings.HasPrefix(a, "--stack="):
			args.Stack = strings.TrimPrefix(a, "--stack=")
		case a == "--expect-no-changes":
			args.ExpectNoChanges = true
		case a == "--build-only":
			args.BuildOnly = true
		case strings.HasPrefix(a, "-"):
			return args, fmt.Errorf("unknown option %s\n%s", a, Usage)
		default:
			positional = append(positional, a)
		}
	}
	switch {
	case len(positional) == 1 && args.BuildOnly:
		args.Dir = positional[0]
	case len(positional) == 2 && isAction(positional[1]):
		args.Dir, args.Action = positional[0], positional[1]
	default:
		return args, errors.New(Usage)
	}
	if args.Stack == "" {
		return args, errors.New("--stack needs a stack name\n" + Usage)
	}
	return args, nil
}

// Argv is args as a command line Parse reads back (without BuildOnly: the built program runs).
func (a Args) Argv() []string {
	argv := []string{"--stack", a.Stack}
	if a.ExpectNoChanges {
		argv = append(argv, "--expect-no-changes")
	}
	return append(argv, a.Dir, a.Action)
}

func isAction(s string) bool {
	for _, a := range Actions {
		if a == s {
			return true
		}
	}
	return false
}
