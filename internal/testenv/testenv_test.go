package testenv

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a testing.TB that notes how Missing ended it.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()      {}
func (r *recorder) Fatal(...any) { r.failed = true }
func (r *recorder) Skip(...any)  { r.skipped = true }

func TestMissing(t *testing.T) {
	for _, ci := range []string{"", "1"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Missing(r, "php is not installed")
		if want := ci != ""; r.failed != want || r.skipped == want {
			t.Errorf("CI=%q: failed %v, skipped %v; want failed only in CI, skipped only outside", ci, r.failed, r.skipped)
		}
	}
}

// TestPoll runs in a synctest bubble: Poll's waits pass on the bubble's
// clock, and take no time.
func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start, looks := time.Now(), 0
		if err := Poll(t.Context(), time.Minute, func() bool { looks++; return looks == 4 }); err != nil {
			t.Fatalf("Poll with a condition true at the 4th look: got %v, want nil", err)
		}
		if got, want := time.Since(start), 70*time.Millisecond; looks != 4 || got != want {
			t.Errorf("Poll: %d looks in %v, want 4 in %v (waits of 10, 20 and 40 ms)", looks, got, want)
		}

		start = time.Now()
		err := Poll(t.Context(), 2*time.Second, func() bool { return false })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Poll past its timeout: got %v, want context.DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("Poll gave up after %v, want 2s", got)
		}

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := Poll(ctx, time.Minute, func() bool { return false }); !errors.Is(err, context.Canceled) {
			t.Errorf("Poll with an ended context: got %v, want context.Canceled", err)
		}
	})
}
