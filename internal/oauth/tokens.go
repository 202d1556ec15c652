package oauth

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/profile"
)

// Tokens: a code exchanged once for an access and a refresh token, the
// pair rotated with the refresh token, a replay revoking the whole grant.

// Grant is a freshly issued access and refresh token pair.
type Grant struct {
	Application  *privicore.OAuthApplication
	Access       string           // the access token ("T-…"): an X-DPT-AUTHORIZATION token within Scopes
	AccessToken  *privicore.Token //
	Refresh      string           // the refresh token ("RT-…")
	RefreshToken *privicore.Token //
}

// issue creates an access and a refresh token of one grant inside q.
func (s *Service) issue(ctx context.Context, q privicore.Queries, app *privicore.OAuthApplication, profileID, family string, scopes []string) (*Grant, error) {
	now := s.now()
	g := &Grant{Application: app, Access: profile.NewSecret(profile.PrefixAuth), Refresh: profile.NewSecret(prefixRefresh)}
	g.AccessToken = &privicore.Token{ID: profile.HashSecret(g.Access), ProfileID: profileID, Kind: privicore.TokenOAuth, Scope: scopes,
		Application: app.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(AccessTTL).Truncate(time.Second)}
	g.RefreshToken = &privicore.Token{ID: profile.HashSecret(g.Refresh), ProfileID: profileID, Kind: privicore.TokenRefresh, Scope: scopes,
		Application: app.ID, Family: family, Pair: g.AccessToken.ID, CreatedAt: now, ExpiresAt: now.Add(RefreshTTL).Truncate(time.Second)}
	if err := q.CreateToken(ctx, g.AccessToken); err != nil {
		return nil, err
	}
	return g, q.CreateToken(ctx, g.RefreshToken)
}

// revokeFamily revokes every token of a grant after a replay.
func (s *Service) revokeFamily(ctx context.Context, profileID, family string) error {
	var ids []string
	err := s.store.Write(ctx, func(q privicore.Queries) (err error) {
		ids, err = q.RevokeTokenFamily(ctx, family, s.now())
		return err
	})
	if err == nil {
		s.profiles.Forget(profileID, ids)
	}
	return err
}

// ObtainToken exchanges an authorization code for a token pair. app is the
// authenticated client, or nil when the code itself was the credential. A
// code already exchanged revokes every token issued from it.
func (s *Service) ObtainToken(ctx context.Context, app *privicore.OAuthApplication, code string) (*Grant, error) {
	if code == "" || len(code) > 256 {
		return nil, errBadCode
	}
	c, err := s.store.FindOAuthCodeByHash(ctx, profile.HashSecret(code))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errBadCode
	} else if err != nil {
		return nil, err
	}
	if app != nil && c.ApplicationID != app.ID {
		return nil, errBadCode
	}
	if !c.UsedAt.IsZero() {
		if err := s.revokeFamily(ctx, c.ProfileID, c.ID); err != nil {
			return nil, err
		}
		return nil, errBadCode
	}
	if !s.now().Before(c.ExpiresAt) {
		return nil, errBadCode
	}
	if app == nil {
		if app, err = s.store.FindOAuthApplication(ctx, c.ProfileID, c.ApplicationID); err != nil {
			return nil, errBadCode
		}
	}
	var g *Grant
	err = s.store.Write(ctx, func(q privicore.Queries) (err error) {
		if err := q.UseOAuthCode(ctx, c.ID, s.now()); err != nil {
			return err
		}
		g, err = s.issue(ctx, q, app, c.ProfileID, c.ID, c.Scopes)
		return err
	})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return nil, errBadCode // exchanged meanwhile
	}
	return g, err
}

// Refresh rotates a token pair: the refresh token is spent, its access
// token revoked, and a new pair of the same grant issued. The caller
// proves itself with the current access token (accessSecret, which may have
// expired but not been revoked) or as the authenticated client app. A
// refresh token presented twice revokes every token of its grant.
func (s *Service) Refresh(ctx context.Context, app *privicore.OAuthApplication, accessSecret, refreshSecret string) (*Grant, error) {
	if refreshSecret == "" || len(refreshSecret) > 256 || len(accessSecret) > 256 {
		return nil, errBadRefresh
	}
	rt, err := s.store.FindToken(ctx, profile.HashSecret(refreshSecret))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errBadRefresh
	} else if err != nil {
		return nil, err
	}
	if rt.Kind != privicore.TokenRefresh || !rt.Valid(s.now()) {
		return nil, errBadRefresh
	}
	if !rt.UsedAt.IsZero() {
		if err := s.revokeFamily(ctx, rt.ProfileID, rt.Family); err != nil {
			return nil, err
		}
		return nil, errBadRefresh
	}
	if app != nil {
		if app.ID != rt.Application {
			return nil, errBadRefresh
		}
	} else if subtle.ConstantTimeCompare([]byte(profile.HashSecret(accessSecret)), []byte(rt.Pair)) != 1 {
		return nil, errBadRefresh
	} else if at, err := s.store.FindToken(ctx, rt.Pair); err != nil || !at.RevokedAt.IsZero() {
		return nil, errBadRefresh
	}
	if app == nil {
		if app, err = s.store.FindOAuthApplication(ctx, rt.ProfileID, rt.Application); err != nil {
			return nil, errBadRefresh
		}
	}
	var g *Grant
	err = s.store.Write(ctx, func(q privicore.Queries) (err error) {
		if err := q.UseToken(ctx, rt.ID, s.now()); err != nil {
			return err
		}
		if err := q.RevokeToken(ctx, rt.Pair, s.now()); err != nil {
			return err
		}
		g, err = s.issue(ctx, q, app, rt.ProfileID, rt.Family, rt.Scope)
		return err
	})
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errBadRefresh // spent meanwhile
	} else if err != nil {
		return nil, err
	}
	s.profiles.Forget(rt.ProfileID, []string{rt.Pair})
	return g, nil
}

// TokenScope returns the application and the scopes of a valid access
// token (EUNAUTHORIZED for anything else, the profile's own tokens too).
func (s *Service) TokenScope(ctx context.Context, accessSecret string) (string, []string, error) {
	a, err := s.profiles.Authorize(ctx, accessSecret)
	if err != nil {
		return "", nil, err
	}
	if a.Token.Kind != privicore.TokenOAuth {
		return "", nil, privicore.Errorf(privicore.EUNAUTHORIZED, "not an OAuth access token")
	}
	return a.Token.Application, a.Token.Scope, nil
}
