package client

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// Event is one event of the profile's channel: the data object of an
// envelope {"data":{"type":…,"id":…,…}}.
type Event struct {
	Type          string          `json:"type"`           // X-DPT-CAB-ID, X-DPT-CAB-REQUEST-ID, STREAM-READY, POOL-OPENED, POOL-RESOLVED
	ID            string          `json:"id"`             // the command id, request id or pool id
	CommandStatus int             `json:"command_status"` // 1 pending, 2 succeeded, 3 failed
	Body          string          `json:"body"`           // result, reason key, ciphertext or download URL, by type
	Raw           json.RawMessage `json:"-"`              // the whole data object, for the type-specific fields
}

// UnmarshalJSON implements json.Unmarshaler: a body that is not a JSON
// string (an object, for a command that creates one) is kept as its JSON
// text.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	v := struct {
		*plain
		Body textOrJSON `json:"body"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	e.Body = string(v.Body)
	return nil
}

// Session is a Client joined to its profile's channel. It keeps the socket
// alive (a ping every 20 s), re-dials with backoff and re-joins after a
// disconnect, and remembers recent command outcomes (the last 4096, at most
// 10 minutes old) so that Await finds an outcome that arrived before it was
// called. A Session is safe for concurrent use; Close stops every goroutine
// it started.
type Session struct {
	*Client

	ctx       context.Context
	cancel    context.CancelFunc
	pollEvery time.Duration // Await's safety-net poll
	done      chan struct{}
	events    chan Event

	mu          sync.Mutex
	outcomes    map[string]*list.Element // command id → outcome in order
	order       *list.List
	waiters     map[string][]chan struct{}
	requests    map[string]RequestEvent // data answers by request id (bounded by reqOrder)
	reqOrder    []string
	reqWaiters  map[string][]chan struct{}
	pools       map[string][]PoolEvent // pool events by command id (bounded by poolOrder)
	poolOrder   []string
	poolWaiters map[string][]chan struct{}
	epoch       int           // connections so far
	changed     chan struct{} // closed and replaced at every (re)join
	channelID   string
}

// Bounds of the remembered outcomes.
const (
	outcomeCache = 4096
	outcomeTTL   = 10 * time.Minute
)

// Socket timing: keep-alive pings, how long a dial and join may take, and
// the re-dial backoff.
const (
	pingEvery   = 20 * time.Second
	joinTimeout = 10 * time.Second
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
)

type cached struct {
	id     string
	status int
	body   string
	at     time.Time
}

// Login authenticates username with password at baseURL and opens a
// Session with the issued token.
func Login(ctx context.Context, baseURL, username, password string, opts ...Option) (*Session, error) {
	c := New(baseURL, opts...)
	if _, err := c.Authenticate(ctx, username, password); err != nil {
		return nil, err
	}
	return NewSession(ctx, c)
}

// NewSession joins the channel of c's profile with c's token (see WithToken
// and SetToken). It returns once joined, or with the join error: a 401
// *Error for a bad or expired token. ctx bounds the first join only; the
// session lives until Close. A later SetToken on c is used by the next
// re-join.
func NewSession(ctx context.Context, c *Client) (*Session, error) {
	return newSession(ctx, c, pollEvery)
}

// newSession is NewSession with Await's safety-net poll every poll.
func newSession(ctx context.Context, c *Client, poll time.Duration) (*Session, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{Client: c, ctx: sctx, cancel: cancel, pollEvery: poll, done: make(chan struct{}), events: make(chan Event, 256),
		outcomes: map[string]*list.Element{}, order: list.New(), waiters: map[string][]chan struct{}{}, changed: make(chan struct{}),
		requests: map[string]RequestEvent{}, reqWaiters: map[string][]chan struct{}{},
		pools: map[string][]PoolEvent{}, poolWaiters: map[string][]chan struct{}{}}
	first := make(chan error, 1)
	go s.loop(first)
	select {
	case err := <-first:
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// Events delivers every event of the channel, for callers that want them
// all. An event is dropped when the channel's buffer is full (Await and
// AwaitRequest do not depend on it). The channel is closed after Close.
func (s *Session) Events() <-chan Event { return s.events }

// ChannelID returns the channel id of the current (or last) join.
func (s *Session) ChannelID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelID
}

// Close leaves the channel, stops the session's goroutines and waits for
// them. Waiting calls then return ErrSessionClosed. Close is idempotent.
func (s *Session) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// loop keeps a joined connection, re-dialing with backoff.
func (s *Session) loop(first chan error) {
	defer close(s.done)
	defer close(s.events) // dispatch runs on this goroutine only
	backoff := minBackoff
	for s.ctx.Err() == nil {
		conn, err := s.dialAndJoin()
		if first != nil {
			first <- err
			if err != nil {
				return
			}
			first = nil
		}
		if err == nil {
			backoff = minBackoff
			s.joined()
			s.serve(conn)
			continue
		}
		// Jitter spreads the re-dials of many sessions after an engine restart.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-s.ctx.Done():
		case <-time.After(wait):
		}
		if backoff < maxBackoff {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// dialAndJoin opens the socket and joins the channel.
func (s *Session) dialAndJoin() (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, joinTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, s.ws, &websocket.DialOptions{HTTPClient: s.httpc})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(16 << 20)
	corr := uuid.NewString()
	join, _ := json.Marshal(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": s.Token(), "correlationId": corr}})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		conn.CloseNow()
		return nil, err
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			conn.CloseNow()
			return nil, err
		}
		var reply struct {
			CorrelationID string `json:"correlationId"`
			Status        int    `json:"status"`
			Data          struct {
				ChannelID string `json:"channelId"`
				Message   string `json:"message"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &reply) != nil || reply.Status == 0 || (reply.CorrelationID != "" && reply.CorrelationID != corr) {
			s.dispatch(b) // an event (e.g. a buffered one) that raced the reply
			continue
		}
		if reply.Status != http.StatusOK {
			conn.CloseNow()
			code := "unauthorized"
			if reply.Status != http.StatusUnauthorized {
				code = strings.ReplaceAll(strings.ToLower(http.StatusText(reply.Status)), " ", "_")
			}
			return nil, &Error{Status: reply.Status, Code: code, Message: reply.Data.Message}
		}
		s.mu.Lock()
		s.channelID = reply.Data.ChannelID
		s.mu.Unlock()
		return conn, nil
	}
}

// joined marks a new connection: waiters re-check by polling, since events
// may have been missed while disconnected.
func (s *Session) joined() {
	s.mu.Lock()
	s.epoch++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// serve reads events until the connection fails or the session closes.
func (s *Session) serve(conn *websocket.Conn) {
	defer conn.CloseNow()
	connCtx, stopPing := context.WithCancel(s.ctx)
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-connCtx.Done():
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(connCtx, joinTimeout)
				err := conn.Ping(ctx)
				cancel()
				if err != nil {
					conn.CloseNow()
					return
				}
			}
		}
	}()
	defer func() { stopPing(); <-pingDone }()
	for {
		_, b, err := conn.Read(s.ctx)
		if err != nil {
			return
		}
		s.dispatch(b)
	}
}

// dispatch records a command outcome and forwards the event.
func (s *Session) dispatch(b []byte) {
	data, w, ok := decodeMessage(b)
	if !ok {
		return
	}
	ev := Event{Type: w.Type, ID: w.ID, CommandStatus: w.CommandStatus, Body: string(w.Body), Raw: data}
	if ev.Type == "X-DPT-CAB-ID" && (ev.CommandStatus == 2 || ev.CommandStatus == 3) {
		s.remember(ev.ID, ev.CommandStatus, ev.Body)
	}
	if ev.Type == EventPoolOpened || ev.Type == EventPoolResolved {
		s.rememberPool(data)
	}
	if ev.Type == "X-DPT-CAB-REQUEST-ID" {
		s.rememberRequest(RequestEvent{ID: w.ID, CommandStatus: w.CommandStatus, DataContext: w.DataContext, OutputType: w.OutputType, Body: ev.Body})
	}
	select {
	case s.events <- ev:
	default:
	}
}

// wireEvent is the data object of a channel message: every field a Session
// reads.
type wireEvent struct {
	Type          string     `json:"type"`
	ID            string     `json:"id"`
	CommandStatus int        `json:"command_status"`
	DataContext   string     `json:"data_context"`
	OutputType    int        `json:"output_type"`
	Body          textOrJSON `json:"body"`
}

// decodeMessage reads a channel message ({"channel": …, "data": {…}}): the
// data object's text and its fields, in two passes over the data (the body
// of a small retrieval is the whole ciphertext: decoding the message field
// by field was half of a busy client's CPU).
func decodeMessage(b []byte) (data json.RawMessage, w wireEvent, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, w, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, w, false
		}
		if key, _ := t.(string); key != "data" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil, w, false
			}
			continue
		}
		start := dec.InputOffset()
		if dec.Decode(&w) != nil {
			return nil, w, false
		}
		data = bytes.TrimLeft(b[start:dec.InputOffset()], " \t\r\n:")
		return data, w, len(data) > 0 && data[0] == '{'
	}
	return nil, w, false
}

// remember records a final outcome and wakes its waiters. The cache keeps
// the newest outcomeCache entries, none older than outcomeTTL.
func (s *Session) remember(id string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.outcomes[id]; !ok {
		now := time.Now()
		s.outcomes[id] = s.order.PushBack(cached{id: id, status: status, body: body, at: now})
		for s.order.Len() > outcomeCache || now.Sub(s.order.Front().Value.(cached).at) > outcomeTTL {
			old := s.order.Front()
			s.order.Remove(old)
			delete(s.outcomes, old.Value.(cached).id)
		}
	}
	for _, w := range s.waiters[id] {
		close(w)
	}
	delete(s.waiters, id)
}

// rememberRequest records a data answer and wakes its waiters.
func (s *Session) rememberRequest(re RequestEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[re.ID]; !ok {
		s.requests[re.ID] = re
		s.reqOrder = append(s.reqOrder, re.ID)
		if len(s.reqOrder) > outcomeCache {
			delete(s.requests, s.reqOrder[0])
			s.reqOrder = s.reqOrder[1:]
		}
	}
	for _, w := range s.reqWaiters[re.ID] {
		close(w)
	}
	delete(s.reqWaiters, re.ID)
}

// lookup returns the remembered outcome of id.
func (s *Session) lookup(id string) (cached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.outcomes[id]
	if !ok {
		return cached{}, false
	}
	return el.Value.(cached), true
}

// Reconnects is how many times the session has re-joined its channel after
// the first join.
func (s *Session) Reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch - 1
}
