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
)

// Send sends the digest to the listed readers and returns those to try
// again later: throttled, leased elsewhere, or failed for a reason that
// left the message unsent. Every other reader ends sent, skipped, failed
// or unknown in the ledger.
func (e *Engine) Send(ctx context.Context, digestID string, subscriberIDs []string) (retry []string, err error) {
	d, err := e.store.Digest(ctx, digestID)
	if err != nil {
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			e.cfg.Logger.Warn("send task for a missing digest dropped", "digest", digestID)
			return nil, nil
		}
		return subscriberIDs, fmt.Errorf("send %s: %w", digestID, err)
	}
	if d.Status == newsletter.DigestDraft {
		return nil, fmt.Errorf("send %s: digest is a draft", digestID)
	}
	for i, id := range subscriberIDs {
		if ctx.Err() != nil {
			return append(retry, subscriberIDs[i:]...), ctx.Err()
		}
		again, err := e.sendOne(ctx, d, id)
		if err != nil {
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

// sendOne runs the ledger protocol for one reader. It reports whether the
// reader should be tried again later.
func (e *Engine) sendOne(ctx context.Context, d *newsletter.Digest, subscriberID string) (again bool, err error) {
	now := e.cfg.Now()
	row, err := e.store.UpdateDelivery(ctx, d.ID, subscriberID, func(r *newsletter.Delivery) error {
		switch {
		case r.Status.Settled() || r.Status == newsletter.DeliveryUnknown:
			return errSettled
		case r.Status == newsletter.DeliverySending && r.LeaseUntil.After(now):
			return errLeased
		}
		r.Status, r.LeaseUntil, r.UpdatedAt = newsletter.DeliverySending, now.Add(e.cfg.Lease), now
		r.Attempts++
		return nil
	})
	switch {
	case errors.Is(err, errSettled):
		return false, nil
	case errors.Is(err, errLeased):
		return true, nil
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		return false, nil // no ledger row: not a reader of this digest
	case err != nil:
		return true, fmt.Errorf("claim: %w", err)
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
	case !sub.Receives(d.Frequency, d.Sections()):
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
	switch {
	case err == nil:
		return false, e.settle(ctx, row, newsletter.DeliverySent, msgID, "")
	case errors.Is(err, eml.ErrRejected):
		return false, e.settle(ctx, row, newsletter.DeliveryFailed, "", "rejected by the mail provider")
	case errors.Is(err, eml.ErrUnknownOutcome):
		return false, e.settle(ctx, row, newsletter.DeliveryUnknown, "", "no answer from the mail provider")
	default: // throttled, paused, or not sent at all: try again later
		return true, e.release(ctx, row, fmt.Errorf("mailer: %w", err))
	}
}

// settle records the outcome of a claimed row.
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
	return nil
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
