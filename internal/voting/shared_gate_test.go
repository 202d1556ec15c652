package voting

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
)

// TestSharedGateSeesAnotherReplicasActivation: a shared gate (replicas on
// one store) that trusts its guarded set gates the very next command of a
// profile once a policy's activation is committed, though this replica
// neither made nor reloaded it (the store notes the activation, the peers
// tell the gate); other profiles stay ungated. Once the peers flush (here:
// a raw statement), the gate no longer trusts its set and reads the
// store, which says the deactivated policy covers nothing.
func TestSharedGateSeesAnotherReplicasActivation(t *testing.T) {
	ctx := context.Background()
	store, peers := commandtest.OpenWithPeers(t)
	g := NewSharedGate(store, peers)
	epoch := peers.Epoch()
	g.guarded.reload(nil) // as a reload that found no active policy
	g.loadedSet(epoch)
	if !g.current() {
		t.Fatal("a gate just loaded does not trust its guarded set")
	}
	now := time.Now().UTC()
	pol := &privicore.Policy{ID: "pol1", ProfileID: "p1", Name: "guard", TemplateID: "data-protection", EventIDs: []string{"dt-delete"},
		Events: []string{"data-token.delete"}, ConfigurationID: "c1", Configuration: map[string]any{}, CreatedAt: now, UpdatedAt: now}
	write := func(fn func(q privicore.Queries) error) { t.Helper(); commandtest.Write(t, store, fn) }
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
	if g.Gated(ctx, &privicore.Command{ID: "c2", ProfileID: "p2"}, "data-token.delete") {
		t.Fatal("gated: a profile no policy covers")
	}
	write(func(q privicore.Queries) error { return q.SetPolicyActive(ctx, pol.ID, false, now) })
	if _, err := store.Exec(ctx, `UPDATE profiles SET updated_at = updated_at`); err != nil {
		t.Fatal(err)
	}
	if g.current() {
		t.Fatal("the gate still trusts its guarded set after a flush")
	}
	if g.Gated(ctx, del, "data-token.delete") {
		t.Fatal("gated after the deactivation, reading the store")
	}
}
