// Package client is the Go SDK for a Privicore engine.
//
// A Client speaks the HTTP API; a Session adds the profile's WebSocket
// channel, so that the outcome of an asynchronous command can be awaited:
//
//	s, err := client.Login(ctx, "http://127.0.0.1:8009", "alice", password)
//	id, err := s.RegisterPublicKey(ctx, signedKey)
//	out, err := s.Await(ctx, id) // a *RejectedError carries the reason key
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client calls the engine's HTTP API. It is safe for concurrent use.
type Client struct {
	base  string
	ws    string
	httpc *http.Client

	mu    sync.RWMutex
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpc = h } }

// WithWebSocketURL sets the channel proxy URL (default: the base URL with a
// ws scheme and path /ws).
func WithWebSocketURL(u string) Option { return func(c *Client) { c.ws = u } }

// WithToken sets the authorization token.
func WithToken(t string) Option { return func(c *Client) { c.token = t } }

// transport is shared by the clients made without WithHTTPClient: it keeps
// enough idle connections for many concurrent sessions to one engine (the
// default keeps two, which makes busy clients reconnect all the time).
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	return t
}()

// New returns a Client for the engine at baseURL (e.g. http://127.0.0.1:8009).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), httpc: &http.Client{Timeout: 30 * time.Second, Transport: transport}}
	for _, o := range opts {
		o(c)
	}
	if c.ws == "" {
		c.ws = "ws" + strings.TrimPrefix(c.base, "http") + "/ws"
	}
	return c
}

// SetToken replaces the authorization token.
func (c *Client) SetToken(t string) {
	c.mu.Lock()
	c.token = t
	c.mu.Unlock()
}

// Token returns the authorization token.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// Error is an error answer of the API (spec §0), e.g.
// {"error":"validation_failed","message":"…","errors":{"password":["…"]}}.
// An answer without a JSON error body (a proxy's 502, a 503 from /health)
// gets the status text as its Code and the body as its Message.
type Error struct {
	Status     int                 // HTTP status
	Code       string              // "unauthorized", "forbidden", "validation_failed", "not_found", "conflict", "rate_limited", …
	Message    string              // human-readable message
	Reason     string              // dotted reason key, when one applies (e.g. "profile.public_key_required")
	Fields     map[string][]string // validation problems by field (422)
	RetryAfter time.Duration       // the Retry-After header (429)
}

// Error implements error: status, code, message, reason and the field
// messages (fields in name order).
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Code)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	names := make([]string, 0, len(e.Fields))
	for f := range e.Fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		fmt.Fprintf(&b, "; %s: %s", f, strings.Join(e.Fields[f], ", "))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// IsStatus reports whether err is an API *Error with the HTTP status code.
func IsStatus(err error, status int) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Status == status
}

// ErrSessionClosed is returned by Session methods that wait (Await,
// AwaitRequest) once the session has been closed.
var ErrSessionClosed = errors.New("client: session closed")

// RejectedError is a command the engine refused (command_status 3).
type RejectedError struct {
	CommandID string // the rejected command (or data request) id
	Reason    string // the reason key, e.g. "profile.wrong_password"
}

// Error implements error.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("command %s rejected: %s", e.CommandID, e.Reason)
}

// IsReason reports whether err is a rejection or API error with reason.
func IsReason(err error, reason string) bool {
	var rej *RejectedError
	var apiErr *Error
	switch {
	case errors.As(err, &rej):
		return rej.Reason == reason
	case errors.As(err, &apiErr):
		return apiErr.Reason == reason
	}
	return false
}

// do sends a request: body (if not nil) as JSON, the token unless noAuth.
// It decodes a 2xx answer into out and returns the response headers.
func (c *Client) do(ctx context.Context, method, path string, header http.Header, body, out any) (http.Header, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if tok := c.Token(); tok != "" && req.Header.Get("X-DPT-AUTHORIZATION") == "" && header.Get("X-No-Auth") == "" {
		req.Header.Set("X-DPT-AUTHORIZATION", tok)
	}
	req.Header.Del("X-No-Auth")
	res, err := c.httpc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, res.StatusCode, err
	}
	if res.StatusCode >= 300 {
		return res.Header, res.StatusCode, decodeError(res, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.Header, res.StatusCode, fmt.Errorf("decode %s answer: %w", path, err)
		}
	}
	return res.Header, res.StatusCode, nil
}

func decodeError(res *http.Response, raw []byte) error {
	e := &Error{Status: res.StatusCode}
	var body struct {
		Error   string              `json:"error"`
		Message string              `json:"message"`
		Reason  string              `json:"reason"`
		Errors  map[string][]string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.Code, e.Message, e.Reason, e.Fields = body.Error, body.Message, body.Reason, body.Errors
	} else {
		e.Code, e.Message = strings.ReplaceAll(strings.ToLower(http.StatusText(res.StatusCode)), " ", "_"), strings.TrimSpace(string(raw))
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil && time.Until(t) > 0 {
			e.RetryAfter = time.Until(t).Round(time.Second)
		}
	}
	return e
}

// noAuth is a header set that keeps the client's token off a request.
var noAuth = http.Header{"X-No-Auth": {"1"}}

// command posts an async command and returns its id.
func (c *Client) command(ctx context.Context, path string, header http.Header, body any) (string, error) {
	var acc struct {
		CommandID string `json:"commandId"`
	}
	if _, _, err := c.do(ctx, http.MethodPost, path, header, body, &acc); err != nil {
		return "", err
	}
	if acc.CommandID == "" {
		return "", fmt.Errorf("%s: no command id in the answer", path)
	}
	return acc.CommandID, nil
}

// Health returns nil when the engine reports itself healthy.
func (c *Client) Health(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodGet, "/health", noAuth, nil, nil)
	return err
}
