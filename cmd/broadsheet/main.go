// Command broadsheet is Broadsheet on one machine: the HTTP API and pages,
// the in-process queue and sender, and the digest schedule, on a bbolt file
// and an .eml outbox (or SMTP). Run "broadsheet help" for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/gctune"

	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

func main() {
	gctune.Apply(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], environ{getenv: os.Getenv, now: time.Now}, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet:", err)
		os.Exit(1)
	}
}

const usage = `Broadsheet: a news site's articles, by email.

Usage:
  broadsheet serve                      run the API, pages, sender and schedule
  broadsheet token create --name NAME   make an editor token (printed once);
                                        --table TABLE writes to a deployed stack
  broadsheet token list                 list editor tokens
  broadsheet digest send --frequency daily [--intro TEXT]
                                        build this period's digest and send it
  broadsheet subscribers import FILE.csv
  broadsheet subscribers export         write every reader as CSV to stdout
  broadsheet outbox [--last]            list the .eml outbox, or show the newest email
  broadsheet ingest --wordpress-url URL pull the posts published or changed since the last pull

Every command takes the settings below as flags or BROADSHEET_* variables
(flags win). Run "broadsheet serve -h" to see them with their defaults.
`

// environ is what the program reads from the machine besides its arguments
// and streams: the environment's variables and the clock. A test gives its
// own, so that a run does not depend on the day it happens on.
type environ struct {
	getenv func(string) string
	now    func() time.Time // time.Now when nil
}

// run is the whole program, with its outside world passed in so that tests
// can run it as a user would.
func run(ctx context.Context, args []string, env environ, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, env, stdout, stderr)
	case "token":
		return tokenCmd(ctx, rest, env, stdout, stderr)
	case "digest":
		return digestCmd(ctx, rest, env, stdout, stderr)
	case "subscribers":
		return subscribersCmd(ctx, rest, env, stdin, stdout, stderr)
	case "outbox":
		return outboxCmd(rest, env, stdout, stderr)
	case "ingest":
		return ingestCmd(ctx, rest, env, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
