package newsletter_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestErrorCodeAndMessage(t *testing.T) {
	notFound := newsletter.Errorf(newsletter.ENOTFOUND, "Subscriber %q not found.", "s1")
	tests := []struct {
		name    string
		err     error
		code    string
		message string
	}{
		{"nil", nil, "", ""},
		{"Error", notFound, newsletter.ENOTFOUND, `Subscriber "s1" not found.`},
		{"wrapped once", fmt.Errorf("get subscriber: %w", notFound), newsletter.ENOTFOUND, `Subscriber "s1" not found.`},
		{"wrapped twice", fmt.Errorf("api: %w", fmt.Errorf("get subscriber: %w", notFound)), newsletter.ENOTFOUND, `Subscriber "s1" not found.`},
		{"joined", errors.Join(errors.New("first"), newsletter.Errorf(newsletter.ECONFLICT, "Taken.")), newsletter.ECONFLICT, "Taken."},
		{"plain error", errors.New("disk on fire at /var/db"), newsletter.EINTERNAL, "Internal error."},
		{"plain error wrapped", fmt.Errorf("put: %w", errors.New("timeout")), newsletter.EINTERNAL, "Internal error."},
		{"formatted with %v loses the code", fmt.Errorf("get subscriber: %v", notFound), newsletter.EINTERNAL, "Internal error."},
	}
	for _, tt := range tests {
		if got := newsletter.ErrorCode(tt.err); got != tt.code {
			t.Errorf("%s: ErrorCode: got %q, want %q", tt.name, got, tt.code)
		}
		if got := newsletter.ErrorMessage(tt.err); got != tt.message {
			t.Errorf("%s: ErrorMessage: got %q, want %q", tt.name, got, tt.message)
		}
	}
}

func TestErrorf(t *testing.T) {
	e := newsletter.Errorf(newsletter.EINVALID, "At most %d sections.", 20)
	if e.Code != newsletter.EINVALID {
		t.Errorf("Code: got %q, want %q", e.Code, newsletter.EINVALID)
	}
	if want := "At most 20 sections."; e.Message != want {
		t.Errorf("Message: got %q, want %q", e.Message, want)
	}
	var target *newsletter.Error
	if !errors.As(fmt.Errorf("x: %w", e), &target) || target != e {
		t.Errorf("errors.As: got %v, want %v", target, e)
	}
	if e.Error() == "" {
		t.Errorf("Error(): got \"\", want a description")
	}
}
