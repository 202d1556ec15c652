package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/syncbuf"
)

// basic posts body (JSON) with an Authorization header.
func (a *api) basic(path, authorization string, body any) *response {
	a.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, a.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return &response{Status: res.StatusCode, Header: res.Header, Body: buf.Bytes()}
}

func creds(clientID, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+secret))
}

// oauthApp is a registered application with its configuration.
type oauthApp struct {
	ID, ClientID, Secret string
}

func (a *api) oauthApp(u *user, scopes ...string) *oauthApp {
	a.t.Helper()
	id := accepted(a.t, a.postJSON("/profile/oauth-application-register", u.Token,
		map[string]any{"name": "Acme sync", "redirectUri": "https://acme.example/callback", "scopes": scopes}))
	a.succeed(id)
	r := a.postJSON("/profile/retrieve-oauth-application-configuration", u.Token, map[string]string{"applicationId": id})
	expect(a.t, r, 200)
	var cfg struct{ ApplicationID, ClientID, ClientSecret, RedirectURI string }
	r.JSON(a.t, &cfg)
	if cfg.ApplicationID != id || cfg.ClientID == "" || !strings.HasPrefix(cfg.ClientSecret, "CS-") || cfg.RedirectURI != "https://acme.example/callback" {
		a.t.Fatalf("configuration %s", r.Body)
	}
	return &oauthApp{ID: id, ClientID: cfg.ClientID, Secret: cfg.ClientSecret}
}

// consent requests a code (as the owner) and returns the request id.
func (a *api) consent(u *user, app *oauthApp, nonce string, scopes ...string) string {
	a.t.Helper()
	q := url.Values{"client_id": {app.ClientID}, "nonce": {nonce}, "scope[]": scopes}
	return accepted(a.t, a.get("/profile/oauth-application-request-authorization-code?"+q.Encode(), u.Token))
}

// grant is a token pair as answered.
type grant struct {
	ClientID, Token, AccessToken, Type, TokenType, Scope, ExpiresAt, RefreshToken, RefreshTokenExpiresAt string
	ExpiresIn                                                                                            int
}

// authorize runs the whole code flow and returns the tokens.
func (a *api) authorize(u *user, app *oauthApp, nonce string, scopes ...string) *grant {
	a.t.Helper()
	id := a.consent(u, app, nonce, scopes...)
	a.succeed(id)
	code := a.retrieveCode(app, id, nonce)
	return a.exchangeCode(creds(app.ClientID, app.Secret), map[string]string{"authorization_code": code})
}

func (a *api) retrieveCode(app *oauthApp, id, nonce string) string {
	a.t.Helper()
	r := a.basic("/oauth-application/retrieve-authorization-code", creds(app.ClientID, app.Secret), map[string]string{"id": id, "nonce": nonce})
	expect(a.t, r, 200)
	var c struct{ ClientID, Nonce, AuthorizationCode, ExpiresAt string }
	r.JSON(a.t, &c)
	exp, err := time.Parse(time.RFC3339, c.ExpiresAt)
	if c.ClientID != app.ClientID || c.Nonce != nonce || !strings.HasPrefix(c.AuthorizationCode, "AC-") || err != nil ||
		exp.Before(time.Now().Add(9*time.Minute)) || exp.After(time.Now().Add(11*time.Minute)) {
		a.t.Fatalf("authorization code %s", r.Body)
	}
	return c.AuthorizationCode
}

func (a *api) exchangeCode(authorization string, body map[string]string) *grant {
	a.t.Helper()
	r := a.basic("/oauth-application/obtain-access-token", authorization, body)
	expect(a.t, r, 200)
	var g grant
	r.JSON(a.t, &g)
	if !strings.HasPrefix(g.AccessToken, "T-") || g.Token != g.AccessToken || g.Type != "bearer" || g.TokenType != "Bearer" ||
		!strings.HasPrefix(g.RefreshToken, "RT-") || g.ExpiresIn < 3500 || g.ExpiresIn > 3600 || g.RefreshTokenExpiresAt == "" {
		a.t.Fatalf("token answer %s", r.Body)
	}
	return &g
}

func reason(t *testing.T, r *response, status int, want string) {
	t.Helper()
	expect(t, r, status)
	if got := r.Map(t)["reason"]; got != want {
		t.Fatalf("reason %v, want %s; body %s", got, want, r.Body)
	}
}

func TestOAuthApplicationManagement(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("oauth-owner")
	other := a.activeUser("oauth-other")

	// Shape validation, before the 202.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"redirectUri": "https://a.example/cb", "scopes": []string{"all"}}, "name"},
		{map[string]any{"name": "x", "redirectUri": "http://a.example/cb", "scopes": []string{"all"}}, "redirectUri"},
		{map[string]any{"name": "x", "redirectUri": "/relative", "scopes": []string{"all"}}, "redirectUri"},
		{map[string]any{"name": "x", "redirectUri": "https://user:pw@a.example/cb", "scopes": []string{"all"}}, "redirectUri"},
		{map[string]any{"name": "x", "redirectUri": "ftp://a.example/cb", "scopes": []string{"all"}}, "redirectUri"},
		{map[string]any{"name": "x", "redirectUri": "https://a.example/cb", "scopes": []string{"root"}}, "scopes"},
		{map[string]any{"name": "x", "redirectUri": "https://a.example/cb"}, "scopes"},
	} {
		r := a.postJSON("/profile/oauth-application-register", u.Token, tc.body)
		expect(t, r, 422)
		if errs, _ := r.Map(t)["errors"].(map[string]any); errs[tc.field] == nil {
			t.Fatalf("%v: errors %s, want %s", tc.body, r.Body, tc.field)
		}
	}
	// Loopback http is allowed, scopes as a form comma list too.
	a.succeed(accepted(t, a.postForm("/profile/oauth-application-register", u.Token,
		url.Values{"name": {"local tool"}, "redirectUri": {"http://127.0.0.1:8765/cb"}, "scopes": {"profile:read,device:read"}})))

	app := a.oauthApp(u, "data-token:read", "data-token:write")
	// The secret is shown once.
	reason(t, a.postJSON("/profile/retrieve-oauth-application-configuration", u.Token, map[string]string{"applicationId": app.ID}), 422, "oauth.already_retrieved")
	// Another profile's application behaves like a missing one.
	expect(t, a.postJSON("/profile/retrieve-oauth-application-configuration", other.Token, map[string]string{"applicationId": app.ID}), 404)
	expect(t, a.get("/profile/retrieve-oauth-application-scope/"+app.ID, other.Token), 404)
	a.rejected(accepted(t, a.postJSON("/profile/oauth-application-remove", other.Token, map[string]string{"applicationId": app.ID})), "oauth.application_not_found")

	r := a.get("/profile/retrieve-oauth-application-list", u.Token)
	expect(t, r, 200)
	var list struct {
		Items []struct {
			ApplicationID, Name, RedirectURI, CreatedAt string
			Scopes                                      []string
		}
		Meta struct{ Count int }
	}
	r.JSON(t, &list)
	if list.Meta.Count != 2 || len(list.Items) != 2 || list.Items[1].ApplicationID != app.ID || list.Items[1].Name != "Acme sync" ||
		strings.Join(list.Items[1].Scopes, " ") != "data-token:read data-token:write" || strings.Contains(string(r.Body), app.Secret) {
		t.Fatalf("list %s", r.Body)
	}
	if r := a.get("/profile/retrieve-oauth-application-list", other.Token); !strings.Contains(string(r.Body), `"count":0`) {
		t.Fatalf("other profile's list %s", r.Body)
	}
	r = a.get("/profile/retrieve-oauth-application-scope/"+app.ID, u.Token)
	expect(t, r, 200)
	if m := r.Map(t); m["applicationId"] != app.ID || len(m["scopes"].([]any)) != 2 {
		t.Fatalf("scope %s", r.Body)
	}
}

func TestOAuthCodeFlowAndScopes(t *testing.T) {
	var logs syncbuf.Buffer
	e := enginetest.Start(t, func(c *engine.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := newAPI(t, e)
	u := a.activeUser("oauth-flow")
	other := a.activeUser("oauth-stranger")
	a.storageDevice(u, "s1")
	app := a.oauthApp(u, "data-token:read", "data-token:write")
	otherApp := a.oauthApp(other, "all")

	// Consent: validated, then the rules on the ack.
	expect(t, a.get("/profile/oauth-application-request-authorization-code?client_id="+app.ClientID+"&scope[]=data-token:read", u.Token), 422)
	a.rejected(a.consent(u, app, "n-scope", "device:read"), "oauth.scope_not_allowed")
	a.rejected(a.consent(u, otherApp, "n-foreign", "all"), "oauth.application_not_found")
	id := a.consent(u, app, "nonce-1", "data-token:read", "data-token:write")
	a.succeed(id)
	a.rejected(a.consent(u, app, "nonce-1", "data-token:read"), "oauth.nonce_reused")

	// Retrieving the code: the client's credentials and the exact nonce.
	path := "/oauth-application/retrieve-authorization-code"
	expect(t, a.basic(path, "", map[string]string{"id": id, "nonce": "nonce-1"}), 401)
	expect(t, a.basic(path, creds(app.ClientID, app.Secret+"x"), map[string]string{"id": id, "nonce": "nonce-1"}), 401)
	expect(t, a.basic(path, creds(otherApp.ClientID, otherApp.Secret), map[string]string{"id": id, "nonce": "nonce-1"}), 404)
	reason(t, a.basic(path, creds(app.ClientID, app.Secret), map[string]string{"id": id, "nonce": "nonce-2"}), 422, "oauth.nonce_mismatch")
	code := a.retrieveCode(app, id, "nonce-1")
	reason(t, a.basic(path, creds(app.ClientID, app.Secret), map[string]string{"id": id, "nonce": "nonce-1"}), 422, "oauth.code_already_retrieved")

	// The exchange: Basic client credentials and the code, once.
	obtain := "/oauth-application/obtain-access-token"
	expect(t, a.basic(obtain, creds(app.ClientID, "CS-wrong"), map[string]string{"authorization_code": code}), 401)
	expect(t, a.basic(obtain, creds(otherApp.ClientID, otherApp.Secret), map[string]string{"authorization_code": code}), 401)
	first := a.exchangeCode(creds(app.ClientID, app.Secret), map[string]string{"code": code, "grantType": "authorization_code"})
	if first.Scope != "data-token:read data-token:write" || first.ClientID != app.ClientID {
		t.Fatalf("grant %+v", first)
	}
	expect(t, a.get("/data-token/list-data-tokens", first.AccessToken), 200)
	// A replayed code is refused, and what it yielded is revoked.
	expect(t, a.basic(obtain, creds(app.ClientID, app.Secret), map[string]string{"authorization_code": code}), 401)
	expect(t, a.get("/data-token/list-data-tokens", first.AccessToken), 401)

	// An expired code: not retrievable, and not exchangeable.
	late := a.consent(u, app, "nonce-late", "data-token:read")
	a.succeed(late)
	if _, err := e.Store.Exec(context.Background(), `UPDATE oauth_codes SET expires_at = ? WHERE id = ?`, time.Now().Add(-time.Second).UnixNano(), late); err != nil {
		t.Fatal(err)
	}
	reason(t, a.basic(path, creds(app.ClientID, app.Secret), map[string]string{"id": late, "nonce": "nonce-late"}), 422, "oauth.code_expired")
	stale := a.consent(u, app, "nonce-stale", "data-token:read")
	a.succeed(stale)
	staleCode := a.retrieveCode(app, stale, "nonce-stale")
	if _, err := e.Store.Exec(context.Background(), `UPDATE oauth_codes SET expires_at = ? WHERE id = ?`, time.Now().Add(-time.Second).UnixNano(), stale); err != nil {
		t.Fatal(err)
	}
	expect(t, a.basic(obtain, creds(app.ClientID, app.Secret), map[string]string{"authorization_code": staleCode}), 401)

	// A fresh grant, the code itself as the Basic credential.
	id2 := a.consent(u, app, "nonce-3", "data-token:read", "data-token:write")
	a.succeed(id2)
	code2 := a.retrieveCode(app, id2, "nonce-3")
	expect(t, a.basic(obtain, "Basic AC-forged", map[string]string{"authorization_code": code2}), 401)
	g := a.exchangeCode("Basic "+code2, map[string]string{"authorization_code": code2})

	// Within its scopes the token acts as the profile, attributed to the application.
	as := &user{Token: g.AccessToken}
	s := join(t, e.WSURL, g.AccessToken)
	wire, _ := ciphertext(t, 64)
	dtk := a.store(as, "from-app", wire)
	if got, _ := a.retrieve(s, g.AccessToken, dtk); !bytes.Equal(got, wire) {
		t.Fatal("the application could not read back what it stored")
	}
	r := a.get("/data-token/list-data-tokens", u.Token)
	if !strings.Contains(string(r.Body), `"application":"`+app.ID+`"`) {
		t.Fatalf("the listing does not attribute the token to the application: %s", r.Body)
	}
	// Outside them: 403 oauth.scope_missing, and never the profile's own endpoints.
	reason(t, a.get("/device/retrieve-profile-devices", g.AccessToken), 403, "oauth.scope_missing")
	reason(t, a.get("/storage/list-storage-devices", g.AccessToken), 403, "oauth.scope_missing")
	reason(t, a.postJSON("/profile/change-password", g.AccessToken, map[string]string{"currentPassword": u.Password, "newPassword": "Xx-" + u.Password}), 403, "oauth.scope_missing")
	reason(t, a.postForm("/profile/reauthorize-authorization-token", g.AccessToken, url.Values{"ttl": {"600"}}), 403, "oauth.scope_missing")
	reason(t, a.postJSON("/profile/oauth-application-register", g.AccessToken, map[string]any{"name": "x", "redirectUri": "https://a.example/cb", "scopes": []string{"all"}}), 403, "oauth.scope_missing")
	reason(t, a.get("/profile/retrieve-oauth-application-list", g.AccessToken), 403, "oauth.scope_missing")

	// The application's view of its scope.
	scopePath := "/oauth-application/retrieve-oauth-application-scope"
	r = a.basic(scopePath, "Basic "+g.AccessToken, nil)
	expect(t, r, 200)
	if m := r.Map(t); m["applicationId"] != app.ID || len(m["scopes"].([]any)) != 2 {
		t.Fatalf("token scope %s", r.Body)
	}
	expect(t, a.basic(scopePath, "Basic "+u.Token, nil), 401)

	// Refresh rotates: the old access and refresh tokens die.
	refresh := "/oauth-application/refresh-access-token"
	expect(t, a.basic(refresh, "Basic "+u.Token, map[string]string{"refresh_token": g.RefreshToken}), 401)
	r = a.basic(refresh, "Basic "+g.AccessToken, map[string]string{"refresh_token": g.RefreshToken})
	expect(t, r, 200)
	var g2 grant
	r.JSON(t, &g2)
	if g2.AccessToken == g.AccessToken || g2.RefreshToken == g.RefreshToken || g2.Scope != g.Scope {
		t.Fatalf("refresh answer %s", r.Body)
	}
	expect(t, a.get("/data-token/list-data-tokens", g.AccessToken), 401)
	expect(t, a.get("/data-token/list-data-tokens", g2.AccessToken), 200)
	// Client credentials work for refresh too.
	r = a.basic(refresh, creds(app.ClientID, app.Secret), map[string]string{"refreshToken": g2.RefreshToken})
	expect(t, r, 200)
	var g3 grant
	r.JSON(t, &g3)
	// A replayed refresh token is refused and kills the whole grant.
	expect(t, a.basic(refresh, creds(app.ClientID, app.Secret), map[string]string{"refresh_token": g2.RefreshToken}), 401)
	expect(t, a.get("/data-token/list-data-tokens", g3.AccessToken), 401)
	expect(t, a.basic(refresh, creds(app.ClientID, app.Secret), map[string]string{"refresh_token": g3.RefreshToken}), 401)

	// Removing the application kills every token it holds, at once, and
	// closes the sockets joined with them.
	g4 := a.authorize(u, app, "nonce-4", "data-token:read")
	s4 := join(t, e.WSURL, g4.AccessToken)
	expect(t, a.get("/data-token/list-data-tokens", g4.AccessToken), 200)
	a.succeed(accepted(t, a.postJSON("/profile/oauth-application-remove", u.Token, map[string]string{"applicationId": app.ID})))
	expect(t, a.get("/data-token/list-data-tokens", g4.AccessToken), 401)
	s4.closedWithin(5 * time.Second)
	expect(t, a.basic(refresh, "Basic "+g4.AccessToken, map[string]string{"refresh_token": g4.RefreshToken}), 401)
	expect(t, a.basic(path, creds(app.ClientID, app.Secret), map[string]string{"id": id2, "nonce": "nonce-3"}), 401)
	a.rejected(a.consent(u, app, "nonce-5", "data-token:read"), "oauth.application_not_found")
	// The profile's own token is untouched.
	expect(t, a.get("/data-token/list-data-tokens", u.Token), 200)

	// No secret of the flow reached the log.
	out := logs.String()
	for name, secret := range map[string]string{"client secret": app.Secret, "code": code, "code 2": code2, "access token": g.AccessToken,
		"refresh token": g.RefreshToken, "rotated access token": g2.AccessToken, "rotated refresh token": g2.RefreshToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s reached the log", name)
		}
	}
}
