package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestLeaseHasOneOwnerUntilItExpires: the first owner takes a free lease,
// a second cannot while it is valid, the first renews it, the second takes
// it once it expired, and a release frees it at once (only its owner's).
func TestLeaseHasOneOwnerUntilItExpires(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		t0 := time.Unix(1_000_000, 0)
		acquire := func(owner string, at time.Time, want bool) {
			t.Helper()
			got, err := db.AcquireLease(ctx, "job", owner, at, 10*time.Second)
			if err != nil || got != want {
				t.Fatalf("%s acquires at +%v: %v, %v; want %v", owner, at.Sub(t0), got, err, want)
			}
		}
		acquire("a", t0, true)
		acquire("b", t0.Add(time.Second), false)
		acquire("a", t0.Add(5*time.Second), true) // renewed until +15 s
		acquire("b", t0.Add(12*time.Second), false)
		acquire("b", t0.Add(16*time.Second), true) // expired: taken over
		acquire("a", t0.Add(17*time.Second), false)
		if err := db.ReleaseLease(ctx, "job", "a"); err != nil { // not a's: no effect
			t.Fatal(err)
		}
		acquire("a", t0.Add(18*time.Second), false)
		if err := db.ReleaseLease(ctx, "job", "b"); err != nil {
			t.Fatal(err)
		}
		acquire("a", t0.Add(18*time.Second), true)
		// Another name is another lease.
		if got, err := db.AcquireLease(ctx, "other", "b", t0.Add(18*time.Second), time.Second); err != nil || !got {
			t.Fatalf("another lease: %v, %v", got, err)
		}
		// TakeLease takes it whoever holds it.
		if err := db.TakeLease(ctx, "job", "c", t0.Add(19*time.Second), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		acquire("a", t0.Add(20*time.Second), false)
		acquire("c", t0.Add(20*time.Second), true)
	})
}

// TestRateBucketsUpdateAndExpire: UpdateRateBuckets reads absent keys as
// nil, writes what fn leaves, deletes what fn sets to nil, and
// DeleteExpiredRateBuckets removes the expired ones only.
func TestRateBucketsUpdateAndExpire(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		t0 := time.Unix(2_000_000, 0).UTC()
		update := func(keys []string, fn func(bs []*privicore.RateBucket)) {
			t.Helper()
			if err := db.UpdateRateBuckets(ctx, keys, func(bs []*privicore.RateBucket) error { fn(bs); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		update([]string{"z", "a"}, func(bs []*privicore.RateBucket) {
			if bs[0] != nil || bs[1] != nil {
				t.Fatalf("absent buckets read as %v", bs)
			}
			bs[0] = &privicore.RateBucket{Tokens: 2.5, Last: t0, InFlight: 1, LastFail: t0, ExpiresAt: t0.Add(time.Hour)}
			bs[1] = &privicore.RateBucket{Tokens: 4, Last: t0, ExpiresAt: t0.Add(time.Minute)}
		})
		update([]string{"a", "z", "m"}, func(bs []*privicore.RateBucket) {
			if bs[0] == nil || bs[0].Key != "a" || bs[0].Tokens != 4 || !bs[0].LastFail.IsZero() {
				t.Fatalf("a reads %+v", bs[0])
			}
			z := bs[1]
			if z == nil || z.Tokens != 2.5 || z.InFlight != 1 || !z.Last.Equal(t0) || !z.LastFail.Equal(t0) || !z.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("z reads %+v", z)
			}
			if bs[2] != nil {
				t.Fatalf("m reads %+v", bs[2])
			}
			z.Tokens--
			bs[0] = nil // a deleted; m stays absent
		})
		update([]string{"a", "z", "m"}, func(bs []*privicore.RateBucket) {
			if bs[0] != nil || bs[2] != nil || bs[1] == nil || bs[1].Tokens != 1.5 {
				t.Fatalf("after the update: %+v %+v %+v", bs[0], bs[1], bs[2])
			}
			bs[2] = &privicore.RateBucket{Tokens: 1, Last: t0, ExpiresAt: t0.Add(time.Minute)}
		})
		n, err := db.DeleteExpiredRateBuckets(ctx, t0.Add(30*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("sweep removed %d (%v), want m only", n, err)
		}
		update([]string{"m", "z"}, func(bs []*privicore.RateBucket) {
			if bs[0] != nil || bs[1] == nil {
				t.Fatalf("after the sweep: %+v %+v", bs[0], bs[1])
			}
		})
	})
}
