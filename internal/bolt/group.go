package bolt

import (
	"sync"

	"go.etcd.io/bbolt"
)

// groupCommit runs write transactions from many goroutines as few commits:
// a caller that finds no commit running leads, and commits its own change
// together with every change that queued up meanwhile; a caller that
// finds one running queues its change for the next commit and waits. So
// under load one commit (and one pair of fsyncs) carries the ledger
// writes of every queue worker, and with a single caller nothing waits
// for a timer. bbolt's own DB.Batch groups on a timer (MaxBatchDelay)
// instead, which adds that delay whenever fewer callers than MaxBatchSize
// are writing.
//
// Changes must not have side effects outside the transaction and must
// be safe to run again: when one of a group's changes fails, the group is
// rolled back and each change is run again in a transaction of its own, so
// that one failure does not fail the others.
type groupCommit struct {
	db *bbolt.DB

	mu      sync.Mutex
	pending []*change
	leading bool
	commits int // groups committed, for tests

	// release, when set, runs after each group is committed (the
	// store's memory upkeep).
	release func()
}

// change is one caller's write, and where its result goes.
type change struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// update runs fn in a write transaction, possibly shared with other
// callers' changes, and returns fn's error or the commit's.
func (g *groupCommit) update(fn func(*bbolt.Tx) error) error {
	c := &change{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.leading {
		g.mu.Unlock()
		return <-c.done
	}
	g.leading = true
	for len(g.pending) > 0 {
		group := g.pending
		g.pending = nil
		g.mu.Unlock()
		g.commit(group)
		g.mu.Lock()
		g.commits++
	}
	g.leading = false
	g.mu.Unlock()
	if g.release != nil {
		g.release()
	}
	return <-c.done
}

// commit applies a group of changes in one transaction, or each alone if
// any of them fails.
func (g *groupCommit) commit(group []*change) {
	if len(group) > 1 {
		failed := false
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for _, c := range group {
				if err := c.fn(tx); err != nil {
					failed = true
					return err
				}
			}
			return nil
		})
		if !failed {
			for _, c := range group {
				c.done <- err // nil, or the commit's own error for all
			}
			return
		}
	}
	for _, c := range group {
		c.done <- g.db.Update(c.fn)
	}
}
