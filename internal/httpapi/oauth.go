package httpapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/oauth"
)

// §5 OAuth applications. The owner's endpoints take the profile's own
// token; the application's endpoints authenticate with HTTP Basic.

func (s *Server) registerOAuthApplication(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.OAuth.Register(r.Context(), authFrom(r), p.String("name"), p.String("redirectUri", "redirect_uri"), p.Strings("scopes"))
	})
}

func (s *Server) retrieveOAuthConfiguration(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	app, secret, err := s.OAuth.Configuration(r.Context(), authFrom(r), p.String("applicationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.OAuthConfiguration{ApplicationID: app.ID, ClientID: app.ClientID, ClientSecret: secret,
		RedirectURI: app.RedirectURI, Scopes: app.Scopes})
}

func (s *Server) listOAuthApplications(w http.ResponseWriter, r *http.Request) {
	apps, err := s.OAuth.List(r.Context(), authFrom(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list := api.OAuthApplicationList{Items: make([]api.OAuthApplication, 0, len(apps))}
	for _, a := range apps {
		list.Items = append(list.Items, api.OAuthApplication{ApplicationID: a.ID, Name: a.Name, RedirectURI: a.RedirectURI, Scopes: a.Scopes,
			CreatedAt: a.CreatedAt})
	}
	list.Meta.Count = len(list.Items)
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) removeOAuthApplication(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.OAuth.Remove(r.Context(), authFrom(r), p.String("applicationId"))
	})
}

func (s *Server) requestAuthorizationCode(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.OAuth.RequestCode(r.Context(), authFrom(r), p.String("client_id", "clientId"), p.String("nonce"), p.Strings("scope"))
	})
}

// applicationScopeByID is the profile's view: the application's scopes.
func (s *Server) applicationScopeByID(w http.ResponseWriter, r *http.Request) {
	app, err := s.OAuth.Application(r.Context(), authFrom(r), r.PathValue("applicationId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.OAuthApplicationScope{ApplicationID: app.ID, Scopes: app.Scopes})
}

// basicAuth reads `Authorization: Basic …`: client credentials
// (base64 of clientId:clientSecret), or a bare token (a code or an access
// token, as some reference pages show), plain or base64-encoded.
func basicAuth(r *http.Request) (clientID, secret, token string) {
	h := r.Header.Get("Authorization")
	if len(h) < 6 || !strings.EqualFold(h[:6], "basic ") {
		return "", "", ""
	}
	v := strings.TrimSpace(h[6:])
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		if id, sec, ok := strings.Cut(string(b), ":"); ok {
			return id, sec, ""
		}
		return "", "", string(b)
	}
	return "", "", v
}

var errNoBasic = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid client credentials")

// client authenticates the calling application from Basic credentials; a
// bare token is returned for the endpoints that accept one instead.
func (s *Server) client(r *http.Request) (*privicore.OAuthApplication, string, error) {
	id, secret, token := basicAuth(r)
	switch {
	case id != "":
		app, err := s.OAuth.Client(r.Context(), id, secret)
		return app, "", err
	case token != "":
		return nil, token, nil
	}
	return nil, "", errNoBasic
}

// clientBody authenticates the calling application (client; a bare token
// only if bareOK) and binds the request's parameters. When ok is false it
// has answered the request.
func (s *Server) clientBody(w http.ResponseWriter, r *http.Request, bareOK bool) (app *privicore.OAuthApplication, bare string, p *params, ok bool) {
	app, bare, err := s.client(r)
	if err == nil && app == nil && !bareOK {
		err = errNoBasic
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, "", nil, false
	}
	p, ok = s.bind(w, r)
	return app, bare, p, ok
}

func (s *Server) retrieveAuthorizationCode(w http.ResponseWriter, r *http.Request) {
	app, _, p, ok := s.clientBody(w, r, false) // this step needs the client's own credentials
	if !ok {
		return
	}
	code, c, err := s.OAuth.RetrieveCode(r.Context(), app, p.String("id"), p.String("nonce"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.AuthorizationCode{ClientID: app.ClientID, Nonce: c.Nonce, AuthorizationCode: code, ExpiresAt: c.ExpiresAt})
}

func (s *Server) obtainAccessToken(w http.ResponseWriter, r *http.Request) {
	app, bare, p, ok := s.clientBody(w, r, true)
	if !ok {
		return
	}
	code := p.String("authorization_code", "authorizationCode")
	if code == "" && (p.String("grantType", "grant_type") == "authorization_code" || p.Has("code")) {
		code = p.String("code")
	}
	if app == nil && bare != code {
		// Basic <code>: the code is the credential, and must be the one sent.
		s.fail(w, r, errNoBasic)
		return
	}
	g, err := s.OAuth.ObtainToken(r.Context(), app, code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeGrant(w, g)
}

func (s *Server) refreshAccessToken(w http.ResponseWriter, r *http.Request) {
	app, access, p, ok := s.clientBody(w, r, true)
	if !ok {
		return
	}
	g, err := s.OAuth.Refresh(r.Context(), app, access, p.String("refresh_token", "refreshToken"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeGrant(w, g)
}

// writeGrant renders a token pair with every field name the reference uses.
func writeGrant(w http.ResponseWriter, g *oauth.Grant) {
	exp := g.AccessToken.ExpiresAt
	writeJSON(w, http.StatusOK, api.OAuthTokens{
		ClientID: g.Application.ClientID, Token: g.Access, AccessToken: g.Access,
		Type: "bearer", TokenType: "Bearer", Scope: strings.Join(g.AccessToken.Scope, " "),
		ExpiresAt: exp, ExpiresIn: int(time.Until(exp).Seconds() + 0.5),
		RefreshToken: g.Refresh, RefreshTokenExpiresAt: g.RefreshToken.ExpiresAt,
	})
}

// tokenScope is the application's view: Basic <access token>.
func (s *Server) tokenScope(w http.ResponseWriter, r *http.Request) {
	_, _, token := basicAuth(r)
	if token == "" {
		token = r.Header.Get(authHeader)
	}
	app, scopes, err := s.OAuth.TokenScope(r.Context(), token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.OAuthApplicationScope{ApplicationID: app, Scopes: scopes})
}
