package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/privicore/privicore/api"
)

// The owner's side of OAuth: register applications, retrieve their client
// secret (once), consent to grants, revoke. These need the profile's own
// token. The application's side (RetrieveAuthorizationCode, ObtainAccessToken,
// RefreshAccessToken, AccessTokenScope) authenticates with HTTP Basic and
// needs no profile token; an access token it obtains is an ordinary
// authorization token within its scopes: New(url, WithToken(tokens.AccessToken)).

// OAuthApplication is a registered application as listed.
type OAuthApplication = api.OAuthApplication

// OAuthConfiguration is what the one retrieval of an application's
// configuration returns; keep ClientSecret safe, it is never shown again.
type OAuthConfiguration = api.OAuthConfiguration

// AuthorizationCode is a retrieved code: exchange it once, before ExpiresAt.
type AuthorizationCode = api.AuthorizationCode

// OAuthTokens is an access and refresh token pair. Refreshing spends the
// refresh token and revokes the access token; presenting a spent refresh
// token revokes the whole grant.
type OAuthTokens = api.OAuthTokens

// RegisterOAuthApplication submits a registration; the command id is the
// application id. redirectURI must be an absolute https URL (http only for
// a loopback host); scopes come from the catalogue ("all", "profile:read",
// "data-token:read", "data-token:write", "device:read", "device:write",
// "voting:read", "voting:write", "policy:read", "policy:write").
func (c *Client) RegisterOAuthApplication(ctx context.Context, name, redirectURI string, scopes []string) (string, error) {
	return c.command(ctx, "/profile/oauth-application-register", nil,
		map[string]any{"name": name, "redirectUri": redirectURI, "scopes": scopes})
}

// OAuthConfiguration returns an application's client id and secret. It
// works once: a second call fails with reason oauth.already_retrieved.
func (c *Client) OAuthConfiguration(ctx context.Context, applicationID string) (OAuthConfiguration, error) {
	var out OAuthConfiguration
	_, _, err := c.do(ctx, http.MethodPost, "/profile/retrieve-oauth-application-configuration", nil,
		map[string]string{"applicationId": applicationID}, &out)
	return out, err
}

// OAuthApplications lists the profile's applications.
func (c *Client) OAuthApplications(ctx context.Context) ([]OAuthApplication, error) {
	var out api.OAuthApplicationList
	_, _, err := c.do(ctx, http.MethodGet, "/profile/retrieve-oauth-application-list", nil, nil, &out)
	return out.Items, err
}

// OAuthApplicationScope returns an application's registered scopes.
func (c *Client) OAuthApplicationScope(ctx context.Context, applicationID string) ([]string, error) {
	var out api.OAuthApplicationScope
	_, _, err := c.do(ctx, http.MethodGet, "/profile/retrieve-oauth-application-scope/"+url.PathEscape(applicationID), nil, nil, &out)
	return out.Scopes, err
}

// RemoveOAuthApplication submits the removal of an application: every
// token it holds dies at once.
func (c *Client) RemoveOAuthApplication(ctx context.Context, applicationID string) (string, error) {
	return c.command(ctx, "/profile/oauth-application-remove", nil, map[string]string{"applicationId": applicationID})
}

// RequestAuthorizationCode records the profile's consent to a grant of
// scopes (within the application's) for the application with clientID.
// The command id is what the application retrieves the code with, together
// with the nonce (never reuse one: NewNonce).
func (c *Client) RequestAuthorizationCode(ctx context.Context, clientID, nonce string, scopes []string) (string, error) {
	q := url.Values{"client_id": {clientID}, "nonce": {nonce}, "scope[]": scopes}
	var acc struct {
		CommandID string `json:"commandId"`
	}
	if _, _, err := c.do(ctx, http.MethodGet, "/profile/oauth-application-request-authorization-code?"+q.Encode(), nil, nil, &acc); err != nil {
		return "", err
	}
	if acc.CommandID == "" {
		return "", fmt.Errorf("request authorization code: no command id in the answer")
	}
	return acc.CommandID, nil
}

// NewNonce returns a fresh random nonce for RequestAuthorizationCode.
func NewNonce() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// basic is the header set of an application's own requests.
func basic(credentials string) http.Header {
	return http.Header{"Authorization": {"Basic " + credentials}, "X-No-Auth": {"1"}}
}

func clientCredentials(clientID, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(clientID + ":" + secret))
}

// RetrieveAuthorizationCode fetches, once, the code of the grant requested
// with id (RequestAuthorizationCode's command id); nonce must match.
func (c *Client) RetrieveAuthorizationCode(ctx context.Context, clientID, clientSecret, id, nonce string) (AuthorizationCode, error) {
	var out AuthorizationCode
	_, _, err := c.do(ctx, http.MethodPost, "/oauth-application/retrieve-authorization-code", basic(clientCredentials(clientID, clientSecret)),
		map[string]string{"id": id, "nonce": nonce}, &out)
	return out, err
}

// ObtainAccessToken exchanges a code, once, for a token pair.
func (c *Client) ObtainAccessToken(ctx context.Context, clientID, clientSecret, code string) (OAuthTokens, error) {
	var out OAuthTokens
	_, _, err := c.do(ctx, http.MethodPost, "/oauth-application/obtain-access-token", basic(clientCredentials(clientID, clientSecret)),
		map[string]string{"authorization_code": code}, &out)
	return out, err
}

// RefreshAccessToken rotates a token pair with the client's credentials.
func (c *Client) RefreshAccessToken(ctx context.Context, clientID, clientSecret, refreshToken string) (OAuthTokens, error) {
	var out OAuthTokens
	_, _, err := c.do(ctx, http.MethodPost, "/oauth-application/refresh-access-token", basic(clientCredentials(clientID, clientSecret)),
		map[string]string{"refresh_token": refreshToken}, &out)
	return out, err
}

// AccessTokenScope returns the application and the scopes of an access token.
func (c *Client) AccessTokenScope(ctx context.Context, accessToken string) (applicationID string, scopes []string, err error) {
	var out api.OAuthApplicationScope
	_, _, err = c.do(ctx, http.MethodPost, "/oauth-application/retrieve-oauth-application-scope", basic(strings.TrimSpace(accessToken)), nil, &out)
	return out.ApplicationID, out.Scopes, err
}
