// Package feedbackfunc is the feedback Lambda function's handler: it
// applies the SES events published through SNS (bounce, complaint,
// delivery, send) to the readers and the delivery ledger. It is apart
// from package awsapp, which wires the other functions, so that the
// feedback bootstrap links only what it calls — the DynamoDB store and
// the feedback processor — and not the SES and SQS clients, the renderer
// and the newsroom, whose package initialisation every cold start would
// pay for.
package feedbackfunc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/awsenv"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
)

// Handler is the feedback function's handler.
type Handler struct {
	Log      *slog.Logger
	Feedback *feedback.Processor
}

// Load builds the handler from the environment: the DynamoDB store and
// the feedback processor on it, nothing else.
func Load(ctx context.Context, getenv func(string) string, stdout io.Writer) (*Handler, error) {
	log := awsenv.NewLogger(getenv, stdout).With("function", "feedback")
	cfg, err := awsenv.Config(getenv)
	if err != nil {
		return nil, fmt.Errorf("feedback: AWS config: %w", err)
	}
	store, err := awsenv.Store(cfg, getenv)
	if err != nil {
		return nil, fmt.Errorf("feedback: %w", err)
	}
	p := feedback.New(store, nil)
	p.Logger = log
	return &Handler{Log: log, Feedback: p}, nil
}

// HandleSNS handles one SNS event: each record's Message is one SES
// event-publishing notification.
//
// A notification that cannot be decoded is logged and dropped, not
// returned as an error: SNS invokes Lambda asynchronously, so an error
// makes Lambda retry the same bytes twice more and then discard them (or
// park them on an on-failure destination) — nothing a retry can fix. The
// message SES sends when the topic is first attached ("Successfully
// validated SNS topic for Amazon SES event publishing.") is one such. A
// store error is returned, and the retry is safe because every step of
// feedback is idempotent.
func (h *Handler) HandleSNS(ctx context.Context, ev events.SNSEvent) error {
	for _, r := range ev.Records {
		err := h.Feedback.Handle(ctx, []byte(r.SNS.Message))
		switch {
		case errors.Is(err, feedback.ErrMalformed):
			h.Log.ErrorContext(ctx, "undecodable SES notification dropped", "snsMessageId", r.SNS.MessageID, "err", err, "message", truncate(r.SNS.Message, 512))
		case err != nil:
			return fmt.Errorf("SNS message %s: %w", r.SNS.MessageID, err)
		}
	}
	return nil
}

// truncate shortens s to at most n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
