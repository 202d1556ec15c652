package sqlstore

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

var _ privicore.LeaseStore = (*DB)(nil)

// ownWrite runs fn in a transaction of its own. On PostgreSQL that is a
// transaction beside the group commit, so that waiting for a row another
// replica has locked never holds up this replica's other writes; on SQLite
// (one writer) it is an ordinary Write, which may run fn twice.
func (d *DB) ownWrite(ctx context.Context, fn func(q queries) error) error {
	if d.dialect != postgres {
		return d.Write(ctx, func(pq privicore.Queries) error { return fn(pq.(queries)) })
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	q := d.txQueries(tx)
	if err := fn(q); err != nil {
		tx.Rollback()
		return err
	}
	if err := d.commitTx(tx, q.log); err != nil {
		return unavailable(err)
	}
	return nil
}

// AcquireLease implements privicore.LeaseStore: one upsert that takes the
// row only if it is owner's or expired.
func (d *DB) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var held bool
	err := d.ownWrite(ctx, func(q queries) error {
		res, err := q.exec(ctx, `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE leases.owner = excluded.owner OR leases.expires_at < ?`, name, owner, nanos(now.Add(ttl)), nanos(now))
		if err != nil {
			return dbErr(err)
		}
		n, err := res.RowsAffected()
		held = n == 1
		return dbErr(err)
	})
	return held, err
}

// TakeLease implements privicore.LeaseStore.
func (d *DB) TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`, name, owner, nanos(now.Add(ttl)))
		return dbErr(err)
	})
}

// ReleaseLease implements privicore.LeaseStore.
func (d *DB) ReleaseLease(ctx context.Context, name, owner string) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
		return dbErr(err)
	})
}
