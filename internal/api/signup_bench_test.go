package api_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// BenchmarkSignUp measures POST /subscribe through the handler, on the real
// stack with confirmations sent in the background, for an address in each
// state: new, pending (asked today, so no second email), confirmed and
// unsubscribed. The states take turns, so that whatever else the machine
// is doing weighs on each alike, and each is reported as ns/<state>, with
// the slowest over the fastest as max/min. The figures should be close: a
// gap is a timing tell that says whether an address is on the list.
//
// Between two sign-ups, untimed, the background email is let finish and
// its garbage collected, as the per-IP rate limit (one sign-up every 12 s
// after a burst of 5) would allow: ns/<state> is the answer's latency,
// which is what a prober sees, not the cost of the email.
//
//	go test -run='^$' -bench=SignUp -benchtime=500x ./internal/api
func BenchmarkSignUp(b *testing.B) {
	states := []string{"new", "pending", "confirmed", "unsubscribed"}
	e := MustEnv(b)
	ctx := context.Background()
	addr := func(state string, i int) string { return fmt.Sprintf("%s-%d@example.com", state, i) }
	now := e.clock.Now()
	for _, state := range states[1:] {
		for i := range b.N {
			sub := &newsletter.Subscriber{
				ID: fmt.Sprintf("%s-%d", state, i), Email: addr(state, i), Status: newsletter.SubscriberStatus(state),
				Frequency: newsletter.Daily, Format: newsletter.FormatFull, CreatedAt: now, UpdatedAt: now,
			}
			if sub.Status == newsletter.StatusPending {
				sub.ConfirmationSentAt = now.Add(-time.Hour)
			}
			if err := e.store.CreateSubscriber(ctx, sub); err != nil {
				b.Fatal(err)
			}
		}
	}
	total := make([]time.Duration, len(states))
	b.ResetTimer()
	for i := range b.N {
		for k := range states {
			state := (i + k) % len(states) // a different state goes first each round
			b.StopTimer()
			if err := e.svc.WaitForMail(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			body := []byte(`{"email":"` + addr(states[state], i) + `","frequency":"weekly"}`)
			b.StartTimer()
			t0 := time.Now()
			w := e.serve("POST", "/subscribe", "application/json", "", "", body)
			total[state] += time.Since(t0)
			if w.Code != http.StatusAccepted {
				b.Fatalf("sign-up %s %d: got %d %s", states[state], i, w.Code, w.Body)
			}
		}
	}
	b.StopTimer()
	if err := e.svc.WaitForMail(ctx); err != nil {
		b.Fatal(err)
	}
	for k, state := range states {
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(b.N), "ns/"+state)
	}
	b.ReportMetric(float64(slices.Max(total))/float64(slices.Min(total)), "max/min")
}
