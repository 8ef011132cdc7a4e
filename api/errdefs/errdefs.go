// Package errdefs holds the sentinel errors crib's managers return. The gRPC
// layer maps them to status codes, so handlers and managers return plain
// wrapped errors (fmt.Errorf("...: %w", errdefs.ErrNotFound)) and never build
// gRPC statuses themselves.
package errdefs

import (
	"errors"
	"fmt"
)

// Sentinel errors. Wrap them with %w and a message naming the field or object.
var (
	// ErrInvalidArgument: the request is malformed (maps to InvalidArgument).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the named object does not exist (maps to NotFound).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with that name exists (maps to AlreadyExists).
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the object is in the wrong state (maps to FailedPrecondition).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: a dependency is not reachable right now (maps to Unavailable).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthenticated: a registry refused our credentials (maps to Unauthenticated).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnimplemented: the feature is not built (maps to Unimplemented).
	ErrUnimplemented = errors.New("not implemented")
)

// InvalidArgument returns an error wrapping ErrInvalidArgument with msg.
func InvalidArgument(format string, args ...any) error {
	return wrap(ErrInvalidArgument, format, args...)
}

// NotFound returns an error wrapping ErrNotFound with msg.
func NotFound(format string, args ...any) error { return wrap(ErrNotFound, format, args...) }

// AlreadyExists returns an error wrapping ErrAlreadyExists with msg.
func AlreadyExists(format string, args ...any) error {
	return wrap(ErrAlreadyExists, format, args...)
}

// FailedPrecondition returns an error wrapping ErrFailedPrecondition with msg.
func FailedPrecondition(format string, args ...any) error {
	return wrap(ErrFailedPrecondition, format, args...)
}

// Unauthenticated returns an error wrapping ErrUnauthenticated with msg.
func Unauthenticated(format string, args ...any) error {
	return wrap(ErrUnauthenticated, format, args...)
}

// Unimplemented returns an error wrapping ErrUnimplemented with msg.
func Unimplemented(format string, args ...any) error {
	return wrap(ErrUnimplemented, format, args...)
}

// Unavailable returns an error wrapping ErrUnavailable with msg.
func Unavailable(format string, args ...any) error { return wrap(ErrUnavailable, format, args...) }

// kindError carries a message and the sentinel it belongs to. Error() shows
// only the message, so gRPC clients read exactly what we wrote; errors.Is
// finds both the sentinel and any cause wrapped with %w in the message.
type kindError struct {
	kind  error
	cause error
}

func (e *kindError) Error() string   { return e.cause.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.cause} }

func wrap(kind error, format string, args ...any) error {
	return &kindError{kind: kind, cause: fmt.Errorf(format, args...)}
}
