package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/privicore/privicore/api"
)

// TestVotingInstantsAreWrittenAsTheSpecShowsThem: every instant of the
// voting shapes is UTC to the second with a numeric offset, zero fields
// are written (a record shows them all), and the instants read back.
func TestVotingInstantsAreWrittenAsTheSpecShowsThem(t *testing.T) {
	at := time.Date(2026, 2, 21, 16, 33, 44, 123456789, time.FixedZone("CET", 3600))
	const want = "2026-02-21T15:33:44+00:00"
	for name, tc := range map[string]struct {
		v      any
		fields []string // the instants
		zero   []string // zero fields that must still be written
	}{
		"configuration": {api.VotingConfiguration{ID: "c", CreatedAt: at, UpdatedAt: at}, []string{"createdAt", "updatedAt"}, []string{"percentageRequired", "timeLimit", "name"}},
		"policy":        {api.Policy{ID: "p", CreatedAt: at}, []string{"createdAt"}, []string{"active", "configurationId", "events"}},
		"pool status":   {api.PoolStatus{PoolID: "p", ExpiresAt: at}, []string{"expiresAt"}, []string{"secondsLeft", "percentageRequired", "nonce"}},
		"pool answer":   {api.PoolAnswer{DeviceIdentifier: "d", At: at}, []string{"at"}, []string{"vote"}},
		"pool opened":   {api.PoolOpened{Type: api.EventPoolOpened, ExpiresAt: at}, []string{"expiresAt"}, []string{"attempt", "event"}},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range tc.fields {
			if m[f] != want {
				t.Errorf("%s: %s is %v, want %s (%s)", name, f, m[f], want, b)
			}
		}
		for _, f := range tc.zero {
			if _, ok := m[f]; !ok {
				t.Errorf("%s: zero field %s not written (%s)", name, f, b)
			}
		}
	}
	var ps api.PoolStatus
	if err := json.Unmarshal([]byte(`{"poolId":"p","expiresAt":"`+want+`","answers":[{"deviceIdentifier":"d","vote":"yes","at":"`+want+`"}]}`), &ps); err != nil {
		t.Fatal(err)
	}
	if !ps.ExpiresAt.Equal(at.Truncate(time.Second)) || len(ps.Answers) != 1 || !ps.Answers[0].At.Equal(at.Truncate(time.Second)) {
		t.Errorf("read back: %+v", ps)
	}
}
