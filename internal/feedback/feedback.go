// Package feedback processes what Amazon SES reports about the mail it
// sent — the event-publishing notifications a configuration set sends to an
// SNS topic — and applies it to the store: a permanent bounce or a
// complaint suppresses the reader for good and settles the digest's ledger
// row; a Send or Delivery event settles a row whose send outcome was
// unknown, so that it is never sent twice; a Rendering Failure or a
// Reject event, which say SES did not send the message after all, moves
// the row to failed with the reason, where the digest's counters and the
// editors' list of failed copies show it.
//
// Every change is a conditional update that only ever moves a record
// forward, so notifications may arrive twice and in any order: a duplicate
// changes nothing, and a Delivery after a Bounce does not undo the bounce.
// That is also what deduplicates by feedback ID: SES may deliver one
// feedback (one feedbackId) more than once, but it names one message, so
// one ledger row, and a row moves to bounced or complained once. The
// digest's bounce and complaint rates are counted from ledger row
// statuses, never from notifications, so a duplicate cannot count twice.
// A bounce or complaint that moves a row checks those rates and pauses the
// digest when one is over its limit (newsletter.RateLimits).
package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// ErrMalformed is wrapped by Handle's error when a notification is not an
// SES event record at all: retrying it cannot help, so the caller should
// log it and let it go.
var ErrMalformed = errors.New("malformed SES notification")

// Event types of SES event publishing (eventType), and of the older
// identity feedback notifications (notificationType), which use the same
// names for the three they share.
const (
	EventBounce    = "Bounce"
	EventComplaint = "Complaint"
	EventDelivery  = "Delivery"
	EventSend      = "Send"
	// EventReject: SES accepted the message, found a virus in it and did
	// not try to deliver it.
	EventReject = "Reject"
	// EventRenderingFailure: SES accepted a templated send (SendBulkEmail
	// answers SUCCESS for the entry) and then could not render it, so did
	// not send it.
	EventRenderingFailure = "Rendering Failure"
)

// maxReason is the most bytes of SES's own text a ledger row's reason
// keeps.
const maxReason = 300

// Bounce types. Only a permanent bounce suppresses a reader; SES retries
// transient ones itself, and an undetermined one says too little.
const (
	BouncePermanent    = "Permanent"
	BounceTransient    = "Transient"
	BounceUndetermined = "Undetermined"
)

// The message tags the delivery engine puts on every digest email: the
// digest and reader it was for. SES hands them back in mail.tags.
const (
	TagDigest     = "digest"
	TagSubscriber = "subscriber"
)

// Notification is the part of an SES event record that feedback reads;
// unknown fields are ignored. See "Contents of event data that Amazon SES
// publishes to Amazon SNS" in the SES developer guide.
type Notification struct {
	EventType string `json:"eventType"`
	// NotificationType replaces EventType in identity feedback
	// notifications (no configuration set).
	NotificationType string `json:"notificationType"`
	Mail             struct {
		MessageID   string              `json:"messageId"`
		Destination []string            `json:"destination"`
		Tags        map[string][]string `json:"tags"`
	} `json:"mail"`
	Bounce *struct {
		FeedbackID        string `json:"feedbackId"`
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		FeedbackID            string `json:"feedbackId"`
	} `json:"complaint"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	// Failure is the Rendering Failure object.
	Failure *struct {
		TemplateName string `json:"templateName"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"failure"`
}

// Type returns the notification's event type, whichever field carries it.
func (n *Notification) Type() string {
	if n.EventType != "" {
		return n.EventType
	}
	return n.NotificationType
}

// Tag returns the first value of a mail tag, or "".
func (n *Notification) Tag(name string) string {
	if v := n.Mail.Tags[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Processor applies SES notifications to the store.
type Processor struct {
	store newsletter.Store
	now   func() time.Time
	// Logger receives what each notification changed, and what was
	// ignored; slog.Default when nil. Set it before the first Handle.
	Logger *slog.Logger
	// Limits are the bounce and complaint rates above which a sending
	// digest is paused; zero fields take newsletter's defaults. Set them
	// before the first Handle.
	Limits newsletter.RateLimits
}

// New returns a processor writing to store; now is its clock (time.Now
// when nil).
func New(store newsletter.Store, now func() time.Time) *Processor {
	if now == nil {
		now = time.Now
	}
	return &Processor{store: store, now: now}
}

// errUnchanged makes an update function write nothing: the record is
// already where the notification would move it, or past it.
var errUnchanged = errors.New("unchanged")

// Handle applies one notification, the Message of an SNS record. It
// returns an error wrapping ErrMalformed when the notification cannot be
// decoded, and any other error when the store failed, in which case
// handling it again later may succeed: every step is idempotent. Event
// types it has no use for, readers and ledger rows it does not know, are
// logged and ignored.
func (p *Processor) Handle(ctx context.Context, notification []byte) error {
	var n Notification
	if err := json.Unmarshal(notification, &n); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	log := p.logger().With("event", n.Type(), "message", n.Mail.MessageID,
		"digest", n.Tag(TagDigest), "subscriber", n.Tag(TagSubscriber))
	switch n.Type() {
	case EventBounce:
		if n.Bounce == nil {
			return fmt.Errorf("%w: bounce event without a bounce object", ErrMalformed)
		}
		log = log.With("feedbackId", n.Bounce.FeedbackID)
		if n.Bounce.BounceType != BouncePermanent {
			log.Info("bounce recorded, reader kept", "bounceType", n.Bounce.BounceType, "bounceSubType", n.Bounce.BounceSubType)
			return p.transient(ctx, log, &n)
		}
		var emails []string
		for _, r := range n.Bounce.BouncedRecipients {
			emails = append(emails, r.EmailAddress)
		}
		reason := "permanent bounce: " + n.Bounce.BounceSubType
		return p.suppress(ctx, log, &n, emails, newsletter.StatusBounced, newsletter.DeliveryBounced, reason)
	case EventComplaint:
		if n.Complaint == nil {
			return fmt.Errorf("%w: complaint event without a complaint object", ErrMalformed)
		}
		log = log.With("feedbackId", n.Complaint.FeedbackID)
		var emails []string
		for _, r := range n.Complaint.ComplainedRecipients {
			emails = append(emails, r.EmailAddress)
		}
		reason := "complaint"
		if t := n.Complaint.ComplaintFeedbackType; t != "" {
			reason += ": " + t
		}
		return p.suppress(ctx, log, &n, emails, newsletter.StatusComplained, newsletter.DeliveryComplained, reason)
	case EventSend, EventDelivery:
		return p.reconcile(ctx, log, &n)
	case EventReject:
		reason := "rejected by SES"
		if n.Reject != nil && n.Reject.Reason != "" {
			reason += ": " + n.Reject.Reason
		}
		return p.fail(ctx, log, &n, reason)
	case EventRenderingFailure:
		reason := "SES could not render the email"
		if n.Failure != nil && n.Failure.ErrorMessage != "" {
			reason += ": " + n.Failure.ErrorMessage
		}
		return p.fail(ctx, log, &n, reason)
	default:
		log.Info("SES event ignored")
		return nil
	}
}

func (p *Processor) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// suppress marks each reader status (bounced or complained) and moves the
// digest's ledger row to rowStatus. A complaint outranks a bounce: a
// complained reader stays complained, a bounced one may still complain.
func (p *Processor) suppress(ctx context.Context, log *slog.Logger, n *Notification, emails []string, status newsletter.SubscriberStatus, rowStatus newsletter.DeliveryStatus, reason string) error {
	now := p.now()
	for _, email := range emails {
		email = strings.TrimSpace(email)
		sub, err := p.store.SubscriberByEmail(ctx, email)
		switch {
		case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
			log.Info("no reader with the address: nothing to suppress", "status", status)
			continue
		case err != nil:
			return fmt.Errorf("%s: reader by email: %w", n.Type(), err)
		}
		_, err = p.store.UpdateSubscriber(ctx, sub.ID, func(s *newsletter.Subscriber) error {
			if s.Status == newsletter.StatusComplained || s.Status == status {
				return errUnchanged
			}
			if status == newsletter.StatusComplained && s.UnsubscribedAt.IsZero() {
				s.UnsubscribedAt = now
			}
			s.Status, s.UpdatedAt = status, now
			return nil
		})
		switch {
		case errors.Is(err, errUnchanged), newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		case err != nil:
			return fmt.Errorf("%s: mark reader %s %s: %w", n.Type(), sub.ID, status, err)
		default:
			log.Info("reader suppressed", "reader", sub.ID, "status", status)
		}
	}
	changed, err := p.settle(ctx, log, n, rowStatus, reason, func(s newsletter.DeliveryStatus) bool {
		// Whatever the ledger said, the message went out and came back.
		return s != newsletter.DeliveryComplained && s != rowStatus
	})
	if err != nil || !changed {
		return err
	}
	// Only a row that moved can change the rates: a duplicate does not.
	digestID := n.Tag(TagDigest)
	reason, err = newsletter.CheckRates(ctx, p.store, digestID, p.Limits, now)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Type(), err)
	}
	if reason != "" {
		log.Warn("digest paused", "reason", reason)
	}
	return nil
}

// transient records a transient or undetermined bounce on the digest's
// ledger row, as its Reason, without suppressing the reader: SES retries
// such bounces itself. The bounce shows that the message left, so a row
// not yet settled is settled sent. Recording the same bounce twice
// changes nothing.
func (p *Processor) transient(ctx context.Context, log *slog.Logger, n *Notification) error {
	digestID, subscriberID := n.Tag(TagDigest), n.Tag(TagSubscriber)
	if digestID == "" || subscriberID == "" || !newsletter.ValidDigestID(digestID) {
		return nil
	}
	reason := strings.ToLower(n.Bounce.BounceType) + " bounce"
	if st := n.Bounce.BounceSubType; st != "" {
		reason += ": " + st
	}
	now := p.now()
	_, err := p.store.UpdateDelivery(ctx, digestID, subscriberID, func(d *newsletter.Delivery) error {
		switch d.Status {
		case newsletter.DeliveryQueued, newsletter.DeliverySending, newsletter.DeliveryUnknown:
			d.Status, d.LeaseUntil = newsletter.DeliverySent, time.Time{}
			if n.Mail.MessageID != "" {
				d.MessageID = n.Mail.MessageID
			}
		case newsletter.DeliverySent:
			if d.Reason == reason {
				return errUnchanged
			}
		default:
			return errUnchanged // bounced, complained, failed, skipped say more
		}
		d.Reason, d.UpdatedAt = reason, now
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return nil
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		log.Info("no ledger row for the digest and reader")
		return nil
	case err != nil:
		return fmt.Errorf("%s: ledger row %s/%s: %w", n.Type(), digestID, subscriberID, err)
	}
	log.Info("transient bounce recorded on the ledger row", "reason", reason)
	return nil
}

// reconcile settles the digest's ledger row as sent when a Send or
// Delivery event shows that a message whose outcome was unknown (or not yet
// recorded) did leave: the row is then never sent again. A row already
// settled — sent, bounced, complained — is left alone.
func (p *Processor) reconcile(ctx context.Context, log *slog.Logger, n *Notification) error {
	_, err := p.settle(ctx, log, n, newsletter.DeliverySent, "", func(s newsletter.DeliveryStatus) bool {
		switch s {
		case newsletter.DeliveryQueued, newsletter.DeliverySending, newsletter.DeliveryUnknown:
			return true
		}
		return false
	})
	return err
}

// fail moves the digest's ledger row to failed with the reason: SES said
// it did not send the message, whatever the sender recorded when SES
// accepted it (sent, or an outcome not yet known). A row that bounced or
// complained did go out, and one already failed or skipped says enough.
func (p *Processor) fail(ctx context.Context, log *slog.Logger, n *Notification, reason string) error {
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "") + "…"
	}
	_, err := p.settle(ctx, log, n, newsletter.DeliveryFailed, reason, func(s newsletter.DeliveryStatus) bool {
		switch s {
		case newsletter.DeliveryQueued, newsletter.DeliverySending, newsletter.DeliveryUnknown, newsletter.DeliverySent:
			return true
		}
		return false
	})
	if err == nil {
		log.Warn("SES did not send the email", "reason", reason)
	}
	return err
}

// settle moves the ledger row the mail tags name to status, with the
// reason given, when from allows its current status, and reports whether
// it did. Mail without the tags (a confirmation email, say) has no row.
func (p *Processor) settle(ctx context.Context, log *slog.Logger, n *Notification, status newsletter.DeliveryStatus, reason string, from func(newsletter.DeliveryStatus) bool) (changed bool, err error) {
	digestID, subscriberID := n.Tag(TagDigest), n.Tag(TagSubscriber)
	if digestID == "" || subscriberID == "" {
		return false, nil
	}
	if !newsletter.ValidDigestID(digestID) {
		log.Warn("digest tag is not a digest ID: ledger left alone")
		return false, nil
	}
	now := p.now()
	_, err = p.store.UpdateDelivery(ctx, digestID, subscriberID, func(d *newsletter.Delivery) error {
		if !from(d.Status) {
			return errUnchanged
		}
		d.Status, d.Reason, d.LeaseUntil, d.UpdatedAt = status, reason, time.Time{}, now
		if n.Mail.MessageID != "" {
			d.MessageID = n.Mail.MessageID
		}
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return false, nil
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		log.Info("no ledger row for the digest and reader")
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: ledger row %s/%s: %w", n.Type(), digestID, subscriberID, err)
	}
	log.Info("ledger row settled", "status", status)
	return true, nil
}
