package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestPeriodicJobsRunOnOneReplica: of two replicas, only the one holding a
// job's lease runs it (the voting deadline check, every 200 ms, and the
// outbox delivery, every 2 s); when it stops, the other takes the job over.
func TestPeriodicJobsRunOnOneReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	for _, name := range []string{engine.LeaseVotingDeadlines, engine.LeaseOutbox} {
		holder := -1
		for i, e := range c.Engines {
			if e.Jobs.Lease(name).Held() {
				if holder >= 0 {
					t.Fatalf("%s: both replicas hold the lease", name)
				}
				holder = i
			}
		}
		if holder < 0 {
			t.Fatalf("%s: no replica holds the lease", name)
		}
	}
	runs := func(i int) int64 { return c.Engines[i].Jobs.Lease(engine.LeaseVotingDeadlines).Runs() }
	first := 0
	if !c.Engines[0].Jobs.Lease(engine.LeaseVotingDeadlines).Held() {
		first = 1
	}
	other := 1 - first
	commandtest.Eventually(t, "the holder checks the voting deadlines 3 times", func() bool { return runs(first) >= 3 })
	if n := runs(other); n != 0 {
		t.Fatalf("the replica without the lease checked the deadlines %d times", n)
	}
	var owner string
	if err := c.Engines[other].Store.SQL().QueryRowContext(context.Background(),
		`SELECT owner FROM leases WHERE name = $1`, engine.LeaseVotingDeadlines).Scan(&owner); err != nil || owner != c.Engines[first].ReplicaID() {
		t.Fatalf("the lease's owner in the database is %q (%v), want %q", owner, err, c.Engines[first].ReplicaID())
	}
	stopped := runs(first)
	c.Engines[first].Stop()
	commandtest.Eventually(t, "the other replica takes the deadlines over", func() bool { return runs(other) >= 3 })
	if runs(first) != stopped {
		t.Fatal("the stopped replica went on checking the deadlines")
	}
	commandtest.Eventually(t, "the other replica takes the outbox over", c.Engines[other].Jobs.Lease(engine.LeaseOutbox).Held)
}

// TestFailureLimitsHoldAcrossReplicas: with a quota of 4 failures per
// (username, address), two wrong passwords on replica A and two on B spend
// it: the right password is then refused on either, with the limit's 429.
func TestFailureLimitsHoldAcrossReplicas(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2, func(_ int, cfg *engine.Config) {
		cfg.AuthUserAddrFailures, cfg.AuthUserFailures, cfg.AuthAddrFailures = hourly(4), hourly(100), hourly(100)
	})
	u := newAPI(t, c.Engines[0]).register("spread")
	a, b := newFrom(t, c.Engines[0], "127.0.0.7"), newFrom(t, c.Engines[1], "127.0.0.7")
	for _, f := range []*from{a, a, b, b} {
		expect(t, f.login(u.Name, "bad-"+u.Password), 401)
	}
	limited(t, a.login(u.Name, u.Password))
	limited(t, b.login(u.Name, u.Password))
	// Another address still gets in (its pair has not failed).
	expect(t, newFrom(t, c.Engines[1], "127.0.0.8").login(u.Name, u.Password), 200)
}

// TestRegistrationLimitHoldsAcrossReplicas: a quota of 3 registrations per
// address, spent by two on A and one on B, refuses the fourth on either.
func TestRegistrationLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2, func(_ int, cfg *engine.Config) { cfg.RegisterPerAddr = hourly(3) })
	a, b := newFrom(t, c.Engines[0], "127.0.0.9"), newFrom(t, c.Engines[1], "127.0.0.9")
	reg := func(f *from) *response {
		return f.postJSON("/profile/register-profile", "", map[string]string{"username": uniqueName("reg"), "password": strongPassword})
	}
	for _, f := range []*from{a, a, b} {
		accepted(t, reg(f))
	}
	limited(t, reg(a))
	limited(t, reg(b))
	accepted(t, reg(newFrom(t, c.Engines[1], "127.0.0.10")))
}

// TestLeasesLastTheReplicasLeaseTTL: a replica's job leases expire
// LeaseTTL (serve's --lease-ttl) after their last renewal, 3 s here and
// lease.DefaultTTL when unset; a crashed replica's work resumes elsewhere
// within about that long.
func TestLeasesLastTheReplicasLeaseTTL(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	for _, ttl := range []time.Duration{3 * time.Second, 0} {
		c := enginetest.StartCluster(t, 1, func(_ int, cfg *engine.Config) { cfg.LeaseTTL = ttl })
		want := ttl
		if want == 0 {
			want = engine.DefaultLeaseTTL
		}
		before := time.Now()
		var latest int64
		if err := c.Engines[0].Store.SQL().QueryRowContext(context.Background(),
			`SELECT MAX(expires_at) FROM leases WHERE owner = $1`, c.Engines[0].ReplicaID()).Scan(&latest); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		// Renewed every want/3, last before the read ended: the latest expiry
		// is at most want after the read, and less than want/3 (and a
		// second's slack) short of want after it began.
		expires := time.Unix(0, latest)
		if expires.Sub(after) > want || expires.Sub(before) < want-want/3-time.Second {
			t.Fatalf("LeaseTTL %v: the job leases expire %v from now, want about %v", ttl, expires.Sub(before), want)
		}
	}
}
