package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

const oauthAppCols = `id, profile_id, name, redirect_uri, scopes, client_id, secret_hash, retrieved_at, created_at`

func scanOAuthApp(row interface{ Scan(...any) error }) (*privicore.OAuthApplication, error) {
	var a privicore.OAuthApplication
	var scopes string
	var retrieved, created int64
	err := row.Scan(&a.ID, &a.ProfileID, &a.Name, &a.RedirectURI, &scopes, &a.ClientID, &a.SecretHash, &retrieved, &created)
	if isNoRows(err) {
		return nil, notFound("oauth application")
	} else if err != nil {
		return nil, dbErr(err)
	}
	a.Scopes = strings.Fields(scopes)
	a.RetrievedAt, a.CreatedAt = fromNanos(retrieved), fromNanos(created)
	return &a, nil
}

// CreateOAuthApplication implements privicore.OAuthStore.
func (q queries) CreateOAuthApplication(ctx context.Context, a *privicore.OAuthApplication) error {
	_, err := q.exec(ctx, `INSERT INTO oauth_applications (`+oauthAppCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ProfileID, a.Name, a.RedirectURI, strings.Join(a.Scopes, " "), a.ClientID, a.SecretHash, nanos(a.RetrievedAt), nanos(a.CreatedAt))
	if isUniqueViolation(err) {
		return privicore.Errorf(privicore.ECONFLICT, "oauth application exists")
	}
	return dbErr(err)
}

// FindOAuthApplication implements privicore.OAuthStore.
func (q queries) FindOAuthApplication(ctx context.Context, profileID, id string) (*privicore.OAuthApplication, error) {
	return scanOAuthApp(q.row(ctx, `SELECT `+oauthAppCols+` FROM oauth_applications WHERE id = ? AND profile_id = ?`, id, profileID))
}

// FindOAuthApplicationByClientID implements privicore.OAuthStore.
func (q queries) FindOAuthApplicationByClientID(ctx context.Context, profileID, clientID string) (*privicore.OAuthApplication, error) {
	return scanOAuthApp(q.row(ctx, `SELECT `+oauthAppCols+` FROM oauth_applications WHERE client_id = ? AND profile_id = ?`, clientID, profileID))
}

// FindOAuthClient implements privicore.OAuthStore. Unscoped: it
// authenticates the application, before any profile acts.
func (q queries) FindOAuthClient(ctx context.Context, clientID string) (*privicore.OAuthApplication, error) {
	return scanOAuthApp(q.row(ctx, `SELECT `+oauthAppCols+` FROM oauth_applications WHERE client_id = ?`, clientID))
}

// ListOAuthApplications implements privicore.OAuthStore.
func (q queries) ListOAuthApplications(ctx context.Context, profileID string) ([]*privicore.OAuthApplication, error) {
	return collect(ctx, q, scanOAuthApp, `SELECT `+oauthAppCols+` FROM oauth_applications WHERE profile_id = ? ORDER BY created_at, id`, profileID)
}

// SetOAuthSecret implements privicore.OAuthStore.
func (q queries) SetOAuthSecret(ctx context.Context, id, secretHash string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE oauth_applications SET secret_hash = ?, retrieved_at = ? WHERE id = ? AND retrieved_at = 0`,
		secretHash, nanos(at), id))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "configuration already retrieved")
	}
	return err
}

// DeleteOAuthApplication implements privicore.OAuthStore.
func (q queries) DeleteOAuthApplication(ctx context.Context, id string) error {
	if _, err := q.exec(ctx, `DELETE FROM oauth_codes WHERE application_id = ?`, id); err != nil {
		return dbErr(err)
	}
	_, err := q.exec(ctx, `DELETE FROM oauth_applications WHERE id = ?`, id)
	return dbErr(err)
}

const oauthCodeCols = `id, application_id, profile_id, nonce, scopes, code_hash, created_at, expires_at, retrieved_at, used_at`

func scanOAuthCode(row interface{ Scan(...any) error }) (*privicore.OAuthCode, error) {
	var c privicore.OAuthCode
	var scopes string
	var created, expires, retrieved, used int64
	err := row.Scan(&c.ID, &c.ApplicationID, &c.ProfileID, &c.Nonce, &scopes, &c.CodeHash, &created, &expires, &retrieved, &used)
	if isNoRows(err) {
		return nil, notFound("authorization code")
	} else if err != nil {
		return nil, dbErr(err)
	}
	c.Scopes = strings.Fields(scopes)
	c.CreatedAt, c.ExpiresAt, c.RetrievedAt, c.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(retrieved), fromNanos(used)
	return &c, nil
}

// CreateOAuthCode implements privicore.OAuthStore.
func (q queries) CreateOAuthCode(ctx context.Context, c *privicore.OAuthCode) error {
	_, err := q.exec(ctx, `INSERT INTO oauth_codes (`+oauthCodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ApplicationID, c.ProfileID, c.Nonce, strings.Join(c.Scopes, " "), c.CodeHash,
		nanos(c.CreatedAt), nanos(c.ExpiresAt), nanos(c.RetrievedAt), nanos(c.UsedAt))
	if isUniqueViolation(err) {
		return &privicore.Error{Code: privicore.ECONFLICT, Reason: "oauth.nonce_reused", Message: "the nonce was used before"}
	}
	return dbErr(err)
}

// FindOAuthCode implements privicore.OAuthStore.
func (q queries) FindOAuthCode(ctx context.Context, applicationID, id string) (*privicore.OAuthCode, error) {
	return scanOAuthCode(q.row(ctx, `SELECT `+oauthCodeCols+` FROM oauth_codes WHERE id = ? AND application_id = ?`, id, applicationID))
}

// FindOAuthCodeByHash implements privicore.OAuthStore. Unscoped: the code
// is the credential.
func (q queries) FindOAuthCodeByHash(ctx context.Context, hash string) (*privicore.OAuthCode, error) {
	if hash == "" {
		return nil, notFound("authorization code")
	}
	return scanOAuthCode(q.row(ctx, `SELECT `+oauthCodeCols+` FROM oauth_codes WHERE code_hash = ?`, hash))
}

// SetOAuthCodeHash implements privicore.OAuthStore.
func (q queries) SetOAuthCodeHash(ctx context.Context, id, hash string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE oauth_codes SET code_hash = ?, retrieved_at = ? WHERE id = ? AND retrieved_at = 0`, hash, nanos(at), id))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "authorization code already retrieved")
	}
	return err
}

// UseOAuthCode implements privicore.OAuthStore.
func (q queries) UseOAuthCode(ctx context.Context, id string, at time.Time) error {
	n, err := affected(q.exec(ctx, `UPDATE oauth_codes SET used_at = ? WHERE id = ? AND used_at = 0`, nanos(at), id))
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "authorization code already used")
	}
	return err
}
