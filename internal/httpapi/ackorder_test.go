package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/enginetest"
)

// rawClient is a client as the reference deployment's are: one keep-alive
// HTTP connection and one joined socket, both read by hand. It sends a
// command, then reads its socket until the command's events arrive, and
// at each event looks whether the 202 is already on the HTTP connection
// (unread, in the kernel's receive buffer): a client that starts listening
// for a command when it reads the 202 misses every event that arrives
// before it.
type rawClient struct {
	t     *testing.T
	host  string
	token string
	http  *net.TCPConn
	br    *bufio.Reader
	ws    *websocket.Conn
}

func newRawClient(t *testing.T, e *enginetest.Engine, token string) *rawClient {
	t.Helper()
	host := strings.TrimPrefix(e.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	join, _ := json.Marshal(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": token}})
	if err := ws.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"status":200`)) {
		t.Fatalf("join: %s %v", b, err)
	}
	return &rawClient{t: t, host: host, token: token, http: c.(*net.TCPConn), br: bufio.NewReader(c), ws: ws}
}

// drain reads the socket up to the ack of marker, a command sent after the
// join: the events buffered before the join come first.
func (rc *rawClient) drain(marker string) {
	rc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := rc.ws.Read(ctx)
		if err != nil {
			rc.t.Fatalf("drain: %v", err)
		}
		if bytes.Contains(b, []byte(marker)) {
			return
		}
	}
}

// pendingBytes is how many bytes of an answer wait unread on the HTTP
// connection (MSG_PEEK, without blocking).
func (rc *rawClient) pendingBytes() int {
	raw, err := rc.http.SyscallConn()
	if err != nil {
		rc.t.Fatal(err)
	}
	buf := make([]byte, 1)
	n := 0
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: report what is there now
	}); err != nil {
		rc.t.Fatal(err)
	}
	if errors.Is(rerr, syscall.EAGAIN) {
		return 0
	}
	if rerr != nil {
		rc.t.Fatal(rerr)
	}
	return n
}

// outcome is what one command of the raw client saw.
type outcome struct {
	commandID    string
	requestID    string
	events       int // events of the command read
	beforeThe202 int // of them, read while its 202 was not yet on the connection
}

// command sends one command (a JSON body; method GET puts the fields in
// the query) and waits for its ack (and its data answer, for request-data).
func (rc *rawClient) command(method, path string, body map[string]any) outcome {
	rc.t.Helper()
	if rc.br.Buffered() != 0 || rc.pendingBytes() != 0 {
		rc.t.Fatal("an answer is on the connection before the request was sent")
	}
	var req *http.Request
	var err error
	if method == http.MethodGet {
		q := url.Values{}
		for k, v := range body {
			q.Set(k, fmt.Sprint(v))
		}
		req, err = http.NewRequest(method, "http://"+rc.host+path+"?"+q.Encode(), nil)
	} else {
		b, _ := json.Marshal(body)
		req, err = http.NewRequest(method, "http://"+rc.host+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		rc.t.Fatal(err)
	}
	req.Header.Set("X-DPT-AUTHORIZATION", rc.token)
	if err := req.Write(rc.http); err != nil {
		rc.t.Fatal(err)
	}
	wantData := path == "/data-token/request-data"
	var out outcome
	var ackID, dataID string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ackID == "" || (wantData && dataID == "") {
		_, b, err := rc.ws.Read(ctx)
		if err != nil {
			rc.t.Fatalf("%s: no ack on the socket: %v", path, err)
		}
		var ev struct {
			Data struct {
				Type          string
				ID            string
				CommandStatus int `json:"command_status"`
				Body          string
			}
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			rc.t.Fatalf("event %s: %v", b, err)
		}
		switch {
		case ev.Data.Type == "X-DPT-CAB-ID" && ev.Data.CommandStatus != 1:
			ackID = ev.Data.ID
			if ev.Data.CommandStatus != 2 {
				rc.t.Fatalf("%s: rejected %s", path, ev.Data.Body)
			}
		case ev.Data.Type == "X-DPT-CAB-REQUEST-ID":
			dataID = ev.Data.ID
		default:
			continue
		}
		out.events++
		if rc.pendingBytes() == 0 {
			out.beforeThe202++
		}
	}
	resp, err := http.ReadResponse(rc.br, req)
	if err != nil {
		rc.t.Fatal(err)
	}
	var acc struct{ CommandID, RequestID string }
	err = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		rc.t.Fatalf("%s: status %d %v", path, resp.StatusCode, err)
	}
	if acc.CommandID != ackID || (wantData && acc.RequestID != dataID) {
		rc.t.Fatalf("%s: 202 for %s/%s, events for %s/%s", path, acc.CommandID, acc.RequestID, ackID, dataID)
	}
	out.commandID, out.requestID = acc.CommandID, acc.RequestID
	return out
}

// TestAckAfterThe202 (issue #12 A.2): the events of a command run inline
// (and of one queued) reach the socket only after its 202 is on the HTTP
// connection, for every kind, 1 000 commands each with
// PRIVICORE_TEST_LARGE=1 (CI), else 100.
func TestAckAfterThe202(t *testing.T) {
	n := 100
	if enginetest.Large() && !testing.Short() {
		n = 1000
	}
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("ackorder")
	a.storageDevice(u, "s1")
	_, dev := a.requestDevice(u.Token, "d-meta")
	app := a.oauthApp(u, "data-token:read")
	rc := newRawClient(t, e, u.Token)
	rc.drain(a.succeed(accepted(t, a.postJSON("/device/request-unique-identifier", u.Token, map[string]string{"deviceName": "marker"}))))

	type kind struct {
		name string
		send func(i int) outcome
	}
	var tmps, dtks []string
	wire, _ := ciphertext(t, 64)
	data := base64.StdEncoding.EncodeToString(wire)
	kinds := []kind{
		{"reserve-token-space", func(int) outcome {
			o := rc.command("POST", "/data-token/reserve-token-space", map[string]any{"context": "ack"})
			r := a.get("/data-token/retrieve-temporary-data-token/"+o.commandID, u.Token)
			expect(t, r, 200)
			tmps = append(tmps, r.Map(t)["token"].(string))
			return o
		}},
		{"exchange-data-for-token", func(i int) outcome {
			o := rc.command("POST", "/data-token/exchange-data-for-token", map[string]any{"temporaryTokenSpace": tmps[i], "data": data})
			r := a.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": tmps[i], "fileName": "f", "extension": "bin", "context": "ack", "size": len(wire), "path": "/x"})
			expect(t, r, 200)
			dtks = append(dtks, r.Map(t)["token"].(string))
			return o
		}},
		{"request-data", func(i int) outcome {
			return rc.command("POST", "/data-token/request-data", map[string]any{"token": dtks[i]})
		}},
		{"update-data-token", func(i int) outcome {
			return rc.command("POST", "/data-token/update-data-token", map[string]any{"token": dtks[i], "fileName": fmt.Sprintf("g%d", i)})
		}},
		{"configure-information-security-risk-meta", func(i int) outcome {
			return rc.command("POST", "/data-token/configure-information-security-risk-meta", map[string]any{"token": dtks[i], "classification": "secret", "label": "L", "handling": "H"})
		}},
		{"delete-data", func(i int) outcome {
			return rc.command("POST", "/data-token/delete-data", map[string]any{"token": dtks[i]})
		}},
		{"device/configure-meta", func(i int) outcome {
			return rc.command("POST", "/device/configure-meta", map[string]any{"deviceIdentifier": dev, "displayName": fmt.Sprintf("d%d", i)})
		}},
		{"device/request-unique-identifier", func(i int) outcome {
			return rc.command("POST", "/device/request-unique-identifier", map[string]any{"deviceName": fmt.Sprintf("n%d", i)})
		}},
		{"set-voting-time-limit", func(i int) outcome {
			return rc.command("POST", "/verified-authenticator/set-voting-time-limit", map[string]any{"timeLimit": 5 + i%100})
		}},
		{"oauth-application-register", func(i int) outcome {
			return rc.command("POST", "/profile/oauth-application-register", map[string]any{"name": fmt.Sprintf("app%d", i), "redirectUri": "https://acme.example/cb", "scopes": []string{"data-token:read"}})
		}},
		{"oauth-application-request-authorization-code (GET)", func(i int) outcome {
			return rc.command("GET", "/profile/oauth-application-request-authorization-code", map[string]any{"client_id": app.ClientID, "nonce": fmt.Sprintf("n-%d", i), "scope[]": "data-token:read"})
		}},
		{"voting-configuration/register", func(i int) outcome {
			return rc.command("POST", "/verified-authenticator/voting-configuration/register", map[string]any{"name": fmt.Sprintf("vc%d", i), "timeLimit": 60, "strategy": "unanimous", "deviceIdentifiers": []string{}})
		}},
		{"register-public-key", func(int) outcome {
			return rc.command("POST", "/public-key/register-public-key", map[string]any{"publicKey": u.Key})
		}},
	}
	for _, k := range kinds {
		early, events := 0, 0
		for i := range n {
			o := k.send(i)
			early += o.beforeThe202
			events += o.events
		}
		if early > 0 {
			t.Errorf("%s: %d of %d events reached the socket before their 202", k.name, early, events)
		}
	}
}
