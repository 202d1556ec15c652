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
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/privicore/privicore/api"
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

// Token is an issued authorization token.
type Token struct {
	Value     string    // T-…; send it as X-DPT-AUTHORIZATION (WithToken, SetToken)
	ExpiresAt time.Time // when it stops working
}

// RegisterProfileRequest is a new profile.
type RegisterProfileRequest struct {
	Username   string `json:"username"`             // 3–254 characters, unique case-insensitively
	Password   string `json:"password"`             // must pass the engine's entropy check
	GivenName  string `json:"givenName,omitempty"`  // optional
	FamilyName string `json:"familyName,omitempty"` // optional
}

// RegisterProfile submits a registration; the outcome's body is the new
// profile id.
func (c *Client) RegisterProfile(ctx context.Context, r RegisterProfileRequest) (string, error) {
	return c.command(ctx, "/profile/register-profile", noAuth, r)
}

// Authenticate exchanges username and password for a token, and makes it
// the client's token.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Token, error) {
	var t api.AuthorizationToken
	if _, _, err := c.do(ctx, http.MethodPost, "/profile/authenticate", noAuth, map[string]string{"username": username, "password": password}, &t); err != nil {
		return Token{}, err
	}
	c.SetToken(t.AuthorizationToken)
	return Token{Value: t.AuthorizationToken, ExpiresAt: t.ExpiresAt}, nil
}

// ProfileID returns the caller's profile id.
func (c *Client) ProfileID(ctx context.Context) (string, error) {
	var out api.ProfileID
	_, _, err := c.do(ctx, http.MethodGet, "/profile/retrieve-profile-id", nil, nil, &out)
	return out.ProfileID, err
}

// ChangePassword submits a password change (rejection
// profile.wrong_password for a wrong current password).
func (c *Client) ChangePassword(ctx context.Context, current, next string) (string, error) {
	return c.command(ctx, "/profile/change-password", nil, map[string]string{"currentPassword": current, "newPassword": next})
}

// QRToken is a device enrollment token.
type QRToken struct {
	Value     string    // single use
	ExpiresAt time.Time // 5 minutes after issue
}

// GenerateQRToken issues a single-use enrollment token; role may be "",
// "storage" or "authenticator".
func (c *Client) GenerateQRToken(ctx context.Context, role string) (QRToken, error) {
	var out api.QRToken
	body := map[string]string{}
	if role != "" {
		body["role"] = role
	}
	_, _, err := c.do(ctx, http.MethodPost, "/profile/generate-token-qr", nil, body, &out)
	return QRToken{Value: out.QRToken, ExpiresAt: out.ExpiresAt}, err
}

// Reauthorize issues a fresh token living ttl (60 s … 30 days). The client
// keeps its current token; use SetToken to switch.
func (c *Client) Reauthorize(ctx context.Context, ttl time.Duration) (Token, error) {
	var t api.AuthorizationToken
	_, _, err := c.do(ctx, http.MethodPost, "/profile/reauthorize-authorization-token", nil, map[string]int64{"ttl": int64(ttl / time.Second)}, &t)
	return Token{Value: t.AuthorizationToken, ExpiresAt: t.ExpiresAt}, err
}

// Revoke kills the client's token.
func (c *Client) Revoke(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodPost, "/profile/revoke-authorization-token", nil, nil, nil)
	return err
}

// TokenExpiry returns when the client's token expires.
func (c *Client) TokenExpiry(ctx context.Context) (time.Time, error) {
	var out api.TokenExpiry
	_, _, err := c.do(ctx, http.MethodPost, "/profile/authorization-token/expiry", nil, nil, &out)
	return out.ExpiresAt, err
}

// RegisterPublicKey submits the profile's signed public key (200 hex).
func (c *Client) RegisterPublicKey(ctx context.Context, signedKey string) (string, error) {
	return c.command(ctx, "/public-key/register-public-key", nil, map[string]string{"publicKey": signedKey})
}

// RegisterPublicKeyWithCredentials submits the key with username and
// password instead of a token.
func (c *Client) RegisterPublicKeyWithCredentials(ctx context.Context, username, password, signedKey string) (string, error) {
	return c.command(ctx, "/public-key/register-public-key", noAuth, map[string]string{"username": username, "password": password, "publicKey": signedKey})
}

// RetrievePublicKey returns the profile's registered signed public key (a
// 404 *Error when none is registered).
func (c *Client) RetrievePublicKey(ctx context.Context) (string, error) {
	var out api.PublicKey
	_, _, err := c.do(ctx, http.MethodGet, "/public-key/retrieve-public-key", nil, nil, &out)
	return out.PublicKey, err
}

// EnginePublicKey returns the engine's own signed public key.
func (c *Client) EnginePublicKey(ctx context.Context) (string, error) {
	var out api.PublicKey
	_, _, err := c.do(ctx, http.MethodGet, "/dptcab/public-key", nil, nil, &out)
	return out.PublicKey, err
}

// GenerateKeys asks the engine for a fresh key pair. Generating locally
// (GenerateKeyPair) is safer: the private key then never travels.
func (c *Client) GenerateKeys(ctx context.Context) (privateHex, signedPublicHex string, err error) {
	var out api.GeneratedKeys
	_, _, err = c.do(ctx, http.MethodGet, "/generate-keys", noAuth, nil, &out)
	return out.Private, out.Public, err
}

// Health returns nil when the engine reports itself healthy.
func (c *Client) Health(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodGet, "/health", noAuth, nil, nil)
	return err
}

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
