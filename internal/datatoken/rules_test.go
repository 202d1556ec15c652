package datatoken_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/fanout"
)

// age makes the reservation with temporary token tmp expired.
func (w *world) age(tmp string) {
	w.t.Helper()
	if _, err := w.e.Store.Exec(ctx, `UPDATE data_tokens SET expires_at = ? WHERE temp_token = ?`, time.Now().Add(-time.Second).UnixNano(), tmp); err != nil {
		w.t.Fatal(err)
	}
}

// blobOf is the blob id a data command's payload names.
func blobOf(t *testing.T, c *privicore.Command) string {
	var p struct {
		BlobID string `json:"blobId"`
	}
	if err := json.Unmarshal(c.Payload, &p); err != nil || p.BlobID == "" {
		t.Fatalf("no blob in %s", c.Payload)
	}
	return p.BlobID
}

// A reservation serves one exchange: a second one is
// datatoken.reservation_used, and its temporary token is no longer handed
// out. Past its ttl it is datatoken.reservation_expired.
func TestReservationIsSingleUseAndExpires(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	u.device("s1")
	dt := w.e.DataTokens

	cmd, tmp := w.reserve(u, 0)
	w.succeed(dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40))))
	w.rejected(datatoken.ReasonReservationUsed)(dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40))))
	if _, _, err := dt.TemporaryToken(ctx, u.ID, cmd); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("temporary token of a used reservation: %v", err)
	}

	cmd, tmp = w.reserve(u, 1)
	w.age(tmp)
	if _, _, err := dt.TemporaryToken(ctx, u.ID, cmd); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("temporary token of an expired reservation: %v", err)
	}
	w.rejected(datatoken.ReasonReservationExpired)(dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40))))
	if got := w.token(u, tmp); got.State != privicore.TokenReserved || got.BlobID != "" {
		t.Fatalf("expired reservation changed: %+v", got)
	}
}

// An exchange succeeds only once MinAcks devices wrote the blob; when too
// few did, it is rejected storage.write_failed, the reservation stays open,
// and the blob's removal is queued on the devices that did write it.
func TestExchangeNeedsMinAcksAndCompensates(t *testing.T) {
	w := newWorld(t, func(c *engine.Config) { c.MinAcks = 2 })
	u := w.owner("u")
	d1, id1, _ := u.device("s1")
	dt := w.e.DataTokens

	_, tmp := w.reserve(u, 0)
	c, err := dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40)))
	w.rejected(fanout.ReasonWriteFailed)(c, err)
	blob := blobOf(t, c)
	if got := w.token(u, tmp); got.State != privicore.TokenReserved {
		t.Fatalf("a rejected exchange filled the reservation: %+v", got)
	}
	if holders, _ := w.e.Store.BlobHolders(ctx, blob); len(holders) != 0 {
		t.Fatalf("a rejected exchange recorded holders %v", holders)
	}
	// The one device that wrote it is told to remove it (compensation):
	// queued, then delivered.
	w.e.Storage.Kick(id1)
	eventually(t, "the rejected exchange's blob leaves the device", func() bool {
		have, err := d1.List()
		return err == nil && !slices.Contains(have, blob)
	})

	u.device("s2")
	c, err = dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40)))
	w.succeed(c, err)
	if holders, _ := w.e.Store.BlobHolders(ctx, blobOf(t, c)); len(holders) != 2 {
		t.Fatalf("holders %v, want both devices", holders)
	}
}

// A payload pushed again (the queued path after an inline attempt out of
// time, a retry) is the same sealed blob under the same wrapped key: the
// copy a device kept from the first push opens with the key the second
// one's Apply records.
func TestPushedAgainIsSealedOnce(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	u.device("s1")
	plain := wire(t, 40)
	first, second, err := w.e.DataTokens.PushAgain(ctx, u.ID, "blob-again", plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("the second push of one payload sealed it under another key")
	}
	got, err := w.e.DataTokens.ReadPayload(ctx, &privicore.DataToken{ProfileID: u.ID, BlobID: "blob-again", WrappedKey: second, Size: int64(len(plain))})
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read with the second push's key: %d bytes, %v", len(got), err)
	}
}

// A rejected exchange also queues the blob's removal on the devices that
// missed the push: one that timed out may have written it all the same (an
// offline device stands in for it here), and a removal of a blob a device
// never held is harmless.
func TestRejectedExchangeRemovesItsBlobFromMissedDevices(t *testing.T) {
	w := newWorld(t, func(c *engine.Config) { c.MinAcks = 2 })
	u := w.owner("u")
	_, id1, _ := u.device("s1")
	d2, id2, _ := u.device("s2")
	d2.Close()
	u.waitOffline(id2)

	_, tmp := w.reserve(u, 0)
	c, err := w.e.DataTokens.Exchange(ctx, u.ID, tmp, b64(wire(t, 40)))
	w.rejected(fanout.ReasonWriteFailed)(c, err)
	blob := blobOf(t, c)
	for _, id := range []string{id1, id2} { // the one that wrote it, the one that missed it
		queued, err := w.e.Store.Outbox(ctx, id, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(queued, func(e privicore.OutboxEntry) bool { return e.BlobID == blob && e.Op == fanout.OpDelete }) {
			t.Fatalf("outbox of device %s: %+v, want the blob's removal", id, queued)
		}
	}
}

// Another profile's token behaves as a missing one for every operation:
// request, update, meta, risk, delete, file meta, the reservation's
// temporary token and the exchange into it.
func TestAnotherProfilesTokenIsMissing(t *testing.T) {
	w := newWorld(t)
	u, other := w.owner("u"), w.owner("other")
	u.device("s1")
	other.device("s2")
	dt := w.e.DataTokens
	dtk := w.store(u, wire(t, 40))
	cmd, tmp := w.reserve(u, 0)

	missing := func(what string, err error) {
		t.Helper()
		if privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("%s of another profile's token: %v, want ENOTFOUND", what, err)
		}
	}
	_, _, err := dt.RequestData(ctx, other.ID, dtk)
	missing("request", err)
	_, err = dt.Update(ctx, other.ID, dtk, b64(wire(t, 40)), nil)
	missing("update", err)
	_, err = dt.UpdateMeta(ctx, other.ID, datatoken.MetaUpdate{Token: dtk})
	missing("meta", err)
	_, err = dt.ConfigureRisk(ctx, other.ID, dtk, map[string]any{"classification": "secret"})
	missing("risk", err)
	_, err = dt.Delete(ctx, other.ID, dtk)
	missing("delete", err)
	_, err = dt.ConfigureFileMeta(ctx, other.ID, datatokenFileMeta(tmp))
	missing("file meta", err)
	_, _, err = dt.TemporaryToken(ctx, other.ID, cmd)
	missing("temporary token", err)
	w.rejected(datatoken.ReasonReservationNotFound)(dt.Exchange(ctx, other.ID, tmp, b64(wire(t, 40))))

	// The owner's token is untouched and still readable.
	if got := w.token(u, tmp); got.State != privicore.TokenReserved {
		t.Fatalf("reservation %+v", got)
	}
	w.succeed(func() (*privicore.Command, error) { c, _, err := dt.RequestData(ctx, u.ID, dtk); return c, err }())
}

// An update with data replaces the payload: the token names the new blob,
// the devices hold it, and the old blob is forgotten (removed from every
// device that held it). Meta objects given replace the stored ones.
func TestUpdateReplacesThePayloadAndForgetsTheOldBlob(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	d, _, _ := u.device("s1")
	dt := w.e.DataTokens
	first := wire(t, 40)
	dtk := w.store(u, first)
	old := w.token(u, dtk)

	second := wire(t, 50)
	w.succeed(dt.Update(ctx, u.ID, dtk, b64(second), map[string]any{"data": map[string]any{"type": "note"}}))
	now := w.token(u, dtk)
	if now.BlobID == old.BlobID || now.Size != int64(len(second)) {
		t.Fatalf("after update: blob %s size %d (before %s)", now.BlobID, now.Size, old.BlobID)
	}
	if data, _ := now.Meta["data"].(map[string]any); data["type"] != "note" {
		t.Fatalf("meta %v", now.Meta)
	}
	got, err := dt.ReadPayload(ctx, now)
	if err != nil || string(got) != string(second) {
		t.Fatalf("read after update: %d bytes, %v", len(got), err)
	}
	eventually(t, "the old blob leaves the device", func() bool {
		have, err := d.List()
		holders, herr := w.e.Store.BlobHolders(ctx, old.BlobID)
		return err == nil && herr == nil && !slices.Contains(have, old.BlobID) && slices.Contains(have, now.BlobID) && len(holders) == 0
	})
}

// File meta makes a token permanent once; metadata updates change only
// the fields given; the risk meta needs a classification and types its
// documented fields.
func TestMetaAndRiskRules(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	u.device("s1")
	dt := w.e.DataTokens

	_, tmp := w.reserve(u, 0)
	if _, err := dt.ConfigureFileMeta(ctx, u.ID, datatokenFileMeta(tmp)); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("file meta before the exchange: %v, want ECONFLICT", err)
	}
	w.succeed(dt.Exchange(ctx, u.ID, tmp, b64(wire(t, 40))))
	dtk, err := dt.ConfigureFileMeta(ctx, u.ID, datatokenFileMeta(tmp))
	if err != nil {
		t.Fatal(err)
	}
	again, err := dt.ConfigureFileMeta(ctx, u.ID, datatoken.FileMeta{Token: tmp, FileName: "g", Path: "/y"})
	if err != nil || again != dtk {
		t.Fatalf("file meta again: %q %v, want the same token %q", again, err, dtk)
	}

	name := "renamed"
	w.succeed(dt.UpdateMeta(ctx, u.ID, datatoken.MetaUpdate{Token: dtk, FileName: &name}))
	file, _ := w.token(u, dtk).Meta["file"].(map[string]any)
	if file["fileName"] != "renamed" || file["extension"] != "" || file["path"] != "/y" {
		t.Fatalf("file meta after update %v", file)
	}
	empty := ""
	if _, err := dt.UpdateMeta(ctx, u.ID, datatoken.MetaUpdate{Token: dtk, Context: &empty}); privicore.ErrorCode(err) != privicore.EINVALID {
		t.Fatalf("empty context: %v", err)
	}

	for _, bad := range []map[string]any{{}, {"classification": ""}, {"classification": 3}, {"classification": "x", "label": 1},
		{"classification": "x", "retentionDays": "-1"}, {"classification": "x", "retentionDays": "soon"}} {
		if _, err := dt.ConfigureRisk(ctx, u.ID, dtk, bad); privicore.ErrorCode(err) != privicore.EINVALID {
			t.Fatalf("risk %v: %v, want EINVALID", bad, err)
		}
	}
	w.succeed(dt.ConfigureRisk(ctx, u.ID, dtk, map[string]any{"classification": "secret", "retentionDays": "30", "extra": "kept"}))
	risk, _ := w.token(u, dtk).Meta["information_security_risk"].(map[string]any)
	if risk["classification"] != "secret" || risk["extra"] != "kept" || risk["retentionDays"] != float64(30) {
		t.Fatalf("risk meta %v", risk)
	}
}

// A delete stops reads at once and removes the payload from the devices.
func TestDeleteStopsReadsAndRemovesThePayload(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	d, _, _ := u.device("s1")
	dt := w.e.DataTokens
	dtk := w.store(u, wire(t, 40))
	blob := w.token(u, dtk).BlobID

	c, err := dt.Delete(ctx, u.ID, dtk)
	if err != nil || c.Status != privicore.CommandSucceeded {
		t.Fatalf("delete: %+v %v", c, err)
	}
	if _, err := w.e.Store.FindDataToken(ctx, u.ID, dtk); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("deleted token still found: %v", err)
	}
	if _, _, err := dt.RequestData(ctx, u.ID, dtk); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("request after delete: %v", err)
	}
	eventually(t, "the deleted payload leaves the device", func() bool {
		have, err := d.List()
		return err == nil && !slices.Contains(have, blob)
	})
}

// The sweep removes reservations that expired without being made
// permanent (with their payload on the devices) and keeps a tombstone:
// the owner's exchange is reservation_expired, anyone else's
// reservation_not_found; past ReservationTombstoneTTL the tombstone goes
// too. Permanent tokens stay.
func TestSweepLeavesTombstones(t *testing.T) {
	w := newWorld(t)
	u, other := w.owner("u"), w.owner("other")
	d, _, _ := u.device("s1")
	dt := w.e.DataTokens
	kept := w.store(u, wire(t, 40))

	_, lapsed := w.reserve(u, 1)
	c, err := dt.Exchange(ctx, u.ID, lapsed, b64(wire(t, 40)))
	w.succeed(c, err)
	blob := blobOf(t, c)
	w.age(lapsed)
	if err := dt.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Store.FindDataToken(ctx, u.ID, lapsed); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("swept reservation still there: %v", err)
	}
	w.token(u, kept)
	eventually(t, "the swept payload leaves the device", func() bool {
		have, err := d.List()
		return err == nil && !slices.Contains(have, blob)
	})
	w.rejected(datatoken.ReasonReservationExpired)(dt.Exchange(ctx, u.ID, lapsed, b64(wire(t, 40))))
	w.rejected(datatoken.ReasonReservationNotFound)(dt.Exchange(ctx, other.ID, lapsed, b64(wire(t, 40))))

	if _, err := w.e.Store.Exec(ctx, `UPDATE expired_reservations SET expired_at = ?`, time.Now().Add(-datatoken.ReservationTombstoneTTL-time.Minute).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := dt.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	w.rejected(datatoken.ReasonReservationNotFound)(dt.Exchange(ctx, u.ID, lapsed, b64(wire(t, 40))))
}
