package httpapi_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// TestPolicyConfigurationIsTemplateSpecific: keys a template does not
// declare (a client's classification, label, handling) are stored and
// returned with the policy, in JSON and in forms; a declared key of the
// wrong type, and a configuration past the bounds, are 422.
func TestPolicyConfigurationIsTemplateSpecific(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("policy-config")

	cfg := map[string]any{"ballotMessage": "Read it?", "classification": "secret", "label": "L-7", "handling": "need-to-know",
		"reviewers": []any{"alice", "bob"}, "level": 3.0, "nested": map[string]any{"a": true}}
	id := a.policy(u, map[string]any{"name": "annotated", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-request"},
		"configuration": cfg})
	var p policyAnswer
	r := a.get("/policy/retrieve-policy/"+id, u.Token)
	expect(t, r, 200)
	r.JSON(t, &p)
	if !reflect.DeepEqual(p.Configuration, cfg) {
		t.Fatalf("configuration %v, want %v", p.Configuration, cfg)
	}
	if list := a.policies(u, "registered"); len(list) != 1 || !reflect.DeepEqual(list[0].Configuration, cfg) {
		t.Fatalf("listed %+v", list)
	}
	// A form sends the configuration as JSON text.
	formID := a.succeed(accepted(t, a.postForm("/policy/register", u.Token, url.Values{"name": {"form"}, "policyTemplateId": {"device-control"},
		"applyingEventIds": {"dev-approve"}, "configuration": {`{"classification":"internal","label":"ops"}`}})))
	r = a.get("/policy/retrieve-policy/"+formID, u.Token)
	expect(t, r, 200)
	p = policyAnswer{}
	r.JSON(t, &p)
	if p.Configuration["classification"] != "internal" || p.Configuration["label"] != "ops" || len(p.Configuration) != 2 {
		t.Fatalf("form configuration %v", p.Configuration)
	}

	// A declared key keeps its type and bound.
	register := func(c map[string]any) *response {
		return a.postJSON("/policy/register", u.Token, map[string]any{"policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"},
			"configuration": c})
	}
	for _, bad := range []map[string]any{
		{"ballotMessage": 5, "classification": "secret"},
		{"ballotMessage": map[string]any{"text": "x"}},
		{"ballotMessage": strings.Repeat("x", 501)},
		{strings.Repeat("k", 129): "long key"},
		{"blob": strings.Repeat("x", 17<<10)},
	} {
		fieldErrors(t, register(bad), "configuration")
	}
	many := map[string]any{}
	for i := range 65 {
		many["k"+strings.Repeat("x", i)] = i
	}
	fieldErrors(t, register(many), "configuration")
	if n := len(a.policies(u, "registered")); n != 2 {
		t.Fatalf("%d policies after the refused ones, want 2", n)
	}
}
