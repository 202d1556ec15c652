package datatoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/privicore/privicore"
)

// ReservationTombstoneTTL is how long after its expiry a swept reservation
// is still reported as expired (datatoken.reservation_expired) rather than
// unknown: the reservation's data leaves the devices at once, a tombstone
// (a hash of its temporary token and of its id, and its profile) stays.
const ReservationTombstoneTTL = 48 * time.Hour

// tombstonePruneBatch bounds the tombstones one sweep removes.
const tombstonePruneBatch = 1000

// tombstoneKey is the stored form of a reservation's temporary token or
// id: a SHA-256, so that the table holds nothing usable.
func tombstoneKey(s string) string {
	sum := sha256.Sum256([]byte("privicore expired reservation\x00" + s))
	return hex.EncodeToString(sum[:])
}

// reservationReader is what checkReservation reads: the store or a
// transaction's queries.
type reservationReader interface {
	ExpiredReservation(ctx context.Context, keyHash, profileID string) (bool, error)
}

// missingReservation is the rejection of an exchange or upload whose
// reservation (key: its temporary token or id) is not there: expired if
// profileID has its tombstone, else not found.
func missingReservation(ctx context.Context, r reservationReader, key, profileID string) error {
	expired, err := r.ExpiredReservation(ctx, tombstoneKey(key), profileID)
	if err != nil {
		return err
	}
	if expired {
		return privicore.Reject(ReasonReservationExpired, "reservation expired")
	}
	return privicore.Reject(ReasonReservationNotFound, "reservation not found")
}

// bury keeps the tombstone of t, a reservation being swept.
func bury(ctx context.Context, q privicore.Queries, t *privicore.DataToken) error {
	for _, key := range []string{t.TempToken, t.ID} {
		if err := q.AddExpiredReservation(ctx, tombstoneKey(key), t.ProfileID, t.ExpiresAt); err != nil {
			return err
		}
	}
	return nil
}

// pruneTombstones drops the tombstones past ReservationTombstoneTTL.
func (s *Service) pruneTombstones(ctx context.Context) error {
	return s.store.Write(ctx, func(q privicore.Queries) error {
		_, err := q.PruneExpiredReservations(ctx, s.now().Add(-ReservationTombstoneTTL), tombstonePruneBatch)
		return err
	})
}

// Sweep removes tokens never made permanent whose reservation expired
// (keeping a tombstone, above), queues their payloads' removal from
// the devices, and drops the tombstones past ReservationTombstoneTTL.
func (s *Service) Sweep(ctx context.Context) error {
	expired, err := s.store.ExpiredDataTokens(ctx, s.now(), 500)
	if err != nil {
		return err
	}
	for _, t := range expired {
		var holders []string
		err := s.store.Write(ctx, func(q privicore.Queries) error {
			var err error
			if holders, err = q.BlobHolders(ctx, t.BlobID); err != nil {
				return err
			}
			if err := s.forget(ctx, q, t.BlobID); err != nil {
				return err
			}
			if err := bury(ctx, q, t); err != nil {
				return err
			}
			return q.DeleteDataToken(ctx, t.ID)
		})
		if err != nil {
			return err
		}
		s.storage.KickAll(holders)
	}
	return s.pruneTombstones(ctx)
}
