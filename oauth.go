package privicore

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The scope catalogue (spec §5). An OAuth access token acts as its profile
// only on endpoints whose scope it holds; ScopeAll covers every scope.
// Endpoints that manage the profile itself (password, keys, tokens, OAuth
// applications) need the profile's own token: no scope opens them.
const (
	ScopeAll            = "all"
	ScopeProfileRead    = "profile:read"
	ScopeDataTokenRead  = "data-token:read"
	ScopeDataTokenWrite = "data-token:write"
	ScopeDeviceRead     = "device:read"
	ScopeDeviceWrite    = "device:write"
	ScopeVotingRead     = "voting:read"
	ScopeVotingWrite    = "voting:write"
	ScopePolicyRead     = "policy:read"
	ScopePolicyWrite    = "policy:write"
)

// Scopes lists the catalogue, in the spec's order.
var Scopes = []string{ScopeAll, ScopeProfileRead, ScopeDataTokenRead, ScopeDataTokenWrite, ScopeDeviceRead,
	ScopeDeviceWrite, ScopeVotingRead, ScopeVotingWrite, ScopePolicyRead, ScopePolicyWrite}

// KnownScope reports whether s is in the catalogue.
func KnownScope(s string) bool { return slices.Contains(Scopes, s) }

// CheckScopes adds a field error to v for each scope not in the catalogue.
func CheckScopes(v ValidationErrors, field string, scopes []string) {
	for _, sc := range scopes {
		if !KnownScope(sc) {
			v.Add(field, "unknown scope "+sc+"; known: "+strings.Join(Scopes, ", "))
		}
	}
}

// ScopeCovers reports whether the granted scopes include need.
func ScopeCovers(granted []string, need string) bool {
	return slices.Contains(granted, ScopeAll) || slices.Contains(granted, need)
}

// OAuthApplication is an integration registered by a profile to act on its
// behalf. Only its owner sees or changes it. The client secret exists only
// from the one retrieval of the configuration on, and only as a hash.
type OAuthApplication struct {
	ID          string    // the register command's id
	ProfileID   string    // the owner
	Name        string    //
	RedirectURI string    // absolute https URL (http only for loopback hosts)
	Scopes      []string  // from the catalogue
	ClientID    string    // public identifier
	SecretHash  string    // SHA-256 of the client secret; "" until retrieved
	RetrievedAt time.Time // when the configuration (with the secret) was retrieved; zero before
	CreatedAt   time.Time //
}

// OAuthCode is an authorization-code grant: the owner consented (the request
// command, whose id is ID), the application retrieves the code once with its
// client credentials and the nonce, and exchanges it once for tokens before
// ExpiresAt.
type OAuthCode struct {
	ID            string    // the request command's id
	ApplicationID string    //
	ProfileID     string    // the consenting profile
	Nonce         string    // unique per application, forever
	Scopes        []string  // granted (within the application's)
	CodeHash      string    // SHA-256 of the code; "" until retrieved
	CreatedAt     time.Time //
	ExpiresAt     time.Time //
	RetrievedAt   time.Time // zero until the code was retrieved
	UsedAt        time.Time // zero until exchanged for tokens
}

// OAuthStore persists OAuth applications and authorization codes.
type OAuthStore interface {
	// CreateOAuthApplication inserts a.
	CreateOAuthApplication(ctx context.Context, a *OAuthApplication) error
	// FindOAuthApplication returns the profile's application with the id,
	// or ENOTFOUND (another profile's application too).
	FindOAuthApplication(ctx context.Context, profileID, id string) (*OAuthApplication, error)
	// FindOAuthApplicationByClientID returns the profile's application with
	// the client id, or ENOTFOUND (another profile's application too).
	FindOAuthApplicationByClientID(ctx context.Context, profileID, clientID string) (*OAuthApplication, error)
	// FindOAuthClient returns the application with the client id, whoever
	// owns it, or ENOTFOUND. It is unscoped because it authenticates the
	// application itself (HTTP Basic with its client credentials): no
	// profile is acting yet, and the caller must check the client secret.
	FindOAuthClient(ctx context.Context, clientID string) (*OAuthApplication, error)
	// ListOAuthApplications returns a profile's applications, oldest first.
	ListOAuthApplications(ctx context.Context, profileID string) ([]*OAuthApplication, error)
	// SetOAuthSecret records the client secret's hash, only if none was
	// recorded yet (ECONFLICT otherwise).
	SetOAuthSecret(ctx context.Context, id, secretHash string, at time.Time) error
	// DeleteOAuthApplication removes the application and its codes.
	DeleteOAuthApplication(ctx context.Context, id string) error
	// CreateOAuthCode inserts c; a nonce the application used before is
	// ECONFLICT.
	CreateOAuthCode(ctx context.Context, c *OAuthCode) error
	// FindOAuthCode returns the application's grant with the id, or
	// ENOTFOUND (another application's grant too).
	FindOAuthCode(ctx context.Context, applicationID, id string) (*OAuthCode, error)
	// FindOAuthCodeByHash returns the grant whose code hashes to hash, or
	// ENOTFOUND. It is unscoped because the code is the credential: whoever
	// holds it presents it (with or without client credentials, which the
	// caller then checks against the grant's application).
	FindOAuthCodeByHash(ctx context.Context, hash string) (*OAuthCode, error)
	// SetOAuthCodeHash records the code's hash, only if the code was not
	// retrieved yet (ECONFLICT otherwise).
	SetOAuthCodeHash(ctx context.Context, id, hash string, at time.Time) error
	// UseOAuthCode marks the code exchanged, only if it was not yet
	// (ECONFLICT otherwise).
	UseOAuthCode(ctx context.Context, id string, at time.Time) error
}
