// Package testenv holds the one rule for tests that need a program the
// machine may lack (Java and the npm stand-ins, Chromium, php): on a
// developer's machine such a test skips and says how to install what is
// missing; in CI, where .ci/run installs everything and sets CI, it fails,
// so that a component that went missing never passes as a skip.
//
// It also holds Poll, the one way a test may wait by looking again and
// again, for those programs only.
package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI: the CI variable is set, as
// .ci/run and most CI services set it.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing ends tb because what it needs is not there: msg says what and
// how to install it. It fails the test in CI and skips it elsewhere.
func Missing(tb testing.TB, msg string) {
	tb.Helper()
	if InCI() {
		tb.Fatal(msg)
		return
	}
	tb.Skip(msg)
}

// Poll calls cond until it reports true, and returns nil; or, once ctx
// ends or timeout has passed, an error saying so. The looks start 10 ms
// apart and back off to 250 ms.
//
// It is for waiting on a program outside the test process that offers
// nothing to wait on: a stand-in that has yet to listen, a page in
// Chromium that has yet to show something. cond looks at the state the
// test waits for; a test never sleeps for the time the program usually
// takes. Code of our own says when it is done instead (a channel, a Wait
// method, a synctest bubble), and is not polled.
func Poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	const first, most = 10 * time.Millisecond, 250 * time.Millisecond
	for wait := first; ; wait = min(2*wait, most) {
		if cond() {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("not so within %v: %w", timeout, ctx.Err())
		}
	}
}
