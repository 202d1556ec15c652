package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/client"
)

// fakeChannel is a channel proxy and command status endpoint: it accepts
// joins with token T-good, sends the events it is told to, and answers
// status polls from its table.
type fakeChannel struct {
	srv *httptest.Server

	mu       sync.Mutex
	conns    []*websocket.Conn
	joins    []string // correlation ids, one per join
	statuses map[string]string
	polls    int
	joined   chan struct{} // a value per successful join
}

func newFakeChannel(t *testing.T) *fakeChannel {
	f := &fakeChannel{statuses: map[string]string{}, joined: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", f.ws)
	mux.HandleFunc("GET /utility/request-command-id-status/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.polls++
		st, ok := f.statuses[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","message":"unknown command"}`)
			return
		}
		io.WriteString(w, st)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.dropAll()
		f.srv.Close()
	})
	return f
}

func (f *fakeChannel) ws(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	_, b, err := conn.Read(ctx)
	if err != nil {
		return
	}
	var join struct {
		Action string `json:"action"`
		Data   struct {
			AuthorizationToken string `json:"authorizationToken"`
			CorrelationID      string `json:"correlationId"`
		} `json:"data"`
	}
	json.Unmarshal(b, &join)
	if join.Action != "joinChannel" || join.Data.AuthorizationToken != "T-good" {
		conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"correlationId":%q,"status":401,"data":{"message":"invalid token"}}`, join.Data.CorrelationID))
		conn.Close(websocket.StatusPolicyViolation, "invalid token")
		return
	}
	// An event buffered while no socket was joined may come before the reply.
	conn.Write(ctx, websocket.MessageText, []byte(`{"data":{"type":"X-DPT-CAB-ID","id":"buffered","command_status":2,"body":"Command completed successfully"}}`))
	f.mu.Lock()
	f.joins = append(f.joins, join.Data.CorrelationID)
	n := len(f.joins)
	f.mu.Unlock()
	conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"correlationId":%q,"status":200,"data":{"channelId":"chan-%d","message":"Successfully joined profile channel."}}`,
		join.Data.CorrelationID, n))
	f.mu.Lock()
	f.conns = append(f.conns, conn)
	f.mu.Unlock()
	f.joined <- struct{}{}
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return
		}
	}
}

// send writes an event to every joined socket (it may run on any goroutine).
func (f *fakeChannel) send(t *testing.T, typ, id string, status int, body string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"data": map[string]any{"type": typ, "id": id, "command_status": status, "body": body}})
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		if err := c.Write(context.Background(), websocket.MessageText, b); err != nil {
			t.Errorf("send %s: %v", id, err)
		}
	}
}

// sendRaw writes a message as is to every joined socket.
func (f *fakeChannel) sendRaw(t *testing.T, msg string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		if err := c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
			t.Errorf("send: %v", err)
		}
	}
}

// dropAll closes every joined socket, as a restarting server would.
func (f *fakeChannel) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.CloseNow()
	}
	f.conns = nil
}

func (f *fakeChannel) setStatus(id string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := map[int]string{1: "started", 2: "succeeded", 3: "rejected"}[status]
	f.statuses[id] = fmt.Sprintf(`{"commandId":%q,"command_status":%d,"status":%q,"body":%q}`, id, status, name, body)
}

func (f *fakeChannel) waitJoins(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-f.joined:
		case <-time.After(5 * time.Second):
			t.Fatalf("no join")
		}
	}
}

// sessionGoroutines counts the goroutines running Session code.
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "privicore/client.(*Session)") {
			n++
		}
	}
	return n
}

// checkNoLeak waits for the session goroutines to end.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for sessionGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d session goroutines still running after Close", sessionGoroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSessionJoinEventsAndAwait(t *testing.T) {
	f := newFakeChannel(t)
	ctx := context.Background()
	s, err := client.NewSession(ctx, client.New(f.srv.URL, client.WithToken("T-good")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.waitJoins(t, 1)
	f.mu.Lock()
	corr := f.joins[0]
	f.mu.Unlock()
	if corr == "" || s.ChannelID() != "chan-1" {
		t.Fatalf("join: correlation id %q, channel %q", corr, s.ChannelID())
	}
	// The event that came before the join reply is remembered.
	if out, err := s.Await(ctx, "buffered"); err != nil || out.Status != 2 {
		t.Fatalf("buffered: %+v %v", out, err)
	}
	// An outcome that arrives before Await is found.
	f.send(t, "X-DPT-CAB-ID", "early", 2, "01HZZZZZZZZZZZZZZZZZZZZZZZ")
	time.Sleep(50 * time.Millisecond)
	actx, cancel := context.WithTimeout(ctx, time.Second) // well under the safety-net poll
	defer cancel()
	if out, err := s.Await(actx, "early"); err != nil || out != (client.Outcome{CommandID: "early", Status: 2, Body: "01HZZZZZZZZZZZZZZZZZZZZZZZ"}) {
		t.Fatalf("early: %+v %v", out, err)
	}
	// Pending is ignored; a rejection is a *RejectedError.
	res := make(chan error, 1)
	go func() { _, err := s.Await(actx, "voted"); res <- err }()
	f.send(t, "X-DPT-CAB-ID", "voted", 1, "")
	select {
	case err := <-res:
		t.Fatalf("returned on a pending event: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	f.send(t, "X-DPT-CAB-ID", "voted", 3, "voting.rejected")
	var rej *client.RejectedError
	if err := <-res; !errors.As(err, &rej) || rej.CommandID != "voted" || rej.Reason != "voting.rejected" {
		t.Fatalf("rejection: %v", err)
	}
	// Do = submit + Await.
	out, err := s.Do(actx, func() (string, error) {
		go f.send(t, "X-DPT-CAB-ID", "done", 2, "Command completed successfully")
		return "done", nil
	})
	if err != nil || out.Body != "Command completed successfully" {
		t.Fatalf("do: %+v %v", out, err)
	}
	if _, err := s.Do(actx, func() (string, error) { return "", errors.New("submit failed") }); err == nil || err.Error() != "submit failed" {
		t.Fatalf("do with a failed submission: %v", err)
	}
	// Every event is on Events, in order.
	var got []string
	for len(got) < 5 {
		select {
		case ev := <-s.Events():
			got = append(got, fmt.Sprintf("%s/%d", ev.ID, ev.CommandStatus))
			if len(ev.Raw) == 0 || ev.Type != "X-DPT-CAB-ID" {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(time.Second):
			t.Fatalf("events so far: %v", got)
		}
	}
	if want := "buffered/2 early/2 voted/1 voted/3 done/2"; strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %s", got, want)
	}

	// Noise is skipped; an object body is kept as JSON text.
	f.sendRaw(t, `not json`)
	f.sendRaw(t, `{"data":{"type":"X-DPT-CAB-ID","id":"obj","command_status":2,"body":{"copied":2,"failed":0}}}`)
	if out, err := s.Await(actx, "obj"); err != nil || out.Body != `{"copied":2,"failed":0}` {
		t.Fatalf("object body: %+v %v", out, err)
	}

	s.Close()
	s.Close() // idempotent
	if _, err := s.Await(ctx, "never"); !errors.Is(err, client.ErrSessionClosed) {
		t.Fatalf("await after close: %v", err)
	}
	if out, err := s.Await(ctx, "early"); err != nil || out.Status != 2 {
		t.Fatalf("a remembered outcome after close: %+v %v", out, err)
	}
	for range s.Events() { // closed after Close
	}
	checkNoLeak(t)
}

func TestSessionBadToken(t *testing.T) {
	f := newFakeChannel(t)
	_, err := client.NewSession(context.Background(), client.New(f.srv.URL, client.WithToken("T-bad")))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "unauthorized" || apiErr.Message != "invalid token" {
		t.Fatalf("got %v", err)
	}
	checkNoLeak(t)
}

func TestSessionUnreachable(t *testing.T) {
	f := newFakeChannel(t)
	url := f.srv.URL
	f.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.NewSession(ctx, client.New(url, client.WithToken("T-good"))); err == nil {
		t.Fatal("joined a closed server")
	}
	checkNoLeak(t)
}

// TestSessionRejoinPolls drops the socket while a command finishes: the
// session re-joins, and Await learns the outcome by polling right after the
// re-join (long before the safety-net poll).
//
// The session's safety-net poll is an hour away, so the outcome can only
// come from the poll after the re-join.
func TestSessionRejoinPolls(t *testing.T) {
	f := newFakeChannel(t)
	ctx := context.Background()
	s, err := client.NewSessionPolling(ctx, client.New(f.srv.URL, client.WithToken("T-good")), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.waitJoins(t, 1)
	f.setStatus("missed", 1, "")
	res := make(chan error, 1)
	go func() {
		out, err := s.Await(ctx, "missed")
		if err == nil && out.Body != "01HZZZZZZZZZZZZZZZZZZZZZZZ" {
			err = fmt.Errorf("outcome %+v", out)
		}
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	f.dropAll()
	f.setStatus("missed", 2, "01HZZZZZZZZZZZZZZZZZZZZZZZ") // finished while no socket was joined
	f.waitJoins(t, 1)
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Await did not return after the re-join: not polled at the re-join")
	}
	if s.Reconnects() != 1 || s.ChannelID() != "chan-2" {
		t.Fatalf("reconnects %d, channel %q", s.Reconnects(), s.ChannelID())
	}
	// Events flow on the new socket.
	f.send(t, "X-DPT-CAB-ID", "after", 2, "ok")
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := s.Await(actx, "after"); err != nil {
		t.Fatal(err)
	}
}

// TestAwaitSafetyNetPoll gets no event at all: the periodic poll resolves
// Await, and an unknown command ends it with the 404.
func TestAwaitSafetyNetPoll(t *testing.T) {
	t.Parallel() // waits for the safety-net poll: runs beside the others
	f := newFakeChannel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewSession(ctx, client.New(f.srv.URL, client.WithToken("T-good")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.setStatus("silent", 3, "profile.wrong_password")
	unknown := make(chan error, 1)
	go func() { _, err := s.Await(ctx, "unknown"); unknown <- err }()
	if _, err := s.Await(ctx, "silent"); !client.IsReason(err, "profile.wrong_password") {
		t.Fatalf("silent: %v", err)
	}
	if err := <-unknown; !client.IsStatus(err, 404) {
		t.Fatalf("unknown: %v", err)
	}
	// A cancelled context ends Await.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := s.Await(cctx, "whatever"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestEventsDropWhenFull never reads Events: the session keeps working.
func TestEventsDropWhenFull(t *testing.T) {
	f := newFakeChannel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.NewSession(ctx, client.New(f.srv.URL, client.WithToken("T-good")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.waitJoins(t, 1)
	for i := range 1000 {
		f.send(t, "X-DPT-CAB-ID", fmt.Sprint("c", i), 2, "ok")
	}
	if _, err := s.Await(ctx, "c999"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Await(ctx, "c0"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	checkNoLeak(t)
}

// TestSessionConcurrentAwaits has many goroutines await many commands.
func TestSessionConcurrentAwaits(t *testing.T) {
	f := newFakeChannel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewSession(ctx, client.New(f.srv.URL, client.WithToken("T-good")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.waitJoins(t, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		// Pending, as an engine says of a command it accepted: Await polls
		// once its join is answered, which may come after it starts.
		f.setStatus(fmt.Sprint("k", i), 1, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("k", i)
			out, err := s.Await(ctx, id)
			if err == nil && out.CommandID != id {
				err = fmt.Errorf("outcome %+v for %s", out, id)
			}
			errs <- err
		}()
	}
	for i := range 200 {
		f.send(t, "X-DPT-CAB-ID", fmt.Sprint("k", i), 2, "ok")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
