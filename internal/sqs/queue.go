// Package sqs carries delivery tasks through Amazon SQS: Queue sends them
// (delivery.Queue) and Handle consumes them in the sender Lambda, reporting
// partial batch failures so that one bad record never sends a whole batch
// back.
package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
)

// Limits of SendMessageBatch and of our use of it.
const (
	// MaxBatch is the most entries SendMessageBatch takes in one call.
	MaxBatch = 10
	// MaxMessageBytes bounds one message body and one batch's payload. SQS
	// now accepts up to 1 MiB, but 256 KiB was the limit for years and
	// still is for some queues and tools; a send task of 50 readers is
	// about 2 KB, so this costs nothing.
	MaxMessageBytes = 256 * 1024
	// MaxDelay is the longest delay SQS allows on a message: 15 minutes.
	MaxDelay = 900 * time.Second
)

// Retry pacing. An entry that SQS refuses for a reason of its own (not the
// sender's fault) is sent again up to entryRetries times, after a backoff
// that starts at entryBackoff and doubles. A task back for another attempt
// is delayed retryBase doubled per attempt, up to MaxDelay.
const (
	entryRetries = 3
	entryBackoff = 100 * time.Millisecond
	retryBase    = 2 * time.Second
)

// Queue sends delivery tasks to one SQS queue as JSON messages.
type Queue struct {
	// sendMessageBatch is (*sqs.Client).SendMessageBatch. A method value,
	// not the client: in a binary that executes templates, the linker
	// keeps every exported method of a type reachable from an interface
	// value, and a Queue is one (a delivery.Queue), so holding the client
	// would keep the whole SQS API, about 0.2 MB of the sender bootstrap.
	sendMessageBatch func(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	url              string
	// Logger receives what Handle drops or reports; nil means slog.Default().
	Logger *slog.Logger
}

var _ delivery.Queue = (*Queue)(nil)

// NewQueue returns a queue that sends to queueURL through client.
func NewQueue(client *sqs.Client, queueURL string) *Queue {
	return &Queue{sendMessageBatch: client.SendMessageBatch, url: queueURL}
}

func (q *Queue) logger() *slog.Logger {
	if q.Logger != nil {
		return q.Logger
	}
	return slog.Default()
}

// Enqueue sends tasks in batches of up to ten. A task whose Attempt is
// above zero is delayed (see Delay). Entries SQS fails for a transient
// reason are sent again with backoff; Enqueue returns an error saying how
// many tasks were not enqueued if any remain, so that fan-out does not
// advance its cursor past them. Tasks that were enqueued stay enqueued: a
// caller that retries sends some twice, which delivery tolerates.
func (q *Queue) Enqueue(ctx context.Context, tasks ...delivery.Task) error {
	entries := make([]types.SendMessageBatchRequestEntry, 0, len(tasks))
	var invalid int
	var firstInvalid error
	for i, t := range tasks {
		body, err := json.Marshal(t)
		if err == nil && len(body) > MaxMessageBytes {
			err = fmt.Errorf("message of %d bytes is over %d", len(body), MaxMessageBytes)
		}
		if err != nil {
			invalid++
			if firstInvalid == nil {
				firstInvalid = fmt.Errorf("task %d (%s %s): %w", i, t.Kind, t.DigestID, err)
			}
			continue
		}
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:           aws.String(strconv.Itoa(i)),
			MessageBody:  aws.String(string(body)),
			DelaySeconds: int32(Delay(t.Attempt) / time.Second),
		})
	}
	failed, firstErr := invalid, firstInvalid
	for len(entries) > 0 {
		n := batchLen(entries)
		notSent, callFailed, err := q.sendBatch(ctx, entries[:n])
		entries = entries[n:]
		failed += notSent
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if callFailed {
			// The call itself failed after the SDK's own retries; the
			// rest would most likely fail the same way.
			failed += len(entries)
			break
		}
	}
	if failed > 0 {
		return fmt.Errorf("enqueue: %d of %d tasks not enqueued: %w", failed, len(tasks), firstErr)
	}
	return nil
}

// batchLen returns how many of entries, from the first, fit one batch.
func batchLen(entries []types.SendMessageBatchRequestEntry) int {
	size := 0
	for i, e := range entries {
		size += len(*e.MessageBody)
		if i == MaxBatch || (i > 0 && size > MaxMessageBytes) {
			return i
		}
	}
	return len(entries)
}

// sendBatch sends one batch, sending again (with backoff) only the entries
// that failed for a reason that was not the sender's fault. It returns how
// many entries were not enqueued, and whether the call itself failed
// rather than some of its entries.
func (q *Queue) sendBatch(ctx context.Context, entries []types.SendMessageBatchRequestEntry) (notSent int, callFailed bool, err error) {
	pending := entries
	for try := 0; ; try++ {
		out, cerr := q.sendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: pending})
		if cerr != nil {
			return notSent + len(pending), true, fmt.Errorf("send message batch: %w", cerr)
		}
		byID := make(map[string]types.SendMessageBatchRequestEntry, len(pending))
		for _, e := range pending {
			byID[aws.ToString(e.Id)] = e
		}
		var again []types.SendMessageBatchRequestEntry
		for _, f := range out.Failed {
			e, ok := byID[aws.ToString(f.Id)]
			if !ok {
				continue
			}
			if f.SenderFault || try >= entryRetries {
				notSent++
				if err == nil {
					err = fmt.Errorf("entry refused by SQS: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
				}
				continue
			}
			again = append(again, e)
		}
		if len(again) == 0 {
			return notSent, false, err
		}
		pending = again
		d := entryBackoff << try
		if serr := sleep(ctx, d/2+jitter(d/2)); serr != nil {
			return notSent + len(pending), false, fmt.Errorf("retry %d refused entries: %w", len(pending), serr)
		}
	}
}

// Delay returns how long a task on its attempt-th retry waits before SQS
// delivers it: none for a first attempt, then retryBase doubled for each
// attempt, capped at MaxDelay, with jitter over its upper half so that
// retries of one throttled burst spread out. Whole seconds, as SQS takes.
func Delay(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := retryBase << min(attempt-1, 20)
	if d > MaxDelay || d <= 0 {
		d = MaxDelay
	}
	d = d/2 + jitter(d/2)
	return d.Truncate(time.Second)
}

// jitter returns a random duration in [0, d].
func jitter(d time.Duration) time.Duration { return rand.N(d + 1) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
