package api

import (
	"encoding/json"
	"time"
)

// OAuth answers (spec §5): the owner's view of its applications, the one
// retrieval of an application's configuration, the authorization code,
// and token pairs. Times are written in privicore.TimeFormat (UTC) and
// read as RFC 3339.

// OAuthApplication is a registered application as listed.
type OAuthApplication struct {
	ApplicationID string    `json:"applicationId"`
	Name          string    `json:"name"`
	RedirectURI   string    `json:"redirectUri"`
	Scopes        []string  `json:"scopes"`
	CreatedAt     time.Time `json:"createdAt"`
}

// MarshalJSON implements json.Marshaler: CreatedAt in the wire's format.
func (a OAuthApplication) MarshalJSON() ([]byte, error) {
	type plain OAuthApplication
	return json.Marshal(struct {
		plain
		CreatedAt string `json:"createdAt"`
	}{plain(a), wireTime(a.CreatedAt)})
}

// OAuthApplicationList is the answer of retrieve-oauth-application-list:
// the profile's applications, oldest first.
type OAuthApplicationList struct {
	Items []OAuthApplication `json:"items"`
	Meta  struct {
		Count int `json:"count"` // len(Items)
	} `json:"meta"`
}

// OAuthConfiguration is what the one retrieval of an application's
// configuration returns; the client secret is never shown again.
type OAuthConfiguration struct {
	ApplicationID string   `json:"applicationId"`
	ClientID      string   `json:"clientId"`
	ClientSecret  string   `json:"clientSecret"`
	RedirectURI   string   `json:"redirectUri"`
	Scopes        []string `json:"scopes"`
}

// OAuthApplicationScope is an application's scopes: the registered ones
// (the owner's retrieve-oauth-application-scope/{id}) or an access token's
// (the application's retrieve-oauth-application-scope).
type OAuthApplicationScope struct {
	ApplicationID string   `json:"applicationId"`
	Scopes        []string `json:"scopes"`
}

// AuthorizationCode is a retrieved code: exchange it once, before ExpiresAt.
type AuthorizationCode struct {
	ClientID          string    `json:"clientId"`
	Nonce             string    `json:"nonce"`
	AuthorizationCode string    `json:"authorizationCode"`
	ExpiresAt         time.Time `json:"expiresAt"`
}

// MarshalJSON implements json.Marshaler: ExpiresAt in the wire's format.
func (c AuthorizationCode) MarshalJSON() ([]byte, error) {
	type plain AuthorizationCode
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(c), wireTime(c.ExpiresAt)})
}

// OAuthTokens is an access and refresh token pair, with every field name
// the reference uses (Token repeats AccessToken, Type and TokenType say
// "bearer"). Refreshing spends the refresh token and revokes the access
// token; presenting a spent refresh token revokes the whole grant.
type OAuthTokens struct {
	ClientID              string    `json:"clientId"`
	Token                 string    `json:"token"`       // the access token, as some reference pages name it
	AccessToken           string    `json:"accessToken"` // an X-DPT-AUTHORIZATION token within Scope
	Type                  string    `json:"type"`        // "bearer"
	TokenType             string    `json:"tokenType"`   // "Bearer"
	Scope                 string    `json:"scope"`       // space-separated
	ExpiresIn             int       `json:"expiresIn"`   // seconds from the answer until ExpiresAt
	RefreshToken          string    `json:"refreshToken"`
	ExpiresAt             time.Time `json:"expiresAt"` // the access token's expiry
	RefreshTokenExpiresAt time.Time `json:"refreshTokenExpiresAt"`
}

// MarshalJSON implements json.Marshaler: the times in the wire's format.
func (t OAuthTokens) MarshalJSON() ([]byte, error) {
	type plain OAuthTokens
	return json.Marshal(struct {
		plain
		ExpiresAt             string `json:"expiresAt"`
		RefreshTokenExpiresAt string `json:"refreshTokenExpiresAt"`
	}{plain(t), wireTime(t.ExpiresAt), wireTime(t.RefreshTokenExpiresAt)})
}
