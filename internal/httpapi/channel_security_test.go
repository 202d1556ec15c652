package httpapi_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/wsproxy/wstest"
)

// rawWS is a WebSocket client written by hand over a real TCP connection,
// to send frames a well-behaved library never would.
type rawWS struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial connects to the WebSocket at url (ws://host:port/path) and sends
// the upgrade request; it returns the answer's status code and, for a 101,
// the connection.
func rawDial(t *testing.T, url string) (int, *rawWS) {
	t.Helper()
	addr, path, _ := strings.Cut(strings.TrimPrefix(url, "ws://"), "/")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade answer: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		res.Body.Close()
		return res.StatusCode, nil
	}
	return res.StatusCode, &rawWS{t: t, nc: nc, br: br}
}

// frame writes one frame: fin set, the opcode, a header claiming length
// payload bytes, masked (with a fixed key) or not, followed by body.
func (w *rawWS) frame(opcode byte, masked bool, length uint64, body []byte) {
	w.t.Helper()
	if _, err := w.nc.Write(wstest.Frame(opcode, masked, length, body)); err != nil {
		w.t.Fatalf("write frame: %v", err)
	}
}

// closeCode reads server frames until a close frame, answers it as a
// client does and returns its code and reason; it fails if the connection
// ends without one or stays open.
func (w *rawWS) closeCode() (int, string) {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			w.t.Fatalf("no close frame: %v", err)
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			io.ReadFull(w.br, l[:])
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			io.ReadFull(w.br, l[:])
			n = binary.BigEndian.Uint64(l[:])
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(w.br, body); err != nil {
			w.t.Fatalf("frame body: %v", err)
		}
		if h[0]&0x0f == 8 {
			if len(body) < 2 {
				return 0, ""
			}
			w.frame(8, true, 2, body[:2])
			return int(binary.BigEndian.Uint16(body)), string(body[2:])
		}
	}
}

// ended fails unless the server closes the TCP connection (EOF, or a
// reset when it closed with our close frame unread).
func (w *rawWS) ended() {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := io.Copy(io.Discard, w.br); errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection not closed by the server: %v", err)
	}
}

func TestRawUnmaskedClientFrameIsClosedWith1002(t *testing.T) {
	e := enginetest.Start(t)
	for _, addr := range []string{"ws://" + e.WSAddr() + "/", e.WSURL} {
		_, w := rawDial(t, addr)
		if w == nil {
			t.Fatal("upgrade refused")
		}
		w.frame(1, false, 2, []byte("hi"))
		if code, reason := w.closeCode(); code != 1002 {
			t.Fatalf("%s: close %d %q, want 1002", addr, code, reason)
		}
		w.ended()
	}
}

func TestRawHugeFrameHeaderIsClosedWith1009(t *testing.T) {
	e := enginetest.Start(t)
	for _, tc := range []struct {
		name   string
		length uint64
	}{{"2^62", 1 << 62}, {"2^63 (negative as int64)", 1 << 63}, {"just over 64 KiB", 64<<10 + 1}} {
		_, w := rawDial(t, "ws://"+e.WSAddr()+"/")
		w.frame(1, true, tc.length, nil) // the header only: no payload follows
		if code, reason := w.closeCode(); code != 1009 {
			t.Fatalf("%s: close %d %q, want 1009", tc.name, code, reason)
		}
		w.ended()
	}
	// A frame within the limit still works: the socket answers it.
	_, w := rawDial(t, "ws://"+e.WSAddr()+"/")
	w.frame(1, true, 2, []byte("{}"))
	w.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil || h[0]&0x0f != 1 {
		t.Fatalf("answer to a small frame: %v %x", err, h)
	}
}

func TestNeverJoinedSocketIsClosedAtTheJoinDeadline(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) { c.WSJoinTimeout = 300 * time.Millisecond })
	a := newAPI(t, e)
	u := a.activeUser("deadline")
	idle := dial(t, e.WSURL)
	_, w := rawDial(t, "ws://"+e.WSAddr()+"/")
	member := join(t, e.WSURL, u.Token)
	if code, reason := w.closeCode(); code != 1008 || reason != "no joinChannel in time" {
		t.Fatalf("close %d %q", code, reason)
	}
	w.ended()
	idle.closedWithin(5 * time.Second)
	// The joined socket stays and still hears its profile's events.
	id := accepted(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": "c"}))
	member.awaitAck(id)
	// The clients see their closes before the hub has let go of the two
	// sockets (its bookkeeping runs after the close frame is written).
	commandtest.Eventually(t, "only the joined socket open", func() bool { return e.Hub.Open() == 1 })
	id = accepted(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": "c"}))
	member.awaitAck(id)
}

func TestWebSocketsPerAddressAreCapped(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) { c.WSMaxConnsPerAddr = 3 })
	var open []*rawWS
	for range 3 {
		status, w := rawDial(t, "ws://"+e.WSAddr()+"/")
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d", status)
		}
		open = append(open, w)
	}
	if status, _ := rawDial(t, "ws://"+e.WSAddr()+"/"); status != http.StatusTooManyRequests {
		t.Fatalf("fourth socket: %d, want 429", status)
	}
	// The /ws path on the API port shares the count.
	if status, _ := rawDial(t, e.WSURL); status != http.StatusTooManyRequests {
		t.Fatalf("fourth socket on /ws: %d, want 429", status)
	}
	// A closed socket frees its slot (once the engine has seen it close:
	// dial until it has, the deadline only guards a slot never freed).
	open[0].nc.Close()
	status := 0
	for deadline := time.Now().Add(10 * time.Second); status != http.StatusSwitchingProtocols && time.Now().Before(deadline); {
		if status, _ = rawDial(t, "ws://"+e.WSAddr()+"/"); status == http.StatusTooManyRequests {
			time.Sleep(50 * time.Millisecond) // each refused dial holds a connection until the test ends
		}
	}
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("after one closed: %d", status)
	}
}

// raceJoin is one socket joined while its token was being revoked.
type raceJoin struct {
	status int // the join reply's, 0 if none
	err    error
	conn   *websocket.Conn
	mu     sync.Mutex
	later  [][]byte      // messages after the join reply
	ended  chan struct{} // closed when the socket ends
}

// dialRaw opens a socket without failing the test (it runs in a goroutine
// of its own).
func dialRaw(wsURL string) *raceJoin {
	r := &raceJoin{ended: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.conn, _, r.err = websocket.Dial(ctx, wsURL, nil)
	if r.err != nil {
		close(r.ended)
	}
	return r
}

// join sends joinChannel with token after delay and reads the reply; then
// it keeps reading, as a client does, until the socket ends.
func (r *raceJoin) join(token string, delay time.Duration) {
	time.Sleep(delay)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, _ := json.Marshal(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": token, "correlationId": "race"}})
	if err := r.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		r.err = err
		close(r.ended)
		return
	}
	_, b, err := r.conn.Read(ctx)
	if err != nil {
		r.err = err
		close(r.ended)
		return
	}
	var m struct{ Status int }
	json.Unmarshal(b, &m)
	r.status = m.Status
	go func() {
		defer close(r.ended)
		for {
			_, b, err := r.conn.Read(context.Background())
			if err != nil {
				return
			}
			r.mu.Lock()
			r.later = append(r.later, b)
			r.mu.Unlock()
		}
	}()
}

// TestRevokeRacingJoinsLeavesNoSocketJoined races joins against revokes:
// 500 rounds, 2 000 with PRIVICORE_TEST_LARGE=1 (CI).
func TestRevokeRacingJoinsLeavesNoSocketJoined(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("racer")
	control := join(t, e.WSURL, u.Token)

	rounds, workers := 500, 16
	if enginetest.Large() && !testing.Short() {
		rounds = 2000 // CI's heavy step
	}
	results := make([]*raceJoin, rounds)
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, rounds)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := a.postJSON("/profile/reauthorize-authorization-token", u.Token, map[string]any{"ttl": 3600})
				var tok struct{ AuthorizationToken string }
				if r.Status != 200 || json.Unmarshal(r.Body, &tok) != nil {
					errs <- fmt.Errorf("reauthorize %d %s", r.Status, r.Body)
					continue
				}
				// The socket is open first; its join is sent at a random
				// moment of the revoke's round trip, so that some joins are
				// verified before the revocation commits and registered after.
				rj := dialRaw(e.WSURL)
				if rj.err != nil {
					errs <- rj.err
					continue
				}
				done := make(chan *raceJoin, 1)
				go func() {
					rj.join(tok.AuthorizationToken, time.Duration(rand.Int64N(int64(8*time.Millisecond))))
					done <- rj
				}()
				if r := a.postJSON("/profile/revoke-authorization-token", tok.AuthorizationToken, nil); r.Status != 200 {
					errs <- fmt.Errorf("revoke %d %s", r.Status, r.Body)
				}
				results[i] = <-done
			}
		}()
	}
	for i := range rounds {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Every revoke has answered: an event raised now must reach no socket
	// of those tokens, and each of them must be closed.
	id := accepted(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": "after-revokes"}))
	control.awaitAck(id)
	joinedFirst, stale := 0, 0
	for i, r := range results {
		if r == nil {
			continue // its error was reported
		}
		if r.status == 200 {
			joinedFirst++
		}
		select {
		case <-r.ended:
		case <-time.After(10 * time.Second):
			t.Errorf("round %d (join %d): socket still open after its token's revoke answered", i, r.status)
			stale++
		}
		r.mu.Lock()
		for _, b := range r.later {
			if strings.Contains(string(b), id) {
				t.Errorf("round %d (join %d): received an event raised after the revoke: %s", i, r.status, b)
				stale++
			}
		}
		r.mu.Unlock()
		r.conn.CloseNow()
	}
	t.Logf("%d rounds: %d joins answered 200 before their revoke closed them, %d stale", rounds, joinedFirst, stale)
	if n := e.Hub.Joined(u.ID); n != 1 {
		t.Fatalf("%d sockets joined for the profile, want the control socket", n)
	}
}

func isAnswer(requestID string) func(map[string]any) bool {
	return func(d map[string]any) bool { return d["type"] == "X-DPT-CAB-REQUEST-ID" && d["id"] == requestID }
}

func TestChannelEventsFollowTheTokensScopes(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("scoped")
	a.storageDevice(u, "s1")
	writer := a.authorize(u, a.oauthApp(u, "data-token:write"), "n-w", "data-token:write").AccessToken
	reader := a.authorize(u, a.oauthApp(u, "data-token:read"), "n-r", "data-token:read").AccessToken

	sp := join(t, e.WSURL, u.Token)
	sw := join(t, e.WSURL, writer)
	sr := join(t, e.WSURL, reader)

	// The profile stores and reads a token: the answer carries ciphertext.
	wire, _ := ciphertext(t, 100)
	dtk := a.store(u, "scoped", wire)
	_, answer := a.retrieve(sp, u.Token, dtk)
	profileRequest := answer["id"].(string)

	// The writer application reserves: its own ack reaches it ...
	own := accepted(t, a.postJSON("/data-token/reserve-token-space", writer, map[string]any{"context": "app"}))
	for _, d := range sw.until(isAck(own)) {
		// ... and nothing before it: not the profile's data answer (no
		// data-token:read), not the acks of the profile's commands.
		if d["id"] != own {
			t.Fatalf("socket of a token without data-token:read received %v", d)
		}
	}
	if ack := sp.awaitAck(own); ack["command_status"] != float64(2) {
		t.Fatalf("profile socket: ack %v", ack)
	}

	// The reader application receives the profile's data answer (it holds
	// data-token:read) but no ack of a command it did not submit: not the
	// profile's (an exchange's ack body is its temporary token), not the
	// writer application's.
	r := a.postJSON("/data-token/request-data", reader, map[string]string{"token": dtk})
	expect(t, r, 202)
	readerRequest, readerCommand := r.Header.Get("X-DPT-CAB-REQUEST-ID"), r.Header.Get("X-DPT-CAB-ID")
	sawProfileAnswer := false
	for _, d := range sr.until(isAnswer(readerRequest)) {
		switch {
		case isAnswer(profileRequest)(d):
			sawProfileAnswer = true
		case d["type"] == "X-DPT-CAB-REQUEST-ID" && d["id"] == readerRequest:
		case d["type"] == "X-DPT-CAB-ID" && d["id"] == readerCommand:
		default:
			t.Fatalf("reader application's socket received %v", d)
		}
	}
	if !sawProfileAnswer {
		t.Fatal("a token with data-token:read did not receive the profile's data answer")
	}
}
