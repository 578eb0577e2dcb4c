package awsapp

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// HandleSQS is the sender function's handler: it runs each send (or
// fan-out) task on the queue and reports the messages to deliver again as
// batch item failures, never failing the whole batch. The event source
// must have FunctionResponseTypes: [ReportBatchItemFailures].
func (a *App) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return sqs.Handle(ctx, ev, a.Engine, a.Queue), nil
}

// HandleSNS is the feedback function's handler: each record's Message is
// one SES event-publishing notification.
//
// A notification that cannot be decoded is logged and dropped, not
// returned as an error: SNS invokes Lambda asynchronously, so an error
// makes Lambda retry the same bytes twice more and then discard them (or
// park them on an on-failure destination) — nothing a retry can fix. The
// message SES sends when the topic is first attached ("Successfully
// validated SNS topic for Amazon SES event publishing.") is one such. A
// store error is returned, and the retry is safe because every step of
// feedback is idempotent.
func (a *App) HandleSNS(ctx context.Context, ev events.SNSEvent) error {
	for _, r := range ev.Records {
		err := a.Feedback.Handle(ctx, []byte(r.SNS.Message))
		switch {
		case errors.Is(err, feedback.ErrMalformed):
			a.Log.ErrorContext(ctx, "undecodable SES notification dropped", "snsMessageId", r.SNS.MessageID, "err", err, "message", truncate(r.SNS.Message, 512))
		case err != nil:
			return fmt.Errorf("SNS message %s: %w", r.SNS.MessageID, err)
		}
	}
	return nil
}
