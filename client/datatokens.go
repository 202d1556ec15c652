package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/keys"
)

// MaxInline is the largest ciphertext the exchange endpoint takes.
const MaxInline = 1 << 20

// NewDataKey returns a random AES-256 key for Store and Retrieve.
func NewDataKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}

// Reserve submits a reservation of ttl minutes (0: the default, 5).
func (c *Client) Reserve(ctx context.Context, contextName string, ttlMinutes int) (string, error) {
	body := map[string]any{"context": contextName}
	if ttlMinutes > 0 {
		body["ttl"] = ttlMinutes
	}
	return c.command(ctx, "/data-token/reserve-token-space", nil, body)
}

// Reservation is a reserved token space: its tmp-… token and the
// single-use upload URL for a streamed payload.
type Reservation = api.Reservation

// TemporaryToken returns the reservation's tmp-… token and stream URL.
func (c *Client) TemporaryToken(ctx context.Context, reserveCommandID string) (Reservation, error) {
	var out Reservation
	_, _, err := c.do(ctx, http.MethodGet, "/data-token/retrieve-temporary-data-token/"+url.PathEscape(reserveCommandID), nil, nil, &out)
	return out, err
}

// Upload posts a (large) layer-1 ciphertext to a reservation's stream URL;
// the outcome's body is the permanent dtk-… token.
func (c *Client) Upload(ctx context.Context, streamURL string, body io.Reader, size int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, streamURL, body)
	if err != nil {
		return "", err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	hc := *c.httpc
	hc.Timeout = 0 // a large upload takes as long as it takes; ctx bounds it
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusAccepted {
		return "", decodeError(res, raw)
	}
	var acc struct {
		CommandID string `json:"commandId"`
	}
	if err := json.Unmarshal(raw, &acc); err != nil || acc.CommandID == "" {
		return "", fmt.Errorf("upload: unexpected answer %q", raw)
	}
	return acc.CommandID, nil
}

// StoreOption adjusts Store.
type StoreOption func(*storeOpts)

type storeOpts struct {
	progress func(sent, total int64)
}

// WithProgress reports the bytes sent of a streamed upload.
func WithProgress(f func(sent, total int64)) StoreOption {
	return func(o *storeOpts) { o.progress = f }
}

// progressReader counts what is read.
type progressReader struct {
	r           io.Reader
	sent, total int64
	report      func(sent, total int64)
}

// Read implements io.Reader, reporting the running count.
func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.report != nil {
		p.report(p.sent, p.total)
	}
	return n, err
}

// Exchange submits a layer-1 ciphertext for a reservation.
func (c *Client) Exchange(ctx context.Context, temporaryToken string, ciphertext []byte) (string, error) {
	return c.command(ctx, "/data-token/exchange-data-for-token", nil, map[string]string{
		"temporaryTokenSpace": temporaryToken, "data": base64.StdEncoding.EncodeToString(ciphertext)})
}

// FileMeta is the file meta of a token.
type FileMeta struct {
	FileName  string `json:"fileName"`
	Extension string `json:"extension"`
	Context   string `json:"context,omitempty"`
	Size      int64  `json:"size"`
	Path      string `json:"path"`
}

// ConfigureFileMeta makes an exchanged token permanent and returns the dtk-… token.
func (c *Client) ConfigureFileMeta(ctx context.Context, token string, m FileMeta) (string, error) {
	var out api.PermanentToken
	body := map[string]any{"token": token, "fileName": m.FileName, "extension": m.Extension, "size": m.Size, "path": m.Path}
	if m.Context != "" {
		body["context"] = m.Context
	}
	_, _, err := c.do(ctx, http.MethodPost, "/data-token/configure-file-meta", nil, body, &out)
	return out.Token, err
}

// RequestData asks for a token's data; the answer arrives as an event.
func (c *Client) RequestData(ctx context.Context, dtk string) (commandID, requestID string, err error) {
	var out api.DataRequest
	_, _, err = c.do(ctx, http.MethodPost, "/data-token/request-data", nil, map[string]string{"token": dtk}, &out)
	return out.CommandID, out.RequestID, err
}

// TokenItem is a data token in a listing.
type TokenItem = api.DataToken

// TokenPage is a page of data tokens.
type TokenPage = api.DataTokenPage

// ListDataTokens lists a page; filters use the spec's keys (context, token,
// meta.file.fileName, meta.file.extension, meta.data.type).
func (c *Client) ListDataTokens(ctx context.Context, page, perPage int, filters map[string]string) (*TokenPage, error) {
	q := url.Values{}
	if page > 0 {
		q.Set("page", strconv.Itoa(page))
	}
	if perPage > 0 {
		q.Set("perPage", strconv.Itoa(perPage))
	}
	for k, v := range filters {
		q.Set("filters["+k+"]", v)
	}
	var out TokenPage
	_, _, err := c.do(ctx, http.MethodGet, "/data-token/list-data-tokens?"+q.Encode(), nil, nil, &out)
	return &out, err
}

// UpdateDataToken submits metadata changes (fileName, extension, context, path).
func (c *Client) UpdateDataToken(ctx context.Context, token string, fields map[string]string) (string, error) {
	body := map[string]string{"token": token}
	for k, v := range fields {
		body[k] = v
	}
	return c.command(ctx, "/data-token/update-data-token", nil, body)
}

// ClassifyDataToken submits the information-security risk meta.
func (c *Client) ClassifyDataToken(ctx context.Context, token string, fields map[string]string) (string, error) {
	body := map[string]string{"token": token}
	for k, v := range fields {
		body[k] = v
	}
	return c.command(ctx, "/data-token/configure-information-security-risk-meta", nil, body)
}

// DeleteDataToken submits a deletion.
func (c *Client) DeleteDataToken(ctx context.Context, token string) (string, error) {
	return c.command(ctx, "/data-token/delete-data", nil, map[string]string{"token": token})
}

// Store encrypts plaintext with key (AES-256-GCM, layer 1), and runs the
// whole flow: reserve, temporary token, then an inline exchange (up to
// MaxInline bytes of ciphertext) or a streamed upload, then file meta. It
// returns the permanent dtk-… token.
func (s *Session) Store(ctx context.Context, key, plaintext []byte, meta FileMeta, opts ...StoreOption) (string, error) {
	var o storeOpts
	for _, f := range opts {
		f(&o)
	}
	wire, err := keys.Seal(key, plaintext)
	if err != nil {
		return "", err
	}
	ctxName := meta.Context
	if ctxName == "" {
		ctxName = "default"
	}
	res, err := s.Do(ctx, func() (string, error) { return s.Reserve(ctx, ctxName, 0) })
	if err != nil {
		return "", err
	}
	rsv, err := s.TemporaryToken(ctx, res.CommandID)
	if err != nil {
		return "", err
	}
	if len(wire) > MaxInline {
		body := &progressReader{r: bytes.NewReader(wire), total: int64(len(wire)), report: o.progress}
		if _, err := s.Do(ctx, func() (string, error) { return s.Upload(ctx, rsv.Stream, body, int64(len(wire))) }); err != nil {
			return "", err
		}
	} else if _, err := s.Do(ctx, func() (string, error) { return s.Exchange(ctx, rsv.Token, wire) }); err != nil {
		return "", err
	}
	if meta.Size == 0 {
		meta.Size = int64(len(wire))
	}
	return s.ConfigureFileMeta(ctx, rsv.Token, meta)
}

// Retrieve fetches a token's ciphertext (inline or through the download
// URL) and decrypts it with key. It ends with a *RejectedError as soon as
// the request is rejected, also by a vote a policy held it for
// (voting.expired, …); OnVote hands over that vote's pool events while it
// waits.
func (s *Session) Retrieve(ctx context.Context, key []byte, dtk string, opts ...WaitOption) ([]byte, error) {
	cmdID, reqID, err := s.RequestData(ctx, dtk)
	if err != nil {
		return nil, err
	}
	ev, err := s.awaitAnswer(ctx, cmdID, reqID, opts)
	if err != nil {
		return nil, err
	}
	var wire []byte
	if ev.OutputType == 0 {
		if wire, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, err
		}
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ev.Body, nil)
		if err != nil {
			return nil, err
		}
		res, err := s.httpc.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("download: %s", res.Status)
		}
		if wire, err = io.ReadAll(res.Body); err != nil {
			return nil, err
		}
	}
	return keys.Open(key, wire)
}

// RequestEvent is the answer to a data request.
type RequestEvent = api.RequestEvent

// awaitAnswer waits for the answer to data request reqID of command cmdID:
// its X-DPT-CAB-REQUEST-ID event, or the command's rejection (a request
// rejected before it ran, e.g. by a vote, has no answer event). A
// succeeded command's answer follows its ack, so that ack only means
// "keep waiting". Nothing of opts is called once it has returned.
func (s *Session) awaitAnswer(ctx context.Context, cmdID, reqID string, opts []WaitOption) (RequestEvent, error) {
	wctx, cancel := context.WithCancel(ctx)
	type answer struct {
		ev  RequestEvent
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		ev, err := s.AwaitRequest(wctx, reqID)
		answered <- answer{ev, err}
	}()
	ended := make(chan error, 1)
	go func() {
		_, err := s.Await(wctx, cmdID, opts...)
		ended <- err
	}()
	defer func() {
		cancel()
		if ended != nil {
			<-ended
		}
	}()
	for {
		select {
		case a := <-answered:
			return a.ev, a.err
		case err := <-ended:
			ended = nil
			if err != nil {
				return RequestEvent{}, err
			}
		}
	}
}

// dropRequestWaiter forgets w, a waiter that gave up (a request rejected
// before it ran never gets its answer event: Retrieve gives up on it).
func (s *Session) dropRequestWaiter(requestID string, w chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dropChan(s.reqWaiters, requestID, w)
}

// AwaitRequest waits for the X-DPT-CAB-REQUEST-ID event of requestID. A
// failed request is a *RejectedError with the reason. A request rejected
// before it ran (e.g. by a vote) has no such event: Retrieve also watches
// the command's ack.
func (s *Session) AwaitRequest(ctx context.Context, requestID string) (RequestEvent, error) {
	for {
		s.mu.Lock()
		ev, ok := s.requests[requestID]
		var w chan struct{}
		if !ok {
			w = make(chan struct{})
			s.reqWaiters[requestID] = append(s.reqWaiters[requestID], w)
		}
		s.mu.Unlock()
		if ok {
			if ev.CommandStatus != 2 {
				return ev, &RejectedError{CommandID: requestID, Reason: ev.Body}
			}
			return ev, nil
		}
		select {
		case <-w:
		case <-ctx.Done():
			s.dropRequestWaiter(requestID, w)
			return RequestEvent{}, ctx.Err()
		case <-s.done:
			s.dropRequestWaiter(requestID, w)
			return RequestEvent{}, ErrSessionClosed
		}
	}
}
