package oauth

import (
	"context"
	"crypto/subtle"
	"slices"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/profile"
)

// The authorization code: the owner's consent (a command), then the
// application's one retrieval of the code.

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
	app, err := q.FindOAuthApplicationByClientID(ctx, c.ProfileID, p.ClientID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
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

// RetrieveCode hands an authenticated application the code of one of its
// grants, once, when nonce matches the consent's exactly, within CodeTTL.
func (s *Service) RetrieveCode(ctx context.Context, app *privicore.OAuthApplication, id, nonce string) (string, *privicore.OAuthCode, error) {
	if id == "" {
		return "", nil, privicore.Invalid("id", "is required")
	}
	c, err := s.store.FindOAuthCode(ctx, app.ID, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
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
