package api

import (
	"encoding/json"
	"time"
)

// The profile's answers (spec §3, §4): issued tokens, the profile id, a
// token's expiry, QR enrollment tokens and public keys. Times are written
// in privicore.TimeFormat (UTC) and read as RFC 3339.

// AuthorizationToken is the answer of every endpoint that issues an
// authorization token: authenticate, reauthorize-authorization-token and
// the legacy flow's retrieve-authorization-token.
type AuthorizationToken struct {
	AuthorizationToken string    `json:"authorizationToken"` // the secret (T-…), shown only in this answer
	ExpiresAt          time.Time `json:"expiresAt"`          // when it stops working
}

// MarshalJSON implements json.Marshaler: ExpiresAt in the wire's format.
func (t AuthorizationToken) MarshalJSON() ([]byte, error) {
	type plain AuthorizationToken
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(t), wireTime(t.ExpiresAt)})
}

// ProfileID is the answer of retrieve-profile-id.
type ProfileID struct {
	ProfileID string `json:"profileId"`
}

// TokenExpiry is the answer of authorization-token/expiry: when the
// presented token expires.
type TokenExpiry struct {
	ExpiresAt time.Time `json:"expiresAt"`
}

// MarshalJSON implements json.Marshaler: ExpiresAt in the wire's format.
func (t TokenExpiry) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ExpiresAt string `json:"expiresAt"`
	}{wireTime(t.ExpiresAt)})
}

// Revoked is the answer of revoke-authorization-token.
type Revoked struct {
	Revoked bool `json:"revoked"`
}

// QRToken is the answer of generate-token-qr: a single-use device
// enrollment token, valid for 5 minutes.
type QRToken struct {
	QRToken   string    `json:"qrToken"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// MarshalJSON implements json.Marshaler: ExpiresAt in the wire's format.
func (t QRToken) MarshalJSON() ([]byte, error) {
	type plain QRToken
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(t), wireTime(t.ExpiresAt)})
}

// PublicKey is the answer of retrieve-public-key and of the engine's own
// public-key endpoint: a signed public key (200 hex).
type PublicKey struct {
	PublicKey string `json:"publicKey"`
}

// GeneratedKeys is the answer of generate-keys: a fresh key pair.
type GeneratedKeys struct {
	Private string `json:"private"` // the private key, hex
	Public  string `json:"public"`  // the signed public key (200 hex)
}
