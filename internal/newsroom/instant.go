package newsroom

import (
	"context"
	"fmt"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// instantSkew is how far ahead of the clock an article's publication time
// may be and still count as published now: the site's clock and ours
// differ by a little.
const instantSkew = time.Minute

// sendInstant mails a just-published article to the instant readers whose
// sections it is in, as a digest of that one article whose ID comes from
// the article's (newsletter.InstantDigestID). Creating that digest is the
// conditional write that makes the email go once, however many times the
// article arrives: an editor's submission and its retries, a push from the
// site and the pull that sees the same post. It goes through the same
// fan-out, ledger and sender as any digest, so an unsubscribe, a pause or
// a crash is handled the same way.
//
// An article published in the future (scheduled) or longer ago than
// InstantMaxAge is not mailed instantly; it reaches the digests only.
// Without a confirmed instant reader nothing is created. The
// digest is created sending: a crash before its dispatch leaves it for
// the engine's Resume, never as a draft nobody sends.
func (s *Service) sendInstant(ctx context.Context, a *newsletter.Article) error {
	now := s.cfg.Now()
	if a.PublishedAt.After(now.Add(instantSkew)) || a.PublishedAt.Before(now.Add(-s.cfg.InstantMaxAge)) {
		return nil
	}
	// The article comes again on every pull while it is fresh (the pull's
	// overlap) and with every retried submission: one read finds its email
	// made already, where the readers' query and a refused conditional
	// write (billed as a write on DynamoDB) would cost more.
	id := newsletter.InstantDigestID(a.ID)
	switch _, err := s.store.Digest(ctx, id); {
	case err == nil:
		return nil
	case newsletter.ErrorCode(err) != newsletter.ENOTFOUND:
		return fmt.Errorf("instant email for %s: %w", a.ID, err)
	}
	// No instant reader, no instant email: the digests list would fill
	// with one empty send per article.
	readers, _, err := s.store.Subscribers(ctx, newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: newsletter.Instant}, newsletter.Page{Limit: 1})
	if err != nil {
		return fmt.Errorf("instant readers: %w", err)
	}
	if len(readers) == 0 {
		return nil
	}
	d := &newsletter.Digest{
		ID: id, Frequency: newsletter.Instant, Period: a.ID,
		Subject: a.Title, Articles: []newsletter.Article{*a},
		Since: a.PublishedAt.Add(-time.Nanosecond), Until: a.PublishedAt,
		Status: newsletter.DigestSending, CreatedAt: now, SendStartedAt: now,
	}
	switch err := s.store.CreateDigest(ctx, d); {
	case newsletter.ErrorCode(err) == newsletter.ECONFLICT:
		return nil // mailed, or on its way, already
	case err != nil:
		return fmt.Errorf("instant email for %s: %w", a.ID, err)
	}
	if err := s.dispatch.Dispatch(ctx, d.ID); err != nil {
		return fmt.Errorf("instant email for %s: %w", a.ID, err)
	}
	s.cfg.Logger.Info("instant email dispatched", "digest", d.ID, "article", a.ID)
	return nil
}

// frequencyChanged returns the ArticlesAfter of a reader who goes from
// frequency from to another at now: the newest moment up to which the
// articles of their sections reached them already. An instant reader had
// every article published until now; a daily or weekly reader had those
// up to the end (Until) of the newest digest of that frequency that went
// out. It never moves an earlier ArticlesAfter back.
func (s *Service) frequencyChanged(ctx context.Context, sub *newsletter.Subscriber, from newsletter.Frequency, now time.Time) (time.Time, error) {
	after := sub.ArticlesAfter
	if from == newsletter.Instant {
		return later(after, now), nil
	}
	ds, _, err := s.store.Digests(ctx, newsletter.DigestFilter{Frequency: from}, newsletter.Page{Limit: 10})
	if err != nil {
		return time.Time{}, fmt.Errorf("digests of %s: %w", from, err)
	}
	for _, d := range ds { // newest first
		if d.Status != newsletter.DigestDraft {
			return later(after, d.Until), nil
		}
	}
	return after, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
