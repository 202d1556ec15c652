package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/privicore/privicore"
)

// settleTimeout bounds recording an attempt's verdict in the database.
const settleTimeout = 5 * time.Second

// NewSharedFailureGuard returns a guard for q whose buckets are in store,
// shared by every replica on the database: each Admit and each verdict is
// one transaction on the attempt's buckets (locked meanwhile), so the
// limits hold cluster-wide. log gets the verdicts that could not be
// recorded.
func NewSharedFailureGuard(q FailureQuotas, store privicore.RateStore, log *slog.Logger) *FailureGuard {
	g := NewFailureGuard(q, 1)
	g.shared = newSharedBuckets(store, "auth", log)
	return g
}

// NewSharedQuota returns a Limiter for q whose buckets are in store, shared
// by every replica on the database; name tells its keys from other
// limits'.
func NewSharedQuota(name string, q Quota, store privicore.RateStore, log *slog.Logger) *Limiter {
	l := NewQuota(q, 1)
	l.shared = newSharedBuckets(store, name, log)
	return l
}

// sharedBuckets is a limit's buckets in the database.
type sharedBuckets struct {
	store privicore.RateStore
	name  string // the limit's name, in its keys
	log   *slog.Logger
}

func newSharedBuckets(store privicore.RateStore, name string, log *slog.Logger) *sharedBuckets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &sharedBuckets{store: store, name: name, log: log}
}

// bucketRef names one bucket of a step.
type bucketRef struct {
	k   kind
	key string
}

// digest is the database key of ref: a SHA-256 of the limit's name, the
// kind and the key, so that the table holds no username or address.
func (s *sharedBuckets) digest(ref bucketRef) string {
	h := sha256.New()
	h.Write([]byte(s.name))
	h.Write([]byte{0, byte(ref.k), 0})
	h.Write([]byte(ref.key))
	return hex.EncodeToString(h.Sum(nil))
}

// update runs fn on the buckets refs in one transaction of the store.
func (s *sharedBuckets) update(ctx context.Context, now func() time.Time, rates func(kind) (rate.Limit, float64),
	refs []bucketRef, fn func(v view, now time.Time)) error {
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = s.digest(r)
	}
	return s.store.UpdateRateBuckets(ctx, keys, func(rows []*privicore.RateBucket) error {
		v := &sharedView{rates: rates, now: now(), refs: refs, rows: rows,
			got: make([]*bucket, len(refs)), dropped: make([]bool, len(refs))}
		fn(v, v.now)
		v.writeBack()
		return nil
	})
}

// admitKeys are the buckets Admit reads.
func (g *FailureGuard) admitKeys(user, addr string) []bucketRef {
	var refs []bucketRef
	if !g.q.Addr.Unlimited() {
		refs = append(refs, bucketRef{kindAddr, addr})
	}
	refs = append(refs, bucketRef{kindPair, pairKey(user, addr)})
	if !g.q.User.Unlimited() {
		refs = append(refs, bucketRef{kindUser, user})
	}
	return refs
}

// settleKeys are the buckets a verdict on t changes.
func (g *FailureGuard) settleKeys(t *Ticket) []bucketRef {
	refs := []bucketRef{{kindPair, pairKey(t.user, t.addr)}}
	if !g.q.Addr.Unlimited() {
		refs = append(refs, bucketRef{kindAddr, t.addr})
	}
	if t.tookUser {
		refs = append(refs, bucketRef{kindUser, t.user})
	}
	return refs
}

// sharedView is the buckets of one step read from the database: rows[i]
// is refs[i]'s, nil if absent; what the step changes goes back to rows.
// A row past its expiry reads as absent (a full, fresh bucket).
type sharedView struct {
	rates   func(kind) (rate.Limit, float64)
	now     time.Time
	refs    []bucketRef
	rows    []*privicore.RateBucket
	got     []*bucket // the buckets the step used
	dropped []bool
}

func (v *sharedView) index(k kind, key string) int {
	for i, r := range v.refs {
		if r.k == k && r.key == key {
			return i
		}
	}
	panic("ratelimit: a bucket outside the step's keys")
}

// load returns bucket i from its row, refilled; nil if absent.
func (v *sharedView) load(i int) *bucket {
	if v.got[i] != nil {
		return v.got[i]
	}
	row := v.rows[i]
	if v.dropped[i] || row == nil || !row.ExpiresAt.After(v.now) {
		return nil
	}
	b := &bucket{key: v.refs[i].key, tokens: row.Tokens, last: row.Last, inFlight: row.InFlight, lastFail: row.LastFail}
	lim, burst := v.rates(v.refs[i].k)
	b.refill(v.now, lim, burst)
	v.got[i] = b
	return b
}

func (v *sharedView) get(k kind, key string) (*bucket, bool) {
	i := v.index(k, key)
	if b := v.load(i); b != nil {
		return b, false
	}
	_, burst := v.rates(k)
	v.got[i], v.dropped[i] = &bucket{key: key, tokens: burst, last: v.now}, false
	return v.got[i], true
}

func (v *sharedView) lookup(k kind, key string) *bucket { return v.load(v.index(k, key)) }

func (v *sharedView) drop(k kind, key string) {
	i := v.index(k, key)
	v.got[i], v.dropped[i] = nil, true
}

// writeBack puts the step's buckets into rows.
func (v *sharedView) writeBack() {
	for i, b := range v.got {
		switch {
		case v.dropped[i]:
			v.rows[i] = nil
		case b != nil:
			lim, burst := v.rates(v.refs[i].k)
			v.rows[i] = &privicore.RateBucket{Tokens: b.tokens, Last: b.last, InFlight: b.inFlight, LastFail: b.lastFail,
				ExpiresAt: expiry(b, lim, burst)}
		}
	}
}

// expiry is when b is as good as a fresh bucket: refilled, its failure
// forgotten and no attempt in flight (one whose replica died is given up
// after FailedPairMemory, as a failure would be).
func expiry(b *bucket, lim rate.Limit, burst float64) time.Time {
	at := b.last
	if b.tokens < burst && lim != rate.Inf {
		wait := FailedPairMemory * 365
		if lim > 0 {
			wait = min(wait, time.Duration((burst-b.tokens)/float64(lim)*float64(time.Second)))
		}
		at = at.Add(wait)
	}
	if !b.lastFail.IsZero() && b.lastFail.Add(FailedPairMemory).After(at) {
		at = b.lastFail.Add(FailedPairMemory)
	}
	if b.inFlight > 0 && b.last.Add(FailedPairMemory).After(at) {
		at = b.last.Add(FailedPairMemory)
	}
	return at
}
