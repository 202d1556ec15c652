package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// riskOf returns the stored information_security_risk of dtk, as listed.
func (a *api) riskOf(token, dtk string) map[string]any {
	a.t.Helper()
	r := a.get("/data-token/list-data-tokens?filters[token]="+url.QueryEscape(dtk), token)
	expect(a.t, r, http.StatusOK)
	var list struct{ Items []map[string]any }
	r.JSON(a.t, &list)
	if len(list.Items) != 1 {
		a.t.Fatalf("listing %s: %s", dtk, r.Body)
	}
	meta, _ := list.Items[0]["meta"].(map[string]any)
	risk, _ := meta["information_security_risk"].(map[string]any)
	return risk
}

// TestRiskMetaOptionalFields (issue #12 A.4): only token and classification
// are required; label, handling, retentionDays (an integer ≥ 0) and other
// fields are optional and stored; a documented field of the wrong type is
// still 422.
func TestRiskMetaOptionalFields(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("risk")
	a.storageDevice(u, "s1")
	wire, _ := ciphertext(t, 100)
	dtk := a.store(u, "risk", wire)
	const path = "/data-token/configure-information-security-risk-meta"

	a.succeed(accepted(t, a.postJSON(path, u.Token, map[string]any{"token": dtk, "classification": "internal"})))
	if risk := a.riskOf(u.Token, dtk); risk["classification"] != "internal" || len(risk) != 1 {
		t.Fatalf("classification only: %v", risk)
	}

	a.succeed(accepted(t, a.postJSON(path, u.Token, map[string]any{"token": dtk, "classification": "secret", "label": "L", "handling": "H",
		"retentionDays": 30, "owner": "ops"})))
	risk := a.riskOf(u.Token, dtk)
	if risk["classification"] != "secret" || risk["label"] != "L" || risk["handling"] != "H" || risk["retentionDays"] != float64(30) || risk["owner"] != "ops" {
		t.Fatalf("all fields: %v", risk)
	}

	// A form sends retentionDays as text: stored as the integer.
	a.succeed(accepted(t, a.postForm(path, u.Token, url.Values{"token": {dtk}, "classification": {"public"}, "retentionDays": {"0"}})))
	if risk := a.riskOf(u.Token, dtk); risk["classification"] != "public" || risk["retentionDays"] != float64(0) {
		t.Fatalf("form: %v", risk)
	}

	for _, bad := range []struct {
		field string
		body  map[string]any
	}{
		{"classification", map[string]any{"token": dtk}},
		{"classification", map[string]any{"token": dtk, "classification": ""}},
		{"classification", map[string]any{"token": dtk, "classification": 3}},
		{"label", map[string]any{"token": dtk, "classification": "c", "label": 3}},
		{"handling", map[string]any{"token": dtk, "classification": "c", "handling": []string{"x"}}},
		{"retentionDays", map[string]any{"token": dtk, "classification": "c", "retentionDays": -1}},
		{"retentionDays", map[string]any{"token": dtk, "classification": "c", "retentionDays": 1.5}},
		{"retentionDays", map[string]any{"token": dtk, "classification": "c", "retentionDays": "ten"}},
	} {
		r := a.postJSON(path, u.Token, bad.body)
		expect(t, r, http.StatusUnprocessableEntity)
		var v struct{ Errors map[string][]string }
		r.JSON(t, &v)
		if len(v.Errors[bad.field]) == 0 {
			t.Errorf("%v: errors %v, want %s", bad.body, v.Errors, bad.field)
		}
	}
	if risk := a.riskOf(u.Token, dtk); risk["classification"] != "public" {
		t.Fatalf("a refused change was applied: %v", risk)
	}
}
