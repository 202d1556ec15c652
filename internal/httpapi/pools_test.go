package httpapi_test

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// voter is a running authenticator device with a fixed answer.
type voter struct {
	ID   string
	Auth *authenticator.Authenticator
	Key  *ecdh.PrivateKey

	mu      sync.Mutex
	ballots []protocol.Ballot
}

func (v *voter) last(t *testing.T, poolID string, attempt int) protocol.Ballot {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		for _, b := range v.ballots {
			if b.PoolID == poolID && b.Attempt == attempt {
				v.mu.Unlock()
				return b
			}
		}
		v.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("device %s got no ballot for %s attempt %d", v.ID, poolID, attempt)
	return protocol.Ballot{}
}

// voter enrolls an authenticator of u answering with d, and runs it.
func (a *api) voter(u *user, name string, d authenticator.Decision) *voter {
	a.t.Helper()
	id, priv := a.enrollVoter(u, name)
	v := &voter{ID: id, Key: priv}
	auth, err := authenticator.Start(authenticator.Config{Bundle: a.bundle(u.Token, id), Key: priv,
		Decide: func(_ context.Context, b protocol.Ballot) authenticator.Decision {
			v.mu.Lock()
			v.ballots = append(v.ballots, b)
			v.mu.Unlock()
			return d
		}})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(auth.Close)
	v.Auth = auth
	return v
}

// votingConfig registers a configuration and returns its id.
func (a *api) votingConfig(u *user, name, strategy string, pct int, devices ...string) string {
	a.t.Helper()
	body := map[string]any{"name": name, "strategy": strategy, "deviceIdentifiers": devices, "timeLimit": 60}
	if strategy == "minimum_percentage" {
		body["percentageRequired"] = pct
	}
	return a.succeed(accepted(a.t, a.postJSON("/verified-authenticator/voting-configuration/register", u.Token, body)))
}

// vote opens an ad-hoc pool and returns its command and pool ids.
func (a *api) vote(u *user, config string, skip ...string) (string, string) {
	a.t.Helper()
	r := a.postJSON("/voting/create", u.Token, map[string]any{"votingConfigurationId": config, "title": "Wire transfer",
		"question": "Send 1 000 EUR?", "nonce": "n-1", "skipAuthenticatorDevices": skip})
	expect(a.t, r, 202)
	m := r.Map(a.t)
	return m["commandId"].(string), m["poolId"].(string)
}

type poolStatus struct {
	PoolID, State, Strategy, Title, Question, Nonce, Event, CommandID, ExpiresAt string
	Eligible                                                                     []string
	Answers                                                                      []struct{ DeviceIdentifier, Vote, At string }
	Attempt, MaxAttempts, QuorumSize, SecondsLeft                                int
}

func (a *api) pool(u *user, id string) poolStatus {
	a.t.Helper()
	r := a.get("/voting/check-pool-status/"+id, u.Token)
	expect(a.t, r, 200)
	var p poolStatus
	r.JSON(a.t, &p)
	return p
}

// waitPool waits until the pool reaches state.
func (a *api) waitPool(u *user, id, state string) poolStatus {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := a.pool(u, id)
		if p.State == state {
			return p
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("pool %s is %s (%+v), want %s", id, p.State, p, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expire moves a pool's deadline into the past (the engine's loop does the rest).
func expire(t *testing.T, e *enginetest.Engine, poolID string) {
	t.Helper()
	if _, err := e.Store.Exec(context.Background(), `UPDATE pools SET expires_at = ? WHERE id = ?`, time.Now().Add(-time.Second).UnixNano(), poolID); err != nil {
		t.Fatal(err)
	}
}

func TestVotingStrategiesOverRealAuthenticators(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("pools")
	yes := a.voter(u, "yes", authenticator.Yes)
	yes2 := a.voter(u, "yes-2", authenticator.Yes)
	no := a.voter(u, "no", authenticator.No)
	silent := a.voter(u, "silent", authenticator.Silent)

	for _, tc := range []struct {
		name, strategy string
		pct            int
		voters         []*voter
		deadline       bool // the outcome needs the deadline
		state, reason  string
	}{
		{"unanimous-yes", "unanimous", 0, []*voter{yes, yes2}, false, "approved", ""},
		{"unanimous-no", "unanimous", 0, []*voter{yes, no}, false, "rejected", "voting.rejected"},
		{"unanimous-silent", "unanimous", 0, []*voter{yes, silent}, true, "approved", ""},
		{"consensus-split", "consensus", 0, []*voter{yes, no, silent}, true, "rejected", "voting.rejected"},
		{"consensus-two", "consensus", 0, []*voter{yes, yes2, no}, false, "approved", ""},
		{"affirmative", "affirmative", 0, []*voter{no, yes}, false, "approved", ""},
		{"affirmative-no", "affirmative", 0, []*voter{no}, false, "rejected", "voting.rejected"},
		{"percentage-50", "minimum_percentage", 50, []*voter{yes, no}, false, "approved", ""},
		{"percentage-60", "minimum_percentage", 60, []*voter{yes, no}, false, "rejected", "voting.rejected"},
		{"all-silent", "unanimous", 0, []*voter{silent}, true, "expired", "voting.expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, e)
			var ids []string
			for _, v := range tc.voters {
				ids = append(ids, v.ID)
			}
			cfg := a.votingConfig(u, tc.name, tc.strategy, tc.pct, ids...)
			cmd, pool := a.vote(u, cfg)
			if tc.deadline {
				time.Sleep(300 * time.Millisecond)
				if p := a.pool(u, pool); p.State != "open" {
					t.Fatalf("resolved before its deadline: %+v", p)
				}
				expire(t, e, pool)
			}
			p := a.waitPool(u, pool, tc.state)
			if tc.reason == "" {
				a.succeed(cmd)
			} else {
				a.rejected(cmd, tc.reason)
			}
			if len(p.Eligible) != len(tc.voters) || p.Title != "Wire transfer" || p.Nonce != "n-1" || p.CommandID != cmd || p.Event != "voting.create" {
				t.Fatalf("status %+v", p)
			}
		})
	}

	// Quorum: two answers needed, one comes.
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]int{"quorumSize": 2})))
	cmd, pool := a.vote(u, a.votingConfig(u, "quorum", "affirmative", 0, yes.ID, silent.ID))
	time.Sleep(300 * time.Millisecond)
	expire(t, e, pool)
	a.waitPool(u, pool, "quorum_not_met")
	a.rejected(cmd, "voting.quorum_not_met")
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]int{"quorumSize": 1})))

	// A failed attempt is retried with fresh ballots, up to the maximum.
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-maximum-voting-attempts", u.Token, map[string]int{"numberOfAttempts": 2})))
	cmd, pool = a.vote(u, a.votingConfig(u, "retry", "unanimous", 0, no.ID))
	no.last(t, pool, 1)
	no.last(t, pool, 2)
	p := a.waitPool(u, pool, "rejected")
	a.rejected(cmd, "voting.rejected")
	if p.Attempt != 2 || p.MaxAttempts != 2 || len(p.Answers) != 1 || p.Answers[0].Vote != "no" {
		t.Fatalf("after two attempts %+v", p)
	}

	// Cancel.
	cmd, pool = a.vote(u, a.votingConfig(u, "cancel-me", "unanimous", 0, silent.ID))
	silent.last(t, pool, 1)
	a.succeed(accepted(t, a.postJSON("/voting/cancel-pool", u.Token, map[string]string{"poolId": pool})))
	a.waitPool(u, pool, "cancelled")
	a.rejected(cmd, "voting.cancelled")
	a.rejected(accepted(t, a.postJSON("/voting/cancel-pool", u.Token, map[string]string{"poolId": pool})), "voting.pool_closed")

	// Another profile sees nothing of it.
	other := a.activeUser("pools-other")
	expect(t, a.get("/voting/check-pool-status/"+pool, other.Token), 404)
	a.rejected(accepted(t, a.postJSON("/voting/cancel-pool", other.Token, map[string]string{"poolId": pool})), "voting.pool_not_found")
	fieldErrors(t, a.postJSON("/voting/create", u.Token, map[string]any{"votingConfigurationId": "nope", "question": ""}), "votingConfigurationId", "question")
}

func TestVotesAreAuthenticated(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("ballots")
	asked := a.voter(u, "asked", authenticator.Silent)
	skipped := a.voter(u, "skipped", authenticator.Silent)
	other := a.activeUser("ballots-other")
	stranger := a.voter(other, "stranger", authenticator.Silent)

	cmd, pool := a.vote(u, a.votingConfig(u, "one", "unanimous", 0, asked.ID, skipped.ID), skipped.ID)
	b := asked.last(t, pool, 1)
	if b.Event != "voting.create" || b.Question != "Send 1 000 EUR?" || b.DeviceIdentifier != asked.ID || time.Until(b.ExpiresAt) < 50*time.Second {
		t.Fatalf("ballot %+v", b)
	}
	refused := func(v *voter, ans protocol.Answer, want string) {
		t.Helper()
		r, err := v.Auth.Send(ans)
		if err != nil || r.Accepted || r.Reason != want {
			t.Fatalf("answer %+v: receipt %+v %v, want %s", ans, r, err, want)
		}
	}
	sign := func(v *voter, vote string, attempt int) protocol.Answer {
		ans := protocol.Answer{PoolID: pool, Attempt: attempt, Vote: vote}
		enginePub, _ := keys.ParsePublicKey(e.EngineKey)
		protocol.Sign(&ans, v.ID, v.Key, enginePub)
		return ans
	}
	// A device the pool did not ask (skipped), another profile's device, a
	// forged signature, another attempt, nonsense.
	refused(skipped, sign(skipped, "yes", 1), protocol.RefusedNotEligible)
	refused(stranger, sign(stranger, "yes", 1), protocol.RefusedUnknownPool)
	forged := sign(skipped, "yes", 1) // signed with another device's key
	refused(asked, forged, protocol.RefusedSignature)
	bad := sign(asked, "yes", 1)
	bad.MAC = base64.StdEncoding.EncodeToString(make([]byte, 32))
	refused(asked, bad, protocol.RefusedSignature)
	refused(asked, sign(asked, "yes", 2), protocol.RefusedClosed)
	refused(asked, protocol.Answer{PoolID: pool, Attempt: 1, Vote: "maybe"}, protocol.RefusedMalformed)

	// The real answer counts once; a replay is refused.
	good := sign(asked, "no", 1)
	if r, err := asked.Auth.Send(good); err != nil || !r.Accepted {
		t.Fatalf("the good answer: %+v %v", r, err)
	}
	refused(asked, good, protocol.RefusedClosed) // the pool resolved with it
	a.waitPool(u, pool, "rejected")
	a.rejected(cmd, "voting.rejected")

	// A late answer: the deadline passed.
	_, pool = a.vote(u, a.votingConfig(u, "late", "unanimous", 0, asked.ID))
	asked.last(t, pool, 1)
	expire(t, e, pool)
	a.waitPool(u, pool, "expired")
	refused(asked, sign(asked, "yes", 1), protocol.RefusedClosed)

	// Replaying an accepted answer while the pool is still open.
	_, pool = a.vote(u, a.votingConfig(u, "two", "unanimous", 0, asked.ID, skipped.ID))
	asked.last(t, pool, 1)
	yesAns := sign(asked, "yes", 1)
	if r, _ := asked.Auth.Send(yesAns); !r.Accepted {
		t.Fatalf("first answer refused: %+v", r)
	}
	refused(asked, yesAns, protocol.RefusedAnswered)
	if p := a.pool(u, pool); p.State != "open" || len(p.Answers) != 1 {
		t.Fatalf("after the replay %+v", p)
	}
	// An authenticator whose role was removed may still answer the pools
	// that asked it, until they end.
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/remove", u.Token, map[string]string{"deviceIdentifier": skipped.ID})))
	if r, err := skipped.Auth.Send(sign(skipped, "yes", 1)); err != nil || !r.Accepted {
		t.Fatalf("a removed authenticator's answer to an open pool: %+v %v", r, err)
	}
	a.waitPool(u, pool, "approved")
}
