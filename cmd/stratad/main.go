// Command stratad is the Strata daemon. One binary runs every role:
//
//	stratad microcloud   everything in one process (the laptop PaaS)
//	stratad controller   API, git endpoint, scheduler, converger, log store, builder
//	stratad router       the HTTP router
//	stratad executor     a node agent
//
// main stays thin: it makes a signal-aware context and hands the arguments to
// Run; all wiring lives in the role files of this package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `stratad — the Strata daemon

Usage:
  stratad microcloud [flags]   run everything in one process (default data dir ~/.local/share/strata)
  stratad controller [flags]   run the API, git endpoint, scheduler, converger and a builder
  stratad router [flags]       run the HTTP router
  stratad executor [flags]     run a node agent
  stratad stack build [flags]  build the stack image containers run on
  stratad version

Run "stratad <role> -h" for the flags of a role. Every flag also reads
STRATA_<FLAG> from the environment (e.g. STRATA_DATA, STRATA_API_ADDR).
`

// Run runs the role named by args[0] until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "microcloud":
		return runMicrocloud(ctx, args[1:], stdout, stderr)
	case "controller":
		return runController(ctx, args[1:], stdout, stderr)
	case "router":
		return runRouter(ctx, args[1:], stdout, stderr)
	case "executor":
		return runExecutor(ctx, args[1:], stdout, stderr)
	case "stack":
		return runStack(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "stratad %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "error: unknown role %q — use microcloud, controller, router or executor\n\n%s", args[0], usage)
		return errUsage
	}
}
