package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Quota is a token bucket: a burst of N events, refilled at N per Per. N < 0
// means no limit; N == 0 or Per <= 0 is the zero quota, which callers
// replace by their default.
type Quota struct {
	N   int
	Per time.Duration
}

// Unlimited reports whether q imposes no limit.
func (q Quota) Unlimited() bool { return q.N < 0 }

// NoLimit is the unlimited quota.
var NoLimit = Quota{N: -1}

// IsZero reports whether q is unset (and not NoLimit).
func (q Quota) IsZero() bool { return !q.Unlimited() && (q.N == 0 || q.Per <= 0) }

// Limit is q as a rate (events per second).
func (q Quota) Limit() rate.Limit {
	if q.Unlimited() {
		return rate.Inf
	}
	return rate.Limit(float64(q.N) / q.Per.Seconds())
}

// NewQuota returns a Limiter for q (rate.Inf when q is unlimited).
func NewQuota(q Quota, maxKeys int) *Limiter {
	if q.Unlimited() {
		return New(rate.Inf, 1, maxKeys)
	}
	return New(q.Limit(), q.N, maxKeys)
}

// FailureQuotas are the three limits of a FailureGuard.
type FailureQuotas struct {
	UserAddr Quota // failures per (username, client address)
	User     Quota // failures per username, over all addresses
	Addr     Quota // failures per client address, over all usernames
}

// FailedPairMemory is how long a (username, address) pair that failed
// stays subject to the username's budget (unless a right password from it
// clears it first).
const FailedPairMemory = 24 * time.Hour

// FailureGuard limits failed password checks. An attempt is admitted only
// while its (username, address) pair and its address have failures left.
// The username's budget, shared by every address, refuses only attempts
// from pairs that failed in the last FailedPairMemory (or have an attempt
// in flight): the owner logging in from an address that has not failed is
// never refused because someone else hammers the username, while each
// further address gets one check, once, after the username's budget is
// spent. Admission takes the tokens at once (concurrent attempts cannot
// overrun a limit); a right password gives them back and clears the pair,
// so successful attempts never count.
type FailureGuard struct {
	q   FailureQuotas
	now func() time.Time

	mu                   sync.Mutex
	pairs, users, addrs  *buckets
	pairLim, userLim     rate.Limit
	addrLim              rate.Limit
	pairBurst, userBurst float64
	addrBurst            float64
}

// NewFailureGuard returns a guard for q holding at most maxKeys buckets of
// each kind (the least recently used is dropped first).
func NewFailureGuard(q FailureQuotas, maxKeys int) *FailureGuard {
	g := &FailureGuard{q: q, now: time.Now,
		pairs: newBuckets(maxKeys), users: newBuckets(maxKeys), addrs: newBuckets(maxKeys),
		pairLim: q.UserAddr.Limit(), userLim: q.User.Limit(), addrLim: q.Addr.Limit(),
		pairBurst: float64(q.UserAddr.N), userBurst: float64(q.User.N), addrBurst: float64(q.Addr.N)}
	if q.UserAddr.Unlimited() {
		// Pairs are still tracked (whether they failed), with a bucket that never runs out.
		g.pairLim, g.pairBurst = rate.Inf, math.MaxFloat64
	}
	return g
}

// Ticket is one admitted attempt. Exactly one of Succeeded, Failed or Cancel
// should be called; later calls do nothing.
type Ticket struct {
	g          *FailureGuard
	user, addr string
	tookUser   bool
	done       bool
}

func pairKey(user, addr string) string { return user + "\x00" + addr }

// Admit asks to check a password for user from addr. When refused,
// retryAfter (at least one second) is when a retry could be admitted.
func (g *FailureGuard) Admit(user, addr string) (t *Ticket, retryAfter time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var a, u *bucket
	if !g.q.Addr.Unlimited() {
		a = g.addrs.get(addr, now, g.addrLim, g.addrBurst)
		if a.tokens < 1 {
			return nil, a.waitFor(1, g.addrLim), false
		}
	}
	p := g.pairs.get(pairKey(user, addr), now, g.pairLim, g.pairBurst)
	if p.tokens < 1 {
		return nil, p.waitFor(1, g.pairLim), false
	}
	failed := p.inFlight > 0 || (!p.lastFail.IsZero() && now.Sub(p.lastFail) < FailedPairMemory)
	if !g.q.User.Unlimited() {
		u = g.users.get(user, now, g.userLim, g.userBurst)
		if u.tokens < 1 && failed {
			return nil, u.waitFor(1, g.userLim), false
		}
	}
	t = &Ticket{g: g, user: user, addr: addr}
	if a != nil {
		a.tokens--
	}
	p.tokens--
	p.inFlight++
	if u != nil && u.tokens >= 1 {
		u.tokens--
		t.tookUser = true
	}
	return t, 0, true
}

// Succeeded records a right password: the attempt's tokens come back and
// the pair's failures are forgotten.
func (t *Ticket) Succeeded() { t.finish(verdictRight) }

// Failed records a wrong password (or an unknown username): the attempt
// keeps its tokens, and the pair is marked as failed.
func (t *Ticket) Failed() { t.finish(verdictWrong) }

// Cancel gives the tokens back without a verdict (the check did not run:
// the database was unavailable, the caller went away).
func (t *Ticket) Cancel() { t.finish(verdictNone) }

type verdict int

const (
	verdictNone verdict = iota
	verdictRight
	verdictWrong
)

func (t *Ticket) finish(v verdict) {
	if t == nil || t.done {
		return
	}
	t.done = true
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	key := pairKey(t.user, t.addr)
	switch v {
	case verdictRight:
		g.pairs.drop(key)
	case verdictWrong:
		// The pair may have been cleared by a concurrent success: record
		// the failure on a fresh bucket then.
		p, fresh := g.pairs.getNew(key, now, g.pairLim, g.pairBurst)
		if fresh {
			p.tokens--
		} else {
			p.inFlight = max(p.inFlight-1, 0)
		}
		p.lastFail = now
		return
	case verdictNone:
		if el, ok := g.pairs.keys[key]; ok {
			p := el.Value.(*bucket)
			p.inFlight = max(p.inFlight-1, 0)
		}
		g.pairs.refund(key, now, g.pairLim, g.pairBurst)
	}
	if !g.q.Addr.Unlimited() {
		g.addrs.refund(t.addr, now, g.addrLim, g.addrBurst)
	}
	if t.tookUser {
		g.users.refund(t.user, now, g.userLim, g.userBurst)
	}
}

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

// refund gives one token back to key's bucket, if it is still held.
func (bs *buckets) refund(key string, now time.Time, lim rate.Limit, burst float64) {
	if el, ok := bs.keys[key]; ok {
		b := el.Value.(*bucket)
		b.refill(now, lim, burst)
		b.tokens = min(burst, b.tokens+1)
	}
}

// drop forgets key's bucket (it starts full again).
func (bs *buckets) drop(key string) {
	if el, ok := bs.keys[key]; ok {
		bs.lru.Remove(el)
		delete(bs.keys, key)
	}
}

// Len is the number of buckets held of each kind: pairs, usernames, addresses.
func (g *FailureGuard) Len() (pairs, users, addrs int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pairs.keys), len(g.users.keys), len(g.addrs.keys)
}
