// Package oauth holds the rules of OAuth applications (spec §5): a profile
// registers an application with scopes from the catalogue, retrieves its
// client secret once, consents to authorization-code grants, and removes
// the application (every token it holds dies at once). The application
// retrieves its code with its client credentials and the nonce, exchanges
// the code once for an access and a refresh token, and rotates them.
//
// Secrets (client secrets, codes, access and refresh tokens) are 256-bit
// random, stored only as SHA-256 hashes, and looked up by hash or compared
// in constant time. A reused authorization code or refresh token revokes
// every token of its grant: a replay means a secret leaked.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/profile"
)

// Command types handled by this package.
const (
	CmdRegister    = "oauth.register"
	CmdRemove      = "oauth.remove"
	CmdRequestCode = "oauth.request_code"
)

// Reasons: rejections on acks, and the reason of 422 answers.
const (
	ReasonNotFound         = "oauth.application_not_found"
	ReasonAlreadyRetrieved = "oauth.already_retrieved"
	ReasonScopeNotAllowed  = "oauth.scope_not_allowed"
	ReasonNonceReused      = "oauth.nonce_reused"
	ReasonNonceMismatch    = "oauth.nonce_mismatch"
	ReasonCodeRetrieved    = "oauth.code_already_retrieved"
	ReasonCodeExpired      = "oauth.code_expired"
)

// Lifetimes.
const (
	CodeTTL    = 10 * time.Minute    // from consent to the exchange for tokens
	AccessTTL  = time.Hour           // access tokens
	RefreshTTL = 30 * 24 * time.Hour // refresh tokens
)

// Secret prefixes.
const (
	prefixClientSecret = "CS-"
	prefixCode         = "AC-"
	prefixRefresh      = "RT-"
)

// Service implements the OAuth rules.
type Service struct {
	store    privicore.Store
	cmds     *command.Processor
	profiles *profile.Service
	now      func() time.Time
}

// New returns the service and registers its command handlers with cmds.
func New(store privicore.Store, cmds *command.Processor, profiles *profile.Service) *Service {
	s := &Service{store: store, cmds: cmds, profiles: profiles, now: func() time.Time { return time.Now().UTC() }}
	cmds.Handle(CmdRegister, s.handleRegister)
	cmds.Event(CmdRegister, command.Fires(privicore.EventOAuthRegister))
	cmds.Handle(CmdRemove, s.handleRemove)
	cmds.Handle(CmdRequestCode, s.handleRequestCode)
	return s
}

var (
	errNotFound    = privicore.Errorf(privicore.ENOTFOUND, "oauth application not found")
	errBadClient   = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid client credentials")
	errBadCode     = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid, used or expired authorization code")
	errBadRefresh  = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid, used or expired refresh token")
	errCodeMissing = privicore.Errorf(privicore.ENOTFOUND, "authorization code request not found")
)

// ---- registration ----

type registerPayload struct {
	Name        string   `json:"name"`
	RedirectURI string   `json:"redirectUri"`
	Scopes      []string `json:"scopes"`
	ClientID    string   `json:"clientId"`
}

// Register validates and submits an application registration: name 1–128
// characters, an absolute https redirect URI (http only for a loopback
// host), at least one scope, each from the catalogue. The command id is
// the application id.
func (s *Service) Register(ctx context.Context, a *profile.Auth, name, redirectURI string, scopes []string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if n := utf8.RuneCountInString(strings.TrimSpace(name)); n < 1 || n > 128 {
		v.Add("name", "must be 1 to 128 characters")
	}
	if err := checkRedirectURI(redirectURI); err != "" {
		v.Add("redirectUri", err)
	}
	checkScopes(v, "scopes", scopes)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, a.Profile.ID, CmdRegister, registerPayload{Name: strings.TrimSpace(name), RedirectURI: redirectURI,
		Scopes: dedupe(scopes), ClientID: newClientID()})
}

// newClientID returns 128 random bits in hex.
func newClientID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// checkRedirectURI returns what is wrong with u, or "".
func checkRedirectURI(u string) string {
	if u == "" {
		return "is required"
	}
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.Host == "" || p.User != nil || p.Fragment != "" || len(u) > 2048 {
		return "must be an absolute URL without credentials or fragment"
	}
	switch p.Scheme {
	case "https":
		return ""
	case "http":
		host := p.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return ""
		}
		return "must use https (http only for a loopback host)"
	}
	return "must use https (http only for a loopback host)"
}

// checkScopes adds field errors unless scopes is a non-empty list from the
// catalogue.
func checkScopes(v privicore.ValidationErrors, field string, scopes []string) {
	if len(scopes) == 0 {
		v.Add(field, "must name at least one scope")
	}
	privicore.CheckScopes(v, field, scopes)
}

func dedupe(in []string) []string {
	out := []string{}
	for _, x := range in {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}

func (s *Service) handleRegister(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p registerPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	return command.Result{}, q.CreateOAuthApplication(ctx, &privicore.OAuthApplication{ID: c.ID, ProfileID: c.ProfileID,
		Name: p.Name, RedirectURI: p.RedirectURI, Scopes: p.Scopes, ClientID: p.ClientID, CreatedAt: s.now()})
}

// ---- the owner's operations ----

// Application returns one of the caller's applications; another profile's
// is ENOTFOUND, like a missing one.
func (s *Service) Application(ctx context.Context, a *profile.Auth, id string) (*privicore.OAuthApplication, error) {
	app, err := s.store.FindOAuthApplication(ctx, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && app.ProfileID != a.Profile.ID) {
		return nil, errNotFound
	}
	return app, err
}

// Configuration returns the application and its client secret, made now:
// it is shown this once. A second retrieval is EINVALID with reason
// oauth.already_retrieved.
func (s *Service) Configuration(ctx context.Context, a *profile.Auth, id string) (*privicore.OAuthApplication, string, error) {
	if id == "" {
		return nil, "", privicore.Invalid("applicationId", "is required")
	}
	app, err := s.Application(ctx, a, id)
	if err != nil {
		return nil, "", err
	}
	already := &privicore.Error{Code: privicore.EINVALID, Reason: ReasonAlreadyRetrieved, Message: "The configuration was already retrieved.",
		Fields: map[string][]string{"applicationId": {"the configuration can be retrieved only once"}}}
	if !app.RetrievedAt.IsZero() {
		return nil, "", already
	}
	secret := profile.NewSecret(prefixClientSecret)
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		return q.SetOAuthSecret(ctx, app.ID, profile.HashSecret(secret), s.now())
	})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return nil, "", already
	} else if err != nil {
		return nil, "", err
	}
	return app, secret, nil
}

// List returns the caller's applications.
func (s *Service) List(ctx context.Context, a *profile.Auth) ([]*privicore.OAuthApplication, error) {
	return s.store.ListOAuthApplications(ctx, a.Profile.ID)
}

type removePayload struct {
	ApplicationID string `json:"applicationId"`
}

// Remove submits the removal of one of the caller's applications: it and
// its pending codes go, and every token it holds is revoked in the same
// transaction (sockets joined with them are closed). An unknown or another
// profile's application is the rejection oauth.application_not_found.
func (s *Service) Remove(ctx context.Context, a *profile.Auth, id string) (*privicore.Command, error) {
	if id == "" {
		return nil, privicore.Invalid("applicationId", "is required")
	}
	return s.cmds.Submit(ctx, a.Profile.ID, CmdRemove, removePayload{ApplicationID: id})
}

func (s *Service) handleRemove(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p removePayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	app, err := q.FindOAuthApplication(ctx, p.ApplicationID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && app.ProfileID != c.ProfileID) {
		return command.Result{}, privicore.Reject(ReasonNotFound, "oauth application not found")
	} else if err != nil {
		return command.Result{}, err
	}
	if err := q.DeleteOAuthApplication(ctx, app.ID); err != nil {
		return command.Result{}, err
	}
	ids, err := q.RevokeApplicationTokens(ctx, app.ID, s.now())
	if err != nil {
		return command.Result{}, err
	}
	return command.Result{After: func() { s.profiles.Forget(c.ProfileID, ids) }}, nil
}

// ---- the authorization code ----

type requestCodePayload struct {
	ClientID string   `json:"clientId"`
	Nonce    string   `json:"nonce"`
	Scopes   []string `json:"scopes"`
}

// RequestCode submits the caller's consent to a grant for the application
// with clientID: the command id is the id the application retrieves the
// code with. The nonce (1–256 characters) may never have been used with the
// application (oauth.nonce_reused); the scopes must be within the
// application's (oauth.scope_not_allowed), "all" meaning all of them; only the application's owner may
// consent (oauth.application_not_found otherwise).
func (s *Service) RequestCode(ctx context.Context, a *profile.Auth, clientID, nonce string, scopes []string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if clientID == "" || len(clientID) > 128 {
		v.Add("client_id", "is required")
	}
	if n := len(nonce); n < 1 || n > 256 {
		v.Add("nonce", "must be 1 to 256 characters")
	}
	checkScopes(v, "scope", scopes)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, a.Profile.ID, CmdRequestCode, requestCodePayload{ClientID: clientID, Nonce: nonce, Scopes: dedupe(scopes)})
}

func (s *Service) handleRequestCode(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p requestCodePayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	app, err := q.FindOAuthApplicationByClientID(ctx, p.ClientID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && app.ProfileID != c.ProfileID) {
		return command.Result{}, privicore.Reject(ReasonNotFound, "oauth application not found")
	} else if err != nil {
		return command.Result{}, err
	}
	scopes, err := consentScopes(app.Scopes, p.Scopes)
	if err != nil {
		return command.Result{}, err
	}
	err = q.CreateOAuthCode(ctx, &privicore.OAuthCode{ID: c.ID, ApplicationID: app.ID, ProfileID: c.ProfileID, Nonce: p.Nonce,
		Scopes: scopes, CreatedAt: c.CreatedAt, ExpiresAt: c.CreatedAt.Add(CodeTTL)})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return command.Result{}, privicore.Reject(ReasonNonceReused, "the nonce was used before")
	}
	return command.Result{}, err
}

// consentScopes is what a consent to asked grants from an application
// registered with registered: "all" stands for every registered scope (not
// for a scope outside them), so the grant is exactly the registered scopes
// then; every other scope asked must be one of them (else
// oauth.scope_not_allowed, "all" or not).
func consentScopes(registered, asked []string) ([]string, error) {
	for _, sc := range asked {
		if sc != privicore.ScopeAll && !privicore.ScopeCovers(registered, sc) {
			return nil, privicore.Reject(ReasonScopeNotAllowed, "scope %s is not among the application's", sc)
		}
	}
	if slices.Contains(asked, privicore.ScopeAll) {
		return dedupe(registered), nil
	}
	return asked, nil
}

// Client authenticates an application by its client id and secret
// (EUNAUTHORIZED otherwise, the same answer for every failure).
func (s *Service) Client(ctx context.Context, clientID, secret string) (*privicore.OAuthApplication, error) {
	if clientID == "" || secret == "" || len(clientID) > 128 || len(secret) > 256 {
		return nil, errBadClient
	}
	app, err := s.store.FindOAuthApplicationByClientID(ctx, clientID)
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

// RetrieveCode hands an authenticated application the code of one of its
// grants, once, when nonce matches the consent's exactly, within CodeTTL.
func (s *Service) RetrieveCode(ctx context.Context, app *privicore.OAuthApplication, id, nonce string) (string, *privicore.OAuthCode, error) {
	if id == "" {
		return "", nil, privicore.Invalid("id", "is required")
	}
	c, err := s.store.FindOAuthCode(ctx, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && c.ApplicationID != app.ID) {
		return "", nil, errCodeMissing
	} else if err != nil {
		return "", nil, err
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(c.Nonce)) != 1 {
		return "", nil, &privicore.Error{Code: privicore.EINVALID, Reason: ReasonNonceMismatch, Message: "The given data was invalid.",
			Fields: map[string][]string{"nonce": {"does not match the request's nonce"}}}
	}
	if !s.now().Before(c.ExpiresAt) {
		return "", nil, &privicore.Error{Code: privicore.EINVALID, Reason: ReasonCodeExpired, Message: "The authorization code expired.",
			Fields: map[string][]string{"id": {"the authorization code expired"}}}
	}
	retrieved := &privicore.Error{Code: privicore.EINVALID, Reason: ReasonCodeRetrieved, Message: "The authorization code was already retrieved.",
		Fields: map[string][]string{"id": {"the authorization code can be retrieved only once"}}}
	if !c.RetrievedAt.IsZero() {
		return "", nil, retrieved
	}
	code := profile.NewSecret(prefixCode)
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		return q.SetOAuthCodeHash(ctx, c.ID, profile.HashSecret(code), s.now())
	})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return "", nil, retrieved
	} else if err != nil {
		return "", nil, err
	}
	return code, c, nil
}

// ---- tokens ----

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
		if app, err = s.store.FindOAuthApplication(ctx, c.ApplicationID); err != nil {
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
		if app, err = s.store.FindOAuthApplication(ctx, rt.Application); err != nil {
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
