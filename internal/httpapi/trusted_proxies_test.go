package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// registerVia registers a profile, the request saying (as a load balancer
// would) that it comes from client.
func registerVia(t *testing.T, e *enginetest.Engine, client string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": uniqueName("xff"), "password": strongPassword})
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/profile/register-profile", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestLimitsCountTheClientBehindATrustedProxy: behind a trusted proxy
// (the tests' loopback), the per-address registration limit counts the
// client X-Forwarded-For names, so that one client's limit does not stop
// the others'; without one, the header is ignored (a client cannot choose
// its own address).
func TestLimitsCountTheClientBehindATrustedProxy(t *testing.T) {
	behind := enginetest.Start(t, func(c *engine.Config) {
		c.RegisterPerAddr = hourly(1)
		c.TrustedProxies = []string{"127.0.0.0/8"}
	})
	if got := registerVia(t, behind, "198.51.100.1"); got != http.StatusAccepted {
		t.Fatalf("first registration of a client: %d", got)
	}
	if got := registerVia(t, behind, "198.51.100.1"); got != http.StatusTooManyRequests {
		t.Fatalf("the same client again: %d, want 429", got)
	}
	if got := registerVia(t, behind, "198.51.100.2"); got != http.StatusAccepted {
		t.Fatalf("another client behind the same proxy: %d, want 202", got)
	}
	direct := enginetest.Start(t, func(c *engine.Config) { c.RegisterPerAddr = hourly(1) })
	registerVia(t, direct, "198.51.100.1")
	if got := registerVia(t, direct, "198.51.100.2"); got != http.StatusTooManyRequests {
		t.Fatalf("no trusted proxy: a made-up X-Forwarded-For got %d, want the peer's limit (429)", got)
	}
}
