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

const profileCols = `id, username, given_name, family_name, password_hash, public_key, created_at, updated_at`

func scanProfile(row interface{ Scan(...any) error }) (*privicore.Profile, error) {
	var p privicore.Profile
	var created, updated int64
	if err := row.Scan(&p.ID, &p.Username, &p.GivenName, &p.FamilyName, &p.PasswordHash, &p.PublicKey, &created, &updated); err != nil {
		if isNoRows(err) {
			return nil, notFound("profile")
		}
		return nil, dbErr(err)
	}
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &p, nil
}

// usernameKey is the case-insensitive form a username is unique by.
func usernameKey(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// CreateProfile implements privicore.ProfileStore.
func (q queries) CreateProfile(ctx context.Context, p *privicore.Profile) error {
	_, err := q.exec(ctx, `INSERT INTO profiles (`+profileCols+`, username_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Username, p.GivenName, p.FamilyName, p.PasswordHash, p.PublicKey, nanos(p.CreatedAt), nanos(p.UpdatedAt), usernameKey(p.Username))
	if isUniqueViolation(err) {
		return &privicore.Error{Code: privicore.ECONFLICT, Reason: "profile.username_taken", Message: "username is taken"}
	}
	return dbErr(err)
}

// UpdateProfile implements privicore.ProfileStore.
func (q queries) UpdateProfile(ctx context.Context, p *privicore.Profile) error {
	n, err := affected(q.exec(ctx, `UPDATE profiles SET given_name = ?, family_name = ?, password_hash = ?, public_key = ?, updated_at = ? WHERE id = ?`,
		p.GivenName, p.FamilyName, p.PasswordHash, p.PublicKey, nanos(p.UpdatedAt), p.ID))
	if err == nil && n == 0 {
		return notFound("profile")
	}
	return err
}

// FindProfileByID implements privicore.ProfileStore.
func (q queries) FindProfileByID(ctx context.Context, id string) (*privicore.Profile, error) {
	return scanProfile(q.row(ctx, `SELECT `+profileCols+` FROM profiles WHERE id = ?`, id))
}

// FindProfileByUsername implements privicore.ProfileStore.
func (q queries) FindProfileByUsername(ctx context.Context, username string) (*privicore.Profile, error) {
	return scanProfile(q.row(ctx, `SELECT `+profileCols+` FROM profiles WHERE username_key = ?`, usernameKey(username)))
}

// ---- tokens ----

const tokenCols = `id, profile_id, kind, role, scope, ref, created_at, expires_at, revoked_at, used_at, application_id, family, pair`

// CreateToken implements privicore.TokenStore.
func (q queries) CreateToken(ctx context.Context, t *privicore.Token) error {
	_, err := q.exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.ProfileID, string(t.Kind), t.Role, strings.Join(t.Scope, " "), t.Ref,
		nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.RevokedAt), nanos(t.UsedAt), t.Application, t.Family, t.Pair)
	return dbErr(err)
}

// FindToken implements privicore.TokenStore.
func (q queries) FindToken(ctx context.Context, id string) (*privicore.Token, error) {
	var t privicore.Token
	var kind, scope string
	var created, expires, revoked, used int64
	err := q.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.ProfileID, &kind, &t.Role, &scope, &t.Ref, &created, &expires, &revoked, &used, &t.Application, &t.Family, &t.Pair)
	if isNoRows(err) {
		return nil, notFound("token")
	} else if err != nil {
		return nil, dbErr(err)
	}
	t.Kind = privicore.TokenKind(kind)
	if scope != "" {
		t.Scope = strings.Fields(scope)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &t, nil
}

// RevokeApplicationTokens implements privicore.TokenStore.
func (q queries) RevokeApplicationTokens(ctx context.Context, applicationID string, at time.Time) ([]string, error) {
	return q.revokeWhere(ctx, "application_id", applicationID, at)
}

// RevokeTokenFamily implements privicore.TokenStore.
func (q queries) RevokeTokenFamily(ctx context.Context, family string, at time.Time) ([]string, error) {
	return q.revokeWhere(ctx, "family", family, at)
}

// revokeWhere revokes the valid tokens whose column equals value.
func (q queries) revokeWhere(ctx context.Context, column, value string, at time.Time) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	ids, err := collect(ctx, q, scanString, `SELECT id FROM tokens WHERE `+column+` = ? AND revoked_at = 0`, value)
	if err != nil {
		return nil, err
	}
	if _, err := q.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE `+column+` = ? AND revoked_at = 0`, nanos(at), value); err != nil {
		return nil, dbErr(err)
	}
	return ids, nil
}

// RevokeToken implements privicore.TokenStore.
func (q queries) RevokeToken(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(at), id)
	return dbErr(err)
}

// UseToken implements privicore.TokenStore.
func (q queries) UseToken(ctx context.Context, id string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE tokens SET used_at = ? WHERE id = ? AND used_at = 0`, nanos(at), id))
	if err == nil && n == 0 {
		return notFound("token")
	}
	return err
}

// DeleteExpiredTokens implements privicore.TokenStore.
func (q queries) DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := affected(q.exec(ctx, `DELETE FROM tokens WHERE expires_at < ?`, nanos(before)))
	return int(n), err
}

// ---- commands ----

const commandCols = `id, profile_id, type, payload, status, body, attempts, created_at, updated_at, actor`

func scanCommand(row interface{ Scan(...any) error }) (*privicore.Command, error) {
	var c privicore.Command
	var payload string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.ProfileID, &c.Type, &payload, &c.Status, &c.Body, &c.Attempts, &created, &updated, &c.Actor); err != nil {
		if isNoRows(err) {
			return nil, notFound("command")
		}
		return nil, dbErr(err)
	}
	c.Payload = []byte(payload)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &c, nil
}

// CreateCommand implements privicore.CommandStore.
func (q queries) CreateCommand(ctx context.Context, c *privicore.Command) error {
	payload := string(c.Payload)
	if payload == "" {
		payload = "{}"
	}
	_, err := q.exec(ctx, `INSERT INTO commands (`+commandCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProfileID, c.Type, payload, int(c.Status), c.Body, c.Attempts, nanos(c.CreatedAt), nanos(c.UpdatedAt), c.Actor)
	if isUniqueViolation(err) {
		return privicore.Errorf(privicore.ECONFLICT, "command %s exists", c.ID)
	}
	return dbErr(err)
}

// FindCommand implements privicore.CommandStore.
func (q queries) FindCommand(ctx context.Context, id string) (*privicore.Command, error) {
	return scanCommand(q.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ?`, id))
}

// FindProfileCommand implements privicore.CommandStore.
func (q queries) FindProfileCommand(ctx context.Context, profileID, id string) (*privicore.Command, error) {
	return scanCommand(q.row(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ? AND profile_id = ?`, id, profileID))
}

// FinishCommand implements privicore.CommandStore.
func (q queries) FinishCommand(ctx context.Context, id string, status privicore.CommandStatus, body string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE commands SET status = ?, body = ?, updated_at = ? WHERE id = ? AND status = ?`,
		int(status), body, nanos(at), id, int(privicore.CommandPending)))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "command %s is not pending", id)
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
func (q queries) MarkCommandAttempt(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE commands SET attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = ?`,
		nanos(at), id, int(privicore.CommandPending))
	return dbErr(err)
}

// PendingCommands implements privicore.CommandStore.
func (q queries) PendingCommands(ctx context.Context, limit int) ([]*privicore.Command, error) {
	return collect(ctx, q, scanCommand, `SELECT `+commandCols+` FROM commands WHERE status = ? ORDER BY created_at, id LIMIT ?`, int(privicore.CommandPending), limit)
}
