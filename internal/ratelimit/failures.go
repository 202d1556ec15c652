package ratelimit

import (
	"context"
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
//
// The buckets are in memory (NewFailureGuard, one engine) or in the
// database (NewSharedFailureGuard, shared.go: the limits hold across
// replicas); the rules are the same.
type FailureGuard struct {
	q   FailureQuotas
	now func() time.Time

	mu                   sync.Mutex // the in-memory buckets
	pairs, users, addrs  *buckets
	pairLim, userLim     rate.Limit
	addrLim              rate.Limit
	pairBurst, userBurst float64
	addrBurst            float64

	shared *sharedBuckets // nil: in memory
}

// NewFailureGuard returns a guard for q holding at most maxKeys buckets of
// each kind in memory (the least recently used is dropped first).
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

// kind is one of a guard's three kinds of buckets.
type kind int

const (
	kindAddr kind = iota
	kindPair
	kindUser
)

// rates is kind k's refill rate and burst.
func (g *FailureGuard) rates(k kind) (rate.Limit, float64) {
	switch k {
	case kindAddr:
		return g.addrLim, g.addrBurst
	case kindPair:
		return g.pairLim, g.pairBurst
	}
	return g.userLim, g.userBurst
}

// view is the buckets one step of the guard works on: in memory (memView)
// or read from the database for the step (sharedView). Buckets come
// refilled to the step's time.
type view interface {
	get(k kind, key string) (b *bucket, fresh bool) // a full new one if absent
	lookup(k kind, key string) *bucket              // nil if absent
	drop(k kind, key string)
}

// Ticket is one admitted attempt. Exactly one of Succeeded, Failed or Cancel
// should be called; later calls do nothing.
type Ticket struct {
	g          *FailureGuard
	ctx        context.Context // the attempt's, without its cancellation (shared buckets)
	user, addr string
	tookUser   bool
	done       bool
}

func pairKey(user, addr string) string { return user + "\x00" + addr }

// Admit asks to check a password for user from addr. When refused (ok
// false, err nil), retryAfter (at least one second) is when a retry could
// be admitted. err is the database's (shared buckets only): nothing was
// taken.
func (g *FailureGuard) Admit(ctx context.Context, user, addr string) (t *Ticket, retryAfter time.Duration, ok bool, err error) {
	t = &Ticket{g: g, ctx: context.WithoutCancel(ctx), user: user, addr: addr}
	if g.shared != nil {
		err = g.shared.update(ctx, g.now, g.rates, g.admitKeys(user, addr), func(v view, now time.Time) {
			retryAfter, ok = g.admit(v, t, now)
		})
	} else {
		g.mu.Lock()
		now := g.now()
		retryAfter, ok = g.admit(memView{g, now}, t, now)
		g.mu.Unlock()
	}
	if err != nil || !ok {
		return nil, retryAfter, false, err
	}
	return t, 0, true, nil
}

// admit is Admit's rule on v; it sets t.tookUser.
func (g *FailureGuard) admit(v view, t *Ticket, now time.Time) (time.Duration, bool) {
	t.tookUser = false // a retried transaction runs this again
	var a, u *bucket
	if !g.q.Addr.Unlimited() {
		a, _ = v.get(kindAddr, t.addr)
		if a.tokens < 1 {
			return a.waitFor(1, g.addrLim), false
		}
	}
	p, _ := v.get(kindPair, pairKey(t.user, t.addr))
	if p.tokens < 1 {
		return p.waitFor(1, g.pairLim), false
	}
	failed := p.inFlight > 0 || (!p.lastFail.IsZero() && now.Sub(p.lastFail) < FailedPairMemory)
	if !g.q.User.Unlimited() {
		u, _ = v.get(kindUser, t.user)
		if u.tokens < 1 && failed {
			return u.waitFor(1, g.userLim), false
		}
	}
	if a != nil {
		a.tokens--
	}
	p.tokens--
	p.inFlight++
	if u != nil && u.tokens >= 1 {
		u.tokens--
		t.tookUser = true
	}
	return 0, true
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
	if g.shared != nil {
		// The attempt's context without its cancellation: a client that
		// goes away must not keep its failure from being recorded.
		ctx, cancel := context.WithTimeout(t.ctx, settleTimeout)
		defer cancel()
		if err := g.shared.update(ctx, g.now, g.rates, g.settleKeys(t), func(vw view, now time.Time) { g.settle(vw, t, v, now) }); err != nil {
			g.shared.log.Warn("recording a password check in the rate limits failed", "err", err)
		}
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.settle(memView{g, now}, t, v, now)
}

// settle is finish's rule on v.
func (g *FailureGuard) settle(v view, t *Ticket, vd verdict, now time.Time) {
	key := pairKey(t.user, t.addr)
	switch vd {
	case verdictRight:
		v.drop(kindPair, key)
	case verdictWrong:
		// The pair may have been cleared by a concurrent success: record
		// the failure on a fresh bucket then.
		p, fresh := v.get(kindPair, key)
		if fresh {
			p.tokens--
		} else {
			p.inFlight = max(p.inFlight-1, 0)
		}
		p.lastFail = now
		return
	case verdictNone:
		if p := v.lookup(kindPair, key); p != nil {
			p.inFlight = max(p.inFlight-1, 0)
			refund(p, g.pairBurst)
		}
	}
	if !g.q.Addr.Unlimited() {
		if a := v.lookup(kindAddr, t.addr); a != nil {
			refund(a, g.addrBurst)
		}
	}
	if t.tookUser {
		if u := v.lookup(kindUser, t.user); u != nil {
			refund(u, g.userBurst)
		}
	}
}

// refund gives one token back to a refilled bucket.
func refund(b *bucket, burst float64) { b.tokens = min(burst, b.tokens+1) }

// memView is the in-memory buckets (the caller holds g.mu).
type memView struct {
	g   *FailureGuard
	now time.Time
}

func (v memView) set(k kind) *buckets {
	switch k {
	case kindAddr:
		return v.g.addrs
	case kindPair:
		return v.g.pairs
	}
	return v.g.users
}

func (v memView) get(k kind, key string) (*bucket, bool) {
	lim, burst := v.g.rates(k)
	return v.set(k).getNew(key, v.now, lim, burst)
}

func (v memView) lookup(k kind, key string) *bucket {
	el, ok := v.set(k).keys[key]
	if !ok {
		return nil
	}
	b := el.Value.(*bucket)
	lim, burst := v.g.rates(k)
	b.refill(v.now, lim, burst)
	return b
}

func (v memView) drop(k kind, key string) { v.set(k).drop(key) }

// Len is the number of buckets held of each kind: pairs, usernames, addresses.
func (g *FailureGuard) Len() (pairs, users, addrs int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pairs.keys), len(g.users.keys), len(g.addrs.keys)
}
