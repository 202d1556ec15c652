package httpapi_test

import (
	"testing"
	"time"

	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/enginetest"
)

// events reads the socket's events (their data objects) until last says
// one is the last wanted; every POOL-… event is checked against the pool's
// status at once, since it is published only once what it announces is
// committed.
func (a *api) events(u *user, s *socket, last func(map[string]any) bool) []map[string]any {
	a.t.Helper()
	return s.until(func(data map[string]any) bool {
		switch data["type"] {
		case "POOL-OPENED":
			// Published once the attempt is committed: the pool is found at
			// that attempt or later (an approving device may already have
			// resolved it by the time the test reads the event).
			if p := a.pool(u, data["poolId"].(string)); float64(p.Attempt) < data["attempt"].(float64) {
				a.t.Fatalf("POOL-OPENED %v, but the pool is %+v", data, p)
			}
		case "POOL-RESOLVED":
			if p := a.pool(u, data["poolId"].(string)); p.State != data["state"] {
				a.t.Fatalf("POOL-RESOLVED %v, but the pool is %+v", data, p)
			}
		}
		return last(data)
	})
}

// find returns the index of the first event matching every field of want, or -1.
func find(evs []map[string]any, want map[string]any) int {
next:
	for i, ev := range evs {
		for k, v := range want {
			if ev[k] != v {
				continue next
			}
		}
		return i
	}
	return -1
}

// guardedToken gives u a storage device, an authenticator that approves
// every ballot, an active policy holding deletes for its vote, and a stored
// token to delete.
func (a *api) guardedToken(u *user) string {
	a.t.Helper()
	a.storageDevice(u, "s1")
	yes := a.voter(u, "yes", authenticator.Yes)
	a.votingConfig(u, "approve", "unanimous", 0, yes.ID)
	pol := a.policy(u, map[string]any{"name": "guard", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"},
		"configurationId": "approve"})
	a.succeed(accepted(a.t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": pol})))
	wire, _ := ciphertext(a.t, 64)
	dtk := a.store(u, "held", wire)
	return dtk
}

// TestVotingEventsOnSocket (spec §1): a held command announces its pool
// (POOL-OPENED with the command, event, attempt and deadline, and
// command_status 1 with the pool id), the pool's outcome (POOL-RESOLVED),
// then its ack; an ad-hoc vote announces each attempt and its
// cancellation, buffered for a profile without a joined socket.
func TestVotingEventsOnSocket(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)

	// A delete held by a policy, approved.
	u := a.activeUser("pool-events")
	dtk := a.guardedToken(u)
	s := join(t, e.WSURL, u.Token)
	del := accepted(t, a.postJSON("/data-token/delete-data", u.Token, map[string]string{"token": dtk}))
	evs := a.events(u, s, isAck(del))
	opened := find(evs, map[string]any{"type": "POOL-OPENED", "commandId": del})
	if opened < 0 {
		t.Fatalf("no POOL-OPENED for the held delete: %v", evs)
	}
	ev := evs[opened]
	poolID, _ := ev["poolId"].(string)
	if poolID == "" || ev["id"] != poolID || ev["event"] != "data-token.delete" || ev["attempt"] != float64(1) {
		t.Fatalf("POOL-OPENED %v", ev)
	}
	if at, err := time.Parse(time.RFC3339, ev["expiresAt"].(string)); err != nil || at.IsZero() {
		t.Fatalf("expiresAt %v: %v", ev["expiresAt"], err)
	}
	if p := a.pool(u, poolID); p.CommandID != del || p.Event != "data-token.delete" {
		t.Fatalf("the announced pool is %+v", p)
	}
	pending := find(evs, map[string]any{"type": "X-DPT-CAB-ID", "id": del, "command_status": float64(1), "body": poolID})
	resolved := find(evs, map[string]any{"type": "POOL-RESOLVED", "id": poolID, "poolId": poolID, "commandId": del, "state": "approved"})
	ack := len(evs) - 1
	if pending < 0 || resolved < 0 || !(opened < resolved && resolved < ack && pending < ack) || evs[ack]["command_status"] != float64(2) {
		t.Fatalf("events of the held delete, in order: %v", evs)
	}

	// An ad-hoc vote with two attempts, no socket joined: the events wait.
	v := a.activeUser("pool-events-adhoc")
	quiet := a.voter(v, "quiet", authenticator.Silent)
	a.votingConfig(v, "quiet", "unanimous", 0, quiet.ID)
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-maximum-voting-attempts", v.Token, map[string]int{"numberOfAttempts": 2})))
	cmd, pool := a.vote(v, "quiet")
	quiet.last(t, pool, 1)
	sv := join(t, e.WSURL, v.Token)
	first := func(d map[string]any) bool {
		return d["type"] == "X-DPT-CAB-ID" && d["id"] == cmd && d["command_status"] == float64(1)
	}
	evs = a.events(v, sv, first)
	if i := find(evs, map[string]any{"type": "POOL-OPENED", "id": pool, "commandId": cmd, "event": "voting.create", "attempt": float64(1)}); i < 0 {
		t.Fatalf("the buffered events of the vote: %v", evs)
	}
	expire(t, e, pool) // the first attempt ends unanswered; the second opens
	second := func(d map[string]any) bool {
		return d["type"] == "POOL-OPENED" && d["id"] == pool && d["attempt"] == float64(2)
	}
	evs = a.events(v, sv, second)
	if find(evs, map[string]any{"type": "POOL-RESOLVED"}) >= 0 {
		t.Fatalf("a failed attempt with one to come resolved the pool: %v", evs)
	}
	a.events(v, sv, first) // the pending status again, for the new attempt
	cancel := accepted(t, a.postJSON("/voting/cancel-pool", v.Token, map[string]string{"poolId": pool}))
	evs = a.events(v, sv, isAck(cmd))
	resolved = find(evs, map[string]any{"type": "POOL-RESOLVED", "id": pool, "commandId": cmd, "state": "cancelled"})
	if resolved < 0 || evs[len(evs)-1]["command_status"] != float64(3) || evs[len(evs)-1]["body"] != "voting.cancelled" {
		t.Fatalf("events of the cancelled vote: %v", evs)
	}
	// The cancellation is acked first; the pool resolves once it is committed.
	if i := find(evs, map[string]any{"type": "X-DPT-CAB-ID", "id": cancel, "command_status": float64(2)}); i < 0 || i > resolved {
		t.Fatalf("events of the cancellation: %v", evs)
	}
}

// TestApplicationHearsItsHeldCommand: an application's socket (voting:read)
// receives the pool events and the pending status of a command the
// application submitted and a policy holds, though acks reach it only for
// its own commands.
func TestApplicationHearsItsHeldCommand(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("app-held")
	dtk := a.guardedToken(u)
	app := a.authorize(u, a.oauthApp(u, "data-token:write", "voting:read"), "n-held", "data-token:write", "voting:read").AccessToken
	s := join(t, e.WSURL, app)
	del := accepted(t, a.postJSON("/data-token/delete-data", app, map[string]string{"token": dtk}))
	evs := a.events(u, s, isAck(del))
	opened := find(evs, map[string]any{"type": "POOL-OPENED", "commandId": del})
	pending := find(evs, map[string]any{"type": "X-DPT-CAB-ID", "id": del, "command_status": float64(1)})
	resolved := find(evs, map[string]any{"type": "POOL-RESOLVED", "commandId": del, "state": "approved"})
	if opened < 0 || pending < 0 || resolved < 0 || evs[len(evs)-1]["command_status"] != float64(2) {
		t.Fatalf("the application's socket, for its held delete: %v", evs)
	}
}
