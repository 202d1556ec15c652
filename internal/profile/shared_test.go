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

// TestSharedStoreRevocationIsRefusedAtOnce: with Config.Shared (replicas on
// one store), a token revoked by a write this service does not make (as
// another replica's) is refused at the very next Authorize, though this
// service resolved it a moment before.
func TestSharedStoreRevocationIsRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	store := commandtest.Open(t)
	s := profile.New(store, command.New(store, commandtest.Nowhere{}, command.Options{}), profile.Config{Shared: true}, nil, nil)
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
