package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

func TestCommandStatusEndpoints(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	alice := a.activeUser("alice")
	bob := a.activeUser("bob")

	id := accepted(t, a.postJSON("/public-key/register-public-key", alice.Token, map[string]string{"publicKey": alice.Key}))
	a.succeed(id)
	for _, r := range []*response{
		a.get("/request-status/"+id, alice.Token),
		a.do(http.MethodPost, "/request-status/"+id, alice.Token, "", nil),
		a.get("/request-status/"+id, ""), // the id is a capability
	} {
		expect(t, r, 200)
		if string(r.Body) != "[\"succeeded\"]\n" {
			t.Fatalf("body %s", r.Body)
		}
	}
	r := a.get("/utility/request-command-id-status/"+id, alice.Token)
	expect(t, r, 200)
	m := r.Map(t)
	if m["commandId"] != id || m["command_status"] != float64(2) || m["status"] != "succeeded" || m["body"] != "Command completed successfully" {
		t.Fatalf("utility status %s", r.Body)
	}

	// Another profile's command behaves as a missing one.
	for _, r := range []*response{
		a.get("/request-status/"+id, bob.Token),
		a.get("/utility/request-command-id-status/"+id, bob.Token),
		a.get("/request-status/01900000-0000-7000-8000-000000000000", ""),
	} {
		expect(t, r, 404)
		if r.Map(t)["error"] != "not_found" {
			t.Fatalf("404 body %s", r.Body)
		}
	}
	expect(t, a.get("/request-status/"+id, "T-invalid"), 401)
}

func TestHealth(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	for _, path := range []string{"/health", "/utility/check-server-health"} {
		r := a.get(path, "")
		expect(t, r, 200)
		if r.Map(t)["status"] != "ok" {
			t.Fatalf("health %s", r.Body)
		}
	}
	// With the database gone the engine says so instead of pretending.
	e.Store.SQL().Close()
	r := a.get("/health", "")
	expect(t, r, 503)
	m := r.Map(t)
	checks, _ := m["checks"].(map[string]any)
	if m["status"] != "degraded" || checks["database"] == "ok" {
		t.Fatalf("degraded health %s", r.Body)
	}
}

func TestUnknownEndpointIsJSON404(t *testing.T) {
	e := enginetest.Start(t)
	r := newAPI(t, e).get("/no/such/thing", "")
	expect(t, r, 404)
	if r.Map(t)["error"] != "not_found" {
		t.Fatalf("body %s", r.Body)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	a := newAPI(t, e)
	u := a.activeUser("restart")
	engineKey := e.EngineKey
	e.Stop()

	e2 := enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	a2 := newAPI(t, e2)
	if e2.EngineKey != engineKey {
		t.Fatal("engine key changed across restart")
	}
	expect(t, a2.get("/profile/retrieve-profile-id", u.Token), 200) // the token survived
	tok := a2.login(u.Name, u.Password)
	r := a2.get("/public-key/retrieve-public-key", tok)
	expect(t, r, 200)
	if r.Map(t)["publicKey"] != u.Key {
		t.Fatalf("key lost across restart: %s", r.Body)
	}
	_ = time.Second
}
