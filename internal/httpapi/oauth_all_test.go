package httpapi_test

import (
	"slices"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// TestOAuthConsentToAllGrantsTheApplicationsScopes: scope[]=all is all of
// the application's registered scopes, end to end: the consent succeeds,
// the token's scopes are exactly the registered ones (as the grant, the
// application's scope endpoint and a refresh answer them), and the token
// acts within them and nowhere else. An application registered with "all"
// gets "all".
func TestOAuthConsentToAllGrantsTheApplicationsScopes(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("oauth-all")
	app := a.oauthApp(u, "data-token:read", "device:read")
	scopePath := "/oauth-application/retrieve-oauth-application-scope"
	tokenScopes := func(g *grant) []string {
		t.Helper()
		r := a.basic(scopePath, "Basic "+g.AccessToken, nil)
		expect(t, r, 200)
		var m struct {
			ApplicationID string
			Scopes        []string
		}
		r.JSON(t, &m)
		if m.ApplicationID != app.ID {
			t.Fatalf("scope answer names application %s", m.ApplicationID)
		}
		slices.Sort(m.Scopes)
		return m.Scopes
	}

	for i, asked := range [][]string{{"all"}, {"all", "data-token:read"}} {
		g := a.authorize(u, app, "n-all-"+string(rune('a'+i)), asked...)
		if g.Scope != "data-token:read device:read" {
			t.Fatalf("consent %v: grant scope %q, want the application's", asked, g.Scope)
		}
		if got := tokenScopes(g); !slices.Equal(got, []string{"data-token:read", "device:read"}) {
			t.Fatalf("consent %v: the token's scopes %v", asked, got)
		}
		expect(t, a.get("/data-token/list-data-tokens", g.AccessToken), 200)
		expect(t, a.get("/device/retrieve-profile-devices", g.AccessToken), 200)
		reason(t, a.postJSON("/data-token/reserve-token-space", g.AccessToken, map[string]any{"context": "x"}), 403, "oauth.scope_missing")
		reason(t, a.get("/verified-authenticator/list", g.AccessToken), 403, "oauth.scope_missing")
		// A refresh keeps exactly those.
		r := a.basic("/oauth-application/refresh-access-token", creds(app.ClientID, app.Secret), map[string]string{"refresh_token": g.RefreshToken})
		expect(t, r, 200)
		var g2 grant
		r.JSON(t, &g2)
		if g2.Scope != g.Scope {
			t.Fatalf("refreshed scope %q", g2.Scope)
		}
	}
	// Outside the application's scopes is still refused.
	a.rejected(a.consent(u, app, "n-outside", "all", "data-token:write"), "oauth.scope_not_allowed")

	wide := a.oauthApp(u, "all")
	g := a.authorize(u, wide, "n-wide", "all")
	if g.Scope != "all" {
		t.Fatalf("an application registered with all: grant scope %q", g.Scope)
	}
}
