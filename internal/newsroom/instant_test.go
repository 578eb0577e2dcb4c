package newsroom_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// sending is the laptop's pipeline end to end: bbolt, the engine on the
// in-process queue, and the real outbox behind a mailer that keeps copies.
type sending struct {
	*parts
	svc   *newsroom.Service
	queue *memqueue.Queue
}

func newSending(t *testing.T) *sending {
	t.Helper()
	p := newParts(t)
	engine := p.engine(nil)
	q := memqueue.New(engine, memqueue.Options{Workers: 2})
	engine.SetQueue(q)
	q.Start(context.Background())
	t.Cleanup(q.Close)
	return &sending{parts: p, svc: p.service(p.store, engine), queue: q}
}

func (s *sending) signToken(t *testing.T, p token.Purpose, id string) string {
	t.Helper()
	return s.signer.Sign(p, id, s.clock.Now().Add(24*time.Hour))
}

func (s *sending) reader(t *testing.T, email string, f newsletter.Frequency, sections ...string) *newsletter.Subscriber {
	t.Helper()
	now := s.clock.Now()
	sub := &newsletter.Subscriber{ID: "r-" + email, Email: email, Status: newsletter.StatusConfirmed, Frequency: f, Format: newsletter.FormatFull, Sections: sections, CreatedAt: now, UpdatedAt: now, ConfirmedAt: now}
	if err := s.store.CreateSubscriber(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

func (s *sending) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.queue.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// titles returns, for each message to addr, which of titles its text holds.
func (s *sending) titles(addr string, titles ...string) [][]string {
	var out [][]string
	for _, m := range s.mailer.to(addr) {
		_, text := m.Bodies()
		var got []string
		for _, title := range titles {
			if bytes.Contains(text, []byte(title)) {
				got = append(got, title)
			}
		}
		out = append(out, got)
	}
	return out
}

// TestInstantEmail: an article just published goes at once to the instant
// readers of its sections, one email each, however often it is submitted
// or ingested; daily readers and instant readers of other sections get
// nothing; an old or a scheduled article is not mailed instantly.
func TestInstantEmail(t *testing.T) {
	s := newSending(t)
	ctx := context.Background()
	s.reader(t, "sport@example.com", newsletter.Instant, "sport")
	s.reader(t, "all@example.com", newsletter.Instant)
	s.reader(t, "politics@example.com", newsletter.Instant, "politics")
	s.reader(t, "daily@example.com", newsletter.Daily)

	in := newsroom.ArticleInput{URL: "https://news.example.com/2026/11/26/eagles-win", Title: "Eagles win in Uyo", Summary: "A late goal.", Sections: []string{"sport"}}
	for range 3 { // a retried submission
		if _, _, err := s.svc.SubmitArticle(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// The same story from the site, pushed and pulled.
	wp := in
	wp.Source, wp.RevisedAt = "https://news.example.com/?p=77", s.clock.Now()
	for range 2 {
		if _, _, err := s.svc.IngestArticle(ctx, wp); err != nil {
			t.Fatal(err)
		}
	}
	s.wait(t)
	for addr, want := range map[string]int{"sport@example.com": 1, "all@example.com": 1, "politics@example.com": 0, "daily@example.com": 0} {
		got := s.titles(addr, "Eagles win in Uyo")
		if len(got) != want {
			t.Errorf("%s: got %d emails, want %d", addr, len(got), want)
		}
		for _, g := range got {
			if len(g) != 1 {
				t.Errorf("%s: the email does not carry the article", addr)
			}
		}
	}
	if msgs := s.mailer.to("sport@example.com"); len(msgs) == 1 && msgs[0].SubjectLine() != "Eagles win in Uyo" {
		t.Errorf("subject: got %q, want the article's title", msgs[0].SubjectLine())
	}

	now := s.clock.Now()
	for _, a := range []newsroom.ArticleInput{
		{URL: "https://news.example.com/old", Title: "From last week", Summary: "Old.", Sections: []string{"sport"}, PublishedAt: now.Add(-7 * 24 * time.Hour)},
		{URL: "https://news.example.com/later", Title: "Embargoed", Summary: "Not yet.", Sections: []string{"sport"}, PublishedAt: now.Add(3 * time.Hour)},
	} {
		if _, _, err := s.svc.SubmitArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	s.wait(t)
	if n := len(s.mailer.to("sport@example.com")); n != 1 {
		t.Errorf("sport reader: %d emails after an old and a scheduled article, want still 1", n)
	}

	ds, _, err := s.svc.Archive(ctx, newsletter.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Errorf("archive lists %d digests, want none: an instant email is not an edition", len(ds))
	}
	if _, err := s.svc.ArchivedDigest(ctx, newsletter.InstantDigestID(newsletter.ArticleID(in.URL))); err != nil {
		t.Errorf("the instant email's web copy: %v", err)
	}
	if _, _, err := s.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "instant"}); newsletter.ErrorCode(err) != newsletter.EINVALID {
		t.Errorf("an editor's instant digest: got %v, want EINVALID", err)
	}
}

// TestFrequencyChangeSendsNoArticleTwice: a reader who goes from instant
// to daily does not find the articles mailed to them instantly in their
// first daily digest, which carries only what is new to them; the other
// daily readers get the whole digest; and the digest is still rendered
// once per variant, not per reader.
func TestFrequencyChangeSendsNoArticleTwice(t *testing.T) {
	s := newSending(t)
	ctx := context.Background()
	switcher := s.reader(t, "switcher@example.com", newsletter.Instant)
	s.reader(t, "daily1@example.com", newsletter.Daily)
	s.reader(t, "daily2@example.com", newsletter.Daily)

	first := newsroom.ArticleInput{URL: "https://news.example.com/first", Title: "Budget passes", Summary: "At last.", Sections: []string{"politics"}}
	if _, _, err := s.svc.SubmitArticle(ctx, first); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	if n := len(s.mailer.to("switcher@example.com")); n != 1 {
		t.Fatalf("instant emails before the change: got %d, want 1", n)
	}

	s.clock.Add(time.Hour)
	prefs := s.signToken(t, token.Preferences, switcher.ID)
	if _, err := s.svc.UpdatePreferences(ctx, prefs, newsroom.Preferences{Frequency: "daily", Format: "full"}); err != nil {
		t.Fatal(err)
	}
	s.clock.Add(time.Hour)
	second := newsroom.ArticleInput{URL: "https://news.example.com/second", Title: "Rain in Lagos", Summary: "Floods.", Sections: []string{"politics"}}
	if _, _, err := s.svc.SubmitArticle(ctx, second); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	if n := len(s.mailer.to("switcher@example.com")); n != 1 {
		t.Fatalf("instant emails after the change: got %d, want still 1", n)
	}

	s.clock.Add(8 * time.Hour)
	renders := s.renderer.Renders()
	if _, _, err := s.svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true}); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	got := s.titles("switcher@example.com", "Budget passes", "Rain in Lagos")
	if len(got) != 2 || len(got[1]) != 1 || got[1][0] != "Rain in Lagos" {
		t.Errorf("switcher's emails carry %v, want the instant one and then a daily with only [Rain in Lagos]", got)
	}
	for _, addr := range []string{"daily1@example.com", "daily2@example.com"} {
		if got := s.titles(addr, "Budget passes", "Rain in Lagos"); len(got) != 1 || len(got[0]) != 2 {
			t.Errorf("%s: got %v, want one daily with both articles", addr, got)
		}
	}
	if n := s.renderer.Renders() - renders; n != 2 {
		t.Errorf("daily digest renders: got %d, want 2 (the whole digest, and the switcher's variant)", n)
	}
}

// instantCalls counts the store calls an instant email costs.
type instantCalls struct {
	newsletter.Store
	mu                        sync.Mutex
	subscribers, createDigest int
}

func (c *instantCalls) Subscribers(ctx context.Context, f newsletter.SubscriberFilter, p newsletter.Page) ([]*newsletter.Subscriber, string, error) {
	c.mu.Lock()
	c.subscribers++
	c.mu.Unlock()
	return c.Store.Subscribers(ctx, f, p)
}

func (c *instantCalls) CreateDigest(ctx context.Context, d *newsletter.Digest) error {
	c.mu.Lock()
	c.createDigest++
	c.mu.Unlock()
	return c.Store.CreateDigest(ctx, d)
}

// TestInstantEmailAgainCostsOneRead: an article that comes again while
// fresh (a retried submission, the pull's overlap) finds its instant
// email made by one read: no readers' query, no refused write.
func TestInstantEmailAgainCostsOneRead(t *testing.T) {
	p := newParts(t)
	engine := p.engine(nopQueue{})
	counted := &instantCalls{Store: p.store}
	svc := p.service(counted, engine)
	s := &sending{parts: p, svc: svc}
	s.reader(t, "instant@example.com", newsletter.Instant)
	in := newsroom.ArticleInput{URL: "https://news.example.com/again", Title: "Again", Summary: "Twice.", Sections: []string{"news"}}
	for range 3 {
		if _, _, err := svc.SubmitArticle(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if counted.subscribers != 1 || counted.createDigest != 1 {
		t.Errorf("three submissions: %d readers' queries and %d digest creations, want 1 and 1", counted.subscribers, counted.createDigest)
	}
}
