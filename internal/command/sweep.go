package command

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// Start resumes pending commands and starts the workers and the sweeper.
func (p *Processor) Start(ctx context.Context) error {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	for i := range p.queues {
		p.wg.Add(2)
		go p.worker(p.queues[i])
		go p.worker(p.free)
	}
	p.wg.Add(1)
	go p.sweeper()
	if p.opts.Retention > 0 {
		p.wg.Add(1)
		go p.pruner()
	}
	return p.sweep(ctx)
}

// Stop stops the workers after their current command. Queued commands stay
// pending in the store and are resumed by the next Start.
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
}

// sweep queues every pending command not already queued.
func (p *Processor) sweep(ctx context.Context) error {
	const page = 1000
	cmds, err := p.store.PendingCommands(ctx, page)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		p.enqueue(c)
	}
	return nil
}

func (p *Processor) sweeper() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.Sweep)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if err := p.sweep(context.Background()); err != nil {
				p.log.Warn("command sweep failed", "err", err)
			}
		}
	}
}

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
