package profile

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"time"

	"github.com/privicore/privicore"
)

// Token prefixes: what kind of secret a string is, at a glance.
const (
	prefixAuth   = "T-"  // authorization token
	prefixQR     = "QR-" // device enrollment token
	prefixTemp   = "TT-" // temporary token of the legacy flow
	prefixAction = "A-"  // attempt-authentication action id
)

// PrefixAuth starts every authorization token, OAuth access tokens included.
const PrefixAuth = prefixAuth

// NewSecret returns prefix + 256 random bits, URL-safe.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the id a secret is stored under: hex SHA-256. Secrets
// are 256-bit random, so a fast hash is enough; the lookup by hash means no
// secret is ever compared byte by byte.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Tokens resolves secrets to their stored tokens, reading the store every
// time (no cache: a revocation is seen at once). It needs nothing but the
// store, so the WebSocket hub can check channel joins with it before the
// service that revokes tokens (and closes the hub's sockets) exists.
type Tokens struct {
	store privicore.Store
	now   func() time.Time
}

// NewTokens returns the resolver of secrets stored in store.
func NewTokens(store privicore.Store) *Tokens {
	return &Tokens{store: store, now: func() time.Time { return time.Now().UTC() }}
}

// Channel returns the valid token a socket joins its channel with. OAuth
// access tokens may join too: an application needs its commands' acks; the
// token's kind, scopes and application say which events it may read.
func (ts *Tokens) Channel(ctx context.Context, secret string) (*privicore.Token, error) {
	return ts.auth(ctx, secret)
}

// auth returns the valid authorization token for secret: the profile's own
// or an OAuth access token.
func (ts *Tokens) auth(ctx context.Context, secret string) (*privicore.Token, error) {
	return ts.lookup(ctx, secret, privicore.TokenAuth, privicore.TokenOAuth)
}

// authWithProfile is auth with the token's profile, read together (nil
// when the profile no longer exists).
func (ts *Tokens) authWithProfile(ctx context.Context, secret string) (*privicore.Token, *privicore.Profile, error) {
	if secret == "" || len(secret) > 256 {
		return nil, nil, errInvalidToken
	}
	t, p, err := ts.store.FindTokenWithProfile(ctx, HashSecret(secret))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, nil, errInvalidToken
	} else if err != nil {
		return nil, nil, err
	}
	if err := ts.usable(t, privicore.TokenAuth, privicore.TokenOAuth); err != nil {
		return nil, nil, err
	}
	return t, p, nil
}

// usable checks that t is valid now, unspent, and of one of kinds.
func (ts *Tokens) usable(t *privicore.Token, kinds ...privicore.TokenKind) error {
	if !slices.Contains(kinds, t.Kind) || !t.Valid(ts.now()) || !t.UsedAt.IsZero() {
		return errInvalidToken
	}
	return nil
}

// lookup returns the valid, unspent token of one of kinds for secret.
func (ts *Tokens) lookup(ctx context.Context, secret string, kinds ...privicore.TokenKind) (*privicore.Token, error) {
	t, err := ts.lookupAny(ctx, secret, kinds...)
	if err != nil {
		return nil, err
	}
	if !t.UsedAt.IsZero() {
		return nil, errInvalidToken
	}
	return t, nil
}

// lookupAny returns the valid token of one of kinds for secret, spent or not.
func (ts *Tokens) lookupAny(ctx context.Context, secret string, kinds ...privicore.TokenKind) (*privicore.Token, error) {
	if secret == "" || len(secret) > 256 {
		return nil, errInvalidToken
	}
	t, err := ts.store.FindToken(ctx, HashSecret(secret))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	if !slices.Contains(kinds, t.Kind) || !t.Valid(ts.now()) {
		return nil, errInvalidToken
	}
	return t, nil
}
