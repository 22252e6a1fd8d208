// Package apierr is the one typed API error of snapstack: an Alibaba Cloud
// error code, the HTTP status the documents give for it, and a message that
// is safe to show to a client. Errors are made where a rule lives (the
// product services) and rendered once, at the HTTP edge.
//
// A cause may be attached for the server log; it is never rendered.
package apierr

import (
	"errors"
	"fmt"
)

// Error is an API error as a client sees it.
type Error struct {
	Code       string // e.g. "InvalidSnapshotId.NotFound"
	HTTPStatus int    // e.g. 404
	Message    string // shown to the client
	cause      error  // logged, never sent
}

// Error implements error. It never includes the cause.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the hidden cause, for errors.Is/As in logs and tests.
func (e *Error) Unwrap() error { return e.cause }

// Cause returns the hidden cause (may be nil).
func (e *Error) Cause() error { return e.cause }

// New defines an error.
func New(code string, status int, message string) *Error {
	return &Error{Code: code, HTTPStatus: status, Message: message}
}

// WithMessage returns a copy with another message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// WithMessagef returns a copy with a formatted message.
func (e *Error) WithMessagef(format string, a ...any) *Error {
	return e.WithMessage(fmt.Sprintf(format, a...))
}

// WithCause returns a copy carrying cause for the log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, apierr.DiskNotFound) works on copies.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Internal wraps an unexpected error as InternalError; the cause is kept
// for the log only.
func Internal(cause error) *Error { return InternalError.WithCause(cause) }

// MissingParameter reports a required parameter that was not sent.
func MissingParameter(name string) *Error {
	return New("MissingParameter", 400, fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name))
}

// InvalidParameter reports a parameter whose value is not acceptable.
func InvalidParameter(name, detail string) *Error {
	msg := fmt.Sprintf("The specified parameter %q is not valid.", name)
	if detail != "" {
		msg += " " + detail
	}
	return New("InvalidParameter", 400, msg)
}
