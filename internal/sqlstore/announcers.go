package sqlstore

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

var _ privicore.AnnouncerStore = (*DB)(nil)

// KeepAnnouncer implements privicore.AnnouncerStore.
func (d *DB) KeepAnnouncer(ctx context.Context, a privicore.Announcer) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `INSERT INTO announcers (replica, through, until) VALUES (?, ?, ?)
			ON CONFLICT (replica) DO UPDATE SET through = excluded.through, until = excluded.until`,
			a.Replica, nanos(a.Through), nanos(a.Until))
		return dbErr(err)
	})
}

// EndAnnouncer implements privicore.AnnouncerStore.
func (d *DB) EndAnnouncer(ctx context.Context, replica string) error {
	return d.ownWrite(ctx, func(q queries) error {
		_, err := q.exec(ctx, `DELETE FROM announcers WHERE replica = ?`, replica)
		return dbErr(err)
	})
}

// LapsedAnnouncers implements privicore.AnnouncerStore.
func (d *DB) LapsedAnnouncers(ctx context.Context, before time.Time) ([]privicore.Announcer, error) {
	return collect(ctx, d.queries, func(row interface{ Scan(...any) error }) (privicore.Announcer, error) {
		var a privicore.Announcer
		var through, until int64
		err := row.Scan(&a.Replica, &through, &until)
		a.Through, a.Until = fromNanos(through), fromNanos(until)
		return a, dbErr(err)
	}, `SELECT replica, through, until FROM announcers WHERE until < ? ORDER BY replica`, nanos(before))
}

// UnannouncedCommands implements privicore.AnnouncerStore.
func (d *DB) UnannouncedCommands(ctx context.Context, replica string, since time.Time, afterID string, limit int) ([]*privicore.Command, error) {
	// (announcer, updated_at, id) is the index's order: a range scan. The
	// index is partial (announcer <> ''): the condition, redundant for a
	// replica's id, is spelled out so that PostgreSQL can use it for a
	// parameter.
	return collect(ctx, d.queries, scanCommand, `SELECT `+commandReadCols+` FROM commands
		WHERE announcer = ? AND announcer <> '' AND status <> ? AND (updated_at > ? OR (updated_at = ? AND id > ?))
		ORDER BY updated_at, id LIMIT ?`,
		replica, int(privicore.CommandPending), nanos(since), nanos(since), afterID, limit)
}
