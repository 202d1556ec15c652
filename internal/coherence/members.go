package coherence

import (
	"context"
	"fmt"
	"time"

	"github.com/privicore/privicore"
)

// sweepAfter is how long past its end a dead replica's membership row is
// kept: far beyond any difference between the replicas' clocks, since a
// swept member is not waited for.
const sweepAfter = time.Minute

// Start subscribes to the other replicas' changes, then joins the
// membership and keeps renewing it until Close. Local peers have nothing
// to start.
func (p *Peers) Start(ctx context.Context) error {
	if p.store == nil || p.live.Load() {
		return nil
	}
	p.inbox = p.nc.NewRespInbox()
	sub, err := p.nc.Subscribe(p.opts.Subject, p.receive)
	if err != nil {
		return fmt.Errorf("coherence: subscribe: %w", err)
	}
	acks, err := p.nc.Subscribe(p.inbox+".*", p.acknowledged)
	if err != nil {
		sub.Unsubscribe()
		return fmt.Errorf("coherence: subscribe: %w", err)
	}
	p.subs = append(p.subs, sub, acks)
	// The subscriptions reach the server before the membership begins:
	// from then on, a change on any replica is delivered here.
	if err := p.nc.FlushTimeout(10 * time.Second); err != nil {
		p.unsubscribe()
		return fmt.Errorf("coherence: %w", err)
	}
	if err := p.join(ctx); err != nil {
		p.unsubscribe()
		return err
	}
	p.live.Store(true)
	go p.renewer()
	return nil
}

// join (re)starts the membership: the caches begin empty and are trusted
// after the warm-up.
func (p *Peers) join(ctx context.Context) error {
	start := time.Now()
	if err := p.store.JoinReplica(ctx, p.id, start.Add(p.opts.TTL)); err != nil {
		return fmt.Errorf("coherence: join: %w", err)
	}
	// The warm-up counts from when the join is in the database (the other
	// members list this replica from their next reading on), however long
	// the write took; the TTL, from before it.
	committed := time.Now()
	others, err := p.store.Replicas(ctx)
	if err != nil {
		return fmt.Errorf("coherence: join: %w", err)
	}
	p.state.Lock()
	p.joined, p.joinedAt, p.renewedAt = true, committed, start
	p.members, p.membersAt = without(others, p.id), start
	p.state.Unlock()
	p.flush() // what was cached before, or read while joining, is not kept
	return nil
}

func without(ids []string, id string) []string {
	out := ids[:0:0]
	for _, m := range ids {
		if m != id {
			out = append(out, m)
		}
	}
	return out
}

// renewer renews the membership every Renew, rejoining when it was
// evicted, and sweeps the rows of replicas long dead.
func (p *Peers) renewer() {
	defer close(p.done)
	t := time.NewTicker(p.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.renew()
	}
}

func (p *Peers) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.TTL)
	defer cancel()
	start := time.Now()
	others, err := p.store.RenewReplica(ctx, p.id, start.Add(p.opts.TTL))
	switch {
	case privicore.ErrorCode(err) == privicore.ENOTFOUND:
		p.log.Warn("this replica was evicted from the membership (it missed a change): dropping its caches and joining again")
		p.state.Lock()
		p.joined = false
		p.state.Unlock()
		if err := p.join(ctx); err != nil {
			p.log.Warn("rejoining the membership failed", "err", err)
		}
		return
	case err != nil:
		p.log.Warn("renewing the membership failed; the caches are trusted until it lapses", "err", err)
		return
	}
	p.state.Lock()
	p.renewedAt = start
	p.members, p.membersAt = others, start
	p.state.Unlock()
	if err := p.store.SweepReplicas(ctx, start.Add(-sweepAfter)); err != nil {
		p.log.Debug("sweeping dead replicas failed", "err", err)
	}
}

// others returns the other members, read again when the last list is older
// than a renewal period and a half (the renewals are failing or late).
func (p *Peers) others(ctx context.Context) []string {
	p.state.Lock()
	members, at := p.members, p.membersAt
	p.state.Unlock()
	if time.Since(at) < p.opts.Renew*3/2 {
		return members
	}
	all, err := p.store.Replicas(ctx)
	if err != nil {
		p.log.Warn("listing the replicas failed: waiting for the last known ones", "err", err)
		return members
	}
	return without(all, p.id)
}

// Close ends the membership (the others no longer wait for this replica)
// and the subscriptions.
func (p *Peers) Close() {
	if p == nil || !p.live.Swap(false) {
		return
	}
	close(p.stop)
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.store.EvictReplicas(ctx, []string{p.id}); err != nil {
		p.log.Warn("leaving the membership failed", "err", err)
	}
	p.state.Lock()
	p.joined = false
	p.state.Unlock()
	p.unsubscribe()
}

func (p *Peers) unsubscribe() {
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
	p.subs = nil
}
