package main

import (
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	p := progress{start: start, first: -1}
	if got := p.bar(0, 1000, start); !strings.Contains(got, "  0% 0/1000") || !strings.Contains(got, "ETA …") {
		t.Errorf("at the start: %q, want 0%% and an unknown ETA", got)
	}
	got := p.bar(500, 1000, start.Add(10*time.Second))
	for _, want := range []string{"[###############...............]", " 50% 500/1000", "50/s", "ETA 10s"} {
		if !strings.Contains(got, want) {
			t.Errorf("half way after 10 s: %q, want it to hold %q", got, want)
		}
	}
}
