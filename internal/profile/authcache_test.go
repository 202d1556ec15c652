package profile

import (
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

// A lookup that read a token before its revocation dropped it from the
// cache must not put it back afterwards: the revoked token would pass for
// the cache's TTL.
func TestAuthCacheKeepsNothingReadBeforeADrop(t *testing.T) {
	now := time.Now()
	a := &Auth{Profile: &privicore.Profile{ID: "p1"}, Token: &privicore.Token{ID: "t1", ExpiresAt: now.Add(time.Hour)}}
	for _, drop := range []struct {
		name string
		do   func(c *authCache)
	}{
		{"token", func(c *authCache) { c.dropToken("t1") }},
		{"profile", func(c *authCache) { c.dropProfile("p1") }},
		{"another token", func(c *authCache) { c.dropToken("t2") }},
	} {
		c := newAuthCache(coherence.Local())
		gen := c.generation() // the reader starts
		drop.do(c)            // the revoke commits and drops
		c.put("t1", a, now, gen)
		if c.get("t1", now) != nil {
			t.Errorf("after a %s drop during the read, the stale caller was cached", drop.name)
		}
	}
	c := newAuthCache(coherence.Local())
	c.put("t1", a, now, c.generation())
	if c.get("t1", now) != a {
		t.Fatal("a read with no drop meanwhile was not cached")
	}
}
