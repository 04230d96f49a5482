package tollgate

import (
	"errors"
	"fmt"
)

// Application error codes. The api package maps each to one HTTP status in one place.
const (
	EInvalid      = "invalid"      // the request is malformed or a field is out of range
	ENotFound     = "not_found"    // the addressed object does not exist
	EUnauthorized = "unauthorized" // missing or wrong credentials
	EConflict     = "conflict"     // the write conflicts with current state
	EUnavailable  = "unavailable"  // a dependency (disk, policy) cannot serve right now; retry
	EInternal     = "internal"     // a bug or an unexpected failure; detail only in logs
	ETooLarge     = "too_large"    // the request body exceeds the configured limit
	EUnsupported  = "unsupported"  // e.g. a store written by a newer schema
)

// Error is an application error: a machine code, a message safe to show to callers and, when
// the error is about one input field, that field's name.
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error // wrapped cause, never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EInvalid error about one input field; the message names the field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of err: the *Error message, or "Internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error"
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
