package profile

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// The legacy four-step token flow: attempt-authentication (action id),
// temporary token, request-authorization-token command, retrieval.

// AttemptAuthentication is step 1: it checks credentials (rate-limited) and
// returns a single-use action id valid for 60 s.
func (s *Service) AttemptAuthentication(ctx context.Context, username, pw, addr string) (string, error) {
	p, err := s.checkCredentials(ctx, username, pw, addr)
	if err != nil {
		return "", err
	}
	secret, _, err := s.issue(ctx, p.ID, privicore.TokenAction, prefixAction, ActionTTL, "", "")
	return secret, err
}

// RetrieveTempToken is step 2: it spends the action id and returns a
// temporary token (single use, 60 s).
func (s *Service) RetrieveTempToken(ctx context.Context, actionID string) (string, error) {
	t, err := s.spend(ctx, actionID, privicore.TokenAction)
	if err != nil {
		return "", err
	}
	secret, _, err := s.issue(ctx, t.ProfileID, privicore.TokenTemp, prefixTemp, TempTTL, "", "")
	return secret, err
}

// spend marks a single-use token used and returns it.
func (s *Service) spend(ctx context.Context, secret string, kind privicore.TokenKind) (*privicore.Token, error) {
	t, err := s.tokens.lookup(ctx, secret, kind)
	if err != nil {
		return nil, err
	}
	err = s.store.Write(ctx, func(q privicore.Queries) error { return q.UseToken(ctx, t.ID, s.now()) })
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errInvalidToken
	}
	return t, err
}

type requestAuthTokenPayload struct {
	TempTokenID string   `json:"tempTokenId"`
	Scope       []string `json:"scope"`
}

// RequestAuthorizationToken is step 3: with a temporary token it submits a
// command asking for an authorization token within scope (scopes of the
// catalogue, EINVALID on "scope" otherwise). No scope, or "all", asks for
// the profile's full token; any other scope gives a token that acts like
// an OAuth access token with those scopes (Auth.Allow).
func (s *Service) RequestAuthorizationToken(ctx context.Context, tempSecret string, scope []string) (*privicore.Command, error) {
	t, err := s.tokens.lookup(ctx, tempSecret, privicore.TokenTemp)
	if err != nil {
		return nil, err
	}
	scope, err = legacyScope(scope)
	if err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, t.ProfileID, CmdRequestAuthToken, requestAuthTokenPayload{TempTokenID: t.ID, Scope: scope})
}

// legacyScope validates and normalises the scope[] of the legacy flow:
// none or one including "all" is ["all"]; otherwise the distinct scopes in
// the catalogue's order.
func legacyScope(scope []string) ([]string, error) {
	v := privicore.ValidationErrors{}
	if privicore.CheckScopes(v, "scope", scope); len(v) > 0 {
		return nil, v.Err()
	}
	if len(scope) == 0 || slices.Contains(scope, privicore.ScopeAll) {
		return []string{privicore.ScopeAll}, nil
	}
	var out []string
	for _, sc := range privicore.Scopes {
		if slices.Contains(scope, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func (s *Service) handleRequestAuthToken(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl requestAuthTokenPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	t, err := q.FindToken(ctx, pl.TempTokenID)
	if err != nil || !t.Valid(s.now()) || !t.UsedAt.IsZero() {
		return command.Result{}, privicore.Reject("profile.token_expired", "temporary token expired")
	}
	return command.Result{}, nil
}

// RetrieveAuthorizationToken is step 4: with the temporary token and the
// id of its succeeded step-3 command, it spends the temporary token and
// issues an authorization token.
func (s *Service) RetrieveAuthorizationToken(ctx context.Context, tempSecret, commandID string) (string, *privicore.Token, error) {
	t, err := s.tokens.lookup(ctx, tempSecret, privicore.TokenTemp)
	if err != nil {
		return "", nil, err
	}
	c, err := s.store.FindProfileCommand(ctx, t.ProfileID, commandID)
	if err != nil || c.Type != CmdRequestAuthToken {
		return "", nil, privicore.Errorf(privicore.ENOTFOUND, "authorization token request not found")
	}
	var pl requestAuthTokenPayload
	if json.Unmarshal(c.Payload, &pl) != nil || pl.TempTokenID != t.ID {
		return "", nil, privicore.Errorf(privicore.ENOTFOUND, "authorization token request not found")
	}
	if c.Status != privicore.CommandSucceeded {
		return "", nil, privicore.Errorf(privicore.ECONFLICT, "the authorization token request has not succeeded")
	}
	scope, err := legacyScope(pl.Scope)
	if err != nil {
		return "", nil, err
	}
	if _, err := s.spend(ctx, tempSecret, privicore.TokenTemp); err != nil {
		return "", nil, err
	}
	return s.issueScoped(ctx, t.ProfileID, privicore.TokenAuth, prefixAuth, s.cfg.TokenTTL, "", "", scope)
}
