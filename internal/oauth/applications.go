package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/profile"
)

// Applications: registration, the owner's view, the one retrieval of the
// client secret, and removal.

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

func (s *Service) handleRegister(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p registerPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	return command.Result{}, q.CreateOAuthApplication(ctx, &privicore.OAuthApplication{ID: c.ID, ProfileID: c.ProfileID,
		Name: p.Name, RedirectURI: p.RedirectURI, Scopes: p.Scopes, ClientID: p.ClientID, CreatedAt: s.now()})
}

// Application returns one of the caller's applications; another profile's
// is ENOTFOUND, like a missing one.
func (s *Service) Application(ctx context.Context, a *profile.Auth, id string) (*privicore.OAuthApplication, error) {
	app, err := s.store.FindOAuthApplication(ctx, a.Profile.ID, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
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
	app, err := q.FindOAuthApplication(ctx, c.ProfileID, p.ApplicationID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
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
