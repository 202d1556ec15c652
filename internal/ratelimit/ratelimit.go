// Package ratelimit is a keyed token-bucket limiter with bounded memory, for
// brute-force protection (per username, per client address).
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key, at most maxKeys of them; the least
// recently used bucket is dropped first (a dropped bucket starts full again,
// so the bound must exceed the keys under attack at once).
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  *list.List // front: most recently used
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter allowing limit events per second with burst per key.
func New(limit rate.Limit, burst, maxKeys int) *Limiter {
	if maxKeys < 1 {
		maxKeys = 1
	}
	return &Limiter{limit: limit, burst: burst, maxKeys: maxKeys, now: time.Now,
		keys: map[string]*list.Element{}, lru: list.New()}
}

// Allow takes one event for key. When refused, retryAfter is how long until
// the next event would be allowed (at least one second).
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var lim *rate.Limiter
	if el, found := l.keys[key]; found {
		l.lru.MoveToFront(el)
		lim = el.Value.(*entry).lim
	} else {
		for len(l.keys) >= l.maxKeys {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.keys, oldest.Value.(*entry).key)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.keys[key] = l.lru.PushFront(&entry{key: key, lim: lim})
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	if !r.OK() || wait <= 0 {
		wait = time.Second
	}
	if wait < time.Second {
		wait = time.Second
	}
	return false, wait
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
