package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/privicore/privicore"
)

// statusOf maps error codes to HTTP statuses.
var statusOf = map[string]int{
	privicore.EINVALID:      http.StatusUnprocessableEntity,
	privicore.EUNAUTHORIZED: http.StatusUnauthorized,
	privicore.EFORBIDDEN:    http.StatusForbidden,
	privicore.ENOTFOUND:     http.StatusNotFound,
	privicore.ECONFLICT:     http.StatusConflict,
	privicore.EREJECTED:     http.StatusConflict,
	privicore.ERATELIMIT:    http.StatusTooManyRequests,
	privicore.EUNAVAILABLE:  http.StatusServiceUnavailable,
	privicore.EINTERNAL:     http.StatusInternalServerError,
	codeRequestTimeout:      http.StatusRequestTimeout,
}

// Codes of the HTTP layer's own errors, beside privicore's.
const (
	codeRequestTimeout   = "request_timeout"    // 408: the body did not arrive in time (bodyDeadline)
	codeMethodNotAllowed = "method_not_allowed" // 405: a known path, another method (see Allow)
)

// errorBody is the JSON shape of every error (spec §0).
type errorBody struct {
	Error   string              `json:"error"`
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors,omitempty"`
	Reason  string              `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError renders err. Internal errors are logged (never with request
// secrets) and shown to the client only as a generic message.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *privicore.Error
	if !errors.As(err, &e) {
		log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &privicore.Error{Code: privicore.EINTERNAL, Message: "internal error"}
	} else if e.Code == privicore.EINTERNAL || e.Code == privicore.EUNAVAILABLE {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if e.Code == privicore.ERATELIMIT {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Code == codeRequestTimeout {
		w.Header().Set("Connection", "close") // what is left of the body is not worth waiting for
	}
	body := errorBody{Error: e.Code, Message: e.Message, Reason: e.Reason, Errors: e.Fields}
	if e.Code == privicore.EINVALID && body.Errors == nil {
		body.Errors = map[string][]string{}
	}
	if e.Code == privicore.EREJECTED {
		body.Error = privicore.ECONFLICT
	}
	writeJSON(w, status, body)
}

// commandAccepted is the CommandAccepted body.
type commandAccepted struct {
	CommandID string `json:"commandId"`
	Message   string `json:"message"`
}

// writeAccepted answers 202 for a durably recorded command.
func writeAccepted(w http.ResponseWriter, c *privicore.Command) {
	w.Header().Set("X-DPT-CAB-ID", c.ID)
	writeJSON(w, http.StatusAccepted, commandAccepted{CommandID: c.ID, Message: "Command accepted."})
}

// accept answers a request that records one command: it binds the
// request's parameters, has submit check them and record the command, and
// answers 202 with it, or the error.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, submit func(p *params) (*privicore.Command, error)) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	c, err := submit(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}
