package newsroom_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// countingStore counts the subscriber reads and writes that reach the real
// store.
type countingStore struct {
	newsletter.Store
	reads, writes atomic.Int64
}

func (s *countingStore) SubscriberByEmail(ctx context.Context, email string) (*newsletter.Subscriber, error) {
	s.reads.Add(1)
	return s.Store.SubscriberByEmail(ctx, email)
}

func (s *countingStore) Subscriber(ctx context.Context, id string) (*newsletter.Subscriber, error) {
	s.reads.Add(1)
	return s.Store.Subscriber(ctx, id)
}

func (s *countingStore) CreateSubscriber(ctx context.Context, sub *newsletter.Subscriber) error {
	s.writes.Add(1)
	return s.Store.CreateSubscriber(ctx, sub)
}

func (s *countingStore) UpdateSubscriber(ctx context.Context, id string, fn func(*newsletter.Subscriber) error) (*newsletter.Subscriber, error) {
	s.writes.Add(1)
	return s.Store.UpdateSubscriber(ctx, id, fn)
}

// gateMailer holds every message until the gate opens, and can fail.
type gateMailer struct {
	gate chan struct{}
	fail atomic.Bool
	mu   sync.Mutex
	sent []string
}

func (m *gateMailer) Send(ctx context.Context, msg *eml.Message) (string, error) {
	select {
	case <-m.gate:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if m.fail.Load() {
		return "", errors.New("mailer down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg.To)
	return "id", nil
}

func (m *gateMailer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// TestSubscribeWorkShape checks what removes the timing tell: every valid
// sign-up, whatever the state of the address, reads it once and writes it
// once, and returns without waiting for the confirmation email, which the
// background sender delivers.
func TestSubscribeWorkShape(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &countingStore{Store: db}
	key, _ := token.NewKey()
	signer, _ := token.NewSigner(key)
	site := render.Site{Name: "The Ledger", URL: "https://news.example.com", PostalAddress: "1 Marina, Lagos", Sections: newsletter.DefaultSections, Location: time.UTC}
	r, err := render.New(site)
	if err != nil {
		t.Fatal(err)
	}
	mails, err := transactional.New(site)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)}
	m := &gateMailer{gate: make(chan struct{})}
	engine := delivery.New(db, signer, r, m, nopQueue{}, delivery.Config{Letterhead: delivery.Letterhead{From: "The Ledger <news@example.com>", BaseURL: site.URL}, Now: c.Now})
	svc := newsroom.New(store, signer, r, mails, m, engine, engine, newsroom.Config{
		Site: site, From: "The Ledger <news@example.com>", Now: c.Now, MailWorkers: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})

	seed := func(email string, status newsletter.SubscriberStatus, sentAgo time.Duration) {
		t.Helper()
		sub := &newsletter.Subscriber{ID: "id-" + email, Email: email, Status: status, Frequency: newsletter.Daily, Format: newsletter.FormatFull, CreatedAt: c.Now(), UpdatedAt: c.Now()}
		if sentAgo > 0 {
			sub.ConfirmationSentAt = c.Now().Add(-sentAgo)
		}
		if err := db.CreateSubscriber(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	seed("pending@example.com", newsletter.StatusPending, time.Hour)
	seed("due@example.com", newsletter.StatusPending, 25*time.Hour)
	seed("confirmed@example.com", newsletter.StatusConfirmed, 0)
	seed("left@example.com", newsletter.StatusUnsubscribed, 0)
	seed("bounced@example.com", newsletter.StatusBounced, 0)

	for _, tc := range []struct {
		email  string
		mailed bool
	}{
		{"new@example.com", true},
		{"pending@example.com", false}, // one confirmation per address per day
		{"due@example.com", true},
		{"confirmed@example.com", false},
		{"left@example.com", true},
		{"bounced@example.com", false},
	} {
		store.reads.Store(0)
		store.writes.Store(0)
		before := m.count()
		// The mailer is held shut: Subscribe must return all the same.
		if err := svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: tc.email, Frequency: "weekly", Source: "form"}); err != nil {
			t.Fatalf("Subscribe(%s): %v", tc.email, err)
		}
		if r, w := store.reads.Load(), store.writes.Load(); r != 1 || w != 1 {
			t.Errorf("Subscribe(%s): %d reads and %d writes, want 1 and 1", tc.email, r, w)
		}
		sub, err := db.SubscriberByEmail(ctx, tc.email)
		if err != nil {
			t.Fatal(err)
		}
		if !sub.LastSignUpAt.Equal(c.Now()) {
			t.Errorf("Subscribe(%s): LastSignUpAt %v, want %v", tc.email, sub.LastSignUpAt, c.Now())
		}
		if tc.mailed != (sub.Frequency == newsletter.Weekly) {
			t.Errorf("Subscribe(%s): frequency %s; a sign-up may change choices only when it asks for confirmation", tc.email, sub.Frequency)
		}
		switch tc.email {
		case "confirmed@example.com", "bounced@example.com":
			if sub.Status != newsletter.StatusConfirmed && sub.Status != newsletter.StatusBounced || !sub.ConfirmationSentAt.IsZero() {
				t.Errorf("Subscribe(%s) changed the reader: %+v", tc.email, sub)
			}
		}
		if m.count() != before {
			t.Fatalf("Subscribe(%s) sent mail through a closed gate", tc.email)
		}
	}
	close(m.gate)
	if err := svc.WaitForMail(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.count(); got != 3 {
		t.Errorf("sent %d confirmations, want 3 (new, due, left)", got)
	}

	// A failed send is taken back, so the next sign-up tries again.
	m.fail.Store(true)
	if err := svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: "unlucky@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitForMail(ctx); err != nil {
		t.Fatal(err)
	}
	if sub, _ := db.SubscriberByEmail(ctx, "unlucky@example.com"); !sub.ConfirmationSentAt.IsZero() {
		t.Fatalf("failed confirmation still recorded as sent at %v", sub.ConfirmationSentAt)
	}
	m.fail.Store(false)
	c.Add(time.Minute)
	if err := svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: "unlucky@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitForMail(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.count(); got != 4 {
		t.Errorf("after a retry: %d confirmations sent, want 4", got)
	}
}
