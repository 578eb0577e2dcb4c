package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// errInjected is the error the fault hooks crash the engine with.
var errInjected = errors.New("injected crash")

// eventSource plays Lambda's SQS event source mapping for the sender
// function: each worker receives a batch, hands it to sqs.Handle (the
// sender's own handler) in a shuffled order, and deletes the records that
// were not reported as batch item failures. An invocation in which the
// engine crashed deletes nothing, as a Lambda that died returns nothing:
// every record of its batch comes back after the visibility timeout.
type eventSource struct {
	client  *awssqs.Client
	url     string
	queue   *sqs.Queue
	engine  sqs.Handler
	batch   int32 // records per invocation
	workers int

	mu  sync.Mutex
	rng *rand.Rand

	invocations, crashed, received atomic.Int64
	lastReceive                    atomic.Int64 // Unix nanoseconds of the last non-empty receive
}

// run polls until ctx ends.
func (s *eventSource) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.poll(ctx)
			}
		}()
	}
	wg.Wait()
}

func (s *eventSource) poll(ctx context.Context) {
	out, err := s.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(s.url), MaxNumberOfMessages: s.batch, WaitTimeSeconds: 1,
	})
	if err != nil || len(out.Messages) == 0 {
		if err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	s.received.Add(int64(len(out.Messages)))
	s.lastReceive.Store(time.Now().UnixNano())
	ev := events.SQSEvent{}
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), EventSource: "aws:sqs"})
	}
	s.mu.Lock()
	s.rng.Shuffle(len(ev.Records), func(i, j int) { ev.Records[i], ev.Records[j] = ev.Records[j], ev.Records[i] })
	s.mu.Unlock()

	s.invocations.Add(1)
	ictx, cancel := context.WithCancel(ctx)
	h := &crashWatch{inner: s.engine, cancel: cancel}
	res := sqs.Handle(ictx, ev, h, s.queue)
	cancel()
	if h.crashed.Load() {
		s.crashed.Add(1)
		return
	}
	harness.DeleteHandled(ctx, s.client, s.url, ev, res)
}

// start runs the event source on its own goroutine until ctx ends; the
// channel it returns is closed when the senders have stopped.
func (s *eventSource) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	return done
}

// crashWatch passes tasks to the engine and, when the engine crashes,
// ends the invocation: the rest of the batch is not run (sqs.Handle sees
// the context end) and nothing is deleted.
type crashWatch struct {
	inner   sqs.Handler
	cancel  context.CancelFunc
	crashed atomic.Bool
}

// Handle runs the task unless the invocation has crashed.
func (c *crashWatch) Handle(ctx context.Context, t delivery.Task) ([]string, error) {
	if c.crashed.Load() {
		return nil, errInjected
	}
	retry, err := c.inner.Handle(ctx, t)
	if errors.Is(err, errInjected) {
		c.crashed.Store(true)
		c.cancel()
		return nil, err
	}
	return retry, err
}
