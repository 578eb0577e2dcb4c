// Command bench measures Broadsheet's send pipeline (issue 5): it seeds a
// fresh store with N confirmed readers spread over several section and
// format variants and 10 articles, sends one digest through the real
// pipeline (store → fan-out → queue → sender → ledger → mailer) per mode,
// and prints one line per mode:
//
//	BENCH mode=smtp recipients=100000 seconds=… msgs_per_s=… cpu_us_per_msg=… peak_rss_mb=… renders=…
//
// Modes: discard (the full MIME bytes built, then dropped), smtp (a sink
// on 127.0.0.1 in a child process that reads every byte), ses (aws-sdk-go-v2
// SES v2 SendEmail to a child process that speaks enough of the SES v2 API)
// and aws (DynamoDB Local, the SQS and SES stand-ins; with capacity units
// and cost). Each mode runs in a fresh child process (this binary again,
// with -mode), so that its peak RSS (VmHWM) and CPU (getrusage of itself,
// sinks excluded) are its own. It also prints, per Lambda function, the
// stripped bootstrap size and the start-to-ready time under aws-lambda-rie.
//
// Numbers are printed, never asserted: `make bench` runs it at
// BENCH_N=100000, CI at 2000 so that it keeps working.
package main

import (
	"context"
	"io"
	"os"

	"github.com/broadsheet-news/broadsheet/internal/harness"
)

func main() { harness.Main("bench", run) }

// run parses the flags and runs what they ask for: the whole benchmark,
// or (as a child of it) one mode, or a sink.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch {
	case cfg.Sink != "":
		return runSink(ctx, cfg.Sink, os.Stdin, stdout)
	case cfg.Mode != "":
		return runMode(ctx, cfg, stdout, stderr)
	}
	return runAll(ctx, cfg, stdout, stderr)
}
