// Command sender is the sender Lambda function: it consumes the send queue,
// sends each reader their copy through SES v2 and reports partial batch
// failures.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/awsapp/sesmail"
)

func main() {
	app, err := awsapp.LoadSender(context.Background(), os.Getenv, os.Stdout, awsapp.SenderDeps{Mail: sesmail.New})
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet sender:", err)
		os.Exit(1)
	}
	lambda.Start(app.HandleSQS)
}
