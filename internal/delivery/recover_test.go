package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// lose runs the queued tasks until none are left, as the laptop's
// in-process queue does, except that a task that crashed is dropped, as
// the goroutine or process that ran it would be: its rows stay as the
// crash left them. Retries go back on the queue. It returns how many
// tasks crashed.
func (f *fixture) lose(t *testing.T, e *delivery.Engine) int {
	t.Helper()
	ctx := context.Background()
	crashes := 0
	for round := 0; round < 100; round++ {
		tasks := f.queue.take()
		if len(tasks) == 0 {
			return crashes
		}
		for _, task := range tasks {
			retry, err := e.Handle(ctx, task)
			switch {
			case errors.Is(err, errCrash):
				crashes++
			case err != nil && task.Kind == delivery.KindFanout:
				t.Fatalf("fan-out: %v", err)
			case len(retry) > 0:
				f.queue.Enqueue(ctx, delivery.Task{Kind: task.Kind, DigestID: task.DigestID, SubscriberIDs: retry, Attempt: task.Attempt + 1})
			}
		}
	}
	t.Fatal("queue did not drain in 100 rounds")
	return 0
}

// tick runs Watch for one tick at the fixture's time, and returns once
// that Recover has.
func (f *fixture) tick(e *delivery.Engine) {
	ticks := make(chan time.Time, 1)
	ticks <- f.clock()
	close(ticks)
	e.Watch(context.Background(), ticks)
}

// status returns the digest's status.
func (f *fixture) status(t *testing.T, id string) newsletter.DigestStatus {
	t.Helper()
	d, err := f.store.Digest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d.Status
}

// TestRecoverTakesUpExpiredLeases: tasks that die in a process that goes
// on leave their rows sending under a lease. Recover leaves them while
// the lease holds and takes them up once it has run out, reconciling with
// the outbox, so the digest ends sent, one copy each, with no restart.
func TestRecoverTakesUpExpiredLeases(t *testing.T) {
	const n = 30
	fl := newFaults(delivery.StepMailed, func(id string) bool { return id == "r0003" || id == "r0017" })
	f := newFixture(t, withFaults(fl, true), func(_ *fixture, c *delivery.Config) { c.Lease = time.Minute })
	f.addReaders(t, n, all)
	d := f.addDigest(t)
	if err := f.engine.Dispatch(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	if crashed := f.lose(t, f.engine); crashed != 2 {
		t.Fatalf("%d tasks crashed, want 2", crashed)
	}
	c := f.counts(t, d.ID)
	if c.Sending == 0 || f.status(t, d.ID) != newsletter.DigestSending {
		t.Fatalf("after the crashes: counters %+v, digest %s; want rows left sending", c, f.status(t, d.ID))
	}

	// While the lease holds, the rows are another sender's.
	f.advance(30 * time.Second)
	f.tick(f.engine)
	if tasks := f.queue.take(); len(tasks) != 0 {
		t.Fatalf("Recover within the lease enqueued %v, want nothing", tasks)
	}
	f.advance(31 * time.Second)
	f.tick(f.engine)
	f.lose(t, f.engine)
	f.checkOneEach(t, d.ID, n)
	if fl.reconciled[true] < 2 {
		t.Errorf("reconciled %v, want the two crashing readers found sent, not resent", fl.reconciled)
	}
}

// TestRecoverAfterEveryCrash: tasks die again and again, at every step of
// the send, while the engine runs; ticks a lease apart finish the digest
// each time without a restart.
func TestRecoverAfterEveryCrash(t *testing.T) {
	const n = 40
	steps := []delivery.Step{delivery.StepClaimed, delivery.StepMailed, delivery.StepSettled}
	var crashes int
	f := newFixture(t, func(f *fixture, c *delivery.Config) {
		c.Reconciler = f.mailer.next
		c.Lease = time.Minute
		c.Fault = func(step delivery.Step, _, subscriberID string) error {
			// The first five visits of each send step die.
			if subscriberID != "" && crashes < 15 && steps[crashes%3] == step {
				crashes++
				return errCrash
			}
			return nil
		}
	})
	f.addReaders(t, n, all)
	d := f.addDigest(t)
	f.engine.Dispatch(context.Background(), d.ID)
	f.lose(t, f.engine)
	for round := 0; f.status(t, d.ID) != newsletter.DigestSent; round++ {
		if round == 20 {
			t.Fatalf("not sent after 20 leases: counters %+v, %d crashes", f.counts(t, d.ID), crashes)
		}
		f.advance(time.Minute + time.Second)
		f.tick(f.engine)
		f.lose(t, f.engine)
	}
	if crashes != 15 {
		t.Errorf("%d crashes, want 15", crashes)
	}
	f.checkOneEach(t, d.ID, n)
}

// TestRecoverLeavesTheQueueAlone: on a live queue, Recover enqueues no
// queued row younger than a lease and dispatches no second fan-out while
// this engine's own is under way; past a lease of silence it does both.
func TestRecoverLeavesTheQueueAlone(t *testing.T) {
	f := newFixture(t, func(_ *fixture, c *delivery.Config) {
		c.FanoutPages = 1
		c.Lease = time.Minute
	})
	f.addReaders(t, 25, all) // three pages of 10
	d := f.addDigest(t)
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	for _, task := range f.queue.take() {
		f.engine.Handle(ctx, task) // the first page: its send tasks and the next fan-out step are queued
	}
	queued := f.queue.take()
	if len(queued) == 0 {
		t.Fatal("fan-out queued nothing")
	}
	f.advance(30 * time.Second)
	f.tick(f.engine)
	if tasks := f.queue.take(); len(tasks) != 0 {
		t.Fatalf("Recover on a live queue enqueued %v, want nothing", tasks)
	}
	// The queue lost its tasks (as memory does) and a lease went by.
	f.advance(31 * time.Second)
	f.tick(f.engine)
	var fanouts, readers int
	for _, task := range f.queue.take() {
		if task.Kind == delivery.KindFanout {
			fanouts++
		}
		readers += len(task.SubscriberIDs)
		f.queue.Enqueue(ctx, task)
	}
	if fanouts != 1 || readers != 10 {
		t.Errorf("Recover after a lease enqueued %d fan-outs and %d readers, want 1 and the first page's 10", fanouts, readers)
	}
	f.lose(t, f.engine)
	f.checkOneEach(t, d.ID, 25)
}

// TestSendRecoversAtOnce: an editor's send of a digest that is going out
// already takes up, at once, the rows whose lease ran out — it does not
// wait for the timer.
func TestSendRecoversAtOnce(t *testing.T) {
	fl := newFaults(delivery.StepClaimed, func(id string) bool { return id == "r0000" })
	f := newFixture(t, withFaults(fl, true), func(_ *fixture, c *delivery.Config) { c.Lease = time.Minute })
	f.addReaders(t, 12, all)
	d := f.addDigest(t)
	ctx := context.Background()
	f.engine.Dispatch(ctx, d.ID)
	f.lose(t, f.engine)
	if f.status(t, d.ID) != newsletter.DigestSending {
		t.Fatal("digest not left sending by the crash")
	}
	f.advance(2 * time.Minute)
	// What POST /api/digests/{id}/send does on a digest still sending.
	if err := f.engine.Dispatch(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	f.lose(t, f.engine)
	f.checkOneEach(t, d.ID, 12)
}

// TestSoleEngineTakesUpADeadProcesssRows: with Config.Sole (the laptop), a
// restarted engine reconciles at once the rows the dead process claimed,
// without waiting out their lease; without it (AWS), it waits.
func TestSoleEngineTakesUpADeadProcesssRows(t *testing.T) {
	for _, sole := range []bool{false, true} {
		t.Run(fmt.Sprintf("sole=%v", sole), func(t *testing.T) {
			fl := newFaults(delivery.StepMailed, func(id string) bool { return id == "r0004" })
			f := newFixture(t, withFaults(fl, true), func(_ *fixture, c *delivery.Config) {
				c.Lease = time.Minute
				c.Sole = sole
			})
			f.addReaders(t, 10, all)
			d := f.addDigest(t)
			ctx := context.Background()
			f.engine.Dispatch(ctx, d.ID)
			f.lose(t, f.engine)

			// The process died; another starts a second later.
			f.advance(time.Second)
			cfg := f.cfg
			cfg.Fault = nil
			restarted := delivery.New(f.store, f.signer, f.renderer, f.mailer, f.queue, cfg)
			if err := restarted.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			f.lose(t, restarted)
			if !sole {
				if f.status(t, d.ID) == newsletter.DigestSent {
					t.Fatal("digest sent within the lease of a sender that may be alive")
				}
				f.advance(time.Minute)
				f.tick(restarted)
				f.lose(t, restarted)
			}
			f.checkOneEach(t, d.ID, 10)
		})
	}
}
