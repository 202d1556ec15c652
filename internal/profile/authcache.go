package profile

import (
	"sync"
	"time"
)

// authCache keeps resolved tokens for a moment, so that a burst of requests
// with one token costs one lookup. Revocation and profile changes made by
// this engine drop entries at once; authCacheTTL bounds any other staleness.
//
// A lookup that read the database before a drop must not put back what it
// read after it (a revoked token would then pass for the TTL): readers take
// the generation before they read, and put keeps the entry only if no drop
// happened since.
type authCache struct {
	mu  sync.Mutex
	m   map[string]authEntry // token id → caller
	gen uint64               // drops so far
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

// generation is the count of drops so far; take it before reading what
// will be put.
func (c *authCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps a for tokenID, unless something was dropped since gen (what a
// was read from may be stale).
func (c *authCache) put(tokenID string, a *Auth, now time.Time, gen uint64) {
	exp := now.Add(authCacheTTL)
	if a.Token.ExpiresAt.Before(exp) {
		exp = a.Token.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= authCacheMax {
		c.m = map[string]authEntry{}
	}
	c.m[tokenID] = authEntry{auth: a, expires: exp}
}

func (c *authCache) dropToken(tokenID string) {
	c.mu.Lock()
	delete(c.m, tokenID)
	c.gen++
	c.mu.Unlock()
}

func (c *authCache) dropProfile(profileID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for id, e := range c.m {
		if e.auth.Profile.ID == profileID {
			delete(c.m, id)
		}
	}
}
