package feedback_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// FuzzHandle feeds arbitrary notifications to the processor, on a real
// bbolt store holding one confirmed reader with a ledger row. It checks
// that Handle never panics; that bytes which are not JSON, and JSON that is
// not an SES event, come back as ErrMalformed or are ignored, never as
// another error (SNS would retry those for nothing); and that the reader is
// suppressed only by a permanent bounce or a complaint that names it.
func FuzzHandle(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add([]byte(strings.ReplaceAll(string(b), "ada@example.com", "ADA@example.com ")))
	}
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"eventType":"Bounce"}`, `{"eventType":"Complaint","complaint":null}`,
		`{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"ada@example.com"}]}}`,
		`{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"\u0000\r\n"}]},"mail":{"tags":{"digest":["daily-2026-11-26"],"subscriber":["reader-ada"]}}}`,
		`{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"x@y"},{"emailAddress":""}]}}`,
		`{"eventType":"Delivery","mail":{"messageId":"m","tags":{"digest":["../../etc"],"subscriber":["reader-ada"]}}}`,
		`{"eventType":"Send","mail":{"tags":{"digest":["daily-2026-11-26"],"subscriber":["` + strings.Repeat("z", 3000) + `"]}}}`,
		`{"eventType":"Bounce","bounce":[],"mail":{}}`, `{"mail":{"tags":{"digest":"x"}}}`,
	} {
		f.Add([]byte(s))
	}

	ctx := context.Background()
	store, err := bolt.Open(filepath.Join(f.TempDir(), "broadsheet.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	p := feedback.New(store, func() time.Time { return t0 })
	p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := store.CreateDigest(ctx, &newsletter.Digest{
		ID: digestID, Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "The Ledger",
		Status: newsletter.DigestSending, FanoutDone: true, CreatedAt: t0.Add(-time.Hour),
	}); err != nil {
		f.Fatal(err)
	}
	const readerID = "reader-ada"
	if err := store.CreateSubscriber(ctx, &newsletter.Subscriber{
		ID: readerID, Email: "ada@example.com", Status: newsletter.StatusConfirmed,
		Frequency: newsletter.Daily, Format: newsletter.FormatFull, CreatedAt: t0.Add(-48 * time.Hour), UpdatedAt: t0.Add(-48 * time.Hour),
	}); err != nil {
		f.Fatal(err)
	}
	if err := store.CreateDelivery(ctx, &newsletter.Delivery{DigestID: digestID, SubscriberID: readerID, Status: newsletter.DeliveryUnknown, Attempts: 1, UpdatedAt: t0.Add(-time.Hour)}); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, notification []byte) {
		err := p.Handle(ctx, notification)
		if !json.Valid(notification) && !errors.Is(err, feedback.ErrMalformed) {
			t.Fatalf("Handle(%q): got error %v, want ErrMalformed for bytes that are not JSON", notification, err)
		}
		if err != nil && !errors.Is(err, feedback.ErrMalformed) {
			t.Fatalf("Handle(%q): got error %v, want nil or ErrMalformed on a healthy store", notification, err)
		}
		sub, serr := store.Subscriber(ctx, readerID)
		if serr != nil {
			t.Fatalf("reader after Handle: %v", serr)
		}
		if sub.Status == newsletter.StatusConfirmed {
			return
		}
		if !names(notification, sub.Email) {
			t.Fatalf("Handle(%q) made the reader %s, but the notification does not suppress %s", notification, sub.Status, sub.Email)
		}
		// Put the reader back for the next input.
		if _, err := store.UpdateSubscriber(ctx, readerID, func(s *newsletter.Subscriber) error {
			s.Status, s.UnsubscribedAt = newsletter.StatusConfirmed, time.Time{}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// names reports whether notification is a permanent bounce or a complaint
// that names email.
func names(notification []byte, email string) bool {
	var n feedback.Notification
	if json.Unmarshal(notification, &n) != nil {
		return false
	}
	var addrs []string
	switch {
	case n.Type() == feedback.EventBounce && n.Bounce != nil && n.Bounce.BounceType == feedback.BouncePermanent:
		for _, r := range n.Bounce.BouncedRecipients {
			addrs = append(addrs, r.EmailAddress)
		}
	case n.Type() == feedback.EventComplaint && n.Complaint != nil:
		for _, r := range n.Complaint.ComplainedRecipients {
			addrs = append(addrs, r.EmailAddress)
		}
	}
	for _, a := range addrs {
		if newsletter.EmailKey(strings.TrimSpace(a)) == newsletter.EmailKey(email) {
			return true
		}
		if norm, err := newsletter.NormalizeEmail(a); err == nil && newsletter.EmailKey(norm) == newsletter.EmailKey(email) {
			return true
		}
	}
	return false
}
