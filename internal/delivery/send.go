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

// pauseCheckEvery is how many readers a send task handles between two
// reads of its digest's status, so that a digest paused by another sender
// or by feedback stops this one soon without a read per reader.
const pauseCheckEvery = 10

// pausedByProvider is the reason a digest shows when the mail provider
// stopped taking mail.
const pausedByProvider = "the mail provider is not accepting mail (sending paused, account suspended or daily quota used up)"

// Send sends the digest to the listed readers and returns those to try
// again later: throttled, leased elsewhere, or failed for a reason that
// left the message unsent. Every other reader ends sent, skipped, failed
// or unknown in the ledger.
//
// A paused digest sends nothing: the task is acknowledged and its rows
// stay queued, for Sweep to enqueue again when the digest resumes. When
// the mailer answers eml.ErrPaused, the digest is paused, the row handed
// back to the queue, and the rest of the task left queued the same way.
func (e *Engine) Send(ctx context.Context, digestID string, subscriberIDs []string) (retry []string, err error) {
	d, err := e.store.Digest(ctx, digestID)
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
	sections := d.Sections() // once per task, not per reader
	for i, id := range subscriberIDs {
		if ctx.Err() != nil {
			return append(retry, subscriberIDs[i:]...), ctx.Err()
		}
		if i > 0 && i%pauseCheckEvery == 0 {
			if paused, err := e.paused(ctx, digestID); err != nil {
				return append(retry, subscriberIDs[i:]...), fmt.Errorf("send %s: %w", digestID, err)
			} else if paused {
				e.cfg.Logger.Info("digest paused mid-task: rest of the task left queued", "digest", digestID, "readers", len(subscriberIDs)-i)
				return retry, nil
			}
		}
		again, err := e.sendOne(ctx, d, sections, id)
		switch {
		case isCrash(err):
			return subscriberIDs, fmt.Errorf("send %s: %w", digestID, err)
		case errors.Is(err, errPaused):
			e.cfg.Logger.Warn("mail provider paused sending: digest paused, rest of the task left queued", "digest", digestID, "readers", len(subscriberIDs)-i)
			return retry, nil
		case err != nil:
			e.cfg.Logger.Error("send", "digest", digestID, "subscriber", id, "err", err)
		}
		if again {
			retry = append(retry, id)
		}
	}
	if err := e.finish(ctx, digestID); err != nil {
		return retry, err
	}
	return retry, nil
}

// paused reports whether a digest is paused now.
func (e *Engine) paused(ctx context.Context, digestID string) (bool, error) {
	d, err := e.store.Digest(ctx, digestID)
	if err != nil {
		return false, fmt.Errorf("digest status: %w", err)
	}
	return d.Status == newsletter.DigestPaused, nil
}

// sendOne runs the ledger protocol for one reader. It reports whether the
// reader should be tried again later.
func (e *Engine) sendOne(ctx context.Context, d *newsletter.Digest, sections []string, subscriberID string) (again bool, err error) {
	row, err := e.claim(ctx, d.ID, subscriberID)
	switch {
	case errors.Is(err, errSettled), errors.Is(err, errAwaiting):
		return false, nil
	case errors.Is(err, errReconciled):
		return false, e.fault(StepSettled, d.ID, subscriberID)
	case errors.Is(err, errLeased):
		return true, nil
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		return false, nil // no ledger row: not a reader of this digest
	case err != nil:
		return true, fmt.Errorf("claim: %w", err)
	}
	if err := e.fault(StepClaimed, d.ID, subscriberID); err != nil {
		return true, err
	}
	if row.Attempts > e.cfg.MaxAttempts {
		return false, e.settle(ctx, row, newsletter.DeliveryFailed, "", fmt.Sprintf("gave up after %d attempts", e.cfg.MaxAttempts))
	}

	sub, err := e.store.Subscriber(ctx, subscriberID)
	switch {
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		return false, e.settle(ctx, row, newsletter.DeliverySkipped, "", "reader erased")
	case err != nil:
		return true, e.release(ctx, row, fmt.Errorf("read reader: %w", err))
	case !sub.Receives(d.Frequency, sections):
		return false, e.settle(ctx, row, newsletter.DeliverySkipped, "", "reader is "+string(sub.Status)+" or changed preferences")
	}

	ed, err := e.Edition(d, render.VariantFor(d, sub))
	if err != nil {
		return true, e.release(ctx, row, fmt.Errorf("render: %w", err))
	}
	msg := e.Message(d, ed, sub.Email, sub.ID, e.Links(sub.ID))
	if e.cfg.Limiter != nil {
		if err := e.cfg.Limiter.Wait(ctx); err != nil {
			return true, e.release(ctx, row, fmt.Errorf("rate limit: %w", err))
		}
	}
	msgID, err := e.mailer.Send(ctx, msg)
	if ferr := e.fault(StepMailed, d.ID, subscriberID); ferr != nil {
		return true, ferr
	}
	switch {
	case err == nil:
		return false, e.settle(ctx, row, newsletter.DeliverySent, msgID, "")
	case errors.Is(err, eml.ErrRejected):
		return false, e.settle(ctx, row, newsletter.DeliveryFailed, "", "rejected by the mail provider")
	case errors.Is(err, eml.ErrUnknownOutcome):
		// With a Reconciler, trying again asks it at once; without one the
		// row waits for the provider's event, or for Sweep.
		return e.cfg.Reconciler != nil, e.settle(ctx, row, newsletter.DeliveryUnknown, "", "no answer from the mail provider")
	case errors.Is(err, eml.ErrPaused):
		e.cfg.Logger.Warn("mail provider refuses to send", "digest", d.ID, "err", err)
		rerr := e.release(ctx, row, nil)
		paused, perr := newsletter.PauseDigest(ctx, e.store, d.ID, pausedByProvider, e.cfg.Now())
		if rerr != nil || perr != nil {
			// The digest may not be paused: try the reader again later.
			return true, errors.Join(rerr, perr)
		}
		if paused {
			e.cfg.Logger.Warn("digest paused", "digest", d.ID, "reason", pausedByProvider)
		}
		return false, errPaused
	default: // throttled, or not sent at all: try again later
		return true, e.release(ctx, row, fmt.Errorf("mailer: %w", err))
	}
}

// claim takes a row for sending: from queued, or — once reconciled — from
// unknown or an expired lease. It returns errSettled, errLeased,
// errAwaiting or errReconciled when there is nothing to send.
func (e *Engine) claim(ctx context.Context, digestID, subscriberID string) (*newsletter.Delivery, error) {
	now := e.cfg.Now()
	row, err := e.store.UpdateDelivery(ctx, digestID, subscriberID, func(r *newsletter.Delivery) error {
		switch {
		case r.Status.Settled():
			return errSettled
		case r.Status == newsletter.DeliverySending && r.LeaseUntil.After(now):
			return errLeased
		case r.Status != newsletter.DeliveryQueued:
			return errUncertain
		}
		r.Status, r.LeaseUntil, r.UpdatedAt = newsletter.DeliverySending, now.Add(e.cfg.Lease), now
		r.Attempts++
		return nil
	})
	if errors.Is(err, errUncertain) {
		return e.reconcile(ctx, digestID, subscriberID)
	}
	return row, err
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
			if r.Status != newsletter.DeliverySending || r.LeaseUntil.After(now) {
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
		case r.Status == newsletter.DeliverySending && r.LeaseUntil.After(now):
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

// settle records the outcome of a claimed row, then passes StepSettled.
func (e *Engine) settle(ctx context.Context, row *newsletter.Delivery, status newsletter.DeliveryStatus, msgID, reason string) error {
	_, err := e.store.UpdateDelivery(ctx, row.DigestID, row.SubscriberID, func(r *newsletter.Delivery) error {
		if r.Status.Settled() {
			return errSettled // another sender, after our lease ran out, got there first
		}
		r.Status, r.MessageID, r.Reason = status, msgID, reason
		r.LeaseUntil, r.UpdatedAt = time.Time{}, e.cfg.Now()
		return nil
	})
	if err != nil && !errors.Is(err, errSettled) {
		return fmt.Errorf("record %s for %s: %w", status, row.SubscriberID, err)
	}
	return e.fault(StepSettled, row.DigestID, row.SubscriberID)
}

// release hands a claimed row back to the queue unsent, so the next
// delivery of the task can claim it at once. It returns cause.
func (e *Engine) release(ctx context.Context, row *newsletter.Delivery, cause error) error {
	_, err := e.store.UpdateDelivery(ctx, row.DigestID, row.SubscriberID, func(r *newsletter.Delivery) error {
		if r.Status != newsletter.DeliverySending {
			return errSettled
		}
		r.Status, r.LeaseUntil, r.Reason, r.UpdatedAt = newsletter.DeliveryQueued, time.Time{}, "", e.cfg.Now()
		return nil
	})
	if err != nil && !errors.Is(err, errSettled) {
		return errors.Join(cause, fmt.Errorf("release %s: %w", row.SubscriberID, err))
	}
	return cause
}
