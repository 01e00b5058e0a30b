package api

import (
	"errors"
	"fmt"
)

// Error codes. They are mapped to HTTP statuses once, in api/httpapi, and
// back again in api/client.
const (
	EInvalid      = "invalid"       // bad input; the message says what to fix
	ENotFound     = "not_found"     // no such object
	EConflict     = "conflict"      // already exists, or wrong state for the operation
	EUnauthorized = "unauthorized"  // missing or bad credentials
	EForbidden    = "forbidden"     // authenticated but not allowed
	EUnavailable  = "unavailable"   // a dependency is down; retry later
	ETimeout      = "timeout"       // the operation did not finish in time
	EUnsupported  = "not_supported" // not built yet; the message says so
	ERateLimited  = "rate_limited"  // too many attempts; the message says when to retry
	EInternal     = "internal"      // a bug or unexpected failure
)

// Error is Strata's one error type. Message is lowercase, safe to show to the
// user, and says what to do next where that helps.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors so internals do not leak to users.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
