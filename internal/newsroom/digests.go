package newsroom

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
)

// DigestRequest asks for the digest of a frequency for the current period.
type DigestRequest struct {
	Frequency string
	Intro     string
	Send      bool // start sending at once
}

// DigestStatus is a digest with its delivery counters.
type DigestStatus struct {
	*newsletter.Digest
	Counters newsletter.Counters `json:"counters"`
}

// CreateDigest builds the digest of a frequency for the current period, from
// the articles published since the previous digest of that frequency. The
// digest's ID is deterministic, so a second request in the same period
// returns the same digest (created is false) and never makes another.
func (s *Service) CreateDigest(ctx context.Context, req DigestRequest) (st *DigestStatus, created bool, err error) {
	freq, err := newsletter.ParseFrequency(req.Frequency)
	if err != nil {
		return nil, false, err
	}
	if freq == newsletter.Instant {
		return nil, false, newsletter.Errorf(newsletter.EINVALID, "Instant emails go out on their own as each article is published; build a daily or weekly digest.")
	}
	intro := strings.TrimSpace(req.Intro)
	if utf8.RuneCountInString(intro) > newsletter.MaxIntroLength || !utf8.ValidString(intro) {
		return nil, false, newsletter.Errorf(newsletter.EINVALID, "Intro must be at most %d characters of text.", newsletter.MaxIntroLength)
	}
	now := s.cfg.Now()
	period := newsletter.Period(freq, now, s.cfg.Site.Location)
	id := newsletter.DigestID(freq, period)

	d, err := s.store.Digest(ctx, id)
	switch {
	case err == nil:
	case newsletter.ErrorCode(err) != newsletter.ENOTFOUND:
		return nil, false, fmt.Errorf("create digest: %w", err)
	default:
		if d, err = s.buildDigest(ctx, id, freq, period, intro); err != nil {
			// A concurrent request may have created this period's digest
			// between our lookup and the build, which then found its
			// articles already carried: that digest is the answer.
			if newsletter.ErrorCode(err) != newsletter.ECONFLICT {
				return nil, false, err
			}
			existing, gerr := s.store.Digest(ctx, id)
			if gerr != nil {
				return nil, false, err
			}
			d = existing
			break
		}
		switch err := s.store.CreateDigest(ctx, d); {
		case err == nil:
			created = true
		case newsletter.ErrorCode(err) == newsletter.ECONFLICT:
			// A concurrent request built it first: use theirs.
			if d, err = s.store.Digest(ctx, id); err != nil {
				return nil, false, fmt.Errorf("create digest: %w", err)
			}
		default:
			return nil, false, fmt.Errorf("create digest: %w", err)
		}
	}
	if req.Send {
		st, err := s.Send(ctx, id)
		return st, created, err
	}
	st, err = s.status(ctx, d)
	return st, created, err
}

// buildDigest picks the articles for a new digest: those published up to
// now and not yet in a digest of the frequency. The window reaches back
// one period before the previous digest closed, so an article that arrives
// late with an earlier publication time (a post pushed after the digest
// went out) still makes the next digest; the previous digests in that
// window say which articles they already carried.
//
// It also carries again, marked Updated, each article published within
// the correction window that an earlier digest carried and that has been
// revised since: the latest digest that carried it holds the revision it
// mailed, so a correction is marked once, in the next digest only.
func (s *Service) buildDigest(ctx context.Context, id string, freq newsletter.Frequency, period, intro string) (*newsletter.Digest, error) {
	now := s.cfg.Now()
	grace := newsletter.DefaultWindow(freq)
	since := now.Add(-grace)
	corrections := now.Add(-newsletter.CorrectionWindow(freq))
	mailed := map[string]newsletter.Article{} // the latest copy each article went out as
	cursor := ""
	for first := true; ; first = false {
		prev, next, err := s.store.Digests(ctx, newsletter.DigestFilter{Frequency: freq}, newsletter.Page{Cursor: cursor, Limit: 10})
		if err != nil {
			return nil, fmt.Errorf("previous digests: %w", err)
		}
		if first && len(prev) > 0 {
			since = prev[0].Until.Add(-grace)
		}
		done := next == ""
		for _, d := range prev {
			// An older digest holds only articles published before both
			// windows: a digest never carries an article published after
			// its Until.
			if !d.Until.After(since) && d.Until.Before(corrections) {
				done = true
				break
			}
			for _, a := range d.Articles {
				if _, ok := mailed[a.ID]; !ok { // digests come newest first
					mailed[a.ID] = a
				}
			}
		}
		if done {
			break
		}
		cursor = next
	}
	d := &newsletter.Digest{
		ID: id, Frequency: freq, Period: period, Intro: intro,
		Since: since, Until: now, Status: newsletter.DigestDraft, CreatedAt: now,
	}
	var revised []newsletter.Article
	from := since
	if corrections.Before(from) {
		from = corrections
	}
	cursor = ""
	for len(d.Articles) < s.cfg.MaxArticles {
		as, next, err := s.store.Articles(ctx, newsletter.ArticleFilter{After: from, Until: now}, newsletter.Page{Cursor: cursor, Limit: s.cfg.MaxArticles})
		if err != nil {
			return nil, fmt.Errorf("articles for digest: %w", err)
		}
		for _, a := range as {
			last, carried := mailed[a.ID]
			switch {
			case !carried && a.PublishedAt.After(since) && len(d.Articles) < s.cfg.MaxArticles:
				d.Articles = append(d.Articles, *a)
			case carried && a.PublishedAt.After(corrections) && a.RevisedAt.After(last.RevisedAt):
				revised = append(revised, *a)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// New stories first; corrections take what room is left.
	for _, a := range revised {
		if len(d.Articles) >= s.cfg.MaxArticles {
			break
		}
		d.Articles = append(d.Articles, a)
		d.Updated = append(d.Updated, a.ID)
	}
	if len(d.Articles) == 0 {
		return nil, newsletter.Errorf(newsletter.ECONFLICT, "No new articles since the last %s digest.", freq)
	}
	d.Subject = s.subject(d)
	return d, nil
}

// subject names the edition: "The Ledger: Thursday 26 November 2026", or
// "The Ledger: week of 23 November 2026" for a weekly digest.
func (s *Service) subject(d *newsletter.Digest) string {
	t := d.Until.In(s.cfg.Site.Location)
	if d.Frequency == newsletter.Weekly {
		monday := t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
		return s.cfg.Site.Name + ": week of " + monday.Format("2 January 2006")
	}
	return s.cfg.Site.Name + ": " + t.Format("Monday 2 January 2006")
}

// Digest returns a digest with its counters. ENOTFOUND.
func (s *Service) Digest(ctx context.Context, id string) (*DigestStatus, error) {
	d, err := s.digest(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.status(ctx, d)
}

func (s *Service) digest(ctx context.Context, id string) (*newsletter.Digest, error) {
	if !newsletter.ValidDigestID(id) {
		return nil, newsletter.Errorf(newsletter.ENOTFOUND, "Digest not found.")
	}
	d, err := s.store.Digest(ctx, id)
	return d, wrap("digest", err)
}

func (s *Service) status(ctx context.Context, d *newsletter.Digest) (*DigestStatus, error) {
	c, err := s.store.DeliveryCounts(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("digest counters: %w", err)
	}
	return &DigestStatus{Digest: d, Counters: c}, nil
}

// Deliveries lists the ledger rows of a digest whose status f names (all
// when empty), ordered by reader ID, a page at a time: with status failed,
// the copies that did not go out and why (a rejection, a rendering failure
// SES reported afterwards, retries given up). ENOTFOUND for no such
// digest; EINVALID for a status that is not one.
func (s *Service) Deliveries(ctx context.Context, digestID string, f newsletter.DeliveryFilter, p newsletter.Page) ([]*newsletter.Delivery, string, error) {
	if f.Status != "" && !slices.Contains(newsletter.DeliveryStatuses, f.Status) {
		return nil, "", newsletter.Errorf(newsletter.EINVALID, "Status must be one of: %s.", joinStatuses())
	}
	if _, err := s.digest(ctx, digestID); err != nil {
		return nil, "", err
	}
	rows, next, err := s.store.Deliveries(ctx, digestID, f, p)
	return rows, next, wrap("deliveries", err)
}

// joinStatuses lists the delivery statuses for an error message.
func joinStatuses() string {
	names := make([]string, len(newsletter.DeliveryStatuses))
	for i, st := range newsletter.DeliveryStatuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// Digests lists digests, newest first.
func (s *Service) Digests(ctx context.Context, f newsletter.DigestFilter, p newsletter.Page) ([]*newsletter.Digest, string, error) {
	ds, next, err := s.store.Digests(ctx, f, p)
	return ds, next, wrap("digests", err)
}

// Send starts sending a digest to its readers. It is idempotent: sending a
// digest that is already going out resumes it, and a sent digest is left
// as it is. A paused digest goes back to sending, its reason cleared, and
// the dispatch puts its still-queued readers back on the queue; readers
// already sent are not sent again.
func (s *Service) Send(ctx context.Context, id string) (*DigestStatus, error) {
	if _, err := s.digest(ctx, id); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	// Bounce and complaint rates start again from here on a resume.
	baseline, err := s.store.DeliveryCounts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("send digest: %w", err)
	}
	var resumed bool
	d, err := s.store.UpdateDigest(ctx, id, func(d *newsletter.Digest) error {
		resumed = false
		switch d.Status {
		case newsletter.DigestDraft:
			d.Status, d.SendStartedAt = newsletter.DigestSending, now
		case newsletter.DigestPaused:
			d.Status, d.PausedReason, d.RateBaseline, resumed = newsletter.DigestSending, "", baseline, true
		}
		return nil
	})
	if err != nil {
		return nil, wrap("send digest", err)
	}
	if d.Status == newsletter.DigestSending {
		if err := s.dispatch.Dispatch(ctx, d.ID); err != nil {
			return nil, fmt.Errorf("send digest: %w", err)
		}
		s.cfg.Logger.Info("digest dispatched", "digest", d.ID, "resumed", resumed)
	}
	return s.status(ctx, d)
}

// Preview renders a digest for a variant exactly as a reader of that
// variant gets it; the personal links are sample ones.
func (s *Service) Preview(ctx context.Context, id string, v render.Variant) (html, text []byte, err error) {
	d, err := s.digest(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if v.Format, err = newsletter.ParseFormat(string(v.Format)); err != nil {
		return nil, nil, err
	}
	if v.Sections, err = newsletter.NormalizeSections(v.Sections, nil); err != nil {
		return nil, nil, err
	}
	ed, err := s.renderer.Digest(d, v)
	if err != nil {
		return nil, nil, fmt.Errorf("preview: %w", err)
	}
	html, text = ed.Personalize(s.engine.Links("preview"))
	return html, text, nil
}

// SendTest sends the full edition of a digest to one address, with
// "[Test]" in front of the subject. It records nothing in the ledger.
func (s *Service) SendTest(ctx context.Context, id, to string) error {
	to, err := newsletter.NormalizeEmail(to)
	if err != nil {
		return err
	}
	d, err := s.digest(ctx, id)
	if err != nil {
		return err
	}
	ed, err := s.renderer.Digest(d, render.Variant{Format: newsletter.FormatFull})
	if err != nil {
		return fmt.Errorf("test send: %w", err)
	}
	msg := s.engine.Message(d, ed, to, "test", s.engine.Links("test"))
	// A one-off: the reader's bodies spliced now, under a subject of its own.
	msg.HTML, msg.Text = msg.Bodies()
	msg.Subject = "[Test] " + msg.SubjectLine()
	msg.Layout, msg.Values = nil, nil
	msg.MessageID = ""
	if _, err := s.mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("test send: %w", err)
	}
	return nil
}

// Archive lists digests that have gone out (or are going out), newest
// first: daily and weekly editions, not instant emails. A page may hold
// fewer than the limit, since drafts and instant emails are left out.
func (s *Service) Archive(ctx context.Context, p newsletter.Page) ([]*newsletter.Digest, string, error) {
	ds, next, err := s.Digests(ctx, newsletter.DigestFilter{}, p)
	if err != nil {
		return nil, "", err
	}
	out := ds[:0]
	for _, d := range ds {
		// An instant email is one article, which the site itself shows:
		// the list is of editions. Its web copy still opens by ID.
		if d.Status != newsletter.DigestDraft && d.Frequency != newsletter.Instant {
			out = append(out, d)
		}
	}
	return out, next, nil
}

// ArchivedDigest returns the web copy of a digest that has started going
// out, which is what "view in browser" links to. ENOTFOUND for a draft:
// the archive never shows an edition early.
func (s *Service) ArchivedDigest(ctx context.Context, id string) ([]byte, error) {
	d, err := s.digest(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status == newsletter.DigestDraft {
		return nil, newsletter.Errorf(newsletter.ENOTFOUND, "Digest not found.")
	}
	html, err := s.renderer.ArchiveHTML(d)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", id, err)
	}
	return html, nil
}
