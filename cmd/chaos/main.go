// Command chaos runs Broadsheet's fault scenarios — crashes at every step
// of fan-out and send on the laptop and AWS paths, concurrent triggers,
// SES throttling, replayed SES feedback, unsubscribes during a send and
// malformed HTTP input — against the real code on real stores, and prints
// one line per scenario:
//
//	FAULTS scenario=crash path=laptop recipients=10000 kills=500 missing=0 duplicates=0 unknown_resolved=12 …
//
// It exits non-zero when any figure is off. `make chaos` runs the full
// size; CI runs `make chaos CHAOS_SIZE=small`. Everything listens on
// 127.0.0.1; the AWS stand-ins (DynamoDB Local, local-aws-sqs,
// aws-ses-v2-local) start through internal/awstest and stop at the end.
package main

import (
	"context"
	"io"
	"os"

	"github.com/broadsheet-news/broadsheet/internal/harness"
)

func main() { harness.Main("chaos", run) }

// run parses the flags, runs the chosen scenarios in order and prints
// their lines to stdout. It returns an error when a scenario could not run
// or a figure is off.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Recorder {
		return runRecorder(os.Stdin, stdout)
	}
	return runScenarios(ctx, cfg, stdout, stderr)
}
