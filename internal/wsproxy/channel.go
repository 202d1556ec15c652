package wsproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// joinOutcome is the result of attaching a verified socket.
type joinOutcome int

const (
	joinedOK    joinOutcome = iota
	joinRevoked             // the token was revoked since it was verified
	joinStale               // verified too long ago to trust: verify again
	joinClosing             // the socket or the hub is closing
)

// joinChannel verifies token and joins c to its profile's channel. It
// returns the reply status (200, 401) when it answered the client itself
// through the queue, or 0 when the socket is closing.
func (h *Hub) joinChannel(ctx context.Context, c *conn, token, correlationID string) int {
	for {
		verifiedAt := time.Now()
		vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
		g, err := h.opts.Verifier.VerifyChannelToken(vctx, token)
		cancel()
		if err != nil {
			return http.StatusUnauthorized
		}
		channelID := uuid.Must(uuid.NewV7()).String()
		ok, _ := json.Marshal(reply{CorrelationID: correlationID, Status: http.StatusOK,
			Data: map[string]any{"channelId": channelID, "message": "Successfully joined profile channel."}})
		switch h.attach(c, &g, channelID, verifiedAt, ok) {
		case joinedOK:
			h.log.Debug("channel joined", "profile", g.ProfileID, "channel", channelID)
			return http.StatusOK
		case joinRevoked:
			return http.StatusUnauthorized
		case joinClosing:
			return 0
		}
	}
}

// attach registers c for g's profile and token, queues the join reply and
// the buffered events g may read, unless the token was revoked after
// verifiedAt (CloseToken runs under the same lock: either it sees c
// registered and closes it, or attach sees the revocation).
func (h *Hub) attach(c *conn, g *Grant, channelID string, verifiedAt time.Time, ok []byte) joinOutcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || c.isDone() {
		return joinClosing
	}
	if _, revoked := h.revoked[g.TokenID]; revoked {
		return joinRevoked
	}
	if time.Since(verifiedAt) > revokedMemory {
		return joinStale
	}
	c.grant, c.channelID = g, channelID
	if h.joined[g.ProfileID] == nil {
		h.joined[g.ProfileID] = map[*conn]struct{}{}
	}
	h.joined[g.ProfileID][c] = struct{}{}
	if h.byToken[g.TokenID] == nil {
		h.byToken[g.TokenID] = map[*conn]struct{}{}
	}
	h.byToken[g.TokenID][c] = struct{}{}
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
	return joinedOK
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
// channelID.
func (h *Hub) leave(c *conn, channelID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.grant == nil || c.channelID != channelID {
		return false
	}
	h.log.Debug("channel left", "profile", c.grant.ProfileID, "channel", channelID)
	h.detachLocked(c)
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
	c.grant, c.channelID = nil, ""
}
