package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore"
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

// eventually waits for cond, failing after a generous guard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// cuttable is a replica's way to the real store, which the test can cut
// (the replica hangs or loses the database); it counts the renewals that
// went through.
type cuttable struct {
	privicore.LeaseStore
	cut      atomic.Bool
	acquired atomic.Int64
}

var errCut = errors.New("cut off from the database")

func (c *cuttable) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	if c.cut.Load() {
		return false, errCut
	}
	held, err := c.LeaseStore.AcquireLease(ctx, name, owner, now, ttl)
	if held {
		c.acquired.Add(1)
	}
	return held, err
}

func (c *cuttable) ReleaseLease(ctx context.Context, name, owner string) error {
	if c.cut.Load() {
		return errCut
	}
	return c.LeaseStore.ReleaseLease(ctx, name, owner)
}

// TestTwoOwnersOneHolder: of two sets, the first to ask holds the lease;
// the other's tries fail while it is renewed; Close releases it and the
// other takes it at its next try; Do runs only on the holder.
func TestTwoOwnersOneHolder(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		a := NewSet(db, "a", Options{TTL: time.Hour}) // the renewer never ticks: the test drives keep
		b := NewSet(db, "b", Options{TTL: time.Hour})
		defer b.Close()
		la, lb := a.Lease("job"), b.Lease("job")
		if !la.Held() || lb.Held() {
			t.Fatalf("held: a %v, b %v; want a only", la.Held(), lb.Held())
		}
		a.keep(la, false) // renewal
		b.keep(lb, false)
		if !la.Held() || lb.Held() {
			t.Fatalf("after a renewal, held: a %v, b %v; want a only", la.Held(), lb.Held())
		}
		ran := 0
		la.Do(func() { ran++ })
		lb.Do(func() { ran += 10 })
		if ran != 1 || la.Runs() != 1 || lb.Runs() != 0 {
			t.Fatalf("Do ran %d (a %d, b %d), want a's only", ran, la.Runs(), lb.Runs())
		}
		if a.Lease("job") != la {
			t.Fatal("asking again gives another lease")
		}
		if b.Lease("other").Held() != true {
			t.Fatal("another name is another lease: b should hold it")
		}
		a.Close()
		if la.Held() {
			t.Fatal("a still holds the lease after Close")
		}
		b.keep(lb, false)
		if !lb.Held() {
			t.Fatal("b did not take the lease a released")
		}
	})
}

// TestTakeoverAtExpiry: a replica cut off from the database keeps no
// lease past its time; the other takes it once it expired, never while the
// first still believes it holds it.
func TestTakeoverAtExpiry(t *testing.T) {
	t.Parallel() // it waits for leases to expire: let it overlap the others
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		t.Parallel() // each dialect too
		ttl := 1500 * time.Millisecond
		sa := &cuttable{LeaseStore: db}
		a := NewSet(sa, "a", Options{TTL: ttl})
		defer a.Close()
		b := NewSet(db, "b", Options{TTL: ttl})
		defer b.Close()
		la, lb := a.Lease("job"), b.Lease("job")
		if !la.Held() || lb.Held() {
			t.Fatalf("held: a %v, b %v; want a only", la.Held(), lb.Held())
		}
		// Renewed past its first TTL, it is still a's.
		eventually(t, "a renews its lease 4 times", func() bool { return sa.acquired.Load() >= 4 })
		if lb.Held() {
			t.Fatal("b holds a lease that a renews")
		}
		sa.cut.Store(true)
		eventually(t, "b takes the lease over", lb.Held)
		if la.Held() {
			t.Fatal("both hold the lease")
		}
		// a, back, cannot take it while b renews it.
		sa.cut.Store(false)
		a.keep(la, false)
		if la.Held() || !lb.Held() {
			t.Fatalf("after a's return, held: a %v, b %v; want b only", la.Held(), lb.Held())
		}
	})
}

// TestSoleOwnerTakesAtOnce: an engine alone on its database takes a lease
// its predecessor left behind (a crash, no release) without waiting for it
// to expire; a non-sole one waits.
func TestSoleOwnerTakesAtOnce(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		dead := &cuttable{LeaseStore: db}
		old := NewSet(dead, "old", Options{TTL: time.Hour})
		if !old.Lease("job").Held() {
			t.Fatal("the first owner does not hold the lease")
		}
		dead.cut.Store(true) // it dies: no release
		old.Close()
		other := NewSet(db, "other", Options{TTL: time.Hour})
		defer other.Close()
		if other.Lease("job").Held() {
			t.Fatal("a non-sole owner took an unexpired lease")
		}
		sole := NewSet(db, "new", Options{TTL: time.Hour, Sole: true})
		defer sole.Close()
		if !sole.Lease("job").Held() {
			t.Fatal("the sole owner does not hold its predecessor's lease")
		}
	})
}

// TestNilLeaseAlwaysRuns: a component built without a Set runs its job.
func TestNilLeaseAlwaysRuns(t *testing.T) {
	var l *Lease
	ran := false
	if !l.Held() || !l.Do(func() { ran = true }) || !ran {
		t.Fatal("a nil lease did not run its job")
	}
}
