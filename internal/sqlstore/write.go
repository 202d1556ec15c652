package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/groupcommit"
)

// maxBatch bounds how many writes share one commit.
const maxBatch = 256

// writeReq is one Write waiting for its commit.
type writeReq struct {
	ctx  context.Context
	fn   func(privicore.Queries) error
	err  error
	done chan struct{}
}

// errClosed is returned by Write after Close.
var errClosed = &privicore.Error{Code: privicore.EUNAVAILABLE, Message: "database closed"}

// Write implements privicore.Store: fn runs in a savepoint of a transaction
// shared with other concurrent writes; Write returns once that transaction is
// durably committed (or fn failed and was rolled back).
func (d *DB) Write(ctx context.Context, fn func(privicore.Queries) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case d.writes <- req:
	case <-d.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the caller must
	// learn whether its write was committed.
	select {
	case <-req.done:
		return req.err
	case <-d.done:
		select {
		case <-req.done:
			return req.err
		default:
			return errClosed
		}
	}
}

// writeLinger is how long the writer waits for more writes before a
// commit, only while busy (the previous batch held more than one write; an
// idle write commits at once). Each commit costs WAL frames and an fsync
// whatever it holds, so fewer, fuller commits cost less per write; what it
// gained is in docs/performance.md.
const writeLinger = time.Millisecond

// writer is the single goroutine that writes: it batches queued requests
// into one transaction (group commit).
func (d *DB) writer() {
	defer close(d.done)
	groupcommit.RunLinger(d.writes, d.stop, maxBatch, writeLinger, d.commit)
}

// commit runs one batch in one transaction. It first runs every write
// straight in the transaction (the common case: they all succeed); if one
// fails, it rolls back and runs the batch again with each write in its own
// savepoint, so that only the failing ones are undone. Writes are pure
// database work, so running one twice is harmless.
func (d *DB) commit(batch []*writeReq) {
	if !d.commitOptimistic(batch) {
		d.commitIsolated(batch)
	}
	d.finishCheckpoint()
}

// commitOptimistic runs the batch without savepoints; it reports false,
// having rolled back and answered nobody, when a write failed and the batch
// has others to keep.
func (d *DB) commitOptimistic(batch []*writeReq) bool {
	ctx := context.Background()
	live := 0
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live++
		}
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.err = unavailable(err)
			close(r.done)
		}
		return true
	}
	q := d.txQueries(tx)
	var failed *writeReq
	skipped := make([]error, len(batch)) // writes whose caller gave up before they ran
	for i, r := range batch {
		if skipped[i] = r.ctx.Err(); skipped[i] != nil {
			continue
		}
		if err := runFn(r.fn, q); err != nil {
			failed, r.err = r, err
			break
		}
	}
	if failed != nil {
		tx.Rollback()
		if live > 1 {
			failed.err = nil
			return false
		}
		close(failed.done)
		for i, r := range batch {
			if r != failed {
				r.err = skipped[i]
				close(r.done)
			}
		}
		return true
	}
	err = d.commitTx(tx, q.log)
	for i, r := range batch {
		if r.err = skipped[i]; r.err == nil && err != nil {
			r.err = unavailable(err)
		}
		close(r.done)
	}
	return true
}

// commitIsolated runs the batch with every write in its own savepoint.
func (d *DB) commitIsolated(batch []*writeReq) {
	finish := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
			close(r.done)
		}
	}
	ctx := context.Background()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		finish(unavailable(err))
		return
	}
	q := d.txQueries(tx)
	ran := 0
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
			r.err = unavailable(err)
			continue
		}
		mark := q.log.mark()
		if err := runFn(r.fn, q); err != nil {
			r.err = err
			q.log.rollback(mark)
			if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT w"); rbErr != nil {
				// The transaction is unusable: fail the whole batch.
				tx.Rollback()
				for _, o := range batch {
					if o.err == nil {
						o.err = unavailable(rbErr)
					}
				}
				finish(nil)
				return
			}
		} else {
			ran++
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT w"); err != nil && r.err == nil {
			r.err = unavailable(err)
		}
	}
	if ran == 0 {
		tx.Rollback()
		finish(nil)
		return
	}
	if err := d.commitTx(tx, q.log); err != nil {
		finish(unavailable(err))
		return
	}
	finish(nil)
}

// txQueries returns the queries of a write transaction.
func (d *DB) txQueries(tx *sql.Tx) queries {
	return queries{q: tx, d: d.dialect, tx: tx, cache: d.cache, tokens: d.tokens, log: &tokenLog{remote: d.tokens.remoteDrops()}}
}

// commitTx commits a write transaction and brings the caches up to date
// with what it wrote (log), before anyone hears of the outcome: the token
// cache gets the rows as written once committed (dropped if the commit
// failed, see tokenCache); the changes other caches must hear of, here
// and on every other replica, are published (coherence.Peers.Publish).
func (d *DB) commitTx(tx *sql.Tx, log *tokenLog) error {
	if len(log.ids) == 0 {
		if err := tx.Commit(); err != nil {
			return err
		}
		d.publish(log.notes, nil)
		return nil
	}
	// While the commit is under way, the rows it writes are read from the
	// database: another reader may already see what the transaction
	// committed (a command's outcome) and must not then find the row from
	// before it in the cache.
	d.tokens.beginCommit(log.ids)
	if err := tx.Commit(); err != nil {
		d.tokens.abortCommit(log.ids)
		return err
	}
	d.tokens.apply(log)
	var rows []coherence.Change // the rows written, for the other replicas' token caches
	if d.dialect == postgres {
		rows = make([]coherence.Change, 0, len(log.ids))
		for _, id := range log.ids {
			if id != "" { // a raw statement is among the notes: a flush
				rows = append(rows, coherence.Change{Kind: coherence.DataToken, Key: id})
			}
		}
	}
	d.publish(log.notes, rows)
	return nil
}

// publish hands committed changes to the replicas' caches (SetPeers):
// notes to every replica's, rows to the others'.
func (d *DB) publish(notes, rows []coherence.Change) {
	if len(notes)+len(rows) == 0 {
		return
	}
	if p := d.tokens.peers.Load(); p != nil {
		p.PublishWith(context.Background(), notes, rows)
	}
}

// SetPeers gives the DB the caches that must hear of what it commits:
// every change a write transaction notes is published to them once it
// commits, before the writer's callers learn of the outcome. On
// PostgreSQL the token cache is used from then on, while p is Valid, and
// the rows each commit wrote are published to the other replicas.
func (d *DB) SetPeers(p *coherence.Peers) { d.tokens.listen(p) }

// runFn calls fn, turning a panic into an error so one bad write cannot take
// the writer down.
func runFn(fn func(privicore.Queries) error, q privicore.Queries) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return fn(q)
}

func unavailable(err error) error {
	return &privicore.Error{Code: privicore.EUNAVAILABLE, Message: "database: " + err.Error()}
}
