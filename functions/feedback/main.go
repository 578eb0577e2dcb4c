// Command feedback is the feedback Lambda function: it applies the SES
// events (bounce, complaint, delivery, send) published through SNS to the
// readers and the delivery ledger.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/feedbackfunc"
)

func main() {
	h, err := feedbackfunc.Load(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet feedback:", err)
		os.Exit(1)
	}
	lambda.Start(h.HandleSNS)
}
