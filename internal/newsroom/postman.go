package newsroom

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingMail caps the emails waiting for a background sender; past it
// a sign-up sends its email inline, slowing the flood that caused it.
const maxPendingMail = 1024

// postman runs the jobs that send a reader a transactional email. Inline,
// a job runs before the request that asked for it is answered; otherwise
// it runs in the background, at most workers at a time, each with its own
// timeout and a context that the request's end does not cancel.
//
// Background sending keeps the answer to a sign-up from waiting on the
// renderer and the mailer, so that its timing does not tell a new address
// from a known one. It suits a long-running process (the laptop server),
// which drains the jobs on Close. A Lambda function must send inline: once
// it has answered, it is frozen, and a job left running may never finish.
type postman struct {
	inline  bool
	timeout time.Duration
	log     *slog.Logger
	sem     chan struct{}
	pending atomic.Int64
	wg      sync.WaitGroup
}

func newPostman(workers int, timeout time.Duration, log *slog.Logger) *postman {
	p := &postman{inline: workers <= 0, timeout: timeout, log: log}
	if !p.inline {
		p.sem = make(chan struct{}, workers)
	}
	return p
}

// post runs job, inline or in the background. Inline, it returns the job's
// error; in the background, the error is logged with what, and post
// returns nil at once.
func (p *postman) post(ctx context.Context, what string, job func(context.Context) error) error {
	if p.inline {
		return job(ctx)
	}
	if p.pending.Add(1) > maxPendingMail {
		p.pending.Add(-1)
		p.log.WarnContext(ctx, "background mail queue full: sending inline", "mail", what)
		return job(ctx)
	}
	p.wg.Add(1)
	// The job outlives the request: keep its values (trace IDs), drop its
	// cancellation.
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer p.wg.Done()
		defer p.pending.Add(-1)
		p.sem <- struct{}{}
		defer func() { <-p.sem }()
		if err := p.run(ctx, job); err != nil {
			p.log.ErrorContext(ctx, "background mail", "mail", what, "err", err)
		}
	}()
	return nil
}

// run runs one background job under its timeout, turning a panic into an
// error: nothing recovers a goroutine's panic but the goroutine itself.
func (p *postman) run(ctx context.Context, job func(context.Context) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return job(ctx)
}

// wait blocks until every background job posted so far has finished, or
// ctx is done.
func (p *postman) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for background mail: %w", ctx.Err())
	}
}
