package httpapi_test

import (
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// TestReplicasRunOneProfilesCommandsOnceInOrder: commands of one profile
// submitted alternately on two replicas of one database (each answered 202
// before the next is sent) all succeed, once each, in acceptance order: the
// public key the profile ends with is the last one registered, read on
// either replica.
func TestReplicasRunOneProfilesCommandsOnceInOrder(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	apis := []*api{newAPI(t, c.Engines[0]), newAPI(t, c.Engines[1])}
	u := apis[0].activeUser("ordered")
	tokens := []string{u.Token, apis[1].login(u.Name, u.Password)}
	const n = 20
	var ids, pubs []string
	for i := range n {
		priv, err := keys.Generate()
		if err != nil {
			t.Fatal(err)
		}
		pub := keys.SignedPublic(priv)
		a := apis[i%2]
		ids = append(ids, accepted(t, a.postJSON("/public-key/register-public-key", tokens[i%2], map[string]string{"publicKey": pub})))
		pubs = append(pubs, pub)
	}
	for i, id := range ids {
		apis[(i+1)%2].succeed(id) // its status, read on the other replica
	}
	var commands int
	if err := c.Engines[0].Store.SQL().QueryRow(`SELECT COUNT(*) FROM commands WHERE profile_id = $1 AND type = 'publickey.register'`, u.ID).Scan(&commands); err != nil {
		t.Fatal(err)
	}
	if commands != n+1 {
		t.Fatalf("%d register-public-key commands recorded, want %d", commands, n+1)
	}
	for i, a := range apis {
		r := a.get("/public-key/retrieve-public-key", a.login(u.Name, u.Password))
		expect(t, r, 200)
		if got, _ := r.Map(t)["publicKey"].(string); got != pubs[n-1] {
			t.Fatalf("replica %d reads public key %q, want the last registered %q", i, got, pubs[n-1])
		}
	}
}
