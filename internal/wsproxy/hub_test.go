package wsproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// tokens is the test's TokenVerifier: token → profile, with expiry, and
// for an OAuth access token its application and scopes.
type tokens map[string]tokenEntry

type tokenEntry struct {
	profile string
	expires time.Time
	app     string // "": the profile's own token
	scopes  []string
}

func (t tokens) VerifyChannelToken(_ context.Context, token string) (Grant, error) {
	e, ok := t[token]
	if !ok || time.Now().After(e.expires) {
		return Grant{}, errors.New("invalid")
	}
	return Grant{ProfileID: e.profile, TokenID: "id-" + token, ExpiresAt: e.expires, OAuth: e.app != "", Application: e.app, Scopes: e.scopes}, nil
}

var hour = time.Now().Add(time.Hour)

func newTestHub(t *testing.T, opts Options) (*Hub, string) {
	t.Helper()
	if opts.Verifier == nil {
		opts.Verifier = tokens{"ta": {profile: "A", expires: hour}, "ta2": {profile: "A", expires: hour}, "tb": {profile: "B", expires: hour}}
	}
	h := NewHub(opts)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

type client struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, c: c}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := c.c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message, nil after wait, or nil and the close error.
func (c *client) read(wait time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad JSON %q", b)
	}
	return m, nil
}

func (c *client) must(wait time.Duration) map[string]any {
	c.t.Helper()
	m, err := c.read(wait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) join(token, corr string) map[string]any {
	c.t.Helper()
	c.send(`{"action":"joinChannel","data":{"authorizationToken":"` + token + `","correlationId":"` + corr + `"}}`)
	return c.must(5 * time.Second)
}

func joined(t *testing.T, url, token string) *client {
	t.Helper()
	c := dial(t, url)
	if m := c.join(token, "x"); m["status"] != float64(200) {
		t.Fatalf("join: %v", m)
	}
	return c
}

func waitJoined(t *testing.T, h *Hub, profile string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if h.Joined(profile) == n {
			return
		}
	}
	t.Fatalf("%d sockets joined for %s, want %d", h.Joined(profile), profile, n)
}

func eventID(m map[string]any) any {
	d, _ := m["data"].(map[string]any)
	return d["id"]
}

func TestJoinReply(t *testing.T) {
	_, url := newTestHub(t, Options{})
	m := dial(t, url).join("ta", "corr-7")
	d := m["data"].(map[string]any)
	if m["status"] != float64(200) || m["correlationId"] != "corr-7" || d["message"] != "Successfully joined profile channel." {
		t.Fatalf("reply %v", m)
	}
	id, err := uuid.Parse(d["channelId"].(string))
	if err != nil || id.Version() != 7 {
		t.Fatalf("channelId %v: %v", d["channelId"], err)
	}
}

func TestBadTokenGets401ThenClose(t *testing.T) {
	_, url := newTestHub(t, Options{})
	c := dial(t, url)
	m := c.join("nope", "k")
	if m["status"] != float64(401) || m["correlationId"] != "k" || m["data"].(map[string]any)["message"] != "invalid token" {
		t.Fatalf("reply %v", m)
	}
	_, err := c.read(5 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
}

func TestEventsReachEveryProfileSocketAndNoOther(t *testing.T) {
	h, url := newTestHub(t, Options{})
	a1, a2, b := joined(t, url, "ta"), joined(t, url, "ta2"), joined(t, url, "tb")
	h.Publish("A", map[string]any{"type": "X-DPT-CAB-ID", "id": "e1"})
	for _, c := range []*client{a1, a2} {
		if m := c.must(5 * time.Second); eventID(m) != "e1" {
			t.Fatalf("got %v", m)
		}
	}
	if m, _ := b.read(200 * time.Millisecond); m != nil {
		t.Fatalf("B got A's event: %v", m)
	}
}

func TestBufferedUntilJoinBoundedAndExpiring(t *testing.T) {
	h, url := newTestHub(t, Options{BufferSize: 3, BufferTTL: 300 * time.Millisecond})
	for i := range 5 {
		h.Publish("A", map[string]any{"id": i})
	}
	c := joined(t, url, "ta")
	for want := 2; want <= 4; want++ { // the oldest two were dropped
		if m := c.must(5 * time.Second); eventID(m) != float64(want) {
			t.Fatalf("buffered event %v, want %d", m, want)
		}
	}
	if m, _ := c.read(100 * time.Millisecond); m != nil {
		t.Fatalf("extra event %v", m)
	}
	h.Publish("B", map[string]any{"id": "old"})
	time.Sleep(400 * time.Millisecond)
	b := joined(t, url, "tb")
	if m, _ := b.read(200 * time.Millisecond); m != nil {
		t.Fatalf("expired event delivered: %v", m)
	}
}

func TestMaxBufferedProfiles(t *testing.T) {
	h, _ := newTestHub(t, Options{MaxBufferedProfiles: 2})
	for _, p := range []string{"p1", "p2", "p3"} {
		h.Publish(p, "x")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buffers) != 2 || h.buffers["p1"] != nil {
		t.Fatalf("buffers %v", h.buffers)
	}
}

func TestLeaveStopsDeliveryAndRejoin(t *testing.T) {
	h, url := newTestHub(t, Options{})
	c := dial(t, url)
	ch := c.join("ta", "1")["data"].(map[string]any)["channelId"].(string)
	c.send(`{"action":"leaveChannel","data":{"channelId":"wrong"}}`)
	if m := c.must(5 * time.Second); m["status"] != float64(404) {
		t.Fatalf("wrong channel: %v", m)
	}
	c.send(`{"action":"leaveChannel","data":{"channelId":"` + ch + `"}}`)
	if m := c.must(5 * time.Second); m["status"] != float64(200) || m["data"].(map[string]any)["channelId"] != ch {
		t.Fatalf("leave: %v", m)
	}
	waitJoined(t, h, "A", 0)
	h.Publish("A", "while away")
	if m := c.join("tb", "2"); m["status"] != float64(200) {
		t.Fatalf("rejoin: %v", m)
	}
	h.Publish("B", "marker")
	if m := c.must(5 * time.Second); m["data"] != "marker" {
		t.Fatalf("after leave and rejoin as B: %v", m)
	}
}

func TestSecondJoinAndBadMessages(t *testing.T) {
	_, url := newTestHub(t, Options{})
	c := joined(t, url, "ta")
	if m := c.join("tb", "again"); m["status"] != float64(409) || m["correlationId"] != "again" {
		t.Fatalf("second join: %v", m)
	}
	c.send("{not json")
	if m := c.must(5 * time.Second); m["status"] != float64(400) {
		t.Fatalf("bad JSON: %v", m)
	}
	c.send(`{"action":"dance"}`)
	if m := c.must(5 * time.Second); m["status"] != float64(400) {
		t.Fatalf("unknown action: %v", m)
	}
}

func TestOversizedMessageClosesConnection(t *testing.T) {
	_, url := newTestHub(t, Options{MaxMessageBytes: 1024})
	c := dial(t, url)
	c.send(`{"action":"joinChannel","data":{"authorizationToken":"` + strings.Repeat("x", 4096) + `"}}`)
	if _, err := c.read(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
}

func TestCloseTokenClosesOnlyThatTokensSockets(t *testing.T) {
	h, url := newTestHub(t, Options{})
	a1, a2 := joined(t, url, "ta"), joined(t, url, "ta2")
	h.CloseToken("id-ta")
	if _, err := a1.read(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("revoked socket: %v", err)
	}
	h.Publish("A", "still here")
	if m := a2.must(5 * time.Second); m["data"] != "still here" {
		t.Fatalf("other token's socket: %v", m)
	}
}

func TestTokenExpiryClosesSocket(t *testing.T) {
	_, url := newTestHub(t, Options{Verifier: tokens{"short": {profile: "A", expires: time.Now().Add(300 * time.Millisecond)}}})
	c := joined(t, url, "short")
	_, err := c.read(5 * time.Second)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("expired token socket: %v", err)
	}
}

// A socket that never reads is closed as a slow consumer (1008, its queue
// full, what it had queued dropped) while the publishes go on: every
// Publish returns, and a socket of another profile that reads receives
// each of its events, one after the other, while the slow one is stalled.
// Nothing is timed; the guards only bound a hang.
func TestSlowConsumerIsClosedWithoutBlockingPublish(t *testing.T) {
	h, url := newTestHub(t, Options{SendQueue: 4})
	joined(t, url, "ta") // never reads
	h.mu.Lock()
	var slow *conn
	for c := range h.joined["A"] {
		slow = c
	}
	h.mu.Unlock()
	fast := joined(t, url, "tb")
	big := strings.Repeat("x", 256<<10)
	got := make(chan map[string]any)
	go func() {
		for {
			m, err := fast.read(30 * time.Second)
			if err != nil {
				close(got)
				return
			}
			got <- m
		}
	}()
	const events = 200
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range events {
			h.Publish("A", big)
			h.Publish("B", map[string]any{"id": i})
			// The next event only once this one arrived: the fast socket
			// never lags, so only the slow one can be dropped.
			m, ok := <-got
			if !ok {
				t.Errorf("the reading socket closed after %d of %d events", i, events)
				return
			}
			if m["data"].(map[string]any)["id"] != float64(i) {
				t.Errorf("event %d: the reading socket got %v", i, m)
				return
			}
		}
	}()
	select {
	case <-published:
	case <-time.After(60 * time.Second):
		t.Fatal("Publish blocked on a socket that does not read")
	}
	select {
	case <-slow.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the socket that does not read was not closed")
	}
	if slow.closeCode != websocket.StatusPolicyViolation || slow.closeReason != reasonSlow || !slow.discard {
		t.Fatalf("slow consumer closed with %d %q (queue dropped: %v), want %d %q, queue dropped",
			slow.closeCode, slow.closeReason, slow.discard, websocket.StatusPolicyViolation, reasonSlow)
	}
	waitJoined(t, h, "A", 0)
	if h.Joined("B") != 1 {
		t.Fatalf("%d sockets joined for B, want the reading one", h.Joined("B"))
	}
}

func TestCloseEndsConnectionsAndGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	h := NewHub(Options{Verifier: tokens{"ta": {profile: "A", expires: hour}}})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	cs := []*client{joined(t, url, "ta"), joined(t, url, "ta"), dial(t, url)}
	// The clients read while the hub closes, so that they answer its close
	// handshake (an unread socket would hold Close for coder/websocket's
	// handshake wait).
	errs := make(chan error, len(cs))
	for _, c := range cs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := c.c.Read(ctx)
			errs <- err
		}()
	}
	h.Close()
	for range cs {
		if err := <-errs; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("after Close: %v", err)
		}
	}
	for _, c := range cs {
		c.c.CloseNow()
	}
	srv.Close()
	// The deadline is a guard only.
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > before+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d → %d\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}
}

func TestPingKeepsIdleConnectionAlive(t *testing.T) {
	h, url := newTestHub(t, Options{PingInterval: 50 * time.Millisecond, WriteTimeout: time.Second})
	c := joined(t, url, "ta")
	// The client library answers pings while a read is pending.
	got := make(chan map[string]any, 1)
	go func() { m, _ := c.read(10 * time.Second); got <- m }()
	time.Sleep(500 * time.Millisecond) // ten ping intervals
	if h.Joined("A") != 1 {
		t.Fatal("idle connection dropped")
	}
	h.Publish("A", "alive")
	if m := <-got; m["data"] != "alive" {
		t.Fatalf("after idling: %v", m)
	}
}
