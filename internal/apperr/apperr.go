// Package apperr owns ispgraph's domain errors: a code a client can branch on
// and a message a person can act on. The GraphQL error presenter maps them (and
// ent's errors) to extensions.code in one place.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the machine-readable kind of an error, sent as extensions.code.
type Code string

// The codes the API promises.
const (
	BadUserInput            Code = "BAD_USER_INPUT"
	Unauthenticated         Code = "UNAUTHENTICATED"
	Forbidden               Code = "FORBIDDEN"
	NotFound                Code = "NOT_FOUND"
	Conflict                Code = "CONFLICT"
	ComplexityLimitExceeded Code = "COMPLEXITY_LIMIT_EXCEEDED"
	DepthLimitExceeded      Code = "DEPTH_LIMIT_EXCEEDED"
	RateLimited             Code = "RATE_LIMITED"
	Internal                Code = "INTERNAL"
	// ParseFailed: the request is not a GraphQL request (malformed or empty
	// body, a JSON array, a syntax error in the document).
	ParseFailed Code = "GRAPHQL_PARSE_FAILED"
	// ValidationFailed: the document does not validate against the schema
	// (unknown field, wrong argument type, missing variable).
	ValidationFailed Code = "GRAPHQL_VALIDATION_FAILED"
)

// Error is a domain error. Message is shown to the client; Err is logged only.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the client-facing message.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// E returns an error with code and a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with code and message that keeps err as its cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of err, or Internal when err carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
