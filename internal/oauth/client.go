package oauth

import (
	"context"
	"crypto/subtle"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/profile"
)

// Client authenticates an application by its client id and secret
// (EUNAUTHORIZED otherwise, the same answer for every failure).
func (s *Service) Client(ctx context.Context, clientID, secret string) (*privicore.OAuthApplication, error) {
	if clientID == "" || secret == "" || len(clientID) > 128 || len(secret) > 256 {
		return nil, errBadClient
	}
	app, err := s.store.FindOAuthClient(ctx, clientID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errBadClient
	} else if err != nil {
		return nil, err
	}
	if app.SecretHash == "" || subtle.ConstantTimeCompare([]byte(profile.HashSecret(secret)), []byte(app.SecretHash)) != 1 {
		return nil, errBadClient
	}
	return app, nil
}
