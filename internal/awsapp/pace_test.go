package awsapp

import "testing"

// TestPaceFor: a sender never puts more destinations in one bulk call
// than it sends in a second, and never more than SES's 50; an unknown
// account rate is the sandbox's 1/s.
func TestPaceFor(t *testing.T) {
	for _, tc := range []struct {
		account   float64
		senders   int
		limit     float64
		bulk      int
		burstWant int
	}{
		{1, 1, 0.8, 1, 1},     // the sandbox
		{14, 1, 11.2, 11, 11}, // a small production account
		{14, 5, 2.24, 2, 2},   // shared by the stack's five senders
		{200, 1, 160, 50, 160},
		{200, 5, 32, 32, 32},
		{0, 1, 1, 1, 1}, // GetAccount failed: the fallback
		{-3, 0, 1, 1, 1},
	} {
		p := PaceFor(tc.account, tc.senders)
		if diff := p.Limit - tc.limit; diff > 1e-9 || diff < -1e-9 || p.BulkSize != tc.bulk || p.Burst != tc.burstWant {
			t.Errorf("PaceFor(%v/s, %d senders) = %+v, want limit %v, burst %d, bulk size %d", tc.account, tc.senders, p, tc.limit, tc.burstWant, tc.bulk)
		}
		if float64(p.BulkSize) > max(p.Limit, 1) || p.BulkSize > MaxBulkDestinations || p.BulkSize < 1 {
			t.Errorf("PaceFor(%v/s, %d senders): bulk size %d, more than a second's sending (%v) or out of 1..50", tc.account, tc.senders, p.BulkSize, p.Limit)
		}
	}
}
