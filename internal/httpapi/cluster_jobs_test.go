package httpapi_test

import (
	"context"
	"testing"

	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestPeriodicJobsRunOnOneReplica: of two replicas, only the one holding a
// job's lease runs it (the voting deadline check, every 200 ms, and the
// outbox delivery, every 2 s); when it stops, the other takes the job over.
func TestPeriodicJobsRunOnOneReplica(t *testing.T) {
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
	commandtest.Eventually(t, "the holder checks the voting deadlines 10 times", func() bool { return runs(first) >= 10 })
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
	commandtest.Eventually(t, "the other replica takes the deadlines over", func() bool { return runs(other) >= 10 })
	if runs(first) != stopped {
		t.Fatal("the stopped replica went on checking the deadlines")
	}
	commandtest.Eventually(t, "the other replica takes the outbox over", c.Engines[other].Jobs.Lease(engine.LeaseOutbox).Held)
}
