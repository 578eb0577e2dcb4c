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
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
)

// site is the publication every scenario sends for.
var site = harness.Site("http://127.0.0.1:8080")

// letterhead is what every digest email says about its sender.
var letterhead = harness.Letterhead(site)

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

// laptop is a scenario's laptop stack: a bbolt store and an outbox in a
// fresh folder and the parts; start adds an engine on the in-process
// queue and the newsroom. close stops the queue and removes the folder.
type laptop struct {
	store *bolt.Store
	box   *outbox.Mailer
	parts *harness.Parts
	stops []func() // run last first by close
}

// openLaptop opens a laptop stack in a fresh folder named after name.
func openLaptop(env *runEnv, name string) (*laptop, error) {
	store, box, closeAll, err := laptopStore(env, name)
	if err != nil {
		return nil, err
	}
	p, err := harness.NewParts(site)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &laptop{store: store, box: box, parts: p, stops: []func(){closeAll}}, nil
}

// close stops what start started and removes the stack's folder.
func (l *laptop) close() {
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
}

// laptopRun is how a scenario's engine and newsroom differ from the plain
// ones; every field may be left zero.
type laptopRun struct {
	engineStore  newsletter.Store                    // the engine's store: the laptop's
	serviceStore newsletter.Store                    // the newsroom's store: the laptop's
	mailer       delivery.Mailer                     // the engine's mailer: the outbox
	config       *delivery.Config                    // the engine's configuration: engineConfig
	queue        *memqueue.Options                   // the in-process queue's options: laptopQueue
	wrap         func(delivery.Queue) delivery.Queue // what the engine enqueues on, around the in-process queue
}

// laptopQueue is the in-process queue's options in most scenarios.
func laptopQueue(env *runEnv) memqueue.Options {
	return memqueue.Options{Workers: 4, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: time.Second, Logger: env.log}
}

// start builds the engine on an in-process queue, starts the queue until
// close, and builds the newsroom on the engine.
func (l *laptop) start(ctx context.Context, env *runEnv, run laptopRun) (*delivery.Engine, *memqueue.Queue, *newsroom.Service) {
	engineStore, serviceStore, mailer := run.engineStore, run.serviceStore, run.mailer
	if engineStore == nil {
		engineStore = l.store
	}
	if serviceStore == nil {
		serviceStore = l.store
	}
	if mailer == nil {
		mailer = l.box
	}
	cfg := engineConfig(env)
	if run.config != nil {
		cfg = *run.config
	}
	opts := laptopQueue(env)
	if run.queue != nil {
		opts = *run.queue
	}
	engine := l.parts.Engine(engineStore, mailer, nil, cfg)
	mq := memqueue.New(engine, opts)
	var q delivery.Queue = mq
	if run.wrap != nil {
		q = run.wrap(mq)
	}
	engine.SetQueue(q)
	qctx, stopQueue := context.WithCancel(ctx)
	l.stops = append(l.stops, stopQueue)
	mq.Start(qctx)
	return engine, mq, l.parts.Service(serviceStore, l.box, engine, engine, env.log)
}

// readerID names reader i; readerEmail is its address.
func readerID(i int) string    { return fmt.Sprintf("reader-%06d", i) }
func readerEmail(i int) string { return fmt.Sprintf("reader-%06d@example.com", i) }

// seedReaders adds n confirmed daily readers of every section, from
// several goroutines, and returns their IDs in order.
func seedReaders(ctx context.Context, store newsletter.Store, n, workers int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = readerID(i)
	}
	now := time.Now().UTC()
	err := harness.SeedReaders(ctx, store, n, workers, func(i int) *newsletter.Subscriber {
		return harness.Confirmed(readerID(i), readerEmail(i), now)
	})
	return ids, err
}

// seedArticles submits a few articles published an hour ago, so that a
// digest for the current period has something to carry.
func seedArticles(ctx context.Context, svc *newsroom.Service) error {
	now := time.Now()
	sections := []string{"news", "business", "sport"}
	return harness.SubmitArticles(ctx, svc, len(sections), func(i int) newsroom.ArticleInput {
		return newsroom.ArticleInput{
			URL:         fmt.Sprintf("https://ledger.example.com/2026/story-%d", i),
			Title:       fmt.Sprintf("Story %d", i),
			Summary:     "What happened, in two sentences. And why it matters.",
			Sections:    []string{sections[i]},
			PublishedAt: now.Add(-time.Hour - time.Duration(i)*time.Minute),
		}
	})
}

// seedAll seeds n readers (see seedReaders) and the articles, and
// returns the readers' IDs in order.
func seedAll(ctx context.Context, store newsletter.Store, svc *newsroom.Service, n, workers int) ([]string, error) {
	ids, err := seedReaders(ctx, store, n, workers)
	if err != nil {
		return nil, err
	}
	return ids, seedArticles(ctx, svc)
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
