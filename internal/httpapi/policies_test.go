package httpapi_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

type policyAnswer struct {
	ID, Name, PolicyTemplateID, ConfigurationID, CreatedAt string
	ApplyingEventIDs, Events                               []string
	Configuration                                          map[string]any
	Active                                                 bool
}

func (a *api) policy(u *user, body map[string]any) string {
	a.t.Helper()
	return a.succeed(accepted(a.t, a.postJSON("/policy/register", u.Token, body)))
}

func (a *api) policies(u *user, which string) []policyAnswer {
	a.t.Helper()
	r := a.get("/policy/list-"+which+"-policies", u.Token)
	expect(a.t, r, 200)
	var out []policyAnswer
	r.JSON(a.t, &out)
	return out
}

func TestPolicyCatalogueAndLifecycle(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("policies")
	other := a.activeUser("policies-other")

	r := a.get("/policy/list-policy-templates", u.Token)
	expect(t, r, 200)
	var cat map[string]struct {
		Name, Description string
		Events            map[string]map[string]string
		Configuration     []string
		VotingAttributes  []string
	}
	r.JSON(t, &cat)
	names := map[string]bool{}
	for _, tpl := range cat {
		for _, ev := range tpl.Events {
			for name := range ev {
				names[name] = true
			}
		}
	}
	for _, want := range []string{"data-token.exchange", "data-token.request-data", "data-token.delete", "data-token.update", "device.approve",
		"device.remove", "storage.register", "verified-authenticator.remove", "policy.deactivate", "policy.delete", "profile.change-password", "oauth.register"} {
		if !names[want] {
			t.Errorf("no template gates %s", want)
		}
	}

	cfg := a.votingConfig(u, "mine", "unanimous", 0)
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "nope"}), "policyTemplateId")
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "data-protection"}), "applyingEventIds")
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "data-protection", "applyingEventIds": []string{"dev-approve"}}), "applyingEventIds")
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"},
		"configuration": map[string]any{"ballotMessage": 7}}), "configuration")
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"},
		"configurationId": "theirs"}), "configurationId")

	id := a.policy(u, map[string]any{"name": "guard", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete", "dt-request"},
		"votingConfigurationId": "mine", "configuration": map[string]any{"ballotMessage": "Someone wants your data"}})
	fieldErrors(t, a.postJSON("/policy/register", u.Token, map[string]any{"name": "guard", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"}}), "name")
	generated := a.succeed(accepted(t, a.postForm("/policy/register", u.Token, url.Values{"policyTemplateId": {"device-control"},
		"applyingEventIds": {"dev-approve,dev-remove"}, "votingConfigurationId": {cfg}, "configuration": {`{"ballotMessage":"New device?"}`}})))

	r = a.get("/policy/retrieve-policy/guard", u.Token)
	expect(t, r, 200)
	var p policyAnswer
	r.JSON(t, &p)
	if p.ID != id || p.Active || p.ConfigurationID != cfg || strings.Join(p.Events, ",") != "data-token.delete,data-token.request-data" ||
		p.Configuration["ballotMessage"] != "Someone wants your data" {
		t.Fatalf("policy %s", r.Body)
	}
	r = a.get("/policy/retrieve-registered-policy/"+generated, u.Token)
	expect(t, r, 200)
	r.JSON(t, &p)
	if p.ConfigurationID != cfg || !strings.HasPrefix(p.Name, "device-control-") || p.Configuration["ballotMessage"] != "New device?" || len(p.Events) != 2 {
		t.Fatalf("form-registered policy %s", r.Body)
	}
	expect(t, a.get("/policy/retrieve-policy/guard", other.Token), 404)
	if len(a.policies(u, "registered")) != 2 || len(a.policies(u, "active")) != 0 || len(a.policies(u, "inactive")) != 2 {
		t.Fatal("new policies are not all inactive")
	}
	a.succeed(accepted(t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": id})))
	if act := a.policies(u, "active"); len(act) != 1 || act[0].ID != id {
		t.Fatalf("active %+v", act)
	}
	a.rejected(accepted(t, a.postJSON("/policy/activate", other.Token, map[string]string{"policyId": id})), "policy.not_found")
	a.succeed(accepted(t, a.postJSON("/policy/deactivate", u.Token, map[string]string{"name": "guard"})))
	a.succeed(accepted(t, a.postJSON("/policy/delete", u.Token, map[string]string{"policyId": generated})))
	if len(a.policies(u, "registered")) != 1 || len(a.policies(u, "active")) != 0 {
		t.Fatal("after deactivate and delete")
	}
}

// TestGatedOperations: with an active policy, exchange, request-data and
// delete wait for the vote; approved they apply, denied nothing is applied.
func TestGatedOperations(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("gated")
	a.storageDevice(u, "s1")
	yes := a.voter(u, "yes", authenticator.Yes)
	no := a.voter(u, "no", authenticator.No)
	a.votingConfig(u, "approve", "unanimous", 0, yes.ID)
	a.votingConfig(u, "deny", "unanimous", 0, no.ID)
	s := join(t, e.WSURL, u.Token)

	wire, _ := ciphertext(t, 100)
	kept := a.store(u, "before", wire) // stored before any policy

	approve := a.policy(u, map[string]any{"name": "approve", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-exchange", "dt-request", "dt-delete"},
		"configurationId": "approve", "configuration": map[string]any{"ballotMessage": "Allow?"}})
	deny := a.policy(u, map[string]any{"name": "deny", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-exchange", "dt-request", "dt-delete"},
		"configurationId": "deny"})
	a.succeed(accepted(t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": approve})))

	// Approved: each operation applies, after a pool the yes-voter was asked in.
	stored := a.store(u, "after", wire)
	if got, _ := a.retrieve(s, u.Token, stored); !bytes.Equal(got, wire) {
		t.Fatal("approved exchange and request did not apply")
	}
	yes.mu.Lock()
	first := yes.ballots[0].PoolID
	yes.mu.Unlock()
	b := yes.last(t, first, 1)
	if by, _ := b.Detail["by"].(string); b.Event != "data-token.exchange" || b.Question != "Allow?" || b.Title != "approve" || !strings.HasPrefix(by, "token ") {
		t.Fatalf("ballot %+v", b)
	}
	del := accepted(t, a.postJSON("/data-token/delete-data", u.Token, map[string]string{"token": stored}))
	a.succeed(del)
	expect(t, a.postJSON("/data-token/request-data", u.Token, map[string]string{"token": stored}), 404)

	// Denied: nothing applied.
	a.succeed(accepted(t, a.postJSON("/policy/deactivate", u.Token, map[string]string{"policyId": approve})))
	a.succeed(accepted(t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": deny})))
	tmp := a.reserve(u.Token, "denied", 0)
	ex := a.exchange(u.Token, tmp, wire)
	a.rejected(ex, "voting.rejected")
	r := a.get("/data-token/list-data-tokens?filters%5Bcontext%5D=denied", u.Token)
	if !strings.Contains(string(r.Body), `"total":0`) {
		t.Fatalf("a denied exchange was applied: %s", r.Body)
	}
	rr := a.postJSON("/data-token/request-data", u.Token, map[string]string{"token": kept})
	expect(t, rr, 202)
	req, reqID := rr.Map(t)["commandId"].(string), rr.Map(t)["requestId"].(string)
	a.rejected(req, "voting.rejected")
	s.noEventFor(reqID, 300*time.Millisecond) // no data came (the wait closes the socket)
	del = accepted(t, a.postJSON("/data-token/delete-data", u.Token, map[string]string{"token": kept}))
	a.rejected(del, "voting.rejected")
	a.succeed(accepted(t, a.postJSON("/policy/deactivate", u.Token, map[string]string{"policyId": deny})))
	if got, _ := a.retrieve(join(t, e.WSURL, u.Token), u.Token, kept); !bytes.Equal(got, wire) {
		t.Fatal("a denied delete was applied")
	}
}

// TestPoolSurvivesRestart: a held command and its open pool outlive the
// engine; the deadline is enforced after the restart.
func TestPoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	a := newAPI(t, e)
	u := a.activeUser("restart")
	silent := a.voter(u, "silent", authenticator.Silent)
	cmd, pool := a.vote(u, a.votingConfig(u, "slow", "unanimous", 0, silent.ID))
	silent.last(t, pool, 1)
	e.Close()

	e2 := enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	a2 := newAPI(t, e2)
	if p := a2.pool(u, pool); p.State != "open" {
		t.Fatalf("after restart %+v", p)
	}
	var st struct {
		CommandStatus int `json:"command_status"`
	}
	a2.get("/utility/request-command-id-status/"+cmd, "").JSON(t, &st)
	if st.CommandStatus != 1 {
		t.Fatalf("the held command is %d after the restart, want pending", st.CommandStatus)
	}
	expire(t, e2, pool)
	a2.waitPool(u, pool, "expired")
	a2.rejected(cmd, "voting.expired")
}
