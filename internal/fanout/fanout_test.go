package fanout_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/fanout"
)

// A store reaches every online storage device of the profile: those that
// wrote it durably are acked (the count the data token service holds
// against its minimum), an offline one is missed (its outbox catches it up
// later), and no storage device at all is a rejection.
func TestPushAcksTheOnlineDevicesAndMissesTheOffline(t *testing.T) {
	r := newRig(t)
	b := r.sealBlob(1000)
	if _, _, err := r.fan.Push(r.ctx, r.profile, b.id, b.sealed); privicore.ErrorReason(err) != fanout.ReasonNoDevices {
		t.Fatalf("push without storage devices: %v, want %s", err, fanout.ReasonNoDevices)
	}

	online := r.storage(2)
	offline := r.addDevice(r.profile, privicore.RoleStorage)
	r.addDevice(r.profile, privicore.RoleAuthenticator) // not a storage device: not asked
	other := newRigDevice(r, "profile-b")               // another profile's storage device: not asked

	acked, missed, err := r.fan.Push(r.ctx, r.profile, b.id, b.sealed)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(acked)
	if !slices.Equal(acked, ids(online...)) || !slices.Equal(missed, []string{offline.ID}) {
		t.Fatalf("acked %v missed %v; want acked %v missed [%s]", acked, missed, ids(online...), offline.ID)
	}
	for _, d := range online {
		if !d.holds(b.id) {
			t.Fatalf("acked device %s does not hold the blob", d.ID)
		}
	}
	if other.holds(b.id) {
		t.Fatal("another profile's device got the blob")
	}
}

// newRigDevice starts a storage device of another profile.
func newRigDevice(r *rig, profileID string) *storageDevice {
	r.createProfile(profileID)
	d := r.addDevice(profileID, privicore.RoleStorage)
	saved := r.profile
	r.profile = profileID
	d.start()
	r.profile = saved
	return d
}

// A read is served from a device whose copy is valid: a device returning a
// corrupted copy (intact on its disk, but not the blob layer 2 sealed) or
// none at all does not fail it, and the corrupted copy is never served.
func TestFetchFallsThroughACorruptedCopy(t *testing.T) {
	r := newRig(t)
	devs := r.storage(3)
	b := r.sealBlob(2000)
	if _, _, err := r.fan.Push(r.ctx, r.profile, b.id, b.sealed); err != nil {
		t.Fatal(err)
	}
	r.record(b, ids(devs...)...)
	devs[0].put(b.id, append(bytes.Clone(b.sealed[:len(b.sealed)-1]), b.sealed[len(b.sealed)-1]^1))
	devs[1].put(b.id, randomBytes(len(b.sealed)))

	valid := func(data []byte) bool { return r.valid.ValidBlob(b.id, data) }
	for range 20 { // the device asked first is random: each of them, all but surely
		got, err := r.fan.Fetch(r.ctx, r.profile, b.id, valid)
		if err != nil || !bytes.Equal(got, b.sealed) {
			t.Fatalf("fetch with one valid copy left: %d bytes, %v", len(got), err)
		}
	}

	// No valid copy anywhere: the read fails rather than serve a corrupted one.
	devs[2].put(b.id, randomBytes(len(b.sealed)))
	if got, err := r.fan.Fetch(r.ctx, r.profile, b.id, valid); privicore.ErrorReason(err) != fanout.ReasonReadFailed {
		t.Fatalf("fetch with corrupted copies only: %d bytes, %v; want %s", len(got), err, fanout.ReasonReadFailed)
	}
}

// A streamed payload goes to every device chunk by chunk, and is read back
// chunk by chunk: a device returning a corrupted chunk is replaced by
// another holder from that chunk on.
func TestReadChunksFallsThroughACorruptedChunk(t *testing.T) {
	r := newRig(t)
	devs := r.storage(2)
	b := r.sealChunks(4, 1000)
	st, err := r.fan.OpenStream(r.ctx, r.profile, b.id)
	if err != nil {
		t.Fatal(err)
	}
	for seq, c := range b.chunks {
		st.Send(r.ctx, c, seq == len(b.chunks)-1)
	}
	if acked := slices.Sorted(slices.Values(st.Acked())); !slices.Equal(acked, ids(devs...)) || len(st.Missed) != 0 {
		t.Fatalf("stream acked %v missed %v", acked, st.Missed)
	}
	r.record(b, ids(devs...)...)

	// Device 0's copy differs from chunk 2 on; ReadChunks asks the holders in order.
	bad := slices.Clone(b.chunks)
	bad[2] = randomBytes(len(bad[2]))
	holders, _ := r.fan.Holders(r.ctx, r.profile, b.id)
	first := devs[0]
	if holders[0] != first.ID {
		first = devs[1]
	}
	first.putChunks(b.id, bad)

	var got []byte
	err = r.fan.ReadChunks(r.ctx, r.profile, b.id, len(b.chunks), func(seq int, data []byte) ([]byte, error) {
		return r.sealer.OpenChunk(b.id, b.wrapped, seq, data)
	}, func(p []byte) error { got = append(got, p...); return nil })
	if err != nil || !bytes.Equal(got, b.plain) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(b.plain), err)
	}
}
