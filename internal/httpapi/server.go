// Package httpapi is the engine's HTTP API: routing (routes.go lists every
// route), request binding for JSON and form bodies, authentication
// middleware, and error rendering. Handlers bind, validate the shape and
// render; the rules live in the domain packages.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/oauth"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/storage"
	"github.com/privicore/privicore/internal/voting"
)

// DefaultMaxBody bounds request bodies.
const DefaultMaxBody = 4 << 20

// Server holds what the handlers need.
type Server struct {
	Store      privicore.Store
	Commands   *command.Processor
	Profiles   *profile.Service
	Devices    *device.Service
	Storage    *storage.Service
	DataTokens *datatoken.Service
	OAuth      *oauth.Service
	Voting     *voting.Service
	Channels   http.Handler // the WebSocket channel proxy, served at /ws
	EngineKey  string       // the engine's signed public key (200 hex)
	Logger     *slog.Logger
	MaxBody    int64 // request body limit; default DefaultMaxBody
	// Checks are extra health checks (e.g. the bus) by name.
	Checks map[string]func(context.Context) error
}

// authHeader carries the authorization token.
const authHeader = "X-DPT-AUTHORIZATION"

type ctxKey int

const authKey ctxKey = 0

// authFrom returns the caller set by the auth middleware.
func authFrom(r *http.Request) *profile.Auth {
	a, _ := r.Context().Value(authKey).(*profile.Auth)
	return a
}

// authLevel says what a route demands of its caller.
type authLevel int

const (
	anyProfile    authLevel = iota // a valid token, key or no key
	activeProfile                  // a valid token of a profile with a public key
)

// authed wraps h so that it runs only for a valid token (401 otherwise),
// at activeProfile only for a profile with a registered key (403
// profile.public_key_required), and for an OAuth access token only if it
// holds scope (403 oauth.scope_missing; profile.ProfileOnly: never).
func (s *Server) authed(level authLevel, scope string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Profiles.Authorize(r.Context(), r.Header.Get(authHeader))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := a.Allow(scope); err != nil {
			s.fail(w, r, err)
			return
		}
		r = r.WithContext(command.WithActor(r.Context(), a.Actor()))
		if level == activeProfile {
			if err := profile.RequireActive(a); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), authKey, a)))
	})
}

// optionalAuth resolves the token when one is presented (401 if it is
// invalid) and runs h either way.
// A device enrolling with a QR token may present it here too: it acts for
// the token's owner.
func (s *Server) optionalAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := r.Header.Get(authHeader)
		switch {
		case secret == "":
			h(w, r)
		case profile.IsQRToken(secret):
			s.asQR(w, r, secret, h)
		default:
			s.authed(anyProfile, profile.AnyScope, h).ServeHTTP(w, r)
		}
	})
}

// asQR runs h for the owner of an enrollment (QR) token.
func (s *Server) asQR(w http.ResponseWriter, r *http.Request, secret string, h http.HandlerFunc) {
	a, err := s.Profiles.AuthorizeQR(r.Context(), secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h(w, r.WithContext(context.WithValue(r.Context(), authKey, a)))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, s.Logger, err)
}

// bind reads the request's fields, rendering the error itself; ok is false
// when it did.
func (s *Server) bind(w http.ResponseWriter, r *http.Request) (*params, bool) {
	limit := s.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	p, err := bind(w, r, limit)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return p, true
}

// clientAddr is the caller's address for rate limits.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusRecorder captures the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// middleware adds panic recovery and an access log. The log has the path but
// never the query string or headers: both can carry secrets.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeJSON(rec, http.StatusInternalServerError, errorBody{Error: privicore.EINTERNAL, Message: "internal error"})
			}
			if s.Logger.Enabled(r.Context(), slog.LevelDebug) { // spares building the arguments per request
				s.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// notFound answers unknown paths with the JSON 404 body.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: privicore.ENOTFOUND, Message: "no such endpoint: " + strings.SplitN(r.URL.Path, "?", 2)[0]})
}
