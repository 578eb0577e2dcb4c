package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// site is the publication every scenario sends for.
var site = render.Site{
	Name:          "The Daily Ledger",
	URL:           "http://127.0.0.1:8080",
	PostalAddress: "The Daily Ledger Ltd\n1 Printing House Square\nLagos",
	Sections:      newsletter.DefaultSections,
	Location:      time.UTC,
}

// letterhead is what every digest email says about its sender.
var letterhead = delivery.Letterhead{
	From:              "The Daily Ledger <news@ledger.example.com>",
	UnsubscribeMailto: "unsubscribe@ledger.example.com",
	ListID:            "<daily.ledger.example.com>",
	BaseURL:           site.URL,
}

// parts are the pieces every stack shares: a fresh signing key, the digest
// renderer and the transactional emails.
type parts struct {
	signer   *token.Signer
	renderer *render.Renderer
	mails    newsroom.Transactional
}

func newParts() (*parts, error) {
	key, err := token.NewKey()
	if err != nil {
		return nil, err
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(site)
	if err != nil {
		return nil, err
	}
	mails, err := transactional.New(site)
	if err != nil {
		return nil, err
	}
	return &parts{signer: signer, renderer: renderer, mails: mails}, nil
}

// engine builds a delivery engine on the parts.
func (p *parts) engine(store newsletter.Store, m delivery.Mailer, q delivery.Queue, cfg delivery.Config) *delivery.Engine {
	cfg.Letterhead = letterhead
	return delivery.New(store, p.signer, p.renderer, m, q, cfg)
}

// service builds the newsroom on the parts.
func (p *parts) service(store newsletter.Store, m newsroom.Mailer, e *delivery.Engine, d newsroom.Dispatcher, env *runEnv) *newsroom.Service {
	return newsroom.New(store, p.signer, p.renderer, p.mails, m, e, d, newsroom.Config{
		Site: site, From: letterhead.From, Logger: env.log,
	})
}

// laptopStore opens a bbolt store and an outbox in a fresh folder; close
// removes both.
func laptopStore(env *runEnv, name string) (store *bolt.Store, box *outbox.Mailer, closeAll func(), err error) {
	dir, cleanup, err := env.tempDir(name)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err = bolt.Open(filepath.Join(dir, "broadsheet.db"))
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	box, err = outbox.New(filepath.Join(dir, "outbox"))
	if err != nil {
		store.Close()
		cleanup()
		return nil, nil, nil, err
	}
	return store, box, func() { _ = store.Close(); cleanup() }, nil
}

// readerID names reader i; readerEmail is its address.
func readerID(i int) string    { return fmt.Sprintf("reader-%06d", i) }
func readerEmail(i int) string { return fmt.Sprintf("reader-%06d@example.com", i) }

// seedReaders adds n confirmed daily readers of every section, from
// several goroutines, and returns their IDs in order.
func seedReaders(ctx context.Context, store newsletter.Store, n, workers int) ([]string, error) {
	ids := make([]string, n)
	now := time.Now().UTC()
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := &newsletter.Subscriber{
					ID: readerID(i), Email: readerEmail(i), Status: newsletter.StatusConfirmed,
					Frequency: newsletter.Daily, Format: newsletter.FormatFull,
					Consent:   newsletter.Consent{Time: now, Source: "import"},
					CreatedAt: now, UpdatedAt: now, ConfirmedAt: now,
				}
				if err := store.CreateSubscriber(ctx, s); err != nil {
					errs <- fmt.Errorf("seed reader %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		ids[i] = readerID(i)
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return ids, err
}

// seedArticles submits a few articles published an hour ago, so that a
// digest for the current period has something to carry.
func seedArticles(ctx context.Context, svc *newsroom.Service) error {
	now := time.Now()
	for i, sec := range []string{"news", "business", "sport"} {
		_, _, err := svc.SubmitArticle(ctx, newsroom.ArticleInput{
			URL:         fmt.Sprintf("https://ledger.example.com/2026/story-%d", i),
			Title:       fmt.Sprintf("Story %d", i),
			Summary:     "What happened, in two sentences. And why it matters.",
			Sections:    []string{sec},
			PublishedAt: now.Add(-time.Hour - time.Duration(i)*time.Minute),
		})
		if err != nil {
			return fmt.Errorf("seed article: %w", err)
		}
	}
	return nil
}

// mailCount is what an outbox holds: digest emails per reader, and the
// other emails (transactional ones).
type mailCount struct {
	perReader map[string]int
	other     int
}

// duplicates returns how many readers got more than one copy.
func (c mailCount) duplicates() int {
	n := 0
	for _, k := range c.perReader {
		if k > 1 {
			n++
		}
	}
	return n
}

// countOutbox reads every .eml file in dir and counts the copies of digest
// digestID per reader, by the deterministic Message-ID the engine gives
// each (<digest>.<reader>@domain).
func countOutbox(dir, digestID string) (mailCount, error) {
	c := mailCount{perReader: map[string]int{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return c, err
	}
	for _, f := range files {
		id, err := messageIDOf(f)
		if err != nil {
			return c, err
		}
		local, _, _ := strings.Cut(strings.Trim(id, "<>"), "@")
		if reader, ok := strings.CutPrefix(local, digestID+"."); ok {
			c.perReader[reader]++
		} else {
			c.other++
		}
	}
	return c, nil
}

// messageIDOf returns the Message-Id header of an .eml file.
func messageIDOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := mail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return m.Header.Get("Message-Id"), nil
}

// ledger returns every ledger row of a digest, by reader.
func ledger(ctx context.Context, store newsletter.Store, digestID string) (map[string]*newsletter.Delivery, error) {
	rows := map[string]*newsletter.Delivery{}
	cursor := ""
	for {
		page, next, err := store.Deliveries(ctx, digestID, newsletter.DeliveryFilter{}, newsletter.Page{Cursor: cursor, Limit: newsletter.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("ledger of %s: %w", digestID, err)
		}
		for _, r := range page {
			rows[r.SubscriberID] = r
		}
		if next == "" {
			return rows, nil
		}
		cursor = next
	}
}

// allDigests lists every digest in the store.
func allDigests(ctx context.Context, store newsletter.Store) ([]*newsletter.Digest, error) {
	var out []*newsletter.Digest
	cursor := ""
	for {
		page, next, err := store.Digests(ctx, newsletter.DigestFilter{}, newsletter.Page{Cursor: cursor, Limit: newsletter.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("digests: %w", err)
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// settledFinal reports whether a ledger row is where a reader may end: the
// guarantee is that every eligible reader ends sent, skipped or failed.
func settledFinal(s newsletter.DeliveryStatus) bool {
	return s == newsletter.DeliverySent || s == newsletter.DeliverySkipped || s == newsletter.DeliveryFailed
}

// dupQueue puts a share of the tasks it is given on the queue twice, as an
// at-least-once queue may deliver them; the copy goes on a little later,
// so the two also arrive out of order with other tasks.
type dupQueue struct {
	inner delivery.Queue
	share float64
	delay time.Duration
	rng   *rand.Rand // under mu

	mu       sync.Mutex
	dups     int
	total    int
	pending  int // copies not yet on the queue
	enqueued int // calls of inner.Enqueue
}

// Enqueue enqueues tasks, and copies of some of them.
func (q *dupQueue) Enqueue(ctx context.Context, tasks ...delivery.Task) error {
	if err := q.inner.Enqueue(ctx, tasks...); err != nil {
		return err
	}
	var copies []delivery.Task
	q.mu.Lock()
	q.enqueued++
	q.total += len(tasks)
	for _, t := range tasks {
		if q.rng.Float64() < q.share {
			copies = append(copies, t)
		}
	}
	q.dups += len(copies)
	if len(copies) > 0 {
		q.pending++
	}
	q.mu.Unlock()
	if len(copies) > 0 {
		go func() {
			time.Sleep(q.delay)
			_ = q.inner.Enqueue(context.WithoutCancel(ctx), copies...)
			q.mu.Lock()
			q.pending--
			q.enqueued++
			q.mu.Unlock()
		}()
	}
	return nil
}

// state returns how often the inner queue was fed and how many copies are
// still held back.
func (q *dupQueue) state() (enqueued, pending int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.enqueued, q.pending
}

// counts returns how many tasks were enqueued and how many copied.
func (q *dupQueue) counts() (total, dups int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total, q.dups
}

// idler is a queue that can say when it has drained: memqueue.
type idler interface {
	WaitIdle(ctx context.Context) error
}

// waitIdle waits until the copies dq holds back are on the queue and the
// queue has drained: a drained queue with nothing held back, and nothing
// enqueued while it drained, has nothing left to do.
func waitIdle(ctx context.Context, mq idler, dq *dupQueue) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		before, pending := dq.state()
		if err := mq.WaitIdle(ctx); err != nil {
			return fmt.Errorf("wait for the queue: %w", err)
		}
		after, _ := dq.state()
		if pending == 0 && after == before {
			return nil
		}
		time.Sleep(2 * dq.delay)
	}
}

// engineConfig is the engine's configuration in every scenario: the
// defaults, logging where the run logs.
func engineConfig(env *runEnv) delivery.Config {
	return delivery.Config{Logger: env.log}
}
