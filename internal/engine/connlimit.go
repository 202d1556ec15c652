package engine

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/privicore/privicore/internal/clientaddr"
)

// The answers to a connection over a cap, best effort (the client may not
// read it) before it is closed.
var (
	refusedPerAddr = refusal("429 Too Many Requests", "rate_limited", "too many connections from this address; close some and retry")
	refusedTotal   = refusal("503 Service Unavailable", "unavailable", "too many connections; retry shortly")
)

const (
	refuseWriteTimeout = 100 * time.Millisecond
	refusalLogEvery    = 10 * time.Second // refusals are logged at most this often, with a count
)

// refusal is a complete HTTP answer with the JSON error body.
func refusal(status, code, message string) string {
	body := `{"error":"` + code + `","message":"` + message + `"}`
	return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// connLimiter counts the open connections of the listeners it wraps, in
// all and per client address, and refuses those over a cap at once (a
// refused connection is answered and closed, never queued: the listener
// keeps accepting, so other clients are served).
type connLimiter struct {
	maxTotal, maxPerAddr int // 0: no cap
	log                  *slog.Logger

	mu       sync.Mutex
	total    int
	byAddr   map[string]int
	trusted  *clientaddr.Resolver
	refused  int // since the last log line
	loggedAt time.Time
}

// newConnLimiter caps connections at maxTotal and at maxPerAddr per peer
// address, except a trusted proxy's (many clients share its address; the
// limits kept per client address see them apart, clientaddr).
func newConnLimiter(maxTotal, maxPerAddr int, trusted *clientaddr.Resolver, log *slog.Logger) *connLimiter {
	return &connLimiter{maxTotal: maxTotal, maxPerAddr: maxPerAddr, trusted: trusted, log: log, byAddr: map[string]int{}}
}

// wrap returns ln with the limiter's caps.
func (l *connLimiter) wrap(ln net.Listener) net.Listener {
	if l.maxTotal == 0 && l.maxPerAddr == 0 {
		return ln
	}
	return &limitedListener{Listener: ln, l: l}
}

// admit counts a new connection from host, or returns the answer refusing it when it
// is over a cap.
func (l *connLimiter) admit(host string) (answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.maxTotal > 0 && l.total >= l.maxTotal:
		answer = refusedTotal
	case l.maxPerAddr > 0 && l.byAddr[host] >= l.maxPerAddr && !l.trusted.Trusts(host):
		answer = refusedPerAddr
	default:
		l.total++
		l.byAddr[host]++
		return ""
	}
	l.refused++
	if now := time.Now(); now.Sub(l.loggedAt) >= refusalLogEvery {
		l.log.Warn("refusing connections over the connection caps", "refused", l.refused, "addr", host,
			"open", l.total, "from_addr", l.byAddr[host], "max_conns", l.maxTotal, "max_conns_per_addr", l.maxPerAddr)
		l.refused, l.loggedAt = 0, now
	}
	return answer
}

func (l *connLimiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[host]--; l.byAddr[host] <= 0 {
		delete(l.byAddr, host)
	}
}

type limitedListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the caps; those over a cap
// are answered 429 (per address) or 503 (in all) and closed.
func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := hostOf(c.RemoteAddr())
		if answer := ln.l.admit(host); answer != "" {
			_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
			_, _ = c.Write([]byte(answer))
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: ln.l, host: host}, nil
	}
}

// limitedConn gives its slot back when closed (also after a hijack: the
// WebSocket closes this same connection).
type limitedConn struct {
	net.Conn
	l    *connLimiter
	host string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return clientaddr.Host(a.String())
}
