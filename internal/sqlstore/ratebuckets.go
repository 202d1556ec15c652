package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/privicore/privicore"
)

var _ privicore.RateStore = (*DB)(nil)

// UpdateRateBuckets implements privicore.RateStore. Each key's row is
// locked by an upsert that returns it (a new row, expires_at 0, reads as
// absent), in key order so that two updates never wait for each other;
// fn's result is written back in the same transaction.
func (d *DB) UpdateRateBuckets(ctx context.Context, keys []string, fn func(bs []*privicore.RateBucket) error) error {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	return d.ownWrite(ctx, func(q queries) error {
		bs := make([]*privicore.RateBucket, len(keys))
		for _, i := range order {
			b, err := lockRateBucket(ctx, q, keys[i])
			if err != nil {
				return err
			}
			bs[i] = b
		}
		if err := fn(bs); err != nil {
			return err
		}
		for i, b := range bs {
			var err error
			if b == nil {
				_, err = q.exec(ctx, `DELETE FROM rate_buckets WHERE key = ?`, keys[i])
			} else {
				_, err = q.exec(ctx, `UPDATE rate_buckets SET tokens = ?, last_at = ?, in_flight = ?, last_fail = ?, expires_at = ? WHERE key = ?`,
					b.Tokens, nanos(b.Last), b.InFlight, nanos(b.LastFail), nanos(b.ExpiresAt), keys[i])
			}
			if err != nil {
				return dbErr(err)
			}
		}
		return nil
	})
}

// lockRateBucket locks key's row, inserting a placeholder if there is
// none, and returns the bucket (nil for a placeholder).
func lockRateBucket(ctx context.Context, q queries, key string) (*privicore.RateBucket, error) {
	var b privicore.RateBucket
	var last, lastFail, expires int64
	err := q.row(ctx, `INSERT INTO rate_buckets (key, tokens, last_at, in_flight, last_fail, expires_at) VALUES (?, 0, 0, 0, 0, 0)
		ON CONFLICT (key) DO UPDATE SET key = excluded.key
		RETURNING tokens, last_at, in_flight, last_fail, expires_at`, key).Scan(&b.Tokens, &last, &b.InFlight, &lastFail, &expires)
	if err == sql.ErrNoRows || (err == nil && expires == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, dbErr(err)
	}
	b.Key, b.Last, b.LastFail, b.ExpiresAt = key, fromNanos(last), fromNanos(lastFail), fromNanos(expires)
	return &b, nil
}

// DeleteExpiredRateBuckets implements privicore.RateStore.
func (d *DB) DeleteExpiredRateBuckets(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := d.ownWrite(ctx, func(q queries) error {
		res, err := q.exec(ctx, `DELETE FROM rate_buckets WHERE expires_at < ?`, nanos(before))
		if err != nil {
			return dbErr(err)
		}
		n, err = res.RowsAffected()
		return dbErr(err)
	})
	return int(n), err
}
