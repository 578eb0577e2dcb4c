package newsletter

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to a status; every other layer only
// compares codes, never messages.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	ECONFLICT     = "conflict"     // the thing exists, or is in a state that forbids the change
	EUNAUTHORIZED = "unauthorized" // no credentials, or bad ones
	EFORBIDDEN    = "forbidden"    // good credentials without the right scope
	ERATELIMITED  = "rate_limited" // too many requests; try again later
	ETOOLARGE     = "too_large"    // the request body is over the limit
	EINTERNAL     = "internal"     // anything else: never shown to a client
)

// Error is the one error type of Broadsheet. Its Message is safe to show to
// the person who made the request; internal errors never become an Error.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("broadsheet error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of the
// first *Error in its chain, or a generic text for anything internal.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
