package client

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Event is one event of the profile's channel.
type Event struct {
	Type          string          `json:"type"` // X-DPT-CAB-ID, X-DPT-CAB-REQUEST-ID, STREAM-READY, …
	ID            string          `json:"id"`
	CommandStatus int             `json:"command_status"`
	Body          string          `json:"body"`
	Raw           json.RawMessage `json:"-"` // the whole data object
}

// Session is a Client joined to its profile's channel. It keeps the socket
// alive, re-dials and re-joins after a disconnect, and remembers recent
// command outcomes so that Await finds an outcome that arrived before it
// was called.
type Session struct {
	*Client

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	events chan Event

	mu         sync.Mutex
	outcomes   map[string]*list.Element // command id → outcome in order
	order      *list.List
	waiters    map[string][]chan struct{}
	requests   map[string]RequestEvent // data answers by request id (bounded by reqOrder)
	reqOrder   []string
	reqWaiters map[string][]chan struct{}
	epoch      int           // connections so far
	changed    chan struct{} // closed and replaced at every (re)join
	joinErr    error
}

// outcomeCache bounds the remembered outcomes.
const outcomeCache = 4096

type cached struct {
	id     string
	status int
	body   string
}

// Login authenticates and opens a Session.
func Login(ctx context.Context, baseURL, username, password string, opts ...Option) (*Session, error) {
	c := New(baseURL, opts...)
	if _, err := c.Authenticate(ctx, username, password); err != nil {
		return nil, err
	}
	return NewSession(ctx, c)
}

// NewSession joins c's channel with c's token. It returns once joined (or
// with the join error, e.g. an invalid token).
func NewSession(ctx context.Context, c *Client) (*Session, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{Client: c, ctx: sctx, cancel: cancel, done: make(chan struct{}), events: make(chan Event, 256),
		outcomes: map[string]*list.Element{}, order: list.New(), waiters: map[string][]chan struct{}{}, changed: make(chan struct{}),
		requests: map[string]RequestEvent{}, reqWaiters: map[string][]chan struct{}{}}
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

// Events delivers every event of the channel. Events are dropped when the
// channel is full; Await does not depend on it.
func (s *Session) Events() <-chan Event { return s.events }

// Close leaves the channel and stops the session.
func (s *Session) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// loop keeps a joined connection, re-dialing with backoff.
func (s *Session) loop(first chan error) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
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
			backoff = 100 * time.Millisecond
			s.joined()
			s.serve(conn)
			continue
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status == 401 {
			s.mu.Lock()
			s.joinErr = err
			s.mu.Unlock()
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// dialAndJoin opens the socket and joins the channel.
func (s *Session) dialAndJoin() (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, s.ws, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(16 << 20)
	join, _ := json.Marshal(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": s.Token(), "correlationId": "session"}})
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
				Message string `json:"message"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &reply) != nil || reply.Status == 0 {
			s.dispatch(b) // an event that raced the reply
			continue
		}
		if reply.Status != 200 {
			conn.CloseNow()
			return nil, &Error{Status: reply.Status, Code: "unauthorized", Message: reply.Data.Message}
		}
		return conn, nil
	}
}

// joined marks a new connection: waiters re-check by polling, since events
// may have been missed while disconnected.
func (s *Session) joined() {
	s.mu.Lock()
	s.epoch++
	s.joinErr = nil
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
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-connCtx.Done():
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
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
			if s.ctx.Err() != nil {
				conn.Close(websocket.StatusNormalClosure, "bye")
			}
			conn.CloseNow()
			return
		}
		s.dispatch(b)
	}
}

// dispatch records a command outcome and forwards the event.
func (s *Session) dispatch(b []byte) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &env) != nil || len(env.Data) == 0 {
		return
	}
	var ev Event
	if json.Unmarshal(env.Data, &ev) != nil {
		return
	}
	ev.Raw = env.Data
	if ev.Type == "X-DPT-CAB-ID" && (ev.CommandStatus == 2 || ev.CommandStatus == 3) {
		s.remember(ev.ID, ev.CommandStatus, ev.Body)
	}
	if ev.Type == "X-DPT-CAB-REQUEST-ID" {
		var re RequestEvent
		if json.Unmarshal(env.Data, &re) == nil {
			s.rememberRequest(re)
		}
	}
	select {
	case s.events <- ev:
	default:
	}
}

func (s *Session) remember(id string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.outcomes[id]; !ok {
		s.outcomes[id] = s.order.PushBack(cached{id: id, status: status, body: body})
		for s.order.Len() > outcomeCache {
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

// pollEvery is Await's safety-net polling interval.
const pollEvery = 3 * time.Second

// Await waits for command id to finish: the Outcome on success, a
// *RejectedError with the reason on rejection. It listens on the socket,
// polls after every reconnect (events may have been missed), and polls every
// few seconds as a safety net.
func (s *Session) Await(ctx context.Context, id string) (Outcome, error) {
	for {
		if c, ok := s.lookup(id); ok {
			out, _, err := outcomeOf(id, c.status, c.body)
			return out, err
		}
		s.mu.Lock()
		w := make(chan struct{})
		s.waiters[id] = append(s.waiters[id], w)
		changed := s.changed
		s.mu.Unlock()
		// The outcome may have come in before the waiter was registered.
		if _, ok := s.lookup(id); ok {
			continue
		}
		poll := time.NewTimer(pollEvery)
		var stop error
		select {
		case <-w:
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			stop = ctx.Err()
		case <-s.done:
			stop = errors.New("session closed")
		}
		poll.Stop()
		s.dropWaiter(id, w)
		if stop != nil {
			return Outcome{}, stop
		}
		if _, ok := s.lookup(id); ok {
			continue
		}
		st, err := s.CommandStatus(ctx, id)
		if err != nil {
			return Outcome{}, fmt.Errorf("poll %s: %w", id, err)
		}
		if st.CommandStatus == 2 || st.CommandStatus == 3 {
			s.remember(id, st.CommandStatus, st.Body)
		}
	}
}

// dropWaiter forgets w (if remember has not already released it).
func (s *Session) dropWaiter(id string, w chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, id)
	} else {
		s.waiters[id] = ws
	}
}

// Do submits a command with submit and awaits its outcome.
func (s *Session) Do(ctx context.Context, submit func() (string, error)) (Outcome, error) {
	id, err := submit()
	if err != nil {
		return Outcome{}, err
	}
	return s.Await(ctx, id)
}

// Reconnects is how many times the session has joined its channel.
func (s *Session) Reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch - 1
}
