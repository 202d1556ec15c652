package sqlstore

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

var _ privicore.ReplicaStore = (*DB)(nil)

// JoinReplica implements privicore.ReplicaStore.
func (d *DB) JoinReplica(ctx context.Context, id string, until time.Time) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `INSERT INTO replicas (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until`,
			id, nanos(until))
		return dbErr(err)
	})
}

// RenewReplica implements privicore.ReplicaStore.
func (d *DB) RenewReplica(ctx context.Context, id string, until time.Time) ([]string, error) {
	err := d.ownWrite(ctx, func(q queries) error {
		n, err := affected(q.exec(ctx, `UPDATE replicas SET until = ? WHERE id = ?`, nanos(until), id))
		if err == nil && n == 0 {
			return notFound("replica")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return collect(ctx, d.queries, scanString, `SELECT id FROM replicas WHERE id <> ? ORDER BY id`, id)
}

// Replicas implements privicore.ReplicaStore.
func (d *DB) Replicas(ctx context.Context) ([]string, error) {
	return collect(ctx, d.queries, scanString, `SELECT id FROM replicas ORDER BY id`)
}

// EvictReplicas implements privicore.ReplicaStore.
func (d *DB) EvictReplicas(ctx context.Context, ids []string) error {
	return d.ownWrite(ctx, func(q queries) error {
		for _, id := range ids {
			if _, err := q.exec(ctx, `DELETE FROM replicas WHERE id = ?`, id); err != nil {
				return dbErr(err)
			}
		}
		return nil
	})
}

// SweepReplicas implements privicore.ReplicaStore.
func (d *DB) SweepReplicas(ctx context.Context, before time.Time) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `DELETE FROM replicas WHERE until < ?`, nanos(before))
		return dbErr(err)
	})
}
