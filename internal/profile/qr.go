package profile

import (
	"context"
	"strings"

	"github.com/privicore/privicore"
)

// QR enrollment tokens: a profile issues one, a device enrolls with it once.

// Device roles a QR token may carry.
var qrRoles = map[string]bool{"": true, "storage": true, "authenticator": true}

// GenerateQRToken issues a single-use device enrollment token (5 minutes),
// optionally carrying the role to grant the enrolled device.
func (s *Service) GenerateQRToken(ctx context.Context, a *Auth, role string) (string, *privicore.Token, error) {
	if !qrRoles[role] {
		return "", nil, privicore.Invalid("role", "must be storage or authenticator")
	}
	return s.issue(ctx, a.Profile.ID, privicore.TokenQR, prefixQR, QRTTL, role, "")
}

// IsQRToken reports whether secret has the form of an enrollment token.
func IsQRToken(secret string) bool { return strings.HasPrefix(secret, prefixQR) }

// AuthorizeQR resolves an enrollment token (spent or not, until it
// expires) to its owner. Use SpendQR to bind it to a new device.
func (s *Service) AuthorizeQR(ctx context.Context, secret string) (*Auth, error) {
	t, err := s.tokens.lookupAny(ctx, secret, privicore.TokenQR)
	if err != nil {
		return nil, err
	}
	p, err := s.store.FindProfileByID(ctx, t.ProfileID)
	if err != nil {
		return nil, errInvalidToken
	}
	return &Auth{Profile: p, Token: t}, nil
}

// SpendQR marks an enrollment token used; a token already used is
// EUNAUTHORIZED (one QR token enrolls one device).
func (s *Service) SpendQR(ctx context.Context, t *privicore.Token) error {
	err := s.store.Write(ctx, func(q privicore.Queries) error { return q.UseToken(ctx, t.ID, s.now()) })
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return errInvalidToken
	}
	return err
}
