package memqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
)

// patience bounds every wait, so that a hang fails the test instead of
// stalling it.
const patience = 10 * time.Second

// The tests of retries run in a synctest bubble: the queue's retry timers
// fire on the bubble's clock, which moves on only when every goroutine is
// blocked, so delays of seconds cost no time and the delays measured are
// exactly those the queue chose.

// retries are the retry delays of those tests: the default first delay,
// and a cap that keeps every wait within patience.
var retries = memqueue.Options{RetryDelay: time.Second, MaxRetryDelay: 5 * time.Second}

// wantDelay fails the test unless the gap between a call's return and its
// retry is the jittered delay of the retry's attempt: half to all of
// RetryDelay doubled per attempt after the first, capped at MaxRetryDelay.
func wantDelay(t *testing.T, prev, next call) {
	t.Helper()
	full := retries.MaxRetryDelay
	if a := next.task.Attempt - 1; a < 16 {
		full = min(retries.RetryDelay<<a, retries.MaxRetryDelay)
	}
	if gap := next.started.Sub(prev.returned); gap < full/2 || gap > full {
		t.Errorf("attempt %d: started %v after the previous call returned, want %v to %v", next.task.Attempt, gap, full/2, full)
	}
}

// call is one Handle call as the recorder saw it.
type call struct {
	task     delivery.Task
	started  time.Time
	returned time.Time
}

// recorder is a Handler that records every call and answers with respond,
// which may be nil for success.
type recorder struct {
	respond func(ctx context.Context, t delivery.Task) ([]string, error)

	mu        sync.Mutex
	calls     []call
	active    int
	maxActive int
}

func (r *recorder) Handle(ctx context.Context, t delivery.Task) ([]string, error) {
	t.SubscriberIDs = slices.Clone(t.SubscriberIDs)
	r.mu.Lock()
	i := len(r.calls)
	r.calls = append(r.calls, call{task: t, started: time.Now()})
	r.active++
	r.maxActive = max(r.maxActive, r.active)
	r.mu.Unlock()

	var retry []string
	var err error
	if r.respond != nil {
		retry, err = r.respond(ctx, t)
	}

	r.mu.Lock()
	r.active--
	r.calls[i].returned = time.Now()
	r.mu.Unlock()
	return retry, err
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// start returns a running queue that is closed when the test ends.
func start(t *testing.T, h memqueue.Handler, opts memqueue.Options) *memqueue.Queue {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	q := memqueue.New(h, opts)
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	t.Cleanup(func() { cancel(); q.Close() })
	return q
}

func waitIdle(t *testing.T, q *memqueue.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := q.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: got %v, want nil", err)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after WaitIdle: got %d, want 0", n)
	}
}

func enqueue(t *testing.T, q *memqueue.Queue, tasks ...delivery.Task) {
	t.Helper()
	if err := q.Enqueue(context.Background(), tasks...); err != nil {
		t.Fatalf("Enqueue: got %v, want nil", err)
	}
}

// wait fails the test unless ch is closed or receives within patience.
func wait[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(patience):
		t.Fatalf("%s: still waiting after %v", what, patience)
	}
}

func TestEveryTaskHandled(t *testing.T) {
	h := &recorder{}
	q := start(t, h, memqueue.Options{Workers: 4})
	const producers, perProducer = 8, 25
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				// Some single tasks, some batches.
				task := delivery.Task{Kind: delivery.KindSend, DigestID: "daily-2026-11-26", SubscriberIDs: []string{fmt.Sprintf("s%d-%d", p, i)}}
				if err := q.Enqueue(context.Background(), task); err != nil {
					t.Errorf("Enqueue: got %v, want nil", err)
				}
			}
		})
	}
	wg.Wait()
	enqueue(t, q,
		delivery.Task{Kind: delivery.KindFanout, DigestID: "daily-2026-11-26"},
		delivery.Task{Kind: delivery.KindFanout, DigestID: "weekly-2026-W48"},
	)
	waitIdle(t, q)

	seen := map[string]int{}
	for _, c := range h.Calls() {
		if c.task.Attempt != 0 {
			t.Errorf("task %+v: got attempt %d, want 0", c.task, c.task.Attempt)
		}
		switch c.task.Kind {
		case delivery.KindSend:
			for _, id := range c.task.SubscriberIDs {
				seen[id]++
			}
		case delivery.KindFanout:
			seen[c.task.DigestID]++
		}
	}
	if got, want := len(seen), producers*perProducer+2; got != want {
		t.Errorf("distinct tasks handled: got %d, want %d", got, want)
	}
	for p := range producers {
		for i := range perProducer {
			if id := fmt.Sprintf("s%d-%d", p, i); seen[id] != 1 {
				t.Errorf("task for %s: got handled %d times, want 1", id, seen[id])
			}
		}
	}
	for _, id := range []string{"daily-2026-11-26", "weekly-2026-W48"} {
		if seen[id] != 1 {
			t.Errorf("fanout of %s: got handled %d times, want 1", id, seen[id])
		}
	}
}

func TestWaitIdleEmptyQueue(t *testing.T) {
	q := start(t, &recorder{}, memqueue.Options{})
	waitIdle(t, q)
}

func TestWaitIdleWaitsForRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const attempts = 4
		h := &recorder{respond: func(_ context.Context, t delivery.Task) ([]string, error) {
			if t.Attempt < attempts-1 {
				return t.SubscriberIDs, nil
			}
			return nil, nil
		}}
		q := start(t, h, retries)
		enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a"}})
		waitIdle(t, q)

		calls := h.Calls()
		if len(calls) != attempts {
			t.Fatalf("calls when WaitIdle returned: got %d, want %d", len(calls), attempts)
		}
		for i, c := range calls {
			if c.task.Attempt != i {
				t.Errorf("call %d: got attempt %d, want %d", i, c.task.Attempt, i)
			}
			if i > 0 {
				wantDelay(t, calls[i-1], c)
			}
		}
	})
}

func TestWaitIdleEndsWithContext(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := &recorder{respond: func(context.Context, delivery.Task) ([]string, error) {
		close(entered)
		<-release
		return nil, nil
	}}
	q := start(t, h, memqueue.Options{Workers: 1})
	defer close(release) // before the cleanup's Close, which waits for the handler
	enqueue(t, q, delivery.Task{Kind: delivery.KindFanout, DigestID: "d"})
	wait(t, entered, "handler call")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.WaitIdle(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitIdle with a busy handler and an ended context: got %v, want %v", err, context.Canceled)
	}
	if n := q.Len(); n != 1 {
		t.Errorf("Len with one task in flight: got %d, want 1", n)
	}
}

func TestSendRetriesOnlyReturnedIDs(t *testing.T) {
	tests := []struct {
		name string
		err  error // returned along with the retry IDs
	}{
		{"without error", nil},
		{"with error", errors.New("mailer throttled")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Each attempt asks to retry all but the first reader.
				h := &recorder{respond: func(_ context.Context, t delivery.Task) ([]string, error) {
					if len(t.SubscriberIDs) <= 1 {
						return nil, nil
					}
					return t.SubscriberIDs[1:], tt.err
				}}
				q := start(t, h, retries)
				enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "daily-2026-11-26", SubscriberIDs: []string{"a", "b", "c"}})
				waitIdle(t, q)

				calls := h.Calls()
				want := [][]string{{"a", "b", "c"}, {"b", "c"}, {"c"}}
				if len(calls) != len(want) {
					t.Fatalf("calls: got %d, want %d (%+v)", len(calls), len(want), calls)
				}
				for i, c := range calls {
					if c.task.Kind != delivery.KindSend || c.task.DigestID != "daily-2026-11-26" {
						t.Errorf("call %d: got %s of %q, want send of daily-2026-11-26", i, c.task.Kind, c.task.DigestID)
					}
					if !slices.Equal(c.task.SubscriberIDs, want[i]) {
						t.Errorf("call %d: got readers %q, want %q", i, c.task.SubscriberIDs, want[i])
					}
					if c.task.Attempt != i {
						t.Errorf("call %d: got attempt %d, want %d", i, c.task.Attempt, i)
					}
					if i > 0 {
						wantDelay(t, calls[i-1], c)
					}
				}
			})
		})
	}
}

func TestFanoutErrorRetriedWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &recorder{respond: func(_ context.Context, t delivery.Task) ([]string, error) {
			if t.Attempt < 2 {
				return nil, errors.New("store unavailable")
			}
			return nil, nil
		}}
		q := start(t, h, retries)
		enqueue(t, q, delivery.Task{Kind: delivery.KindFanout, DigestID: "weekly-2026-W48"})
		waitIdle(t, q)

		calls := h.Calls()
		if len(calls) != 3 {
			t.Fatalf("calls: got %d, want 3 (%+v)", len(calls), calls)
		}
		for i, c := range calls {
			want := delivery.Task{Kind: delivery.KindFanout, DigestID: "weekly-2026-W48", Attempt: i}
			if c.task.Kind != want.Kind || c.task.DigestID != want.DigestID || c.task.Attempt != want.Attempt || len(c.task.SubscriberIDs) != 0 {
				t.Errorf("call %d: got %+v, want %+v", i, c.task, want)
			}
			if i > 0 {
				wantDelay(t, calls[i-1], c)
			}
		}
	})
}

func TestSendErrorWithoutRetryIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &recorder{respond: func(context.Context, delivery.Task) ([]string, error) {
			return nil, errors.New("message rejected")
		}}
		q := start(t, h, retries)
		enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a", "b"}})
		waitIdle(t, q)
		if calls := h.Calls(); len(calls) != 1 {
			t.Errorf("calls: got %d, want 1 (%+v)", len(calls), calls)
		}
	})
}

func TestSuccessIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &recorder{}
		q := start(t, h, retries)
		enqueue(t, q,
			delivery.Task{Kind: delivery.KindFanout, DigestID: "d"},
			delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a"}},
		)
		waitIdle(t, q)
		if calls := h.Calls(); len(calls) != 2 {
			t.Errorf("calls: got %d, want 2 (%+v)", len(calls), calls)
		}
	})
}

func TestRetryDelayIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// At attempt 40 the doubling delay would be 18 hours; the cap keeps
		// it to MaxRetryDelay.
		h := &recorder{respond: func(_ context.Context, t delivery.Task) ([]string, error) {
			if t.Attempt == 40 {
				return t.SubscriberIDs, nil
			}
			return nil, nil
		}}
		q := start(t, h, retries)
		enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a"}, Attempt: 40})
		waitIdle(t, q)
		calls := h.Calls()
		if len(calls) != 2 || calls[1].task.Attempt != 41 {
			t.Fatalf("calls: got %+v, want attempts 40 and 41", calls)
		}
		wantDelay(t, calls[0], calls[1])
	})
}

func TestWorkersRunConcurrently(t *testing.T) {
	const workers = 4
	var mu sync.Mutex
	entered := 0
	all := make(chan struct{})
	// Every call waits until all workers are inside Handle at once; a queue
	// that ran them one at a time would never get there.
	h := &recorder{respond: func(ctx context.Context, _ delivery.Task) ([]string, error) {
		mu.Lock()
		if entered++; entered == workers {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil, nil
		case <-time.After(patience):
			return nil, errors.New("not all workers ran at once")
		}
	}}
	q := start(t, h, memqueue.Options{Workers: workers})
	var tasks []delivery.Task
	for i := range workers {
		tasks = append(tasks, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{fmt.Sprint(i)}})
	}
	enqueue(t, q, tasks...)
	wait(t, all, "all workers in Handle")
	waitIdle(t, q)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.maxActive != workers {
		t.Errorf("most concurrent calls: got %d, want %d", h.maxActive, workers)
	}
}

func TestWorkersAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, tasks = 2, 20
		// Every call stays inside Handle until the test lets one go: when
		// all the bubble's goroutines are blocked, as many calls are
		// inside as the queue lets in at once.
		release := make(chan struct{})
		h := &recorder{respond: func(context.Context, delivery.Task) ([]string, error) {
			<-release
			return nil, nil
		}}
		q := start(t, h, memqueue.Options{Workers: workers})
		for i := range tasks {
			enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{fmt.Sprint(i)}})
		}
		for left := tasks; left > 0; {
			synctest.Wait()
			h.mu.Lock()
			inside := h.active
			h.mu.Unlock()
			if want := min(workers, left); inside != want {
				t.Errorf("with %d tasks left: got %d calls inside Handle at once, want %d", left, inside, want)
				close(release) // let the rest through, to end the test
				break
			}
			for range inside {
				release <- struct{}{}
			}
			left -= inside
		}
		waitIdle(t, q)
		if got := len(h.Calls()); got != tasks {
			t.Errorf("calls: got %d, want %d", got, tasks)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.maxActive != workers {
			t.Errorf("most concurrent calls: got %d, want %d", h.maxActive, workers)
		}
	})
}

func TestCloseWaitsForHandlerAndStopsWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		finished := false
		var mu sync.Mutex
		h := &recorder{respond: func(context.Context, delivery.Task) ([]string, error) {
			once.Do(func() { close(entered) })
			<-release
			mu.Lock()
			finished = true
			mu.Unlock()
			return nil, nil
		}}
		q := memqueue.New(h, memqueue.Options{Workers: 1, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		q.Start(t.Context())
		enqueue(t, q,
			delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a"}},
			delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"b"}},
			delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"c"}},
		)
		wait(t, entered, "first handler call")

		closed := make(chan struct{})
		go func() {
			q.Close()
			close(closed)
		}()
		synctest.Wait() // Close is as far as it gets with the handler held
		select {
		case <-closed:
			t.Fatalf("Close: returned while a handler was running, want it to wait")
		default:
		}
		close(release)
		wait(t, closed, "Close")

		mu.Lock()
		if !finished {
			t.Errorf("handler when Close returned: still running, want finished")
		}
		mu.Unlock()

		// Queued tasks are dropped: nothing is left to wait for.
		if n := q.Len(); n != 0 {
			t.Errorf("Len after Close: got %d, want 0", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := q.WaitIdle(ctx); err != nil {
			t.Errorf("WaitIdle after Close: got %v, want nil", err)
		}

		// Enqueue after Close neither panics nor runs the handler; a second
		// Close returns at once.
		handled := len(h.Calls())
		if err := q.Enqueue(context.Background(), delivery.Task{Kind: delivery.KindFanout, DigestID: "late"}); err != nil {
			t.Errorf("Enqueue after Close: got %v, want nil", err)
		}
		done := make(chan struct{})
		go func() {
			q.Close()
			close(done)
		}()
		wait(t, done, "second Close")
		if n := q.Len(); n != 0 {
			t.Errorf("Len after Enqueue after Close: got %d, want 0", n)
		}
		if got := len(h.Calls()); got != handled || got > 3 {
			t.Errorf("handler calls: got %d, want %d and at most 3", got, handled)
		}
	})
}

func TestClosedByContext(t *testing.T) {
	h := &recorder{}
	q := memqueue.New(h, memqueue.Options{Workers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	enqueue(t, q, delivery.Task{Kind: delivery.KindFanout, DigestID: "d"})
	waitIdle(t, q)
	cancel()
	// Once the context ends the queue closes itself; Close then only
	// waits for workers that are already stopping.
	done := make(chan struct{})
	go func() {
		q.Close()
		close(done)
	}()
	wait(t, done, "Close after the context ended")
	if got := len(h.Calls()); got != 1 {
		t.Errorf("handler calls: got %d, want 1", got)
	}
}

func TestRetryPendingAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A retry whose timer fires after Close is dropped, and WaitIdle
		// does not wait for it forever.
		returned := make(chan struct{})
		var once sync.Once
		h := &recorder{respond: func(_ context.Context, t delivery.Task) ([]string, error) {
			defer once.Do(func() { close(returned) })
			return t.SubscriberIDs, nil // always ask for a retry
		}}
		q := memqueue.New(h, memqueue.Options{Workers: 1, RetryDelay: retries.RetryDelay, MaxRetryDelay: retries.MaxRetryDelay,
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		q.Start(t.Context())
		enqueue(t, q, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"a"}})
		wait(t, returned, "first handler call")
		// The bubble's clock has not moved: the retry's timer (half a
		// second at the least) is still to fire.
		q.Close()
		if n := q.Len(); n != 1 {
			t.Errorf("Len after Close with a retry pending: got %d, want 1", n)
		}

		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := q.WaitIdle(ctx); err != nil {
			t.Errorf("WaitIdle after Close with a retry pending: got %v, want nil", err)
		}
		if n := q.Len(); n != 0 {
			t.Errorf("Len: got %d, want 0", n)
		}
		if calls := h.Calls(); len(calls) != 1 {
			t.Errorf("calls: got %d, want 1 (the retry due after Close dropped)", len(calls))
		}
	})
}
