package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
)

// Errors a claim ends with instead of a send.
var (
	errSettled     = errors.New("delivery already settled")
	errLeased      = errors.New("delivery leased by another sender")
	errNotFinished = errors.New("digest not finished")
	// errUncertain: the row is unknown, or sending under a lease that ran
	// out — a sender died between claim and settle — so whether its
	// message left is not known.
	errUncertain = errors.New("delivery outcome uncertain")
	// errAwaiting: an uncertain row was left unknown, for a provider event
	// or Sweep to settle.
	errAwaiting = errors.New("delivery awaiting reconciliation")
	// errReconciled: an uncertain row turned out sent.
	errReconciled = errors.New("delivery reconciled as sent")
	// errPaused: the digest is paused; the task stops unsent.
	errPaused = errors.New("digest paused")
)

// RecheckAfter is how old a read of a digest's status or of a task's
// readers may be when a message goes out. At full speed a task of 100
// readers takes well under that and reads each once, and the tasks of one
// digest share a read of it; held back by the rate limiter a task reads
// them again. So a pause, an unsubscribe or a changed preference stops
// sends within RecheckAfter.
//
// Ages are measured on Config.Now, which by default is time.Now and so
// carries the monotonic clock: a change of the wall clock neither hides
// nor forces a recheck. A test's clock that stands still keeps every read
// fresh until the test moves it on by RecheckAfter.
const RecheckAfter = 250 * time.Millisecond

// settleTimeout bounds the final write of a task's outcomes when the
// task's own context has ended: the outcomes of messages that left are
// recorded even during shutdown.
const settleTimeout = 10 * time.Second

// pausedByProvider is the reason a digest shows when the mail provider
// stopped taking mail.
const pausedByProvider = "the mail provider is not accepting mail (sending paused, account suspended or daily quota used up)"

// Send sends the digest to the listed readers and returns those to try
// again later: throttled, leased elsewhere, or failed for a reason that
// left the message unsent. Every other reader ends sent, skipped, failed
// or unknown in the ledger.
//
// A task costs three store calls whatever its size: its rows are claimed
// together, its readers re-read together, and its outcomes recorded
// together once its messages are out (see DESIGN.md's ledger protocol;
// a crash before that leaves the rows sending, and so reconciled, never
// blindly sent again). With a BulkMailer the task's messages go to the
// provider in one call.
//
// A paused digest sends nothing: the task is acknowledged and its rows
// stay queued, for Sweep to enqueue again when the digest resumes. When
// the mailer answers eml.ErrPaused, the digest is paused, and the row and
// the rest of the task handed back to the queue the same way.
func (e *Engine) Send(ctx context.Context, digestID string, subscriberIDs []string) (retry []string, err error) {
	d, err := e.recentDigest(ctx, digestID)
	if err != nil {
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			e.cfg.Logger.Warn("send task for a missing digest dropped", "digest", digestID)
			return nil, nil
		}
		return subscriberIDs, fmt.Errorf("send %s: %w", digestID, err)
	}
	switch d.Status {
	case newsletter.DigestDraft:
		return nil, fmt.Errorf("send %s: digest is a draft", digestID)
	case newsletter.DigestPaused:
		e.cfg.Logger.Info("send task for a paused digest acknowledged unsent", "digest", digestID, "readers", len(subscriberIDs))
		return nil, nil
	}
	t := &task{e: e, d: d, sections: d.Sections(), read: e.cfg.Now()}
	if err := t.claim(ctx, subscriberIDs); err != nil {
		return subscriberIDs, fmt.Errorf("send %s: %w", digestID, err)
	}
	err = t.run(ctx)
	if isCrash(err) {
		return subscriberIDs, fmt.Errorf("send %s: %w", digestID, err)
	}
	if serr := t.record(ctx); serr != nil {
		if isCrash(serr) {
			return subscriberIDs, fmt.Errorf("send %s: %w", digestID, serr)
		}
		err = errors.Join(err, serr)
	}
	if err != nil {
		return t.retry, fmt.Errorf("send %s: %w", digestID, err)
	}
	if t.paused {
		return t.retry, nil
	}
	return t.retry, e.finish(ctx, digestID)
}

// recentDigest returns the digest as read at most RecheckAfter ago: the
// queue workers' tasks of one digest share a read, instead of decoding the
// digest (its articles and all) once per task. A pause is seen as late as
// a task that is running already sees it (within RecheckAfter); the
// engine's own pauses are seen at once.
func (e *Engine) recentDigest(ctx context.Context, id string) (*newsletter.Digest, error) {
	e.mu.Lock()
	c, ok := e.digests[id]
	e.mu.Unlock()
	// Only a sending digest is shared: any other status is read afresh,
	// so that a digest resumed a moment after a pause never has its tasks
	// acknowledged unsent.
	if ok && c.d.Status == newsletter.DigestSending && e.cfg.Now().Sub(c.read) < RecheckAfter {
		return c.d, nil
	}
	read := e.cfg.Now()
	d, err := e.store.Digest(ctx, id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.digests) >= maxEditions {
		clear(e.digests)
	}
	e.digests[id] = recentDigest{d: d, read: read}
	e.mu.Unlock()
	return d, nil
}

// forgetDigest drops the digest's shared read, after the engine changed it.
func (e *Engine) forgetDigest(id string) {
	e.mu.Lock()
	delete(e.digests, id)
	e.mu.Unlock()
}

// task is one send task on its way through the ledger protocol.
type task struct {
	e        *Engine
	d        *newsletter.Digest
	sections []string
	read     time.Time           // when the digest and the readers were last read
	editions map[string]*edition // by the reader's format and sections

	claimed  []*newsletter.Delivery // rows this task holds, not yet decided
	outcomes []newsletter.Outcome   // what to record, in one write at the end
	retry    []string               // readers to hand back to the queue
	paused   bool                   // the digest paused: the rest left queued
}

// claim takes the task's rows: queued ones in one call, uncertain ones
// (unknown, or sending under a lease that ran out) one by one through
// reconciliation.
func (t *task) claim(ctx context.Context, ids []string) error {
	e := t.e
	now := e.cfg.Now()
	claims, err := e.store.ClaimDeliveries(ctx, t.d.ID, ids, now, now.Add(e.cfg.Lease))
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	for i, c := range claims {
		id := ids[i]
		switch r := c.Row; {
		case c.Claimed:
			t.claimed = append(t.claimed, r)
			continue
		case r == nil, r.Status.Settled():
			continue // not a reader of this digest, or done already
		case e.leased(r, now):
			t.retry = append(t.retry, id) // another sender holds it
			continue
		}
		row, err := e.reconcile(ctx, t.d.ID, id)
		switch {
		case err == nil:
			t.claimed = append(t.claimed, row)
		case errors.Is(err, errSettled), errors.Is(err, errAwaiting), newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		case errors.Is(err, errReconciled):
			if err := e.fault(StepSettled, t.d.ID, id); err != nil {
				return err
			}
		case errors.Is(err, errLeased):
			t.retry = append(t.retry, id)
		default:
			e.cfg.Logger.Error("send: claim", "digest", t.d.ID, "subscriber", id, "err", err)
			t.retry = append(t.retry, id)
		}
	}
	for _, r := range t.claimed {
		if err := e.fault(StepClaimed, t.d.ID, r.SubscriberID); err != nil {
			return err
		}
	}
	return nil
}

// pending is one claimed reader's message, ready to go.
type pending struct {
	row *newsletter.Delivery
	msg *eml.Message
}

// run decides every claimed row: it re-reads the readers, builds their
// messages from the variant's edition and sends them.
func (t *task) run(ctx context.Context) error {
	e := t.e
	var live []*newsletter.Delivery
	for _, r := range t.claimed {
		if r.Attempts > e.cfg.MaxAttempts {
			t.settle(r, newsletter.DeliveryFailed, "", fmt.Sprintf("gave up after %d attempts", e.cfg.MaxAttempts))
			continue
		}
		live = append(live, r)
	}
	t.claimed = nil
	msgs, err := t.prepare(ctx, live)
	if err != nil {
		return err
	}
	if bm, ok := e.mailer.(BulkMailer); ok && len(msgs) > 1 {
		return t.sendBulk(ctx, bm, msgs)
	}
	for i := 0; i < len(msgs); i++ {
		if ctx.Err() != nil {
			t.releaseAll(msgs[i:], true)
			return ctx.Err()
		}
		if i > 0 && e.cfg.Now().Sub(t.read) > RecheckAfter {
			// Held back (by the limiter, or a slow provider): look again
			// at the digest and at the readers still to send to.
			rest, err := t.recheck(ctx, msgs[i:])
			if err != nil || t.paused {
				return err
			}
			msgs = append(msgs[:i], rest...)
			if i == len(msgs) {
				break
			}
		}
		p := msgs[i]
		if e.cfg.Limiter != nil {
			if err := e.cfg.Limiter.Wait(ctx); err != nil {
				t.releaseAll(msgs[i:], true)
				return fmt.Errorf("rate limit: %w", err)
			}
		}
		msgID, err := e.mailer.Send(ctx, p.msg)
		if ferr := e.fault(StepMailed, t.d.ID, p.row.SubscriberID); ferr != nil {
			return ferr
		}
		if stop := t.outcome(ctx, p.row, msgID, err); stop {
			t.releaseAll(msgs[i+1:], false)
			return nil
		}
	}
	return nil
}

// prepare re-reads the readers of rows in one call and returns the
// messages of those who still receive the digest; the others are settled
// skipped.
func (t *task) prepare(ctx context.Context, rows []*newsletter.Delivery) ([]pending, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	e := t.e
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.SubscriberID
	}
	t.read = e.cfg.Now()
	subs, err := e.store.SubscribersByID(ctx, ids)
	if err != nil {
		for _, r := range rows {
			t.release(r, true)
		}
		return nil, fmt.Errorf("read readers: %w", err)
	}
	msgs := make([]pending, 0, len(rows))
	for i, r := range rows {
		sub := subs[i]
		switch {
		case sub == nil:
			t.settle(r, newsletter.DeliverySkipped, "", "reader erased")
			continue
		case !sub.ReceivesDigest(t.d, t.sections):
			t.settle(r, newsletter.DeliverySkipped, "", "reader is "+string(sub.Status)+" or changed preferences")
			continue
		}
		v, err := t.variant(sub)
		if err != nil {
			e.cfg.Logger.Error("send: render", "digest", t.d.ID, "subscriber", r.SubscriberID, "err", err)
			t.release(r, true)
			continue
		}
		msgs = append(msgs, pending{row: r, msg: e.message(t.d, v.layout, sub.Email, sub.ID, e.Links(sub.ID))})
	}
	return msgs, nil
}

// variant returns the edition of the variant the reader gets. Readers of
// a task mostly share a handful of choices, so the task remembers the
// edition per choice (format and sections as the reader gave them) and
// works the variant out once per choice, not per reader.
func (t *task) variant(sub *newsletter.Subscriber) (*edition, error) {
	if !sub.ArticlesAfter.IsZero() && (t.d.Since.IsZero() || sub.ArticlesAfter.After(t.d.Since)) {
		// A reader who changed frequency within the digest's window may
		// have had some of its articles already: the variant says which.
		return t.e.variant(t.d, render.VariantFor(t.d, sub))
	}
	key := choiceKey(sub)
	if ed, ok := t.editions[key]; ok {
		return ed, nil
	}
	ed, err := t.e.variant(t.d, render.VariantFor(t.d, sub))
	if err != nil {
		return nil, err
	}
	if t.editions == nil {
		t.editions = map[string]*edition{}
	}
	t.editions[key] = ed
	return ed, nil
}

// recheck reads the digest's status and the readers of msgs again. It
// returns the messages still to send; a paused digest releases them all.
func (t *task) recheck(ctx context.Context, msgs []pending) ([]pending, error) {
	d, err := t.e.store.Digest(ctx, t.d.ID)
	if err != nil {
		t.releaseAll(msgs, true)
		return nil, fmt.Errorf("digest status: %w", err)
	}
	if d.Status == newsletter.DigestPaused {
		t.e.cfg.Logger.Info("digest paused mid-task: rest of the task left queued", "digest", t.d.ID, "readers", len(msgs))
		t.releaseAll(msgs, false)
		t.paused = true
		return nil, nil
	}
	rows := make([]*newsletter.Delivery, len(msgs))
	for i, p := range msgs {
		rows[i] = p.row
	}
	return t.prepare(ctx, rows)
}

// sendBulk hands the messages to a bulk mailer, paced by the limiter, and
// records each result.
func (t *task) sendBulk(ctx context.Context, bm BulkMailer, msgs []pending) error {
	e := t.e
	if e.cfg.Limiter != nil {
		for range msgs {
			if err := e.cfg.Limiter.Wait(ctx); err != nil {
				t.releaseAll(msgs, true)
				return fmt.Errorf("rate limit: %w", err)
			}
		}
	}
	batch := make([]*eml.Message, len(msgs))
	for i, p := range msgs {
		batch[i] = p.msg
	}
	results := bm.SendBulk(ctx, batch)
	if len(results) != len(msgs) {
		// A mailer that breaks its contract: what left is not known.
		for _, p := range msgs {
			t.settle(p.row, newsletter.DeliveryUnknown, "", "the mail provider's answer did not match the request")
		}
		return fmt.Errorf("bulk mailer returned %d results for %d messages", len(results), len(msgs))
	}
	for i, p := range msgs {
		if err := e.fault(StepMailed, t.d.ID, p.row.SubscriberID); err != nil {
			return err
		}
		if stop := t.outcome(ctx, p.row, results[i].MessageID, results[i].Err); stop {
			// The provider paused: what it did not take goes back queued.
			t.releaseRest(msgs[i+1:], results[i+1:])
			return nil
		}
	}
	return nil
}

// releaseRest records the results of the messages after a paused one: a
// message the provider took is settled as sent, any other is released.
func (t *task) releaseRest(msgs []pending, results []eml.Sent) {
	for i, p := range msgs {
		if results[i].Err == nil {
			t.settle(p.row, newsletter.DeliverySent, results[i].MessageID, "")
			continue
		}
		t.release(p.row, false)
	}
}

// outcome turns what the mailer said about one row into the outcome to
// record, and reports whether the task must stop (the provider paused).
func (t *task) outcome(ctx context.Context, row *newsletter.Delivery, msgID string, err error) (stop bool) {
	e := t.e
	switch {
	case err == nil:
		t.settle(row, newsletter.DeliverySent, msgID, "")
	case errors.Is(err, eml.ErrRejected):
		t.settle(row, newsletter.DeliveryFailed, "", "rejected by the mail provider")
	case errors.Is(err, eml.ErrUnknownOutcome):
		// With a Reconciler, trying again asks it at once; without one the
		// row waits for the provider's event, or for Sweep.
		t.settle(row, newsletter.DeliveryUnknown, "", "no answer from the mail provider")
		if e.cfg.Reconciler != nil {
			t.retry = append(t.retry, row.SubscriberID)
		}
	case errors.Is(err, eml.ErrPaused):
		e.cfg.Logger.Warn("mail provider refuses to send", "digest", t.d.ID, "err", err)
		t.release(row, false)
		paused, perr := newsletter.PauseDigest(ctx, e.store, t.d.ID, pausedByProvider, e.cfg.Now())
		e.forgetDigest(t.d.ID)
		if perr != nil {
			// The digest may not be paused: try the reader again later.
			e.cfg.Logger.Error("pause digest", "digest", t.d.ID, "err", perr)
			t.retry = append(t.retry, row.SubscriberID)
			return false
		}
		if paused {
			e.cfg.Logger.Warn("digest paused", "digest", t.d.ID, "reason", pausedByProvider)
		}
		e.cfg.Logger.Warn("mail provider paused sending: digest paused, rest of the task left queued", "digest", t.d.ID)
		t.paused = true
		return true
	default: // throttled, or not sent at all: try again later
		e.cfg.Logger.Debug("send: try again later", "digest", t.d.ID, "subscriber", row.SubscriberID, "err", err)
		t.release(row, true)
	}
	return false
}

// settle notes the outcome of a row, recorded by record.
func (t *task) settle(row *newsletter.Delivery, status newsletter.DeliveryStatus, msgID, reason string) {
	t.outcomes = append(t.outcomes, newsletter.Outcome{SubscriberID: row.SubscriberID, Status: status, MessageID: msgID, Reason: reason})
}

// release notes that a claimed row goes back to queued unsent, so that the
// next delivery of the task (when again) or Sweep can claim it at once.
func (t *task) release(row *newsletter.Delivery, again bool) {
	t.settle(row, newsletter.DeliveryQueued, "", "")
	if again {
		t.retry = append(t.retry, row.SubscriberID)
	}
}

// releaseAll releases every row of msgs.
func (t *task) releaseAll(msgs []pending, again bool) {
	for _, p := range msgs {
		t.release(p.row, again)
	}
}

// record writes the task's outcomes in one call, then passes StepSettled
// for each row it settled. It writes even when ctx has ended, within
// settleTimeout: these messages have left.
func (t *task) record(ctx context.Context) error {
	if len(t.outcomes) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if _, err := t.e.store.SettleDeliveries(wctx, t.d.ID, t.outcomes, t.e.cfg.Now()); err != nil {
		// The rows stay sending: once their lease runs out they are
		// reconciled before any resend.
		return fmt.Errorf("record %d outcomes: %w", len(t.outcomes), err)
	}
	for _, o := range t.outcomes {
		if o.Status == newsletter.DeliveryQueued {
			continue
		}
		if err := t.e.fault(StepSettled, t.d.ID, o.SubscriberID); err != nil {
			return err
		}
	}
	return nil
}

// reconcile handles a row whose send outcome is unknown. Without a
// Reconciler, the row is marked unknown (if it was sending) and left for
// the provider's events or Sweep: errAwaiting. With one, the provider's
// record decides: a message that left settles the row sent
// (errReconciled); one that did not lets the row be claimed and sent now.
func (e *Engine) reconcile(ctx context.Context, digestID, subscriberID string) (*newsletter.Delivery, error) {
	if e.cfg.Reconciler == nil {
		now := e.cfg.Now()
		_, err := e.store.UpdateDelivery(ctx, digestID, subscriberID, func(r *newsletter.Delivery) error {
			if r.Status != newsletter.DeliverySending || e.leased(r, now) {
				return errAwaiting
			}
			r.Status, r.LeaseUntil, r.UpdatedAt = newsletter.DeliveryUnknown, time.Time{}, now
			r.Reason = "sender stopped before recording the outcome"
			return nil
		})
		switch {
		case errors.Is(err, errAwaiting):
		case err != nil:
			return nil, fmt.Errorf("mark unknown: %w", err)
		default:
			e.cfg.Logger.Warn("send outcome unknown: waiting for the provider's send event", "digest", digestID, "subscriber", subscriberID)
		}
		return nil, errAwaiting
	}

	msgID, found, err := e.cfg.Reconciler.Sent(ctx, digestID, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	now := e.cfg.Now()
	row, err := e.store.UpdateDelivery(ctx, digestID, subscriberID, func(r *newsletter.Delivery) error {
		switch {
		case r.Status.Settled():
			return errSettled
		case e.leased(r, now):
			return errLeased
		}
		if found {
			r.Status, r.MessageID, r.LeaseUntil, r.UpdatedAt = newsletter.DeliverySent, msgID, time.Time{}, now
			r.Reason = "reconciled with the mail provider's record"
			return nil
		}
		r.Status, r.LeaseUntil, r.Reason, r.UpdatedAt = newsletter.DeliverySending, now.Add(e.cfg.Lease), "", now
		r.Attempts++
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.cfg.Logger.Info("unknown outcome reconciled", "digest", digestID, "subscriber", subscriberID, "sent", found)
	if e.cfg.OnReconciled != nil {
		e.cfg.OnReconciled(digestID, subscriberID, found)
	}
	if found {
		return nil, errReconciled
	}
	return row, nil
}
