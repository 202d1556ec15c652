package fanout_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/fanout"
)

// Synchronizing a device copies to it every stored blob of its profile it
// lacks, single or chunked, from a peer with a valid copy; a blob it
// already holds is recorded as its; a blob no peer has a valid copy of is
// counted as failed.
func TestSyncCopiesWhatADeviceLacks(t *testing.T) {
	r := newRig(t)
	peers := r.storage(2)
	late := r.addDevice(r.profile, privicore.RoleStorage)

	single := r.sealBlob(2000)
	acked, _ := r.push(single)
	r.record(single, acked...)
	chunked := r.sealChunks(4, 1000)
	acked, _ = r.stream(chunked)
	r.record(chunked, acked...)
	held := r.sealBlob(500)
	acked, _ = r.push(held)
	r.record(held, acked...)
	corrupt := r.sealBlob(700) // only one peer, with a corrupted copy
	peers[0].put(corrupt.id, randomBytes(len(corrupt.sealed)))
	r.record(corrupt, peers[0].ID)

	late.start()
	late.put(held.id, held.sealed) // it has this one already, unrecorded
	dev, err := r.store.FindDevice(r.ctx, r.profile, late.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.fan.Sync(r.ctx, dev)
	if err != nil || res != (api.SyncResult{Copied: 2, Failed: 1}) {
		t.Fatalf("sync %+v, %v; want 2 copied, 1 failed", res, err)
	}
	if got := late.fetch(single.id); !bytes.Equal(got, single.sealed) {
		t.Fatal("the synchronized single blob differs")
	}
	if got := late.readChunks(chunked); !bytes.Equal(got, chunked.plain) {
		t.Fatal("the synchronized chunked blob differs")
	}
	for _, b := range []*blob{single, chunked, held} {
		if got := r.holders(b.id); !slices.Equal(got, ids(append(peers, late)...)) {
			t.Fatalf("holders of %s: %v, want every device", b.id, got)
		}
	}
	if late.holds(corrupt.id) || slices.Contains(r.holders(corrupt.id), late.ID) {
		t.Fatal("the corrupted copy was synchronized")
	}
}

// The storage.sync command acts only on one of the caller's storage
// devices, online: another profile's device is a missing one.
func TestSyncCommandRules(t *testing.T) {
	r := newRig(t)
	dev := r.storage(1)[0]
	offline := r.addDevice(r.profile, privicore.RoleStorage)
	auth := r.addDevice(r.profile, privicore.RoleAuthenticator)
	foreign := newRigDevice(r, "profile-b")

	sync := func(deviceID string) (any, error) {
		payload, _ := json.Marshal(fanout.SyncPayload(deviceID))
		return r.fan.SyncCommand(r.ctx, &privicore.Command{ID: "c-" + deviceID, ProfileID: r.profile, Type: fanout.CmdSync, Payload: payload})
	}
	for _, c := range []struct{ device, reason string }{
		{foreign.ID, "device.not_found"},
		{"00000000-0000-4000-8000-999999999999", "device.not_found"},
		{auth.ID, "device.role_not_held"},
		{offline.ID, fanout.ReasonDeviceOffline},
	} {
		if body, err := sync(c.device); privicore.ErrorReason(err) != c.reason {
			t.Errorf("sync of %s: %v, %v; want %s", c.device, body, err, c.reason)
		}
	}
	body, err := sync(dev.ID)
	if err != nil || body != `{"copied":0,"failed":0}` {
		t.Fatalf("sync of the caller's device: %v, %v", body, err)
	}
}
