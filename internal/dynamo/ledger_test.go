package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// ledger is a fixture with one digest's rows and a clock for the markers.
type ledger struct {
	*fixture
	digestID string
	mu       sync.Mutex
	now      time.Time
}

func newLedger(t *testing.T, rows int) *ledger {
	t.Helper()
	l := &ledger{fixture: newFixture(t), digestID: "daily-2026-11-26", now: time.Now()}
	l.store.SetClock(l.clock)
	if rows > 0 {
		created, err := l.store.CreateDeliveries(t.Context(), l.rows(0, rows))
		mustNil(t, err, "CreateDeliveries")
		if n := countTrue(created); n != rows {
			t.Fatalf("CreateDeliveries: created %d, want %d", n, rows)
		}
	}
	return l
}

// clock is the markers' clock.
func (l *ledger) clock() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

func (l *ledger) id(i int) string { return fmt.Sprintf("sub-%04d", i) }

func (l *ledger) ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, l.id(i))
	}
	return out
}

func (l *ledger) rows(from, to int) []*newsletter.Delivery {
	var out []*newsletter.Delivery
	for _, id := range l.ids(from, to) {
		out = append(out, &newsletter.Delivery{DigestID: l.digestID, SubscriberID: id, Status: newsletter.DeliveryQueued, UpdatedAt: time.Now()})
	}
	return out
}

func (l *ledger) sent(from, to int) []newsletter.Outcome {
	var out []newsletter.Outcome
	for _, id := range l.ids(from, to) {
		out = append(out, newsletter.Outcome{SubscriberID: id, Status: newsletter.DeliverySent, MessageID: "m-" + id})
	}
	return out
}

// expire moves the markers' clock past the life of every marker open now.
func (l *ledger) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(dynamo.LedgerWindow + dynamo.LedgerGrace + time.Second)
}

// recount counts the rows as Deliveries lists them.
func (l *ledger) recount(t *testing.T) newsletter.Counters {
	t.Helper()
	var c newsletter.Counters
	p := newsletter.Page{Limit: newsletter.MaxPageSize}
	for {
		rows, next, err := l.store.Deliveries(t.Context(), l.digestID, newsletter.DeliveryFilter{}, p)
		mustNil(t, err, "Deliveries")
		for _, r := range rows {
			c.Total++
			c.Add(r.Status, 1)
		}
		if next == "" {
			return c
		}
		p.Cursor = next
	}
}

func (l *ledger) wantCounts(t *testing.T, want newsletter.Counters, what string) {
	t.Helper()
	got, err := l.store.DeliveryCounts(t.Context(), l.digestID)
	mustNil(t, err, what+": DeliveryCounts")
	if got != want {
		t.Errorf("%s: DeliveryCounts:\ngot  %+v\nwant %+v", what, got, want)
	}
}

// markers returns the marker attributes left on the digest's shards.
func (l *ledger) markers(t *testing.T) []string {
	t.Helper()
	var out []string
	for i := range 16 {
		for name := range l.rawItem(t, "DIGEST#"+l.digestID, fmt.Sprintf("COUNT#%02d", i)) {
			if strings.HasPrefix(name, "open_") {
				out = append(out, name)
			}
		}
	}
	return out
}

// TestCrashBeforeCounting stops a claim between its row writes and its
// counting, as a crash would: the counters are off by its rows while its
// marker may still belong to a live call, and exact again at the first
// DeliveryCounts once it has expired — a recount, after which the markers
// are gone and DeliveryCounts is back to one read.
func TestCrashBeforeCounting(t *testing.T) {
	l := newLedger(t, 20)
	ctx := t.Context()
	now := time.Now()

	l.store.CrashBeforeClose(1)
	_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 10), now, now.Add(2*time.Minute))
	if !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("ClaimDeliveries: got err %v, want the crash", err)
	}
	// A live call beside the crashed one: settles half the rows claimed.
	written, err := l.store.SettleDeliveries(ctx, l.digestID, l.sent(0, 5), now)
	mustNil(t, err, "SettleDeliveries")
	if countTrue(written) != 5 {
		t.Fatalf("SettleDeliveries: wrote %v, want 5", written)
	}
	truth := newsletter.Counters{Total: 20, Queued: 10, Sending: 5, Sent: 5}
	if got := l.recount(t); got != truth {
		t.Fatalf("rows: got %+v, want %+v", got, truth)
	}
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 20, Sending: -5, Sent: 5}, "while the crashed call's marker may be live")

	l.expire()
	before := l.store.ConsumedCapacity()
	l.wantCounts(t, truth, "once the marker has expired")
	if after := l.store.ConsumedCapacity(); after.Read-before.Read < 1 || after.TransactWrite == before.TransactWrite {
		t.Errorf("repair: got %+v units, want a recount and a write of the 16 shards", dynamo.Capacity{Read: after.Read - before.Read, TransactWrite: after.TransactWrite - before.TransactWrite})
	}
	if m := l.markers(t); len(m) != 0 {
		t.Errorf("markers after the repair: got %v, want none", m)
	}
	before = l.store.ConsumedCapacity()
	l.wantCounts(t, truth, "after the repair")
	if after := l.store.ConsumedCapacity(); after.Read-before.Read != 1 || after.Write != before.Write {
		t.Errorf("DeliveryCounts after the repair: got %.1f RCU and %.1f WCU, want one read", after.Read-before.Read, after.Write-before.Write)
	}

	// The repaired shards count on.
	_, err = l.store.SettleDeliveries(ctx, l.digestID, l.sent(5, 10), now)
	mustNil(t, err, "SettleDeliveries")
	_, err = l.store.ClaimDeliveries(ctx, l.digestID, l.ids(10, 20), now, now.Add(2*time.Minute))
	mustNil(t, err, "ClaimDeliveries")
	l.wantCounts(t, newsletter.Counters{Total: 20, Sending: 10, Sent: 10}, "after more calls")
}

// TestCrashedCreateAndUpdate crashes a CreateDeliveries page and a
// single-row UpdateDelivery: each is repaired like a claim.
func TestCrashedCreateAndUpdate(t *testing.T) {
	l := newLedger(t, 0)
	ctx := t.Context()
	l.store.CrashBeforeClose(1)
	if _, err := l.store.CreateDeliveries(ctx, l.rows(0, 30)); !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("CreateDeliveries: got err %v, want the crash", err)
	}
	l.wantCounts(t, newsletter.Counters{}, "the crashed page uncounted")
	l.expire()
	l.wantCounts(t, newsletter.Counters{Total: 30, Queued: 30}, "repaired")

	l.store.CrashBeforeClose(1)
	_, err := l.store.UpdateDelivery(ctx, l.digestID, l.id(3), func(r *newsletter.Delivery) error {
		r.Status = newsletter.DeliveryBounced
		return nil
	})
	if !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("UpdateDelivery: got err %v, want the crash", err)
	}
	l.expire()
	l.wantCounts(t, newsletter.Counters{Total: 30, Queued: 29, Bounced: 1}, "repaired after the update")
}

// TestRepairWaitsForLiveCalls checks that no repair runs while a marker
// may still belong to a call that can write rows: its rows may not be
// written yet, and its counts would be added on top of the recount.
func TestRepairWaitsForLiveCalls(t *testing.T) {
	l := newLedger(t, 20)
	ctx := t.Context()
	now := time.Now()
	l.store.CrashBeforeClose(2)
	_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 5), now, now)
	if !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("first ClaimDeliveries: got err %v, want the crash", err)
	}
	l.expire()
	_, err = l.store.ClaimDeliveries(ctx, l.digestID, l.ids(5, 10), now, now)
	if !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("second ClaimDeliveries: got err %v, want the crash", err)
	}
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 20}, "an expired marker beside a live one: no repair")
	if m := l.markers(t); len(m) != 2 {
		t.Errorf("markers: got %v, want both", m)
	}
	l.expire()
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 10, Sending: 10}, "both expired")
}

// TestRepairFencedByNewCall runs a whole claim between a repair's recount
// and its write: the repair must not land (it would count the claim's
// rows as the recount saw them and lose the claim's move), and the next
// DeliveryCounts repairs again.
func TestRepairFencedByNewCall(t *testing.T) {
	l := newLedger(t, 20)
	ctx := t.Context()
	now := time.Now()
	l.store.CrashBeforeClose(1)
	_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 5), now, now)
	if !errors.Is(err, dynamo.ErrCrash) {
		t.Fatalf("ClaimDeliveries: got err %v, want the crash", err)
	}
	l.expire()
	once := sync.Once{}
	l.store.AfterRecount(func() {
		once.Do(func() {
			_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(10, 20), now, now)
			mustNil(t, err, "ClaimDeliveries during the recount")
		})
	})
	// The recount saw the rows before the new claim.
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 15, Sending: 5}, "repair fenced out: the recount")
	if m := l.markers(t); len(m) != 1 {
		t.Errorf("markers after the fenced repair: got %v, want the crashed call's", m)
	}
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 5, Sending: 15}, "repaired next time")
	if m := l.markers(t); len(m) != 0 {
		t.Errorf("markers after the repair: got %v, want none", m)
	}
}

// TestLateClose lets a call's closing write come after its marker expired
// and a repair counted its rows: the close finds its marker gone and adds
// nothing, so the rows are not counted twice.
func TestLateClose(t *testing.T) {
	l := newLedger(t, 20)
	ctx := t.Context()
	now := time.Now()
	late := true
	l.store.SetBeforeClose(func() error {
		if late {
			late = false
			l.expire()
			l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 10, Sending: 10}, "repaired before the late close")
		}
		return nil
	})
	_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 10), now, now)
	mustNil(t, err, "ClaimDeliveries")
	l.wantCounts(t, newsletter.Counters{Total: 20, Queued: 10, Sending: 10}, "after the late close")
}

// TestCancelledCall cancels batched calls while they write: whatever
// each call managed to write is counted, at once or (when a write's
// outcome was lost) once its marker expires.
func TestCancelledCall(t *testing.T) {
	l := newLedger(t, 0)
	cut := &cutter{next: http.DefaultTransport.(*http.Transport).Clone()}
	client := dynamodb.NewFromConfig(awstest.Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(awstest.DynamoDB(t).Endpoint)
		o.HTTPClient = &http.Client{Transport: cut}
	})
	store := dynamo.New(client, l.table)
	store.SetClock(l.clock)
	now := time.Now()
	// A create of 200 rows sends 202 requests: its marker's opening, the
	// rows (10 at a time), and its closing, which is not cancelled. So
	// the calls are cut as they open, at their first row, among the
	// create's rows, and among the claim's.
	for round, at := range []int{1, 2, 60, 202 + 50} {
		from := 200 * round
		ctx, cancel := context.WithCancel(t.Context())
		cut.cutAt(at, cancel)
		_, cerr := store.CreateDeliveries(ctx, l.rows(from, from+200))
		_, serr := store.ClaimDeliveries(ctx, l.digestID, l.ids(from, from+200), now, now)
		cancel()
		if cerr == nil && serr == nil {
			t.Errorf("cut at request %d: create %v, claim %v; want one of them cut", at, cerr, serr)
		}
		t.Logf("cut at request %d: create %v, claim %v", at, cerr, serr)
	}
	// A write the client gave up on may still land after the call has
	// returned (the markers' grace period covers that on AWS): the cutter
	// tells when every write sent has been answered.
	cut.wait(t)
	truth := l.recount(t)
	if truth.Total == 0 || truth.Total == 800 || truth.Sending == 0 {
		t.Errorf("rows after the cut calls %+v: want some created and some claimed, not all", truth)
	}
	l.expire()
	l.wantCounts(t, truth, "after cancelled calls")
}

// cutter is a DynamoDB client's transport that cancels a call as its
// request number at goes out, and lets every request that went out run
// to its answer even when its caller has stopped waiting, as DynamoDB
// still applies a write it received: wait returns once every request sent
// has been answered, so no write is still to land.
type cutter struct {
	next http.RoundTripper
	wg   sync.WaitGroup

	mu     sync.Mutex
	n, at  int
	cancel context.CancelFunc
}

// cutAt makes the at-th request from now on call cancel as it goes out.
func (c *cutter) cutAt(at int, cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.at, c.cancel = 0, at, cancel
}

func (c *cutter) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	c.mu.Lock()
	if c.n++; c.n == c.at {
		c.cancel()
	}
	c.mu.Unlock()
	type answer struct {
		res *http.Response
		err error
	}
	got := make(chan answer, 1)
	c.wg.Go(func() {
		res, err := c.next.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
		got <- answer{res, err}
	})
	select {
	case a := <-got:
		return a.res, a.err
	case <-r.Context().Done():
		go func() {
			if a := <-got; a.err == nil {
				io.Copy(io.Discard, a.res.Body)
				a.res.Body.Close()
			}
		}()
		return nil, r.Context().Err()
	}
}

// wait waits until every request sent has been answered, failing the
// test after 30 s.
func (c *cutter) wait(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("requests to DynamoDB Local still unanswered after 30 s")
	}
}

// TestConcurrentBatches claims overlapping tasks from several goroutines
// at once and settles what each claimed: every row is claimed exactly
// once and the counters stay exact.
func TestConcurrentBatches(t *testing.T) {
	const rows, goroutines, task = 200, 6, 50
	l := newLedger(t, rows)
	ctx := t.Context()
	now := time.Now()
	claimedBy := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for from := (g * 30) % rows; from < rows; from += task {
				ids := l.ids(from, min(from+task, rows))
				claims, err := l.store.ClaimDeliveries(ctx, l.digestID, ids, now, now.Add(time.Minute))
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				var outcomes []newsletter.Outcome
				for i, c := range claims {
					if c.Claimed {
						claimedBy[g] = append(claimedBy[g], ids[i])
						outcomes = append(outcomes, newsletter.Outcome{SubscriberID: ids[i], Status: newsletter.DeliverySent})
					}
				}
				if _, err := l.store.SettleDeliveries(ctx, l.digestID, outcomes, now); err != nil {
					t.Errorf("SettleDeliveries: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ids := range claimedBy {
		for _, id := range ids {
			seen[id]++
		}
	}
	if len(seen) != rows {
		t.Errorf("rows claimed: got %d, want %d", len(seen), rows)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %s claimed %d times, want once", id, n)
		}
	}
	l.wantCounts(t, newsletter.Counters{Total: rows, Sent: rows}, "after concurrent tasks")
}
