package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

var now = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

// faultMailer wraps the real outbox mailer. Before handing a message on it
// may answer with an injected error instead, by recipient; it counts what
// reached the outbox per recipient.
type faultMailer struct {
	next *outbox.Mailer
	mu   sync.Mutex
	sent map[string]int
	// fail returns the error for a recipient's n-th attempt (from 1), or nil.
	fail func(to string, attempt int) error
	// after, like fail, returns an error to answer after the message
	// reached the outbox: the copy left but the answer was lost.
	after    func(to string, attempt int) error
	attempts map[string]int
}

func (m *faultMailer) Send(ctx context.Context, msg *eml.Message) (string, error) {
	m.mu.Lock()
	m.attempts[msg.To]++
	n := m.attempts[msg.To]
	m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail(msg.To, n); err != nil {
			return "", err
		}
	}
	id, err := m.next.Send(ctx, msg)
	if err == nil {
		m.mu.Lock()
		m.sent[msg.To]++
		m.mu.Unlock()
		if m.after != nil {
			if err := m.after(msg.To, n); err != nil {
				return "", err
			}
		}
	}
	return id, err
}

func (m *faultMailer) count(to string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[to]
}

// syncQueue collects tasks; the test runs them when it chooses, in any
// order and as often as it likes, as SQS may.
type syncQueue struct {
	mu    sync.Mutex
	tasks []delivery.Task
}

func (q *syncQueue) Enqueue(_ context.Context, ts ...delivery.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, ts...)
	return nil
}

func (q *syncQueue) take() []delivery.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	ts := q.tasks
	q.tasks = nil
	return ts
}

type fixture struct {
	store    *bolt.Store
	engine   *delivery.Engine
	renderer *render.Renderer
	signer   *token.Signer
	mailer   *faultMailer
	queue    *syncQueue
	outbox   string
	cfg      delivery.Config
	// elapsed is how far the engine's clock has moved past now.
	elapsed atomic.Int64
}

// clock returns the fixture's time: now, moved on by advance.
func (f *fixture) clock() time.Time { return now.Add(time.Duration(f.elapsed.Load())) }

// advance moves the engine's clock on.
func (f *fixture) advance(d time.Duration) { f.elapsed.Add(int64(d)) }

// newFixture builds an engine on a real bbolt store and outbox; opts
// change its config.
func newFixture(t *testing.T, opts ...func(*fixture, *delivery.Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Site{Name: "The Ledger", URL: "https://news.example.com", PostalAddress: "1 Marina, Lagos", Sections: newsletter.DefaultSections})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(filepath.Join(dir, "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	m := &faultMailer{next: ob, sent: map[string]int{}, attempts: map[string]int{}}
	q := &syncQueue{}
	f := &fixture{store: store, renderer: r, signer: signer, mailer: m, queue: q, outbox: filepath.Join(dir, "outbox")}
	f.cfg = delivery.Config{
		Letterhead: delivery.Letterhead{From: "The Ledger <news@example.com>", UnsubscribeMailto: "unsubscribe@example.com", ListID: "<ledger.example.com>", BaseURL: "https://news.example.com"},
		Now:        f.clock,
		BatchSize:  7,
		PageSize:   10,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(f, &f.cfg)
	}
	f.engine = delivery.New(store, signer, r, m, q, f.cfg)
	return f
}

// addReaders adds n confirmed daily readers; reader i chooses the sections
// pick(i) and the format formats[i%len(formats)].
func (f *fixture) addReaders(t *testing.T, n int, pick func(i int) []string, formats ...newsletter.Format) []*newsletter.Subscriber {
	t.Helper()
	if len(formats) == 0 {
		formats = []newsletter.Format{newsletter.FormatFull}
	}
	var subs []*newsletter.Subscriber
	for i := range n {
		s := &newsletter.Subscriber{
			ID: fmt.Sprintf("r%04d", i), Email: fmt.Sprintf("reader%04d@example.com", i),
			Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily, Format: formats[i%len(formats)],
			Sections: pick(i), CreatedAt: now, UpdatedAt: now,
		}
		if err := f.store.CreateSubscriber(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	return subs
}

func (f *fixture) addDigest(t *testing.T) *newsletter.Digest {
	t.Helper()
	d := &newsletter.Digest{
		ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "The Ledger: Thursday",
		Status: newsletter.DigestSending, CreatedAt: now, Since: now.Add(-24 * time.Hour), Until: now,
		Articles: []newsletter.Article{
			{ID: "a1", URL: "https://ledger.example.com/budget", Title: "Budget passes", Sections: []string{"politics"}, PublishedAt: now},
			{ID: "a2", URL: "https://ledger.example.com/derby", Title: "Derby ends level", Sections: []string{"sport"}, PublishedAt: now},
		},
	}
	if err := f.store.CreateDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// drain runs queued tasks until none are left, putting retries back.
func (f *fixture) drain(t *testing.T) {
	t.Helper()
	for round := 0; round < 50; round++ {
		tasks := f.queue.take()
		if len(tasks) == 0 {
			return
		}
		for _, task := range tasks {
			retry, err := f.engine.Handle(context.Background(), task)
			if err != nil && task.Kind == delivery.KindFanout {
				t.Fatalf("fan-out: %v", err)
			}
			if len(retry) > 0 {
				f.queue.Enqueue(context.Background(), delivery.Task{Kind: task.Kind, DigestID: task.DigestID, SubscriberIDs: retry, Attempt: task.Attempt + 1})
			}
		}
	}
	t.Fatal("queue did not drain in 50 rounds")
}

func (f *fixture) counts(t *testing.T, id string) newsletter.Counters {
	t.Helper()
	c, err := f.store.DeliveryCounts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func all(int) []string { return nil }

// TestRendersOncePerVariant proves that the template engine runs once per
// variant, not once per reader: 60 readers in 3 section choices × 2
// formats, but "politics+sport" is the same content as "all", so 4 variants.
func TestRendersOncePerVariant(t *testing.T) {
	f := newFixture(t)
	choices := [][]string{nil, {"politics"}, {"politics", "sport"}}
	f.addReaders(t, 60, func(i int) []string { return choices[i%3] }, newsletter.FormatFull, newsletter.FormatFull, newsletter.FormatFull, newsletter.FormatLite, newsletter.FormatLite, newsletter.FormatLite)
	d := f.addDigest(t)
	before := f.renderer.Renders()
	if err := f.engine.Dispatch(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if got := f.renderer.Renders() - before; got != 4 {
		t.Errorf("template ran %d times for 60 readers, want 4 (one per variant)", got)
	}
	c := f.counts(t, d.ID)
	if c.Total != 60 || c.Sent != 60 {
		t.Errorf("counters %+v, want 60 queued and 60 sent", c)
	}
	got, err := f.store.Digest(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != newsletter.DigestSent || !got.FanoutDone {
		t.Errorf("digest status %s, fan-out done %v; want sent, true", got.Status, got.FanoutDone)
	}
	files, _ := filepath.Glob(filepath.Join(f.outbox, "*.eml"))
	if len(files) != 60 {
		t.Fatalf("%d emails in the outbox, want 60", len(files))
	}
	// Each reader's email carries that reader's own unsubscribe token.
	seen := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Read as a mail client does: a long header may be folded.
		msg, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		line := msg.Header.Get("List-Unsubscribe")
		if !strings.HasPrefix(line, "<https://") {
			t.Fatalf("%s has no List-Unsubscribe with an https link: %q", file, line)
		}
		if !strings.Contains(line, "<mailto:unsubscribe@example.com?subject=unsubscribe%20") {
			t.Fatalf("List-Unsubscribe %q lacks the mailto with the reader's token", line)
		}
		if seen[line] {
			t.Fatalf("two readers got the same unsubscribe link %s", line)
		}
		seen[line] = true
	}
}

// TestSectionsDecideWhoGetsIt: a reader whose sections the digest does not
// cover gets no ledger row at all.
func TestSectionsDecideWhoGetsIt(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 4, func(i int) []string { return [][]string{{"culture"}, {"sport"}, nil, {"opinion", "politics"}}[i] })
	d := f.addDigest(t)
	f.engine.Dispatch(context.Background(), d.ID)
	f.drain(t)
	if c := f.counts(t, d.ID); c.Total != 3 || c.Sent != 3 {
		t.Errorf("counters %+v, want 3 rows, 3 sent (the culture reader has nothing)", c)
	}
	if f.mailer.count("reader0000@example.com") != 0 {
		t.Error("culture-only reader got a digest with no culture")
	}
}

// TestRedeliveryNeverSendsTwice delivers every task three times, in
// reverse order, as an at-least-once queue may: each reader gets one copy.
func TestRedeliveryNeverSendsTwice(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 25, all)
	d := f.addDigest(t)
	f.engine.Dispatch(context.Background(), d.ID)
	f.engine.Dispatch(context.Background(), d.ID) // a double click
	for round := 0; round < 10; round++ {
		tasks := f.queue.take()
		if len(tasks) == 0 {
			break
		}
		for rep := 0; rep < 3; rep++ {
			for i := len(tasks) - 1; i >= 0; i-- {
				if _, err := f.engine.Handle(context.Background(), tasks[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := range 25 {
		if n := f.mailer.count(fmt.Sprintf("reader%04d@example.com", i)); n != 1 {
			t.Errorf("reader %d got %d copies, want 1", i, n)
		}
	}
	if c := f.counts(t, d.ID); c.Total != 25 || c.Sent != 25 {
		t.Errorf("counters %+v, want 25 rows, all sent", c)
	}
}

// TestUnsubscribeMidSend: a reader who leaves after fan-out but before the
// send step is skipped, not mailed.
func TestUnsubscribeMidSend(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 10, all)
	d := f.addDigest(t)
	f.engine.Dispatch(context.Background(), d.ID)
	fan := f.queue.take()
	for _, task := range fan {
		f.engine.Handle(context.Background(), task) // fan-out only: send tasks are now queued
	}
	if _, err := f.store.UpdateSubscriber(context.Background(), "r0003", func(s *newsletter.Subscriber) error {
		s.Status = newsletter.StatusUnsubscribed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if n := f.mailer.count("reader0003@example.com"); n != 0 {
		t.Errorf("unsubscribed reader got %d copies, want 0", n)
	}
	if c := f.counts(t, d.ID); c.Sent != 9 || c.Skipped != 1 {
		t.Errorf("counters %+v, want 9 sent, 1 skipped", c)
	}
	row, err := f.store.Delivery(context.Background(), d.ID, "r0003")
	if err != nil || row.Status != newsletter.DeliverySkipped || row.Reason == "" {
		t.Errorf("ledger row %+v (err %v), want skipped with a reason", row, err)
	}
}

// TestMailerOutcomes: throttling is retried until it goes through; a
// rejection fails that reader only; an unknown outcome is recorded and not
// blindly resent; a reader who keeps failing ends failed, not lost.
func TestMailerOutcomes(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 6, all)
	d := f.addDigest(t)
	var throttled atomic.Int32
	f.mailer.fail = func(to string, attempt int) error {
		switch to {
		case "reader0001@example.com":
			if attempt <= 3 {
				throttled.Add(1)
				return fmt.Errorf("ses: %w", eml.ErrThrottled)
			}
		case "reader0002@example.com":
			return fmt.Errorf("ses: %w", eml.ErrRejected)
		case "reader0003@example.com":
			return fmt.Errorf("ses: %w", eml.ErrUnknownOutcome)
		case "reader0004@example.com":
			return errors.New("connection refused") // never leaves
		}
		return nil
	}
	f.engine.Dispatch(context.Background(), d.ID)
	f.drain(t)

	want := map[string]newsletter.DeliveryStatus{
		"r0000": newsletter.DeliverySent, "r0001": newsletter.DeliverySent, "r0002": newsletter.DeliveryFailed,
		"r0003": newsletter.DeliveryUnknown, "r0004": newsletter.DeliveryFailed, "r0005": newsletter.DeliverySent,
	}
	for id, status := range want {
		row, err := f.store.Delivery(context.Background(), d.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if row.Status != status {
			t.Errorf("%s: status %s, want %s (reason %q)", id, row.Status, status, row.Reason)
		}
	}
	if throttled.Load() != 3 || f.mailer.count("reader0001@example.com") != 1 {
		t.Errorf("throttled reader: %d throttles, %d copies; want 3 and 1", throttled.Load(), f.mailer.count("reader0001@example.com"))
	}
	if n := f.mailer.attempts["reader0003@example.com"]; n != 1 {
		t.Errorf("unknown-outcome reader tried %d times, want 1 (no blind resend)", n)
	}
	c := f.counts(t, d.ID)
	if c.Total != 6 || c.Sent != 3 || c.Failed != 2 || c.Unknown != 1 || c.Queued+c.Sending != 0 {
		t.Errorf("counters %+v, want 6 = 3 sent + 2 failed + 1 unknown", c)
	}
	got, _ := f.store.Digest(context.Background(), d.ID)
	if got.Status != newsletter.DigestSent {
		t.Errorf("digest %s, want sent once nothing is in flight", got.Status)
	}
}

// TestResumeAfterCrash: the in-process queue loses every message in a
// crash after fan-out; Resume finds the queued rows in the ledger and the
// digest completes with one copy each.
func TestResumeAfterCrash(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 23, all)
	d := f.addDigest(t)
	f.engine.Dispatch(context.Background(), d.ID)
	for _, task := range f.queue.take() {
		f.engine.Handle(context.Background(), task)
	}
	sendTasks := f.queue.take()
	if len(sendTasks) == 0 {
		t.Fatal("fan-out enqueued nothing")
	}
	// Half the first batch goes out, then the process dies.
	f.engine.Send(context.Background(), d.ID, sendTasks[0].SubscriberIDs[:3])
	if err := f.engine.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	for i := range 23 {
		if n := f.mailer.count(fmt.Sprintf("reader%04d@example.com", i)); n != 1 {
			t.Errorf("reader %d got %d copies, want 1", i, n)
		}
	}
	got, _ := f.store.Digest(context.Background(), d.ID)
	if got.Status != newsletter.DigestSent {
		t.Errorf("digest %s after resume, want sent", got.Status)
	}
}
