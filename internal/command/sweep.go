package command

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// Start resumes pending commands and starts the dispatcher and the lease
// renewer (and, with Options.Announcers, records and renews this replica's
// announcer). A single engine (not Options.Shared) first ends every lease
// and Origin reservation in the store: they were its own, from before a
// restart.
func (p *Processor) Start(ctx context.Context) error {
	if !p.opts.Shared {
		if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.ResetCommandLeases(ctx) }); err != nil {
			return err
		}
		if err := p.trackPending(ctx); err != nil {
			return err
		}
	}
	if p.opts.Announcers != nil {
		if err := p.keepAnnouncer(ctx, time.Time{}); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	p.wg.Add(2)
	go p.dispatcher()
	go p.renewer()
	if p.opts.Announcers != nil {
		p.wg.Add(1)
		go p.announcer()
	}
	if p.opts.Retention > 0 {
		p.wg.Add(1)
		go p.pruner()
	}
	return nil
}

// trackPending counts the pending commands left in the store against
// inline executions of their keys (track).
func (p *Processor) trackPending(ctx context.Context) error {
	const most = 100000
	cmds, err := p.store.PendingCommands(ctx, most)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if !c.Held {
			p.track(c.ID, c.Key)
		}
	}
	return nil
}

// Stop stops the dispatcher, and waits for the running executions.
// Pending commands stay in the store: another replica, or the next Start,
// resumes them.
func (p *Processor) Stop() {
	p.mu.Lock()
	if !p.started {
		p.mu.Unlock()
		return
	}
	p.started = false
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	// Nothing runs here any more: hand what this replica held to the
	// others now rather than at the leases' expiry (its commands' inputs
	// in memory go with it).
	ctx, cancel := context.WithTimeout(context.Background(), releaseWithin)
	defer cancel()
	if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.ReleaseCommandLeases(ctx, p.opts.Replica) }); err != nil {
		p.log.Warn("releasing the command leases failed; they expire", "err", err)
	}
	if p.opts.Announcers != nil {
		p.endAnnouncer(ctx)
	}
}

// releaseWithin bounds Stop's release of the leases.
const releaseWithin = 5 * time.Second

// pruneBatch is how many commands one write prunes: the writer is shared,
// so a large backlog goes in many short writes.
const pruneBatch = 1000

// pruner removes the commands older than the retention, at Start and then
// every PruneEvery.
func (p *Processor) pruner() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.PruneEvery)
	defer t.Stop()
	for {
		p.opts.PruneLease.Do(func() {
			if n, err := p.Prune(context.Background()); err != nil {
				p.log.Warn("command pruning failed", "err", err)
			} else if n > 0 {
				p.log.Info("pruned finished commands", "count", n, "older_than", p.opts.Retention)
			}
		})
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// Prune deletes the finished commands older than the retention (none when
// it is 0), in batches, and returns how many. It stops early when the
// processor stops.
func (p *Processor) Prune(ctx context.Context) (int, error) {
	if p.opts.Retention <= 0 {
		return 0, nil
	}
	before := p.now().Add(-p.opts.Retention)
	total := 0
	for {
		var n int
		err := p.store.Write(ctx, func(q privicore.Queries) (err error) {
			n, err = q.PruneCommands(ctx, before, pruneBatch)
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
		select {
		case <-p.stop:
			return total, nil
		default:
		}
	}
}
