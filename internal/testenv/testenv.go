// Package testenv holds the one rule for tests that need a program the
// machine may lack (Java and the npm stand-ins, Chromium, php): on a
// developer's machine such a test skips and says how to install what is
// missing; in CI, where .ci/run installs everything and sets CI, it fails,
// so that a component that went missing never passes as a skip.
package testenv

import (
	"os"
	"testing"
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
