package profile

import (
	"sync"
	"time"
)

// authCache keeps resolved tokens for a moment, so that a burst of requests
// with one token costs one lookup. Revocation and profile changes made by
// this engine drop entries at once; authCacheTTL bounds any other staleness.
//
// It is for an engine that owns its store (SQLite): there every change is
// its own. Replicas sharing a store (Config.Shared) would not hear of each
// other's revocations, so there is no cache then (a nil *authCache, whose
// methods keep nothing) and every request reads the token.
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

// newAuthCache returns a cache, or nil (no cache) when the store is shared.
func newAuthCache(shared bool) *authCache {
	if shared {
		return nil
	}
	return &authCache{m: map[string]authEntry{}}
}

func (c *authCache) get(tokenID string, now time.Time) *Auth {
	if c == nil {
		return nil
	}
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
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps a for tokenID, unless something was dropped since gen (what a
// was read from may be stale).
func (c *authCache) put(tokenID string, a *Auth, now time.Time, gen uint64) {
	if c == nil {
		return
	}
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
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, tokenID)
	c.gen++
	c.mu.Unlock()
}

func (c *authCache) dropProfile(profileID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for id, e := range c.m {
		if e.auth.Profile.ID == profileID {
			delete(c.m, id)
		}
	}
}
