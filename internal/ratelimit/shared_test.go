package ratelimit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// onBothDialects runs fn on a fresh SQLite database and a fresh
// PostgreSQL one.
func onBothDialects(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	commandtest.OnEachDialect(t, 1, func(t *testing.T, stores []*sqlstore.DB) { fn(t, stores[0]) })
}

// TestSharedGuardKeepsTheRules runs the guard's rule tests with the
// buckets in the database: the same answers, refills and Retry-After.
func TestSharedGuardKeepsTheRules(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		memory := testGuard
		defer func() { testGuard = memory }()
		var guards atomic.Int64
		testGuard = func(pair, user, addr int) (*FailureGuard, *time.Time) {
			now := time.Unix(1000, 0)
			g := NewSharedFailureGuard(FailureQuotas{UserAddr: Quota{pair, 10 * time.Minute}, User: Quota{user, 10 * time.Minute},
				Addr: Quota{addr, 10 * time.Minute}}, db, nil)
			g.shared.name = fmt.Sprint("test", guards.Add(1)) // each test's buckets apart
			g.now = func() time.Time { return now }
			return g, &now
		}
		for name, test := range map[string]func(*testing.T){
			"successes never count": TestSuccessesNeverCount,
			// (TestGuessesFromOneAndFromManyAddresses's 20 000 attempts are
			// too many writes; the one below covers its rule with 1 500.)
			"failed addresses stay subject":      TestFailedAddressesStaySubjectToTheUsernameBudget,
			"refill and retry-after":             TestRefillAndRetryAfter,
			"concurrent attempts cannot overrun": TestConcurrentAttemptsCannotOverrun,
		} {
			t.Run(name, test)
		}
	})
}

// TestGuardsOnOneDatabaseShareTheirBuckets: two guards on one database
// (two replicas) count one budget: failures on either spend it.
func TestGuardsOnOneDatabaseShareTheirBuckets(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		q := FailureQuotas{UserAddr: Quota{4, time.Hour}, User: Quota{100, time.Hour}, Addr: Quota{100, time.Hour}}
		a, b := NewSharedFailureGuard(q, db, nil), NewSharedFailureGuard(q, db, nil)
		for i, g := range []*FailureGuard{a, a, b, b} {
			if !attempt(g, "u", "addr") {
				t.Fatalf("failure %d refused", i+1)
			}
		}
		for _, g := range []*FailureGuard{a, b} {
			if _, wait, ok, err := g.Admit(ctx, "u", "addr"); ok || err != nil || wait < time.Second {
				t.Fatalf("the fifth attempt: ok=%v err=%v wait=%v; want refused", ok, err, wait)
			}
		}
		// Registrations likewise.
		la, lb := NewSharedQuota("register", Quota{2, time.Hour}, db, nil), NewSharedQuota("register", Quota{2, time.Hour}, db, nil)
		for i, l := range []*Limiter{la, lb} {
			if ok, _, err := l.Allow(ctx, "addr"); !ok || err != nil {
				t.Fatalf("registration %d refused (%v)", i+1, err)
			}
		}
		if ok, wait, err := la.Allow(ctx, "addr"); ok || err != nil || wait < time.Second {
			t.Fatalf("the third registration: ok=%v err=%v wait=%v; want refused", ok, err, wait)
		}
		if ok, _, err := lb.Allow(ctx, "other"); !ok || err != nil {
			t.Fatalf("another address refused (%v)", err)
		}
	})
}
