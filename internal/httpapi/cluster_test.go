package httpapi_test

import (
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// TestReplicasShareProfilesAndKeys runs two replicas on one PostgreSQL and
// one NATS (enginetest.StartCluster): they publish one engine key, and a
// profile registered on one logs in and works on the other.
func TestReplicasShareProfilesAndKeys(t *testing.T) {
	c := enginetest.StartCluster(t, 2)
	if c.Engines[0].EngineKey != c.Engines[1].EngineKey {
		t.Fatal("the replicas publish different engine keys")
	}
	a, b := newAPI(t, c.Engines[0]), newAPI(t, c.Engines[1])
	u := a.activeUser("replicas")
	token := b.login(u.Name, u.Password)
	r := b.get("/public-key/retrieve-public-key", token)
	expect(t, r, 200)
	if got, _ := r.Map(t)["publicKey"].(string); got != u.Key {
		t.Fatalf("replica B reads the public key %q, want %q (%s)", got, u.Key, r.Body)
	}
}
