// Package inline runs a Go Pulumi program's function as an Automation API inline program.
//
// tools/run-program-go builds a program's package with one extra file whose init calls
// Main(Program), so the program binary it builds does this instead of `pulumi.Run`: it serves
// Program from this process as a language runtime and runs `pulumi <action> --client <addr>` in
// the program directory (`auto.UpsertStackInlineSource` with `auto.WorkDir`). The project's
// Pulumi.yaml and Pulumi.<stack>.yaml are used as they are: name, plugins.providers, config.
// The CLI, the engine, the Pulumi Go SDK and the provider are the real ones; no
// pulumi-language-go binary is needed (docs/adr/0007-sdk-programs-via-automation.md).
//
// Owns: the Automation API calls, streaming the CLI's output to stdout, and the exit status
// (0; 1 with the CLI's error on stderr; 2 for a bad command line). Must not: build anything
// (that is the runner's main package) or touch the program's files.
package inline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"proxmox-talos.local/run-program-go/cliargs"
)

// Main runs program with the action of the command line (cliargs) and exits; it never returns.
func Main(program pulumi.RunFunc) {
	args, err := cliargs.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(run(program, args))
}

func run(program pulumi.RunFunc, args cliargs.Args) int {
	dir, err := filepath.Abs(args.Dir)
	if err != nil {
		return fail(args.Action, err)
	}
	project, err := workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return fail(args.Action, err)
	}
	// The language host runs programs in their directory; so do we.
	if err := os.Chdir(dir); err != nil {
		return fail(args.Action, err)
	}
	// Ctrl-C or SIGTERM cancels the operation: auto passes it on to the CLI.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	stack, err := auto.UpsertStackInlineSource(ctx, args.Stack, project.Name.String(), program, auto.WorkDir(dir))
	if err != nil {
		return fail(args.Action, err)
	}
	var changes any
	switch args.Action {
	case "up":
		opts := []optup.Option{optup.ProgressStreams(os.Stdout)}
		if args.ExpectNoChanges {
			opts = append(opts, optup.ExpectNoChanges())
		}
		var result auto.UpResult
		result, err = stack.Up(ctx, opts...)
		changes = result.Summary.ResourceChanges
	case "preview":
		opts := []optpreview.Option{optpreview.ProgressStreams(os.Stdout)}
		if args.ExpectNoChanges {
			opts = append(opts, optpreview.ExpectNoChanges())
		}
		var result auto.PreviewResult
		result, err = stack.Preview(ctx, opts...)
		changes = result.ChangeSummary
	case "refresh":
		opts := []optrefresh.Option{optrefresh.ProgressStreams(os.Stdout)}
		if args.ExpectNoChanges {
			opts = append(opts, optrefresh.ExpectNoChanges())
		}
		var result auto.RefreshResult
		result, err = stack.Refresh(ctx, opts...)
		changes = result.Summary.ResourceChanges
	default:
		var result auto.DestroyResult
		result, err = stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stdout))
		changes = result.Summary.ResourceChanges
	}
	if err != nil {
		return fail(args.Action, err)
	}
	// up, refresh and destroy report the update's summary; preview its change summary.
	summary, _ := json.Marshal(changes)
	fmt.Fprintf(os.Stderr, "run-program: %s succeeded: %s\n", args.Action, summary)
	return 0
}

func fail(action string, err error) int {
	fmt.Fprintf(os.Stderr, "run-program: %s failed:\n%v\n", action, err)
	return 1
}
