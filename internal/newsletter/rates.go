package newsletter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RateLimits are the bounce and complaint rates above which a digest stops
// sending. Defaults sit below the levels at which SES reviews an account
// (5 % bounces, 0.1 % complaints) and Gmail starts rejecting bulk mail
// (0.3 % spam reports).
type RateLimits struct {
	// MaxBounceRate is the largest tolerated bounced/(sent+bounced+
	// complained): 0.02 when zero. 1 or more never pauses.
	MaxBounceRate float64
	// MaxComplaintRate is the largest tolerated complained/(sent+bounced+
	// complained): 0.0005 when zero. 1 or more never pauses.
	MaxComplaintRate float64
	// MinSample is how many copies must have gone out (sent, bounced or
	// complained) before the rates are judged at all: 200 when zero, so
	// that 1 bounce in the first 10 copies does not pause a digest.
	MinSample int64
}

// Default rate limits.
const (
	DefaultMaxBounceRate    = 0.02
	DefaultMaxComplaintRate = 0.0005
	DefaultRateSample       = 200
)

// WithDefaults returns l with zero fields set to the defaults.
func (l RateLimits) WithDefaults() RateLimits {
	if l.MaxBounceRate <= 0 {
		l.MaxBounceRate = DefaultMaxBounceRate
	}
	if l.MaxComplaintRate <= 0 {
		l.MaxComplaintRate = DefaultMaxComplaintRate
	}
	if l.MinSample <= 0 {
		l.MinSample = DefaultRateSample
	}
	return l
}

// Over reports whether the counters of a digest are over the limits, and
// if so why, in words for an editor. Rates come from ledger row statuses,
// one row per reader, so a notification delivered twice cannot count
// twice.
func (l RateLimits) Over(c Counters) (reason string, over bool) {
	l = l.WithDefaults()
	out := c.Sent + c.Bounced + c.Complained
	if out < l.MinSample || out == 0 {
		return "", false
	}
	if r := float64(c.Complained) / float64(out); r > l.MaxComplaintRate {
		return fmt.Sprintf("complaint rate %.2f%% (%d of %d) is over the limit of %.2f%%", 100*r, c.Complained, out, 100*l.MaxComplaintRate), true
	}
	if r := float64(c.Bounced) / float64(out); r > l.MaxBounceRate {
		return fmt.Sprintf("bounce rate %.2f%% (%d of %d) is over the limit of %.2f%%", 100*r, c.Bounced, out, 100*l.MaxBounceRate), true
	}
	return "", false
}

// errNotSending makes PauseDigest's update write nothing.
var errNotSending = errors.New("digest not sending")

// PauseDigest moves a sending digest to paused with the reason given, and
// reports whether it did; a digest in any other status is left alone.
// ENOTFOUND.
func PauseDigest(ctx context.Context, store Store, digestID, reason string, now time.Time) (bool, error) {
	_, err := store.UpdateDigest(ctx, digestID, func(d *Digest) error {
		if d.Status != DigestSending {
			return errNotSending
		}
		d.Status, d.PausedReason, d.PausedAt = DigestPaused, reason, now
		d.Pauses++
		return nil
	})
	switch {
	case errors.Is(err, errNotSending):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("pause digest %s: %w", digestID, err)
	}
	return true, nil
}

// Since returns the counters c less those of an earlier moment, b.
func (c Counters) Since(b Counters) Counters {
	return Counters{
		Total: c.Total - b.Total, Queued: c.Queued - b.Queued, Sending: c.Sending - b.Sending,
		Sent: c.Sent - b.Sent, Skipped: c.Skipped - b.Skipped, Failed: c.Failed - b.Failed,
		Unknown: c.Unknown - b.Unknown, Bounced: c.Bounced - b.Bounced, Complained: c.Complained - b.Complained,
	}
}

// errWithinLimits makes CheckRates' update write nothing.
var errWithinLimits = errors.New("rates within limits")

// CheckRates pauses a sending digest whose bounce or complaint rate, over
// the copies sent since it last resumed (Digest.RateBaseline), is over
// the limits l, and returns the reason when it did. This is the one place
// the rule is applied: the sender calls it after every task, and the
// feedback processor after every bounce or complaint it records.
func CheckRates(ctx context.Context, store Store, digestID string, l RateLimits, now time.Time) (reason string, err error) {
	c, err := store.DeliveryCounts(ctx, digestID)
	if err != nil {
		return "", fmt.Errorf("check rates of %s: %w", digestID, err)
	}
	if c.Bounced+c.Complained == 0 {
		return "", nil // the common case, without reading the digest
	}
	_, err = store.UpdateDigest(ctx, digestID, func(d *Digest) error {
		if d.Status != DigestSending {
			return errNotSending
		}
		r, over := l.Over(c.Since(d.RateBaseline))
		if !over {
			return errWithinLimits
		}
		reason = r
		d.Status, d.PausedReason, d.PausedAt = DigestPaused, r, now
		d.Pauses++
		return nil
	})
	switch {
	case errors.Is(err, errNotSending), errors.Is(err, errWithinLimits):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("check rates of %s: %w", digestID, err)
	}
	return reason, nil
}
