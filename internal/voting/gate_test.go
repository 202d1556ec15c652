package voting

import (
	"context"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/protocol"
)

// TestGateAsksOnlyForVotesAndGuardedProfiles: an ad-hoc vote is always
// gated; another event only for a profile that may have an active policy.
func TestGateAsksOnlyForVotesAndGuardedProfiles(t *testing.T) {
	g := NewGate()
	ctx := context.Background()
	alice, bob := &privicore.Command{ProfileID: "alice"}, &privicore.Command{ProfileID: "bob"}
	if !g.Gated(ctx, alice, EventVote) {
		t.Error("an ad-hoc vote is not gated")
	}
	if g.Gated(ctx, alice, privicore.EventPolicyDelete) {
		t.Error("an unguarded profile's event is gated")
	}
	g.guarded.add("alice")
	if !g.Gated(ctx, alice, privicore.EventPolicyDelete) || g.Gated(ctx, bob, privicore.EventPolicyDelete) {
		t.Error("only the guarded profile's events are gated")
	}
	g.guarded.reload(nil) // the database has none, but alice was added just now
	if !g.Gated(ctx, alice, privicore.EventPolicyDelete) {
		t.Error("a reload lost a profile added moments ago")
	}
}

// TestActivePolicyHoldsWhatItCovers: while a policy covering
// policy.deactivate is active, deactivating a policy waits for the vote
// and a no rejects it (the policy stays as it was); a yes lets it run.
// Once no active policy covers the event, the command runs at once.
func TestActivePolicyHoldsWhatItCovers(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	b, k := r.authenticatorOf("alice", "a1")
	answer := make(chan authenticator.Decision, 4)
	_, log := r.run(b, k, func(protocol.Ballot) authenticator.Decision { return <-answer })

	submit := func(c *privicore.Command, err error) *privicore.Command {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	guard := r.outcome(submit(r.svc.RegisterPolicy(ctx, "alice", PolicyInput{Name: "guard", TemplateID: "policy-protection",
		EventIDs: []string{"po-deactivate"}, Configuration: map[string]any{ParamBallotMessage: "Switch it off?"}})).ID)
	other := r.outcome(submit(r.svc.RegisterPolicy(ctx, "alice", PolicyInput{Name: "other", TemplateID: "data-protection",
		EventIDs: []string{"dt-delete"}})).ID)
	if guard.Status != privicore.CommandSucceeded || other.Status != privicore.CommandSucceeded {
		t.Fatalf("register: %v %v", guard.Body, other.Body)
	}
	if c := r.outcome(submit(r.svc.ChangePolicy(ctx, "alice", CmdActivatePolicy, "guard")).ID); c.Status != privicore.CommandSucceeded {
		t.Fatalf("activate: %v %q", c.Status, c.Body)
	}
	if c := r.outcome(submit(r.svc.ChangePolicy(ctx, "alice", CmdActivatePolicy, "other")).ID); c.Status != privicore.CommandSucceeded {
		t.Fatalf("activating is not covered: %v %q", c.Status, c.Body)
	}

	held := submit(r.svc.ChangePolicy(ctx, "alice", CmdDeactivatePolicy, "other"))
	r.eventually("the held command's ballot", func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.ballots) == 1 })
	if c, _ := r.store.FindCommand(ctx, held.ID); c.Status != privicore.CommandPending {
		t.Fatalf("deactivate under the guard ran before the vote: %v", c.Status)
	}
	log.mu.Lock()
	bl := log.ballots[0]
	log.mu.Unlock()
	if bl.Event != privicore.EventPolicyDeactivate || bl.Title != "guard" || bl.Question != "Switch it off?" || bl.Detail["commandId"] != held.ID {
		t.Errorf("ballot: %+v", bl)
	}
	answer <- authenticator.No
	if c := r.outcome(held.ID); c.Status != privicore.CommandRejected || c.Body != "voting."+privicore.PoolRejected {
		t.Errorf("deactivate voted no: %v %q", c.Status, c.Body)
	}
	if p, _ := r.svc.Policy(ctx, "alice", "other"); !p.Active {
		t.Error("a rejected deactivate switched the policy off")
	}

	answer <- authenticator.Yes
	if c := r.outcome(submit(r.svc.ChangePolicy(ctx, "alice", CmdDeactivatePolicy, "guard")).ID); c.Status != privicore.CommandSucceeded {
		t.Fatalf("deactivate voted yes: %v %q", c.Status, c.Body)
	}
	if p, _ := r.svc.Policy(ctx, "alice", "guard"); p.Active {
		t.Error("an approved deactivate left the policy on")
	}
	// Nothing covers policy.deactivate any more: it runs without a vote.
	if c := r.outcome(submit(r.svc.ChangePolicy(ctx, "alice", CmdDeactivatePolicy, "other")).ID); c.Status != privicore.CommandSucceeded {
		t.Errorf("deactivate with no policy covering it: %v %q", c.Status, c.Body)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.ballots) != 2 {
		t.Errorf("%d ballots, want 2 (none once nothing covers the event)", len(log.ballots))
	}
}
