package newsletter_test

import (
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// checkCode fails the test when err does not carry code; code "" means no
// error is expected.
func checkCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := newsletter.ErrorCode(err); got != code {
		tb.Fatalf("error code: got %q, want %q (err: %v)", got, code, err)
	}
}
