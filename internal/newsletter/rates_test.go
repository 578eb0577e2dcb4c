package newsletter_test

import (
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestRateLimitsOver(t *testing.T) {
	var defaults newsletter.RateLimits
	tests := []struct {
		name string
		l    newsletter.RateLimits
		c    newsletter.Counters
		want bool
	}{
		{"1 bounce in 10 is below the sample", defaults, newsletter.Counters{Sent: 9, Bounced: 1}, false},
		{"4 bounces in 200 is the limit, not over", defaults, newsletter.Counters{Sent: 196, Bounced: 4}, false},
		{"5 bounces in 200", defaults, newsletter.Counters{Sent: 195, Bounced: 5}, true},
		{"1 complaint in 2000 is the limit", defaults, newsletter.Counters{Sent: 1999, Complained: 1}, false},
		{"2 complaints in 2000", defaults, newsletter.Counters{Sent: 1998, Complained: 2}, true},
		{"1 complaint in 200", defaults, newsletter.Counters{Sent: 199, Complained: 1}, true},
		{"skipped and failed are not sent", defaults, newsletter.Counters{Sent: 100, Skipped: 500, Failed: 500, Bounced: 3}, false},
		{"limit 1 never pauses", newsletter.RateLimits{MaxBounceRate: 1, MaxComplaintRate: 1}, newsletter.Counters{Bounced: 300}, false},
		{"custom sample", newsletter.RateLimits{MinSample: 10}, newsletter.Counters{Sent: 9, Bounced: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, got := tt.l.Over(tt.c)
			if got != tt.want || (got && reason == "") {
				t.Errorf("Over(%+v) = %q, %v; want %v with a reason", tt.c, reason, got, tt.want)
			}
		})
	}
}

func TestCountersSince(t *testing.T) {
	c := newsletter.Counters{Total: 10, Sent: 6, Bounced: 2, Queued: 2}
	b := newsletter.Counters{Total: 10, Sent: 2, Bounced: 2, Queued: 6}
	if got, want := c.Since(b), (newsletter.Counters{Sent: 4, Queued: -4}); got != want {
		t.Errorf("Since = %+v, want %+v", got, want)
	}
}
