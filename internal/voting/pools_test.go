package voting

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/protocol"
)

// vote opens an ad-hoc vote of the profile and returns its command and pool.
func (r *rig) vote(profileID string, skip ...string) (string, string) {
	r.t.Helper()
	c, poolID, err := r.svc.CreateVote(context.Background(), profileID, "", "title", "Go ahead?", "n-1", skip)
	if err != nil {
		r.t.Fatal(err)
	}
	return c.ID, poolID
}

// TestVoteIsApprovedAsSoonAsNoAnswerCanChangeIt: under consensus, two yes
// of three decide; the silent third does not hold the vote. The pool's
// events come in order around the command's statuses: POOL-OPENED, the
// pending status with the pool id, POOL-RESOLVED, then the final ack.
func TestVoteIsApprovedAsSoonAsNoAnswerCanChangeIt(t *testing.T) {
	r := newRig(t)
	for id, d := range map[string]authenticator.Decision{"a1": authenticator.Yes, "a2": authenticator.Yes, "a3": authenticator.Silent} {
		b, k := r.authenticatorOf("alice", id)
		r.run(b, k, always(d))
	}
	r.strategy("alice", StrategyChange{Strategy: ptr(privicore.StrategyConsensus)})
	cmd, poolID := r.vote("alice")
	c := r.outcome(cmd)
	if c.Status != privicore.CommandSucceeded || c.Body != poolID {
		t.Fatalf("vote command: %v %q, want succeeded with the pool id", c.Status, c.Body)
	}
	pl := r.pool("alice", poolID)
	if pl.State != privicore.PoolApproved || len(pl.Answers) != 2 || len(pl.Eligible) != 3 {
		t.Errorf("pool: %s, %d answers of %d eligible", pl.State, len(pl.Answers), len(pl.Eligible))
	}
	r.eventually("the final ack is published", func() bool { return len(r.events.of(cmd)) == 4 })
	want := []string{"opened 1", "status 1 " + poolID, "resolved approved", "status 2 " + poolID}
	if got := r.events.of(cmd); !slices.Equal(got, want) {
		t.Errorf("published %q, want %q", got, want)
	}
}

// TestFailedAttemptIsFollowedByANewOne: with two attempts, a rejected
// first attempt opens a second (fresh ballots, answers of the first do
// not count), whose yes approves.
func TestFailedAttemptIsFollowedByANewOne(t *testing.T) {
	r := newRig(t)
	b, k := r.authenticatorOf("alice", "a1")
	_, log := r.run(b, k, func(bl protocol.Ballot) authenticator.Decision {
		if bl.Attempt == 1 {
			return authenticator.No
		}
		return authenticator.Yes
	})
	r.strategy("alice", StrategyChange{Attempts: ptr(2)})
	cmd, poolID := r.vote("alice")
	if c := r.outcome(cmd); c.Status != privicore.CommandSucceeded {
		t.Fatalf("vote command: %v %q", c.Status, c.Body)
	}
	pl := r.pool("alice", poolID)
	if pl.State != privicore.PoolApproved || pl.Attempt != 2 || len(pl.Answers) != 1 || !pl.Answers[0].Yes {
		t.Errorf("pool: %s attempt %d answers %+v", pl.State, pl.Attempt, pl.Answers)
	}
	if bs := log.ballotsOf(poolID); len(bs) != 2 || bs[0].Attempt != 1 || bs[1].Attempt != 2 {
		t.Errorf("ballots: %+v", bs)
	}
	r.eventually("the final ack is published", func() bool { return len(r.events.of(cmd)) == 6 })
	want := []string{"opened 1", "status 1 " + poolID, "opened 2", "status 1 " + poolID, "resolved approved", "status 2 " + poolID}
	if got := r.events.of(cmd); !slices.Equal(got, want) {
		t.Errorf("published %q, want %q", got, want)
	}
}

// TestDeadlineDecidesWithTheAnswersReceived: under unanimous, one yes of
// two is not final; at the deadline it approves. A vote nobody answers
// expires at its deadline and its command is rejected voting.expired.
func TestDeadlineDecidesWithTheAnswersReceived(t *testing.T) {
	r := newRig(t)
	b1, k1 := r.authenticatorOf("alice", "a1")
	_, log := r.run(b1, k1, always(authenticator.Yes))
	b2, k2 := r.authenticatorOf("alice", "a2")
	r.run(b2, k2, always(authenticator.Silent))

	cmd, poolID := r.vote("alice")
	r.eventually("a1's yes is recorded", func() bool { return len(r.pool("alice", poolID).Answers) == 1 })
	if pl := r.pool("alice", poolID); pl.State != privicore.PoolOpen {
		t.Fatalf("one yes of two under unanimous: %s before the deadline", pl.State)
	}
	silent, silentPool := r.vote("alice", "a1") // only a2, who stays silent
	r.eventually("a1 answered", func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.receipts) == 1 })

	r.later(2 * time.Minute) // past the default 60 s
	if c := r.outcome(cmd); c.Status != privicore.CommandSucceeded {
		t.Errorf("at the deadline with one yes: %v %q", c.Status, c.Body)
	}
	if c := r.outcome(silent); c.Status != privicore.CommandRejected || c.Body != "voting."+privicore.PoolExpired {
		t.Errorf("at the deadline with no answer: %v %q", c.Status, c.Body)
	}
	if pl := r.pool("alice", silentPool); pl.State != privicore.PoolExpired {
		t.Errorf("silent pool: %s", pl.State)
	}
}

// TestAnswersAreChecked: an answer counts only from a device the pool
// asked, of the pool's profile, in the current attempt, once, with the
// device key's MAC; every other is refused with its reason.
func TestAnswersAreChecked(t *testing.T) {
	r := newRig(t)
	ba1, ka1 := r.authenticatorOf("alice", "a1")
	a1, log := r.run(ba1, ka1, always(authenticator.Silent))
	ba3, ka3 := r.authenticatorOf("alice", "a3")
	r.run(ba3, ka3, always(authenticator.Silent))
	ba2, ka2 := r.authenticatorOf("alice", "a2") // skipped by the vote
	a2, _ := r.run(ba2, ka2, always(authenticator.Silent))
	bb1, kb1 := r.authenticatorOf("bob", "b1") // another profile's
	b1, _ := r.run(bb1, kb1, always(authenticator.Silent))

	_, poolID := r.vote("alice", "a2")
	r.eventually("a1 gets its ballot", func() bool { return len(log.ballotsOf(poolID)) == 1 })
	ballot := log.ballotsOf(poolID)[0]

	refused := func(what string, rc protocol.Receipt, err error, reason string) {
		t.Helper()
		if err != nil || rc.Accepted || rc.Reason != reason {
			t.Errorf("%s: %+v %v, want refused %s", what, rc, err, reason)
		}
	}
	rc, err := a1.Send(protocol.Answer{PoolID: poolID, Attempt: 1, Vote: "maybe"})
	refused("not a vote", rc, err, protocol.RefusedMalformed)
	rc, err = a1.Send(protocol.Answer{PoolID: poolID, Attempt: 1, Vote: "yes", MAC: "AAAA"})
	refused("a forged MAC", rc, err, protocol.RefusedSignature)
	rc, err = b1.Answer(protocol.Ballot{PoolID: poolID, Attempt: 1}, "yes")
	refused("another profile's device", rc, err, protocol.RefusedUnknownPool)
	rc, err = a1.Answer(protocol.Ballot{PoolID: "no-such-pool", Attempt: 1}, "yes")
	refused("an unknown pool", rc, err, protocol.RefusedUnknownPool)
	rc, err = a2.Answer(ballot, "yes")
	refused("a device the pool did not ask", rc, err, protocol.RefusedNotEligible)
	other := ballot
	other.Attempt = 2
	rc, err = a1.Answer(other, "yes")
	refused("another attempt", rc, err, protocol.RefusedClosed)

	if rc, err := a1.Answer(ballot, "yes"); err != nil || !rc.Accepted {
		t.Fatalf("a1's own answer: %+v %v", rc, err)
	}
	rc, err = a1.Answer(ballot, "no")
	refused("a second answer", rc, err, protocol.RefusedAnswered)
	if pl := r.pool("alice", poolID); len(pl.Answers) != 1 || !pl.Answers[0].Yes || pl.State != privicore.PoolOpen {
		t.Errorf("pool after the refusals: %s %+v", pl.State, pl.Answers)
	}
	r.later(2 * time.Minute)
	r.eventually("the pool resolves at its deadline", func() bool { return r.pool("alice", poolID).State != privicore.PoolOpen })
	rc, err = a1.Answer(ballot, "yes")
	refused("after the deadline", rc, err, protocol.RefusedClosed)
}

// TestBallotIsResentWhenTheDeviceConnects: a device that was offline when
// the pool opened gets its ballot when it connects (its hello), and its
// answer decides.
func TestBallotIsResentWhenTheDeviceConnects(t *testing.T) {
	r := newRig(t)
	b, k := r.authenticatorOf("alice", "a1")
	cmd, poolID := r.vote("alice") // a1 is not connected: the first ballot reaches nobody
	if pl := r.pool("alice", poolID); pl.State != privicore.PoolOpen {
		t.Fatalf("pool: %s", pl.State)
	}
	r.run(b, k, always(authenticator.Yes))
	if c := r.outcome(cmd); c.Status != privicore.CommandSucceeded {
		t.Errorf("vote command: %v %q", c.Status, c.Body)
	}
}

// TestCancelIsScopedToTheProfile: another profile can neither see nor
// cancel a pool; its own profile cancels it, and the held command is
// rejected voting.cancelled.
func TestCancelIsScopedToTheProfile(t *testing.T) {
	r := newRig(t)
	b, k := r.authenticatorOf("alice", "a1")
	r.run(b, k, always(authenticator.Silent))
	cmd, poolID := r.vote("alice")
	ctx := context.Background()

	if _, err := r.svc.Pool(ctx, "bob", poolID); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Errorf("bob reads alice's pool: %v", err)
	}
	c, err := r.svc.CancelVote(ctx, "bob", poolID)
	if err != nil {
		t.Fatal(err)
	}
	if c = r.outcome(c.ID); c.Status != privicore.CommandRejected || c.Body != ReasonPoolNotFound {
		t.Errorf("bob cancels alice's pool: %v %q", c.Status, c.Body)
	}
	if pl := r.pool("alice", poolID); pl.State != privicore.PoolOpen {
		t.Fatalf("after bob's cancel: %s", pl.State)
	}
	c, err = r.svc.CancelVote(ctx, "alice", poolID)
	if err != nil {
		t.Fatal(err)
	}
	if c = r.outcome(c.ID); c.Status != privicore.CommandSucceeded {
		t.Errorf("alice cancels: %v %q", c.Status, c.Body)
	}
	if c := r.outcome(cmd); c.Status != privicore.CommandRejected || c.Body != "voting."+privicore.PoolCancelled {
		t.Errorf("the vote after the cancel: %v %q", c.Status, c.Body)
	}
	c, _ = r.svc.CancelVote(ctx, "alice", poolID)
	if c = r.outcome(c.ID); c.Status != privicore.CommandRejected || c.Body != ReasonPoolClosed {
		t.Errorf("cancelling an ended pool: %v %q", c.Status, c.Body)
	}
}
