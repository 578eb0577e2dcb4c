package storetest

import (
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// testBatches checks the batched ledger calls and SubscribersByID: each
// must leave the store exactly as the matching single-row calls would.
func testBatches(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("CreateDeliveries", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		existing := MustCreateDelivery(t, store, newDelivery(d.ID, 2, newsletter.DeliverySent))

		var rows []*newsletter.Delivery
		for i := 1; i <= 60; i++ {
			rows = append(rows, newDelivery(d.ID, i, newsletter.DeliveryQueued))
		}
		created, err := store.CreateDeliveries(ctx, rows)
		mustNotErr(t, err, "CreateDeliveries")
		if len(created) != len(rows) {
			t.Fatalf("CreateDeliveries: got %d results, want %d", len(created), len(rows))
		}
		for i, ok := range created {
			if want := rows[i].SubscriberID != existing.SubscriberID; ok != want {
				t.Errorf("CreateDeliveries row %s: got created %v, want %v", rows[i].SubscriberID, ok, want)
			}
		}
		got, err := store.Delivery(ctx, d.ID, existing.SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "existing row after CreateDeliveries", got, existing, normDelivery)
		got, err = store.Delivery(ctx, d.ID, rows[0].SubscriberID)
		mustNotErr(t, err, "Delivery")
		equal(t, "created row", got, rows[0], normDelivery)
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 60, Queued: 59, Sent: 1}, "after CreateDeliveries")

		// Again: a repeated fan-out page creates nothing and counts nothing.
		created, err = store.CreateDeliveries(ctx, rows)
		mustNotErr(t, err, "CreateDeliveries again")
		for i, ok := range created {
			if ok {
				t.Errorf("CreateDeliveries again, row %s: got created, want left", rows[i].SubscriberID)
			}
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 60, Queued: 59, Sent: 1}, "after CreateDeliveries again")
	})

	t.Run("CreateDeliveriesInvalid", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		other := MustCreateDigest(t, store, newDigest(2))
		tests := []struct {
			name string
			rows []*newsletter.Delivery
		}{
			{"no subscriber", []*newsletter.Delivery{newDelivery(d.ID, 1, newsletter.DeliveryQueued), {DigestID: d.ID, Status: newsletter.DeliveryQueued}}},
			{"no digest", []*newsletter.Delivery{newDelivery(d.ID, 1, newsletter.DeliveryQueued), {SubscriberID: "sub-09", Status: newsletter.DeliveryQueued}}},
			{"two digests", []*newsletter.Delivery{newDelivery(d.ID, 1, newsletter.DeliveryQueued), newDelivery(other.ID, 2, newsletter.DeliveryQueued)}},
			{"nil row", []*newsletter.Delivery{newDelivery(d.ID, 1, newsletter.DeliveryQueued), nil}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := store.CreateDeliveries(ctx, tt.rows)
				wantCode(t, err, newsletter.EINVALID, "CreateDeliveries")
				_, err = store.Delivery(ctx, d.ID, name("sub", 1))
				wantCode(t, err, newsletter.ENOTFOUND, "Delivery after a refused CreateDeliveries")
				wantCounts(t, store, d.ID, newsletter.Counters{}, "after a refused CreateDeliveries")
			})
		}
	})

	t.Run("ClaimDeliveries", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		statuses := []newsletter.DeliveryStatus{
			newsletter.DeliveryQueued, newsletter.DeliverySending, newsletter.DeliverySent,
			newsletter.DeliveryUnknown, newsletter.DeliveryQueued, newsletter.DeliverySkipped,
		}
		var rows []*newsletter.Delivery
		for i, st := range statuses {
			rows = append(rows, MustCreateDelivery(t, store, newDelivery(d.ID, i+1, st)))
		}
		ids := []string{rows[0].SubscriberID, "sub-missing", rows[1].SubscriberID, rows[2].SubscriberID, rows[3].SubscriberID, rows[4].SubscriberID, rows[5].SubscriberID}
		now, lease := at(100), at(102)
		claims, err := store.ClaimDeliveries(ctx, d.ID, ids, now, lease)
		mustNotErr(t, err, "ClaimDeliveries")
		if len(claims) != len(ids) {
			t.Fatalf("ClaimDeliveries: got %d results, want %d", len(claims), len(ids))
		}
		if claims[1].Row != nil || claims[1].Claimed {
			t.Errorf("ClaimDeliveries of a missing row: got %+v, want none", claims[1])
		}
		for _, i := range []int{0, 4} { // the queued rows
			want := *rows[i]
			want.Status, want.LeaseUntil, want.UpdatedAt, want.Attempts = newsletter.DeliverySending, lease, now, rows[i].Attempts+1
			c := claims[map[int]int{0: 0, 4: 5}[i]]
			if !c.Claimed {
				t.Errorf("ClaimDeliveries of queued %s: not claimed", want.SubscriberID)
			}
			equal(t, "claimed row returned", c.Row, &want, normDelivery)
			got, err := store.Delivery(ctx, d.ID, want.SubscriberID)
			mustNotErr(t, err, "Delivery")
			equal(t, "claimed row stored", got, &want, normDelivery)
		}
		for pos, i := range map[int]int{2: 1, 3: 2, 4: 3, 6: 5} { // the rows not queued
			c := claims[pos]
			if c.Claimed {
				t.Errorf("ClaimDeliveries of %s row %s: claimed, want left", rows[i].Status, rows[i].SubscriberID)
			}
			equal(t, "unclaimed row returned", c.Row, rows[i], normDelivery)
			got, err := store.Delivery(ctx, d.ID, rows[i].SubscriberID)
			mustNotErr(t, err, "Delivery")
			equal(t, "unclaimed row stored", got, rows[i], normDelivery)
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 6, Sending: 3, Sent: 1, Unknown: 1, Skipped: 1}, "after ClaimDeliveries")

		// A second claim of the same rows claims nothing.
		claims, err = store.ClaimDeliveries(ctx, d.ID, ids, at(101), at(103))
		mustNotErr(t, err, "ClaimDeliveries again")
		for i, c := range claims {
			if c.Claimed {
				t.Errorf("ClaimDeliveries again, %s: claimed, want left", ids[i])
			}
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 6, Sending: 3, Sent: 1, Unknown: 1, Skipped: 1}, "after ClaimDeliveries again")

		// Another digest, or none, claims nothing.
		claims, err = store.ClaimDeliveries(ctx, "daily-1999-01-01", ids[:1], now, lease)
		mustNotErr(t, err, "ClaimDeliveries of a missing digest")
		if len(claims) != 1 || claims[0].Row != nil || claims[0].Claimed {
			t.Errorf("ClaimDeliveries of a missing digest: got %+v, want one empty claim", claims)
		}
	})

	t.Run("SettleDeliveries", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d := MustCreateDigest(t, store, newDigest(1))
		statuses := []newsletter.DeliveryStatus{
			newsletter.DeliverySending, newsletter.DeliverySending, newsletter.DeliveryQueued,
			newsletter.DeliveryUnknown, newsletter.DeliverySent, newsletter.DeliveryBounced,
		}
		var rows []*newsletter.Delivery
		for i, st := range statuses {
			rows = append(rows, MustCreateDelivery(t, store, newDelivery(d.ID, i+1, st)))
		}
		byID := map[string]*newsletter.Delivery{}
		for _, r := range rows {
			byID[r.SubscriberID] = r
		}
		outcomes := []newsletter.Outcome{
			{SubscriberID: rows[0].SubscriberID, Status: newsletter.DeliverySent, MessageID: "ses-1"},
			{SubscriberID: rows[1].SubscriberID, Status: newsletter.DeliveryFailed, Reason: "rejected"},
			{SubscriberID: rows[2].SubscriberID, Status: newsletter.DeliverySkipped, Reason: "unsubscribed"},
			{SubscriberID: "sub-missing", Status: newsletter.DeliverySent},
			{SubscriberID: rows[3].SubscriberID, Status: newsletter.DeliveryUnknown, Reason: "no answer"},
			{SubscriberID: rows[4].SubscriberID, Status: newsletter.DeliveryFailed, Reason: "not this"},
			{SubscriberID: rows[5].SubscriberID, Status: newsletter.DeliverySent, MessageID: "not this"},
		}
		now := at(200)
		written, err := store.SettleDeliveries(ctx, d.ID, outcomes, now)
		mustNotErr(t, err, "SettleDeliveries")
		wantWritten := []bool{true, true, true, false, true, false, false}
		if len(written) != len(wantWritten) {
			t.Fatalf("SettleDeliveries: got %d results, want %d", len(written), len(wantWritten))
		}
		for i, w := range wantWritten {
			if written[i] != w {
				t.Errorf("SettleDeliveries %s: got written %v, want %v", outcomes[i].SubscriberID, written[i], w)
			}
		}
		for i, o := range outcomes {
			if o.SubscriberID == "sub-missing" {
				_, err := store.Delivery(ctx, d.ID, o.SubscriberID)
				wantCode(t, err, newsletter.ENOTFOUND, "Delivery of a missing row after SettleDeliveries")
				continue
			}
			want := *byID[o.SubscriberID]
			if wantWritten[i] {
				want.Status, want.MessageID, want.Reason = o.Status, o.MessageID, o.Reason
				want.LeaseUntil, want.UpdatedAt = time.Time{}, now
			}
			got, err := store.Delivery(ctx, d.ID, o.SubscriberID)
			mustNotErr(t, err, "Delivery")
			equal(t, "row after SettleDeliveries", got, &want, normDelivery)
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 6, Sent: 2, Failed: 1, Skipped: 1, Unknown: 1, Bounced: 1}, "after SettleDeliveries")

		for _, bad := range []newsletter.Outcome{{Status: newsletter.DeliverySent}, {SubscriberID: rows[3].SubscriberID, Status: "delivered-ish"}} {
			_, err := store.SettleDeliveries(ctx, d.ID, []newsletter.Outcome{{SubscriberID: rows[3].SubscriberID, Status: newsletter.DeliverySent}, bad}, now)
			wantCode(t, err, newsletter.EINVALID, "SettleDeliveries with a bad outcome")
		}
		got, err := store.Delivery(ctx, d.ID, rows[3].SubscriberID)
		mustNotErr(t, err, "Delivery")
		if got.Status != newsletter.DeliveryUnknown {
			t.Errorf("row after a refused SettleDeliveries: got status %s, want unknown", got.Status)
		}
		wantCounts(t, store, d.ID, newsletter.Counters{Total: 6, Sent: 2, Failed: 1, Skipped: 1, Unknown: 1, Bounced: 1}, "after refused SettleDeliveries")
	})

	t.Run("SubscribersByID", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		a := MustCreateSubscriber(t, store, newSubscriber(1))
		b := MustCreateSubscriber(t, store, newSubscriber(2))
		got, err := store.SubscribersByID(ctx, []string{b.ID, "sub-missing", a.ID, "", b.ID})
		mustNotErr(t, err, "SubscribersByID")
		want := []*newsletter.Subscriber{b, nil, a, nil, b}
		if len(got) != len(want) {
			t.Fatalf("SubscribersByID: got %d readers, want %d", len(got), len(want))
		}
		for i := range want {
			if want[i] == nil {
				if got[i] != nil {
					t.Errorf("SubscribersByID[%d]: got %s, want nil", i, got[i].ID)
				}
				continue
			}
			equal(t, "SubscribersByID", got[i], want[i], normSubscriber)
		}
		if got[0] == got[4] && got[0] != nil {
			t.Errorf("SubscribersByID: one record for two positions, want copies")
		}
		got, err = store.SubscribersByID(ctx, nil)
		mustNotErr(t, err, "SubscribersByID of none")
		if len(got) != 0 {
			t.Errorf("SubscribersByID of none: got %d, want 0", len(got))
		}
	})
}
