package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

// Profiles and their tokens (the hashes of authorization, temporary, QR,
// OAuth access and refresh tokens).

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
	q.note(coherence.Profile, p.ID)
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
	var t tokenScan
	if err := q.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id).Scan(t.dest()...); isNoRows(err) {
		return nil, notFound("token")
	} else if err != nil {
		return nil, dbErr(err)
	}
	return t.token(), nil
}

// FindTokenWithProfile implements privicore.TokenStore.
func (q queries) FindTokenWithProfile(ctx context.Context, id string) (*privicore.Token, *privicore.Profile, error) {
	var t tokenScan
	var p privicore.Profile
	var pid, username, given, family, hash, key sql.NullString
	var created, updated sql.NullInt64
	err := q.row(ctx, `SELECT `+qualified("t", tokenCols)+`, `+qualified("p", profileCols)+`
		FROM tokens t LEFT JOIN profiles p ON p.id = t.profile_id WHERE t.id = ?`, id).
		Scan(append(t.dest(), &pid, &username, &given, &family, &hash, &key, &created, &updated)...)
	if isNoRows(err) {
		return nil, nil, notFound("token")
	} else if err != nil {
		return nil, nil, dbErr(err)
	}
	if !pid.Valid {
		return t.token(), nil, nil
	}
	p = privicore.Profile{ID: pid.String, Username: username.String, GivenName: given.String, FamilyName: family.String,
		PasswordHash: hash.String, PublicKey: key.String, CreatedAt: fromNanos(created.Int64), UpdatedAt: fromNanos(updated.Int64)}
	return t.token(), &p, nil
}

// tokenScan receives a row of tokenCols.
type tokenScan struct {
	t                               privicore.Token
	kind, scope                     string
	created, expires, revoked, used int64
}

func (s *tokenScan) dest() []any {
	return []any{&s.t.ID, &s.t.ProfileID, &s.kind, &s.t.Role, &s.scope, &s.t.Ref, &s.created, &s.expires, &s.revoked, &s.used,
		&s.t.Application, &s.t.Family, &s.t.Pair}
}

func (s *tokenScan) token() *privicore.Token {
	t := s.t
	t.Kind = privicore.TokenKind(s.kind)
	if s.scope != "" {
		t.Scope = strings.Fields(s.scope)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.UsedAt = fromNanos(s.created), fromNanos(s.expires), fromNanos(s.revoked), fromNanos(s.used)
	return &t
}

// qualified prefixes each of the comma-separated cols with alias.
func qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
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
	for _, id := range ids {
		q.note(coherence.Token, id)
	}
	return ids, nil
}

// RevokeToken implements privicore.TokenStore.
func (q queries) RevokeToken(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(at), id)
	q.note(coherence.Token, id)
	return dbErr(err)
}

// UseToken implements privicore.TokenStore.
func (q queries) UseToken(ctx context.Context, id string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE tokens SET used_at = ? WHERE id = ? AND used_at = 0`, nanos(at), id))
	if err == nil && n == 0 {
		return notFound("token")
	}
	q.note(coherence.Token, id)
	return err
}

// DeleteExpiredTokens implements privicore.TokenStore.
func (q queries) DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := affected(q.exec(ctx, `DELETE FROM tokens WHERE expires_at < ?`, nanos(before)))
	return int(n), err
}

// ---- commands ----
