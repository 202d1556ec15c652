package sqlstore

import (
	"context"
	"time"
)

// AddExpiredReservation implements privicore.DataTokenStore.
func (q queries) AddExpiredReservation(ctx context.Context, keyHash, profileID string, expiredAt time.Time) error {
	_, err := q.exec(ctx, `INSERT INTO expired_reservations (key_hash, profile_id, expired_at) VALUES (?, ?, ?)
		ON CONFLICT (key_hash) DO NOTHING`, keyHash, profileID, nanos(expiredAt))
	return dbErr(err)
}

// ExpiredReservation implements privicore.DataTokenStore.
func (q queries) ExpiredReservation(ctx context.Context, keyHash, profileID string) (bool, error) {
	var n int
	err := q.row(ctx, `SELECT COUNT(*) FROM expired_reservations WHERE key_hash = ? AND profile_id = ?`, keyHash, profileID).Scan(&n)
	return n > 0, dbErr(err)
}

// PruneExpiredReservations implements privicore.DataTokenStore.
func (q queries) PruneExpiredReservations(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := q.exec(ctx, `DELETE FROM expired_reservations WHERE key_hash IN
		(SELECT key_hash FROM expired_reservations WHERE expired_at < ? ORDER BY expired_at LIMIT ?)`, nanos(before), limit)
	if err != nil {
		return 0, dbErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), dbErr(err)
}
