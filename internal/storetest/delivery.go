package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// MustCreateDelivery stores the ledger row d and stops the test if that
// fails.
func MustCreateDelivery(tb testing.TB, store newsletter.Store, d *newsletter.Delivery) *newsletter.Delivery {
	tb.Helper()
	if err := store.CreateDelivery(tb.Context(), d); err != nil {
		tb.Fatalf("create delivery %s/%s: got err %v, want nil", d.DigestID, d.SubscriberID, err)
	}
	return d
}

// newDelivery returns reader i's ledger row for the digest, with every
// field set.
func newDelivery(digestID string, i int, status newsletter.DeliveryStatus) *newsletter.Delivery {
	return &newsletter.Delivery{
		DigestID:     digestID,
		SubscriberID: name("sub", i),
		Status:       status,
		LeaseUntil:   at(i + 5),
		Attempts:     1,
		MessageID:    fmt.Sprintf("0100018f-%04d", i),
		Reason:       "because",
		UpdatedAt:    at(i),
	}
}

func deliveryKey(d *newsletter.Delivery) string { return d.SubscriberID }

// countsOf counts rows the way DeliveryCounts must.
func countsOf(rows []*newsletter.Delivery) newsletter.Counters {
	var c newsletter.Counters
	for _, d := range rows {
		c.Total++
		c.Add(d.Status, 1)
	}
	return c
}

// wantCounts fails the test when the digest's counters are not want.
func wantCounts(tb testing.TB, store newsletter.Store, digestID string, want newsletter.Counters, what string) {
	tb.Helper()
	got, err := store.DeliveryCounts(tb.Context(), digestID)
	if err != nil {
		tb.Errorf("%s: DeliveryCounts: got err %v, want nil", what, err)
		return
	}
	if got != want {
		tb.Errorf("%s: DeliveryCounts:\ngot  %+v\nwant %+v", what, got, want)
	}
}

func testDeliveries(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		want := MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliverySent))

		got, err := store.Delivery(ctx, d.ID, want.SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "Delivery", got, want, normDelivery)
	})

	t.Run("NotFound", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		other := MustCreateDigest(t, store, newDigest(2))
		row := MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliveryQueued))

		tests := []struct{ name, digestID, subscriberID string }{
			{"missing reader", d.ID, "sub-missing"},
			{"reader of another digest", other.ID, row.SubscriberID},
			{"missing digest", "daily-1999-01-01", row.SubscriberID},
			{"empty keys", "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := store.Delivery(ctx, tt.digestID, tt.subscriberID)
				wantCode(t, err, newsletter.ENOTFOUND, "Delivery")
				called := false
				_, err = store.UpdateDelivery(ctx, tt.digestID, tt.subscriberID, func(*newsletter.Delivery) error { called = true; return nil })
				wantCode(t, err, newsletter.ENOTFOUND, "UpdateDelivery")
				if called {
					t.Errorf("UpdateDelivery of a missing row: fn called, want not called")
				}
			})
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 1, Queued: 1}, "after failed updates")
	})

	t.Run("CreateConflict", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		other := MustCreateDigest(t, store, newDigest(2))
		first := MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliveryQueued))

		dup := newDelivery(d.ID, 1, newsletter.DeliverySent)
		dup.MessageID = "not this"
		wantCode(t, store.CreateDelivery(ctx, dup), newsletter.ECONFLICT, "CreateDelivery of an existing row")
		got, err := store.Delivery(ctx, d.ID, first.SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "Delivery after conflict", got, first, normDelivery)
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 1, Queued: 1}, "after conflict")

		// The same reader in another digest is another row.
		MustCreateDelivery(t, store, newDelivery(other.ID, 1, newsletter.DeliverySent))
		wantCounts(t, store, other.ID, newsletter.Counters{Total: 1, Sent: 1}, "other digest")
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 1, Queued: 1}, "first digest after a row in another")
	})

	t.Run("Counts", func(t *testing.T) {
		store := open(t)
		d := MustCreateDigest(t, store, newDigest(1))
		empty := MustCreateDigest(t, store, newDigest(2))
		wantCounts(t, store, d.ID, newsletter.Counters{}, "no rows yet")

		var rows []*newsletter.Delivery
		for i, status := range newsletter.DeliveryStatuses {
			for j := range i + 1 { // i+1 rows in the i-th status
				rows = append(rows, MustCreateDelivery(t, store, newDelivery(d.ID, 10*i+j, status)))
			}
			wantCounts(t, store, d.ID, countsOf(rows), fmt.Sprintf("after the %s rows", status))
		}
		want := newsletter.Counters{Total: 36, Queued: 1, Sending: 2, Sent: 3, Skipped: 4, Failed: 5, Unknown: 6, Bounced: 7, Complained: 8}
		wantCounts(t, store, d.ID, want, "every status")
		wantCounts(t, store, empty.ID, newsletter.Counters{}, "digest with no rows")
	})

	t.Run("Update", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		row := MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliveryQueued))
		MustCreateDelivery(t, store, newDelivery(d.ID, 2, newsletter.DeliveryQueued))

		steps := []struct {
			status newsletter.DeliveryStatus
			want   newsletter.Counters
		}{
			{newsletter.DeliverySending, newsletter.Counters{Total: 2, Queued: 1, Sending: 1}},
			{newsletter.DeliverySent, newsletter.Counters{Total: 2, Queued: 1, Sent: 1}},
			{newsletter.DeliverySent, newsletter.Counters{Total: 2, Queued: 1, Sent: 1}}, // same status: no move
			{newsletter.DeliveryBounced, newsletter.Counters{Total: 2, Queued: 1, Bounced: 1}},
		}
		want := normDelivery(row)
		for i, step := range steps {
			want.Status = step.status
			want.Attempts++
			want.UpdatedAt = normTime(at(100 + i))
			got, err := store.UpdateDelivery(ctx, d.ID, row.SubscriberID, func(r *newsletter.Delivery) error {
				r.Status = step.status
				r.Attempts++
				r.UpdatedAt = at(100 + i)
				return nil
			})
			mustNotErr(t, err, "UpdateDelivery")
			equal(t, "UpdateDelivery result", got, want, normDelivery)
			got, err = store.Delivery(ctx, d.ID, row.SubscriberID)
			mustNotErr(t, err, "Delivery after update")
			equal(t, "Delivery after update", got, want, normDelivery)
			wantCounts(t, store, d.ID, step.want, fmt.Sprintf("after step %d to %s", i, step.status))
		}
	})

	t.Run("UpdateFnError", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		orig := MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliveryQueued))

		got, err := store.UpdateDelivery(ctx, d.ID, orig.SubscriberID, func(r *newsletter.Delivery) error {
			r.Status = newsletter.DeliverySent
			r.Attempts = 99
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Errorf("UpdateDelivery: got err %v, want fn's error", err)
		}
		if got != nil {
			t.Errorf("UpdateDelivery: got record %+v with fn's error, want nil", got)
		}
		stored, err := store.Delivery(ctx, d.ID, orig.SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "Delivery after refused update", stored, orig, normDelivery)
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 1, Queued: 1}, "after refused update")
	})

	t.Run("List", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		other := MustCreateDigest(t, store, newDigest(2))
		const n = 10
		want := make([]*newsletter.Delivery, n)
		for _, i := range shuffled(n) {
			status := newsletter.DeliveryQueued
			if i%3 == 0 {
				status = newsletter.DeliverySent
			}
			want[i] = MustCreateDelivery(t, store, newDelivery(d.ID, i, status))
			// A row of another digest for a reader who sorts among them.
			MustCreateDelivery(t, store, newDelivery(other.ID, i, newsletter.DeliveryFailed))
		}

		filters := []struct {
			name string
			f    newsletter.DeliveryFilter
		}{
			{"all", newsletter.DeliveryFilter{}},
			{"sent", newsletter.DeliveryFilter{Status: newsletter.DeliverySent}},
			{"queued", newsletter.DeliveryFilter{Status: newsletter.DeliveryQueued}},
			{"no match", newsletter.DeliveryFilter{Status: newsletter.DeliveryFailed}},
		}
		for _, tt := range filters {
			var wantRows []*newsletter.Delivery
			for _, r := range want {
				if tt.f.Match(r) {
					wantRows = append(wantRows, r)
				}
			}
			for _, limit := range limits {
				t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
					got := allPages(t, limit, func(p newsletter.Page) ([]*newsletter.Delivery, string, error) {
						return store.Deliveries(t.Context(), d.ID, tt.f, p)
					})
					sameIDs(t, "Deliveries", ids(got, deliveryKey), ids(wantRows, deliveryKey))
					if len(got) == len(wantRows) {
						for i := range got {
							equal(t, "Deliveries record", got[i], wantRows[i], normDelivery)
						}
					}
				})
			}
		}

		for _, digestID := range []string{"", "daily-1999-01-01"} {
			got, next, err := store.Deliveries(ctx, digestID, newsletter.DeliveryFilter{}, newsletter.Page{})
			mustNotErr(t, err, fmt.Sprintf("Deliveries of digest %q", digestID))
			if len(got) != 0 || next != "" {
				t.Errorf("Deliveries of digest %q: got %d rows and cursor %q, want none and \"\"", digestID, len(got), next)
			}
		}
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		const rows, goroutines = 200, 8
		for i := range rows {
			r := newDelivery(d.ID, i, newsletter.DeliveryQueued)
			r.Attempts = 0
			MustCreateDelivery(t, store, r)
		}
		index := map[string]int{}
		for i := range rows {
			index[name("sub", i)] = i
		}
		// Every goroutine updates every row once. Row i's status after k
		// updates is DeliveryStatuses[(3k+i)%8], so the final counters
		// hold only if no update was lost or counted twice.
		statusAfter := func(i, k int) newsletter.DeliveryStatus {
			return newsletter.DeliveryStatuses[(3*k+i)%len(newsletter.DeliveryStatuses)]
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for j := range rows {
					// Half the goroutines walk up, half walk down: each
					// row is fought over by several at once.
					i := j
					if g%2 == 1 {
						i = rows - 1 - j
					}
					_, err := store.UpdateDelivery(ctx, d.ID, name("sub", i), func(r *newsletter.Delivery) error {
						r.Attempts++
						r.Status = statusAfter(index[r.SubscriberID], r.Attempts)
						return nil
					})
					if err != nil {
						t.Errorf("UpdateDelivery: got err %v, want nil", err)
						return
					}
				}
			})
		}
		wg.Wait()

		want := newsletter.Counters{Total: rows}
		for i := range rows {
			want.Add(statusAfter(i, goroutines), 1)
		}
		wantCounts(t, store, d.ID, want, "after concurrent updates")
		got := allPages(t, 0, func(p newsletter.Page) ([]*newsletter.Delivery, string, error) {
			return store.Deliveries(ctx, d.ID, newsletter.DeliveryFilter{}, p)
		})
		if c := countsOf(got); c != want {
			t.Errorf("recount of listed rows:\ngot  %+v\nwant %+v", c, want)
		}
		for _, r := range got {
			if r.Attempts != goroutines {
				t.Errorf("row %s attempts: got %d, want %d (update lost)", r.SubscriberID, r.Attempts, goroutines)
			}
		}
	})

	t.Run("Copies", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		arg := newDelivery(d.ID, 1, newsletter.DeliveryQueued)
		want := normDelivery(arg)
		MustCreateDelivery(t, store, arg)
		arg.Status = newsletter.DeliverySent

		got, err := store.Delivery(ctx, d.ID, want.SubscriberID)
		mustNotErr(t, err, "Delivery")
		got.Status = newsletter.DeliveryFailed
		list, _, err := store.Deliveries(ctx, d.ID, newsletter.DeliveryFilter{}, newsletter.Page{})
		mustNotErr(t, err, "Deliveries")
		list[0].Status = newsletter.DeliveryFailed
		updated, err := store.UpdateDelivery(ctx, d.ID, want.SubscriberID, func(*newsletter.Delivery) error { return nil })
		mustNotErr(t, err, "UpdateDelivery")
		updated.Status = newsletter.DeliverySkipped

		got, err = store.Delivery(ctx, d.ID, want.SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "Delivery after changing returned copies", got, want, normDelivery)
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 1, Queued: 1}, "after changing returned copies")
	})
}
