// Command echo is a Lambda function for the bench's Runtime API test: it
// answers each event with what the runtime told it about the invocation,
// fails when the event has "fail", and exits when it has "exit".
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Echo string `json:"echo"`
	Fail string `json:"fail"`
	Exit bool   `json:"exit"`
}

type answer struct {
	Echo        string `json:"echo"`
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	DeadlineMS  int64  `json:"deadlineInMs"`
	TraceID     string `json:"traceId"`
}

func main() {
	lambda.Start(func(ctx context.Context, ev event) (*answer, error) {
		switch {
		case ev.Exit:
			os.Exit(3)
		case ev.Fail != "":
			return nil, errors.New(ev.Fail)
		}
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return &answer{
			Echo: ev.Echo, RequestID: lc.AwsRequestID, FunctionARN: lc.InvokedFunctionArn,
			DeadlineMS: time.Until(deadline).Milliseconds(), TraceID: os.Getenv("_X_AMZN_TRACE_ID"),
		}, nil
	})
}
