// Command api is the api Lambda function: Broadsheet's HTTP handler (reader
// pages and the editors' API) behind an API Gateway HTTP API, payload 2.0.
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

	"github.com/broadsheet-news/broadsheet/internal/awsapp/apifunc"
)

func main() {
	h, err := apifunc.NewAPI(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broadsheet api:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
