package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(oldPercent)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(oldLimit)

	Apply(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GOGC unset: got %d, want %d", got, Percent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != MemoryLimit {
		t.Errorf("GOMEMLIMIT unset: got %d, want %d", got, MemoryLimit)
	}

	set := map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}
	Apply(func(k string) string { return set[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: Apply changed the percent to %d, want it left as the runtime set it", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: Apply changed the limit to %d, want it left as the runtime set it", got)
	}
}
