// Command sender is the sender Lambda function: it consumes the send queue,
// sends each reader their copy through SES v2 and reports partial batch
// failures.
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
	"github.com/broadsheet-news/broadsheet/internal/awsapp/sesmail"
	"github.com/broadsheet-news/broadsheet/internal/gctune"
)

func main() {
	gctune.Apply(os.Getenv) // see internal/gctune: a send allocates per reader, holds little
	app, err := awsapp.LoadSender(context.Background(), os.Getenv, os.Stdout, awsapp.SenderDeps{Mail: sesmail.New})
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet sender:", err)
		os.Exit(1)
	}
	lambda.Start(app.HandleSQS)
}
