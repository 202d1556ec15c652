package oauth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/oauth"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/ratelimit"
	"github.com/privicore/privicore/internal/sqlstore"
)

// rig is the OAuth service with the profile service over a real SQLite
// store and a real command processor (outcomes published nowhere).
type rig struct {
	store    *sqlstore.DB
	profiles *profile.Service
	oauth    *oauth.Service

	mu      sync.Mutex
	revoked []string // token ids passed to onRevoke
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	store := commandtest.Open(t)
	r := &rig{store: store}
	cmds := command.New(store, commandtest.Nowhere{}, command.Options{})
	r.profiles = profile.New(store, cmds, profile.Config{UserAddrFailures: ratelimit.NoLimit, UserFailures: ratelimit.NoLimit,
		AddrFailures: ratelimit.NoLimit, RegisterPerAddr: ratelimit.NoLimit}, nil, func(id string) {
		r.mu.Lock()
		r.revoked = append(r.revoked, id)
		r.mu.Unlock()
	})
	r.oauth = oauth.New(store, cmds, r.profiles)
	if err := cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Stop)
	return r
}

type submitted struct {
	c   *privicore.Command
	err error
}

// sub pairs a submission's results: r.succeeded(t, sub(svc.Register(…))).
func sub(c *privicore.Command, err error) submitted { return submitted{c, err} }

// succeeded waits for the command and fails the test unless it succeeded.
func (r *rig) succeeded(t *testing.T, s submitted) *privicore.Command {
	t.Helper()
	return commandtest.Succeeded(t, r.store, s.c, s.err)
}

// rejected waits for the command and fails the test unless it was
// rejected with reason.
func (r *rig) rejected(t *testing.T, s submitted, reason string) {
	t.Helper()
	commandtest.Rejected(t, r.store, reason, s.c, s.err)
}

const pw = "correct horse battery staple 42"

// register registers username and returns the caller with its own token.
func (r *rig) register(t *testing.T, username string) *profile.Auth {
	t.Helper()
	ctx := context.Background()
	r.succeeded(t, sub(r.profiles.Register(ctx, profile.RegisterInput{Username: username, Password: pw}, "addr")))
	secret, _, err := r.profiles.Authenticate(ctx, username, pw, "addr")
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.profiles.Authorize(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// app registers an application of a with scopes and retrieves its
// configuration (the client secret).
func (r *rig) app(t *testing.T, a *profile.Auth, scopes ...string) (*privicore.OAuthApplication, string) {
	t.Helper()
	ctx := context.Background()
	c := r.succeeded(t, sub(r.oauth.Register(ctx, a, "app", "https://app.example/cb", scopes)))
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
	c := r.succeeded(t, sub(r.oauth.RequestCode(ctx, a, app.ClientID, nonce, scopes)))
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

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if privicore.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

func wantReason(t *testing.T, what string, err error, code, reason string) {
	t.Helper()
	if privicore.ErrorCode(err) != code || privicore.ErrorReason(err) != reason {
		t.Fatalf("%s: %v, want %s %s", what, err, code, reason)
	}
}

// wantField fails unless err is EINVALID with an error on field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *privicore.Error
	if !errors.As(err, &e) || e.Code != privicore.EINVALID || len(e.Fields[field]) == 0 {
		t.Fatalf("%s: %v, want EINVALID on %s", what, err, field)
	}
}
