package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

func TestRegisterAuthenticateAndProfileID(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	name := uniqueName("alice")

	id := accepted(t, a.postJSON("/profile/register-profile", "", map[string]string{
		"username": name, "password": strongPassword, "givenName": "Alice", "familyName": "Liddell"}))
	profileID := a.succeed(id)
	if _, err := ulid.ParseStrict(profileID); err != nil {
		t.Fatalf("ack body %q is not a ULID: %v", profileID, err)
	}

	r := a.postJSON("/profile/authenticate", "", map[string]string{"username": strings.ToUpper(name), "password": strongPassword})
	expect(t, r, http.StatusOK)
	var tok struct{ AuthorizationToken, ExpiresAt string }
	r.JSON(t, &tok)
	if !strings.HasPrefix(tok.AuthorizationToken, "T-") || len(tok.AuthorizationToken) < 40 {
		t.Fatalf("token %q", tok.AuthorizationToken)
	}
	exp, err := time.Parse(time.RFC3339, tok.ExpiresAt)
	if err != nil || time.Until(exp) < 7*time.Hour || time.Until(exp) > 8*time.Hour+time.Minute {
		t.Fatalf("expiresAt %q (%v), want ~8h", tok.ExpiresAt, err)
	}

	r = a.get("/profile/retrieve-profile-id", tok.AuthorizationToken)
	expect(t, r, http.StatusOK)
	if got := r.Map(t)["profileId"]; got != profileID {
		t.Fatalf("profileId %v, want %s", got, profileID)
	}
}

func TestRegisterAcceptsFormAndMultipart(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	n1, n2 := uniqueName("form"), uniqueName("multi")
	a.succeed(accepted(t, a.postForm("/profile/register-profile", "", url.Values{"username": {n1}, "password": {strongPassword}})))
	a.succeed(accepted(t, a.postMultipart("/profile/register-profile", "", map[string]string{"username": n2, "password": strongPassword})))
	expect(t, a.postForm("/profile/authenticate", "", url.Values{"username": {n1}, "password": {strongPassword}}), http.StatusOK)
	expect(t, a.postMultipart("/profile/authenticate", "", map[string]string{"username": n2, "password": strongPassword}), http.StatusOK)
}

func TestRegisterRejectsBadInput(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	taken := a.register("taken")

	cases := []struct {
		name   string
		body   map[string]string
		status int
		field  string
	}{
		{"duplicate, other case", map[string]string{"username": strings.ToUpper(taken.Name), "password": strongPassword}, 409, ""},
		{"weak password", map[string]string{"username": uniqueName("weak"), "password": "password1"}, 422, "password"},
		{"missing password", map[string]string{"username": uniqueName("nopw")}, 422, "password"},
		{"short username", map[string]string{"username": "ab", "password": strongPassword}, 422, "username"},
		{"long username", map[string]string{"username": strings.Repeat("x", 255), "password": strongPassword}, 422, "username"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.postJSON("/profile/register-profile", "", c.body)
			expect(t, r, c.status)
			m := r.Map(t)
			if c.status == 422 {
				errs, _ := m["errors"].(map[string]any)
				if m["error"] != "validation_failed" || errs[c.field] == nil {
					t.Fatalf("422 body %s lacks errors.%s", r.Body, c.field)
				}
			} else if m["error"] != "conflict" {
				t.Fatalf("409 body %s", r.Body)
			}
		})
	}
	r := a.do(http.MethodPost, "/profile/register-profile", "", "application/json", strings.NewReader("{not json"))
	expect(t, r, 422)
}

func TestAuthenticateFailures(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("bob")
	for _, body := range []map[string]string{
		{"username": u.Name, "password": "wrong-" + strongPassword},
		{"username": "nobody-" + u.Name, "password": strongPassword},
		{"username": u.Name},
	} {
		r := a.postJSON("/profile/authenticate", "", body)
		expect(t, r, http.StatusUnauthorized)
		if m := r.Map(t); m["error"] != "unauthorized" || m["message"] != "invalid credentials" {
			t.Fatalf("401 body %s", r.Body)
		}
	}
}

func TestProfileWithoutKeyIsLimited(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("nokey")

	// Allowed before the key: profile id, token expiry, revoke (tested elsewhere), key registration.
	expect(t, a.get("/profile/retrieve-profile-id", u.Token), 200)
	expect(t, a.postJSON("/profile/authorization-token/expiry", u.Token, nil), 200)
	expect(t, a.get("/profile/retrieve-token-expiry", u.Token), 200)

	for _, r := range []*response{
		a.postJSON("/profile/change-password", u.Token, map[string]string{"currentPassword": strongPassword, "newPassword": strongPassword + "x"}),
		a.postJSON("/profile/generate-token-qr", u.Token, nil),
		a.postJSON("/profile/reauthorize-authorization-token", u.Token, map[string]any{"ttl": 600}),
		a.get("/public-key/retrieve-public-key", u.Token),
		a.get("/dptcab/public-key", u.Token),
	} {
		expect(t, r, http.StatusForbidden)
		if m := r.Map(t); m["error"] != "forbidden" || m["reason"] != "profile.public_key_required" {
			t.Fatalf("403 body %s", r.Body)
		}
	}
}

func TestUnauthorizedWithoutValidToken(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	for _, tok := range []string{"", "T-nonsense", strings.Repeat("T", 1000)} {
		r := a.get("/profile/retrieve-profile-id", tok)
		expect(t, r, 401)
		if m := r.Map(t); m["error"] != "unauthorized" || m["message"] != "invalid token" {
			t.Fatalf("401 body %s", r.Body)
		}
	}
}

func TestChangePassword(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("dave")
	newPass := "An0ther!strong-passphrase-here"

	// Wrong current password: rejected on the ack, nothing changes.
	id := accepted(t, a.postJSON("/profile/change-password", u.Token, map[string]string{"currentPassword": "nope-" + strongPassword, "newPassword": newPass}))
	if st, body := a.settle(id); st != 3 || body != "profile.wrong_password" {
		t.Fatalf("wrong current: %d %q", st, body)
	}
	r := a.get("/request-status/"+id, u.Token)
	expect(t, r, 404)
	if string(r.Body) != "[\"rejected\",\"profile.wrong_password\"]\n" {
		t.Fatalf("request-status body %s", r.Body)
	}
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": u.Name, "password": strongPassword}), 200)

	// Weak new password: 422 at once.
	r = a.postJSON("/profile/change-password", u.Token, map[string]string{"currentPassword": strongPassword, "newPassword": "abc"})
	expect(t, r, 422)

	// Right: the old password stops working, the old token keeps working.
	a.succeed(accepted(t, a.postForm("/profile/change-password", u.Token, url.Values{"currentPassword": {strongPassword}, "newPassword": {newPass}})))
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": u.Name, "password": strongPassword}), 401)
	expect(t, a.postJSON("/profile/authenticate", "", map[string]string{"username": u.Name, "password": newPass}), 200)
	expect(t, a.get("/profile/retrieve-profile-id", u.Token), 200)
}

func TestReauthorizeRevokeAndExpiry(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("erin")

	before := a.postJSON("/profile/authorization-token/expiry", u.Token, nil).Map(t)["expiresAt"]
	for _, ttl := range []any{59, 2592001, "abc", nil, -5} {
		expect(t, a.postJSON("/profile/reauthorize-authorization-token", u.Token, map[string]any{"ttl": ttl}), 422)
	}
	r := a.postForm("/profile/reauthorize-authorization-token", u.Token, url.Values{"ttl": {"120"}})
	expect(t, r, 200)
	var fresh struct{ AuthorizationToken, ExpiresAt string }
	r.JSON(t, &fresh)
	exp, _ := time.Parse(time.RFC3339, fresh.ExpiresAt)
	if d := time.Until(exp); d < 100*time.Second || d > 121*time.Second || fresh.AuthorizationToken == u.Token {
		t.Fatalf("reauthorized token expires in %v", d)
	}
	if after := a.get("/profile/retrieve-token-expiry", u.Token).Map(t)["expiresAt"]; after != before {
		t.Fatalf("presented token's expiry changed: %v → %v", before, after)
	}
	got := a.get("/profile/retrieve-token-expiry", fresh.AuthorizationToken).Map(t)["expiresAt"]
	if got != fresh.ExpiresAt {
		t.Fatalf("fresh token expiry %v, want %v", got, fresh.ExpiresAt)
	}

	// Revoke: dead at once, and its socket is closed; the other token lives.
	s := join(t, e.WSURL, u.Token)
	r = a.postJSON("/profile/revoke-authorization-token", u.Token, nil)
	expect(t, r, 200)
	if r.Map(t)["revoked"] != true {
		t.Fatalf("revoke body %s", r.Body)
	}
	expect(t, a.get("/profile/retrieve-profile-id", u.Token), 401)
	expect(t, a.get("/profile/retrieve-profile-id", fresh.AuthorizationToken), 200)
	s.closedWithin(5 * time.Second)
}

func TestTokenExpires(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	e := enginetest.Start(t, func(c *engine.Config) { c.TokenTTL = 2 * time.Second })
	a := newAPI(t, e)
	u := a.register("short")
	expect(t, a.get("/profile/retrieve-profile-id", u.Token), 200)
	time.Sleep(2100 * time.Millisecond)
	expect(t, a.get("/profile/retrieve-profile-id", u.Token), 401)
}

func TestQRToken(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("qr")
	for _, path := range []string{"/profile/generate-token-qr", "/profile/generate-qr-token-for-authorization"} {
		r := a.postJSON(path, u.Token, map[string]string{"role": "storage"})
		expect(t, r, 200)
		var qr struct{ QrToken, ExpiresAt string }
		r.JSON(t, &qr)
		exp, _ := time.Parse(time.RFC3339, qr.ExpiresAt)
		if qr.QrToken == "" || time.Until(exp) > 5*time.Minute || time.Until(exp) < 4*time.Minute {
			t.Fatalf("qr %+v", qr)
		}
		// An enrollment token is not an authorization token.
		expect(t, a.get("/profile/retrieve-profile-id", qr.QrToken), 401)
	}
	expect(t, a.postJSON("/profile/generate-token-qr", u.Token, map[string]string{"role": "admin"}), 422)
}

func TestLegacyFourStepFlow(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("legacy")

	expect(t, a.postForm("/profile/attempt-authentication", "", url.Values{"username": {u.Name}, "password": {"bad-" + strongPassword}}), 401)
	r := a.postForm("/profile/attempt-authentication", "", url.Values{"username": {u.Name}, "password": {u.Password}})
	expect(t, r, 200)
	var action []string
	r.JSON(t, &action)

	r = a.postForm("/profile/retrieve-temp-token", "", url.Values{"id": {action[0]}})
	expect(t, r, 200)
	temp, _ := r.Map(t)["token"].(string)
	expect(t, a.postForm("/profile/retrieve-temp-token", "", url.Values{"id": {action[0]}}), 401) // single use

	cmd := accepted(t, a.postForm("/profile/request-authorization-token", temp, url.Values{"scope[]": {"all"}}))
	a.succeed(cmd)
	r = a.postForm("/profile/retrieve-authorization-token", temp, url.Values{"request_auth_token_command_id": {cmd}})
	expect(t, r, 200)
	var tok struct{ AuthorizationToken, ExpiresAt string }
	r.JSON(t, &tok)
	if got := a.get("/profile/retrieve-profile-id", tok.AuthorizationToken).Map(t)["profileId"]; got != u.ID {
		t.Fatalf("legacy token acts for %v, want %s", got, u.ID)
	}
	// The temporary token is spent.
	expect(t, a.postForm("/profile/retrieve-authorization-token", temp, url.Values{"request_auth_token_command_id": {cmd}}), 401)
}
