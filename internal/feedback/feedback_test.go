package feedback_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

const digestID = "daily-2026-11-26"

var t0 = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

// fixture is a bbolt store holding one digest going out to five readers,
// whose ledger rows stand where the notifications in testdata find them.
type fixture struct {
	store *bolt.Store
	p     *feedback.Processor
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "broadsheet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, now: t0}
	f.p = feedback.New(store, func() time.Time { return f.now })
	f.p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	if err := store.CreateDigest(ctx, &newsletter.Digest{
		ID: digestID, Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "The Ledger: Thursday 26 November 2026",
		Status: newsletter.DigestSending, FanoutDone: true, CreatedAt: t0.Add(-time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		row  newsletter.DeliveryStatus
	}{
		{"ada", newsletter.DeliverySent},
		{"bola", ""}, // no row: bounced on another message
		{"cem", newsletter.DeliverySent},
		{"dayo", newsletter.DeliveryUnknown},
		{"eko", newsletter.DeliverySending},
	} {
		id := "reader-" + r.name
		if err := store.CreateSubscriber(ctx, &newsletter.Subscriber{
			ID: id, Email: r.name + "@example.com", Status: newsletter.StatusConfirmed,
			Frequency: newsletter.Daily, Format: newsletter.FormatFull, CreatedAt: t0.Add(-48 * time.Hour), UpdatedAt: t0.Add(-48 * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
		if r.row == "" {
			continue
		}
		row := &newsletter.Delivery{DigestID: digestID, SubscriberID: id, Status: r.row, Attempts: 1, UpdatedAt: t0.Add(-time.Hour)}
		if r.row == newsletter.DeliverySending {
			row.LeaseUntil = t0.Add(time.Minute)
		}
		if r.row == newsletter.DeliverySent {
			row.MessageID = "ses-" + r.name
		}
		if err := store.CreateDelivery(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) handle(t *testing.T, notification []byte) {
	t.Helper()
	if err := f.p.Handle(context.Background(), notification); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func (f *fixture) reader(t *testing.T, name string) *newsletter.Subscriber {
	t.Helper()
	s, err := f.store.Subscriber(context.Background(), "reader-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) row(t *testing.T, name string) *newsletter.Delivery {
	t.Helper()
	d, err := f.store.Delivery(context.Background(), digestID, "reader-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) counters(t *testing.T) newsletter.Counters {
	t.Helper()
	c, err := f.store.DeliveryCounts(context.Background(), digestID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// retag returns a notification with its subscriber tag and address
// swapped for another reader's, to replay one shape for several readers.
func retag(b []byte, from, to string) []byte {
	b = bytes.ReplaceAll(b, []byte("reader-"+from), []byte("reader-"+to))
	return bytes.ReplaceAll(b, []byte(from+"@example.com"), []byte(to+"@example.com"))
}

func TestPermanentBounceSuppressesEveryRecipient(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "bounce-permanent.json"))
	for _, name := range []string{"ada", "bola"} {
		if got := f.reader(t, name); got.Status != newsletter.StatusBounced || !got.UpdatedAt.Equal(t0) {
			t.Errorf("%s: status %s updated %v, want bounced at %v", name, got.Status, got.UpdatedAt, t0)
		}
	}
	row := f.row(t, "ada")
	if row.Status != newsletter.DeliveryBounced || row.Reason != "permanent bounce: General" {
		t.Errorf("ada's row: %s (%q), want bounced", row.Status, row.Reason)
	}
	if got := f.reader(t, "cem"); got.Status != newsletter.StatusConfirmed {
		t.Errorf("cem, not in the bounce: %s, want confirmed", got.Status)
	}
	if c := f.counters(t); c.Sent != 1 || c.Bounced != 1 {
		t.Errorf("counters %+v, want 1 sent (cem), 1 bounced (ada)", c)
	}
}

func TestTransientBounceChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "bounce-transient.json"))
	if got := f.reader(t, "cem"); got.Status != newsletter.StatusConfirmed {
		t.Errorf("cem: %s, want confirmed after a transient bounce", got.Status)
	}
	if got := f.row(t, "cem"); got.Status != newsletter.DeliverySent {
		t.Errorf("cem's row: %s, want sent", got.Status)
	}
	f.handle(t, bytes.Replace(load(t, "bounce-transient.json"), []byte(`"Transient"`), []byte(`"Undetermined"`), 1))
	if got := f.reader(t, "cem"); got.Status != newsletter.StatusConfirmed {
		t.Errorf("cem: %s, want confirmed after an undetermined bounce", got.Status)
	}
}

func TestComplaintUnsubscribesForGood(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "complaint.json"))
	got := f.reader(t, "cem")
	if got.Status != newsletter.StatusComplained || !got.UnsubscribedAt.Equal(t0) || !got.Suppressed() {
		t.Errorf("cem: status %s, unsubscribed %v; want complained at %v", got.Status, got.UnsubscribedAt, t0)
	}
	if row := f.row(t, "cem"); row.Status != newsletter.DeliveryComplained || row.Reason != "complaint: abuse" {
		t.Errorf("cem's row: %s (%q), want complained", row.Status, row.Reason)
	}
	if c := f.counters(t); c.Complained != 1 || c.Sent != 1 {
		t.Errorf("counters %+v, want 1 complained (cem), 1 sent (ada)", c)
	}
}

func TestSendAndDeliveryReconcile(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "delivery.json"))
	f.handle(t, load(t, "send.json"))
	for _, tc := range []struct{ name, msgID string }{
		{"dayo", "0100019a7c191be4-delivery-dayo-000000"}, // unknown → sent
		{"eko", "0100019a7c191be4-send-eko-000000"},       // sending → sent
	} {
		row := f.row(t, tc.name)
		if row.Status != newsletter.DeliverySent || row.MessageID != tc.msgID || !row.LeaseUntil.IsZero() || !row.UpdatedAt.Equal(t0) {
			t.Errorf("%s's row: %+v, want sent with message %s", tc.name, row, tc.msgID)
		}
	}
	if c := f.counters(t); c.Sent != 4 || c.Unknown != 0 || c.Sending != 0 {
		t.Errorf("counters %+v, want 4 sent", c)
	}
	// A Delivery for a row already sent keeps its message ID.
	f.handle(t, retag(load(t, "delivery.json"), "dayo", "ada"))
	if row := f.row(t, "ada"); row.MessageID != "ses-ada" {
		t.Errorf("ada's message ID %q changed by a later delivery event", row.MessageID)
	}
}

// TestRenderingFailureAndRejectFail: SES accepted both messages (the
// sender recorded one sent, the other's outcome was unknown) and then did
// not send them; each row becomes failed with SES's reason, counted, and
// a later Send or Delivery event does not make it sent again.
func TestRenderingFailureAndRejectFail(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "rendering-failure.json"))
	f.handle(t, load(t, "reject.json"))
	for _, tc := range []struct{ name, reason, msgID string }{
		{"ada", "SES could not render the email: Attribute 'lb' is not present in the rendering data.", "0100019a7c191be4-render-ada-000000"},
		{"dayo", "rejected by SES: Bad content", "0100019a7c191be4-reject-dayo-000000"},
	} {
		row := f.row(t, tc.name)
		if row.Status != newsletter.DeliveryFailed || row.Reason != tc.reason || row.MessageID != tc.msgID || !row.UpdatedAt.Equal(t0) {
			t.Errorf("%s's row: %+v, want failed (%q) with message %s", tc.name, row, tc.reason, tc.msgID)
		}
		if got := f.reader(t, tc.name); got.Status != newsletter.StatusConfirmed {
			t.Errorf("%s: %s, want confirmed: the reader did nothing wrong", tc.name, got.Status)
		}
	}
	if c := f.counters(t); c.Failed != 2 || c.Sent != 1 || c.Unknown != 0 {
		t.Errorf("counters %+v, want 2 failed (ada, dayo), 1 sent (cem)", c)
	}
	f.handle(t, retag(load(t, "delivery.json"), "dayo", "ada"))
	f.handle(t, load(t, "delivery.json"))
	for _, name := range []string{"ada", "dayo"} {
		if row := f.row(t, name); row.Status != newsletter.DeliveryFailed {
			t.Errorf("%s's row: %s after a delivery event, want failed to stay", name, row.Status)
		}
	}
	// A bounced row went out: a reject for it changes nothing.
	f.handle(t, retag(load(t, "bounce-permanent.json"), "ada", "cem"))
	f.handle(t, retag(load(t, "reject.json"), "dayo", "cem"))
	if row := f.row(t, "cem"); row.Status != newsletter.DeliveryBounced {
		t.Errorf("cem's row: %s, want bounced", row.Status)
	}
}

// TestFailureReasonIsBounded: SES's error text is kept to a few hundred
// bytes, valid UTF-8.
func TestFailureReasonIsBounded(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("é", 400)
	f.handle(t, bytes.Replace(load(t, "rendering-failure.json"), []byte("Attribute 'lb' is not present in the rendering data."), []byte(long), 1))
	row := f.row(t, "ada")
	if len(row.Reason) > 310 || !utf8.ValidString(row.Reason) || !strings.HasPrefix(row.Reason, "SES could not render the email: éé") {
		t.Errorf("reason of %d bytes: %q", len(row.Reason), row.Reason)
	}
}

// TestDuplicatesChangeNothing replays every notification: the second
// round must not write at all (UpdatedAt stays at the first round's time).
func TestDuplicatesChangeNothing(t *testing.T) {
	f := newFixture(t)
	files := []string{"bounce-permanent.json", "bounce-transient.json", "complaint.json", "delivery.json", "send.json", "rendering-failure.json", "reject.json"}
	for _, name := range files {
		f.handle(t, load(t, name))
	}
	before := f.counters(t)
	type state struct {
		sub *newsletter.Subscriber
		row *newsletter.Delivery
	}
	snapshot := map[string]state{}
	for _, name := range []string{"ada", "cem", "dayo", "eko"} {
		snapshot[name] = state{f.reader(t, name), f.row(t, name)}
	}
	f.now = t0.Add(time.Hour)
	for _, name := range files {
		f.handle(t, load(t, name))
	}
	if after := f.counters(t); after != before {
		t.Errorf("counters %+v after duplicates, want %+v", after, before)
	}
	for name, s := range snapshot {
		if got := f.reader(t, name); got.Status != s.sub.Status || !got.UpdatedAt.Equal(s.sub.UpdatedAt) {
			t.Errorf("%s: %s at %v after duplicates, want %s at %v", name, got.Status, got.UpdatedAt, s.sub.Status, s.sub.UpdatedAt)
		}
		if got := f.row(t, name); got.Status != s.row.Status || !got.UpdatedAt.Equal(s.row.UpdatedAt) {
			t.Errorf("%s's row: %s at %v after duplicates, want %s at %v", name, got.Status, got.UpdatedAt, s.row.Status, s.row.UpdatedAt)
		}
	}
}

func TestAnyOrder(t *testing.T) {
	t.Run("delivery after bounce", func(t *testing.T) {
		f := newFixture(t)
		f.handle(t, load(t, "bounce-permanent.json"))
		f.handle(t, retag(load(t, "delivery.json"), "dayo", "ada"))
		f.handle(t, retag(load(t, "send.json"), "eko", "ada"))
		if row := f.row(t, "ada"); row.Status != newsletter.DeliveryBounced {
			t.Errorf("ada's row: %s, want bounced to stay bounced", row.Status)
		}
	})
	t.Run("bounce after unknown outcome", func(t *testing.T) {
		f := newFixture(t)
		f.handle(t, retag(load(t, "bounce-permanent.json"), "ada", "dayo"))
		if row := f.row(t, "dayo"); row.Status != newsletter.DeliveryBounced {
			t.Errorf("dayo's row: %s, want bounced: the bounce shows it was sent", row.Status)
		}
	})
	t.Run("bounce after complaint", func(t *testing.T) {
		f := newFixture(t)
		f.handle(t, load(t, "complaint.json"))
		f.handle(t, retag(load(t, "bounce-permanent.json"), "ada", "cem"))
		if got := f.reader(t, "cem"); got.Status != newsletter.StatusComplained {
			t.Errorf("cem: %s, want complained never downgraded to bounced", got.Status)
		}
		if row := f.row(t, "cem"); row.Status != newsletter.DeliveryComplained {
			t.Errorf("cem's row: %s, want complained", row.Status)
		}
	})
	t.Run("complaint after bounce", func(t *testing.T) {
		f := newFixture(t)
		f.handle(t, retag(load(t, "bounce-permanent.json"), "ada", "cem"))
		f.handle(t, load(t, "complaint.json"))
		if got := f.reader(t, "cem"); got.Status != newsletter.StatusComplained {
			t.Errorf("cem: %s, want complained: a complaint outranks a bounce", got.Status)
		}
	})
}

func TestIgnored(t *testing.T) {
	for _, tc := range []struct{ name, notification string }{
		{"open event", `{"eventType":"Open","mail":{"messageId":"x","tags":{"digest":["daily-2026-11-26"],"subscriber":["reader-dayo"]}},"open":{"ipAddress":"192.0.2.1"}}`},
		{"no event type", `{"mail":{"messageId":"x"}}`},
		{"stranger bounces", `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"nobody@example.com"}]},"mail":{"messageId":"x"}}`},
		{"no ledger row", `{"eventType":"Delivery","mail":{"messageId":"x","tags":{"digest":["daily-2026-11-26"],"subscriber":["reader-bola"]}}}`},
		{"junk digest tag", `{"eventType":"Send","mail":{"messageId":"x","tags":{"digest":["../../etc"],"subscriber":["reader-dayo"]}}}`},
		{"identity notification", `{"notificationType":"Delivery","mail":{"messageId":"x"},"delivery":{"recipients":["dayo@example.com"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.counters(t)
			f.handle(t, []byte(tc.notification))
			if after := f.counters(t); after != before {
				t.Errorf("counters %+v, want %+v unchanged", after, before)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	f := newFixture(t)
	for _, bad := range []string{
		"Successfully validated SNS topic for Amazon SES event publishing.",
		`{"eventType": 5}`,
		`["Bounce"]`,
		`{"eventType":"Bounce","mail":{"messageId":"x"}}`,
		``,
	} {
		if err := f.p.Handle(context.Background(), []byte(bad)); !errors.Is(err, feedback.ErrMalformed) {
			t.Errorf("Handle(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// failingStore fails every lookup by address, as a store that is down does.
type failingStore struct{ newsletter.Store }

func (failingStore) SubscriberByEmail(context.Context, string) (*newsletter.Subscriber, error) {
	return nil, errors.New("connection reset")
}

func TestStoreErrorsAreReturnedForRetry(t *testing.T) {
	f := newFixture(t)
	p := feedback.New(failingStore{f.store}, nil)
	p.Logger = f.p.Logger
	err := p.Handle(context.Background(), load(t, "complaint.json"))
	if err == nil || errors.Is(err, feedback.ErrMalformed) {
		t.Errorf("Handle with a failing store = %v, want a retryable error", err)
	}
}

// TestTransientBounceRecordedOnRow: a transient bounce is written on the
// ledger row as its reason, once; a row whose outcome was unknown is
// settled sent by it, since the message left.
func TestTransientBounceRecordedOnRow(t *testing.T) {
	f := newFixture(t)
	f.handle(t, load(t, "bounce-transient.json"))
	row := f.row(t, "cem")
	if row.Status != newsletter.DeliverySent || row.Reason != "transient bounce: MailboxFull" || !row.UpdatedAt.Equal(t0) {
		t.Fatalf("cem's row %s (%q) at %v, want sent with the transient bounce at %v", row.Status, row.Reason, row.UpdatedAt, t0)
	}
	f.now = t0.Add(time.Hour)
	f.handle(t, load(t, "bounce-transient.json"))
	if got := f.row(t, "cem"); !got.UpdatedAt.Equal(t0) {
		t.Errorf("duplicate transient bounce rewrote the row at %v", got.UpdatedAt)
	}
	f.handle(t, retag(load(t, "bounce-transient.json"), "cem", "dayo"))
	if got := f.row(t, "dayo"); got.Status != newsletter.DeliverySent || got.Reason == "" {
		t.Errorf("dayo's unknown row after a transient bounce: %s (%q), want sent with the bounce", got.Status, got.Reason)
	}
	if got := f.reader(t, "dayo"); got.Status != newsletter.StatusConfirmed {
		t.Errorf("dayo: %s, want confirmed after a transient bounce", got.Status)
	}
}

// TestDuplicatesCountOnceInRates: the rates that pause a digest come from
// ledger row statuses, so one feedback (one feedbackId) replayed many
// times counts once. With 2 copies out and a 60 % bounce limit, one bounce
// (50 %) must not pause the digest however often it is replayed; counted
// twice it would (67 %). A complaint then pauses it.
func TestDuplicatesCountOnceInRates(t *testing.T) {
	f := newFixture(t)
	f.p.Limits = newsletter.RateLimits{MaxBounceRate: 0.6, MinSample: 2}
	for range 5 {
		f.handle(t, load(t, "bounce-permanent.json"))
	}
	if c := f.counters(t); c.Bounced != 1 {
		t.Fatalf("counters %+v after 5 copies of one bounce, want 1 bounced", c)
	}
	d, err := f.store.Digest(context.Background(), digestID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != newsletter.DigestSending {
		t.Fatalf("digest %s (%q) after one bounce in 2, want still sending", d.Status, d.PausedReason)
	}
	f.handle(t, load(t, "complaint.json"))
	d, _ = f.store.Digest(context.Background(), digestID)
	if d.Status != newsletter.DigestPaused || !strings.Contains(d.PausedReason, "complaint rate") {
		t.Errorf("digest %s (%q) after a complaint, want paused for its complaint rate", d.Status, d.PausedReason)
	}
}

// TestShuffledReplays: every notification delivered three times in random
// orders ends where delivering each once does.
func TestShuffledReplays(t *testing.T) {
	files := []string{"bounce-permanent.json", "bounce-transient.json", "complaint.json", "delivery.json", "send.json", "rendering-failure.json", "reject.json"}
	type final struct {
		sub newsletter.SubscriberStatus
		row newsletter.DeliveryStatus
	}
	state := func(f *fixture) map[string]final {
		out := map[string]final{}
		for _, name := range []string{"ada", "cem", "dayo", "eko"} {
			out[name] = final{f.reader(t, name).Status, f.row(t, name).Status}
		}
		return out
	}
	once := newFixture(t)
	for _, name := range files {
		once.handle(t, load(t, name))
	}
	want := state(once)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 10 {
		f := newFixture(t)
		var all []string
		for range 3 {
			all = append(all, files...)
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, name := range all {
			f.handle(t, load(t, name))
		}
		if got := state(f); !maps.Equal(got, want) {
			t.Errorf("trial %d (%v): %v, want %v", trial, all, got, want)
		}
	}
}
