package dynamo

import (
	"errors"
	"time"
)

// ErrCrash is what a ledger call that a test made crash returns: it
// stopped between its row writes and its closing write.
var ErrCrash = errors.New("dynamo: crashed before counting (test)")

// LedgerWindow and LedgerGrace are how long a marker lives.
const LedgerWindow, LedgerGrace = ledgerWindow, ledgerGrace

// SetClock sets the clock of the counters' markers.
func (s *Store) SetClock(now func() time.Time) { s.clock = now }

func (s *Store) testHooks() *hooks {
	if s.hooks == nil {
		s.hooks = &hooks{}
	}
	return s.hooks
}

// CrashBeforeClose makes the next n ledger calls stop, as a crash would,
// after their row writes and before counting them.
func (s *Store) CrashBeforeClose(n int) {
	s.testHooks().beforeClose = func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n == 0 {
			return nil
		}
		n--
		return ErrCrash
	}
}

// AfterRecount runs fn between the recount and the write of every
// repair.
func (s *Store) AfterRecount(fn func()) { s.testHooks().afterRecount = fn }

// SetBeforeClose runs fn before every ledger call's closing write; an
// error stops the call there.
func (s *Store) SetBeforeClose(fn func() error) { s.testHooks().beforeClose = fn }
