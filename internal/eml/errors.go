package eml

import "errors"

// Errors a mailer wraps (with %w) to say what became of a send, so that the
// sender can follow the ledger protocol without knowing the provider:
// throttled sends are retried later, rejected ones are final for that
// reader, and a send whose outcome is unknown is reconciled before any
// resend. Any other error means the message certainly did not leave.
var (
	// ErrThrottled: the provider asked us to slow down (SES throttling,
	// SMTP 421/451/452). Nothing was sent; retry later.
	ErrThrottled = errors.New("mailer throttled")
	// ErrRejected: the provider refused this message for good (SES
	// MessageRejected, SMTP 5xx). Do not retry.
	ErrRejected = errors.New("message rejected")
	// ErrUnknownOutcome: the request left but no answer came back (a
	// timeout or a dropped connection after the message was handed over).
	ErrUnknownOutcome = errors.New("send outcome unknown")
	// ErrPaused: the account cannot send at all for now (SES SendingPaused
	// or AccountSuspended). Stop sending; nothing was sent.
	ErrPaused = errors.New("sending paused by provider")
)
