package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// runTriggers fires seven digest triggers at once (an editor's double
// clicks, a retried schedule, a redelivered event: newsroom CreateDigest
// with Send from seven goroutines), repeats them like a schedule while
// the digest goes out and after, resumes the engine as a restart would,
// and duplicates a fifth of the queue's messages. One digest must exist
// and no reader may get two copies.
func runTriggers(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "triggers")
	const triggers = 7
	readers := env.pick(2000, 500)
	rng := env.rng("triggers")

	lp, err := openLaptop(env, "triggers")
	if err != nil {
		return err
	}
	defer lp.close()
	store, box := lp.store, lp.box
	var dq *dupQueue
	engine, mq, svc := lp.start(ctx, env, laptopRun{wrap: func(q delivery.Queue) delivery.Queue {
		dq = &dupQueue{inner: q, share: 0.2, delay: 5 * time.Millisecond, rng: rng}
		return dq
	}})

	if _, err := seedAll(ctx, store, svc, readers, 4); err != nil {
		return err
	}

	var created atomic.Int64
	var digestID atomic.Value
	trigger := func() error {
		st, made, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
		if err != nil {
			return fmt.Errorf("trigger: %w", err)
		}
		if made {
			created.Add(1)
		}
		digestID.Store(st.ID)
		return nil
	}
	// Seven at once, released together.
	var wg sync.WaitGroup
	errs := make(chan error, triggers)
	gate := make(chan struct{})
	for range triggers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if err := trigger(); err != nil {
				errs <- err
			}
		}()
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	id, _ := digestID.Load().(string)

	// Schedule-like repeats while it sends: the trigger again, an
	// editor's send, and a resume as after a restart.
	repeats := 0
	for range 5 {
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		if err := trigger(); err != nil {
			return err
		}
		if _, err := svc.Send(ctx, id); err != nil {
			return fmt.Errorf("send again: %w", err)
		}
		if err := engine.Resume(ctx); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		repeats += 3
	}
	if err := waitIdle(ctx, mq, dq); err != nil {
		return err
	}
	// And once more after it went out.
	if err := trigger(); err != nil {
		return err
	}
	if _, err := svc.Send(ctx, id); err != nil {
		return fmt.Errorf("send again: %w", err)
	}
	repeats += 2
	if err := waitIdle(ctx, mq, dq); err != nil {
		return err
	}

	ds, err := allDigests(ctx, store)
	if err != nil {
		return err
	}
	mails, err := countOutbox(box.Dir(), id)
	if err != nil {
		return err
	}
	rows, err := ledger(ctx, store, id)
	if err != nil {
		return err
	}
	missing := 0
	for i := range readers {
		row := rows[readerID(i)]
		if row == nil || !settledFinal(row.Status) || row.Status == newsletter.DeliverySent && mails.perReader[readerID(i)] == 0 {
			missing++
		}
	}
	total, dups := dq.counts()
	r.set("recipients", readers)
	r.set("triggers", triggers)
	r.set("repeats", repeats)
	r.set("queue_messages", total+dups)
	r.set("duplicated_messages", dups)
	r.set("digests", len(ds))
	r.want(len(ds) == 1, "digests=%d, want 1", len(ds))
	r.set("created", created.Load())
	r.want(created.Load() == 1, "created=%d, want 1", created.Load())
	r.zero("duplicates", mails.duplicates())
	r.zero("missing", missing)
	r.set("sent", len(mails.perReader))
	return nil
}
