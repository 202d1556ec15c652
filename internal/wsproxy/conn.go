package wsproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// conn is one WebSocket connection.
type conn struct {
	hub  *Hub
	addr string // the client address, counted against MaxConnsPerAddr until unregister
	ws   *websocket.Conn
	send chan []byte
	done chan struct{}
	once sync.Once
	// Set once by close or drop, read by the writer after done is closed.
	closeCode   websocket.StatusCode
	closeReason string
	discard     bool // drop: what is queued is not sent

	// Guarded by hub.mu.
	grant     *Grant // nil while not joined
	channelID string
	expiry    *time.Timer // closes the socket when the token expires
	// Shared mode: the audiences c listens to while joined (relay.go), and
	// those to unlisten once detached (releaseRoutes), of releaseProfile.
	routes         []string
	release        []string
	releaseProfile string
}

// enqueue queues msg; a full queue closes the connection (slow consumer).
// Called with the hub lock held or from the reader.
func (c *conn) enqueue(msg []byte) {
	if c.isDone() {
		return
	}
	select {
	case c.send <- msg:
	default:
		go c.abort()
	}
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// abort drops a connection that cannot keep up: no flush, no handshake.
func (c *conn) abort() {
	c.drop(websocket.StatusPolicyViolation, reasonSlow)
	c.ws.CloseNow()
}

// close ends the connection: the writer flushes what is queued (so a final
// reply such as a 401 reaches the client), then sends the close frame.
func (c *conn) close(code websocket.StatusCode, reason string) { c.end(code, reason, false) }

// drop ends the connection without sending what is queued.
func (c *conn) drop(code websocket.StatusCode, reason string) { c.end(code, reason, true) }

func (c *conn) end(code websocket.StatusCode, reason string, discard bool) {
	c.once.Do(func() {
		c.closeCode, c.closeReason, c.discard = code, reason, discard
		close(c.done)
	})
}

// run serves the connection until it closes.
func (c *conn) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var deadline *time.Timer
	if c.hub.opts.JoinTimeout > 0 {
		deadline = time.AfterFunc(c.hub.opts.JoinTimeout, func() { c.hub.joinDeadline(c) })
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.writer(ctx) }()
	c.reader(ctx, deadline)
	if deadline != nil {
		deadline.Stop()
	}
	c.close(websocket.StatusNormalClosure, "")
	wg.Wait() // the writer flushes and sends the close frame
	c.hub.unregister(c)
	c.ws.CloseNow()
}

// writer sends queued messages and pings.
func (c *conn) writer(ctx context.Context) {
	ping := time.NewTicker(c.hub.opts.PingInterval)
	defer ping.Stop()
	for {
		if c.isDone() { // before anything queued
			c.finish(ctx)
			return
		}
		select {
		case <-c.done:
			c.finish(ctx)
			return
		case msg := <-c.send:
			if c.isDone() && c.discard {
				continue
			}
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

// finish flushes what is queued (e.g. a 401 reply), unless the connection
// was dropped, and sends the close frame.
func (c *conn) finish(ctx context.Context) {
	for !c.discard {
		var msg []byte
		select {
		case msg = <-c.send:
		default:
		}
		if msg == nil || c.write(ctx, msg) != nil {
			break
		}
	}
	c.ws.Close(c.closeCode, c.closeReason)
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

// readFailed closes the connection after a failed read with the code the
// failure calls for.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, errUnmaskedFrame):
		c.close(websocket.StatusProtocolError, reasonUnmasked)
	case errors.Is(err, errFrameTooBig):
		c.close(websocket.StatusMessageTooBig, reasonFrameLimit)
	case !errors.Is(err, context.Canceled):
		c.hub.log.Debug("socket closed", "err", err)
	}
}

// reader handles client actions until the connection ends. deadline, if
// set, is the join deadline: re-armed when the socket leaves its channel.
func (c *conn) reader(ctx context.Context, deadline *time.Timer) {
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.isDone() {
			return
		}
		var req request
		if typ != websocket.MessageText || json.Unmarshal(b, &req) != nil {
			c.reply("", http.StatusBadRequest, map[string]any{"message": "messages are JSON objects with an action"})
			continue
		}
		switch req.Action {
		case "joinChannel":
			if c.hub.channel(c) != "" {
				c.reply(req.Data.CorrelationID, http.StatusConflict, map[string]any{"message": "already joined a channel"})
				continue
			}
			if c.hub.joinChannel(ctx, c, req.Data.AuthorizationToken, req.Data.CorrelationID) == http.StatusUnauthorized {
				c.reply(req.Data.CorrelationID, http.StatusUnauthorized, map[string]any{"message": reasonBadToken})
				c.close(websocket.StatusPolicyViolation, reasonBadToken)
				return
			}
		case "leaveChannel":
			channelID := c.hub.channel(c)
			if channelID == "" || req.Data.ChannelID != channelID || !c.hub.leave(c, channelID) {
				c.reply(req.Data.CorrelationID, http.StatusNotFound, map[string]any{"message": "unknown channel"})
				continue
			}
			if deadline != nil {
				deadline.Reset(c.hub.opts.JoinTimeout)
			}
			c.reply(req.Data.CorrelationID, http.StatusOK, map[string]any{"channelId": channelID, "message": "Successfully left profile channel."})
		default:
			c.reply(req.Data.CorrelationID, http.StatusBadRequest, map[string]any{"message": "unknown action"})
		}
	}
}
