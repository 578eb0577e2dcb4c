// Command digest is the digest Lambda function: invoked by EventBridge
// Scheduler with {"frequency": "daily"} or "weekly" it builds the digest of
// the period and fans it out through SQS; invoked by the api function with
// {"digestId": "..."} it fans that digest out.
package main

import (
	"context"
	"fmt"
	"os"
	// The time zone database, embedded (384 KiB of the bootstrap): the
	// schedules' and the digests' dates must not depend on whether the
	// Lambda runtime ships one.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/gctune"
)

func main() {
	gctune.Apply(os.Getenv) // see internal/gctune: a send allocates per reader, holds little
	app, err := awsapp.LoadDigest(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet digest:", err)
		os.Exit(1)
	}
	lambda.Start(app.HandleDigest)
}
