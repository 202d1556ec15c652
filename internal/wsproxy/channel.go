package wsproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// joinChannel verifies token and joins c to its profile's channel. It
// returns 200 or 401 (the caller replies), or 0 when the socket is closing.
//
// A revocation racing the join must not leave the socket joined: the
// socket is registered under its token first (receiving nothing yet), then
// the token is verified again. A revocation that committed before the
// registration fails that second check; one that commits after it finds
// the socket registered, and its CloseToken closes it before the revoke
// answers (attach then sees it closing).
func (h *Hub) joinChannel(ctx context.Context, c *conn, token, correlationID string) int {
	g, err := h.verify(ctx, token)
	if err != nil {
		return http.StatusUnauthorized
	}
	if !h.reserve(c, g) {
		return 0
	}
	if again, err := h.verify(ctx, token); err != nil || again.TokenID != g.TokenID {
		h.mu.Lock()
		h.detachLocked(c)
		h.mu.Unlock()
		return http.StatusUnauthorized
	}
	var auds []string
	if h.opts.Relay != nil { // listening before the join answers: what is published after it is heard
		auds = audiences(g)
		if err := h.listen(g.ProfileID, auds); err != nil {
			h.log.Error("channel join: bus subscription failed", "profile", g.ProfileID, "err", err)
			h.mu.Lock()
			h.detachLocked(c)
			h.mu.Unlock()
			c.close(websocket.StatusInternalError, "bus unavailable")
			return 0
		}
	}
	channelID := uuid.Must(uuid.NewV7()).String()
	ok, _ := json.Marshal(reply{CorrelationID: correlationID, Status: http.StatusOK,
		Data: map[string]any{"channelId": channelID, "message": "Successfully joined profile channel."}})
	if !h.attach(c, g, channelID, ok, auds) {
		h.unlisten(g.ProfileID, auds)
		return 0
	}
	if h.opts.Relay != nil {
		h.drain(g.ProfileID) // what was kept before the join, then what came since
		// In a NATS cluster the new subscription reaches the other nodes a
		// moment later: an event published there meanwhile found no
		// listener and was kept. Drain again once the interest has spread.
		profileID := g.ProfileID
		time.AfterFunc(interestSpreadsWithin, func() { h.drain(profileID) })
	}
	h.log.Debug("channel joined", "profile", g.ProfileID, "channel", channelID)
	return http.StatusOK
}

// interestSpreadsWithin is how long after a join the hub drains the
// profile's kept events once more (a subscription's interest crossing the
// NATS cluster's routes takes far less).
const interestSpreadsWithin = time.Second

func (h *Hub) verify(ctx context.Context, token string) (*Grant, error) {
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	g, err := h.opts.Verifier.VerifyChannelToken(vctx, token)
	return &g, err
}

// reserve registers c under g's token, not yet joined: CloseToken closes
// it, Publish does not reach it.
func (h *Hub) reserve(c *conn, g *Grant) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || c.isDone() {
		return false
	}
	c.grant = g
	if h.byToken[g.TokenID] == nil {
		h.byToken[g.TokenID] = map[*conn]struct{}{}
	}
	h.byToken[g.TokenID][c] = struct{}{}
	return true
}

// attach joins the reserved c to g's profile channel (listening on auds,
// shared mode) and queues the join reply and the buffered events g may
// read; false if c was closed since it was reserved (its token revoked, or
// the hub closing).
func (h *Hub) attach(c *conn, g *Grant, channelID string, ok []byte, auds []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || c.isDone() || c.grant != g {
		h.detachLocked(c)
		return false
	}
	c.channelID, c.routes = channelID, auds
	if h.joined[g.ProfileID] == nil {
		h.joined[g.ProfileID] = map[*conn]struct{}{}
	}
	h.joined[g.ProfileID][c] = struct{}{}
	c.enqueue(ok)
	if b := h.buffers[g.ProfileID]; b != nil {
		now := time.Now()
		kept := b.events[:0]
		for _, e := range b.events {
			switch {
			case now.Sub(e.at) > h.opts.BufferTTL:
			case g.allows(e.ev):
				c.enqueue(e.msg)
			default:
				kept = append(kept, e) // for a later socket that may read it
			}
		}
		b.events = kept
		if len(kept) == 0 {
			delete(h.buffers, g.ProfileID)
		}
	}
	c.expiry = time.AfterFunc(time.Until(g.ExpiresAt), func() { h.expire(c, g) })
	return true
}

// expire closes c if it is still joined with g when g's token expires.
func (h *Hub) expire(c *conn, g *Grant) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.grant == g {
		h.detachLocked(c)
		c.drop(websocket.StatusPolicyViolation, reasonExpired)
	}
}

// channel returns c's channel id, "" when it is not joined.
func (h *Hub) channel(c *conn) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.channelID
}

// leave detaches c from its channel; false if it was not joined to
// channelID. In shared mode the hub has stopped listening for it when it
// returns (later events are kept for the next join).
func (h *Hub) leave(c *conn, channelID string) bool {
	h.mu.Lock()
	if c.grant == nil || c.channelID != channelID {
		h.mu.Unlock()
		return false
	}
	h.log.Debug("channel left", "profile", c.grant.ProfileID, "channel", channelID)
	h.detachLocked(c)
	h.mu.Unlock()
	h.releaseRoutes(c)
	return true
}

// joinDeadline closes c unless it is joined.
func (h *Hub) joinDeadline(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.grant == nil {
		c.close(websocket.StatusPolicyViolation, reasonNotJoined)
	}
}

// detachLocked removes c from its channel, if any.
func (h *Hub) detachLocked(c *conn) {
	g := c.grant
	if g == nil {
		return
	}
	if set := h.joined[g.ProfileID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.joined, g.ProfileID)
		}
	}
	if set := h.byToken[g.TokenID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.byToken, g.TokenID)
		}
	}
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if len(c.routes) > 0 { // unlistened by releaseRoutes, outside the lock
		c.releaseProfile, c.release = g.ProfileID, append(c.release, c.routes...)
	}
	c.grant, c.channelID, c.routes = nil, "", nil
}
