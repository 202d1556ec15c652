package oauth_test

import (
	"context"
	"slices"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/oauth"
)

// Registration: a name of 1–128 characters, an https redirect URI (http
// only for a loopback host), at least one scope, each from the catalogue.
// The configuration (with the client secret) is retrieved once, and the
// secret then authenticates the client.
func TestApplicationRegistrationAndConfiguration(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "alice")
	for _, bad := range []struct {
		field, name, uri string
		scopes           []string
	}{
		{"name", "", "https://x/cb", []string{privicore.ScopeProfileRead}},
		{"redirectUri", "n", "http://app.example/cb", []string{privicore.ScopeProfileRead}},
		{"redirectUri", "n", "https://u:p@app.example/cb", []string{privicore.ScopeProfileRead}},
		{"scopes", "n", "https://x/cb", nil},
		{"scopes", "n", "https://x/cb", []string{"profile:write"}},
	} {
		_, err := r.oauth.Register(ctx, a, bad.name, bad.uri, bad.scopes)
		wantField(t, bad.field+" "+bad.uri, err, bad.field)
	}
	c := r.Succeeded(t, sub(r.oauth.Register(ctx, a, "n", "http://127.0.0.1:8080/cb", []string{privicore.ScopeDeviceRead, privicore.ScopeDeviceRead})))
	app, secret, err := r.oauth.Configuration(ctx, a, c.ID)
	if err != nil || !slices.Equal(app.Scopes, []string{privicore.ScopeDeviceRead}) || secret == "" {
		t.Fatalf("configuration %+v %q %v", app, secret, err)
	}
	_, _, err = r.oauth.Configuration(ctx, a, c.ID)
	wantReason(t, "a second retrieval", err, privicore.EINVALID, oauth.ReasonAlreadyRetrieved)
	if got, err := r.oauth.Client(ctx, app.ClientID, secret); err != nil || got.ID != app.ID {
		t.Fatalf("client authentication: %+v %v", got, err)
	}
	_, err = r.oauth.Client(ctx, app.ClientID, secret+"x")
	wantCode(t, "a wrong client secret", err, privicore.EUNAUTHORIZED)
	if apps, err := r.oauth.List(ctx, a); err != nil || len(apps) != 1 || apps[0].ID != app.ID {
		t.Fatalf("list %v %v", apps, err)
	}
}

// Another profile's application behaves as a missing one everywhere the
// profile acts: reading it, its configuration, removing it, consenting.
func TestAnotherProfilesApplicationIsMissing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a, b := r.Register(t, "alice"), r.Register(t, "bob")
	c := r.Succeeded(t, sub(r.oauth.Register(ctx, a, "app", "https://app.example/cb", []string{privicore.ScopeProfileRead})))
	_, err := r.oauth.Application(ctx, b, c.ID)
	wantCode(t, "another profile's application", err, privicore.ENOTFOUND)
	_, _, err = r.oauth.Configuration(ctx, b, c.ID)
	wantCode(t, "another profile's configuration", err, privicore.ENOTFOUND)
	if apps, err := r.oauth.List(ctx, b); err != nil || len(apps) != 0 {
		t.Fatalf("another profile's list: %v %v", apps, err)
	}
	r.Rejected(t, sub(r.oauth.Remove(ctx, b, c.ID)), oauth.ReasonNotFound)
	app, _, err := r.oauth.Configuration(ctx, a, c.ID) // still there, still unretrieved
	if err != nil {
		t.Fatalf("the owner's configuration after b's attempts: %v", err)
	}
	r.Rejected(t, sub(r.oauth.RequestCode(ctx, b, app.ClientID, "n1", []string{privicore.ScopeProfileRead})), oauth.ReasonNotFound)
	if _, err := r.oauth.Application(ctx, a, c.ID); err != nil {
		t.Fatalf("the owner's application: %v", err)
	}
}

// A consent grants only registered scopes: another scope is the rejection
// oauth.scope_not_allowed, "all" means exactly the registered ones; a
// nonce is used once per application.
func TestConsentGrantsOnlyRegisteredScopes(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "alice")
	app, _ := r.app(t, a, privicore.ScopeProfileRead, privicore.ScopeDeviceRead)
	r.Rejected(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, "n1", []string{privicore.ScopeDeviceWrite})), oauth.ReasonScopeNotAllowed)
	r.Rejected(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, "n2", []string{privicore.ScopeAll, privicore.ScopeVotingRead})), oauth.ReasonScopeNotAllowed)
	g, _ := r.grant(t, a, app, privicore.ScopeAll)
	if !slices.Equal(g.AccessToken.Scope, []string{privicore.ScopeProfileRead, privicore.ScopeDeviceRead}) {
		t.Fatalf("scope of an \"all\" consent: %v, want the registered scopes", g.AccessToken.Scope)
	}
	g, _ = r.grant(t, a, app, privicore.ScopeDeviceRead)
	if !slices.Equal(g.AccessToken.Scope, []string{privicore.ScopeDeviceRead}) {
		t.Fatalf("scope %v", g.AccessToken.Scope)
	}
	caller, err := r.Profiles.Authorize(ctx, g.Access)
	if err != nil {
		t.Fatal(err)
	}
	if caller.Allow(privicore.ScopeDeviceRead) != nil || caller.Allow(privicore.ScopeProfileRead) == nil {
		t.Fatalf("access token within %v opens the wrong endpoints", g.AccessToken.Scope)
	}
	r.Succeeded(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, "same", []string{privicore.ScopeDeviceRead})))
	r.Rejected(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, "same", []string{privicore.ScopeDeviceRead})), oauth.ReasonNonceReused)
}

// A code is retrieved once (with the consent's nonce, by its own
// application only) and exchanged once; exchanging it again revokes every
// token issued from it.
func TestCodeIsSingleUse(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "alice")
	app, _ := r.app(t, a, privicore.ScopeProfileRead)
	other, _ := r.app(t, a, privicore.ScopeProfileRead)
	c := r.Succeeded(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, "n1", []string{privicore.ScopeProfileRead})))
	_, _, err := r.oauth.RetrieveCode(ctx, other, c.ID, "n1")
	wantCode(t, "another application's code", err, privicore.ENOTFOUND)
	_, _, err = r.oauth.RetrieveCode(ctx, app, c.ID, "n2")
	wantReason(t, "a wrong nonce", err, privicore.EINVALID, oauth.ReasonNonceMismatch)
	code, _, err := r.oauth.RetrieveCode(ctx, app, c.ID, "n1")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.oauth.RetrieveCode(ctx, app, c.ID, "n1")
	wantReason(t, "a second retrieval", err, privicore.EINVALID, oauth.ReasonCodeRetrieved)
	_, err = r.oauth.ObtainToken(ctx, other, code)
	wantCode(t, "another client exchanging the code", err, privicore.EUNAUTHORIZED)
	g, err := r.oauth.ObtainToken(ctx, nil, code) // the code as the credential
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Profiles.Authorize(ctx, g.Access); err != nil {
		t.Fatalf("the access token: %v", err)
	}
	_, err = r.oauth.ObtainToken(ctx, app, code)
	wantCode(t, "a second exchange", err, privicore.EUNAUTHORIZED)
	_, err = r.Profiles.Authorize(ctx, g.Access)
	wantCode(t, "the access token after the replay", err, privicore.EUNAUTHORIZED)
	_, err = r.oauth.Refresh(ctx, app, "", g.Refresh)
	wantCode(t, "the refresh token after the replay", err, privicore.EUNAUTHORIZED)
}

// Refreshing rotates the pair (the old access token revoked, the old
// refresh token spent); presenting a spent refresh token revokes the
// whole family, the newest pair too.
func TestRefreshTokenReplayRevokesTheFamily(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "alice")
	app, _ := r.app(t, a, privicore.ScopeProfileRead)
	g1, _ := r.grant(t, a, app, privicore.ScopeProfileRead)
	_, err := r.oauth.Refresh(ctx, nil, "wrong", g1.Refresh)
	wantCode(t, "refresh with a wrong access token", err, privicore.EUNAUTHORIZED)
	g2, err := r.oauth.Refresh(ctx, nil, g1.Access, g1.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Profiles.Authorize(ctx, g1.Access)
	wantCode(t, "the rotated access token", err, privicore.EUNAUTHORIZED)
	if _, err := r.Profiles.Authorize(ctx, g2.Access); err != nil {
		t.Fatalf("the new access token: %v", err)
	}
	g3, err := r.oauth.Refresh(ctx, app, "", g2.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.oauth.Refresh(ctx, app, "", g1.Refresh)
	wantCode(t, "a spent refresh token", err, privicore.EUNAUTHORIZED)
	_, err = r.Profiles.Authorize(ctx, g3.Access)
	wantCode(t, "the newest access token after the replay", err, privicore.EUNAUTHORIZED)
	_, err = r.oauth.Refresh(ctx, app, "", g3.Refresh)
	wantCode(t, "the newest refresh token after the replay", err, privicore.EUNAUTHORIZED)
}

// Removing an application revokes every token it holds (and reports them
// to onRevoke); the profile's own token is untouched.
func TestRemoveApplicationRevokesItsTokens(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "alice")
	app, _ := r.app(t, a, privicore.ScopeProfileRead)
	g, _ := r.grant(t, a, app, privicore.ScopeProfileRead)
	if id, scopes, err := r.oauth.TokenScope(ctx, g.Access); err != nil || id != app.ID || !slices.Equal(scopes, []string{privicore.ScopeProfileRead}) {
		t.Fatalf("token scope %q %v %v", id, scopes, err)
	}
	r.Succeeded(t, sub(r.oauth.Remove(ctx, a, app.ID)))
	_, err := r.Profiles.Authorize(ctx, g.Access)
	wantCode(t, "the access token after the removal", err, privicore.EUNAUTHORIZED)
	_, err = r.oauth.Refresh(ctx, nil, g.Access, g.Refresh)
	wantCode(t, "the refresh token after the removal", err, privicore.EUNAUTHORIZED)
	_, err = r.oauth.Application(ctx, a, app.ID)
	wantCode(t, "the removed application", err, privicore.ENOTFOUND)
	revoked := r.Revoked()
	if !slices.Contains(revoked, g.AccessToken.ID) {
		t.Fatalf("onRevoke got %v, want the access token %s", revoked, g.AccessToken.ID)
	}
	if _, err := r.Profiles.Authorize(ctx, mustLogin(t, r, "alice")); err != nil {
		t.Fatalf("the profile's own token: %v", err)
	}
}

func mustLogin(t *testing.T, r *rig, username string) string {
	t.Helper()
	secret, _, err := r.Profiles.Authenticate(context.Background(), username, pw, "addr")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}
