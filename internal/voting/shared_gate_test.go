package voting

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
)

// TestSharedGateSeesAnotherReplicasActivation: a shared gate (replicas on
// one store) gates the very next command a policy covers once its
// activation is in the store, though this replica neither made nor
// reloaded it; other events and other profiles stay ungated, and so does
// the event again once the policy is deactivated.
func TestSharedGateSeesAnotherReplicasActivation(t *testing.T) {
	ctx := context.Background()
	store := commandtest.Open(t)
	g := NewSharedGate(store)
	now := time.Now().UTC()
	pol := &privicore.Policy{ID: "pol1", ProfileID: "p1", Name: "guard", TemplateID: "data-protection", EventIDs: []string{"dt-delete"},
		Events: []string{"data-token.delete"}, ConfigurationID: "c1", Configuration: map[string]any{}, CreatedAt: now, UpdatedAt: now}
	write := func(fn func(q privicore.Queries) error) {
		t.Helper()
		if err := store.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(q privicore.Queries) error {
		if err := q.CreateProfile(ctx, &privicore.Profile{ID: "p1", Username: "gate", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		return q.CreatePolicy(ctx, pol)
	})
	del := &privicore.Command{ID: "c", ProfileID: "p1"}
	if g.Gated(ctx, del, "data-token.delete") {
		t.Fatal("gated by an inactive policy")
	}
	write(func(q privicore.Queries) error { return q.SetPolicyActive(ctx, pol.ID, true, now) })
	if !g.Gated(ctx, del, "data-token.delete") {
		t.Fatal("the command after another replica's activation is not gated")
	}
	if g.Gated(ctx, del, "data-token.exchange") || g.Gated(ctx, &privicore.Command{ID: "c2", ProfileID: "p2"}, "data-token.delete") {
		t.Fatal("gated: an event or a profile no policy covers")
	}
	write(func(q privicore.Queries) error { return q.SetPolicyActive(ctx, pol.ID, false, now) })
	if g.Gated(ctx, del, "data-token.delete") {
		t.Fatal("gated after the deactivation")
	}
}
