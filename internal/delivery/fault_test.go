package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

var errCrash = errors.New("killed")

// faults crashes the engine the first time each chosen reader reaches the
// step (and, for a fan-out step, on the first and third page), and
// counts the crashes and reconciliations.
type faults struct {
	step   delivery.Step
	chosen func(subscriberID string) bool

	mu         sync.Mutex
	seen       map[string]bool
	calls      int
	crashes    int
	reconciled map[bool]int
}

func newFaults(step delivery.Step, chosen func(string) bool) *faults {
	return &faults{step: step, chosen: chosen, seen: map[string]bool{}, reconciled: map[bool]int{}}
}

func (fl *faults) fault(step delivery.Step, digestID, subscriberID string) error {
	if step != fl.step {
		return nil
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if subscriberID == "" {
		fl.calls++
		if fl.calls == 1 || fl.calls == 3 {
			fl.crashes++
			return errCrash
		}
		return nil
	}
	if !fl.chosen(subscriberID) || fl.seen[subscriberID] {
		return nil
	}
	fl.seen[subscriberID] = true
	fl.crashes++
	return errCrash
}

func (fl *faults) onReconciled(_, _ string, sent bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.reconciled[sent]++
}

// withFaults injects fl and reconciles against the fixture's outbox.
func withFaults(fl *faults, reconcile bool) func(*fixture, *delivery.Config) {
	return func(f *fixture, c *delivery.Config) {
		c.Fault = fl.fault
		c.OnReconciled = fl.onReconciled
		if reconcile {
			c.Reconciler = f.mailer.next
		}
	}
}

// redeliver runs the queue as SQS would through crashes: every round takes
// all the tasks, delivers them in reverse order and each one twice; a
// delivery that crashed comes back whole, the readers to retry come back
// as a new task, and the clock moves past the visibility timeout and the
// lease between rounds. It returns how many deliveries crashed.
func (f *fixture) redeliver(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	crashes := 0
	for round := 0; round < 100; round++ {
		tasks := f.queue.take()
		if len(tasks) == 0 {
			return crashes
		}
		slices.Reverse(tasks)
		for _, task := range tasks {
			for range 2 {
				retry, err := f.engine.Handle(ctx, task)
				switch {
				case errors.Is(err, errCrash):
					crashes++
					f.queue.Enqueue(ctx, task)
				case err != nil && task.Kind == delivery.KindFanout:
					t.Fatalf("fan-out: %v", err)
				case len(retry) > 0:
					f.queue.Enqueue(ctx, delivery.Task{Kind: task.Kind, DigestID: task.DigestID, SubscriberIDs: retry, Attempt: task.Attempt + 1})
				}
			}
		}
		f.advance(3 * time.Minute)
	}
	t.Fatal("queue did not drain in 100 rounds")
	return 0
}

// outboxCopies counts the emails in the outbox per recipient address.
func (f *fixture) outboxCopies(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(f.outbox, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, name := range files {
		r, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		to, err := mail.ParseAddress(m.Header.Get("To"))
		if err != nil {
			t.Fatalf("%s: To: %v", name, err)
		}
		got[to.Address]++
	}
	return got
}

// checkOneEach asserts that each of n readers has one copy in the outbox
// and a sent ledger row, and that the digest is sent.
func (f *fixture) checkOneEach(t *testing.T, digestID string, n int) {
	t.Helper()
	copies := f.outboxCopies(t)
	for i := range n {
		if got := copies[fmt.Sprintf("reader%04d@example.com", i)]; got != 1 {
			t.Errorf("reader %d: %d copies in the outbox, want 1", i, got)
		}
	}
	if len(copies) != n {
		t.Errorf("outbox holds mail for %d addresses, want %d", len(copies), n)
	}
	if c := f.counts(t, digestID); c.Total != int64(n) || c.Sent != int64(n) {
		t.Errorf("counters %+v, want %d rows, all sent", c, n)
	}
	d, err := f.store.Digest(context.Background(), digestID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != newsletter.DigestSent {
		t.Errorf("digest %s, want sent", d.Status)
	}
}

// TestCrashAtEveryStep kills the engine at each step of fan-out and send
// for a third of the readers (every other page for fan-out), redelivers
// the tasks duplicated and reordered until the queue drains, and finds
// every reader sent exactly once; copies whose outcome the crash left
// unknown were reconciled against the outbox, not blindly resent.
func TestCrashAtEveryStep(t *testing.T) {
	const n = 30
	for _, step := range delivery.Steps {
		t.Run(string(step), func(t *testing.T) {
			fl := newFaults(step, func(id string) bool {
				var i int
				fmt.Sscanf(id, "r%d", &i)
				return i%3 == 0
			})
			f := newFixture(t, withFaults(fl, true))
			f.addReaders(t, n, all)
			d := f.addDigest(t)
			if err := f.engine.Dispatch(context.Background(), d.ID); err != nil {
				t.Fatal(err)
			}
			crashed := f.redeliver(t)
			if crashed == 0 || fl.crashes == 0 {
				t.Fatalf("no crash injected at %s", step)
			}
			f.checkOneEach(t, d.ID, n)
			// A task claims its rows together and records their outcomes
			// together, so a crash leaves every row the task held
			// uncertain, not only the crashing reader's.
			switch step {
			case delivery.StepClaimed: // died before mailing: reconciled as never sent, then sent
				if fl.reconciled[false] < fl.crashes || fl.reconciled[true] != 0 {
					t.Errorf("reconciled %v after %d crashes, want at least %d not found and none found", fl.reconciled, fl.crashes, fl.crashes)
				}
			case delivery.StepMailed: // died after mailing: the crashing reader's copy (and those before it) reconciled as sent, not resent
				if fl.reconciled[true] < fl.crashes {
					t.Errorf("reconciled %v after %d crashes, want at least %d found", fl.reconciled, fl.crashes, fl.crashes)
				}
			default:
				if len(fl.reconciled) != 0 {
					t.Errorf("reconciled %v, want none: no outcome was left unknown", fl.reconciled)
				}
			}
		})
	}
}

// TestCrashWithoutReconciler is the AWS path, where the provider's record
// arrives as an SES Send event: a copy mailed before the crash turns
// unknown and the Send event settles it; a copy claimed but never mailed
// also turns unknown, gets no event, and Sweep sends it after the grace
// period. Each reader still gets one copy.
func TestCrashWithoutReconciler(t *testing.T) {
	claimed, mailed := newFaults(delivery.StepClaimed, func(id string) bool { return id == "r0001" }),
		newFaults(delivery.StepMailed, func(id string) bool { return id == "r0002" })
	f := newFixture(t, func(_ *fixture, c *delivery.Config) {
		c.Fault = func(step delivery.Step, d, s string) error {
			return errors.Join(claimed.fault(step, d, s), mailed.fault(step, d, s))
		}
		// One reader a task, so that each crash leaves only its own
		// reader's row uncertain (a crash leaves all of a task's).
		c.BatchSize = 1
	})
	f.addReaders(t, 5, all)
	d := f.addDigest(t)
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	f.redeliver(t)
	for _, id := range []string{"r0001", "r0002"} {
		row, err := f.store.Delivery(ctx, d.ID, id)
		if err != nil || row.Status != newsletter.DeliveryUnknown {
			t.Fatalf("%s after the crash: %+v (err %v), want unknown", id, row, err)
		}
	}
	if c := f.counts(t, d.ID); c.Sent != 3 || c.Unknown != 2 {
		t.Fatalf("counters %+v, want 3 sent, 2 unknown", c)
	}
	// Unknown rows do not hold the digest open.
	if got, _ := f.store.Digest(ctx, d.ID); got.Status != newsletter.DigestSent {
		t.Errorf("digest %s, want sent", got.Status)
	}

	// SES's Send event for the copy that left, delivered twice.
	p := feedback.New(f.store, f.clock)
	p.Logger = f.cfg.Logger
	send := `{"eventType":"Send","mail":{"messageId":"ses-0002","destination":["reader0002@example.com"],"tags":{"digest":["` + d.ID + `"],"subscriber":["r0002"]}},"send":{}}`
	for range 2 {
		if err := p.Handle(ctx, []byte(send)); err != nil {
			t.Fatal(err)
		}
	}
	// Before the grace period Sweep leaves the other unknown row alone.
	if n, err := f.engine.Sweep(ctx, d.ID); err != nil || n != 0 {
		t.Fatalf("Sweep within the grace period: %d, %v; want 0", n, err)
	}
	f.advance(16 * time.Minute)
	if n, err := f.engine.Sweep(ctx, d.ID); err != nil || n != 1 {
		t.Fatalf("Sweep after the grace period: %d, %v; want 1", n, err)
	}
	f.redeliver(t)
	f.checkOneEach(t, d.ID, 5)
	if row, _ := f.store.Delivery(ctx, d.ID, "r0002"); row.MessageID != "ses-0002" {
		t.Errorf("reconciled row has message ID %q, want the Send event's", row.MessageID)
	}
}

// TestUnknownOutcomeReconciled: a send that timed out is checked against
// the mailer's record before it is tried again: had it left, it is
// settled sent; had it not, it is sent once.
func TestUnknownOutcomeReconciled(t *testing.T) {
	fl := newFaults("none", func(string) bool { return false })
	f := newFixture(t, withFaults(fl, true))
	f.addReaders(t, 4, all)
	d := f.addDigest(t)
	f.mailer.fail = func(to string, attempt int) error {
		if to == "reader0001@example.com" && attempt == 1 {
			return fmt.Errorf("ses: %w", eml.ErrUnknownOutcome) // never left
		}
		return nil
	}
	// reader0002's copy leaves but the answer is lost.
	f.mailer.after = func(to string, attempt int) error {
		if to == "reader0002@example.com" && attempt == 1 {
			return fmt.Errorf("ses: %w", eml.ErrUnknownOutcome)
		}
		return nil
	}
	f.engine.Dispatch(context.Background(), d.ID)
	f.redeliver(t)
	f.checkOneEach(t, d.ID, 4)
	if fl.reconciled[true] != 1 || fl.reconciled[false] != 1 {
		t.Errorf("reconciled %v, want one found and one not", fl.reconciled)
	}
}

// TestPausedByProvider: when the provider stops taking mail the digest
// pauses with a reason, the reader's row goes back to queued and the rest
// of the digest waits, unsent; sending it again resumes it, and nobody
// gets a second copy.
func TestPausedByProvider(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 20, all)
	d := f.addDigest(t)
	var mu sync.Mutex
	total := 0
	f.mailer.fail = func(to string, attempt int) error {
		mu.Lock()
		defer mu.Unlock()
		total++
		if total == 5 {
			return fmt.Errorf("ses: SendingPaused: %w", eml.ErrPaused)
		}
		return nil
	}
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	f.drain(t)

	got, _ := f.store.Digest(ctx, d.ID)
	if got.Status != newsletter.DigestPaused || got.PausedReason == "" {
		t.Fatalf("digest %s (reason %q), want paused with a reason", got.Status, got.PausedReason)
	}
	if c := f.counts(t, d.ID); c.Sent != 4 || c.Queued != 16 || c.Sending+c.Unknown+c.Failed != 0 {
		t.Fatalf("counters %+v, want 4 sent and 16 queued", c)
	}

	svc := newsroom.New(f.store, f.signer, f.renderer, nil, f.mailer, f.engine, f.engine, newsroom.Config{Now: f.clock, Logger: f.cfg.Logger})
	st, err := svc.Send(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != newsletter.DigestSending || st.PausedReason != "" {
		t.Errorf("resumed digest %s (reason %q), want sending with no reason", st.Status, st.PausedReason)
	}
	f.drain(t)
	f.checkOneEach(t, d.ID, 20)
}

// TestPausedDigestSendsNothing: a send task for a paused digest is
// acknowledged, mails nothing and leaves its rows queued.
func TestPausedDigestSendsNothing(t *testing.T) {
	f := newFixture(t)
	f.addReaders(t, 5, all)
	d := f.addDigest(t)
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	for _, task := range f.queue.take() {
		if _, err := f.engine.Handle(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := newsletter.PauseDigest(ctx, f.store, d.ID, "editor test", f.clock()); err != nil || !ok {
		t.Fatalf("PauseDigest: %v, %v", ok, err)
	}
	for _, task := range f.queue.take() {
		retry, err := f.engine.Handle(ctx, task)
		if err != nil || len(retry) > 0 {
			t.Errorf("send task of a paused digest: retry %v, err %v; want acknowledged", retry, err)
		}
	}
	if n := len(f.outboxCopies(t)); n != 0 {
		t.Errorf("%d emails sent for a paused digest", n)
	}
	if c := f.counts(t, d.ID); c.Queued != 5 {
		t.Errorf("counters %+v, want 5 queued", c)
	}
	// A repeated fan-out task enqueues nothing while paused.
	f.engine.Dispatch(ctx, d.ID)
	f.drain(t)
	if n := len(f.outboxCopies(t)); n != 0 {
		t.Errorf("%d emails sent for a paused digest", n)
	}
}

// TestPausedOnBounceRate: permanent bounces over the limit pause the
// digest mid-send (a duplicate bounce counts once); once resumed, the
// rest are sent, the bounced reader is not mailed again, and the digest
// does not pause again on the bounces that paused it.
func TestPausedOnBounceRate(t *testing.T) {
	f := newFixture(t, func(_ *fixture, c *delivery.Config) { c.MinRateSample = 20 })
	f.addReaders(t, 40, all)
	d := f.addDigest(t)
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	for _, task := range f.queue.take() {
		f.engine.Handle(ctx, task) // fan-out
	}
	tasks := f.queue.take()
	for _, task := range tasks[:4] { // pages of 10 in tasks of 7 and 3: 20 readers sent
		if _, err := f.engine.Handle(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	p := feedback.New(f.store, f.clock)
	p.Logger = f.cfg.Logger
	p.Limits = newsletter.RateLimits{MinSample: 20}
	bounce := `{"eventType":"Bounce","bounce":{"feedbackId":"fb-1","bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"reader0003@example.com"}]},` +
		`"mail":{"messageId":"m3","destination":["reader0003@example.com"],"tags":{"digest":["` + d.ID + `"],"subscriber":["r0003"]}}}`
	for range 3 {
		if err := p.Handle(ctx, []byte(bounce)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := f.store.Digest(ctx, d.ID)
	if got.Status != newsletter.DigestPaused || !strings.Contains(got.PausedReason, "bounce rate") {
		t.Fatalf("counters %+v: digest %s (reason %q), want paused for its bounce rate", f.counts(t, d.ID), got.Status, got.PausedReason)
	}
	if c := f.counts(t, d.ID); c.Bounced != 1 || c.Sent != 19 {
		t.Fatalf("counters %+v, want 1 bounced (the duplicates count once), 19 sent", c)
	}
	// The senders' shared read of the digest is fresh for RecheckAfter on
	// the engine's clock: once that has passed, they see the pause.
	f.advance(delivery.RecheckAfter)
	f.queue.Enqueue(ctx, tasks[4:]...)
	f.drain(t)
	if c := f.counts(t, d.ID); c.Queued != 20 {
		t.Fatalf("counters %+v, want 20 still queued while paused", c)
	}

	svc := newsroom.New(f.store, f.signer, f.renderer, nil, f.mailer, f.engine, f.engine, newsroom.Config{Now: f.clock, Logger: f.cfg.Logger})
	if _, err := svc.Send(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	c := f.counts(t, d.ID)
	if c.Sent != 39 || c.Bounced != 1 || c.Queued+c.Sending != 0 {
		t.Errorf("counters %+v, want 39 sent, 1 bounced", c)
	}
	for i := range 40 {
		if n := f.mailer.count(fmt.Sprintf("reader%04d@example.com", i)); n != 1 {
			t.Errorf("reader %d got %d copies, want 1", i, n)
		}
	}
	if got, _ := f.store.Digest(ctx, d.ID); got.Status != newsletter.DigestSent {
		t.Errorf("digest %s after resume, want sent", got.Status)
	}
}

// clockLimiter lets every message go at once, but first moves the
// engine's clock on by step, as a limiter that held the task back that
// long would.
type clockLimiter struct {
	f    *fixture
	step time.Duration
}

func (l clockLimiter) Wait(context.Context) error { l.f.advance(l.step); return nil }

// TestHeldBackTaskRechecks: a task held back between messages for longer
// than RecheckAfter reads the digest and its readers again before the
// next message: a reader who unsubscribed meanwhile is skipped, and a
// pause leaves the rest of the task queued.
func TestHeldBackTaskRechecks(t *testing.T) {
	f := newFixture(t, func(f *fixture, c *delivery.Config) {
		c.Limiter = clockLimiter{f: f, step: delivery.RecheckAfter + time.Millisecond}
	})
	f.addReaders(t, 7, all) // one send task (BatchSize 7)
	d := f.addDigest(t)
	ctx := context.Background()
	f.mailer.after = func(to string, _ int) error {
		switch to {
		case "reader0000@example.com":
			if _, err := f.store.UpdateSubscriber(ctx, "r0002", func(s *newsletter.Subscriber) error {
				s.Status = newsletter.StatusUnsubscribed
				return nil
			}); err != nil {
				t.Error(err)
			}
		case "reader0003@example.com":
			if ok, err := newsletter.PauseDigest(ctx, f.store, d.ID, "editor test", f.clock()); err != nil || !ok {
				t.Errorf("PauseDigest: %v, %v", ok, err)
			}
		}
		return nil
	}
	f.engine.Dispatch(ctx, d.ID)
	f.drain(t)
	for i, want := range []int{1, 1, 0, 1, 0, 0, 0} {
		if n := f.mailer.count(fmt.Sprintf("reader%04d@example.com", i)); n != want {
			t.Errorf("reader %d got %d copies, want %d", i, n, want)
		}
	}
	if c := f.counts(t, d.ID); c.Sent != 3 || c.Skipped != 1 || c.Queued != 3 {
		t.Errorf("counters %+v, want 3 sent, 1 skipped (unsubscribed mid-task), 3 queued (paused mid-task)", c)
	}
}
