// Command localaws is `make local-aws`: it starts DynamoDB Local and the
// SQS and SES stand-ins where `sam local`'s containers reach them, creates
// the table and the send queue, writes env.json for every function, and
// keeps the stand-ins up until interrupted. See internal/localaws.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/localaws"
)

func main() { harness.Main("local-aws", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := localaws.Defaults()
	fs := flag.NewFlagSet("local-aws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Host, "host", o.Host, "interface the SQS and SES stand-ins listen on: 0.0.0.0 lets containers reach them, 127.0.0.1 keeps them to this machine (DynamoDB Local listens on every interface)")
	fs.StringVar(&o.ContainerHost, "container-host", o.ContainerHost, "the name the functions' containers reach this machine by")
	fs.IntVar(&o.DynamoDBPort, "dynamodb-port", o.DynamoDBPort, "DynamoDB Local's port (0: a free one)")
	fs.IntVar(&o.SQSPort, "sqs-port", o.SQSPort, "the SQS stand-in's port (0: a free one)")
	fs.IntVar(&o.SESPort, "ses-port", o.SESPort, "the SES stand-in's port (0: a free one)")
	fs.StringVar(&o.Table, "table", o.Table, "the DynamoDB table to create")
	fs.StringVar(&o.Queue, "queue", o.Queue, "the send queue to create (and <queue>-dlq)")
	fs.StringVar(&o.BaseURL, "base-url", o.BaseURL, "Broadsheet's URL in email links: sam local start-api's")
	fs.StringVar(&o.LambdaEndpoint, "lambda-endpoint", o.LambdaEndpoint, "sam local start-lambda, as the api function's container reaches it")
	fs.StringVar(&o.WordPressURL, "wordpress-url", o.WordPressURL, "the WordPress site IngestFunction pulls from (it does not start without one)")
	fs.StringVar(&o.EnvFile, "env", o.EnvFile, "the env file to write, for sam local --env-vars")
	setupOnly := fs.Bool("setup-only", false, "stop the stand-ins once the table, the queue and the env file are made")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := localaws.Start(ctx, o)
	if err != nil {
		return err
	}
	defer st.Stop()
	fmt.Fprintf(stdout, "local-aws: DynamoDB Local %s, SQS %s, SES %s (web UI at /, what was sent at /store)\n",
		st.DynamoDB.Endpoint, st.SQS.Endpoint, st.SES.Endpoint)
	fmt.Fprintf(stdout, "local-aws: table %s, queue %s\n", o.Table, st.Endpoints.QueueURL)
	fmt.Fprintf(stdout, "local-aws: wrote %s for ApiFunction, DigestFunction, SenderFunction, FeedbackFunction and IngestFunction; containers reach the stand-ins at %s\n", o.EnvFile, o.ContainerHost)
	if o.WordPressURL == "" {
		fmt.Fprintln(stdout, "local-aws: IngestFunction has no WordPress site (-wordpress-url) and will not start")
	}
	if *setupOnly {
		return nil
	}
	fmt.Fprintf(stdout, "local-aws: ready; in another terminal: sam build && sam local start-api --env-vars %s (Ctrl-C here stops the stand-ins)\n", o.EnvFile)
	<-ctx.Done()
	return nil
}
