package ratelimit

import (
	"container/list"
	"time"

	"golang.org/x/time/rate"
)

// atLeastSecond rounds a wait up to the one-second floor of Retry-After.
func atLeastSecond(d time.Duration) time.Duration {
	return max(d, time.Second)
}

// bucket is a token bucket with fractional tokens, updated lazily. Pair
// buckets also hold their attempts in flight and their last failure.
type bucket struct {
	key      string
	tokens   float64
	last     time.Time
	inFlight int
	lastFail time.Time
}

// refill brings b up to now.
func (b *bucket) refill(now time.Time, lim rate.Limit, burst float64) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+el.Seconds()*float64(lim))
		b.last = now
	}
}

// waitFor is how long until b holds n tokens (at least one second).
func (b *bucket) waitFor(n float64, lim rate.Limit) time.Duration {
	if b.tokens >= n || lim <= 0 { // lim 0: never refilled; retry no sooner than the floor
		return time.Second
	}
	return atLeastSecond(time.Duration((n - b.tokens) / float64(lim) * float64(time.Second)))
}

// buckets holds buckets by key with an LRU bound. A dropped bucket starts
// full again.
type buckets struct {
	max  int
	keys map[string]*list.Element
	lru  *list.List // front: most recently used
}

func newBuckets(maxKeys int) *buckets {
	return &buckets{max: max(maxKeys, 1), keys: map[string]*list.Element{}, lru: list.New()}
}

// get returns key's bucket refilled to now, a full new one if absent.
func (bs *buckets) get(key string, now time.Time, lim rate.Limit, burst float64) *bucket {
	b, _ := bs.getNew(key, now, lim, burst)
	return b
}

// getNew is get, also reporting whether the bucket is new.
func (bs *buckets) getNew(key string, now time.Time, lim rate.Limit, burst float64) (*bucket, bool) {
	if el, ok := bs.keys[key]; ok {
		bs.lru.MoveToFront(el)
		b := el.Value.(*bucket)
		b.refill(now, lim, burst)
		return b, false
	}
	for len(bs.keys) >= bs.max {
		oldest := bs.lru.Back()
		bs.lru.Remove(oldest)
		delete(bs.keys, oldest.Value.(*bucket).key)
	}
	b := &bucket{key: key, tokens: burst, last: now}
	bs.keys[key] = bs.lru.PushFront(b)
	return b, true
}

// drop forgets key's bucket (it starts full again).
func (bs *buckets) drop(key string) {
	if el, ok := bs.keys[key]; ok {
		bs.lru.Remove(el)
		delete(bs.keys, key)
	}
}
