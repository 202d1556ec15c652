package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	wireapi "github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/enginetest"
)

// Coherent reads at once across replicas (issue #14, point 5): each test
// warms replica B's caches first, then changes something on replica A and,
// as soon as A has acknowledged it, reads on B without waiting. The
// replicas trust their caches (the data-token rows, the auth cache, the
// device lists, the policy gate) before the test begins: A's change must
// reach B's caches before A acknowledges it (internal/coherence,
// docs/decisions.md "Caches in cluster mode"). "Acknowledged" is the ack
// on A's socket (acked).

// coherence is two replicas on one PostgreSQL and one NATS, a profile with
// a key and two storage devices, and a socket on B for the data events.
type coherence struct {
	a, b   *api
	c      *enginetest.Cluster
	u      *user
	onA    *socket // for the acks of the changes on A
	onB    *socket
	s1, s2 string // the storage devices' ids
}

func newCoherence(t *testing.T, name string) *coherence {
	c := enginetest.StartCluster(t, 2)
	h := &coherence{a: newAPI(t, c.Engines[0]), b: newAPI(t, c.Engines[1]), c: c}
	h.u = h.a.activeUser(name)
	h.s1, h.s2 = h.storage("s1"), h.storage("s2")
	h.onA, h.onB = join(t, c.Engines[0].WSURL, h.u.Token), join(t, c.Engines[1].WSURL, h.u.Token)
	trustingCaches(t, c)
	return h
}

// acked waits for the ack of the change id on A's socket (not a poll of its
// status, which may see the outcome while the replicas' caches are still
// being told: docs/decisions.md, "Caches in cluster mode") and fails unless
// it succeeded.
func (h *coherence) acked(id string) {
	h.a.t.Helper()
	if ack := h.onA.awaitAck(id); ack["command_status"] != float64(2) {
		h.a.t.Fatalf("the change's ack: %v", ack)
	}
}

// trustingCaches waits until every replica of c trusts its caches.
func trustingCaches(t *testing.T, c *enginetest.Cluster) {
	t.Helper()
	commandtest.EventuallyWithin(t, "every replica trusts its caches", 30*time.Second, func() bool {
		for _, e := range c.Engines {
			if !e.CachesTrusted() {
				return false
			}
		}
		return true
	})
}

// storage enrolls a storage device through A, starts it and returns its id.
func (h *coherence) storage(name string) string {
	h.a.t.Helper()
	id := h.a.approvedDevice(h.u, name)
	h.a.succeed(accepted(h.a.t, h.a.postJSON("/storage/register", h.u.Token, map[string]string{"deviceIdentifier": id})))
	h.a.startDevice(h.u, id, h.a.t.TempDir())
	return id
}

// TestReplicaReadsADataUpdateAtOnce: after update-data (a new payload) is
// acknowledged on A, a retrieval on B returns the new payload.
func TestReplicaReadsADataUpdateAtOnce(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	h := newCoherence(t, "update-data")
	old, _ := ciphertext(t, 64)
	dtk := h.a.store(h.u, "ctx", old)
	if got, _ := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, old) {
		t.Fatal("B's first read")
	}
	fresh, _ := ciphertext(t, 80)
	h.acked(accepted(t, h.a.postJSON("/data-token/update-data", h.u.Token, map[string]any{"dataToken": dtk, "data": base64.StdEncoding.EncodeToString(fresh)})))
	if got, ev := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, fresh) {
		t.Fatalf("after update-data on A, B reads %d bytes (want the new %d), event %v", len(got), len(fresh), ev)
	}
}

// TestReplicaReadsAMetaUpdateAtOnce: after update-data-token (the token's
// context and file name) is acknowledged on A, a retrieval on B carries
// the new context, and B lists the new file name.
func TestReplicaReadsAMetaUpdateAtOnce(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	h := newCoherence(t, "update-meta")
	wire, _ := ciphertext(t, 64)
	dtk := h.a.store(h.u, "before", wire)
	if got, ev := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, wire) || ev["data_context"] != "before" {
		t.Fatalf("B's first read: %d bytes, event %v", len(got), ev)
	}
	h.acked(accepted(t, h.a.postForm("/data-token/update-data-token", h.u.Token, url.Values{"token": {dtk}, "context": {"after"}, "fileName": {"renamed"}})))
	if got, ev := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, wire) || ev["data_context"] != "after" {
		t.Fatalf("after update-data-token on A, B reads %d bytes with context %v (want %q)", len(got), ev["data_context"], "after")
	}
	r := h.b.get("/data-token/list-data-tokens?filters%5Bmeta.file.fileName%5D=renamed", h.u.Token)
	expect(t, r, 200)
	var page wireapi.DataTokenPage
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].Token != dtk || page.Items[0].Context != "after" {
		t.Fatalf("after update-data-token on A, B lists %s", r.Body)
	}
}

// TestReplicaRefusesADeletedTokenAtOnce: after a delete is acknowledged on
// A, request-data on B is refused at once with the single engine's answer
// (404), not accepted and then failed on the devices.
func TestReplicaRefusesADeletedTokenAtOnce(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	h := newCoherence(t, "delete")
	wire, _ := ciphertext(t, 64)
	dtk := h.a.store(h.u, "doomed", wire)
	if got, _ := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatal("B's first read")
	}
	h.acked(accepted(t, h.a.postJSON("/data-token/delete-data", h.u.Token, map[string]string{"token": dtk})))
	expect(t, h.b.postJSON("/data-token/request-data", h.u.Token, map[string]string{"token": dtk}), 404)
	expect(t, h.b.postJSON("/data-token/delete-data", h.u.Token, map[string]string{"token": dtk}), 404)
}

// TestReplicaRefusesARevokedTokenAtOnce: a token B has just accepted, once
// revoked on A, is refused on B (401) at the very next request.
func TestReplicaRefusesARevokedTokenAtOnce(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	a, b := newAPI(t, c.Engines[0]), newAPI(t, c.Engines[1])
	u := a.activeUser("revoke")
	trustingCaches(t, c)
	token := b.login(u.Name, u.Password)
	expect(t, b.get("/profile/retrieve-profile-id", token), 200) // B has resolved it
	expect(t, a.postJSON("/profile/revoke-authorization-token", token, nil), 200)
	expect(t, b.get("/profile/retrieve-profile-id", token), 401)
	expect(t, a.get("/profile/retrieve-profile-id", token), 401)
	expect(t, b.get("/profile/retrieve-profile-id", u.Token), 200) // the profile's other token still works
}

// TestReplicaGatesTheCommandAfterAnActivation: once a policy's
// activation is acknowledged on A, the very first command it covers on B
// waits for the vote (the only voter says no, so the delete is rejected
// and the token stays readable); without the gate it would run at once.
func TestReplicaGatesTheCommandAfterAnActivation(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	h := newCoherence(t, "gate")
	no := h.a.voter(h.u, "no", authenticator.No)
	h.a.votingConfig(h.u, "deny", "unanimous", 0, no.ID)
	pol := h.a.policy(h.u, map[string]any{"name": "deny", "policyTemplateId": "data-protection", "applyingEventIds": []string{"dt-delete"},
		"configurationId": "deny"})
	wire, _ := ciphertext(t, 64)
	dtk := h.a.store(h.u, "guarded", wire)
	kept := h.a.store(h.u, "ungated", wire)
	// B runs an ungated delete first (its gate has now answered for the profile).
	h.b.succeed(accepted(t, h.b.postJSON("/data-token/delete-data", h.u.Token, map[string]string{"token": kept})))

	h.acked(accepted(t, h.a.postJSON("/policy/activate", h.u.Token, map[string]string{"policyId": pol})))
	del := accepted(t, h.b.postJSON("/data-token/delete-data", h.u.Token, map[string]string{"token": dtk}))
	h.b.rejected(del, "voting.rejected")
	if got, _ := h.b.retrieve(h.onB, h.u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatal("the delete ran ungated on B")
	}
}

// TestReplicaForgetsARemovedDeviceAtOnce: once a storage device's removal
// is acknowledged on A, B no longer lists it among the storage devices
// (the list its store fan-out writes to), and the bus no longer lets it in.
func TestReplicaForgetsARemovedDeviceAtOnce(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	h := newCoherence(t, "removal")
	listed := func(on *api) map[string]bool {
		t.Helper()
		r := on.get("/storage/list-storage-devices", h.u.Token)
		expect(t, r, 200)
		var list []wireapi.StorageDevice
		r.JSON(t, &list)
		out := map[string]bool{}
		for _, d := range list {
			out[d.DeviceIdentifier] = true
		}
		return out
	}
	wire, _ := ciphertext(t, 64)
	h.b.store(h.u, "both", wire) // B's fan-out has listed both devices
	if l := listed(h.b); !l[h.s1] || !l[h.s2] {
		t.Fatalf("B lists %v, want both devices", l)
	}
	bundle := h.a.bundle(h.u.Token, h.s2)

	h.acked(accepted(t, h.a.postJSON("/device/remove", h.u.Token, map[string]string{"deviceIdentifier": h.s2})))
	if l := listed(h.b); !l[h.s1] || l[h.s2] {
		t.Fatalf("after the removal on A, B lists %v", l)
	}
	devs, err := h.c.Engines[1].Storage.Devices(t.Context(), h.u.ID)
	if err != nil || len(devs) != 1 || devs[0].ID != h.s1 {
		t.Fatalf("after the removal on A, B's fan-out writes to %v (%v)", devs, err)
	}
	if _, err := connect(t, bundle, nil); err == nil {
		t.Fatal("a device removed on A still connects")
	}
	h.b.store(h.u, "one", wire)
}
