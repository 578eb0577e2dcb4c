package dynamo

import (
	"errors"
	"time"
)

// ErrCrash is what a store made to crash returns from a ledger call that
// stopped between its row writes and its closing write.
var ErrCrash = errors.New("dynamo: crashed before counting (test)")

// SetClock sets the clock of the counters' markers.
func (s *Store) SetClock(now func() time.Time) { s.clock = now }

// CrashBeforeClose makes the next n ledger calls stop, as a crash would,
// after their row writes and before counting them.
func (s *Store) CrashBeforeClose(n int) {
	s.beforeClose = func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n == 0 {
			return nil
		}
		n--
		return ErrCrash
	}
}

// LedgerWindow and LedgerGrace are how long a marker lives.
const LedgerWindow, LedgerGrace = ledgerWindow, ledgerGrace
