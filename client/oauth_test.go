package client_test

import (
	"context"
	"testing"

	"github.com/privicore/privicore/client"
)

// TestOAuthCodeFlow runs the whole flow through the SDK: the owner
// registers and consents, the application retrieves the code, obtains and
// refreshes tokens, and acts within its scope until it is removed.
func TestOAuthCodeFlow(t *testing.T) {
	e, s := loggedIn(t)
	ctx := context.Background()
	_, pub, _ := client.GenerateKeyPair()
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) }); err != nil {
		t.Fatal(err)
	}
	appID, err := s.RegisterOAuthApplication(ctx, "reporting", "https://reports.example/cb", []string{"device:read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Await(ctx, appID); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.OAuthConfiguration(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OAuthConfiguration(ctx, appID); !client.IsReason(err, "oauth.already_retrieved") {
		t.Fatalf("second retrieval: %v", err)
	}
	apps, err := s.OAuthApplications(ctx)
	if err != nil || len(apps) != 1 || apps[0].ApplicationID != appID || apps[0].Name != "reporting" {
		t.Fatalf("list %+v %v", apps, err)
	}
	if sc, err := s.OAuthApplicationScope(ctx, appID); err != nil || len(sc) != 1 || sc[0] != "device:read" {
		t.Fatalf("scope %v %v", sc, err)
	}

	nonce := client.NewNonce()
	reqID, err := s.RequestAuthorizationCode(ctx, cfg.ClientID, nonce, []string{"device:read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Await(ctx, reqID); err != nil {
		t.Fatal(err)
	}
	app := client.New(e.URL) // the application: no profile token
	code, err := app.RetrieveAuthorizationCode(ctx, cfg.ClientID, cfg.ClientSecret, reqID, nonce)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := app.ObtainAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, code.AuthorizationCode)
	if err != nil || tokens.Scope != "device:read" {
		t.Fatalf("tokens %+v %v", tokens, err)
	}
	if _, err := app.ObtainAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, code.AuthorizationCode); !client.IsStatus(err, 401) {
		t.Fatalf("reused code: %v", err)
	}
	// The first pair died with the replay; a new grant.
	nonce = client.NewNonce()
	reqID, _ = s.RequestAuthorizationCode(ctx, cfg.ClientID, nonce, []string{"device:read"})
	s.Await(ctx, reqID)
	code, _ = app.RetrieveAuthorizationCode(ctx, cfg.ClientID, cfg.ClientSecret, reqID, nonce)
	tokens, err = app.ObtainAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, code.AuthorizationCode)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err = app.RefreshAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, tokens.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if id, sc, err := app.AccessTokenScope(ctx, tokens.AccessToken); err != nil || id != appID || len(sc) != 1 {
		t.Fatalf("token scope %s %v %v", id, sc, err)
	}
	as := client.New(e.URL, client.WithToken(tokens.AccessToken))
	if _, err := as.Devices(ctx); err != nil {
		t.Fatalf("within scope: %v", err)
	}
	if _, err := as.ListDataTokens(ctx, 1, 10, nil); !client.IsReason(err, "oauth.scope_missing") {
		t.Fatalf("outside scope: %v", err)
	}
	if _, err := s.Do(ctx, func() (string, error) { return s.RemoveOAuthApplication(ctx, appID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := as.Devices(ctx); !client.IsStatus(err, 401) {
		t.Fatalf("after removal: %v", err)
	}
}
