package fanout_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/fanout"
)

// stream sends b chunk by chunk to the profile's storage devices and
// returns the devices that took it, recording the blob as theirs.
func (r *rig) stream(b *blob) (acked, missed []string) {
	r.t.Helper()
	st, err := r.fan.OpenStream(r.ctx, r.profile, b.id)
	if err != nil {
		r.t.Fatal(err)
	}
	for seq, c := range b.chunks {
		st.Send(r.ctx, c, seq == len(b.chunks)-1)
	}
	return st.Acked(), st.Missed
}

// push stores a single blob on the profile's storage devices.
func (r *rig) push(b *blob) (acked, missed []string) {
	r.t.Helper()
	acked, missed, err := r.fan.Push(r.ctx, r.profile, b.id, b.sealed)
	if err != nil {
		r.t.Fatal(err)
	}
	return acked, missed
}

// What a storage device missed while offline is queued for it and
// delivered once it is back: the store is copied from a peer holding the
// blob, and recorded as the device's.
func TestOutboxDeliversWhatAnOfflineDeviceMissed(t *testing.T) {
	r := newRig(t)
	peers := r.storage(2)
	late := r.addDevice(r.profile, privicore.RoleStorage)
	b := r.sealBlob(3000)
	acked, missed := r.push(b)
	if !slices.Equal(missed, []string{late.ID}) {
		t.Fatalf("missed %v, want the offline device", missed)
	}
	r.record(b, acked...)
	r.queue(late.ID, b.id, fanout.OpStore)

	late.start() // its hello asks for the delivery
	eventually(t, "the outbox is delivered", func() bool { return len(r.queued(late.ID)) == 0 })
	if got := late.fetch(b.id); !bytes.Equal(got, b.sealed) {
		t.Fatal("the device's copy is not the blob")
	}
	if got := r.holders(b.id); !slices.Equal(got, ids(append(peers, late)...)) {
		t.Fatalf("holders %v, want every device", got)
	}

	// A queued delete reaches the device and drops the record.
	r.queue(late.ID, b.id, fanout.OpDelete)
	r.fan.Kick(late.ID)
	eventually(t, "the delete is delivered", func() bool { return len(r.queued(late.ID)) == 0 })
	if late.holds(b.id) {
		t.Fatal("the device still holds a deleted blob")
	}
	if got := r.holders(b.id); !slices.Equal(got, ids(peers...)) {
		t.Fatalf("holders %v after the delete, want %v", got, ids(peers...))
	}
}

// A device that missed a streamed payload is caught up chunk by chunk from
// a peer (copyChunks); a peer whose copy has a corrupted chunk is passed
// over for one with a valid copy, so the device never receives the bad one.
func TestOutboxCatchesUpAChunkedBlobFromAValidPeer(t *testing.T) {
	r := newRig(t)
	peers := r.storage(2)
	late := r.addDevice(r.profile, privicore.RoleStorage)
	b := r.sealChunks(5, 1500)
	acked, missed := r.stream(b)
	if !slices.Equal(missed, []string{late.ID}) || len(acked) != 2 {
		t.Fatalf("stream acked %v missed %v", acked, missed)
	}
	r.record(b, acked...)

	// The peer the catch-up asks first has a corrupted chunk 3.
	holders, err := r.fan.Holders(r.ctx, r.profile, b.id)
	if err != nil || len(holders) != 2 {
		t.Fatalf("holders %v, %v", holders, err)
	}
	first := peers[0]
	if holders[0] != first.ID {
		first = peers[1]
	}
	bad := slices.Clone(b.chunks)
	bad[3] = randomBytes(len(bad[3]))
	first.putChunks(b.id, bad)

	r.queue(late.ID, b.id, fanout.OpStore)
	late.start()
	eventually(t, "the outbox is delivered", func() bool { return len(r.queued(late.ID)) == 0 })
	if got := late.readChunks(b); !bytes.Equal(got, b.plain) {
		t.Fatal("the caught-up copy is not the payload")
	}
	if got := r.holders(b.id); !slices.Equal(got, ids(append(peers, late)...)) {
		t.Fatalf("holders %v, want every device", got)
	}
}

// Queued work that cannot be done stays or goes by its cause: a store whose
// only source copy is corrupted (single or chunked) is never copied and
// stays queued (a valid copy may come back); a store of a blob whose data
// token is gone meanwhile is dropped, as there is nothing to copy.
func TestOutboxNeverCopiesACorruptedSourceAndDropsAGoneBlob(t *testing.T) {
	r := newRig(t)
	peer := r.storage(1)[0]
	late := r.addDevice(r.profile, privicore.RoleStorage)

	single := r.sealBlob(1000)
	acked, _ := r.push(single)
	r.record(single, acked...)
	peer.put(single.id, randomBytes(len(single.sealed)))

	chunked := r.sealChunks(3, 1000)
	acked, _ = r.stream(chunked)
	r.record(chunked, acked...)
	bad := slices.Clone(chunked.chunks)
	bad[1] = randomBytes(len(bad[1]))
	peer.putChunks(chunked.id, bad)

	gone := r.sealBlob(1000)
	acked, _ = r.push(gone)
	tok := r.record(gone, acked...)
	r.write(func(q privicore.Queries) error { return q.DeleteDataToken(r.ctx, tok.ID) })

	// Oldest first: the two corrupted sources are tried before the gone one
	// in the same delivery round.
	r.queue(late.ID, single.id, fanout.OpStore)
	r.queue(late.ID, chunked.id, fanout.OpStore)
	r.queue(late.ID, gone.id, fanout.OpStore)
	late.start()
	eventually(t, "the gone blob's entry is dropped", func() bool { return len(r.queued(late.ID)) == 2 })
	if got, want := r.queued(late.ID), []string{"store " + single.id, "store " + chunked.id}; !slices.Equal(got, want) {
		t.Fatalf("queued %v, want %v", got, want)
	}
	for _, id := range []string{single.id, chunked.id} {
		if late.holds(id) {
			t.Fatalf("the device received blob %s from a corrupted source", id)
		}
		if slices.Contains(r.holders(id), late.ID) {
			t.Fatalf("blob %s is recorded on the device", id)
		}
	}
}

// The outbox of a device that no longer exists (removed) is dropped, every
// operation of it.
func TestOutboxOfARemovedDeviceIsDropped(t *testing.T) {
	r := newRig(t)
	r.storage(1)
	removed := r.addDevice(r.profile, privicore.RoleStorage)
	b := r.sealBlob(1000)
	acked, _ := r.push(b)
	r.record(b, acked...)
	r.queue(removed.ID, b.id, fanout.OpStore)
	r.queue(removed.ID, "BLOBGONE", fanout.OpDelete)
	r.write(func(q privicore.Queries) error { return q.DeleteDevice(r.ctx, removed.ID) })

	r.fan.Kick(removed.ID)
	eventually(t, "the removed device's outbox is dropped", func() bool { return len(r.queued(removed.ID)) == 0 })
}
