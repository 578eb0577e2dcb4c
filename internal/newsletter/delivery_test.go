package newsletter_test

import (
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestDeliveryStatusSettled(t *testing.T) {
	want := map[newsletter.DeliveryStatus]bool{
		newsletter.DeliveryQueued:     false,
		newsletter.DeliverySending:    false,
		newsletter.DeliveryUnknown:    false,
		newsletter.DeliverySent:       true,
		newsletter.DeliverySkipped:    true,
		newsletter.DeliveryFailed:     true,
		newsletter.DeliveryBounced:    true,
		newsletter.DeliveryComplained: true,
	}
	if got := len(newsletter.DeliveryStatuses); got != len(want) {
		t.Errorf("len(DeliveryStatuses): got %d, want %d", got, len(want))
	}
	for _, s := range newsletter.DeliveryStatuses {
		w, ok := want[s]
		if !ok {
			t.Errorf("status %q: not in the test's table", s)
			continue
		}
		if got := s.Settled(); got != w {
			t.Errorf("%q.Settled(): got %v, want %v", s, got, w)
		}
	}
	if newsletter.DeliveryStatus("lost").Settled() {
		t.Errorf(`"lost".Settled(): got true, want false`)
	}
}

func TestCountersAdd(t *testing.T) {
	for _, s := range newsletter.DeliveryStatuses {
		var c newsletter.Counters
		c.Add(s, 3)
		c.Add(s, -1)
		// The status's counter is 2; every other one, and Total, stay zero.
		want := newsletter.Counters{}
		*fieldPtr(t, &want, s) = 2
		if c != want {
			t.Errorf("Add(%q): got %+v, want %+v", s, c, want)
		}
	}

	var c newsletter.Counters
	c.Add("lost", 5)
	if c != (newsletter.Counters{}) {
		t.Errorf("Add of an unknown status: got %+v, want zero counters", c)
	}
}

// fieldPtr returns the counter of status s in c.
func fieldPtr(tb testing.TB, c *newsletter.Counters, s newsletter.DeliveryStatus) *int64 {
	tb.Helper()
	switch s {
	case newsletter.DeliveryQueued:
		return &c.Queued
	case newsletter.DeliverySending:
		return &c.Sending
	case newsletter.DeliverySent:
		return &c.Sent
	case newsletter.DeliverySkipped:
		return &c.Skipped
	case newsletter.DeliveryFailed:
		return &c.Failed
	case newsletter.DeliveryUnknown:
		return &c.Unknown
	case newsletter.DeliveryBounced:
		return &c.Bounced
	case newsletter.DeliveryComplained:
		return &c.Complained
	}
	tb.Fatalf("status %q: not in the test's table", s)
	return nil
}

func TestCountersSettled(t *testing.T) {
	c := newsletter.Counters{
		Total: 1000, Queued: 1, Sending: 2, Sent: 4, Skipped: 8,
		Failed: 16, Unknown: 32, Bounced: 64, Complained: 128,
	}
	if got, want := c.Settled(), int64(4+8+16+64+128); got != want {
		t.Errorf("Settled(): got %d, want %d", got, want)
	}
	// Settled agrees with DeliveryStatus.Settled for every status.
	for _, s := range newsletter.DeliveryStatuses {
		var one newsletter.Counters
		one.Add(s, 1)
		want := int64(0)
		if s.Settled() {
			want = 1
		}
		if got := one.Settled(); got != want {
			t.Errorf("Settled() with one %q row: got %d, want %d", s, got, want)
		}
	}
}
