package eml

// Sent is what became of one message of a batch handed to a mailer at
// once: the provider's message ID, or an error that wraps ErrThrottled,
// ErrRejected, ErrUnknownOutcome or ErrPaused as a single send's would.
type Sent struct {
	MessageID string
	Err       error
}
