package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// enrollVoter registers an authenticator device of u without running it
// (startVoter runs it, on any replica's bundle).
func (a *api) enrollVoter(u *user, name string) (string, *ecdh.PrivateKey) {
	a.t.Helper()
	_, id := a.requestDevice(u.Token, name)
	priv, _ := keys.Generate()
	a.succeed(accepted(a.t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": keys.SignedPublic(priv), "deviceIdentifier": id})))
	a.succeed(accepted(a.t, a.postForm("/device/approve-device", u.Token, url.Values{"deviceIdentifier": {id}})))
	a.succeed(accepted(a.t, a.postJSON("/verified-authenticator/register", u.Token, map[string]string{"deviceIdentifier": id})))
	return id, priv
}

// startVoter runs the enrolled authenticator id of u, answering d.
func (a *api) startVoter(u *user, id string, priv *ecdh.PrivateKey, d authenticator.Decision) {
	a.t.Helper()
	auth, err := authenticator.Start(authenticator.Config{Bundle: a.bundle(u.Token, id), Key: priv,
		Decide: func(context.Context, protocol.Ballot) authenticator.Decision { return d }})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(auth.Close)
}

// heldExchangeOnStoppedReplica sets up a profile with a storage device and
// a policy on exchanges voted by one authenticator (enrolled, not running),
// has replica A accept an exchange of wire, waits until the vote holds it
// with its push recorded, and stops A. It returns B's api, the user, the
// reservation's temporary token, the exchange's command id and the
// authenticator.
func heldExchangeOnStoppedReplica(t *testing.T, c *enginetest.Cluster, wire []byte) (*api, *user, string, string, string, *ecdh.PrivateKey, *storagedevice.Device) {
	t.Helper()
	a, b := newAPI(t, c.Engines[0]), newAPI(t, c.Engines[1])
	u := a.activeUser("staging")
	dev := a.storageDevice(u, "s1")
	voter, priv := a.enrollVoter(u, "voter")
	a.votingConfig(u, "vote", "unanimous", 0, voter)
	pol := a.policy(u, map[string]any{"name": "vote", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-exchange"}, "configurationId": "vote"})
	a.succeed(accepted(t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": pol})))
	tmp := a.reserve(u.Token, "staged", 0)
	ex := a.exchange(u.Token, tmp, wire)
	store := c.Engines[0].Store
	commandtest.Eventually(t, "the vote holds the exchange, its push recorded", func() bool {
		cmd, err := store.FindCommand(context.Background(), ex)
		return err == nil && cmd.Held && len(cmd.Staged) > 0
	})
	c.Engines[0].Stop()
	return b, u, tmp, ex, voter, priv, dev
}

// TestHeldExchangeSurvivesItsReplica: an exchange that a vote holds on
// replica A, stopped before the vote ends, is applied by replica B once
// the (only now started) authenticator approves, with the push A made: the
// token reads back byte-exact through B.
func TestHeldExchangeSurvivesItsReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	wire, _ := ciphertext(t, 3000)
	b, u, tmp, ex, voter, priv, _ := heldExchangeOnStoppedReplica(t, c, wire)
	b.startVoter(u, voter, priv, authenticator.Yes)
	if got := b.succeed(ex); got != tmp {
		t.Fatalf("exchange ack body %q, want the temporary token %q", got, tmp)
	}
	r := b.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": tmp, "fileName": "f", "extension": "bin", "context": "staged", "size": len(wire), "path": "/x"})
	expect(t, r, 200)
	dtk, _ := r.Map(t)["token"].(string)
	if !strings.HasPrefix(dtk, "dtk-") {
		t.Fatalf("configure-file-meta: %s", r.Body)
	}
	if got, ev := b.retrieve(join(t, c.Engines[1].WSURL, u.Token), u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatalf("read back through B: %d bytes, want the %d exchanged (%v)", len(got), len(wire), ev)
	}
}

// TestRejectedHeldExchangeRemovesItsPush: the same exchange, the vote
// rejecting it on B, is rejected and the blob A pushed is queued for
// removal from the device that wrote it (offline by then, so that the
// removal stays queued); the reservation stays empty.
func TestRejectedHeldExchangeRemovesItsPush(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	wire, _ := ciphertext(t, 100)
	b, u, tmp, ex, voter, priv, dev := heldExchangeOnStoppedReplica(t, c, wire)
	dev.Close()
	store := c.Engines[1].Store
	cmd, err := store.FindCommand(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	var blob string
	if err := store.SQL().QueryRow(`SELECT staged::json->>'blob' FROM commands WHERE id = $1`, cmd.ID).Scan(&blob); err != nil || blob == "" {
		t.Fatalf("staged blob %q (%v)", blob, err)
	}
	b.startVoter(u, voter, priv, authenticator.No)
	b.rejected(ex, "voting.rejected")
	var deletes int
	if err := store.SQL().QueryRow(`SELECT COUNT(*) FROM device_outbox WHERE blob_id = $1 AND op = $2`, blob, fanout.OpDelete).Scan(&deletes); err != nil || deletes != 1 {
		t.Fatalf("%d removals of the rejected exchange's blob queued, want 1 (%v)", deletes, err)
	}
	tok, err := store.FindDataToken(context.Background(), u.ID, tmp)
	if err != nil || tok.BlobID != "" || tok.State != privicore.TokenReserved {
		t.Fatalf("the reservation after a rejected exchange: %+v (%v)", tok, err)
	}
}

// TestHeldUpdateSurvivesItsReplica: a new payload for a token (update-data)
// that a vote holds on replica A, stopped before the vote ends, is applied
// by replica B once the authenticator approves: the token reads the new
// payload through B.
func TestHeldUpdateSurvivesItsReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	a, b := newAPI(t, c.Engines[0]), newAPI(t, c.Engines[1])
	u := a.activeUser("staged-update")
	a.storageDevice(u, "s1")
	old, _ := ciphertext(t, 200)
	dtk := a.store(u, "staged", old)
	voter, priv := a.enrollVoter(u, "voter")
	a.votingConfig(u, "vote", "unanimous", 0, voter)
	pol := a.policy(u, map[string]any{"name": "vote", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-update"}, "configurationId": "vote"})
	a.succeed(accepted(t, a.postJSON("/policy/activate", u.Token, map[string]string{"policyId": pol})))
	fresh, _ := ciphertext(t, 300)
	up := accepted(t, a.postJSON("/data-token/update-data", u.Token, map[string]any{"dataToken": dtk, "data": base64.StdEncoding.EncodeToString(fresh)}))
	commandtest.Eventually(t, "the vote holds the update, its push recorded", func() bool {
		cmd, err := c.Engines[0].Store.FindCommand(context.Background(), up)
		return err == nil && cmd.Held && len(cmd.Staged) > 0
	})
	c.Engines[0].Stop()
	b.startVoter(u, voter, priv, authenticator.Yes)
	b.succeed(up)
	if got, ev := b.retrieve(join(t, c.Engines[1].WSURL, u.Token), u.Token, dtk); !bytes.Equal(got, fresh) {
		t.Fatalf("read through B after the update: %d bytes, want the %d of the new payload (%v)", len(got), len(fresh), ev)
	}
}
