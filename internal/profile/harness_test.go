package profile_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/ratelimit"
	"github.com/privicore/privicore/internal/sqlstore"
)

// rig is a profile service over a real SQLite store and a real command
// processor (outcomes published nowhere: no socket listens).
type rig struct {
	store    *sqlstore.DB
	cmds     *command.Processor
	profiles *profile.Service

	mu      sync.Mutex
	revoked []string // token ids passed to onRevoke
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	store := commandtest.Open(t)
	r := &rig{store: store}
	r.cmds = command.New(store, commandtest.Nowhere{}, command.Options{})
	r.profiles = profile.New(store, r.cmds, profile.Config{UserAddrFailures: ratelimit.NoLimit, UserFailures: ratelimit.NoLimit,
		AddrFailures: ratelimit.NoLimit, RegisterPerAddr: ratelimit.NoLimit}, nil, func(id string) {
		r.mu.Lock()
		r.revoked = append(r.revoked, id)
		r.mu.Unlock()
	})
	if err := r.cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cmds.Stop)
	return r
}

// submitted is what a submission returned.
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

// register registers username and logs in.
func (r *rig) register(t *testing.T, username string) *profile.Auth {
	t.Helper()
	ctx := context.Background()
	r.succeeded(t, sub(r.profiles.Register(ctx, profile.RegisterInput{Username: username, Password: pw}, "addr")))
	secret, _, err := r.profiles.Authenticate(ctx, username, pw, "addr")
	if err != nil {
		t.Fatalf("authenticate %s: %v", username, err)
	}
	a, err := r.profiles.Authorize(ctx, secret)
	if err != nil {
		t.Fatalf("authorize %s: %v", username, err)
	}
	return a
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
