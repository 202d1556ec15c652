package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
)

// TestErrorDecoding checks that every §0 error shape becomes a *client.Error.
func TestErrorDecoding(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   client.Error
		text   []string // substrings of Error()
	}{
		{name: "unauthorized", status: 401, body: `{"error":"unauthorized","message":"invalid token"}`,
			want: client.Error{Status: 401, Code: "unauthorized", Message: "invalid token"}, text: []string{"401 unauthorized: invalid token"}},
		{name: "forbidden", status: 403, body: `{"error":"forbidden","message":"register a public key first","reason":"profile.public_key_required"}`,
			want: client.Error{Status: 403, Code: "forbidden", Message: "register a public key first", Reason: "profile.public_key_required"},
			text: []string{"(profile.public_key_required)"}},
		{name: "not found", status: 404, body: `{"error":"not_found","message":"no such command"}`,
			want: client.Error{Status: 404, Code: "not_found", Message: "no such command"}},
		{name: "conflict", status: 409, body: `{"error":"conflict","message":"username taken"}`,
			want: client.Error{Status: 409, Code: "conflict", Message: "username taken"}, text: []string{"username taken"}},
		{name: "validation", status: 422,
			body: `{"error":"validation_failed","message":"invalid fields","errors":{"password":["too weak"],"username":["too short","bad"]},"reason":"profile.weak_password"}`,
			want: client.Error{Status: 422, Code: "validation_failed", Message: "invalid fields", Reason: "profile.weak_password",
				Fields: map[string][]string{"password": {"too weak"}, "username": {"too short", "bad"}}},
			text: []string{"; password: too weak; username: too short, bad"}},
		{name: "rate limited", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":"rate_limited","message":"too many attempts"}`,
			want: client.Error{Status: 429, Code: "rate_limited", Message: "too many attempts", RetryAfter: 7 * time.Second}, text: []string{"retry after 7s"}},
		{name: "not JSON", status: 502, body: "bad gateway\n",
			want: client.Error{Status: 502, Code: "bad_gateway", Message: "bad gateway"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := client.New(srv.URL, client.WithToken("T-x")).ProfileID(context.Background())
			var apiErr *client.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("got %T %v, want *client.Error", err, err)
			}
			if !reflect.DeepEqual(*apiErr, tc.want) {
				t.Fatalf("decoded %#v\nwant    %#v", *apiErr, tc.want)
			}
			if !client.IsStatus(err, tc.status) {
				t.Fatalf("IsStatus(%d) false", tc.status)
			}
			if tc.want.Reason != "" && !client.IsReason(err, tc.want.Reason) {
				t.Fatalf("IsReason(%q) false", tc.want.Reason)
			}
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("%q does not contain %q", err.Error(), s)
				}
			}
		})
	}
}

// recorded is one request seen by the fake API.
type recorded struct {
	method, path, token, contentType string
	body                             map[string]any
}

// fakeAPI answers every §1–§4 endpoint with a canned answer and records
// what it was sent.
type fakeAPI struct {
	mu   sync.Mutex
	reqs []recorded
}

func (f *fakeAPI) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := recorded{method: r.Method, path: r.URL.Path, token: r.Header.Get("X-DPT-AUTHORIZATION"), contentType: r.Header.Get("Content-Type")}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		json.Unmarshal(b, &rec.body)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	accepted := func() {
		w.Header().Set("X-DPT-CAB-ID", "cmd-1")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"commandId":"cmd-1","message":"Command accepted."}`)
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /profile/register-profile", "POST /profile/change-password", "POST /public-key/register-public-key":
		accepted()
	case "POST /profile/authenticate", "POST /profile/reauthorize-authorization-token":
		io.WriteString(w, `{"authorizationToken":"T-new","expiresAt":"2030-01-02T03:04:05+00:00"}`)
	case "GET /profile/retrieve-profile-id":
		io.WriteString(w, `{"profileId":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}`)
	case "POST /profile/generate-token-qr":
		io.WriteString(w, `{"qrToken":"T-qr","expiresAt":"2030-01-02T03:04:05+00:00"}`)
	case "POST /profile/revoke-authorization-token":
		io.WriteString(w, `{"revoked":true}`)
	case "POST /profile/authorization-token/expiry":
		io.WriteString(w, `{"expiresAt":"2030-01-02T03:04:05+00:00"}`)
	case "GET /public-key/retrieve-public-key", "GET /dptcab/public-key":
		io.WriteString(w, `{"publicKey":"`+strings.Repeat("ab", 100)+`"}`)
	case "GET /generate-keys":
		io.WriteString(w, `{"private":"`+strings.Repeat("01", 32)+`","public":"`+strings.Repeat("cd", 100)+`"}`)
	case "GET /health":
		io.WriteString(w, `{"status":"ok"}`)
	case "GET /utility/request-command-id-status/cmd-1":
		io.WriteString(w, `{"commandId":"cmd-1","command_status":2,"status":"succeeded","body":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not_found","message":"no route"}`)
	}
}

// TestRequests checks method, path, body and authorization of every helper.
func TestRequests(t *testing.T) {
	api := &fakeAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx := context.Background()
	c := client.New(srv.URL+"/", client.WithToken("T-old"))
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	check := func(method, path string, authorized bool, body map[string]any) {
		t.Helper()
		r := api.last()
		if r.method != method || r.path != path {
			t.Fatalf("sent %s %s, want %s %s", r.method, r.path, method, path)
		}
		if authorized != (r.token != "") {
			t.Fatalf("%s: token %q, want authorized=%v", path, r.token, authorized)
		}
		if body != nil {
			if r.contentType != "application/json" || !reflect.DeepEqual(r.body, body) {
				t.Fatalf("%s: body %v (%s), want %v", path, r.body, r.contentType, body)
			}
		}
	}

	id, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: "ann", Password: "pw", GivenName: "Ann"})
	if err != nil || id != "cmd-1" {
		t.Fatalf("register: %q %v", id, err)
	}
	check("POST", "/profile/register-profile", false, map[string]any{"username": "ann", "password": "pw", "givenName": "Ann"})

	tok, err := c.Authenticate(ctx, "ann", "pw")
	if err != nil || tok.Value != "T-new" || !tok.ExpiresAt.Equal(when) || c.Token() != "T-new" {
		t.Fatalf("authenticate: %+v %v (client token %q)", tok, err, c.Token())
	}
	check("POST", "/profile/authenticate", false, map[string]any{"username": "ann", "password": "pw"})

	if pid, err := c.ProfileID(ctx); err != nil || pid != "01HZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Fatalf("profile id %q %v", pid, err)
	}
	check("GET", "/profile/retrieve-profile-id", true, nil)
	if api.last().token != "T-new" {
		t.Fatalf("token sent %q, want the authenticated one", api.last().token)
	}

	if id, err := c.ChangePassword(ctx, "cur", "next"); err != nil || id != "cmd-1" {
		t.Fatalf("change password %q %v", id, err)
	}
	check("POST", "/profile/change-password", true, map[string]any{"currentPassword": "cur", "newPassword": "next"})

	if qr, err := c.GenerateQRToken(ctx, "storage"); err != nil || qr.Value != "T-qr" || !qr.ExpiresAt.Equal(when) {
		t.Fatalf("qr %+v %v", qr, err)
	}
	check("POST", "/profile/generate-token-qr", true, map[string]any{"role": "storage"})

	if nt, err := c.Reauthorize(ctx, 2*time.Hour); err != nil || nt.Value != "T-new" {
		t.Fatalf("reauthorize %+v %v", nt, err)
	}
	check("POST", "/profile/reauthorize-authorization-token", true, map[string]any{"ttl": float64(7200)})

	if exp, err := c.TokenExpiry(ctx); err != nil || !exp.Equal(when) {
		t.Fatalf("expiry %v %v", exp, err)
	}
	check("POST", "/profile/authorization-token/expiry", true, nil)

	if err := c.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	check("POST", "/profile/revoke-authorization-token", true, nil)

	if id, err := c.RegisterPublicKey(ctx, "KEY"); err != nil || id != "cmd-1" {
		t.Fatalf("register key %q %v", id, err)
	}
	check("POST", "/public-key/register-public-key", true, map[string]any{"publicKey": "KEY"})

	if id, err := c.RegisterPublicKeyWithCredentials(ctx, "ann", "pw", "KEY"); err != nil || id != "cmd-1" {
		t.Fatalf("register key with credentials %q %v", id, err)
	}
	check("POST", "/public-key/register-public-key", false, map[string]any{"username": "ann", "password": "pw", "publicKey": "KEY"})

	if k, err := c.RetrievePublicKey(ctx); err != nil || len(k) != 200 {
		t.Fatalf("public key %q %v", k, err)
	}
	check("GET", "/public-key/retrieve-public-key", true, nil)

	if k, err := c.EnginePublicKey(ctx); err != nil || len(k) != 200 {
		t.Fatalf("engine key %q %v", k, err)
	}
	check("GET", "/dptcab/public-key", true, nil)

	if priv, pub, err := c.GenerateKeys(ctx); err != nil || len(priv) != 64 || len(pub) != 200 {
		t.Fatalf("generate keys %q %q %v", priv, pub, err)
	}
	check("GET", "/generate-keys", false, nil)

	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	check("GET", "/health", false, nil)

	st, err := c.CommandStatus(ctx, "cmd-1")
	if err != nil || st != (client.Status{CommandID: "cmd-1", CommandStatus: 2, Status: "succeeded", Body: "01HZZZZZZZZZZZZZZZZZZZZZZZ"}) {
		t.Fatalf("status %+v %v", st, err)
	}
	check("GET", "/utility/request-command-id-status/cmd-1", true, nil)

	if out, err := c.WaitCommand(ctx, "cmd-1"); err != nil || out.Status != 2 || out.Body != "01HZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Fatalf("wait %+v %v", out, err)
	}
	if _, err := c.CommandStatus(ctx, "unknown"); !client.IsStatus(err, 404) {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := c.WaitCommand(ctx, "unknown"); !client.IsStatus(err, 404) {
		t.Fatalf("wait for an unknown command: %v", err)
	}
}

// TestWaitCommandRejection polls a command that is pending, then rejected.
func TestWaitCommandRejection(t *testing.T) {
	var polls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		if n < 3 {
			io.WriteString(w, `{"commandId":"c","command_status":1,"status":"started","body":""}`)
			return
		}
		io.WriteString(w, `{"commandId":"c","command_status":3,"status":"rejected","body":"profile.wrong_password"}`)
	}))
	defer srv.Close()
	_, err := client.New(srv.URL).WaitCommand(context.Background(), "c")
	var rej *client.RejectedError
	if !errors.As(err, &rej) || rej.CommandID != "c" || rej.Reason != "profile.wrong_password" || !client.IsReason(err, "profile.wrong_password") {
		t.Fatalf("got %v", err)
	}
}

func TestGenerateKeyPair(t *testing.T) {
	priv, pub, err := client.GenerateKeyPair()
	if err != nil || len(priv) != 64 || len(pub) != 200 {
		t.Fatalf("%q %q %v", priv, pub, err)
	}
	if got, err := client.SignedPublicKey(priv); err != nil || got != pub {
		t.Fatalf("derived %q %v", got, err)
	}
	if _, err := client.SignedPublicKey("zz"); err == nil {
		t.Fatal("a bad private key was accepted")
	}
}

func TestStatusObjectBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"commandId":"c","command_status":2,"status":"succeeded","body":{"copied":3,"failed":0}}`)
	}))
	defer srv.Close()
	st, err := client.New(srv.URL).CommandStatus(context.Background(), "c")
	if err != nil || st.CommandStatus != 2 || st.Body != `{"copied":3,"failed":0}` {
		t.Fatalf("%+v %v", st, err)
	}
}
