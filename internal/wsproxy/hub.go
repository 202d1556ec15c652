// Package wsproxy is the engine's WebSocket channel proxy: a client joins
// its profile's channel with an authorization token and receives the events
// of that profile (command acks, data answers, voting) that its token may
// read (EventScopes), and nothing else. Events raised while no socket that
// may receive them is joined are buffered for a bounded time and delivered
// on the next such join. With a Relay (replicas sharing a database and a
// bus, relay.go) this holds across replicas: events and socket closings go
// through the bus, the buffer is the bus's.
package wsproxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/clientaddr"
)

// TokenVerifier resolves an authorization token presented in joinChannel.
type TokenVerifier interface {
	// VerifyChannelToken returns what the token allows. An invalid,
	// expired or revoked token returns an error. It must read the token's
	// current state (no cache that a revocation does not clear first).
	VerifyChannelToken(ctx context.Context, token string) (Grant, error)
}

// Defaults of Options.
const (
	DefaultBufferTTL           = 60 * time.Second
	DefaultBufferSize          = 256
	DefaultMaxBufferedProfiles = 100000
	DefaultPingInterval        = 25 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultSendQueue           = 1024
	DefaultMaxMessageBytes     = 64 << 10
	// DefaultJoinTimeout is how long a socket may stay open without being
	// joined to a channel (after connecting or after leaving one).
	DefaultJoinTimeout = 10 * time.Second
	// DefaultMaxConnsPerAddr bounds the open WebSocket connections from one
	// client IP address, joined or not.
	DefaultMaxConnsPerAddr = 256
)

const (
	// verifyTimeout bounds a token verification.
	verifyTimeout = 5 * time.Second
)

// Close codes and reasons besides the library's.
const (
	reasonRevoked    = "token revoked"
	reasonExpired    = "token expired"
	reasonNotJoined  = "no joinChannel in time"
	reasonTooMany    = "too many WebSocket connections from this address"
	reasonShutdown   = "server shutting down"
	reasonBadToken   = "invalid token"
	reasonSlow       = "too slow: event queue full"
	reasonUnmasked   = "unmasked client frame"
	reasonFrameLimit = "frame larger than the message limit"
)

// Options configures a Hub. Zero values take the defaults.
type Options struct {
	Verifier            TokenVerifier
	Logger              *slog.Logger  // nil: discard
	BufferTTL           time.Duration // how long events wait for a socket; DefaultBufferTTL
	BufferSize          int           // buffered events per profile; DefaultBufferSize (oldest dropped)
	MaxBufferedProfiles int           // profiles with a buffer; DefaultMaxBufferedProfiles (oldest buffer dropped)
	PingInterval        time.Duration // DefaultPingInterval
	WriteTimeout        time.Duration // DefaultWriteTimeout
	SendQueue           int           // per connection; DefaultSendQueue; a full queue closes the connection
	MaxMessageBytes     int64         // client message and frame limit; DefaultMaxMessageBytes
	// JoinTimeout closes a socket not joined to a channel for that long
	// (1008 "no joinChannel in time"); DefaultJoinTimeout, negative: never.
	JoinTimeout time.Duration
	// MaxConnsPerAddr refuses the upgrade (429) of a connection from an
	// address that already has that many open; DefaultMaxConnsPerAddr,
	// negative: no limit.
	MaxConnsPerAddr int
	// Relay, if set, carries events and socket closings between replicas
	// (shared mode, relay.go): Publish sends every event through it, even
	// to this hub's own sockets, and the buffer is the relay's (BufferSize
	// and MaxBufferedProfiles are then its business). Nil: one engine,
	// events are delivered and buffered in memory.
	Relay Relay
	// Addresses resolves the client address MaxConnsPerAddr counts
	// (X-Forwarded-For from trusted proxies); nil: the peer's address.
	Addresses *clientaddr.Resolver
}

// Hub routes events to joined sockets.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}            // every open connection
	perAddr  map[string]int                // open connections by client address
	joined   map[string]map[*conn]struct{} // profile → joined connections
	byToken  map[string]map[*conn]struct{} // token id → joined connections
	buffers  map[string]*buffer
	bufOrder []string // profiles in buffer creation order, for the profile bound
	stop     chan struct{}
	wg       sync.WaitGroup

	// Shared mode (Options.Relay).
	draining  map[string]*drainState // profile → its drain in progress (guarded by mu)
	routeMu   sync.Mutex             // guards routes; taken without mu held
	routes    map[routeKey]*route
	stopClose func() // ends the subscription to the other replicas' CloseToken
}

type buffered struct {
	at  time.Time
	ev  eventInfo
	msg []byte
}

type buffer struct {
	events []buffered
}

// NewHub returns a Hub; Close releases it.
func NewHub(opts Options) *Hub {
	if opts.BufferTTL <= 0 {
		opts.BufferTTL = DefaultBufferTTL
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.MaxBufferedProfiles <= 0 {
		opts.MaxBufferedProfiles = DefaultMaxBufferedProfiles
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = DefaultSendQueue
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.JoinTimeout == 0 {
		opts.JoinTimeout = DefaultJoinTimeout
	}
	if opts.MaxConnsPerAddr == 0 {
		opts.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{opts: opts, log: log, conns: map[*conn]struct{}{}, perAddr: map[string]int{}, joined: map[string]map[*conn]struct{}{},
		byToken: map[string]map[*conn]struct{}{}, buffers: map[string]*buffer{}, stop: make(chan struct{}),
		draining: map[string]*drainState{}, routes: map[routeKey]*route{}}
	if opts.Relay != nil {
		stop, err := opts.Relay.OnCloseToken(h.closeToken)
		if err != nil {
			log.Error("revocations of other replicas will not close sockets here", "err", err)
			stop = func() {}
		}
		h.stopClose = stop
	}
	h.wg.Add(1)
	go h.janitor()
	return h
}

// Publish delivers data, wrapped as {"data": data}, to every socket joined
// for profileID whose token may read it (EventScopes), or buffers it when
// none may. It never blocks.
func (h *Hub) Publish(profileID string, data any) {
	ev, msg, err := encode(data)
	if err != nil {
		h.log.Error("unencodable event", "err", err)
		return
	}
	if h.opts.Relay != nil {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if !closed {
			h.opts.Relay.Publish(profileID, audienceOf(ev), bus.Event{Type: ev.typ, Actor: ev.actor, Data: msg})
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	delivered := false
	for c := range h.joined[profileID] {
		if c.grant.allows(ev) {
			c.enqueue(msg)
			delivered = true
		}
	}
	if !delivered {
		h.bufferLocked(profileID, buffered{at: time.Now(), ev: ev, msg: msg})
	}
}

func (h *Hub) bufferLocked(profileID string, e buffered) {
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
	b.events = append(b.events, e)
}

// CloseToken closes every socket joined (or joining) with tokenID: the
// token was revoked, call it once the revocation is durable. When it
// returns, none of them receives anything more (what was queued for them is
// dropped); a join of that token still under way fails (joinChannel). With
// a Relay it has every other replica close its own (the message is at the
// bus when it returns).
func (h *Hub) CloseToken(tokenID string) {
	h.closeToken(tokenID)
	if h.opts.Relay != nil {
		if err := h.opts.Relay.CloseToken(tokenID); err != nil {
			h.log.Error("revocation not sent to the other replicas", "err", err)
		}
	}
}

// closeToken closes this hub's sockets of tokenID.
func (h *Hub) closeToken(tokenID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.byToken[tokenID] {
		h.detachLocked(c)
		c.drop(websocket.StatusPolicyViolation, reasonRevoked)
	}
}

// Joined is the number of sockets joined for profileID.
func (h *Hub) Joined(profileID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.joined[profileID])
}

// Open is the number of open WebSocket connections, joined or not.
func (h *Hub) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
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
	for c := range h.conns {
		c.close(websocket.StatusGoingAway, reasonShutdown)
	}
	h.mu.Unlock()
	h.wg.Wait()
	if h.stopClose != nil {
		h.stopClose()
	}
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
// accepted: authorization is by token, not by cookie. A client address
// with MaxConnsPerAddr connections open gets 429.
func (h *Hub) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := h.clientAddr(r)
		switch status := h.admit(addr); status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			h.log.Debug("websocket refused", "addr", addr, "reason", reasonTooMany)
			w.Header().Set("Retry-After", "10")
			http.Error(w, reasonTooMany, status)
			return
		default:
			http.Error(w, reasonShutdown, status)
			return
		}
		ws, err := websocket.Accept(&guardedWriter{ResponseWriter: w, limit: h.opts.MaxMessageBytes}, r,
			&websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			h.release(addr)
			return // Accept has answered
		}
		ws.SetReadLimit(h.opts.MaxMessageBytes)
		c := &conn{hub: h, ws: ws, addr: addr, send: make(chan []byte, h.opts.SendQueue), done: make(chan struct{})}
		if !h.register(c) { // the address's count is released with the connection (unregister)
			h.release(addr)
			ws.Close(websocket.StatusGoingAway, reasonShutdown)
			return
		}
		h.wg.Add(1)
		defer h.wg.Done()
		c.run()
	})
}

// clientAddr is the connection's client IP address (Options.Addresses).
func (h *Hub) clientAddr(r *http.Request) string { return h.opts.Addresses.Of(r) }

// admit counts a connection from addr: 200, or 429 over the per-address
// limit, 503 once closed.
func (h *Hub) admit(addr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return http.StatusServiceUnavailable
	case h.opts.MaxConnsPerAddr > 0 && h.perAddr[addr] >= h.opts.MaxConnsPerAddr:
		return http.StatusTooManyRequests
	}
	h.perAddr[addr]++
	return http.StatusOK
}

func (h *Hub) release(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked(addr)
}

func (h *Hub) releaseLocked(addr string) {
	if h.perAddr[addr]--; h.perAddr[addr] <= 0 {
		delete(h.perAddr, addr)
	}
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

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	h.detachLocked(c)
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.releaseLocked(c.addr) // with the connection count: Open and the per-address cap agree
	}
	h.mu.Unlock()
	h.releaseRoutes(c)
}
