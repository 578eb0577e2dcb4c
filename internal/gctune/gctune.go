// Package gctune sets the garbage collector for Broadsheet's processes.
//
// A sending process keeps a live heap of a few megabytes (the rendered
// editions, a page of readers, a task's messages) while it allocates a
// message's worth of memory per reader. With Go's default GOGC of 100 the
// collector then runs every few megabytes allocated: `make bench` measured
// it at about a third of the CPU of a send. At 400 it runs a quarter as
// often, for about 30 MB more peak heap, which both a laptop and a 256 MB
// Lambda function have to spare.
package gctune

import "runtime/debug"

// Percent is the GOGC value Apply sets.
const Percent = 400

// Apply sets GOGC to Percent unless the environment sets GOGC itself, in
// which case the runtime has already applied that.
func Apply(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(Percent)
}
