package profile

import (
	"sync"
	"time"

	"github.com/privicore/privicore/internal/coherence"
)

// authCache keeps resolved tokens for a moment, so that a burst of requests
// with one token costs one lookup. A revocation or a profile change,
// committed by this engine or by any other replica on the store, drops
// entries before it is acknowledged (coherence: the store notes the
// change, the peers' handlers drop it); authCacheTTL bounds the life of an
// entry. Entries are served and kept only while the peers are Valid.
//
// A lookup that read the database before a drop must not put back what it
// read after it (a revoked token would then pass for the TTL): readers take
// the generation before they read, and put keeps the entry only if no drop
// happened since.
type authCache struct {
	peers *coherence.Peers
	mu    sync.Mutex
	m     map[string]authEntry // token id → caller
	gen   uint64               // drops so far
}

type authEntry struct {
	auth    *Auth
	expires time.Time
}

const (
	authCacheTTL = 2 * time.Second
	authCacheMax = 10000
)

// newAuthCache returns a cache that hears of changes through peers, or
// none (nil, whose methods keep nothing) without peers.
func newAuthCache(peers *coherence.Peers) *authCache {
	if peers == nil {
		return nil
	}
	c := &authCache{peers: peers, m: map[string]authEntry{}}
	peers.Handle(coherence.Token, c.dropToken)
	peers.Handle(coherence.Profile, c.dropProfile)
	peers.OnFlush(c.dropAll)
	return c
}

func (c *authCache) get(tokenID string, now time.Time) *Auth {
	if c == nil {
		return nil
	}
	if !c.peers.Valid() {
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
	if c.gen != gen || !c.peers.Valid() {
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

// dropProfile drops the entries of a profile ("": every entry).
func (c *authCache) dropProfile(profileID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for id, e := range c.m {
		if profileID == "" || e.auth.Profile.ID == profileID {
			delete(c.m, id)
		}
	}
}

func (c *authCache) dropAll() { c.dropProfile("") }
