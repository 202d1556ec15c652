package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestExpiredReservationAfterSweep (issue #12 A.9): an exchange after a
// reservation expired is rejected datatoken.reservation_expired even once
// the sweeper removed the reservation (and its data from the devices), for
// ReservationTombstoneTTL (≥ a day) after expiry; another profile using
// the temporary token still gets datatoken.reservation_not_found.
func TestExpiredReservationAfterSweep(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u, other := a.activeUser("expired"), a.activeUser("stranger")
	d := a.storageDevice(u, "s1")
	a.storageDevice(other, "s2")
	ctx := context.Background()
	age := func(tmp string) {
		t.Helper()
		if _, err := e.Store.Exec(ctx, `UPDATE data_tokens SET expires_at = ? WHERE temp_token = ?`, time.Now().Add(-time.Second).UnixNano(), tmp); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func() {
		t.Helper()
		if err := e.DataTokens.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wire, _ := ciphertext(t, 80)

	unused := a.reserve(u.Token, "c", 1) // never exchanged
	lapsed := a.reserve(u.Token, "c", 1) // exchanged, never made permanent
	a.succeed(a.exchange(u.Token, lapsed, wire))
	waitBlobs(t, d, 1)
	age(unused)
	age(lapsed)
	sweep()
	for _, tmp := range []string{unused, lapsed} {
		if _, err := e.Store.FindDataToken(ctx, u.ID, tmp); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("swept reservation still there: %v", err)
		}
	}
	waitBlobs(t, d, 0) // its data left the devices at once

	for _, tmp := range []string{unused, lapsed} {
		a.rejected(a.exchange(u.Token, tmp, wire), "datatoken.reservation_expired")
		a.rejected(a.exchange(other.Token, tmp, wire), "datatoken.reservation_not_found")
	}
	a.rejected(a.exchange(u.Token, "tmp-never-reserved", wire), "datatoken.reservation_not_found")

	// Just within the tombstone's life it still answers expired; past it,
	// the sweeper drops it.
	setExpiry := func(at time.Time) {
		t.Helper()
		if _, err := e.Store.Exec(ctx, `UPDATE expired_reservations SET expired_at = ?`, at.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	setExpiry(time.Now().Add(-datatoken.ReservationTombstoneTTL + time.Hour))
	sweep()
	a.rejected(a.exchange(u.Token, unused, wire), "datatoken.reservation_expired")
	if datatoken.ReservationTombstoneTTL < 24*time.Hour {
		t.Fatalf("tombstones live %v, less than a day", datatoken.ReservationTombstoneTTL)
	}
	setExpiry(time.Now().Add(-datatoken.ReservationTombstoneTTL - time.Hour))
	sweep()
	a.rejected(a.exchange(u.Token, unused, wire), "datatoken.reservation_not_found")
}
