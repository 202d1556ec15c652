package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

// Values of commands.held (migration 014).
const (
	heldByVote     = 1 // a vote holds the command
	resumedRunning = 2 // its vote was decided while an execution was deciding to hold it
)

// The lease queries spell the pending status out (1, privicore.CommandPending)
// so that PostgreSQL plans them on the partial indexes WHERE status = 1.
//
// claimable is the condition under which a pending command (table alias
// c) may be leased by the replica ?1 at ?2 (now): not held, not leased,
// not left to its origin, and the first of its key that is neither held
// nor finished, with no other command of its key leased. SEQ stands for
// the acceptance order column (seqCol).
const claimable = `c.status = 1 AND c.held <> 1 AND c.lease_until < ?
	AND (c.origin = '' OR c.origin = ? OR c.origin_until < ?)
	AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.order_key = c.order_key AND o.status = 1 AND o.held <> 1
		AND o.id <> c.id AND (o.SEQ < c.SEQ OR o.lease_until >= ?))`

// seqCol is the column holding the acceptance order: on SQLite the rowid
// (it grows with every insert and costs no column), on PostgreSQL seq (a
// sequence's values).
func (q queries) seqCol() string {
	if q.d == postgres {
		return "seq"
	}
	return "rowid"
}

// withSeq puts the dialect's acceptance order column in query.
func (q queries) withSeq(query string) string { return strings.ReplaceAll(query, "SEQ", q.seqCol()) }

// ClaimCommands implements privicore.CommandStore. It reads the claimable
// commands, oldest first, then leases each with the condition checked
// again; on PostgreSQL under the key's transaction lock, taken without
// waiting (a key another transaction holds is passed over: busy), so that
// two replicas never lease two commands of one key, nor one command twice,
// and no inline command of the key commits meanwhile (CommandKeyFree).
func (q queries) ClaimCommands(ctx context.Context, owner string, now, until time.Time, limit int) ([]*privicore.Command, bool, error) {
	type candidate struct{ id, key string }
	rows, err := q.rows(ctx, q.withSeq(`SELECT c.id, c.order_key FROM commands c WHERE `+claimable+` ORDER BY c.SEQ LIMIT ?`),
		nanos(now), owner, nanos(now), nanos(now), limit)
	if err != nil {
		return nil, false, dbErr(err)
	}
	var cands []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.key); err != nil {
			rows.Close()
			return nil, false, dbErr(err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, dbErr(err)
	}
	var out []*privicore.Command
	busy := false
	for _, cand := range cands {
		if q.d == postgres {
			var locked bool
			if err := q.row(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(?))`, cand.key).Scan(&locked); err != nil {
				return nil, false, dbErr(err)
			}
			if !locked {
				busy = true
				continue
			}
		}
		c, err := scanCommand(q.row(ctx, q.withSeq(`UPDATE commands AS c SET lease_owner = ?, lease_until = ? WHERE c.id = ? AND `+claimable+` RETURNING `+commandReadCols),
			owner, nanos(until), cand.id, nanos(now), owner, nanos(now), nanos(now)))
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			continue // taken, or no longer first, since the read
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, c)
	}
	return out, busy, nil
}

// RenewCommandLeases implements privicore.CommandStore.
func (q queries) RenewCommandLeases(ctx context.Context, owner string, until time.Time) error {
	if _, err := q.exec(ctx, `UPDATE commands SET lease_until = ? WHERE status = 1 AND lease_owner = ?`, nanos(until), owner); err != nil {
		return dbErr(err)
	}
	_, err := q.exec(ctx, `UPDATE commands SET origin_until = ? WHERE status = 1 AND origin = ?`, nanos(until), owner)
	return dbErr(err)
}

// HoldCommand implements privicore.CommandStore.
func (q queries) HoldCommand(ctx context.Context, id, owner string) (bool, error) {
	var held int
	err := q.row(ctx, `UPDATE commands SET held = CASE WHEN held = ? THEN 0 ELSE ? END, lease_owner = '', lease_until = 0
		WHERE id = ? AND status = 1 AND lease_owner = ? RETURNING held`, resumedRunning, heldByVote, id, owner).Scan(&held)
	if isNoRows(err) {
		return false, nil
	}
	return held == heldByVote, dbErr(err)
}

// StageCommand implements privicore.CommandStore.
func (q queries) StageCommand(ctx context.Context, id, owner string, staged []byte) error {
	n, err := affected(q.exec(ctx, `UPDATE commands SET staged = ?, origin = '', origin_until = 0 WHERE id = ? AND status = 1 AND lease_owner = ?`,
		string(staged), id, owner))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "command %s is not pending or not leased to %q", id, owner)
	}
	return err
}

// ResumeCommand implements privicore.CommandStore: a held command gets a
// new place in the acceptance order (the end of its key's line).
func (q queries) ResumeCommand(ctx context.Context, id string) error {
	next := `nextval('command_seq')`
	if q.d == sqlite {
		next = `(SELECT MAX(rowid) + 1 FROM commands)`
	}
	n, err := affected(q.exec(ctx, `UPDATE commands SET held = 0, `+q.seqCol()+` = `+next+` WHERE id = ? AND status = 1 AND held = ?`, id, heldByVote))
	if err != nil || n > 0 {
		return err
	}
	_, err = q.exec(ctx, `UPDATE commands SET held = ? WHERE id = ? AND status = 1 AND held = 0`, resumedRunning, id)
	return dbErr(err)
}

// CommandKeyFree implements privicore.CommandStore.
func (q queries) CommandKeyFree(ctx context.Context, key string) (bool, error) {
	const none = `NOT EXISTS (SELECT 1 FROM commands WHERE order_key = ? AND status = 1 AND held <> 1)`
	var free bool
	var err error
	if q.d == postgres {
		err = q.row(ctx, `SELECT CASE WHEN pg_try_advisory_xact_lock(hashtext(?)) THEN `+none+` ELSE false END`, key, key).Scan(&free)
	} else {
		err = q.row(ctx, `SELECT `+none, key).Scan(&free)
	}
	return free, dbErr(err)
}

// ResetCommandLeases implements privicore.CommandStore.
func (q queries) ResetCommandLeases(ctx context.Context) error {
	_, err := q.exec(ctx, `UPDATE commands SET lease_owner = '', lease_until = 0, origin_until = 0, held = CASE WHEN held = ? THEN 0 ELSE held END
		WHERE status = 1 AND (lease_owner <> '' OR origin_until <> 0 OR held = ?)`, resumedRunning, resumedRunning)
	return dbErr(err)
}

// ReleaseCommandLeases implements privicore.CommandStore.
func (q queries) ReleaseCommandLeases(ctx context.Context, owner string) error {
	if _, err := q.exec(ctx, `UPDATE commands SET lease_owner = '', lease_until = 0 WHERE status = 1 AND lease_owner = ?`, owner); err != nil {
		return dbErr(err)
	}
	_, err := q.exec(ctx, `UPDATE commands SET origin_until = 0 WHERE status = 1 AND origin = ?`, owner)
	return dbErr(err)
}
