// Package httpapi is the engine's HTTP API: routing (routes.go lists every
// route), request binding for JSON and form bodies, authentication
// middleware, and error rendering. Handlers bind, validate the shape and
// render; the rules live in the domain packages.
package httpapi

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/clientaddr"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/oauth"
	"github.com/privicore/privicore/internal/profile"
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
	Storage    *fanout.Service
	DataTokens *datatoken.Service
	OAuth      *oauth.Service
	Voting     *voting.Service
	Channels   http.Handler // the WebSocket channel proxy, served at /ws
	EngineKey  string       // the engine's signed public key (200 hex)
	Logger     *slog.Logger
	MaxBody    int64 // request body limit; default DefaultMaxBody
	// BodyLimits bound how long a request body may take (zero fields:
	// the defaults).
	BodyLimits BodyLimits
	// Checks are extra health checks (e.g. the bus) by name.
	Checks map[string]func(context.Context) error
	// Addresses resolves the client address the per-address limits count
	// (X-Forwarded-For from trusted proxies); nil: the peer's address.
	Addresses *clientaddr.Resolver
}

// authHeader carries the authorization token.
const authHeader = "X-DPT-AUTHORIZATION"

type ctxKey int

const (
	authKey   ctxKey = iota // the caller (*profile.Auth)
	paramsKey               // the bound body (*params), see bodyFirst
)

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
// when it did. A body bodyFirst bound already is not read again.
func (s *Server) bind(w http.ResponseWriter, r *http.Request) (*params, bool) {
	if p, ok := r.Context().Value(paramsKey).(*params); ok {
		return p, true
	}
	p, err := bind(w, r, s.maxBody())
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return p, true
}

func (s *Server) maxBody() int64 {
	if s.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return s.MaxBody
}

// bodyFirst binds the body of every POST route (streamed uploads aside)
// before its handler runs, so that no route accepts a body it cannot use:
// invalid JSON or form, a field of the wrong type (fieldKinds) or an
// oversized body is 422 on every route, also on those that read no field.
// The handler's own bind then returns the same params.
func (s *Server) bodyFirst(pattern string, h http.Handler) http.Handler {
	if !strings.HasPrefix(pattern, http.MethodPost+" ") || streamedBodies[pattern] {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := bind(w, r, s.maxBody())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), paramsKey, p)))
	})
}

// clientAddr is the caller's address for rate limits.
func (s *Server) clientAddr(r *http.Request) string { return s.Addresses.Of(r) }

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

// Hijack hands the connection over (the WebSocket upgrade) without the
// deadlines the body limits set: from now on its owner manages them.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		_ = c.SetDeadline(time.Time{})
	}
	return c, brw, err
}

// middleware adds panic recovery, an access log, the body limits and the
// JSON answers for unknown paths (404) and wrong methods (405 with Allow).
// The log has the path but never the query string or headers: both can
// carry secrets.
func (s *Server) middleware(mux *http.ServeMux) http.Handler {
	limits := s.BodyLimits.withDefaults()
	serve := holdAcks(mux) // a 202's events wait for it: accepted.go
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route, pattern := mux.Handler(r)
		limitBody(w, r, limits, streamedBodies[pattern])
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
		if pattern == "" {
			noRoute(route, rec, r)
			return
		}
		serve.ServeHTTP(rec, r)
	})
}

// noRoute renders, as JSON, what the mux answers when no route matches: 405
// with Allow when the path is known with other methods, else 404. route is
// the mux's own handler for r.
func noRoute(route http.Handler, w http.ResponseWriter, r *http.Request) {
	probe := &headerProbe{header: http.Header{}}
	route.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); probe.status == http.StatusMethodNotAllowed && allow != "" {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: codeMethodNotAllowed,
			Message: r.Method + " is not allowed here; allowed: " + allow})
		return
	}
	notFound(w, r)
}

// headerProbe records the status and headers a handler writes, and drops
// its body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// notFound answers unknown paths with the JSON 404 body.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: privicore.ENOTFOUND, Message: "no such endpoint: " + strings.SplitN(r.URL.Path, "?", 2)[0]})
}
