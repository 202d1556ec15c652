package engine

import (
	"log"
	"net/http"
	"time"

	"github.com/privicore/privicore/internal/httpapi"
)

// Connection limits' defaults (Limits).
const (
	DefaultReadHeaderTimeout = 10 * time.Second  // a request's headers must arrive within this
	DefaultIdleTimeout       = 120 * time.Second // a keep-alive connection with no request is closed after this
	DefaultMaxHeaderBytes    = 64 << 10          // request line and headers
	// DefaultMaxConnsPerAddr caps the connections one client address holds
	// at once (API and WebSocket listeners together). Behind a reverse
	// proxy every client has the proxy's address: raise it, or turn it off.
	DefaultMaxConnsPerAddr = 256
	// fdReserveMin and fdReserveShare set, with MaxConns left 0, how many
	// file descriptors the connection cap leaves to everything else (the
	// database, key files, the device bus and its connections): the larger
	// of the two.
	fdReserveMin   = 128
	fdReserveShare = 4 // a quarter of the limit
	// fallbackMaxConns is the cap where the descriptor limit is unknown.
	fallbackMaxConns = 4096
)

// Limits bound what clients may hold: slow headers and bodies, idle
// connections, and connections per address and in all. Zero fields take the
// defaults; a negative MaxConns or MaxConnsPerAddr turns that cap off.
type Limits struct {
	ReadHeaderTimeout time.Duration      // default DefaultReadHeaderTimeout
	IdleTimeout       time.Duration      // default DefaultIdleTimeout
	MaxHeaderBytes    int                // default DefaultMaxHeaderBytes
	Body              httpapi.BodyLimits // request bodies (see httpapi.BodyLimits)
	// MaxConns caps the open API and WebSocket connections; by default the
	// process's file descriptor limit minus a reserve (a quarter of it, at
	// least 128), so that accepting never runs out of descriptors.
	MaxConns int
	// MaxConnsPerAddr caps one client address's connections; default
	// DefaultMaxConnsPerAddr, at most half of MaxConns, so that other
	// clients (and /health) are still served while one address holds its
	// cap.
	MaxConnsPerAddr int
}

// resolved returns l with its defaults filled in; a cap turned off is 0.
func (l Limits) resolved() Limits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	switch {
	case l.MaxConns < 0:
		l.MaxConns = 0
	case l.MaxConns == 0:
		l.MaxConns = defaultMaxConns(fdLimit())
	}
	switch {
	case l.MaxConnsPerAddr < 0:
		l.MaxConnsPerAddr = 0
	case l.MaxConnsPerAddr == 0:
		l.MaxConnsPerAddr = DefaultMaxConnsPerAddr
		if l.MaxConns > 0 {
			l.MaxConnsPerAddr = max(1, min(l.MaxConnsPerAddr, l.MaxConns/2))
		}
	}
	return l
}

// defaultMaxConns is the connection cap for a file descriptor limit (0:
// unknown).
func defaultMaxConns(limit uint64) int {
	if limit == 0 {
		return fallbackMaxConns
	}
	reserve := max(fdReserveMin, limit/fdReserveShare)
	if limit <= reserve {
		return 1
	}
	return int(min(limit-reserve, 1<<30))
}

// server returns an http.Server for h with the (resolved) limits.
func (l Limits) server(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, IdleTimeout: l.IdleTimeout,
		MaxHeaderBytes: l.MaxHeaderBytes, ErrorLog: errorLog}
}
