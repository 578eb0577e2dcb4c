// Command ingest is the ingest Lambda function: invoked by EventBridge
// Scheduler, it pulls the posts the WordPress site published or changed
// since its checkpoint into the newsroom, the backstop of the push.
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
)

func main() {
	app, err := awsapp.LoadIngest(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet ingest:", err)
		os.Exit(1)
	}
	lambda.Start(app.HandleIngest)
}
