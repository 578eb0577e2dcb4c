package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
)

// harness lets this command use package awstest, which starts the
// stand-ins for tests and reports through a testing.TB: it is one, outside
// any test. Fatal and Skip end the calling goroutine, as in a test, and
// the error is read back by standIn. A stand-in that is missing is an
// error here, never a skip: CI must fail rather than print no figure.
type harness struct {
	testing.TB // never called: every method awstest uses is below
	mu         sync.Mutex
	err        error
}

func (h *harness) Helper()      {}
func (h *harness) Name() string { return "chaos" }
func (h *harness) Cleanup(func()) {
}
func (h *harness) Logf(string, ...any) {}
func (h *harness) fail(msg string) {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("stand-in: %s", msg)
	}
	h.mu.Unlock()
	runtime.Goexit()
}
func (h *harness) Fatal(args ...any)                 { h.fail(fmt.Sprint(args...)) }
func (h *harness) Fatalf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }
func (h *harness) Skip(args ...any)                  { h.fail(fmt.Sprint(args...)) }
func (h *harness) Skipf(format string, args ...any)  { h.fail(fmt.Sprintf(format, args...)) }
func (h *harness) TempDir() string                   { h.fail("TempDir is not available"); return "" }

// standIn runs an awstest function on its own goroutine, so that a Fatal
// ends that goroutine only, and returns its result or its failure.
func standIn[T any](f func(testing.TB) T) (T, error) {
	h := &harness{}
	var v T
	done := make(chan struct{})
	go func() {
		defer close(done)
		v = f(h)
	}()
	<-done
	h.mu.Lock()
	defer h.mu.Unlock()
	return v, h.err
}

// awsClients are clients for the three stand-ins.
type awsClients struct {
	dynamo *dynamodb.Client
	sqs    *awssqs.Client
	sesURL string // the SES stand-in's endpoint
}

// startAWS starts (once per run) the stand-ins and returns clients.
func startAWS() (*awsClients, error) {
	ddb, err := standIn(func(tb testing.TB) *awstest.Server { return awstest.DynamoDB(tb) })
	if err != nil {
		return nil, err
	}
	sq, err := standIn(func(tb testing.TB) *awstest.Server { return awstest.SQS(tb) })
	if err != nil {
		return nil, err
	}
	se, err := standIn(func(tb testing.TB) *awstest.Server { return awstest.SES(tb) })
	if err != nil {
		return nil, err
	}
	cfg := awstest.Config()
	return &awsClients{
		dynamo: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.Endpoint) }),
		sqs:    awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(sq.Endpoint) }),
		sesURL: se.Endpoint,
	}, nil
}

// sesClient returns an SES v2 client for endpoint, sending through doer.
func sesClient(endpoint string, doer aws.HTTPClient) *sesv2.Client {
	return sesv2.NewFromConfig(awstest.Config(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		if doer != nil {
			o.HTTPClient = doer
		}
	})
}

// newTable creates a fresh DynamoDB table and returns the store on it.
func newTable(ctx context.Context, c *awsClients, prefix string) (*dynamo.Store, error) {
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if err := dynamo.CreateTable(ctx, c.dynamo, name); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	return dynamo.New(c.dynamo, name), nil
}

// sendQueue creates a send queue with a dead-letter queue behind it
// (after maxReceives receives), and returns both URLs.
func sendQueue(ctx context.Context, c *awsClients, prefix string, visibility time.Duration, maxReceives int) (queueURL, dlqURL string, err error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	dlq, err := c.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(prefix + "-dlq-" + stamp)})
	if err != nil {
		return "", "", fmt.Errorf("create DLQ: %w", err)
	}
	attrs, err := c.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("DLQ ARN: %w", err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], maxReceives)
	q, err := c.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName: aws.String(prefix + "-" + stamp),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(visibility / time.Second)),
			string(sqstypes.QueueAttributeNameRedrivePolicy):     redrive,
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue: %w", err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}

// queueDepth returns the messages waiting and in flight on a queue.
func queueDepth(ctx context.Context, c *awsClients, url string) (int, error) {
	out, err := c.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}})
	if err != nil {
		return 0, fmt.Errorf("queue attributes: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}
