package engine

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// The leases of the engine's periodic jobs (internal/lease): each job is
// done by one replica at a time, the one holding its lease.
const (
	LeaseJanitor         = "engine.janitor"   // reservation expiry, token sweep, rate-bucket sweep
	LeaseVotingDeadlines = "voting.deadlines" // overdue pools resolved
	LeaseOutbox          = "fanout.outbox"    // outbox deliveries to storage devices
	LeaseCommandPrune    = "command.prune"    // finished commands pruned
	LeaseCommandAnnounce = "command.announce" // the acks of replicas that died before sending them
)

// janitor removes expired reservations every 30 s and long-expired tokens
// (and rate buckets) every hour, while the replica holds LeaseJanitor.
func (e *Engine) janitor() {
	defer e.wg.Done()
	janitor := e.Jobs.Lease(LeaseJanitor)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-e.stopBg:
			return
		case <-t.C:
			janitor.Do(func() {
				if err := e.DataTokens.Sweep(context.Background()); err != nil {
					e.log.Warn("reservation sweep failed", "err", err)
				}
				if i%120 == 0 {
					if err := e.Profiles.Sweep(context.Background()); err != nil {
						e.log.Warn("token sweep failed", "err", err)
					}
				}
			})
		}
	}
}

// counters is where the rate limits count: the database in cluster mode
// (the limits hold across replicas), memory (nil) on one engine.
func (e *Engine) counters() privicore.RateStore {
	if e.Shared() {
		return e.Store
	}
	return nil
}
