// Package memqueue is the laptop's stand-in for SQS: an in-process,
// unbounded task queue served by a pool of workers, with delayed retries
// for the part of a task that failed. It keeps nothing across a restart;
// delivery.Engine.Resume re-enqueues from the ledger on start-up.
package memqueue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
)

// Handler runs one task and returns the readers of a send task to try
// again. *delivery.Engine is one.
type Handler interface {
	Handle(ctx context.Context, t delivery.Task) (retry []string, err error)
}

// Options tune a queue; zero fields take the defaults shown.
type Options struct {
	Workers       int           // concurrent handlers: 4
	RetryDelay    time.Duration // first retry delay: 1s, doubling per attempt…
	MaxRetryDelay time.Duration // …up to 1 minute
	Logger        *slog.Logger
}

// Queue is an in-process task queue.
type Queue struct {
	handler Handler
	opts    Options

	mu       sync.Mutex
	cond     *sync.Cond
	tasks    []delivery.Task
	inFlight int // tasks being handled or waiting for a retry timer
	closed   bool
	idle     chan struct{} // closed and replaced whenever the queue drains
	wg       sync.WaitGroup
}

var _ delivery.Queue = (*Queue)(nil)

// New returns a queue; Start sets its workers going.
func New(h Handler, opts Options) *Queue {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.MaxRetryDelay <= 0 {
		opts.MaxRetryDelay = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := &Queue{handler: h, opts: opts, idle: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Start runs the workers until ctx ends or Close is called.
func (q *Queue) Start(ctx context.Context) {
	for range q.opts.Workers {
		q.wg.Add(1)
		go q.work(ctx)
	}
	go func() {
		<-ctx.Done()
		q.Close()
	}()
}

// Close stops the workers once their current tasks end; queued tasks are
// dropped (the ledger still has them).
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.tasks = nil
	if q.inFlight == 0 {
		close(q.idle) // WaitIdle must not wait for dropped tasks
		q.idle = make(chan struct{})
	}
	q.cond.Broadcast()
	q.mu.Unlock()
	q.wg.Wait()
}

// FanoutPages is the delivery.Config.FanoutPages for an engine on this
// queue: the queue holds its backlog in memory, so fan-out stays two
// pages (2,000 readers at the default page size) ahead of the senders.
const FanoutPages = 2

// Enqueue adds tasks. It never blocks. After Close it drops them, as Close
// drops those queued.
func (q *Queue) Enqueue(_ context.Context, tasks ...delivery.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.tasks = append(q.tasks, tasks...)
	q.cond.Broadcast()
	return nil
}

// Len returns the number of tasks waiting, in flight or due for a retry.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks) + q.inFlight
}

// WaitIdle blocks until nothing is waiting, in flight or due for a retry,
// or ctx ends.
func (q *Queue) WaitIdle(ctx context.Context) error {
	for {
		q.mu.Lock()
		if len(q.tasks) == 0 && q.inFlight == 0 {
			q.mu.Unlock()
			return nil
		}
		idle := q.idle
		q.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (q *Queue) work(ctx context.Context) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		for len(q.tasks) == 0 && !q.closed {
			q.cond.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		t := q.tasks[0]
		q.tasks[0] = delivery.Task{}
		q.tasks = q.tasks[1:]
		q.inFlight++
		q.mu.Unlock()

		retry, err := q.handler.Handle(ctx, t)
		if err != nil {
			q.opts.Logger.Warn("queue task failed", "kind", t.Kind, "digest", t.DigestID, "attempt", t.Attempt, "err", err)
		}
		again := delivery.Task{Kind: t.Kind, DigestID: t.DigestID, SubscriberIDs: retry, Attempt: t.Attempt + 1}
		if len(retry) > 0 || (err != nil && t.Kind == delivery.KindFanout) {
			q.later(again)
			continue
		}
		q.done()
	}
}

// later puts a task back after a delay that doubles with each attempt,
// with full jitter so that retries spread out.
func (q *Queue) later(t delivery.Task) {
	delay := q.opts.RetryDelay << min(t.Attempt-1, 16)
	if delay > q.opts.MaxRetryDelay || delay <= 0 {
		delay = q.opts.MaxRetryDelay
	}
	delay = delay/2 + rand.N(delay/2+1)
	time.AfterFunc(delay, func() {
		q.mu.Lock()
		if !q.closed {
			q.tasks = append(q.tasks, t)
			q.cond.Broadcast()
		}
		q.mu.Unlock()
		q.done()
	})
}

func (q *Queue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inFlight--
	if q.inFlight == 0 && len(q.tasks) == 0 {
		close(q.idle)
		q.idle = make(chan struct{})
	}
}
