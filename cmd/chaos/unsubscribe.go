package main

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// runUnsubscribe sends a digest while readers unsubscribe through
// newsroom.Unsubscribe with the tokens of their emails' links.
//
// The measure: a send counts as after-unsubscribe when the reader's
// unsubscribe had committed before the sender began its re-read of the
// reader (step 3 of the ledger protocol). That is what the design
// promises ("the subscriber's status is re-read at send time"): a reader
// read before the commit may still be sent to, since the send follows the
// read by a moment and no store can stop a message that a sender has
// already decided to send; those sends are counted apart as in_window and
// do not fail the run. Commit times are taken when the store's update
// returns (the commit happened no later), re-read times when the engine's
// read of the reader begins (it happened no earlier), so a send counted
// after-unsubscribe really was.
func runUnsubscribe(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "unsubscribe")
	readers := env.pick(2000, 400)
	leaving := env.pick(1000, 200)
	rng := env.rng("unsubscribe")

	lp, err := openLaptop(env, "unsubscribe")
	if err != nil {
		return err
	}
	defer lp.close()
	store, box := lp.store, lp.box
	w := &watch{reads: map[string]time.Time{}, commits: map[string]time.Time{}}
	engineStore := &readWatchStore{Store: store, w: w}
	serviceStore := &commitWatchStore{Store: store, w: w}
	mailer := &sendWatch{Mailer: box, w: w}

	// The send is paced so that it lasts a few seconds and the
	// unsubscribes land all through it.
	sendSeconds := 5.0
	cfg := engineConfig(env)
	cfg.Limiter = rate.NewLimiter(rate.Limit(float64(readers)/sendSeconds), 1)
	engine, mq, svc := lp.start(ctx, env, laptopRun{engineStore: engineStore, serviceStore: serviceStore, mailer: mailer, config: &cfg})

	ids, err := seedAll(ctx, store, svc, readers, 4)
	if err != nil {
		return err
	}
	// The tokens the readers' emails carry.
	order := rng.Perm(readers)[:leaving]
	tokens := make([]string, leaving)
	for i, k := range order {
		u, err := url.Parse(engine.Links(ids[k]).Unsubscribe)
		if err != nil {
			return fmt.Errorf("unsubscribe link: %w", err)
		}
		tokens[i] = u.Query().Get("token")
	}

	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
	if err != nil {
		return fmt.Errorf("create digest: %w", err)
	}
	// Unsubscribe from four goroutines, over the send's duration.
	pace := rate.NewLimiter(rate.Limit(float64(leaving)/(sendSeconds*0.9)), 1)
	jobs := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unsubErr error
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range jobs {
				if _, err := svc.Unsubscribe(ctx, tok); err != nil {
					mu.Lock()
					unsubErr = fmt.Errorf("unsubscribe: %w", err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, tok := range tokens {
		if err := pace.Wait(ctx); err != nil {
			break
		}
		jobs <- tok
	}
	close(jobs)
	wg.Wait()
	if unsubErr != nil {
		return unsubErr
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := mq.WaitIdle(ictx); err != nil {
		return fmt.Errorf("wait for the queue: %w", err)
	}

	rows, err := ledger(ctx, store, st.ID)
	if err != nil {
		return err
	}
	mails, err := countOutbox(box.Dir(), st.ID)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	missing := 0
	for _, id := range ids {
		// A reader who left before fan-out reached them has no row, and
		// needs none: they were no longer eligible.
		_, left := w.commits[id]
		if row := rows[id]; row == nil && !left || row != nil && !settledFinal(row.Status) {
			missing++
			if missing <= 5 {
				fmt.Fprintf(env.stderr, "chaos: unsubscribe: reader %s ends %+v\n", id, row)
			}
		}
	}
	sentToLeavers, skipped := 0, 0
	for _, id := range ids {
		if _, ok := w.commits[id]; ok {
			if mails.perReader[id] > 0 {
				sentToLeavers++
			}
			if rows[id] != nil && rows[id].Status == newsletter.DeliverySkipped {
				skipped++
			}
		}
	}
	r.set("recipients", readers)
	r.set("unsubscribed", len(w.commits))
	r.want(len(w.commits) == leaving, "unsubscribed=%d, want %d", len(w.commits), leaving)
	r.set("skipped", skipped)
	r.set("left_before_fanout", leaving-skipped-sentToLeavers)
	r.set("sent_before_unsubscribe", sentToLeavers-w.after-w.inWindow)
	r.set("in_window", w.inWindow)
	r.zero("sends_after_unsubscribe", w.after)
	r.zero("missing", missing)
	r.zero("duplicates", mails.duplicates())
	return nil
}

// watch records when readers were re-read by the engine and when their
// unsubscribes committed, and judges each send.
type watch struct {
	mu       sync.Mutex
	reads    map[string]time.Time // reader → when the engine's last read began
	commits  map[string]time.Time // reader → when the unsubscribe returned
	after    int                  // sends whose re-read began after the commit
	inWindow int                  // sends whose reader left between re-read and send
}

// readWatchStore is the engine's store: it notes when each read of a
// reader begins.
type readWatchStore struct {
	newsletter.Store
	w *watch
}

// Subscriber notes the time, then reads.
func (s *readWatchStore) Subscriber(ctx context.Context, id string) (*newsletter.Subscriber, error) {
	now := time.Now()
	s.w.mu.Lock()
	s.w.reads[id] = now
	s.w.mu.Unlock()
	return s.Store.Subscriber(ctx, id)
}

// SubscribersByID notes the time for each reader, then reads them all:
// the sender's re-read of a task's readers.
func (s *readWatchStore) SubscribersByID(ctx context.Context, ids []string) ([]*newsletter.Subscriber, error) {
	now := time.Now()
	s.w.mu.Lock()
	for _, id := range ids {
		s.w.reads[id] = now
	}
	s.w.mu.Unlock()
	return s.Store.SubscribersByID(ctx, ids)
}

// commitWatchStore is the newsroom's store: it notes when an update that
// leaves a reader unsubscribed has committed.
type commitWatchStore struct {
	newsletter.Store
	w *watch
}

// UpdateSubscriber updates, then notes the time of the first unsubscribe.
func (s *commitWatchStore) UpdateSubscriber(ctx context.Context, id string, fn func(*newsletter.Subscriber) error) (*newsletter.Subscriber, error) {
	sub, err := s.Store.UpdateSubscriber(ctx, id, fn)
	if err == nil && sub.Status == newsletter.StatusUnsubscribed {
		now := time.Now()
		s.w.mu.Lock()
		if _, ok := s.w.commits[id]; !ok {
			s.w.commits[id] = now
		}
		s.w.mu.Unlock()
	}
	return sub, err
}

// sendWatch is the engine's mailer: before each digest email leaves, it
// compares the reader's unsubscribe with the engine's last read.
type sendWatch struct {
	delivery.Mailer
	w *watch
}

// Send judges the send, then sends.
func (m *sendWatch) Send(ctx context.Context, msg *eml.Message) (string, error) {
	if id := msg.Tags["subscriber"]; id != "" {
		m.w.mu.Lock()
		commit, left := m.w.commits[id]
		read := m.w.reads[id]
		switch {
		case left && commit.Before(read):
			m.w.after++
		case left:
			m.w.inWindow++
		}
		m.w.mu.Unlock()
	}
	return m.Mailer.Send(ctx, msg)
}
