package profile_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/profile"
)

// TestRevocationWrittenElsewhereIsRefusedAtOnce: a token revoked by a
// write this service does not make (as another replica's, whose commit is
// published to this engine's peers) is refused at the very next Authorize,
// though this service resolved it, and cached it, a moment before.
func TestRevocationWrittenElsewhereIsRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	store, peers := commandtest.OpenWithPeers(t)
	s := profile.New(store, command.New(store, commandtest.Nowhere{}, command.Options{}), profile.Config{Peers: peers}, nil, nil)
	now := time.Now().UTC()
	const secret = "auth-shared-secret"
	tok := &privicore.Token{ID: profile.HashSecret(secret), ProfileID: "p1", Kind: privicore.TokenAuth, Scope: []string{privicore.ScopeAll},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.Write(ctx, func(q privicore.Queries) error {
		if err := q.CreateProfile(ctx, &privicore.Profile{ID: "p1", Username: "shared", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		return q.CreateToken(ctx, tok)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authorize(ctx, secret); err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	if err := store.Write(ctx, func(q privicore.Queries) error { return q.RevokeToken(ctx, tok.ID, now) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authorize(ctx, secret); privicore.ErrorCode(err) != privicore.EUNAUTHORIZED {
		t.Fatalf("a token revoked by another replica: %v, want EUNAUTHORIZED", err)
	}
}
