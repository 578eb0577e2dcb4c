package harness

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
)

// tb lets a program use packages awstest and smtptest, which start their
// servers for tests and report through a testing.TB: it is one, outside
// any test. Fatal and Skip end the calling goroutine, as in a test, and
// the error is read back by StandIn. A stand-in that is missing is an
// error here, never a skip: CI must fail rather than print no figure.
type tb struct {
	testing.TB // never called: every method the packages use is below
	name       string
	mu         sync.Mutex
	err        error
}

func (h *tb) Helper()             {}
func (h *tb) Name() string        { return h.name }
func (h *tb) Cleanup(func())      {}
func (h *tb) Logf(string, ...any) {}
func (h *tb) fail(msg string) {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("stand-in: %s", msg)
	}
	h.mu.Unlock()
	runtime.Goexit()
}
func (h *tb) Fatal(args ...any)                 { h.fail(fmt.Sprint(args...)) }
func (h *tb) Fatalf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }
func (h *tb) Skip(args ...any)                  { h.fail(fmt.Sprint(args...)) }
func (h *tb) Skipf(format string, args ...any)  { h.fail(fmt.Sprintf(format, args...)) }
func (h *tb) TempDir() string                   { h.fail("TempDir is not available"); return "" }

// StandIn runs f, a function that needs a testing.TB, with a stand-in for
// one named name (the program's name) on its own goroutine, so that a
// Fatal ends that goroutine only, and returns f's result or its failure.
// Cleanup functions are never run: the servers stop with the program.
func StandIn[T any](name string, f func(testing.TB) T) (T, error) {
	h := &tb{name: name}
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

// AWS is the three AWS stand-ins: DynamoDB Local, the SQS stand-in and
// the SES stand-in.
type AWS struct {
	DynamoDB, SQS, SES *awstest.Server
}

// StartAWS starts (or finds running) the three AWS stand-ins through
// package awstest, for the program named name.
func StartAWS(name string) (*AWS, error) {
	ddb, err := StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.DynamoDB(tb) })
	if err != nil {
		return nil, err
	}
	sq, err := StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.SQS(tb) })
	if err != nil {
		return nil, err
	}
	se, err := StandIn(name, func(tb testing.TB) *awstest.Server { return awstest.SES(tb) })
	if err != nil {
		return nil, err
	}
	return &AWS{DynamoDB: ddb, SQS: sq, SES: se}, nil
}

// DynamoDBClient returns a DynamoDB client for DynamoDB Local.
func (a *AWS) DynamoDBClient() *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(a.DynamoDB.Endpoint) })
}

// SQSClient returns an SQS client for the SQS stand-in, sending through
// doer when it is not nil.
func (a *AWS) SQSClient(doer aws.HTTPClient) *awssqs.Client {
	return awssqs.NewFromConfig(awstest.Config(), func(o *awssqs.Options) {
		o.BaseEndpoint = aws.String(a.SQS.Endpoint)
		if doer != nil {
			o.HTTPClient = doer
		}
	})
}
