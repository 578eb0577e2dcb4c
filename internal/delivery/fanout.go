package delivery

import (
	"context"
	"fmt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Fanout writes a queued ledger row for every reader who should get the
// digest and enqueues the rows in batches. It walks the readers a page at a
// time from the digest's saved cursor, and saves the cursor only after the
// page's rows were both written and enqueued, so a crash at any point
// repeats at most one page: rows that exist already are enqueued again,
// which the sender's conditional claim makes harmless.
func (e *Engine) Fanout(ctx context.Context, digestID string) error {
	d, err := e.store.Digest(ctx, digestID)
	if err != nil {
		return fmt.Errorf("fan out %s: %w", digestID, err)
	}
	if d.Status != newsletter.DigestSending || d.FanoutDone {
		return nil // not started, or already fanned out: a duplicate task
	}
	sections := d.Sections()
	filter := newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: d.Frequency}
	cursor := d.FanoutCursor
	for {
		subs, next, err := e.store.Subscribers(ctx, filter, newsletter.Page{Cursor: cursor, Limit: e.cfg.PageSize})
		if err != nil {
			return fmt.Errorf("fan out %s: list readers: %w", digestID, err)
		}
		var ids []string
		for _, s := range subs {
			if !s.Receives(d.Frequency, sections) {
				continue
			}
			row := &newsletter.Delivery{DigestID: d.ID, SubscriberID: s.ID, Status: newsletter.DeliveryQueued, UpdatedAt: e.cfg.Now()}
			if err := e.store.CreateDelivery(ctx, row); err != nil && newsletter.ErrorCode(err) != newsletter.ECONFLICT {
				return fmt.Errorf("fan out %s: ledger row for %s: %w", digestID, s.ID, err)
			}
			ids = append(ids, s.ID)
		}
		if err := e.enqueue(ctx, d.ID, ids); err != nil {
			return fmt.Errorf("fan out %s: %w", digestID, err)
		}
		done := next == ""
		if _, err := e.store.UpdateDigest(ctx, d.ID, func(d *newsletter.Digest) error {
			d.FanoutCursor, d.FanoutDone = next, done
			return nil
		}); err != nil {
			return fmt.Errorf("fan out %s: save cursor: %w", digestID, err)
		}
		if done {
			e.cfg.Logger.Info("fan-out done", "digest", d.ID)
			return e.finish(ctx, d.ID)
		}
		cursor = next
	}
}

// Sweep enqueues again every row of a digest that is still queued, or held
// by a lease that has run out: the rows whose queue messages were lost
// with a crashed in-process queue. On SQS, where messages survive a crash,
// it is a harmless safety net.
func (e *Engine) Sweep(ctx context.Context, digestID string) (int, error) {
	now := e.cfg.Now()
	n := 0
	for _, status := range []newsletter.DeliveryStatus{newsletter.DeliveryQueued, newsletter.DeliverySending} {
		cursor := ""
		for {
			rows, next, err := e.store.Deliveries(ctx, digestID, newsletter.DeliveryFilter{Status: status}, newsletter.Page{Cursor: cursor, Limit: e.cfg.PageSize})
			if err != nil {
				return n, fmt.Errorf("sweep %s: %w", digestID, err)
			}
			var ids []string
			for _, r := range rows {
				if r.Status == newsletter.DeliveryQueued || r.LeaseUntil.Before(now) {
					ids = append(ids, r.SubscriberID)
				}
			}
			if err := e.enqueue(ctx, digestID, ids); err != nil {
				return n, fmt.Errorf("sweep %s: %w", digestID, err)
			}
			n += len(ids)
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return n, nil
}

// Resume picks up every digest that was sending when the process stopped:
// it finishes fan-out from the saved cursor and re-enqueues unsettled rows.
func (e *Engine) Resume(ctx context.Context) error {
	cursor := ""
	for {
		ds, next, err := e.store.Digests(ctx, newsletter.DigestFilter{Status: newsletter.DigestSending}, newsletter.Page{Cursor: cursor})
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		for _, d := range ds {
			if !d.FanoutDone {
				if err := e.Dispatch(ctx, d.ID); err != nil {
					return fmt.Errorf("resume %s: %w", d.ID, err)
				}
			}
			n, err := e.Sweep(ctx, d.ID)
			if err != nil {
				return err
			}
			if err := e.finish(ctx, d.ID); err != nil {
				return err
			}
			e.cfg.Logger.Info("resumed digest", "digest", d.ID, "requeued", n)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

func (e *Engine) enqueue(ctx context.Context, digestID string, ids []string) error {
	var tasks []Task
	for len(ids) > 0 {
		n := min(len(ids), e.cfg.BatchSize)
		tasks = append(tasks, Task{Kind: KindSend, DigestID: digestID, SubscriberIDs: ids[:n:n]})
		ids = ids[n:]
	}
	if len(tasks) == 0 {
		return nil
	}
	if err := e.queue.Enqueue(ctx, tasks...); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// finish marks the digest sent once fan-out is done and no row is in
// flight. Rows whose outcome is unknown do not hold the digest open: they
// wait for reconciliation, and the counters show them.
func (e *Engine) finish(ctx context.Context, digestID string) error {
	c, err := e.store.DeliveryCounts(ctx, digestID)
	if err != nil {
		return fmt.Errorf("finish %s: %w", digestID, err)
	}
	if c.Queued+c.Sending > 0 {
		return nil
	}
	_, err = e.store.UpdateDigest(ctx, digestID, func(d *newsletter.Digest) error {
		if d.Status != newsletter.DigestSending || !d.FanoutDone {
			return errNotFinished
		}
		d.Status, d.SentAt = newsletter.DigestSent, e.cfg.Now()
		return nil
	})
	switch {
	case err == errNotFinished:
		return nil
	case err != nil:
		return fmt.Errorf("finish %s: %w", digestID, err)
	}
	e.cfg.Logger.Info("digest sent", "digest", digestID, "sent", c.Sent, "skipped", c.Skipped, "failed", c.Failed, "unknown", c.Unknown)
	return nil
}
