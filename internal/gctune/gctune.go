// Package gctune sets the garbage collector for Broadsheet's processes.
//
// A sending process keeps a live heap of a few megabytes (the rendered
// editions, a page of readers, a task's messages) while it allocates a
// message's worth of memory per reader. With Go's default GOGC of 100 the
// collector then runs every few megabytes allocated: `make bench` measured
// it at about a third of the CPU of a send. At 400 it runs a quarter as
// often, for about 30 MB more peak heap, which both a laptop and a 256 MB
// Lambda function have to spare.
//
// GOGC alone lets the heap grow to five times what is live, which with
// send tasks of 500 readers and a bulk mailer's requests in flight came to
// 92 MB of peak RSS in make bench's ses mode. A soft memory limit of
// MemoryLimit makes the collector run sooner only when the heap nears it:
// the same run peaked at 67 MB, at no CPU cost the benchmark could tell
// from its noise (the collector never takes more than about half the CPU
// to hold a limit, so a live heap above it slows a process, never stops it).
package gctune

import "runtime/debug"

// Percent is the GOGC value Apply sets.
const Percent = 400

// MemoryLimit is the soft memory limit, in bytes, Apply sets.
const MemoryLimit = 48 << 20

// Apply sets GOGC to Percent and the memory limit to MemoryLimit, each
// unless the environment sets it (GOGC, GOMEMLIMIT), in which case the
// runtime has already applied that.
func Apply(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
