package bolt

import (
	"fmt"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/storetest"
)

// BenchmarkLedgerTask is one send task's store work on the real file
// (synced commits, as on a laptop): claim 50 rows, re-read their 50
// readers, settle the 50 rows. ns/op is per task; ns/reader divides it.
func BenchmarkLedgerTask(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	const task = 50
	const readers = 20000
	storetest.MustCreateDigest(b, s, &newsletter.Digest{ID: "daily-2026-11-26"})
	ids := make([]string, readers)
	rows := make([]*newsletter.Delivery, 0, 500)
	for i := range readers {
		ids[i] = fmt.Sprintf("sub-%09d", i)
		storetest.MustCreateSubscriber(b, s, &newsletter.Subscriber{ID: ids[i], Email: fmt.Sprintf("r%d@example.com", i), Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily})
		rows = append(rows, &newsletter.Delivery{DigestID: "daily-2026-11-26", SubscriberID: ids[i], Status: newsletter.DeliveryQueued})
		if len(rows) == cap(rows) {
			if _, err := s.CreateDeliveries(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	now := time.Now()
	outcomes := make([]newsletter.Outcome, task)
	n := 0
	for b.Loop() {
		if n+task > readers {
			b.StopTimer()
			// Start the rows again from queued: a fresh digest's worth.
			for i := 0; i < readers; i += task {
				for j := range task {
					outcomes[j] = newsletter.Outcome{SubscriberID: ids[i+j], Status: newsletter.DeliveryQueued}
				}
				if _, err := s.SettleDeliveries(ctx, "daily-2026-11-26", outcomes, now); err != nil {
					b.Fatal(err)
				}
			}
			n = 0
			b.StartTimer()
		}
		batch := ids[n : n+task]
		n += task
		if _, err := s.ClaimDeliveries(ctx, "daily-2026-11-26", batch, now, now.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.SubscribersByID(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for j, id := range batch {
			outcomes[j] = newsletter.Outcome{SubscriberID: id, Status: newsletter.DeliverySent, MessageID: "0100018f-" + id}
		}
		if _, err := s.SettleDeliveries(ctx, "daily-2026-11-26", outcomes, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*task), "ns/reader")
}
