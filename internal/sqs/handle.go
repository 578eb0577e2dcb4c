package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
)

// Handler runs one task and returns the readers of a send task to try
// again later. *delivery.Engine is one.
type Handler interface {
	Handle(ctx context.Context, t delivery.Task) (retry []string, err error)
}

// Handle is the sender Lambda's SQS consumer; the event source mapping
// must have ReportBatchItemFailures on. It never fails the whole batch:
// each record is acknowledged or reported in BatchItemFailures on its own.
//
//   - A body that is not a task is logged at error level and acknowledged.
//   - A fan-out task that fails is reported, so SQS delivers it again after
//     the visibility timeout (and to the DLQ after maxReceiveCount); fan-out
//     resumes from its cursor.
//   - A send task's readers to try again go back on q as a new task with
//     Attempt+1 and a delay, and the record is acknowledged; if that
//     enqueue fails the record is reported instead, and the whole task
//     comes back (readers already settled are skipped cheaply).
//
// A send task that fails with no readers to retry is logged and
// acknowledged: the engine has settled or released each of them, as the
// laptop queue (memqueue) does too.
func Handle(ctx context.Context, ev events.SQSEvent, h Handler, q *Queue) events.SQSEventResponse {
	log := q.logger()
	var res events.SQSEventResponse
	fail := func(m events.SQSMessage) {
		res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
	}
	for _, m := range ev.Records {
		if ctx.Err() != nil {
			// Out of time: hand the rest back untouched.
			fail(m)
			continue
		}
		t, err := decode(m.Body)
		if err != nil {
			// A poison message is dropped, not reported: reported, it would
			// come back until maxReceiveCount and then sit in the DLQ, and
			// nothing we can do will ever decode it. Dropped, it reaches no
			// DLQ either, so this line is the only trace it leaves.
			log.ErrorContext(ctx, "undecodable SQS message dropped", "messageId", m.MessageId, "err", err, "body", truncate(m.Body, 512))
			continue
		}
		retry, err := h.Handle(ctx, t)
		switch {
		case t.Kind == delivery.KindFanout && err != nil:
			log.WarnContext(ctx, "fan-out failed; SQS will deliver it again", "messageId", m.MessageId, "digest", t.DigestID, "err", err)
			fail(m)
		case len(retry) > 0:
			if err != nil {
				log.WarnContext(ctx, "send task failed in part", "messageId", m.MessageId, "digest", t.DigestID, "retry", len(retry), "err", err)
			}
			again := delivery.Task{Kind: t.Kind, DigestID: t.DigestID, SubscriberIDs: retry, Attempt: t.Attempt + 1}
			if err := q.Enqueue(ctx, again); err != nil {
				log.ErrorContext(ctx, "re-enqueue of readers to retry failed; SQS will deliver the whole task again", "messageId", m.MessageId, "digest", t.DigestID, "retry", len(retry), "err", err)
				fail(m)
			}
		case err != nil:
			log.WarnContext(ctx, "send task failed with nothing to retry", "messageId", m.MessageId, "digest", t.DigestID, "err", err)
		}
	}
	return res
}

// decode reads a task from a message body, refusing any that the engine
// could not run.
func decode(body string) (delivery.Task, error) {
	var t delivery.Task
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return t, fmt.Errorf("decode task: %w", err)
	}
	switch {
	case t.Kind != delivery.KindFanout && t.Kind != delivery.KindSend:
		return t, fmt.Errorf("decode task: unknown kind %q", t.Kind)
	case t.DigestID == "":
		return t, errors.New("decode task: no digest ID")
	case t.Attempt < 0:
		return t, fmt.Errorf("decode task: negative attempt %d", t.Attempt)
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
