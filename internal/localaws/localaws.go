// Package localaws sets up AWS on a laptop for `sam local`: it starts the
// stand-ins of package awstest (DynamoDB Local, local-aws-sqs and
// aws-ses-v2-local) where the functions' containers can reach them,
// creates the table and the send queue the stack would, and writes the
// env file (`sam local ... --env-vars env.json`) whose endpoints, table
// and queue URL are those, for every function of template.yaml.
// cmd/localaws (`make local-aws`) runs it.
package localaws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/harness"
)

// Options say where the stand-ins listen and what the env file says.
type Options struct {
	// Host is the interface the SQS and SES stand-ins listen on: 0.0.0.0
	// (every interface, so that containers reach them) or 127.0.0.1.
	// DynamoDB Local always listens on every interface.
	Host string
	// ContainerHost is the name the functions' containers reach this
	// machine by: host.docker.internal.
	ContainerHost string
	// Ports of DynamoDB Local, the SQS and the SES stand-ins; 0 picks a
	// free one.
	DynamoDBPort, SQSPort, SESPort int
	// Table and Queue name the DynamoDB table and the send queue.
	Table, Queue string
	// BaseURL is Broadsheet's public URL in email links: `sam local
	// start-api`'s, http://127.0.0.1:3000.
	BaseURL string
	// LambdaEndpoint is where the api function invokes the digest
	// function: `sam local start-lambda`, seen from a container.
	LambdaEndpoint string
	// WordPressURL is the site the ingest function pulls from; the
	// function does not start without one.
	WordPressURL string
	// EnvFile is the file to write.
	EnvFile string
}

// Defaults are the options `make local-aws` runs with: the ports the
// stand-ins' own documentation uses.
func Defaults() Options {
	return Options{
		Host: "0.0.0.0", ContainerHost: "host.docker.internal",
		DynamoDBPort: 8000, SQSPort: 9324, SESPort: 8005,
		Table: "broadsheet", Queue: "broadsheet-send",
		BaseURL: "http://127.0.0.1:3000", LambdaEndpoint: "http://host.docker.internal:3001",
		EnvFile: "env.json",
	}
}

// Stack is the running stand-ins and what was made on them.
type Stack struct {
	DynamoDB, SQS, SES *awstest.Server
	// Endpoints as the containers reach them.
	Endpoints Endpoints
	// Env is what was written to the env file.
	Env map[string]map[string]string
}

// Endpoints are what the env file points the functions at.
type Endpoints struct {
	DynamoDB, SQS, SES, Lambda string
	QueueURL                   string
}

// Stop stops the stand-ins.
func (s *Stack) Stop() {
	for _, srv := range []*awstest.Server{s.SES, s.SQS, s.DynamoDB} {
		srv.Stop()
	}
}

// Start starts the stand-ins, creates the table and the queue and writes
// the env file. On an error it stops what it started.
func Start(ctx context.Context, o Options) (st *Stack, err error) {
	for _, p := range []*int{&o.DynamoDBPort, &o.SQSPort, &o.SESPort} {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	st = &Stack{}
	defer func() {
		if err != nil {
			st.Stop()
		}
	}()
	const name = "local-aws"
	if st.DynamoDB, err = harness.StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.StartDynamoDB(tb, o.DynamoDBPort) }); err != nil {
		return st, err
	}
	if st.SQS, err = harness.StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.StartSQS(tb, o.Host, o.SQSPort) }); err != nil {
		return st, err
	}
	if st.SES, err = harness.StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.StartSES(tb, o.Host, o.SESPort) }); err != nil {
		return st, err
	}

	ddb := dynamodb.NewFromConfig(awstest.Config(), func(op *dynamodb.Options) { op.BaseEndpoint = aws.String(st.DynamoDB.Endpoint) })
	if err := dynamo.CreateTable(ctx, ddb, o.Table); err != nil {
		return st, err
	}
	sqs := awssqs.NewFromConfig(awstest.Config(), func(op *awssqs.Options) { op.BaseEndpoint = aws.String(st.SQS.Endpoint) })
	queueURL, err := createQueue(ctx, sqs, o.Queue)
	if err != nil {
		return st, err
	}

	at := func(port int) string { return "http://" + net.JoinHostPort(o.ContainerHost, strconv.Itoa(port)) }
	st.Endpoints = Endpoints{DynamoDB: at(o.DynamoDBPort), SQS: at(o.SQSPort), SES: at(o.SESPort), Lambda: o.LambdaEndpoint}
	// The stand-in names itself in the URL; the containers know it by
	// another name.
	u, err := url.Parse(queueURL)
	if err != nil {
		return st, fmt.Errorf("queue URL %q: %w", queueURL, err)
	}
	u.Host = net.JoinHostPort(o.ContainerHost, strconv.Itoa(o.SQSPort))
	st.Endpoints.QueueURL = u.String()

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return st, err
	}
	st.Env = Env(o, st.Endpoints, hex.EncodeToString(key))
	b, err := json.MarshalIndent(st.Env, "", "  ")
	if err != nil {
		return st, err
	}
	// It holds a signing key: this run's only, but a key.
	if err := os.WriteFile(o.EnvFile, append(b, '\n'), 0o600); err != nil {
		return st, fmt.Errorf("env file: %w", err)
	}
	return st, nil
}

// createQueue creates the send queue as the stack does: a visibility
// timeout of six times the sender's, and a dead-letter queue after five
// receives. It returns the queue's URL.
func createQueue(ctx context.Context, sqs *awssqs.Client, name string) (string, error) {
	dlq, err := sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return "", fmt.Errorf("create queue %s-dlq: %w", name, err)
	}
	attrs, err := sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", fmt.Errorf("queue %s-dlq: %w", name, err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"5"}`, attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])
	q, err := sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout): "360",
		string(sqstypes.QueueAttributeNameRedrivePolicy):     redrive,
	}})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), nil
}

// Env returns the env file's contents: for each function of the stack
// (by logical ID), the variables `sam local` sets in its container. sam
// local sets only variables template.yaml declares for the function, so
// every one here is declared there (internal/stack checks).
func Env(o Options, e Endpoints, signingKey string) map[string]map[string]string {
	common := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"BROADSHEET_TABLE":             o.Table,
			"BROADSHEET_BASE_URL":          o.BaseURL,
			"BROADSHEET_FROM":              "news@example.com",
			"BROADSHEET_FROM_NAME":         "The Daily Broadsheet",
			"BROADSHEET_SIGNING_KEY":       signingKey,
			"BROADSHEET_SIGNING_KEY_PARAM": "", // the key above, not SSM
			// No configuration set: the SES stand-in has none.
			"BROADSHEET_SES_CONFIGURATION_SET": "",
			"AWS_ENDPOINT_URL_DYNAMODB":        e.DynamoDB,
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	queue := map[string]string{"BROADSHEET_QUEUE_URL": e.QueueURL, "AWS_ENDPOINT_URL_SQS": e.SQS}
	with := func(a, b map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range a {
			m[k] = v
		}
		for k, v := range b {
			m[k] = v
		}
		return m
	}
	return map[string]map[string]string{
		"ApiFunction": common(map[string]string{
			"BROADSHEET_DIGEST_FUNCTION":        "DigestFunction", // sam local start-lambda knows it by its logical ID
			"BROADSHEET_WORDPRESS_SECRET_PARAM": "",
			"AWS_ENDPOINT_URL_SESV2":            e.SES,
			"AWS_ENDPOINT_URL_LAMBDA":           e.Lambda,
		}),
		"DigestFunction": common(queue),
		"SenderFunction": common(with(queue, map[string]string{
			"BROADSHEET_SENDER_CONCURRENCY": "1",
			"AWS_ENDPOINT_URL_SESV2":        e.SES,
		})),
		"IngestFunction": common(with(queue, map[string]string{"BROADSHEET_WORDPRESS_URL": o.WordPressURL})),
		"FeedbackFunction": {
			"BROADSHEET_TABLE":          o.Table,
			"AWS_ENDPOINT_URL_DYNAMODB": e.DynamoDB,
		},
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
