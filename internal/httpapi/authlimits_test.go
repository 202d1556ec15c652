package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/ratelimit"
)

// from is an API client whose connections leave from the loopback address
// ip (127.0.0.x), so the engine sees that client address.
type from struct{ *api }

func newFrom(t testing.TB, e *enginetest.Engine, ip string) *from {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &from{&api{t: t, url: e.URL, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}}
}

func (f *from) login(name, pw string) *response {
	f.t.Helper()
	return f.postJSON("/profile/authenticate", "", map[string]string{"username": name, "password": pw})
}

// limited expects a 429 with Retry-After and the rate_limited body.
func limited(t testing.TB, r *response) {
	t.Helper()
	expect(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" || r.Map(t)["error"] != "rate_limited" {
		t.Fatalf("429 without Retry-After or body: %v %s", r.Header, r.Body)
	}
}

// hourly is n per hour: nothing refills within a test.
func hourly(n int) ratelimit.Quota { return ratelimit.Quota{N: n, Per: time.Hour} }

func limitedEngine(t *testing.T, userAddr, user, addr int) *enginetest.Engine {
	return enginetest.Start(t, func(c *engine.Config) {
		c.AuthUserAddrFailures, c.AuthUserFailures, c.AuthAddrFailures = hourly(userAddr), hourly(user), hourly(addr)
	})
}

func TestSuccessfulLoginsAreNotCounted(t *testing.T) {
	e := limitedEngine(t, 2, 3, 4)
	a := newAPI(t, e)
	u := a.register("often")
	c := newFrom(t, e, "127.0.0.1")
	// A client that logs in once per job: far more logins than any burst.
	for i := range 30 {
		if r := c.login(u.Name, u.Password); r.Status != 200 {
			t.Fatalf("login %d: %d %s", i, r.Status, r.Body)
		}
	}
	// A failure in between is counted, and a success clears the pair again.
	expect(t, c.login(u.Name, "bad-"+u.Password), 401)
	expect(t, c.login(u.Name, u.Password), 200)
	expect(t, c.login(u.Name, "bad-"+u.Password), 401)
	expect(t, c.login(u.Name, "bad-"+u.Password), 401)
	limited(t, c.login(u.Name, u.Password)) // the pair's 2 failures are spent
}

func TestFailureLimitsPerPairUsernameAndAddress(t *testing.T) {
	e := limitedEngine(t, 3, 5, 1000)
	a := newAPI(t, e)
	u := a.register("target")
	attacker := newFrom(t, e, "127.0.0.2")

	// One address: 3 password checks, then refused; the right password too.
	for i := range 3 {
		expect(t, attacker.login(u.Name, fmt.Sprint("guess-", i, strongPassword)), 401)
	}
	limited(t, attacker.login(u.Name, "guess-x"+strongPassword))
	limited(t, attacker.login(u.Name, u.Password))
	// The owner, from an address that has not failed, gets in.
	expect(t, newFrom(t, e, "127.0.0.1").login(u.Name, u.Password), 200)

	// Ten more addresses, ten guesses each, round robin: the username's
	// budget (5, 3 already spent) runs out, then each address that has not
	// failed gets one check and no more.
	var attackers []*from
	for i := range 10 {
		attackers = append(attackers, newFrom(t, e, fmt.Sprintf("127.0.0.%d", 10+i)))
	}
	checked, refused := 0, 0
	for round := range 10 {
		for i, c := range attackers {
			r := c.login(u.Name, fmt.Sprintf("guess-%d-%d-%s", round, i, strongPassword))
			switch r.Status {
			case 401:
				checked++
			case 429:
				refused++
			default:
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
		}
	}
	if checked != 10 || refused != 90 {
		t.Fatalf("100 guesses from 10 addresses: %d checked, %d refused; want 10 and 90", checked, refused)
	}
	// Meanwhile the owner, from yet another address, still gets in; and
	// from the first attacker's address (which failed) is refused.
	expect(t, newFrom(t, e, "127.0.0.3").login(u.Name, u.Password), 200)
	limited(t, attacker.login(u.Name, u.Password))

	// An unknown username is limited the same way.
	ghost := uniqueName("ghost")
	for range 3 {
		expect(t, attacker.login(ghost, strongPassword), 401)
	}
	limited(t, attacker.login(ghost, strongPassword))
}

func TestFailureLimitPerAddressOverUsernames(t *testing.T) {
	e := limitedEngine(t, 100, 100, 4)
	a := newAPI(t, e)
	u := a.register("sprayed")
	c := newFrom(t, e, "127.0.0.4")
	for i := range 4 {
		expect(t, c.login(uniqueName(fmt.Sprint("spray", i)), strongPassword), 401)
	}
	limited(t, c.login(uniqueName("spray"), strongPassword))
	limited(t, c.login(u.Name, u.Password))
	expect(t, newFrom(t, e, "127.0.0.5").login(u.Name, u.Password), 200)
}

func TestEveryPasswordCheckSharesTheLimits(t *testing.T) {
	e := limitedEngine(t, 3, 100, 100)
	a := newAPI(t, e)
	u := a.activeUser("oracle")
	c := newFrom(t, e, "127.0.0.6")

	// change-password checks the current password: 3 wrong ones are checked
	// (and rejected on the ack), then the pair is refused at once.
	for i := range 3 {
		id := accepted(t, c.postJSON("/profile/change-password", u.Token, map[string]string{
			"currentPassword": fmt.Sprint("guess-", i, strongPassword), "newPassword": "N3w!" + strongPassword}))
		if st, body := a.settle(id); st != 3 || body != "profile.wrong_password" {
			t.Fatalf("wrong current password: %d %q", st, body)
		}
	}
	for range 27 {
		limited(t, c.postJSON("/profile/change-password", u.Token, map[string]string{
			"currentPassword": "guess-" + strongPassword, "newPassword": "N3w!" + strongPassword}))
	}
	// The same pair is refused on every other path that checks a password.
	limited(t, c.login(u.Name, u.Password))
	limited(t, c.postJSON("/profile/attempt-authentication", "", map[string]string{"username": u.Name, "password": u.Password}))
	limited(t, c.postJSON("/public-key/register-public-key", "", map[string]string{"username": u.Name, "password": u.Password, "publicKey": u.Key}))

	// And the legacy flow's failures count for authenticate.
	other := a.register("legacy-limit")
	d := newFrom(t, e, "127.0.0.7")
	for range 3 {
		expect(t, d.postJSON("/profile/attempt-authentication", "", map[string]string{"username": other.Name, "password": "bad-" + strongPassword}), 401)
	}
	limited(t, d.login(other.Name, other.Password))
	expect(t, newFrom(t, e, "127.0.0.8").postJSON("/profile/attempt-authentication", "", map[string]string{"username": other.Name, "password": other.Password}), 200)
}

func TestRegistrationIsLimitedPerAddress(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) { c.RegisterPerAddr = hourly(3) })
	a := newAPI(t, e)
	c := newFrom(t, e, "127.0.0.9")
	reg := func(c *from) *response {
		return c.postJSON("/profile/register-profile", "", map[string]string{"username": uniqueName("reg"), "password": strongPassword})
	}
	for range 3 {
		a.succeed(accepted(t, reg(c)))
	}
	limited(t, reg(c))
	// Bad input is still told as such; another address registers.
	expect(t, c.postJSON("/profile/register-profile", "", map[string]string{"username": "ab", "password": strongPassword}), 422)
	a.succeed(accepted(t, reg(newFrom(t, e, "127.0.0.10"))))
}

func TestPasswordHashingIsBounded(t *testing.T) {
	// Production costs: hashes long enough to overlap, so the bound is tested.
	e := enginetest.Start(t, func(c *engine.Config) { c.HashConcurrency = 2; c.PasswordParams = password.DefaultParams })
	a := newAPI(t, e)
	h := e.Profiles.Hasher()

	// Every path that hashes goes through the hasher.
	u := a.register("hashpaths")
	step := func(what string, want int64, f func()) {
		t.Helper()
		before := h.Runs()
		f()
		if got := h.Runs() - before; got != want {
			t.Fatalf("%s: %d argon2id runs through the hasher, want %d", what, got, want)
		}
	}
	step("authenticate", 1, func() { a.login(u.Name, u.Password) })
	step("unknown username", 1, func() {
		expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": uniqueName("nobody"), "password": strongPassword}), 401)
	})
	step("attempt-authentication", 1, func() {
		expect(t, a.postJSON("/profile/attempt-authentication", "", map[string]string{"username": u.Name, "password": u.Password}), 200)
	})
	step("register-public-key with credentials", 1, func() {
		expect(t, a.postJSON("/public-key/register-public-key", "", map[string]string{"username": u.Name, "password": u.Password, "publicKey": "00"}), 422)
	})
	a.succeed(accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": testKey(t)})))
	step("change-password", 2, func() {
		a.succeed(accepted(t, a.postJSON("/profile/change-password", u.Token, map[string]string{"currentPassword": u.Password, "newPassword": "N3w!" + u.Password})))
	})
	step("register", 1, func() {
		a.succeed(accepted(t, a.postJSON("/profile/register-profile", "", map[string]string{"username": uniqueName("one"), "password": strongPassword})))
	})
	// Many at once: never more than 2 argon2id runs at a time.
	var wg sync.WaitGroup
	statuses := make(chan int, 24)
	for i := range 12 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"username": uniqueName(fmt.Sprint("many", i)), "password": strongPassword})
			res, err := http.Post(e.URL+"/profile/register-profile", "application/json", bytes.NewReader(b))
			if err == nil {
				res.Body.Close()
				statuses <- res.StatusCode
			}
		}()
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"username": u.Name, "password": "N3w!" + u.Password})
			res, err := http.Post(e.URL+"/profile/authenticate", "application/json", bytes.NewReader(b))
			if err == nil {
				res.Body.Close()
				statuses <- res.StatusCode
			}
		}()
	}
	wg.Wait()
	close(statuses)
	n := 0
	for st := range statuses {
		if st != 202 && st != 200 {
			t.Fatalf("status %d under concurrent hashing", st)
		}
		n++
	}
	if n != 24 {
		t.Fatalf("%d of 24 requests answered", n)
	}
	if p := h.Peak(); p > 2 || p < 1 {
		t.Fatalf("peak of %d argon2id runs at once, want at most 2", p)
	}
}

// testKey is a fresh signed public key.
func testKey(t *testing.T) string {
	t.Helper()
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return keys.SignedPublic(priv)
}

func TestUsernamesArePRECISPrepared(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	base := uniqueName("alice") + "@x.com"
	a.succeed(accepted(t, a.postJSON("/profile/register-profile", "", map[string]string{"username": base, "password": strongPassword})))

	for _, bad := range []string{
		strings.Replace(base, "@", "\u200b@", 1), // zero-width space
		"\u202e" + base,                          // right-to-left override
		"a\u200db" + base,                        // zero-width joiner outside its context
		"two words " + base,                      // spaces
		"ctl\x07" + base,
	} {
		r := a.postJSON("/profile/register-profile", "", map[string]string{"username": bad, "password": strongPassword})
		expect(t, r, 422)
		errs, _ := r.Map(t)["errors"].(map[string]any)
		if msg := fmt.Sprint(errs["username"]); !strings.Contains(msg, "invisible") {
			t.Fatalf("%q: 422 without a clear username message: %s", bad, r.Body)
		}
	}
	// Width and case: the same username.
	fullwidth := strings.Map(func(r rune) rune {
		if r >= '!' && r <= '~' {
			return r - '!' + '！'
		}
		return r
	}, strings.ToUpper(base))
	expect(t, a.postJSON("/profile/register-profile", "", map[string]string{"username": fullwidth, "password": strongPassword}), 409)
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": fullwidth, "password": strongPassword}), 200)
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": " " + base + " ", "password": strongPassword}), 200)
	// Plain ASCII and accented names still register and log in.
	for _, name := range []string{uniqueName("Émile.Zola_1+tag"), uniqueName("bob")} {
		a.succeed(accepted(t, a.postJSON("/profile/register-profile", "", map[string]string{"username": name, "password": strongPassword})))
		expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": strings.ToLower(name), "password": strongPassword}), 200)
	}

	// A profile registered before these rules (a space in its name) still logs in.
	hash, err := password.Hash(strongPassword)
	if err != nil {
		t.Fatal(err)
	}
	old := uniqueName("old timer")
	now := time.Now().UTC()
	if err := e.Store.Write(context.Background(), func(q privicore.Queries) error {
		return q.CreateProfile(context.Background(), &privicore.Profile{ID: ulid.Make().String(), Username: old, PasswordHash: hash, CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": old, "password": strongPassword}), 200)
	// And one stored in a form the rules now map elsewhere (full-width), as typed then.
	wide := "ｗｉｄｅ" + uniqueName("")
	if err := e.Store.Write(context.Background(), func(q privicore.Queries) error {
		return q.CreateProfile(context.Background(), &privicore.Profile{ID: ulid.Make().String(), Username: wide, PasswordHash: hash, CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": wide, "password": strongPassword}), 200)
}

// legacyToken runs the four-step flow for u with scope[] values.
func (a *api) legacyToken(u *user, scope ...string) string {
	a.t.Helper()
	r := a.postForm("/profile/attempt-authentication", "", url.Values{"username": {u.Name}, "password": {u.Password}})
	expect(a.t, r, 200)
	var action []string
	r.JSON(a.t, &action)
	r = a.postForm("/profile/retrieve-temp-token", "", url.Values{"id": {action[0]}})
	expect(a.t, r, 200)
	temp, _ := r.Map(a.t)["token"].(string)
	cmd := accepted(a.t, a.postForm("/profile/request-authorization-token", temp, url.Values{"scope[]": scope}))
	a.succeed(cmd)
	r = a.postForm("/profile/retrieve-authorization-token", temp, url.Values{"request_auth_token_command_id": {cmd}})
	expect(a.t, r, 200)
	var tok struct{ AuthorizationToken string }
	r.JSON(a.t, &tok)
	return tok.AuthorizationToken
}

func TestLegacyFlowAppliesScope(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("legacy-scope")

	tok := a.legacyToken(u, "data-token:read")
	expect(t, a.get("/data-token/list-data-tokens", tok), 200)
	expect(t, a.get("/data-token/transaction-count-statistics", tok), 200)
	expect(t, a.get("/profile/retrieve-token-expiry", tok), 200)
	reason(t, a.postJSON("/data-token/reserve-token-space", tok, map[string]any{"context": "x"}), 403, "oauth.scope_missing")
	reason(t, a.get("/profile/retrieve-profile-id", tok), 403, "oauth.scope_missing")
	reason(t, a.get("/device/retrieve-profile-devices", tok), 403, "oauth.scope_missing")
	reason(t, a.get("/verified-authenticator/list", tok), 403, "oauth.scope_missing")
	// Never the profile's own endpoints: no widening through reauthorize.
	reason(t, a.postJSON("/profile/change-password", tok, map[string]string{"currentPassword": u.Password, "newPassword": "N3w!" + u.Password}), 403, "oauth.scope_missing")
	reason(t, a.postForm("/profile/reauthorize-authorization-token", tok, url.Values{"ttl": {"600"}}), 403, "oauth.scope_missing")
	reason(t, a.postJSON("/profile/generate-token-qr", tok, nil), 403, "oauth.scope_missing")
	reason(t, a.postJSON("/profile/oauth-application-register", tok, map[string]any{"name": "x", "redirectUri": "https://x.example/cb", "scopes": []string{"all"}}), 403, "oauth.scope_missing")

	two := a.legacyToken(u, "profile:read", "device:read")
	expect(t, a.get("/profile/retrieve-profile-id", two), 200)
	expect(t, a.get("/device/retrieve-profile-devices", two), 200)
	reason(t, a.get("/data-token/list-data-tokens", two), 403, "oauth.scope_missing")

	// No scope, or all: the profile's full token.
	for _, full := range []string{a.legacyToken(u), a.legacyToken(u, "all"), a.legacyToken(u, "all", "data-token:read")} {
		expect(t, a.postJSON("/profile/generate-token-qr", full, nil), 200)
		expect(t, a.get("/device/retrieve-profile-devices", full), 200)
	}

	// An unknown scope is 422 at step 3.
	r := a.postForm("/profile/attempt-authentication", "", url.Values{"username": {u.Name}, "password": {u.Password}})
	var action []string
	r.JSON(t, &action)
	temp, _ := a.postForm("/profile/retrieve-temp-token", "", url.Values{"id": {action[0]}}).Map(t)["token"].(string)
	r = a.postForm("/profile/request-authorization-token", temp, url.Values{"scope[]": {"data-token:read", "everything"}})
	expect(t, r, 422)
	if errs, _ := r.Map(t)["errors"].(map[string]any); errs["scope"] == nil {
		t.Fatalf("422 without errors.scope: %s", r.Body)
	}
}
