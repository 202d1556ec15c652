package sqlstore

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/privicore/privicore"
)

const poolCols = `id, profile_id, command_id, event, title, question, nonce, detail, strategy, percentage, quorum_size, time_limit,
	eligible, attempt, max_attempts, state, created_at, expires_at, resolved_at`

func scanPool(row interface{ Scan(...any) error }) (*privicore.Pool, error) {
	var p privicore.Pool
	var detail, eligible string
	var created, expires, resolved int64
	err := row.Scan(&p.ID, &p.ProfileID, &p.CommandID, &p.Event, &p.Title, &p.Question, &p.Nonce, &detail, &p.Strategy, &p.Percentage,
		&p.QuorumSize, &p.TimeLimit, &eligible, &p.Attempt, &p.MaxAttempts, &p.State, &created, &expires, &resolved)
	if isNoRows(err) {
		return nil, notFound("pool")
	} else if err != nil {
		return nil, dbErr(err)
	}
	json.Unmarshal([]byte(detail), &p.Detail)
	json.Unmarshal([]byte(eligible), &p.Eligible)
	p.Eligible = nonNil(p.Eligible)
	p.CreatedAt, p.ExpiresAt, p.ResolvedAt = fromNanos(created), fromNanos(expires), fromNanos(resolved)
	return &p, nil
}

// CreatePool implements privicore.PoolStore.
func (q queries) CreatePool(ctx context.Context, p *privicore.Pool) error {
	detail, _ := json.Marshal(p.Detail)
	if p.Detail == nil {
		detail = []byte("{}")
	}
	eligible, _ := json.Marshal(nonNil(p.Eligible))
	_, err := q.exec(ctx, `INSERT INTO pools (`+poolCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.ProfileID, p.CommandID, p.Event, p.Title, p.Question, p.Nonce, string(detail), p.Strategy, p.Percentage,
		p.QuorumSize, p.TimeLimit, string(eligible), p.Attempt, p.MaxAttempts, p.State, nanos(p.CreatedAt), nanos(p.ExpiresAt), nanos(p.ResolvedAt))
	return dbErr(err)
}

// UpdatePool implements privicore.PoolStore.
func (q queries) UpdatePool(ctx context.Context, p *privicore.Pool) error {
	_, err := q.exec(ctx, `UPDATE pools SET attempt = ?, state = ?, expires_at = ?, resolved_at = ? WHERE id = ?`,
		p.Attempt, p.State, nanos(p.ExpiresAt), nanos(p.ResolvedAt), p.ID)
	return dbErr(err)
}

// withAnswers loads the current attempt's answers into p.
func (q queries) withAnswers(ctx context.Context, p *privicore.Pool, err error) (*privicore.Pool, error) {
	if err != nil {
		return nil, err
	}
	rows, err := q.rows(ctx, `SELECT device_id, yes, at FROM pool_answers WHERE pool_id = ? AND attempt = ? ORDER BY at, device_id`, p.ID, p.Attempt)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	p.Answers = []privicore.PoolAnswer{}
	for rows.Next() {
		var a privicore.PoolAnswer
		var yes int
		var at int64
		if err := rows.Scan(&a.DeviceID, &yes, &at); err != nil {
			return nil, dbErr(err)
		}
		a.Yes, a.At = yes == 1, fromNanos(at)
		p.Answers = append(p.Answers, a)
	}
	return p, dbErr(rows.Err())
}

// FindPool implements privicore.PoolStore.
func (q queries) FindPool(ctx context.Context, profileID, id string) (*privicore.Pool, error) {
	p, err := scanPool(q.row(ctx, `SELECT `+poolCols+` FROM pools WHERE id = ? AND profile_id = ?`, id, profileID))
	return q.withAnswers(ctx, p, err)
}

// FindPoolByCommand implements privicore.PoolStore.
func (q queries) FindPoolByCommand(ctx context.Context, profileID, commandID string) (*privicore.Pool, error) {
	p, err := scanPool(q.row(ctx, `SELECT `+poolCols+` FROM pools WHERE command_id = ? AND profile_id = ?`, commandID, profileID))
	return q.withAnswers(ctx, p, err)
}

// AddPoolAnswer implements privicore.PoolStore.
func (q queries) AddPoolAnswer(ctx context.Context, poolID string, attempt int, a privicore.PoolAnswer) error {
	yes := 0
	if a.Yes {
		yes = 1
	}
	_, err := q.exec(ctx, `INSERT INTO pool_answers (pool_id, attempt, device_id, yes, at) VALUES (?, ?, ?, ?, ?)`,
		poolID, attempt, a.DeviceID, yes, nanos(a.At))
	if isUniqueViolation(err) {
		return privicore.Errorf(privicore.ECONFLICT, "already answered")
	}
	return dbErr(err)
}

// OpenPools implements privicore.PoolStore.
func (q queries) OpenPools(ctx context.Context, dueBefore time.Time, limit int) ([]*privicore.Pool, error) {
	before := int64(math.MaxInt64)
	if !dueBefore.IsZero() {
		before = nanos(dueBefore)
	}
	return collect(ctx, q, scanPool, `SELECT `+poolCols+` FROM pools WHERE state = ? AND expires_at < ? ORDER BY expires_at LIMIT ?`,
		privicore.PoolOpen, before, limit)
}
