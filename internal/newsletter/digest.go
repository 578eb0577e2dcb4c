package newsletter

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DigestStatus is where a digest is in its life.
type DigestStatus string

// Digest statuses: a digest is built as a draft, goes out while sending and
// ends sent once every reader's delivery is settled. A sending digest is
// paused when the mail provider stops taking mail or its bounce or
// complaint rate is over the limit (see RateLimits); sending it again
// resumes it.
const (
	DigestDraft   DigestStatus = "draft"
	DigestSending DigestStatus = "sending"
	DigestPaused  DigestStatus = "paused"
	DigestSent    DigestStatus = "sent"
)

// MaxIntroLength is the longest editor's note a digest may carry.
const MaxIntroLength = 2000

// Digest is one edition of the newsletter for one frequency and period.
type Digest struct {
	ID        string       `json:"id"` // DigestID(frequency, period)
	Frequency Frequency    `json:"frequency"`
	Period    string       `json:"period"` // "2026-11-26" or "2026-W48"
	Subject   string       `json:"subject"`
	Intro     string       `json:"intro,omitempty"`
	Articles  []Article    `json:"articles"` // a snapshot taken when the digest was built
	Since     time.Time    `json:"since"`    // articles published after Since…
	Until     time.Time    `json:"until"`    // …and at or before Until
	Status    DigestStatus `json:"status"`

	// FanoutCursor is where fan-out stopped in the list of readers; it
	// advances only after a page of ledger rows was written and enqueued.
	FanoutCursor string `json:"-"`
	FanoutDone   bool   `json:"fanoutDone"`

	// PausedReason says why a paused digest stopped, for editors; it is
	// cleared when the digest resumes.
	PausedReason string `json:"pausedReason,omitempty"`
	// PausedAt is when the digest was last paused.
	PausedAt time.Time `json:"pausedAt,omitzero"`
	// Pauses counts how often the digest was paused, and SweptPauses how
	// many of those pauses fan-out has swept up after: once a paused digest
	// is sending again, fan-out re-enqueues its still-queued rows, whose
	// queue messages were acknowledged unsent while it was paused.
	Pauses      int `json:"pauses,omitempty"`
	SweptPauses int `json:"sweptPauses,omitempty"`
	// RateBaseline is the digest's counters when it last resumed from a
	// pause: bounce and complaint rates are judged on the copies sent
	// since, so that a digest an editor resumed does not pause again at
	// once on the bounces that paused it.
	RateBaseline Counters `json:"rateBaseline,omitzero"`

	CreatedAt     time.Time `json:"createdAt"`
	SendStartedAt time.Time `json:"sendStartedAt,omitzero"`
	SentAt        time.Time `json:"sentAt,omitzero"`

	// Updated lists the IDs of the articles the digest carries again
	// because they were revised after an earlier digest of its frequency
	// carried them: corrections, marked "Updated" in the email.
	Updated []string `json:"updated,omitempty"`
}

// Sections returns the sections the digest's articles cover, in order of
// first appearance.
func (d *Digest) Sections() []string {
	var out []string
	for _, a := range d.Articles {
		for _, s := range a.Sections {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Period returns the period of frequency f that contains t in loc: the
// local date for daily digests and the ISO week for weekly ones.
func Period(f Frequency, t time.Time, loc *time.Location) string {
	t = t.In(loc)
	if f == Weekly {
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	}
	return t.Format("2006-01-02")
}

// DigestID returns the deterministic ID of the digest of frequency f for a
// period, such as "daily-2026-11-26": a double click, a retried schedule and
// a redelivered event all name the same digest.
func DigestID(f Frequency, period string) string {
	return string(f) + "-" + period
}

// InstantDigestID returns the ID of the instant email for an article,
// "instant-" and the article's ID: one per article, so that an article
// published, updated and pushed again by the site is mailed once.
func InstantDigestID(articleID string) string {
	return DigestID(Instant, articleID)
}

// validArticleID reports whether id has the shape ArticleID produces.
func validArticleID(id string) bool {
	return len(id) == 24 && strings.Trim(id, "0123456789abcdef") == ""
}

// ValidDigestID reports whether id has the shape DigestID produces, so that
// junk never reaches a store key.
func ValidDigestID(id string) bool {
	f, period, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	switch Frequency(f) {
	case Instant:
		return validArticleID(period)
	case Daily:
		_, err := time.Parse("2006-01-02", period)
		return err == nil
	case Weekly:
		// Not fmt.Sscanf: it accepts signs, spaces and trailing junk ("2026-W5x").
		if len(period) != 8 || period[4:6] != "-W" || strings.Trim(period[:4]+period[6:], "0123456789") != "" {
			return false
		}
		w := int(period[6]-'0')*10 + int(period[7]-'0')
		return w >= 1 && w <= 53
	}
	return false
}

// IsUpdated reports whether the digest carries the article with the ID
// again as a correction.
func (d *Digest) IsUpdated(id string) bool { return slices.Contains(d.Updated, id) }

// CorrectionWindow is how long after its publication an article that a
// digest carried is carried again, marked Updated, when it is revised: a
// week for daily digests, two for weekly ones. Older stories change
// without a second email.
func CorrectionWindow(f Frequency) time.Duration {
	if f == Weekly {
		return 14 * 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// DefaultWindow is how far back the first digest of a frequency looks for
// articles, when there is no previous digest to start from.
func DefaultWindow(f Frequency) time.Duration {
	if f == Weekly {
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}
