package privicore

import (
	"context"
	"time"
)

// LeaseStore keeps named leases: which replica does a periodic job
// (internal/lease). A lease has one owner at a time until it expires.
// Times are the caller's clock (replicas' clocks must roughly agree).
type LeaseStore interface {
	// AcquireLease gives the lease name to owner until now+ttl if it is
	// free, expired at now, or owner's already (a renewal), in one atomic
	// step. It reports whether owner holds the lease now.
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// TakeLease gives the lease name to owner until now+ttl whoever holds
	// it: for an engine that is alone on its database (SQLite), taking
	// over the leases of the process before it.
	TakeLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error
	// ReleaseLease frees the lease name if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// RateBucket is one token bucket of a rate limit kept in the database, so
// that the limit holds across replicas (internal/ratelimit).
type RateBucket struct {
	Key      string    // the limit's key (a digest: no username or address in the clear)
	Tokens   float64   // tokens left at Last
	Last     time.Time // when Tokens was computed
	InFlight int       // attempts admitted and not yet settled
	LastFail time.Time // the last failure counted on it; zero if none
	// ExpiresAt is when the bucket is as good as a fresh one (full, no
	// failure remembered): it may be deleted from then on.
	ExpiresAt time.Time
}

// RateStore keeps the buckets of cluster-wide rate limits.
type RateStore interface {
	// UpdateRateBuckets reads the buckets named keys and calls fn with
	// them, bs[i] being keys[i]'s (nil if absent), locked against every
	// other update of those keys, on any replica, until fn's changes are
	// committed. fn changes a bucket in place, puts a new one in bs[i], or
	// sets bs[i] to nil to delete it. fn may run more than once (a retried
	// transaction): it must compute everything from bs.
	UpdateRateBuckets(ctx context.Context, keys []string, fn func(bs []*RateBucket) error) error
	// DeleteExpiredRateBuckets removes the buckets that expired before t
	// and returns how many went.
	DeleteExpiredRateBuckets(ctx context.Context, before time.Time) (int, error)
}

// ReplicaStore keeps the membership of the replicas sharing a database
// (internal/coherence): which replicas may cache what the database holds
// and must therefore hear of every change before it is acknowledged. Times
// are the caller's clock; they only let rows of long-dead replicas be
// swept, never decide whom a change waits for.
type ReplicaStore interface {
	// JoinReplica records replica id as a member until until.
	JoinReplica(ctx context.Context, id string, until time.Time) error
	// RenewReplica extends id's membership to until and returns the other
	// members. It is ENOTFOUND when id is no member (another replica
	// evicted it): id must then drop everything it cached and join again.
	RenewReplica(ctx context.Context, id string, until time.Time) (others []string, err error)
	// Replicas lists the members.
	Replicas(ctx context.Context) ([]string, error)
	// EvictReplicas ends the membership of ids (replicas that did not
	// acknowledge a change in time).
	EvictReplicas(ctx context.Context, ids []string) error
	// SweepReplicas removes the members whose membership ended before
	// before (replicas that died without leaving).
	SweepReplicas(ctx context.Context, before time.Time) error
}
