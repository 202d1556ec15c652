// Package ratelimit is a keyed token-bucket limiter with bounded memory, for
// brute-force protection (registrations per client address), and the
// FailureGuard for failed password checks (failures.go). Both keep their
// buckets in memory (one engine) or, in cluster mode, in the database
// (shared.go: the limits then hold across replicas).
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key, at most maxKeys of them; the least
// recently used bucket is dropped first (a dropped bucket starts full again,
// so the bound must exceed the keys under attack at once).
type Limiter struct {
	limit rate.Limit
	burst float64
	now   func() time.Time

	mu sync.Mutex
	bs *buckets

	shared *sharedBuckets // nil: in memory (shared.go)
}

// New returns a Limiter allowing limit events per second with burst per key.
func New(limit rate.Limit, burst, maxKeys int) *Limiter {
	return &Limiter{limit: limit, burst: float64(burst), now: time.Now, bs: newBuckets(maxKeys)}
}

// Allow takes one event for key. When refused, retryAfter is how long until
// the next event would be allowed (at least one second). err is the
// database's (shared buckets only): nothing was taken.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	if l.limit == rate.Inf {
		return true, 0, nil
	}
	if l.shared != nil {
		rates := func(kind) (rate.Limit, float64) { return l.limit, l.burst }
		err = l.shared.update(ctx, l.now, rates, []bucketRef{{key: key}}, func(v view, _ time.Time) {
			b, _ := v.get(0, key)
			if ok = b.tokens >= 1; ok {
				b.tokens--
				retryAfter = 0
			} else {
				retryAfter = b.waitFor(1, l.limit)
			}
		})
		return ok && err == nil, retryAfter, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bs.get(key, l.now(), l.limit, l.burst)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	return false, b.waitFor(1, l.limit), nil
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bs.keys)
}
