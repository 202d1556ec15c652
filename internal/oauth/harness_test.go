package oauth_test

import (
	"context"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/oauth"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/profile/profiletest"
)

// rig is the OAuth service with the profile service over a real SQLite
// store and a real command processor (outcomes published nowhere).
type rig struct {
	*profiletest.Rig
	oauth *oauth.Service
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{}
	r.Rig = profiletest.New(t, func(p *profiletest.Rig) { r.oauth = oauth.New(p.Store, p.Commands, p.Profiles) })
	return r
}

const pw = profiletest.Password

var (
	sub        = commandtest.Sub
	wantCode   = profiletest.WantCode
	wantReason = profiletest.WantReason
	wantField  = profiletest.WantField
)

// app registers an application of a with scopes and retrieves its
// configuration (the client secret).
func (r *rig) app(t *testing.T, a *profile.Auth, scopes ...string) (*privicore.OAuthApplication, string) {
	t.Helper()
	ctx := context.Background()
	c := r.Succeeded(t, sub(r.oauth.Register(ctx, a, "app", "https://app.example/cb", scopes)))
	app, secret, err := r.oauth.Configuration(ctx, a, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return app, secret
}

// grant runs consent, code retrieval and exchange for app with scopes.
func (r *rig) grant(t *testing.T, a *profile.Auth, app *privicore.OAuthApplication, scopes ...string) (*oauth.Grant, string) {
	t.Helper()
	ctx := context.Background()
	nonce := profile.NewSecret("n-")
	c := r.Succeeded(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, nonce, scopes)))
	code, _, err := r.oauth.RetrieveCode(ctx, app, c.ID, nonce)
	if err != nil {
		t.Fatal(err)
	}
	g, err := r.oauth.ObtainToken(ctx, app, code)
	if err != nil {
		t.Fatal(err)
	}
	return g, code
}
