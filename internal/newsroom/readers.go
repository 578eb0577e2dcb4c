package newsroom

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// SubscribeRequest is a sign-up: the address, the reader's choices and
// where the request came from (kept as the consent record).
type SubscribeRequest struct {
	Email     string
	Sections  []string
	Frequency string
	Format    string
	IP        string
	UserAgent string
	Source    string // "form", "api"…
}

// Preferences are a reader's choices.
type Preferences struct {
	Sections  []string
	Frequency string
	Format    string
}

// choices checks and normalises a reader's choices.
func (s *Service) choices(p Preferences) (sections []string, f newsletter.Frequency, format newsletter.Format, err error) {
	if sections, err = newsletter.NormalizeSections(p.Sections, s.cfg.Site.Sections); err != nil {
		return nil, "", "", err
	}
	if f, err = newsletter.ParseFrequency(p.Frequency); err != nil {
		return nil, "", "", err
	}
	if format, err = newsletter.ParseFormat(p.Format); err != nil {
		return nil, "", "", err
	}
	return sections, f, format, nil
}

// Subscribe starts a double opt-in sign-up. For every valid address it
// returns nil and says nothing about the address's state, so the answer
// cannot be used to learn who reads the paper. A new or returning reader is
// stored as pending and sent a confirmation link, at most one per address
// per ConfirmationInterval; a confirmed reader's choices are not changed by
// a stranger's sign-up; a bounced or complained address is never mailed.
//
// Nor does its timing tell: every valid sign-up reads the address once and
// writes once — it creates the reader, or records LastSignUpAt (and, when a
// confirmation is due, the reader's new choices) — and the confirmation
// email is rendered and sent by the postman, in the background unless the
// service sends inline (see Config.MailWorkers).
func (s *Service) Subscribe(ctx context.Context, req SubscribeRequest) error {
	email, err := newsletter.NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	sections, freq, format, err := s.choices(Preferences{req.Sections, req.Frequency, req.Format})
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	consent := newsletter.Consent{Time: now, IP: clean(req.IP, 64), UserAgent: clean(req.UserAgent, 512), Source: clean(req.Source, 32)}

	var sub *newsletter.Subscriber
	confirm := false
	existing, err := s.store.SubscriberByEmail(ctx, email)
	switch {
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		sub = &newsletter.Subscriber{
			ID: newID(), Email: email, Status: newsletter.StatusPending,
			Sections: sections, Frequency: freq, Format: format, Consent: consent,
			CreatedAt: now, UpdatedAt: now, ConfirmationSentAt: now, LastSignUpAt: now,
		}
		if err := s.store.CreateSubscriber(ctx, sub); err != nil {
			if newsletter.ErrorCode(err) == newsletter.ECONFLICT {
				return nil // a concurrent sign-up of the same address won
			}
			return fmt.Errorf("subscribe: %w", err)
		}
		confirm = true
	case err != nil:
		return fmt.Errorf("subscribe: %w", err)
	default:
		sub, err = s.store.UpdateSubscriber(ctx, existing.ID, func(sub *newsletter.Subscriber) error {
			sub.LastSignUpAt = now
			// Only a pending or departed reader may be (re)asked to confirm;
			// a confirmed, bounced or complained one keeps everything.
			confirm = (sub.Status == newsletter.StatusPending || sub.Status == newsletter.StatusUnsubscribed) &&
				(sub.ConfirmationSentAt.IsZero() || now.Sub(sub.ConfirmationSentAt) >= s.cfg.ConfirmationInterval)
			if confirm {
				sub.Status, sub.Consent, sub.UpdatedAt = newsletter.StatusPending, consent, now
				sub.Sections, sub.Frequency, sub.Format = sections, freq, format
				sub.ConfirmationSentAt = now
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	if !confirm {
		return nil
	}
	id, to := sub.ID, sub.Email
	return s.post.post(ctx, "confirmation", func(ctx context.Context) error {
		return s.sendConfirmation(ctx, id, to, now)
	})
}

// sendConfirmation mails the confirmation link to the reader. Subscribe
// recorded the send beforehand (as ConfirmationSentAt = stamp); if it fails,
// the record is taken back, so that the next sign-up tries again.
func (s *Service) sendConfirmation(ctx context.Context, id, to string, stamp time.Time) error {
	m, err := s.mails.Confirmation(s.link("/confirm", token.Confirm, id, s.cfg.ConfirmTTL))
	if err != nil {
		err = fmt.Errorf("render confirmation: %w", err)
	} else {
		err = s.sendMail(ctx, to, m)
	}
	if err == nil {
		return nil
	}
	if _, uerr := s.store.UpdateSubscriber(ctx, id, func(sub *newsletter.Subscriber) error {
		if sub.ConfirmationSentAt.Equal(stamp) {
			sub.ConfirmationSentAt = time.Time{}
		}
		return nil
	}); uerr != nil {
		return fmt.Errorf("%w (and unrecord confirmation: %w)", err, uerr)
	}
	return err
}

// ReaderByToken returns the reader a link is for, changing nothing: the
// pages behind GET links use it, because mail scanners follow links.
func (s *Service) ReaderByToken(ctx context.Context, tok string, p token.Purpose) (*newsletter.Subscriber, error) {
	id, err := s.signer.Verify(tok, p, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	sub, err := s.store.Subscriber(ctx, id)
	if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
		return nil, newsletter.Errorf(newsletter.EINVALID, "This link is not valid or has expired.")
	} else if err != nil {
		return nil, fmt.Errorf("reader by token: %w", err)
	}
	return sub, nil
}

// Confirm confirms a pending sign-up and sends the welcome email. It is
// idempotent: confirming twice changes nothing the second time. A link for
// an address that has since left or bounced does not bring it back.
func (s *Service) Confirm(ctx context.Context, tok string) (*newsletter.Subscriber, error) {
	sub, err := s.ReaderByToken(ctx, tok, token.Confirm)
	if err != nil {
		return nil, err
	}
	switch sub.Status {
	case newsletter.StatusConfirmed:
		return sub, nil
	case newsletter.StatusPending:
	default:
		return nil, newsletter.Errorf(newsletter.ECONFLICT, "This subscription was cancelled. Please sign up again.")
	}
	now := s.cfg.Now()
	confirmed := false
	sub, err = s.store.UpdateSubscriber(ctx, sub.ID, func(sub *newsletter.Subscriber) error {
		confirmed = sub.Status == newsletter.StatusPending
		if confirmed {
			sub.Status, sub.ConfirmedAt, sub.UpdatedAt = newsletter.StatusConfirmed, now, now
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("confirm: %w", err)
	}
	if confirmed {
		m, err := s.mails.Welcome(s.link("/preferences", token.Preferences, sub.ID, s.cfg.LinkTTL), s.link("/unsubscribe", token.Unsubscribe, sub.ID, s.cfg.LinkTTL))
		if err == nil {
			err = s.sendMail(ctx, sub.Email, m)
		}
		if err != nil {
			// The reader is confirmed either way; a lost welcome is not
			// worth failing the confirmation for.
			s.cfg.Logger.Error("welcome email", "subscriber", sub.ID, "err", err)
		}
	}
	return sub, nil
}

// Unsubscribe takes a reader off the list at once. It is idempotent, and
// a bounced or complained reader stays suppressed.
func (s *Service) Unsubscribe(ctx context.Context, tok string) (*newsletter.Subscriber, error) {
	sub, err := s.ReaderByToken(ctx, tok, token.Unsubscribe)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	wasConfirmed := false
	sub, err = s.store.UpdateSubscriber(ctx, sub.ID, func(sub *newsletter.Subscriber) error {
		wasConfirmed = sub.Status == newsletter.StatusConfirmed
		if sub.Status == newsletter.StatusConfirmed || sub.Status == newsletter.StatusPending {
			sub.Status, sub.UnsubscribedAt, sub.UpdatedAt = newsletter.StatusUnsubscribed, now, now
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	if wasConfirmed {
		m, err := s.mails.Goodbye(strings.TrimRight(s.cfg.Site.URL, "/") + "/")
		if err == nil {
			err = s.sendMail(ctx, sub.Email, m)
		}
		if err != nil {
			s.cfg.Logger.Error("goodbye email", "subscriber", sub.ID, "err", err)
		}
	}
	return sub, nil
}

// UndoWindow is how long after unsubscribing a reader may take it back
// from the goodbye page. The unsubscribe link lives for months and travels
// in every forwarded digest; without a window anyone holding an old copy
// could put a reader who left back on the list.
const UndoWindow = 7 * 24 * time.Hour

// Resubscribe undoes an unsubscribe, with the token of the unsubscribe
// link: a reader who had confirmed is confirmed again, one who never had
// is pending again. It is idempotent: a reader who is on the list stays as
// they are. ECONFLICT for a bounced or complained address, and for an
// unsubscribe older than UndoWindow (that reader signs up again, with a
// fresh confirmation).
func (s *Service) Resubscribe(ctx context.Context, tok string) (*newsletter.Subscriber, error) {
	sub, err := s.ReaderByToken(ctx, tok, token.Unsubscribe)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	sub, err = s.store.UpdateSubscriber(ctx, sub.ID, func(sub *newsletter.Subscriber) error {
		switch {
		case sub.Suppressed():
			return newsletter.Errorf(newsletter.ECONFLICT, "We can no longer send email to this address.")
		case sub.Status != newsletter.StatusUnsubscribed:
			return nil
		case now.Sub(sub.UnsubscribedAt) > UndoWindow:
			return newsletter.Errorf(newsletter.ECONFLICT, "It is too late to undo this. Please sign up again.")
		}
		sub.Status, sub.UnsubscribedAt, sub.UpdatedAt = newsletter.StatusPending, time.Time{}, now
		if !sub.ConfirmedAt.IsZero() {
			sub.Status = newsletter.StatusConfirmed
		}
		return nil
	})
	if err != nil {
		return nil, wrap("resubscribe", err)
	}
	return sub, nil
}

// UpdatePreferences saves a reader's choices. It does not change whether
// the reader is subscribed.
func (s *Service) UpdatePreferences(ctx context.Context, tok string, p Preferences) (*newsletter.Subscriber, error) {
	sub, err := s.ReaderByToken(ctx, tok, token.Preferences)
	if err != nil {
		return nil, err
	}
	sections, freq, format, err := s.choices(p)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	after := sub.ArticlesAfter
	if freq != sub.Frequency {
		// What reached the reader at their old frequency must not come
		// again at the new one.
		if after, err = s.frequencyChanged(ctx, sub, sub.Frequency, now); err != nil {
			return nil, fmt.Errorf("update preferences: %w", err)
		}
	}
	sub, err = s.store.UpdateSubscriber(ctx, sub.ID, func(sub *newsletter.Subscriber) error {
		sub.Sections, sub.Frequency, sub.Format, sub.UpdatedAt = sections, freq, format, now
		sub.ArticlesAfter = later(sub.ArticlesAfter, after)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update preferences: %w", err)
	}
	return sub, nil
}

// clean keeps consent details printable and bounded.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return strings.TrimSpace(s)
}
