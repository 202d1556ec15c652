package client

import (
	"context"
	"net/http"
	"time"

	"github.com/privicore/privicore/api"
)

// The profile: registration, login, tokens, passwords, QR enrollment tokens
// and public keys (spec §3, §4).

// Token is an issued authorization token.
type Token struct {
	Value     string    // T-…; send it as X-DPT-AUTHORIZATION (WithToken, SetToken)
	ExpiresAt time.Time // when it stops working
}

// RegisterProfileRequest is a new profile.
type RegisterProfileRequest struct {
	Username   string `json:"username"`             // 3–254 characters, unique case-insensitively
	Password   string `json:"password"`             // must pass the engine's entropy check
	GivenName  string `json:"givenName,omitempty"`  // optional
	FamilyName string `json:"familyName,omitempty"` // optional
}

// RegisterProfile submits a registration; the outcome's body is the new
// profile id.
func (c *Client) RegisterProfile(ctx context.Context, r RegisterProfileRequest) (string, error) {
	return c.command(ctx, "/profile/register-profile", noAuth, r)
}

// Authenticate exchanges username and password for a token, and makes it
// the client's token.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Token, error) {
	var t api.AuthorizationToken
	if _, _, err := c.do(ctx, http.MethodPost, "/profile/authenticate", noAuth, map[string]string{"username": username, "password": password}, &t); err != nil {
		return Token{}, err
	}
	c.SetToken(t.AuthorizationToken)
	return Token{Value: t.AuthorizationToken, ExpiresAt: t.ExpiresAt}, nil
}

// ProfileID returns the caller's profile id.
func (c *Client) ProfileID(ctx context.Context) (string, error) {
	var out api.ProfileID
	_, _, err := c.do(ctx, http.MethodGet, "/profile/retrieve-profile-id", nil, nil, &out)
	return out.ProfileID, err
}

// ChangePassword submits a password change (rejection
// profile.wrong_password for a wrong current password).
func (c *Client) ChangePassword(ctx context.Context, current, next string) (string, error) {
	return c.command(ctx, "/profile/change-password", nil, map[string]string{"currentPassword": current, "newPassword": next})
}

// QRToken is a device enrollment token.
type QRToken struct {
	Value     string    // single use
	ExpiresAt time.Time // 5 minutes after issue
}

// GenerateQRToken issues a single-use enrollment token; role may be "",
// "storage" or "authenticator".
func (c *Client) GenerateQRToken(ctx context.Context, role string) (QRToken, error) {
	var out api.QRToken
	body := map[string]string{}
	if role != "" {
		body["role"] = role
	}
	_, _, err := c.do(ctx, http.MethodPost, "/profile/generate-token-qr", nil, body, &out)
	return QRToken{Value: out.QRToken, ExpiresAt: out.ExpiresAt}, err
}

// Reauthorize issues a fresh token living ttl (60 s … 30 days). The client
// keeps its current token; use SetToken to switch.
func (c *Client) Reauthorize(ctx context.Context, ttl time.Duration) (Token, error) {
	var t api.AuthorizationToken
	_, _, err := c.do(ctx, http.MethodPost, "/profile/reauthorize-authorization-token", nil, map[string]int64{"ttl": int64(ttl / time.Second)}, &t)
	return Token{Value: t.AuthorizationToken, ExpiresAt: t.ExpiresAt}, err
}

// Revoke kills the client's token.
func (c *Client) Revoke(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodPost, "/profile/revoke-authorization-token", nil, nil, nil)
	return err
}

// TokenExpiry returns when the client's token expires.
func (c *Client) TokenExpiry(ctx context.Context) (time.Time, error) {
	var out api.TokenExpiry
	_, _, err := c.do(ctx, http.MethodPost, "/profile/authorization-token/expiry", nil, nil, &out)
	return out.ExpiresAt, err
}

// RegisterPublicKey submits the profile's signed public key (200 hex).
func (c *Client) RegisterPublicKey(ctx context.Context, signedKey string) (string, error) {
	return c.command(ctx, "/public-key/register-public-key", nil, map[string]string{"publicKey": signedKey})
}

// RegisterPublicKeyWithCredentials submits the key with username and
// password instead of a token.
func (c *Client) RegisterPublicKeyWithCredentials(ctx context.Context, username, password, signedKey string) (string, error) {
	return c.command(ctx, "/public-key/register-public-key", noAuth, map[string]string{"username": username, "password": password, "publicKey": signedKey})
}

// RetrievePublicKey returns the profile's registered signed public key (a
// 404 *Error when none is registered).
func (c *Client) RetrievePublicKey(ctx context.Context) (string, error) {
	var out api.PublicKey
	_, _, err := c.do(ctx, http.MethodGet, "/public-key/retrieve-public-key", nil, nil, &out)
	return out.PublicKey, err
}

// EnginePublicKey returns the engine's own signed public key.
func (c *Client) EnginePublicKey(ctx context.Context) (string, error) {
	var out api.PublicKey
	_, _, err := c.do(ctx, http.MethodGet, "/dptcab/public-key", nil, nil, &out)
	return out.PublicKey, err
}

// GenerateKeys asks the engine for a fresh key pair. Generating locally
// (GenerateKeyPair) is safer: the private key then never travels.
func (c *Client) GenerateKeys(ctx context.Context) (privateHex, signedPublicHex string, err error) {
	var out api.GeneratedKeys
	_, _, err = c.do(ctx, http.MethodGet, "/generate-keys", noAuth, nil, &out)
	return out.Private, out.Public, err
}
