package newsroom_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// countingMailer hands every message to the real outbox and keeps a copy.
type countingMailer struct {
	next *outbox.Mailer
	mu   sync.Mutex
	msgs []*eml.Message
}

func (m *countingMailer) Send(ctx context.Context, msg *eml.Message) (string, error) {
	id, err := m.next.Send(ctx, msg)
	if err == nil {
		m.mu.Lock()
		m.msgs = append(m.msgs, msg)
		m.mu.Unlock()
	}
	return id, err
}

func (m *countingMailer) to(addr string) []*eml.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*eml.Message
	for _, msg := range m.msgs {
		if msg.To == addr {
			out = append(out, msg)
		}
	}
	return out
}

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, ...delivery.Task) error { return nil }

type fixture struct {
	svc    *newsroom.Service
	store  *bolt.Store
	mailer *countingMailer
	clock  *clock
	signer *token.Signer
}

// parts are what every newsroom test builds on: a bbolt store in a
// temporary folder, a signer, the renderers, the real outbox behind a
// mailer that keeps copies, and a clock.
type parts struct {
	store    *bolt.Store
	signer   *token.Signer
	site     render.Site
	renderer *render.Renderer
	mails    *transactional.Renderer
	mailer   *countingMailer
	clock    *clock
}

func newParts(t testing.TB) *parts {
	t.Helper()
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, _ := token.NewKey()
	signer, err := token.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	site := render.Site{Name: "The Ledger", URL: "https://news.example.com", PostalAddress: "1 Marina, Lagos", Sections: newsletter.DefaultSections, Location: time.UTC}
	r, err := render.New(site)
	if err != nil {
		t.Fatal(err)
	}
	mails, err := transactional.New(site)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(filepath.Join(dir, "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)}
	return &parts{store: store, signer: signer, site: site, renderer: r, mails: mails, mailer: &countingMailer{next: ob}, clock: c}
}

// engine returns a delivery engine on the parts, sending to q.
func (p *parts) engine(q delivery.Queue) *delivery.Engine {
	return delivery.New(p.store, p.signer, p.renderer, p.mailer, q, delivery.Config{Letterhead: delivery.Letterhead{From: "The Ledger <news@example.com>", BaseURL: p.site.URL}, Now: p.clock.Now})
}

// service returns a newsroom on the parts and engine, over store.
func (p *parts) service(store newsletter.Store, engine *delivery.Engine) *newsroom.Service {
	return newsroom.New(store, p.signer, p.renderer, p.mails, p.mailer, engine, engine, newsroom.Config{Site: p.site, From: "The Ledger <news@example.com>", Now: p.clock.Now})
}

func newFixture(t testing.TB, wrap ...func(newsletter.Store) newsletter.Store) *fixture {
	t.Helper()
	p := newParts(t)
	engine := p.engine(nopQueue{})
	var svcStore newsletter.Store = p.store
	for _, w := range wrap {
		svcStore = w(svcStore)
	}
	return &fixture{svc: p.service(svcStore, engine), store: p.store, mailer: p.mailer, clock: p.clock, signer: p.signer}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := newsletter.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

func TestSubscribeStatesAndFlooding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	addr := "Reader@Example.COM"

	wantCode(t, f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: "not an address"}), newsletter.EINVALID)
	wantCode(t, f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: addr, Sections: []string{"gardening"}}), newsletter.EINVALID)
	wantCode(t, f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: addr, Frequency: "hourly"}), newsletter.EINVALID)
	if subs, _, _ := f.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{}); len(subs) != 0 {
		t.Fatalf("bad sign-ups stored %d readers, want 0", len(subs))
	}

	// Three sign-ups in a day: one confirmation email.
	for range 3 {
		if err := f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: addr, Sections: []string{"Sport"}, Source: "form"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.mailer.to("Reader@example.com")); n != 1 {
		t.Fatalf("%d confirmation emails, want 1 per day", n)
	}
	sub, err := f.store.SubscriberByEmail(ctx, "reader@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Status != newsletter.StatusPending || sub.Email != "Reader@example.com" || len(sub.Sections) != 1 || sub.Sections[0] != "sport" {
		t.Fatalf("stored %+v, want pending Reader@example.com following sport", sub)
	}
	f.clock.Add(25 * time.Hour)
	f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: addr})
	if n := len(f.mailer.to("Reader@example.com")); n != 2 {
		t.Fatalf("%d confirmation emails after a day, want 2", n)
	}

	// Confirm twice: one welcome email.
	tok := f.signer.Sign(token.Confirm, sub.ID, f.clock.Now().Add(time.Hour))
	for range 2 {
		got, err := f.svc.Confirm(ctx, tok)
		if err != nil || got.Status != newsletter.StatusConfirmed {
			t.Fatalf("confirm: %+v, %v", got, err)
		}
	}
	if n := len(f.mailer.to("Reader@example.com")); n != 3 {
		t.Fatalf("%d emails after confirming twice, want 3 (2 confirmations, 1 welcome)", n)
	}

	// A stranger's sign-up does not change a confirmed reader's choices.
	f.svc.Subscribe(ctx, newsroom.SubscribeRequest{Email: "reader@example.com", Frequency: "weekly"})
	if got, _ := f.store.Subscriber(ctx, sub.ID); got.Frequency != newsletter.Daily {
		t.Fatalf("sign-up changed a confirmed reader's frequency to %s", got.Frequency)
	}

	// After unsubscribing, the old confirmation link does not bring them back.
	if _, err := f.svc.Unsubscribe(ctx, f.signer.Sign(token.Unsubscribe, sub.ID, f.clock.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Confirm(ctx, tok)
	wantCode(t, err, newsletter.ECONFLICT)

	// Tokens for another purpose, expired or forged are refused.
	for _, bad := range []string{
		f.signer.Sign(token.Unsubscribe, sub.ID, f.clock.Now().Add(time.Hour)),
		f.signer.Sign(token.Confirm, sub.ID, f.clock.Now().Add(-time.Second)),
		tok + "x", "", strings.Repeat("A", 5000),
	} {
		_, err := f.svc.Confirm(ctx, bad)
		wantCode(t, err, newsletter.EINVALID)
	}
}

func TestDigestWindowAndIdempotence(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, _, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
	wantCode(t, err, newsletter.ECONFLICT) // no articles yet

	submit := func(url, title string) {
		t.Helper()
		if _, _, err := f.svc.SubmitArticle(ctx, newsroom.ArticleInput{URL: url, Title: title, Sections: []string{"news"}}); err != nil {
			t.Fatal(err)
		}
	}
	submit("https://ledger.example.com/a", "First")
	f.clock.Add(time.Minute)
	first, created, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Intro: "Hello"})
	if err != nil || !created || first.ID != "daily-2026-11-26" || len(first.Articles) != 1 {
		t.Fatalf("first digest %+v created=%v err=%v", first, created, err)
	}
	again, created, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
	if err != nil || created || again.ID != first.ID || again.Intro != "Hello" {
		t.Fatalf("same period gave %+v created=%v err=%v, want the first digest back", again, created, err)
	}

	submit("https://ledger.example.com/b", "Second")
	f.clock.Add(24 * time.Hour)
	next, created, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
	if err != nil || !created || next.ID != "daily-2026-11-27" {
		t.Fatalf("next day: %+v created=%v err=%v", next, created, err)
	}
	if len(next.Articles) != 1 || next.Articles[0].Title != "Second" {
		t.Fatalf("next day's digest has %d articles (%v), want only the one published since the first", len(next.Articles), next.Articles)
	}
	// A post pushed late, stamped before that digest closed, makes the next
	// one; nothing already sent comes again.
	late := f.clock.Now().Add(-time.Hour)
	if _, _, err := f.svc.SubmitArticle(ctx, newsroom.ArticleInput{URL: "https://ledger.example.com/late", Title: "Late", PublishedAt: late}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(24 * time.Hour)
	third, _, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
	if err != nil || len(third.Articles) != 1 || third.Articles[0].Title != "Late" {
		t.Fatalf("third digest %+v err=%v, want only the late article", third, err)
	}
	// A weekly digest is its own series.
	weekly, _, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "weekly"})
	if err != nil || weekly.ID != "weekly-2026-W48" || len(weekly.Articles) != 3 {
		t.Fatalf("weekly digest %+v err=%v, want weekly-2026-W48 with all three articles", weekly, err)
	}
}

func TestImportChecksEverythingFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := "email,frequency\nok@example.com,daily\nnot-an-email,daily\nother@example.com,hourly\n"
	_, err := f.svc.ImportSubscribers(ctx, strings.NewReader(bad))
	wantCode(t, err, newsletter.EINVALID)
	if msg := newsletter.ErrorMessage(err); !strings.Contains(msg, "line 3") || !strings.Contains(msg, "line 4") {
		t.Errorf("message %q should name lines 3 and 4", msg)
	}
	if subs, _, _ := f.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{}); len(subs) != 0 {
		t.Fatalf("a failed import stored %d readers, want 0", len(subs))
	}

	good := "email,status,sections\na@example.com,,politics sport\nb@example.com,unsubscribed,\n"
	res, err := f.svc.ImportSubscribers(ctx, strings.NewReader(good))
	if err != nil || res.Added != 2 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	// Importing again changes nothing, and never brings back a reader who left.
	res, err = f.svc.ImportSubscribers(ctx, strings.NewReader("email,status\na@example.com,confirmed\nb@example.com,confirmed\n"))
	if err != nil || res.Added != 0 || res.Unchanged != 1 || res.Updated != 1 {
		t.Fatalf("re-import: %+v, %v; want a's sections reset (updated), b unchanged", res, err)
	}
	if b, _ := f.store.SubscriberByEmail(ctx, "b@example.com"); b.Status != newsletter.StatusUnsubscribed {
		t.Fatalf("import resubscribed b: %s", b.Status)
	}

	// Export, then import into a fresh list: the same readers come back.
	var csv bytes.Buffer
	if err := f.svc.ExportSubscribers(ctx, &csv); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t)
	res, err = g.svc.ImportSubscribers(ctx, bytes.NewReader(csv.Bytes()))
	if err != nil || res.Added != 2 {
		t.Fatalf("round trip import: %+v, %v", res, err)
	}
	var again bytes.Buffer
	g.svc.ExportSubscribers(ctx, &again)
	if strings.Count(again.String(), "\n") != 3 || !strings.Contains(again.String(), "b@example.com,unsubscribed") {
		t.Fatalf("round trip export:\n%s", again.String())
	}
}

func TestEditorTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, tok, err := f.svc.CreateEditorToken(ctx, "Night desk", []string{"edit"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Can(newsletter.ScopeSend) || !got.Can(newsletter.ScopeEdit) {
		t.Fatalf("authenticate: %+v, %v; want the edit-only token", got, err)
	}
	for _, bad := range []string{"", secret + "x", "bs_" + strings.Repeat("A", 43), strings.Repeat("x", 1000)} {
		_, err := f.svc.Authenticate(ctx, bad)
		wantCode(t, err, newsletter.EUNAUTHORIZED)
	}
	_, _, err = f.svc.CreateEditorToken(ctx, "bad\nname", nil)
	wantCode(t, err, newsletter.EINVALID)
	_, _, err = f.svc.CreateEditorToken(ctx, "x", []string{"admin"})
	wantCode(t, err, newsletter.EINVALID)
}

// TestConcurrentTriggers: editors double-clicking and a schedule firing at
// once all get the period's one digest, and none an error.
func TestConcurrentTriggers(t *testing.T) {
	// Every trigger's lookup finds no digest and then waits until all of
	// them have looked, so all of them build while another is creating:
	// the race a double click makes, made certain.
	const n = 8
	f := newFixture(t, func(s newsletter.Store) newsletter.Store { return newMissBarrier(s, "daily-2026-11-26", n) })
	ctx := context.Background()
	if _, _, err := f.svc.SubmitArticle(ctx, newsroom.ArticleInput{URL: "https://ledger.example.com/a", Title: "First"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	ids := make(chan string, n)
	errs := make(chan error, n)
	created := make(chan bool, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, c, err := f.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
			if err != nil {
				errs <- err
				return
			}
			ids <- st.ID
			created <- c
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	close(created)
	for err := range errs {
		t.Errorf("concurrent trigger: %v", err)
	}
	for id := range ids {
		if id != "daily-2026-11-26" {
			t.Errorf("trigger got digest %q, want daily-2026-11-26", id)
		}
	}
	n1 := 0
	for c := range created {
		if c {
			n1++
		}
	}
	if n1 != 1 {
		t.Errorf("%d triggers created a digest, want exactly 1", n1)
	}
}

// missBarrier is the real store whose first n lookups of digest id that
// find nothing each wait until all n have been made: n callers that look
// before creating all look before any of them creates. Later misses do
// not wait.
type missBarrier struct {
	newsletter.Store
	id string
	n  int

	mu     sync.Mutex
	missed int
	all    chan struct{} // closed at the n-th miss
}

func newMissBarrier(s newsletter.Store, id string, n int) *missBarrier {
	return &missBarrier{Store: s, id: id, n: n, all: make(chan struct{})}
}

func (s *missBarrier) Digest(ctx context.Context, id string) (*newsletter.Digest, error) {
	d, err := s.Store.Digest(ctx, id)
	if id != s.id || newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
		return d, err
	}
	s.mu.Lock()
	s.missed++
	first := s.missed <= s.n
	if s.missed == s.n {
		close(s.all)
	}
	s.mu.Unlock()
	if first {
		// Bounded, so that a caller that never looks fails the test
		// instead of hanging it.
		select {
		case <-s.all:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("only %d of %d lookups came within 10 s", s.count(), s.n)
		}
	}
	return d, err
}

func (s *missBarrier) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missed
}
