// Package profiletest runs the profile service on real parts, for the
// tests of internal/profile and of the packages built on profiles: a
// SQLite store, a started command processor, no limits on failed logins or
// registrations, and a record of the tokens whose sockets the service
// asked to close. It is imported by tests only.
package profiletest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/ratelimit"
	"github.com/privicore/privicore/internal/sqlstore"
)

// Password is the password Register gives every profile.
const Password = "correct horse battery staple 42"

// Rig is a profile service over a real store and command processor.
type Rig struct {
	Store    *sqlstore.DB
	Commands *command.Processor
	Profiles *profile.Service

	mu      sync.Mutex
	revoked []string
}

// New builds the rig and starts its processor once more (if not nil) has
// registered the handlers of further services on r.Commands.
func New(t testing.TB, more func(r *Rig)) *Rig {
	t.Helper()
	store, peers := commandtest.OpenWithPeers(t) // the store tells the auth cache of revocations, as in the engine
	r := &Rig{Store: store}
	r.Commands = command.New(r.Store, commandtest.Nowhere{}, command.Options{})
	r.Profiles = profile.New(r.Store, r.Commands, profile.Config{UserAddrFailures: ratelimit.NoLimit, UserFailures: ratelimit.NoLimit,
		AddrFailures: ratelimit.NoLimit, RegisterPerAddr: ratelimit.NoLimit, Peers: peers}, nil, func(id string) {
		r.mu.Lock()
		r.revoked = append(r.revoked, id)
		r.mu.Unlock()
	})
	if more != nil {
		more(r)
	}
	if err := r.Commands.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Commands.Stop)
	return r
}

// Revoked lists the token ids whose sockets the service asked to close.
func (r *Rig) Revoked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.revoked)
}

// Succeeded waits for the submitted command and fails the test unless it
// succeeded.
func (r *Rig) Succeeded(t testing.TB, s commandtest.Submitted) *privicore.Command {
	t.Helper()
	return commandtest.Succeeded(t, r.Store, s.C, s.Err)
}

// Rejected waits for the submitted command and fails the test unless it
// was rejected with reason.
func (r *Rig) Rejected(t testing.TB, s commandtest.Submitted, reason string) {
	t.Helper()
	commandtest.Rejected(t, r.Store, reason, s.C, s.Err)
}

// Register registers username with Password, logs in and returns the
// caller with its own token.
func (r *Rig) Register(t testing.TB, username string) *profile.Auth {
	t.Helper()
	ctx := context.Background()
	r.Succeeded(t, commandtest.Sub(r.Profiles.Register(ctx, profile.RegisterInput{Username: username, Password: Password}, "addr")))
	secret, _, err := r.Profiles.Authenticate(ctx, username, Password, "addr")
	if err != nil {
		t.Fatalf("authenticate %s: %v", username, err)
	}
	a, err := r.Profiles.Authorize(ctx, secret)
	if err != nil {
		t.Fatalf("authorize %s: %v", username, err)
	}
	return a
}

// WantCode fails the test unless err has code.
func WantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if privicore.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// WantReason fails the test unless err has code and reason.
func WantReason(t testing.TB, what string, err error, code, reason string) {
	t.Helper()
	if privicore.ErrorCode(err) != code || privicore.ErrorReason(err) != reason {
		t.Fatalf("%s: %v, want %s %s", what, err, code, reason)
	}
}

// WantField fails the test unless err is EINVALID with an error on field.
func WantField(t testing.TB, what string, err error, field string) {
	t.Helper()
	var e *privicore.Error
	if !errors.As(err, &e) || e.Code != privicore.EINVALID || len(e.Fields[field]) == 0 {
		t.Fatalf("%s: %v, want EINVALID on %s", what, err, field)
	}
}
