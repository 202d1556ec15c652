package profile

import (
	"sync"
	"time"
)

// authCache keeps resolved tokens for a moment, so that a burst of requests
// with one token costs one lookup. Revocation and profile changes made by
// this engine drop entries at once; authCacheTTL bounds any other staleness.
type authCache struct {
	mu sync.Mutex
	m  map[string]authEntry // token id → caller
}

type authEntry struct {
	auth    *Auth
	expires time.Time
}

const (
	authCacheTTL = 2 * time.Second
	authCacheMax = 10000
)

func newAuthCache() *authCache { return &authCache{m: map[string]authEntry{}} }

func (c *authCache) get(tokenID string, now time.Time) *Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tokenID]
	if !ok || !now.Before(e.expires) {
		return nil
	}
	return e.auth
}

func (c *authCache) put(tokenID string, a *Auth, now time.Time) {
	exp := now.Add(authCacheTTL)
	if a.Token.ExpiresAt.Before(exp) {
		exp = a.Token.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= authCacheMax {
		c.m = map[string]authEntry{}
	}
	c.m[tokenID] = authEntry{auth: a, expires: exp}
}

func (c *authCache) dropToken(tokenID string) {
	c.mu.Lock()
	delete(c.m, tokenID)
	c.mu.Unlock()
}

func (c *authCache) dropProfile(profileID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if e.auth.Profile.ID == profileID {
			delete(c.m, id)
		}
	}
}
