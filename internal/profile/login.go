package profile

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// Authentication: a login issues a token, a token resolves to its caller
// (cached briefly, authcache.go), a caller reauthorizes or revokes.

// Authenticate checks username and password (rate-limited per username and
// per client address addr) and issues an authorization token with the
// default lifetime. It returns the token's secret, shown only now.
func (s *Service) Authenticate(ctx context.Context, username, pw, addr string) (string, *privicore.Token, error) {
	p, err := s.checkCredentials(ctx, username, pw, addr)
	if err != nil {
		return "", nil, err
	}
	return s.issue(ctx, p.ID, privicore.TokenAuth, prefixAuth, s.cfg.TokenTTL, "", "")
}

// ProfileByCredentials returns the profile for username and password, under
// the same limits as Authenticate (for endpoints that take credentials in
// the body).
func (s *Service) ProfileByCredentials(ctx context.Context, username, pw, addr string) (*privicore.Profile, error) {
	return s.checkCredentials(ctx, username, pw, addr)
}

// issue stores a new full token and returns its secret.
func (s *Service) issue(ctx context.Context, profileID string, kind privicore.TokenKind, prefix string, ttl time.Duration, role, ref string) (string, *privicore.Token, error) {
	return s.issueScoped(ctx, profileID, kind, prefix, ttl, role, ref, []string{privicore.ScopeAll})
}

// issueScoped stores a new token within scope and returns its secret.
func (s *Service) issueScoped(ctx context.Context, profileID string, kind privicore.TokenKind, prefix string, ttl time.Duration, role, ref string, scope []string) (string, *privicore.Token, error) {
	secret := NewSecret(prefix)
	now := s.now()
	t := &privicore.Token{ID: HashSecret(secret), ProfileID: profileID, Kind: kind, Role: role, Ref: ref,
		Scope: scope, CreatedAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Second)}
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.CreateToken(ctx, t) }); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// Authorize resolves an X-DPT-AUTHORIZATION secret to its caller. Any
// missing, unknown, expired or revoked token is EUNAUTHORIZED.
func (s *Service) Authorize(ctx context.Context, secret string) (*Auth, error) {
	if secret == "" || len(secret) > 256 {
		return nil, errInvalidToken
	}
	id := HashSecret(secret)
	if a := s.auths.get(id, s.now()); a != nil {
		return a, nil
	}
	gen := s.auths.generation() // before the read: a revoke meanwhile keeps it out of the cache
	a, err := s.authorize(ctx, secret)
	if err == nil {
		s.auths.put(id, a, s.now(), gen)
	}
	return a, err
}

func (s *Service) authorize(ctx context.Context, secret string) (*Auth, error) {
	t, p, err := s.tokens.authWithProfile(ctx, secret) // one read: every authorized request makes it
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalidToken // its profile is gone
	}
	return &Auth{Profile: p, Token: t}, nil
}

// Forget closes the sockets joined with tokens revoked outside this
// service (OAuth revocations); the store's notes of the revocations have
// dropped them from every auth cache.
func (s *Service) Forget(profileID string, tokenIDs []string) {
	for _, id := range tokenIDs {
		s.onRevoke(id)
	}
}

// Reauthorize issues a fresh token for the caller with the given ttl
// (60 s … 30 days); the presented token keeps its own expiry.
func (s *Service) Reauthorize(ctx context.Context, a *Auth, ttl time.Duration) (string, *privicore.Token, error) {
	if err := a.Allow(ProfileOnly); err != nil {
		return "", nil, err
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return "", nil, privicore.Invalid("ttl", "must be a number of seconds from 60 to 2592000")
	}
	return s.issue(ctx, a.Profile.ID, privicore.TokenAuth, prefixAuth, ttl, "", "")
}

// Revoke kills the caller's token at once: later requests get 401 and the
// sockets joined with it are closed.
func (s *Service) Revoke(ctx context.Context, a *Auth) error {
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.RevokeToken(ctx, a.Token.ID, s.now()) }); err != nil {
		return err
	}
	s.onRevoke(a.Token.ID)
	return nil
}
