package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// strongPassword passes the entropy check.
const strongPassword = "Tr0ub4dor&3-correct-horse-battery"

var userSeq atomic.Int64

// uniqueName returns a fresh username.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Map decodes an object body.
func (r *response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// api is a tiny HTTP client for the tests.
type api struct {
	t      testing.TB
	url    string
	client *http.Client // nil: http.DefaultClient
}

func newAPI(t testing.TB, e *enginetest.Engine) *api { return &api{t: t, url: e.URL} }

func (a *api) do(method, path, token, contentType string, body io.Reader) *response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("X-DPT-AUTHORIZATION", token)
	}
	client := a.client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// get sends a GET.
func (a *api) get(path, token string) *response {
	a.t.Helper()
	return a.do(http.MethodGet, path, token, "", nil)
}

// postJSON sends a JSON body.
func (a *api) postJSON(path, token string, body any) *response {
	a.t.Helper()
	b, _ := json.Marshal(body)
	return a.do(http.MethodPost, path, token, "application/json", bytes.NewReader(b))
}

// postForm sends a urlencoded body.
func (a *api) postForm(path, token string, form url.Values) *response {
	a.t.Helper()
	return a.do(http.MethodPost, path, token, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// postMultipart sends a multipart body.
func (a *api) postMultipart(path, token string, fields map[string]string) *response {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return a.do(http.MethodPost, path, token, mw.FormDataContentType(), &buf)
}

// expect fails unless r has status.
func expect(t testing.TB, r *response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// accepted checks a CommandAccepted answer and returns the command id.
func accepted(t testing.TB, r *response) string {
	t.Helper()
	expect(t, r, http.StatusAccepted)
	var body struct{ CommandID, Message string }
	r.JSON(t, &body)
	if body.CommandID == "" || r.Header.Get("X-DPT-CAB-ID") != body.CommandID || body.Message != "Command accepted." {
		t.Fatalf("bad CommandAccepted: header %q body %s", r.Header.Get("X-DPT-CAB-ID"), r.Body)
	}
	return body.CommandID
}

// settle polls the utility status endpoint until the command leaves status 1
// and returns its status and body.
func (a *api) settle(id string) (int, string) {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r := a.get("/utility/request-command-id-status/"+id, "")
		expect(a.t, r, http.StatusOK)
		var st struct {
			CommandStatus int `json:"command_status"`
			Body          string
		}
		r.JSON(a.t, &st)
		if st.CommandStatus != 1 {
			return st.CommandStatus, st.Body
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.t.Fatalf("command %s did not settle", id)
	return 0, ""
}

// succeed waits for the command and fails unless it succeeded.
func (a *api) succeed(id string) string {
	a.t.Helper()
	st, body := a.settle(id)
	if st != 2 {
		a.t.Fatalf("command %s: status %d body %q, want success", id, st, body)
	}
	return body
}

// user is a registered profile with a token.
type user struct {
	Name, Password, ID, Token string
	Key                       string // signed public key, "" if none registered
}

// register creates a profile and authenticates it, without a public key.
func (a *api) register(prefix string) *user {
	a.t.Helper()
	u := &user{Name: uniqueName(prefix), Password: strongPassword}
	id := accepted(a.t, a.postJSON("/profile/register-profile", "", map[string]string{"username": u.Name, "password": u.Password}))
	u.ID = a.succeed(id)
	u.Token = a.login(u.Name, u.Password)
	return u
}

// login authenticates and returns the token.
func (a *api) login(name, password string) string {
	a.t.Helper()
	r := a.postJSON("/profile/authenticate", "", map[string]string{"username": name, "password": password})
	expect(a.t, r, http.StatusOK)
	var tok struct{ AuthorizationToken, ExpiresAt string }
	r.JSON(a.t, &tok)
	return tok.AuthorizationToken
}

// activeUser registers a profile and its public key.
func (a *api) activeUser(prefix string) *user {
	a.t.Helper()
	u := a.register(prefix)
	priv, err := keys.Generate()
	if err != nil {
		a.t.Fatal(err)
	}
	u.Key = keys.SignedPublic(priv)
	a.succeed(accepted(a.t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key})))
	return u
}

// socket is a joined WebSocket. A goroutine reads it all the time, as a
// real client does, so that the server's keepalive pings are answered even
// while a test is busy elsewhere; messages queue until read.
type socket struct {
	t    testing.TB
	conn *websocket.Conn

	mu     sync.Mutex
	queue  [][]byte
	closed bool
	wake   chan struct{} // signalled when a message arrives or the socket closes
}

// dial opens a WebSocket to url.
func dial(t testing.TB, url string) *socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	s := &socket{t: t, conn: c, wake: make(chan struct{}, 1)}
	go s.receive()
	return s
}

func (s *socket) receive() {
	for {
		_, b, err := s.conn.Read(context.Background())
		s.mu.Lock()
		if err != nil {
			s.closed = true
		} else {
			s.queue = append(s.queue, b)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// next returns the next message; closed reports the socket ended first.
// It waits at most wait (timedOut).
func (s *socket) next(wait time.Duration) (b []byte, closed, timedOut bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			b, s.queue = s.queue[0], s.queue[1:]
			s.mu.Unlock()
			return b, false, false
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, true, false
		}
		select {
		case <-s.wake:
		case <-timer.C:
			return nil, false, true
		}
	}
}

func (s *socket) send(v any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		s.t.Fatalf("ws write: %v", err)
	}
}

// read returns the next message, or nil after wait.
func (s *socket) read(wait time.Duration) map[string]any {
	s.t.Helper()
	b, _, _ := s.next(wait)
	if b == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("ws message %q: %v", b, err)
	}
	return m
}

// join opens a socket and joins the channel of token.
func join(t testing.TB, wsURL, token string) *socket {
	t.Helper()
	s := dial(t, wsURL)
	s.send(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": token, "correlationId": "c-1"}})
	m := s.read(5 * time.Second)
	if m == nil || m["status"] != float64(200) {
		t.Fatalf("join: %v", m)
	}
	return s
}

// closedWithin reads (and drops) events until the server closes the socket;
// it fails if the socket is still open after wait.
func (s *socket) closedWithin(wait time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		_, closed, timedOut := s.next(time.Until(deadline))
		if timedOut {
			s.t.Fatal("socket still open")
		}
		if closed {
			return
		}
	}
}

// noEventFor fails if an event about command id arrives within wait.
func (s *socket) noEventFor(id string, wait time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		m := s.read(time.Until(deadline))
		if m == nil {
			return
		}
		if data, _ := m["data"].(map[string]any); data["id"] == id {
			s.t.Fatalf("unexpected event %v", m)
		}
	}
}

// awaitAck reads events until the X-DPT-CAB-ID event of command id.
func (s *socket) awaitAck(id string) map[string]any {
	s.t.Helper()
	evs := s.until(isAck(id))
	return evs[len(evs)-1]
}

// until reads s's events (data objects) up to and including the first that
// last accepts, and returns them all.
func (s *socket) until(last func(data map[string]any) bool) []map[string]any {
	s.t.Helper()
	var got []map[string]any
	deadline := time.Now().Add(30 * time.Second) // a guard only
	for time.Now().Before(deadline) {
		m := s.read(time.Until(deadline))
		if m == nil {
			break
		}
		data, _ := m["data"].(map[string]any)
		got = append(got, data)
		if last(data) {
			return got
		}
	}
	s.t.Fatalf("awaited event never came; got %v", got)
	return nil
}

// isAck is a predicate for the final X-DPT-CAB-ID event of command id.
func isAck(id string) func(map[string]any) bool {
	return func(d map[string]any) bool {
		return d["type"] == "X-DPT-CAB-ID" && d["id"] == id && d["command_status"] != float64(1)
	}
}
