// Package clientaddr says which address a request comes from, for the
// limits kept per client address. Behind a load balancer every request's
// peer is the balancer: when the peer is a trusted proxy, the client is
// the last address of X-Forwarded-For that is not a trusted proxy (each
// proxy appends the address it got the request from, so addresses to the
// left of the first untrusted one may be made up by the client).
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero Resolver (and nil) trusts
// no proxy: the client is the peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the proxies in list: addresses or CIDR
// prefixes ("10.0.0.0/8", "127.0.0.1", "::1").
func New(list []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or a CIDR prefix", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// Trusts reports whether the peer address host (no port) is a trusted proxy.
func (r *Resolver) Trusts(host string) bool {
	if r == nil || len(r.trusted) == 0 {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of is the client address of req (no port).
func (r *Resolver) Of(req *http.Request) string {
	peer := Host(req.RemoteAddr)
	if !r.Trusts(peer) {
		return peer
	}
	// From the right: skip the trusted proxies; the first other address is
	// the client. A header made only of trusted proxies (or none) leaves
	// the last of them, or the peer.
	client := peer
	hops := req.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client // malformed: trust nothing further left
			}
			client = a.Unmap().String()
			if !r.Trusts(client) {
				return client
			}
		}
	}
	return client
}

// Host is the host part of a host:port address (the address itself when
// it has no port).
func Host(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
