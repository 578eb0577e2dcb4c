package awsapp

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/feedbackfunc"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// HandleSQS is the sender function's handler: it runs each send (or
// fan-out) task on the queue and reports the messages to deliver again as
// batch item failures, never failing the whole batch. The event source
// must have FunctionResponseTypes: [ReportBatchItemFailures].
func (a *App) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return sqs.Handle(ctx, ev, a.Engine, a.Queue), nil
}

// HandleSNS is the feedback function's handler on an App that has Log
// and Feedback: (*feedbackfunc.Handler).HandleSNS, which says what is
// dropped and what is retried.
func (a *App) HandleSNS(ctx context.Context, ev events.SNSEvent) error {
	return (&feedbackfunc.Handler{Log: a.Log, Feedback: a.Feedback}).HandleSNS(ctx, ev)
}
