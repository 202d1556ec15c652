package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestOAuthCommands runs `privicore oauth …` against a real engine: the
// owner registers, retrieves the secret once, consents; the application
// obtains and refreshes tokens; the owner revokes.
func TestOAuthCommands(t *testing.T) {
	e := enginetest.Start(t)
	conf := t.TempDir()
	srv := "--server=" + e.URL
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := runCLI(t, conf, stdin, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	must(strongPassword+"\n", "profile", "register", srv, "--username", "oauth-cli", "--password-stdin")
	must(strongPassword+"\n", "login", srv, "--username", "oauth-cli", "--password-stdin")
	key := filepath.Join(t.TempDir(), "k.key")
	must("", "key", "generate", "--out", key)
	must("", "key", "register", "--key", key)

	if _, err := runCLI(t, conf, "", "oauth", "register", "--name", "x", "--redirect-uri", "http://evil.example/cb", "--scope", "all"); err == nil ||
		!strings.Contains(err.Error(), "redirectUri") {
		t.Fatalf("http redirect accepted: %v", err)
	}
	appID := strings.SplitN(must("", "oauth", "register", "--name", "cli app", "--redirect-uri", "https://app.example/cb", "--scope", "profile:read,device:read"), "\n", 2)[0]
	var cfg client.OAuthConfiguration
	if err := json.Unmarshal([]byte(must("", "oauth", "config", appID)), &cfg); err != nil || !strings.HasPrefix(cfg.ClientSecret, "CS-") {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	if _, err := runCLI(t, conf, "", "oauth", "config", appID); err == nil || !strings.Contains(err.Error(), "oauth.already_retrieved") {
		t.Fatalf("second config: %v", err)
	}
	if out := must("", "oauth", "list"); !strings.Contains(out, appID) || !strings.Contains(out, "profile:read,device:read") {
		t.Fatalf("list:\n%s", out)
	}
	if out := must("", "oauth", "scope", appID); out != "profile:read device:read\n" {
		t.Fatalf("scope %q", out)
	}
	var grant struct{ ID, Nonce string }
	json.Unmarshal([]byte(must("", "oauth", "consent", cfg.ClientID, "--scope", "profile:read")), &grant)
	var tokens client.OAuthTokens
	out := must("", "oauth", "token", "--client-id", cfg.ClientID, "--client-secret", cfg.ClientSecret, "--id", grant.ID, "--nonce", grant.Nonce)
	if err := json.Unmarshal([]byte(out), &tokens); err != nil || tokens.Scope != "profile:read" {
		t.Fatalf("token: %v %s", err, out)
	}
	// The secret may come from the environment instead of the command line.
	env := map[string]string{"PRIVICORE_CONFIG_DIR": conf, "PRIVICORE_CLIENT_SECRET": cfg.ClientSecret}
	out, _, err := runEnv(t, env, "", "oauth", "refresh", srv, "--client-id", cfg.ClientID, tokens.RefreshToken)
	var rotated client.OAuthTokens
	if err != nil || json.Unmarshal([]byte(out), &rotated) != nil || rotated.AccessToken == tokens.AccessToken {
		t.Fatalf("refresh: %v %s", err, out)
	}
	app := client.New(e.URL, client.WithToken(rotated.AccessToken))
	if _, err := app.ProfileID(context.Background()); err != nil {
		t.Fatalf("access token: %v", err)
	}
	must("", "oauth", "revoke", appID)
	if _, err := app.ProfileID(context.Background()); !client.IsStatus(err, 401) {
		t.Fatalf("after revoke: %v", err)
	}
}
