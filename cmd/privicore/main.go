// Command privicore is the Privicore engine and its command-line client.
//
// main only wires the process to run, so that the whole program can be
// driven in-process by tests.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	// The engine's live heap is small and its request path allocates a lot,
	// so the default GOGC=100 collects often; 400 trades a few tens of MiB
	// for that CPU. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "privicore:", err)
		os.Exit(1)
	}
}

// env is what a subcommand may use of the process: its context, the
// environment and the standard streams. Tests build one in-process.
type env struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run executes the command line args (without the program name).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "privicore",
		Short:         "Privicore: a client-side tokenization vault",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(e), newDevCmd(e), newBenchCmd(e), newKEKCmd(e), newCalloutKeyCmd(e))
	addClientCommands(root, e)
	return root.ExecuteContext(ctx)
}
