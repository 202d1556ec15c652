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
)

//go:embed migrations/*.sql
var migrations embed.FS

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
	tokens  *tokenCache // also holds the peers told of every commit (SetPeers)
	queries             // reads outside a transaction

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

// Open opens the database named by dsn and applies pending migrations. A dsn
// starting with postgres:// or postgresql:// is PostgreSQL; anything else is
// the path of a SQLite file (created with its directory if missing).
func Open(ctx context.Context, dsn string) (*DB, error) {
	d := &DB{writes: make(chan *writeReq, 4*maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	path := "" // the SQLite file's
	if IsPostgres(dsn) {
		d.dialect = postgres
		if d.db, err = sql.Open("pgx", dsn); err != nil {
			return nil, err
		}
		d.db.SetMaxOpenConns(32)
		// Keep them all open: database/sql keeps 2 idle by default, and a
		// burst of reads beyond that closed the connections and opened new
		// ones (a server process each) at every request.
		d.db.SetMaxIdleConns(32)
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
	// On PostgreSQL, shared by replicas, the cache is used once SetPeers
	// gives it peers that tell it of the others' writes (tokenCache).
	d.tokens = newTokenCache(d.dialect == postgres)
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

// migrationLock is the PostgreSQL advisory lock key under which migrations
// run: replicas starting at once on a fresh database migrate one at a time.
const migrationLock = 0x70726976 // "priv"

// migrate applies the embedded migrations not yet recorded. On PostgreSQL
// it holds migrationLock meanwhile, so that concurrent starts do not apply
// a migration twice.
func (d *DB) migrate(ctx context.Context) error {
	if d.dialect == postgres {
		conn, err := d.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}
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
			if strings.TrimSpace(stmt) == "" || !d.dialect.reads(stmt) {
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

// reads reports whether a migration statement is for dialect d: one that
// starts with /*postgres*/ or /*sqlite*/ is for that dialect only.
func (d dialect) reads(stmt string) bool {
	stmt = strings.TrimSpace(stmt)
	switch {
	case strings.HasPrefix(stmt, "/*postgres*/"):
		return d == postgres
	case strings.HasPrefix(stmt, "/*sqlite*/"):
		return d == sqlite
	}
	return true
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
