// Package wsproxy is the engine's WebSocket channel proxy: a client joins
// its profile's channel with an authorization token and receives every event
// of that profile (command acks, data answers, voting) and nothing else.
// Events raised while no socket of the profile is joined are buffered for a
// bounded time and delivered on the next join.
package wsproxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// TokenVerifier resolves an authorization token presented in joinChannel.
type TokenVerifier interface {
	// VerifyChannelToken returns the profile the token acts for, a stable id
	// of the token (used by CloseToken), and when the token expires. An
	// invalid, expired or revoked token returns an error.
	VerifyChannelToken(ctx context.Context, token string) (profileID, tokenID string, expiresAt time.Time, err error)
}

// Options configures a Hub. Zero values take the defaults.
type Options struct {
	Verifier            TokenVerifier
	Logger              *slog.Logger  // nil: discard
	BufferTTL           time.Duration // how long events wait for a socket; default 60s
	BufferSize          int           // buffered events per profile; default 256 (oldest dropped)
	MaxBufferedProfiles int           // profiles with a buffer; default 100000 (oldest buffer dropped)
	PingInterval        time.Duration // default 25s
	WriteTimeout        time.Duration // default 10s
	SendQueue           int           // per connection; default 1024; a full queue closes the connection
	MaxMessageBytes     int64         // client message limit; default 64 KiB
}

// Hub routes events to joined sockets.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}          // every open connection
	joined   map[string]map[*conn]string // profile → connection → channel id
	byToken  map[string]map[*conn]struct{}
	buffers  map[string]*buffer
	bufOrder []string // profiles in buffer creation order, for the profile bound
	stop     chan struct{}
	wg       sync.WaitGroup
}

type buffered struct {
	at  time.Time
	msg []byte
}

type buffer struct {
	events []buffered
}

// NewHub returns a Hub; Close releases it.
func NewHub(opts Options) *Hub {
	if opts.BufferTTL <= 0 {
		opts.BufferTTL = 60 * time.Second
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 256
	}
	if opts.MaxBufferedProfiles <= 0 {
		opts.MaxBufferedProfiles = 100000
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = 1024
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 64 << 10
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{opts: opts, log: log, conns: map[*conn]struct{}{}, joined: map[string]map[*conn]string{},
		byToken: map[string]map[*conn]struct{}{}, buffers: map[string]*buffer{}, stop: make(chan struct{})}
	h.wg.Add(1)
	go h.janitor()
	return h
}

// Publish delivers data, wrapped as {"data": data}, to every socket joined
// for profileID, or buffers it when none is. It never blocks.
func (h *Hub) Publish(profileID string, data any) {
	msg, err := json.Marshal(struct {
		Data any `json:"data"`
	}{data})
	if err != nil {
		h.log.Error("unencodable event", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if set := h.joined[profileID]; len(set) > 0 {
		for c := range set {
			c.enqueue(msg)
		}
		return
	}
	b := h.buffers[profileID]
	if b == nil {
		for len(h.buffers) >= h.opts.MaxBufferedProfiles && len(h.bufOrder) > 0 {
			delete(h.buffers, h.bufOrder[0])
			h.bufOrder = h.bufOrder[1:]
		}
		b = &buffer{}
		h.buffers[profileID] = b
		h.bufOrder = append(h.bufOrder, profileID)
	}
	if len(b.events) >= h.opts.BufferSize {
		b.events = b.events[1:]
	}
	b.events = append(b.events, buffered{at: time.Now(), msg: msg})
}

// CloseToken closes every socket joined with tokenID (the token was revoked).
func (h *Hub) CloseToken(tokenID string) {
	h.mu.Lock()
	var victims []*conn
	for c := range h.byToken[tokenID] {
		victims = append(victims, c)
	}
	h.mu.Unlock()
	for _, c := range victims {
		c.close(websocket.StatusPolicyViolation, "token revoked")
	}
}

// Joined is the number of sockets joined for profileID.
func (h *Hub) Joined(profileID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.joined[profileID])
}

// Close closes every connection; Handler refuses new ones afterwards.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.stop)
	var all []*conn
	for c := range h.conns {
		all = append(all, c)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	h.wg.Wait()
}

// janitor drops expired buffers.
func (h *Hub) janitor() {
	defer h.wg.Done()
	t := time.NewTicker(h.opts.BufferTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.mu.Lock()
			h.pruneLocked(time.Now())
			h.mu.Unlock()
		}
	}
}

func (h *Hub) pruneLocked(now time.Time) {
	kept := h.bufOrder[:0]
	for _, p := range h.bufOrder {
		b := h.buffers[p]
		if b == nil {
			continue
		}
		i := 0
		for i < len(b.events) && now.Sub(b.events[i].at) > h.opts.BufferTTL {
			i++
		}
		b.events = b.events[i:]
		if len(b.events) == 0 {
			delete(h.buffers, p)
			continue
		}
		kept = append(kept, p)
	}
	h.bufOrder = kept
}

// Handler upgrades requests to WebSocket connections. Any Origin is
// accepted: authorization is by token, not by cookie.
func (h *Hub) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return // Accept has answered
		}
		ws.SetReadLimit(h.opts.MaxMessageBytes)
		c := &conn{hub: h, ws: ws, send: make(chan []byte, h.opts.SendQueue), done: make(chan struct{})}
		if !h.register(c) {
			ws.Close(websocket.StatusGoingAway, "server shutting down")
			return
		}
		h.wg.Add(1)
		defer h.wg.Done()
		c.run()
	})
}

func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

// join attaches c to profileID's channel and hands it the buffered events.
func (h *Hub) join(c *conn, profileID, tokenID, channelID string, reply []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.enqueue(reply)
	if h.joined[profileID] == nil {
		h.joined[profileID] = map[*conn]string{}
	}
	h.joined[profileID][c] = channelID
	if h.byToken[tokenID] == nil {
		h.byToken[tokenID] = map[*conn]struct{}{}
	}
	h.byToken[tokenID][c] = struct{}{}
	if b := h.buffers[profileID]; b != nil {
		now := time.Now()
		for _, ev := range b.events {
			if now.Sub(ev.at) <= h.opts.BufferTTL {
				c.enqueue(ev.msg)
			}
		}
		delete(h.buffers, profileID)
	}
}

// leave detaches c from its channel.
func (h *Hub) leave(c *conn, profileID, tokenID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.joined[profileID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.joined, profileID)
		}
	}
	if set := h.byToken[tokenID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.byToken, tokenID)
		}
	}
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// ---- one connection ----

type conn struct {
	hub  *Hub
	ws   *websocket.Conn
	send chan []byte
	done chan struct{}
	once sync.Once
	// Set once by close, read by the writer after done is closed.
	closeCode   websocket.StatusCode
	closeReason string

	// Owned by the reader goroutine.
	profileID, tokenID, channelID string
}

// enqueue queues msg; a full queue closes the connection (slow consumer).
// Called with the hub lock held or from the reader.
func (c *conn) enqueue(msg []byte) {
	select {
	case <-c.done:
	case c.send <- msg:
	default:
		go c.abort()
	}
}

// abort drops a connection that cannot keep up: no flush, no handshake.
func (c *conn) abort() {
	c.close(websocket.StatusPolicyViolation, "too slow: event queue full")
	c.ws.CloseNow()
}

// close ends the connection: the writer flushes what is queued (so a final
// reply such as a 401 reaches the client), then sends the close frame.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.done)
	})
}

// run serves the connection until it closes.
func (c *conn) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.writer(ctx) }()
	c.reader(ctx)
	c.close(websocket.StatusNormalClosure, "")
	wg.Wait() // the writer flushes and sends the close frame
	if c.profileID != "" {
		c.hub.leave(c, c.profileID, c.tokenID)
	}
	c.hub.unregister(c)
	c.ws.CloseNow()
}

// writer sends queued messages and pings.
func (c *conn) writer(ctx context.Context) {
	ping := time.NewTicker(c.hub.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			// Flush what is queued (e.g. a 401 reply) before the close frame.
			for flushing := true; flushing; {
				select {
				case msg := <-c.send:
					if c.write(ctx, msg) != nil {
						flushing = false
					}
				default:
					flushing = false
				}
			}
			c.ws.Close(c.closeCode, c.closeReason)
			return
		case msg := <-c.send:
			if err := c.write(ctx, msg); err != nil {
				c.close(websocket.StatusGoingAway, "write failed")
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, c.hub.opts.WriteTimeout)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.close(websocket.StatusGoingAway, "ping timeout")
			}
		}
	}
}

func (c *conn) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, c.hub.opts.WriteTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, msg)
}

// request is a client message.
type request struct {
	Action string `json:"action"`
	Data   struct {
		AuthorizationToken string `json:"authorizationToken"`
		CorrelationID      string `json:"correlationId"`
		ChannelID          string `json:"channelId"`
	} `json:"data"`
}

// reply is the server's answer to an action.
type reply struct {
	CorrelationID string         `json:"correlationId"`
	Status        int            `json:"status"`
	Data          map[string]any `json:"data"`
}

func (c *conn) reply(correlationID string, status int, data map[string]any) {
	b, _ := json.Marshal(reply{CorrelationID: correlationID, Status: status, Data: data})
	select {
	case c.send <- b:
	case <-c.done:
	}
}

// reader handles client actions until the connection ends.
func (c *conn) reader(ctx context.Context) {
	var expiry *time.Timer
	defer func() {
		if expiry != nil {
			expiry.Stop()
		}
	}()
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				c.hub.log.Debug("socket closed", "channel", c.channelID, "err", websocket.CloseStatus(err))
			}
			return
		}
		select {
		case <-c.done:
			return
		default:
		}
		var req request
		if typ != websocket.MessageText || json.Unmarshal(b, &req) != nil {
			c.reply("", http.StatusBadRequest, map[string]any{"message": "messages are JSON objects with an action"})
			continue
		}
		switch req.Action {
		case "joinChannel":
			if c.profileID != "" {
				c.reply(req.Data.CorrelationID, http.StatusConflict, map[string]any{"message": "already joined a channel"})
				continue
			}
			vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			profileID, tokenID, expiresAt, err := c.hub.opts.Verifier.VerifyChannelToken(vctx, req.Data.AuthorizationToken)
			cancel()
			if err != nil {
				c.reply(req.Data.CorrelationID, http.StatusUnauthorized, map[string]any{"message": "invalid token"})
				c.close(websocket.StatusPolicyViolation, "invalid token")
				return
			}
			c.profileID, c.tokenID, c.channelID = profileID, tokenID, uuid.Must(uuid.NewV7()).String()
			ok, _ := json.Marshal(reply{CorrelationID: req.Data.CorrelationID, Status: http.StatusOK,
				Data: map[string]any{"channelId": c.channelID, "message": "Successfully joined profile channel."}})
			c.hub.join(c, profileID, tokenID, c.channelID, ok)
			if expiry != nil {
				expiry.Stop()
			}
			expiry = time.AfterFunc(time.Until(expiresAt), func() { c.close(websocket.StatusPolicyViolation, "token expired") })
			c.hub.log.Debug("channel joined", "profile", profileID, "channel", c.channelID)
		case "leaveChannel":
			if c.profileID == "" || req.Data.ChannelID != c.channelID {
				c.reply(req.Data.CorrelationID, http.StatusNotFound, map[string]any{"message": "unknown channel"})
				continue
			}
			c.hub.leave(c, c.profileID, c.tokenID)
			if expiry != nil {
				expiry.Stop()
				expiry = nil
			}
			c.hub.log.Debug("channel left", "profile", c.profileID, "channel", c.channelID)
			left := c.channelID
			c.profileID, c.tokenID, c.channelID = "", "", ""
			c.reply(req.Data.CorrelationID, http.StatusOK, map[string]any{"channelId": left, "message": "Successfully left profile channel."})
		default:
			c.reply(req.Data.CorrelationID, http.StatusBadRequest, map[string]any{"message": "unknown action"})
		}
	}
}
