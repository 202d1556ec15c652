package sqlstore

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// commandCols are the columns CreateCommand writes, in scanCommand's
// order (a command is created with nothing staged).
const commandCols = `id, profile_id, type, payload, status, body, attempts, created_at, updated_at, actor, order_key, held, origin, origin_until, announcer`

// commandReadCols are the columns scanCommand reads, in its order.
const commandReadCols = commandCols + `, staged`

func scanCommand(row interface{ Scan(...any) error }) (*privicore.Command, error) {
	var c privicore.Command
	var payload string
	var created, updated, originUntil int64
	var held int
	var staged string
	if err := row.Scan(&c.ID, &c.ProfileID, &c.Type, &payload, &c.Status, &c.Body, &c.Attempts, &created, &updated, &c.Actor,
		&c.Key, &held, &c.Origin, &originUntil, &c.Announcer, &staged); err != nil {
		if isNoRows(err) {
			return nil, notFound("command")
		}
		return nil, dbErr(err)
	}
	c.Payload = []byte(payload)
	if staged != "" {
		c.Staged = []byte(staged)
	}
	c.CreatedAt, c.UpdatedAt, c.OriginUntil = fromNanos(created), fromNanos(updated), fromNanos(originUntil)
	c.Held = held == heldByVote
	return &c, nil
}

// CreateCommand implements privicore.CommandStore.
func (q queries) CreateCommand(ctx context.Context, c *privicore.Command) error {
	payload := string(c.Payload)
	if payload == "" {
		payload = "{}"
	}
	held := 0
	if c.Held {
		held = heldByVote
	}
	_, err := q.exec(ctx, `INSERT INTO commands (`+commandCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProfileID, c.Type, payload, int(c.Status), c.Body, c.Attempts, nanos(c.CreatedAt), nanos(c.UpdatedAt), c.Actor,
		c.Key, held, c.Origin, nanos(c.OriginUntil), c.Announcer)
	if isUniqueViolation(err) {
		return privicore.Errorf(privicore.ECONFLICT, "command %s exists", c.ID)
	}
	return dbErr(err)
}

// FindCommand implements privicore.CommandStore.
func (q queries) FindCommand(ctx context.Context, id string) (*privicore.Command, error) {
	return scanCommand(q.row(ctx, `SELECT `+commandReadCols+` FROM commands WHERE id = ?`, id))
}

// FindProfileCommand implements privicore.CommandStore.
func (q queries) FindProfileCommand(ctx context.Context, profileID, id string) (*privicore.Command, error) {
	return scanCommand(q.row(ctx, `SELECT `+commandReadCols+` FROM commands WHERE id = ? AND profile_id = ?`, id, profileID))
}

// FinishCommand implements privicore.CommandStore.
func (q queries) FinishCommand(ctx context.Context, id, owner string, status privicore.CommandStatus, body string, at time.Time, announcer string) error {
	n, err := affected(q.exec(ctx, `UPDATE commands SET status = ?, body = ?, updated_at = ?, announcer = ?, lease_owner = '', lease_until = 0 WHERE id = ? AND status = ? AND lease_owner = ?`,
		int(status), body, nanos(at), announcer, id, int(privicore.CommandPending), owner))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "command %s is not pending or not leased to %q", id, owner)
	}
	return err
}

// PruneCommands implements privicore.CommandStore.
func (q queries) PruneCommands(ctx context.Context, before time.Time, limit int) (int, error) {
	// A batch: the oldest commands of one status, in the index's order
	// (status, created_at), ties by id, so that both statements of this
	// transaction take the same ones and no backlog is sorted whole.
	const batch = `SELECT id FROM commands WHERE status = ? AND created_at < ? ORDER BY created_at, id LIMIT ?`
	total := 0
	for _, status := range []privicore.CommandStatus{privicore.CommandSucceeded, privicore.CommandRejected} {
		if total >= limit {
			break
		}
		args := []any{int(status), nanos(before), limit - total}
		if status == privicore.CommandSucceeded {
			if _, err := q.exec(ctx, `INSERT INTO command_counts (profile_id, type, day, n)
				SELECT profile_id, type, created_at / ? AS day, COUNT(*) FROM commands WHERE id IN (`+batch+`)
				GROUP BY profile_id, type, day
				ON CONFLICT (profile_id, type, day) DO UPDATE SET n = command_counts.n + excluded.n`,
				append([]any{nanosPerDay}, args...)...); err != nil {
				return total, dbErr(err)
			}
		}
		n, err := affected(q.exec(ctx, `DELETE FROM commands WHERE id IN (`+batch+`)`, args...))
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

// MarkCommandAttempt implements privicore.CommandStore.
func (q queries) MarkCommandAttempt(ctx context.Context, id, owner string, at, retryAt time.Time) error {
	_, err := q.exec(ctx, `UPDATE commands SET attempts = attempts + 1, updated_at = ?, lease_owner = '', lease_until = ? WHERE id = ? AND status = ? AND lease_owner = ?`,
		nanos(at), nanos(retryAt), id, int(privicore.CommandPending), owner)
	return dbErr(err)
}

// PendingCommands implements privicore.CommandStore.
func (q queries) PendingCommands(ctx context.Context, limit int) ([]*privicore.Command, error) {
	return collect(ctx, q, scanCommand, `SELECT `+commandReadCols+` FROM commands WHERE status = ? ORDER BY created_at, id LIMIT ?`, int(privicore.CommandPending), limit)
}
