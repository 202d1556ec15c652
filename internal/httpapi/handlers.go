package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/profile"
)

// ---- §1 command status ----

// callerID is the caller's profile id, or "" without a token.
func callerID(r *http.Request) string {
	if a := authFrom(r); a != nil {
		return a.Profile.ID
	}
	return ""
}

// requestStatus: 202 ["started"], 200 ["succeeded"], 404 ["rejected", reason].
func (s *Server) requestStatus(w http.ResponseWriter, r *http.Request) {
	c, err := s.Commands.Status(r.Context(), r.PathValue("commandId"), callerID(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch c.Status {
	case privicore.CommandSucceeded:
		writeJSON(w, http.StatusOK, []string{"succeeded"})
	case privicore.CommandRejected:
		writeJSON(w, http.StatusNotFound, []string{"rejected", c.Body})
	default:
		writeJSON(w, http.StatusAccepted, []string{"started"})
	}
}

// commandIDStatus is the object-shaped status of the reference pages.
func (s *Server) commandIDStatus(w http.ResponseWriter, r *http.Request) {
	c, err := s.Commands.Status(r.Context(), r.PathValue("commandId"), callerID(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"commandId": c.ID, "command_status": int(c.Status), "status": c.Status.String(), "body": c.Body,
	})
}

// ---- §2 utility ----

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	run := func(name string, check func(context.Context) error) {
		if err := check(ctx); err != nil {
			checks[name] = "down"
			ok = false
			s.Logger.Warn("health check failed", "check", name, "err", err)
		} else {
			checks[name] = "ok"
		}
	}
	run("database", s.Store.Ping)
	for name, check := range s.Checks {
		run(name, check)
	}
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "degraded", "checks": checks})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// ---- §3 profile ----

func (s *Server) registerProfile(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	c, err := s.Profiles.Register(r.Context(), profile.RegisterInput{
		Username: p.String("username"), Password: p.String("password"),
		GivenName: p.String("givenName", "given_name"), FamilyName: p.String("familyName", "family_name"),
	}, s.clientAddr(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	secret, t, err := s.Profiles.Authenticate(r.Context(), p.String("username"), p.String("password"), s.clientAddr(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.AuthorizationToken{AuthorizationToken: secret, ExpiresAt: t.ExpiresAt})
}

func (s *Server) retrieveProfileID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.ProfileID{ProfileID: authFrom(r).Profile.ID})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.Profiles.ChangePassword(r.Context(), authFrom(r),
			p.String("currentPassword", "current_password"), p.String("newPassword", "new_password"), s.clientAddr(r))
	})
}

func (s *Server) generateQRToken(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	secret, t, err := s.Profiles.GenerateQRToken(r.Context(), authFrom(r), p.String("role"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.QRToken{QRToken: secret, ExpiresAt: t.ExpiresAt})
}

func (s *Server) reauthorize(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	ttl, present, err := p.Int("ttl")
	if err != nil || !present {
		s.fail(w, r, privicore.Invalid("ttl", "must be a number of seconds from 60 to 2592000"))
		return
	}
	if ttl < 0 || ttl > int64(profile.MaxTTL/time.Second) {
		ttl = -1 // out of range either way; avoid overflow
	}
	secret, t, err := s.Profiles.Reauthorize(r.Context(), authFrom(r), time.Duration(ttl)*time.Second)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.AuthorizationToken{AuthorizationToken: secret, ExpiresAt: t.ExpiresAt})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := s.Profiles.Revoke(r.Context(), authFrom(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Revoked{Revoked: true})
}

func (s *Server) tokenExpiry(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.TokenExpiry{ExpiresAt: authFrom(r).Token.ExpiresAt})
}

func (s *Server) attemptAuthentication(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	id, err := s.Profiles.AttemptAuthentication(r.Context(), p.String("username"), p.String("password"), s.clientAddr(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []string{id})
}

func (s *Server) retrieveTempToken(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	tok, err := s.Profiles.RetrieveTempToken(r.Context(), p.String("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (s *Server) requestAuthorizationToken(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.Profiles.RequestAuthorizationToken(r.Context(), r.Header.Get(authHeader), p.Strings("scope"))
	})
}

func (s *Server) retrieveAuthorizationToken(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	id := p.String("request_auth_token_command_id", "requestAuthTokenCommandId", "id")
	secret, t, err := s.Profiles.RetrieveAuthorizationToken(r.Context(), r.Header.Get(authHeader), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.AuthorizationToken{AuthorizationToken: secret, ExpiresAt: t.ExpiresAt})
}

// ---- §4 public key ----

func (s *Server) generateKeys(w http.ResponseWriter, r *http.Request) {
	priv, err := keys.Generate()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.GeneratedKeys{Private: keys.EncodePrivate(priv), Public: keys.SignedPublic(priv)})
}

// registerPublicKey accepts a token or, without one, username and password
// in the body.
func (s *Server) registerPublicKey(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	var owner *privicore.Profile
	if secret := r.Header.Get(authHeader); profile.IsQRToken(secret) {
		// A device enrolling with a QR token registers its own key.
		a, err := s.Profiles.AuthorizeQR(r.Context(), secret)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		dev := p.String("deviceIdentifier", "deviceId")
		if err := device.CheckID("deviceIdentifier", dev); err != nil {
			s.fail(w, r, err)
			return
		}
		c, err := s.Profiles.RegisterKey(r.Context(), a.Profile.ID, p.String("publicKey", "public_key"), dev, a.Token.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeAccepted(w, c)
		return
	} else if secret != "" || p.String("username") == "" {
		a, err := s.Profiles.Authorize(r.Context(), r.Header.Get(authHeader))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// The profile's own key is the profile's own management (an
		// application must never set or replace it); a device's key is
		// device management.
		scope := profile.ProfileOnly
		if p.String("deviceIdentifier", "deviceId") != "" {
			scope = privicore.ScopeDeviceWrite
		}
		if err := a.Allow(scope); err != nil {
			s.fail(w, r, err)
			return
		}
		owner = a.Profile
	} else {
		prof, err := s.Profiles.ProfileByCredentials(r.Context(), p.String("username"), p.String("password"), s.clientAddr(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		owner = prof
	}
	dev := p.String("deviceIdentifier", "deviceId")
	if dev != "" {
		if err := device.CheckID("deviceIdentifier", dev); err != nil {
			s.fail(w, r, err)
			return
		}
		if !owner.Active() {
			s.fail(w, r, privicore.Forbidden(profile.ReasonPublicKeyRequired, "register the profile's public key first"))
			return
		}
	}
	c, err := s.Profiles.RegisterPublicKey(r.Context(), owner, p.String("publicKey", "public_key"), dev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) retrievePublicKey(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dev := q.Get("deviceIdentifier")
	if dev == "" {
		dev = q.Get("deviceId")
	}
	var key string
	var err error
	if dev != "" && s.Devices != nil {
		key, err = s.Devices.PublicKey(r.Context(), authFrom(r).Profile.ID, dev)
	} else {
		key, err = s.Profiles.PublicKey(r.Context(), authFrom(r), dev)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PublicKey{PublicKey: key})
}

func (s *Server) engineKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.PublicKey{PublicKey: s.EngineKey})
}
