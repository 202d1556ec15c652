package profile

import (
	"slices"

	"github.com/privicore/privicore"
)

// Auth is an authenticated caller: the profile and the token it presented
// (the profile's own, or an OAuth application's access token).
type Auth struct {
	Profile *privicore.Profile
	Token   *privicore.Token
}

// ReasonScopeMissing is the EFORBIDDEN reason for an OAuth access token used
// outside its scopes.
const ReasonScopeMissing = "oauth.scope_missing"

// Scopes an endpoint may demand besides the catalogue's.
const (
	ProfileOnly = ""    // only the profile's own tokens open it
	AnyScope    = "any" // every valid token, OAuth or not (status, channel, a token's own expiry and revocation)
)

// Application is the OAuth application acting, "" for the profile itself.
func (a *Auth) Application() string {
	if a.Token.Kind == privicore.TokenOAuth {
		return a.Token.Application
	}
	return ""
}

// Actor names the caller for the commands it submits: the OAuth
// application, or the first 12 hex digits of the token's hash.
func (a *Auth) Actor() string {
	if app := a.Application(); app != "" {
		return "application " + app
	}
	return "token " + a.Token.ID[:min(12, len(a.Token.ID))]
}

// Allow returns nil if the caller may use an endpoint that needs scope: a
// profile's own full token may use every endpoint; a scoped token (an OAuth
// access token, or a legacy-flow token asked for with scope[]) only those
// whose scope it was granted, never ProfileOnly ones (EFORBIDDEN with reason
// oauth.scope_missing).
func (a *Auth) Allow(scope string) error {
	if scope == AnyScope || a.fullToken() {
		return nil
	}
	if scope == ProfileOnly {
		return privicore.Forbidden(ReasonScopeMissing, "this endpoint needs the profile's own token")
	}
	if !privicore.ScopeCovers(a.Token.Scope, scope) {
		return privicore.Forbidden(ReasonScopeMissing, "the token lacks the scope %s", scope)
	}
	return nil
}

// fullToken reports whether the caller's token is the profile's own
// unscoped token (scope "all"; a token row without scope predates scopes).
func (a *Auth) fullToken() bool {
	return a.Token.Kind != privicore.TokenOAuth &&
		(len(a.Token.Scope) == 0 || slices.Contains(a.Token.Scope, privicore.ScopeAll))
}

// RequireActive returns EFORBIDDEN profile.public_key_required unless the
// caller's profile has registered its public key.
func RequireActive(a *Auth) error {
	if !a.Profile.Active() {
		return privicore.Forbidden(ReasonPublicKeyRequired, "register the profile's public key first")
	}
	return nil
}
