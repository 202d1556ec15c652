package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/privicore/privicore"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements privicore.Queries over a querier: the database, or
// the writer's transaction (tx set). Statements are prepared once and
// reused through cache.
type queries struct {
	q      querier
	d      dialect
	tx     *sql.Tx
	cache  *stmtCache
	tokens *tokenCache
	log    *tokenLog // in a write transaction: the data_tokens rows it wrote
}

// stmtCache holds prepared statements by query text; parsing a statement
// costs more than running most of them.
// maxPrepared bounds the prepared statements kept: past it (queries built
// with varying shapes), statements run unprepared.
const maxPrepared = 512

var errCacheFull = errors.New("statement cache full")

type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[query]; st != nil {
		return st, nil
	}
	if len(c.m) >= maxPrepared {
		return nil, errCacheFull
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

// close releases every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// stmt returns the prepared form of query for this querier, or nil to run
// it unprepared.
func (q queries) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.cache == nil {
		return nil
	}
	st, err := q.cache.get(ctx, query)
	if err != nil {
		return nil
	}
	if q.tx != nil {
		return q.tx.StmtContext(ctx, st)
	}
	return st
}

var _ privicore.Queries = queries{}

// rebind turns ? placeholders into $n for PostgreSQL.
func rebind(d dialect, query string) string {
	if d != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// note records, in a write transaction, a change the replicas' caches must
// hear of once it commits (coherence.Change); outside one it does nothing.
func (q queries) note(kind, key string) {
	if q.log != nil {
		q.log.note(kind, key)
	}
}

func (q queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = rebind(q.d, query)
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.q.ExecContext(ctx, query, args...)
}

func (q queries) row(ctx context.Context, query string, args ...any) *sql.Row {
	query = rebind(q.d, query)
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.q.QueryRowContext(ctx, query, args...)
}

func (q queries) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = rebind(q.d, query)
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.q.QueryContext(ctx, query, args...)
}

// nanos encodes a time as Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos decodes nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func notFound(what string) error {
	return privicore.Errorf(privicore.ENOTFOUND, "%s not found", what)
}

// dbErr wraps a driver error so it is not mistaken for a rule.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*privicore.Error); ok {
		return err
	}
	return unavailable(err)
}

// collect runs a query and scans every row with scan. An empty result is
// an empty (not nil) slice.
func collect[T any](ctx context.Context, q queries, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.rows(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, dbErr(rows.Err())
}

// scanString scans a one-column row of text.
func scanString(row interface{ Scan(...any) error }) (string, error) {
	var s string
	return s, dbErr(row.Scan(&s))
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, dbErr(err)
	}
	n, err := res.RowsAffected()
	return n, dbErr(err)
}

// ---- profiles ----

func (q queries) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := q.rows(ctx, query, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, dbErr(err)
		}
		out = append(out, s)
	}
	return out, dbErr(rows.Err())
}
