package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// Command status: reading one, and waiting for an outcome by polling.

// Status is a command's state.
type Status struct {
	CommandID     string `json:"commandId"`      // the command polled
	CommandStatus int    `json:"command_status"` // 1 pending, 2 succeeded, 3 rejected
	Status        string `json:"status"`         // started, succeeded, rejected
	Body          string `json:"body"`           // the result, or the reason key of a rejection
}

// UnmarshalJSON implements json.Unmarshaler: a body that is not a JSON
// string (an object, for a command that creates one) is kept as its JSON
// text.
func (st *Status) UnmarshalJSON(b []byte) error {
	type plain Status
	v := struct {
		*plain
		Body textOrJSON `json:"body"`
	}{plain: (*plain)(st)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	st.Body = string(v.Body)
	return nil
}

// textOrJSON is a JSON string, or any other JSON value kept as its text.
type textOrJSON string

// UnmarshalJSON implements json.Unmarshaler.
func (t *textOrJSON) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 1 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b):
		// Already validated by the decoder; without escapes (and in valid
		// UTF-8) the text is what is between the quotes: base64, URLs,
		// reason keys.
		*t = textOrJSON(b[1 : len(b)-1])
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = textOrJSON(s)
	case string(b) == "null":
		*t = ""
	default:
		*t = textOrJSON(b)
	}
	return nil
}

// CommandStatus polls a command (GET /utility/request-command-id-status/{id}).
// An unknown command id (or another profile's) is a 404 *Error with Code
// "not_found".
func (c *Client) CommandStatus(ctx context.Context, commandID string) (Status, error) {
	var st Status
	_, _, err := c.do(ctx, http.MethodGet, "/utility/request-command-id-status/"+url.PathEscape(commandID), nil, nil, &st)
	return st, err
}

// Outcome is a finished command.
type Outcome struct {
	CommandID string // the command awaited
	Status    int    // 2
	Body      string // the result: "Command completed successfully", or a created id
}

// outcomeOf turns a final status into an outcome or a *RejectedError; ok is
// false while the command is pending.
func outcomeOf(id string, status int, body string) (Outcome, bool, error) {
	switch status {
	case 2:
		return Outcome{CommandID: id, Status: 2, Body: body}, true, nil
	case 3:
		return Outcome{}, true, &RejectedError{CommandID: id, Reason: body}
	}
	return Outcome{}, false, nil
}

// WaitCommand polls until the command finishes (for callers without a
// Session, e.g. right after registering a profile).
func (c *Client) WaitCommand(ctx context.Context, commandID string) (Outcome, error) {
	delay := 10 * time.Millisecond
	for {
		st, err := c.CommandStatus(ctx, commandID)
		if err != nil {
			return Outcome{}, err
		}
		if out, done, err := outcomeOf(commandID, st.CommandStatus, st.Body); done {
			return out, err
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}
