package httpapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// fieldErrors expects a 422 naming exactly fields (in any order).
func fieldErrors(t *testing.T, r *response, fields ...string) {
	t.Helper()
	expect(t, r, 422)
	errs, _ := r.Map(t)["errors"].(map[string]any)
	if len(errs) != len(fields) {
		t.Fatalf("errors %s, want exactly %v", r.Body, fields)
	}
	for _, f := range fields {
		if errs[f] == nil {
			t.Fatalf("errors %s, want %s", r.Body, f)
		}
	}
}

type strategyAnswer struct {
	Strategy                                                string
	StrategyParams, QuorumSize, TimeLimit, NumberOfAttempts int
	Strategies                                              []string
}

func (a *api) strategy(token string) strategyAnswer {
	a.t.Helper()
	r := a.get("/verified-authenticator/retrieve-voting-strategy", token)
	expect(a.t, r, 200)
	var s strategyAnswer
	r.JSON(a.t, &s)
	return s
}

// authenticator enrolls an approved device and gives it the authenticator role.
func (a *api) authenticator(u *user, name string) string {
	a.t.Helper()
	id := a.approvedDevice(u, name)
	a.succeed(accepted(a.t, a.postJSON("/verified-authenticator/register", u.Token, map[string]string{"deviceIdentifier": id})))
	return id
}

func TestAuthenticatorsAndVotingStrategy(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("voter")

	s := a.strategy(u.Token)
	if s.Strategy != "unanimous" || s.StrategyParams != 100 || s.QuorumSize != 1 || s.TimeLimit != 60 || s.NumberOfAttempts != 1 ||
		strings.Join(s.Strategies, ",") != "unanimous,consensus,affirmative,minimum_percentage" {
		t.Fatalf("defaults %+v", s)
	}
	// No authenticator yet: any quorum is too large.
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]int{"quorumSize": 1})), "voting.quorum_too_large")

	a1 := a.authenticator(u, "phone")
	a.authenticator(u, "tablet")
	// Only approved devices without another role.
	_, pending := a.requestDevice(u.Token, "pending")
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/register", u.Token, map[string]string{"deviceIdentifier": pending})), "device.not_approved")
	store := a.approvedDevice(u, "disk")
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": store})))
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/register-authenticator", u.Token, map[string]string{"deviceIdentifier": store})), "device.role_taken")
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/register", u.Token, map[string]string{"deviceIdentifier": a1})), "device.role_taken")
	r := a.get("/verified-authenticator/list", u.Token)
	var list []deviceRecord
	r.JSON(t, &list)
	if len(list) != 2 || list[0].Role != "authenticator" || list[1].Role != "authenticator" {
		t.Fatalf("authenticators %s", r.Body)
	}

	// Quorum: validated, then bounded by the authenticators.
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]int{"quorumSize": 0}), "quorumSize")
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]string{"quorumSize": "two"}), "quorumSize")
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]string{}), "quorumSize")
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/set-quorum-size", u.Token, map[string]int{"quorumSize": 3})), "voting.quorum_too_large")
	a.succeed(accepted(t, a.postForm("/verified-authenticator/set-quorum-size", u.Token, url.Values{"quorumSize": {"2"}})))

	// Strategy and its yes percentage.
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-strategy", u.Token, map[string]string{"strategy": "majority"}), "strategy")
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-strategy", u.Token, map[string]string{"strategy": "minimum_percentage"}), "strategy_params")
	fieldErrors(t, a.postJSON("/verified-authenticator/set-quorum-strategy", u.Token, map[string]any{"strategy": "minimum_percentage", "strategy_params": 101}), "strategy_params")
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-quorum-strategy", u.Token, map[string]any{"strategy": "minimum_percentage", "strategy_params": 60})))
	if s := a.strategy(u.Token); s.Strategy != "minimum_percentage" || s.StrategyParams != 60 || s.QuorumSize != 2 {
		t.Fatalf("after minimum_percentage %+v", s)
	}
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-quorum-strategy", u.Token, map[string]any{"strategy": "consensus", "strategy_params": 10})))
	if s := a.strategy(u.Token); s.Strategy != "consensus" || s.StrategyParams != 51 {
		t.Fatalf("consensus implies 51: %+v", s)
	}

	// Time limit and attempts.
	for _, bad := range []int{4, 86401} {
		fieldErrors(t, a.postJSON("/verified-authenticator/set-voting-time-limit", u.Token, map[string]int{"timeLimit": bad}), "timeLimit")
	}
	for _, bad := range []int{0, 11} {
		fieldErrors(t, a.postJSON("/verified-authenticator/set-maximum-voting-attempts", u.Token, map[string]int{"numberOfAttempts": bad}), "numberOfAttempts")
	}
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-voting-time-limit", u.Token, map[string]int{"timeLimit": 300})))
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/set-maximum-voting-attempts", u.Token, map[string]int{"numberOfAttempts": 3})))
	if s := a.strategy(u.Token); s.TimeLimit != 300 || s.NumberOfAttempts != 3 || s.QuorumSize != 2 || s.Strategy != "consensus" {
		t.Fatalf("after the setters %+v", s)
	}

	// Removing the role keeps the device.
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/remove", u.Token, map[string]string{"deviceIdentifier": a1})))
	a.get("/verified-authenticator/list-verified-authenticators", u.Token).JSON(t, &list)
	if len(list) != 1 || a.devices(u.Token)[a1].Role != "none" {
		t.Fatalf("after removal %v", list)
	}
	a.rejected(accepted(t, a.postJSON("/verified-authenticator/remove-authenticator", u.Token, map[string]string{"deviceIdentifier": a1})), "device.role_not_held")

	// Another profile sees its own defaults, not these.
	other := a.activeUser("voter-2")
	if s := a.strategy(other.Token); s.QuorumSize != 1 || s.Strategy != "unanimous" {
		t.Fatalf("other profile %+v", s)
	}
}

type votingConfig struct {
	ID, Name, Strategy, CreatedAt, UpdatedAt string
	TimeLimit, PercentageRequired            int
	DeviceIdentifiers                        []string
}

func TestVotingConfigurations(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("configurer")
	other := a.activeUser("configurer-2")
	a1 := a.authenticator(u, "phone")
	a2 := a.authenticator(u, "watch")
	plain := a.approvedDevice(u, "laptop")
	foreign := a.authenticator(other, "theirs")

	path := "/verified-authenticator/voting-configuration/register"
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{}), "name", "strategy")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "minimum_percentage"}), "percentageRequired")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "minimum_percentage", "percentageRequired": 101}), "percentageRequired")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "unanimous", "timeLimit": 3}), "timeLimit")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "most"}), "strategy")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": strings.Repeat("n", 129), "strategy": "unanimous"}), "name")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "unanimous", "deviceIdentifiers": []string{a1, plain}}), "deviceIdentifiers")
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "x", "strategy": "unanimous", "deviceIdentifiers": []string{foreign}}), "deviceIdentifiers")

	id := a.succeed(accepted(t, a.postJSON(path, u.Token, map[string]any{"name": "two-of-two", "strategy": "minimum_percentage",
		"percentageRequired": 75, "timeLimit": 120, "deviceIdentifiers": []string{a1, a2}})))
	// A form works too; [""] means every authenticator; the time limit defaults to the profile's.
	all := a.succeed(accepted(t, a.postForm(path, u.Token, url.Values{"name": {"anyone"}, "strategy": {"affirmative"}, "deviceIdentifiers[]": {""}})))
	fieldErrors(t, a.postJSON(path, u.Token, map[string]any{"name": "two-of-two", "strategy": "unanimous"}), "name")

	get := func(key string) votingConfig {
		t.Helper()
		r := a.get("/verified-authenticator/voting-configuration/retrieve/"+url.PathEscape(key), u.Token)
		expect(t, r, 200)
		var c votingConfig
		r.JSON(t, &c)
		return c
	}
	c := get(id)
	if c.Name != "two-of-two" || c.Strategy != "minimum_percentage" || c.PercentageRequired != 75 || c.TimeLimit != 120 ||
		len(c.DeviceIdentifiers) != 2 || c.CreatedAt == "" {
		t.Fatalf("configuration %+v", c)
	}
	if c := get("anyone"); c.ID != all || c.PercentageRequired != 1 || c.TimeLimit != 60 || len(c.DeviceIdentifiers) != 0 {
		t.Fatalf("by name %+v", c)
	}
	expect(t, a.get("/verified-authenticator/voting-configuration/retrieve/nothing", u.Token), 404)
	expect(t, a.get("/verified-authenticator/voting-configuration/retrieve/"+id, other.Token), 404)

	// Update by name (fields to change only), and by id with a rename.
	upd := "/verified-authenticator/voting-configuration/update"
	a.succeed(accepted(t, a.postJSON(upd, u.Token, map[string]any{"name": "two-of-two", "timeLimit": 30})))
	if c := get(id); c.TimeLimit != 30 || c.PercentageRequired != 75 || len(c.DeviceIdentifiers) != 2 {
		t.Fatalf("after update %+v", c)
	}
	a.succeed(accepted(t, a.postJSON(upd, u.Token, map[string]any{"id": id, "name": "pair", "strategy": "unanimous"})))
	if c := get("pair"); c.ID != id || c.Strategy != "unanimous" || c.PercentageRequired != 100 {
		t.Fatalf("after rename %+v", c)
	}
	fieldErrors(t, a.postJSON(upd, u.Token, map[string]any{"id": id, "name": "anyone"}), "name")
	fieldErrors(t, a.postJSON(upd, u.Token, map[string]any{"id": id, "strategy": "minimum_percentage"}), "percentageRequired")
	expect(t, a.postJSON(upd, other.Token, map[string]any{"id": id, "timeLimit": 30}), 404)
	expect(t, a.postJSON(upd, u.Token, map[string]any{"name": "nothing", "timeLimit": 30}), 404)

	// An authenticator that lost its role cannot be named any more.
	a.succeed(accepted(t, a.postJSON("/verified-authenticator/remove", u.Token, map[string]string{"deviceIdentifier": a2})))
	fieldErrors(t, a.postJSON(upd, u.Token, map[string]any{"id": id, "deviceIdentifiers": []string{a2}}), "deviceIdentifiers")

	r := a.get("/verified-authenticator/voting-configuration/list", u.Token)
	var list []votingConfig
	r.JSON(t, &list)
	if len(list) != 2 || list[0].ID != id || list[1].ID != all {
		t.Fatalf("list %s", r.Body)
	}
	if r := a.get("/verified-authenticator/voting-configuration/list", other.Token); string(r.Body) != "[]\n" {
		t.Fatalf("other profile's list %s", r.Body)
	}
}
