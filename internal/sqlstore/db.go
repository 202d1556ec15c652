// Package sqlstore is the engine's persistence: one portable schema served
// by SQLite (embedded default, WAL mode) or PostgreSQL.
//
// SQLite is reached through the cgo driver (mattn/go-sqlite3) when cgo is
// on, the default wherever a C compiler is; builds with CGO_ENABLED=0 use the
// pure Go driver (modernc.org/sqlite) instead, with the same behaviour at
// about 1.6× the CPU per statement (see driver_cgo.go).
//
// Every write goes through DB.Write, which group-commits: concurrent writes
// share one transaction and one fsync, each in its own savepoint.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxBatch bounds how many writes share one commit.
const maxBatch = 256

// dialect is the SQL flavour behind a DB.
type dialect int

const (
	sqlite dialect = iota
	postgres
)

// DB is the engine's database. It implements privicore.Store.
type DB struct {
	db      *sql.DB
	dialect dialect
	cache   *stmtCache
	tokens  *tokenCache
	queries // reads outside a transaction

	writes   chan *writeReq
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup // background work (the checkpointer)

	// walLong is set by the checkpointer when the WAL has grown past
	// walRestartFrames: the writer then finishes the checkpoint between two
	// batches, so that the next commit starts the WAL over (see checkpointer).
	walLong atomic.Bool
}

var _ privicore.Store = (*DB)(nil)

type writeReq struct {
	ctx  context.Context
	fn   func(privicore.Queries) error
	err  error
	done chan struct{}
}

// Open opens the database named by dsn and applies pending migrations. A dsn
// starting with postgres:// or postgresql:// is PostgreSQL; anything else is
// the path of a SQLite file (created with its directory if missing).
func Open(ctx context.Context, dsn string) (*DB, error) {
	d := &DB{writes: make(chan *writeReq, 4*maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	path := "" // the SQLite file's
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		d.dialect = postgres
		if d.db, err = sql.Open("pgx", dsn); err != nil {
			return nil, err
		}
		d.db.SetMaxOpenConns(32)
	} else {
		path = strings.TrimPrefix(dsn, "sqlite://")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		if err := prepareSQLiteFile(path); err != nil {
			return nil, err
		}
		if d.db, err = openSQLite(path); err != nil {
			return nil, err
		}
		d.db.SetMaxOpenConns(8)
		d.db.SetMaxIdleConns(8)
	}
	d.cache = &stmtCache{db: d.db, m: map[string]*sql.Stmt{}}
	d.tokens = newTokenCache()
	d.queries = queries{q: d.db, d: d.dialect, cache: d.cache, tokens: d.tokens}
	if err := d.db.PingContext(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := d.migrate(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if d.dialect == sqlite {
		// The -wal and -shm files exist now; SQLite gave them the
		// database file's mode. Make sure of it.
		if err := narrowSQLiteFiles(path); err != nil {
			d.db.Close()
			return nil, err
		}
	}
	go d.writer()
	if d.dialect == sqlite {
		d.wg.Add(1)
		go d.checkpointer()
	}
	return d, nil
}

// sqlitePragmas are set on every SQLite connection. Checkpoints run in the
// background (checkpointer), not inside whichever commit crosses the WAL
// threshold: that kept the commit latency tail long.
var sqlitePragmas = [][2]string{{"journal_mode", "WAL"}, {"synchronous", "FULL"},
	{"busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10)}, {"foreign_keys", "1"},
	{"wal_autocheckpoint", "0"}, {"journal_size_limit", strconv.Itoa(walSizeLimit)}}

// OpenSQLite opens the SQLite file at path with this build's driver and the
// engine's connection settings, as a plain handle: no migrations, no writer.
// It is for tools and tests that inspect a database; the engine uses Open.
func OpenSQLite(path string) (*sql.DB, error) { return openSQLite(path) }

// sqliteURI is the URI naming the SQLite file at path, with the driver's
// params: the path escaped, so that a '?', '#' or '%' in it stays part of it.
func sqliteURI(path string, params url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
}

// busyTimeout is how long a statement waits for a lock.
const busyTimeout = 10 * time.Second

// walRestartWait bounds how long the writer waits for readers still on the
// old WAL when it starts the WAL over.
const walRestartWait = 50 * time.Millisecond

// Checkpointing (see checkpointer); variables so that tests can shorten them.
var (
	// checkpointEvery is the background checkpoint's period.
	checkpointEvery = time.Second
	// walRestartFrames is the WAL length (pages) past which the writer
	// finishes a checkpoint itself: 16 MiB with SQLite's 4 KiB pages.
	walRestartFrames = 4096
)

// walSizeLimit is what a started-over WAL file is truncated to.
const walSizeLimit = 64 << 20

// checkpointer copies the WAL into the database file every second, without
// blocking the writer (a passive checkpoint).
//
// Under a steady load that is not enough: SQLite starts the WAL over only
// when a checkpoint has copied every frame, and commits keep appending
// while a background checkpoint runs, so the WAL would grow without bound
// (hundreds of MiB within seconds of load, each commit extending the file
// and syncing its metadata). When the WAL is long, the writer therefore
// runs a restart checkpoint between two batches (finishCheckpoint): only
// the frames appended meanwhile are left to copy, nothing is appended
// during it, it waits briefly for readers still on the old WAL, and the
// next commit writes from the start of the file again.
func (d *DB) checkpointer() {
	defer d.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			var busy, frames, copied int
			if err := d.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
				continue
			}
			if frames >= walRestartFrames {
				d.walLong.Store(true)
			}
		}
	}
}

// finishCheckpoint runs in the writer between batches when the WAL is long
// (see checkpointer): a restart checkpoint copies what the background one
// left and waits, at most walRestartWait, for the readers still on the old
// WAL, so that the next commit writes from the start of the file.
func (d *DB) finishCheckpoint() {
	if !d.walLong.CompareAndSwap(true, false) {
		return
	}
	ctx := context.Background()
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", walRestartWait.Milliseconds()))
	conn.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)")
	conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", busyTimeout.Milliseconds()))
}

// migrate applies the embedded migrations not yet recorded.
func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		var n int
		if err := d.db.QueryRowContext(ctx, rebind(d.dialect, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(stripComments(string(body)), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, rebind(d.dialect, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
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
	return queries{q: tx, d: d.dialect, tx: tx, cache: d.cache, tokens: d.tokens, log: &tokenLog{}}
}

// commitTx commits a write transaction and brings the token cache up to
// date with what it wrote (log), before anyone hears of the outcome: the
// rows as written once committed, dropped if the commit failed (see
// tokenCache).
func (d *DB) commitTx(tx *sql.Tx, log *tokenLog) error {
	if len(log.ids) == 0 {
		return tx.Commit()
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
	return nil
}

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

// Ping implements privicore.Store.
func (d *DB) Ping(ctx context.Context) error {
	var one int
	return d.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Close stops the writer after it has committed what was queued, then closes
// the database.
func (d *DB) Close() error {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.done
	d.wg.Wait()
	d.cache.close()
	if d.dialect == sqlite {
		d.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return d.db.Close()
}

// SQL returns the underlying *sql.DB, for tests and maintenance tools that
// read. Writes go through Write or Exec: the token cache does not see
// writes made through this handle.
func (d *DB) SQL() *sql.DB { return d.db }

// Exec runs one statement written with ? placeholders, on either dialect,
// as a write of its own (tests and maintenance tools). The token cache is
// emptied when it commits, as the statement may have changed any row.
func (d *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := d.Write(ctx, func(pq privicore.Queries) error {
		q := pq.(queries)
		q.log.rawStatement()
		var err error
		res, err = q.q.ExecContext(ctx, rebind(d.dialect, query), args...)
		return err
	})
	return res, err
}

// isUniqueViolation reports whether err is a unique-constraint failure.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "duplicate key")
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
