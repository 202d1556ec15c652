package privicore

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to one HTTP status in internal/httpapi and is the
// "error" field of every JSON error body.
const (
	EINVALID      = "validation_failed" // 422: the request's shape is wrong
	EUNAUTHORIZED = "unauthorized"      // 401: no, unknown, expired or revoked token; bad credentials
	EFORBIDDEN    = "forbidden"         // 403: valid token, but not allowed
	ENOTFOUND     = "not_found"         // 404: missing, or another profile's
	ECONFLICT     = "conflict"          // 409: the state does not allow it
	ERATELIMIT    = "rate_limited"      // 429: too many attempts
	EREJECTED     = "rejected"          // an asynchronous command was refused (ack command_status 3)
	EUNAVAILABLE  = "unavailable"       // 503: a dependency is down; the caller may retry
	EINTERNAL     = "internal"          // 500: a bug or an unexpected failure
)

// Error is privicore's one error type. Code is machine-readable; Message is
// for people; Reason is the dotted reason key (e.g. "profile.wrong_password")
// where one applies; Fields holds per-field validation messages for EINVALID.
type Error struct {
	Code       string
	Message    string
	Reason     string
	Fields     map[string][]string
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("privicore: %s: %s (%s)", e.Code, e.Message, e.Reason)
	}
	return fmt.Sprintf("privicore: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Reject returns the error a command handler gives to refuse a command: the
// command ends with command_status 3 and the reason key as its body.
func Reject(reason, format string, args ...any) *Error {
	return &Error{Code: EREJECTED, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Forbidden returns an EFORBIDDEN error carrying a reason key.
func Forbidden(reason, format string, args ...any) *Error {
	return &Error{Code: EFORBIDDEN, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error for one field.
func Invalid(field, problem string) *Error {
	return &Error{Code: EINVALID, Message: "The given data was invalid.", Fields: map[string][]string{field: {problem}}}
}

// ValidationErrors collects per-field problems; Err returns nil when none
// were added.
type ValidationErrors map[string][]string

// Add records a problem with field.
func (v ValidationErrors) Add(field, problem string) { v[field] = append(v[field], problem) }

// Err returns an EINVALID *Error carrying the problems, or nil.
func (v ValidationErrors) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "The given data was invalid.", Fields: v}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorReason returns the reason key of err, if any.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
