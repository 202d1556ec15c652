package wsproxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/wsproxy/wstest"
)

// pausingVerifier verifies like tokens but, at its pauseOn-th call, stops
// after reading the token until released, so a test can revoke in between.
// The test changes tokens only while it is paused.
type pausingVerifier struct {
	tokens
	pauseOn  int
	calls    atomic.Int32
	verified chan struct{}
	release  chan struct{}
}

func (p *pausingVerifier) VerifyChannelToken(ctx context.Context, token string) (Grant, error) {
	g, err := p.tokens.VerifyChannelToken(ctx, token)
	if int(p.calls.Add(1)) == p.pauseOn {
		p.verified <- struct{}{}
		<-p.release
	}
	return g, err
}

// raceRevoke joins with a token and revokes it (removes it, then
// CloseToken, as the profile service does) while the join's pauseOn-th
// verification is under way; it returns the socket and the hub.
func raceRevoke(t *testing.T, pauseOn int) (*client, *Hub) {
	v := &pausingVerifier{tokens: tokens{"ta": {profile: "A", expires: hour}}, pauseOn: pauseOn,
		verified: make(chan struct{}, 1), release: make(chan struct{})}
	h, url := newTestHub(t, Options{Verifier: v})
	c := dial(t, url)
	c.send(`{"action":"joinChannel","data":{"authorizationToken":"ta","correlationId":"r"}}`)
	select {
	case <-v.verified:
	case <-time.After(5 * time.Second):
		t.Fatalf("the join never made verification %d", pauseOn)
	}
	delete(v.tokens, "ta") // the revocation commits
	h.CloseToken("id-ta")
	close(v.release)
	return c, h
}

func TestJoinVerifiedBeforeRevokeButRegisteredAfterIsRefused(t *testing.T) {
	c, h := raceRevoke(t, 1)
	if m := c.must(5 * time.Second); m["status"] != float64(401) {
		t.Fatalf("join after revoke: %v", m)
	}
	if _, err := c.read(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
	if n := h.Joined("A"); n != 0 {
		t.Fatalf("%d sockets joined", n)
	}
}

func TestJoinRegisteredBeforeRevokeIsClosedByIt(t *testing.T) {
	c, h := raceRevoke(t, 2) // the second check read the token before the revocation
	h.Publish("A", "after the revoke")
	m, err := c.read(5 * time.Second)
	var ce websocket.CloseError
	if m != nil || !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != reasonRevoked {
		t.Fatalf("after revoke: %v %v", m, err)
	}
	if n := h.Joined("A"); n != 0 {
		t.Fatalf("%d sockets joined", n)
	}
}

func TestRevokedSocketGetsNothingMore(t *testing.T) {
	h, url := newTestHub(t, Options{})
	c := joined(t, url, "ta")
	h.CloseToken("id-ta")
	h.Publish("A", map[string]any{"type": "X-DPT-CAB-ID", "id": "after"})
	if m, err := c.read(5 * time.Second); m != nil || websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after revoke: %v %v", m, err)
	}
	if n := h.Joined("A"); n != 0 {
		t.Fatalf("%d sockets joined", n)
	}
}

// scopedTokens: a profile token and three access tokens of profile A.
var scopedTokens = tokens{
	"own":    {profile: "A", expires: hour},
	"data":   {profile: "A", expires: hour, app: "app1", scopes: []string{"data-token:read"}},
	"voting": {profile: "A", expires: hour, app: "app2", scopes: []string{"voting:read", "data-token:write"}},
	"all":    {profile: "A", expires: hour, app: "app3", scopes: []string{"all"}},
}

func TestEventsFollowTheTokensScopes(t *testing.T) {
	h, url := newTestHub(t, Options{Verifier: scopedTokens})
	own, data, voting, all := joined(t, url, "own"), joined(t, url, "data"), joined(t, url, "voting"), joined(t, url, "all")
	events := []any{
		command.Event{Type: command.EventCommand, ID: "ack-profile", CommandStatus: 2, Actor: "token 0123456789ab"},
		command.Event{Type: command.EventCommand, ID: "ack-app1", CommandStatus: 2, Actor: "application app1"},
		command.Event{Type: command.EventCommand, ID: "ack-app2", CommandStatus: 1, Actor: "application app2"},
		map[string]any{"type": EventDataRequest, "id": "answer", "body": "Y2lwaGVydGV4dA=="},
		map[string]string{"type": EventStreamReady, "id": "stream"},
		&struct {
			Kind string `json:"type"`
			ID   string `json:"id"`
		}{EventPoolOpened, "opened-struct"},
		map[string]any{"type": EventPoolOpened, "id": "opened"},
		map[string]any{"type": EventPoolResolved, "id": "resolved"},
		map[string]any{"type": "SOMETHING-NEW", "id": "unknown"},
		"not an object",
		map[string]any{"type": command.EventCommand, "id": "end"}, // no actor: the profile's only
	}
	for _, ev := range events {
		h.Publish("A", ev)
	}
	h.Publish("A", command.Event{Type: command.EventCommand, ID: "marker", Actor: "application app1"})
	h.Publish("A", command.Event{Type: command.EventCommand, ID: "marker", Actor: "application app2"})
	h.Publish("A", command.Event{Type: command.EventCommand, ID: "marker", Actor: "application app3"})
	want := map[*client][]any{
		own:    {"ack-profile", "ack-app1", "ack-app2", "answer", "stream", "opened-struct", "opened", "resolved", "unknown", nil, "end", "marker", "marker", "marker"},
		data:   {"ack-app1", "answer", "stream", "marker"},
		voting: {"ack-app2", "opened-struct", "opened", "resolved", "marker"},
		all:    {"answer", "stream", "opened-struct", "opened", "resolved", "marker"},
	}
	for c, ids := range want {
		for _, id := range ids {
			if m := c.must(5 * time.Second); eventID(m) != id {
				t.Fatalf("got %v, want %v (expected %v)", m, id, ids)
			}
		}
	}
	for c := range want {
		if m, _ := c.read(100 * time.Millisecond); m != nil {
			t.Fatalf("extra event %v", m)
		}
	}
}

func TestBufferedEventWaitsForASocketThatMayReadIt(t *testing.T) {
	h, url := newTestHub(t, Options{Verifier: scopedTokens})
	h.Publish("A", map[string]any{"type": EventDataRequest, "id": "answer"})
	h.Publish("A", map[string]any{"type": EventPoolOpened, "id": "opened"})
	v := joined(t, url, "voting")
	if m := v.must(5 * time.Second); eventID(m) != "opened" {
		t.Fatalf("voting socket: %v", m)
	}
	// Published while only the voting socket is joined: nobody may read it yet.
	h.Publish("A", map[string]any{"type": EventStreamReady, "id": "stream"})
	d := joined(t, url, "data")
	for _, id := range []string{"answer", "stream"} {
		if m := d.must(5 * time.Second); eventID(m) != id {
			t.Fatalf("data socket: %v, want %s", m, id)
		}
	}
	if m, _ := v.read(100 * time.Millisecond); m != nil {
		t.Fatalf("voting socket got %v", m)
	}
}

func TestJoinDeadlineClosesIdleSocketsAndRearmsAfterLeave(t *testing.T) {
	h, url := newTestHub(t, Options{JoinTimeout: 200 * time.Millisecond})
	idle := dial(t, url)
	_, err := idle.read(5 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("idle socket: %v", err)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != reasonNotJoined {
		t.Fatalf("close reason %v", err)
	}
	c := joined(t, url, "ta")
	time.Sleep(400 * time.Millisecond) // twice the deadline: a joined socket stays
	h.Publish("A", "still joined")
	if m := c.must(5 * time.Second); m["data"] != "still joined" {
		t.Fatalf("joined socket: %v", m)
	}
	c.send(`{"action":"leaveChannel","data":{"channelId":"` + channelOf(t, h) + `"}}`)
	if m := c.must(5 * time.Second); m["status"] != float64(200) {
		t.Fatalf("leave: %v", m)
	}
	if _, err := c.read(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after leaving: %v", err)
	}
}

// channelOf returns the channel id of the one joined socket of h.
func channelOf(t *testing.T, h *Hub) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		if c.channelID != "" {
			return c.channelID
		}
	}
	t.Fatal("no joined socket")
	return ""
}

func TestFrameGuardFollowsFramesSplitAnywhere(t *testing.T) {
	var stream []byte
	stream = append(stream, wstest.Header(1, true, 5)...)
	stream = append(stream, "hello"...)
	stream = append(stream, wstest.Header(9, true, 0)...) // ping
	stream = append(stream, wstest.Header(2, true, 300)...)
	stream = append(stream, make([]byte, 300)...)
	stream = append(stream, wstest.Header(0, true, 1000)...) // continuation at the limit
	stream = append(stream, make([]byte, 1000)...)
	for _, chunk := range []int{1, 2, 3, 7, len(stream)} {
		g := frameGuard{limit: 1000}
		for i := 0; i < len(stream); i += chunk {
			p := stream[i:min(i+chunk, len(stream))]
			if n, err := g.scan(p); err != nil || n != len(p) {
				t.Fatalf("chunk %d at %d: %d %v", chunk, i, n, err)
			}
		}
		if g.have != 0 || g.remaining != 0 {
			t.Fatalf("chunk %d: guard mid-frame: %+v", chunk, g)
		}
	}
	for _, tc := range []struct {
		name string
		hdr  []byte
		want error
		pass int // bytes of the header let through
	}{
		{"unmasked", wstest.Header(1, false, 2), errUnmaskedFrame, 1},
		{"2^62", wstest.Header(1, true, 1<<62), errFrameTooBig, 9},
		{"2^63", wstest.Header(2, true, 1<<63), errFrameTooBig, 9},
		{"limit+1", wstest.Header(1, true, 1001), errFrameTooBig, 3},
		{"small over a low limit", wstest.Header(1, true, 100), errFrameTooBig, 1},
	} {
		limit := int64(1000)
		if tc.name == "small over a low limit" {
			limit = 10
		}
		g := frameGuard{limit: limit}
		p := append(wstest.Header(1, true, 0), tc.hdr...) // an empty frame first
		n, err := g.scan(p)
		if !errors.Is(err, tc.want) || n != 6+tc.pass {
			t.Fatalf("%s: %d %v, want %d %v", tc.name, n, err, 6+tc.pass, tc.want)
		}
	}
}
