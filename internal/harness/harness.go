// Package harness holds what Broadsheet's harness programs, cmd/chaos and
// cmd/bench, share: their main, the testing.TB stand-in that lets them
// start the awstest stand-ins outside `go test`, the laptop stack's parts
// (signer, renderer, transactional emails, engine, newsroom) and the
// seeding of readers and articles.
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main runs a harness program: run gets a context that ends on SIGINT or
// SIGTERM, the arguments and stdout and stderr; an error it returns is
// printed to stderr after name and the program exits 1.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
