package command

import (
	"context"
	"time"

	"github.com/privicore/privicore"
)

// busyRetry is how soon the dispatcher claims again when a claimable
// command was passed over because another transaction was deciding its key
// (an inline command of it committing, another replica claiming).
const busyRetry = 20 * time.Millisecond

// keyOf is the ordering key of c.
func (p *Processor) keyOf(c *privicore.Command) string {
	key := c.ProfileID
	if h := p.handlers[c.Type]; h.key != nil {
		key = h.key(c)
	}
	if key == "" {
		key = c.ID
	}
	return key
}

// claim reserves key for an inline execution if no command with that key
// runs inline in this process, nor (single engine) is pending: in
// cluster mode the store decides the latter, in the inline write
// (CommandKeyFree).
func (p *Processor) claim(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.keys[key] > 0 {
		return false
	}
	p.keys[key]++
	return true
}

func (p *Processor) release(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(key)
}

func (p *Processor) releaseLocked(key string) {
	if p.keys[key]--; p.keys[key] <= 0 {
		delete(p.keys, key)
	}
}

// track counts pending command id of key against inline executions of
// key (single engine only: there this process sees every pending command;
// in cluster mode the store is asked instead).
func (p *Processor) track(id, key string) {
	if p.opts.Shared {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[id]; !ok {
		p.pending[id] = key
		p.keys[key]++
	}
}

// untrack stops counting command id (it finished, or a vote holds it).
func (p *Processor) untrack(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if key, ok := p.pending[id]; ok {
		delete(p.pending, id)
		p.releaseLocked(key)
	}
}

// wake asks the dispatcher to claim commands now.
func (p *Processor) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// dispatcher claims commands from the store whenever woken (a command
// submitted, finished or resumed here) and every Sweep (commands accepted
// by other replicas, leases that expired, retries due), and runs each
// claimed one.
func (p *Processor) dispatcher() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.Sweep)
	defer t.Stop()
	for {
		p.dispatch()
		select {
		case <-p.stop:
			return
		case <-p.kick:
		case <-t.C:
		}
	}
}

// dispatch claims as many commands as there are idle workers, until the
// store has no more claimable ones, and starts their executions.
func (p *Processor) dispatch() {
	ctx := context.Background()
	for {
		p.mu.Lock()
		n := p.opts.Workers - p.running
		p.mu.Unlock()
		if n <= 0 {
			return // an execution ending wakes the dispatcher
		}
		var cmds []*privicore.Command
		var busy bool
		now := p.now()
		err := p.store.Write(ctx, func(q privicore.Queries) (err error) {
			cmds, busy, err = q.ClaimCommands(ctx, p.opts.Replica, now, now.Add(p.opts.Lease), n)
			return err
		})
		if err != nil {
			p.log.Warn("claiming commands failed", "err", err)
			return
		}
		if busy {
			time.AfterFunc(busyRetry, p.wake)
		}
		for _, c := range cmds {
			p.mu.Lock()
			if !p.started {
				p.mu.Unlock()
				return // stopping: the leases expire, or the next Start resets them
			}
			p.running++
			p.wg.Add(1)
			p.mu.Unlock()
			go p.run(c)
		}
		if len(cmds) < n {
			return
		}
	}
}

// run executes a claimed command, then wakes the dispatcher: the next
// command of its key may be claimable now.
func (p *Processor) run(c *privicore.Command) {
	defer p.wg.Done()
	p.execute(c)
	p.mu.Lock()
	p.running--
	p.mu.Unlock()
	p.wake()
}

// renewer extends the leases of this replica's executions, and its Origin
// reservations, every third of the lease, while it has any.
func (p *Processor) renewer() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running == 0 && !p.hasInputs() {
			continue
		}
		ctx := context.Background()
		until := p.now().Add(p.opts.Lease)
		if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.RenewCommandLeases(ctx, p.opts.Replica, until) }); err != nil {
			p.log.Warn("renewing command leases failed", "err", err)
		}
	}
}

// execute runs a claimed pending command once: the gate's check, Prepare
// (outside any transaction, with the command's input if this process has
// it), then finish. A command whose Prepare was staged (stage.go) uses the
// recorded Out instead; a gated one of a staging Task stages it before the
// gate's check.
func (p *Processor) execute(c *privicore.Command) {
	ctx := context.Background()
	h, known := p.handlers[c.Type]
	if !known {
		p.finish(ctx, c, steps{}, nil, privicore.Reject("command.unknown_type", "unknown command type"), false)
		return
	}
	prepared, staged, err := h.restage(c)
	if err != nil {
		p.finish(ctx, c, h, nil, err, false)
		return
	}
	if ev, gated := p.gated(ctx, c); gated {
		if !staged && h.stage {
			if prepared, err = p.stageBefore(ctx, c, h); err != nil {
				p.finish(ctx, c, h, prepared, err, false)
				return
			}
			staged = true
		}
		proceed, err := p.gate.Check(ctx, c, ev)
		switch {
		case err != nil:
			p.finish(ctx, c, h, prepared, err, false) // a rejection (compensating a staged Prepare), or a retry
			return
		case !proceed:
			p.holdBack(ctx, c)
			return
		}
	}
	var herr error
	if !staged && h.prepare != nil {
		in, has := p.input(c.ID)
		prepared, herr = h.prepare(ctx, c, in, has)
	}
	p.finish(ctx, c, h, prepared, herr, false)
}

// holdBack records that the gate holds c: it stays pending, holding back
// no later command of its key, until Resume. If the gate decided
// meanwhile (Resume came first), c is claimable again at once.
func (p *Processor) holdBack(ctx context.Context, c *privicore.Command) {
	var held bool
	err := p.store.Write(ctx, func(q privicore.Queries) (err error) {
		held, err = q.HoldCommand(ctx, c.ID, p.opts.Replica)
		return err
	})
	switch {
	case err != nil:
		p.log.Warn("holding a command failed", "command", c.ID, "err", err)
		// Its lease expires; the gate's check runs again then.
	case held:
		p.untrack(c.ID)
	}
}

// retry counts a transient failure of a recorded command; past MaxAttempts
// the command is rejected. Otherwise its lease ends, and it is claimed
// again (by any replica) once Sweep has passed.
func (p *Processor) retry(ctx context.Context, c *privicore.Command, cause error) {
	p.log.Warn("command failed, will retry", "command", c.ID, "type", c.Type, "attempt", c.Attempts+1, "err", cause)
	c.Attempts++
	if c.Attempts >= p.opts.MaxAttempts {
		p.finish(ctx, c, steps{}, nil, privicore.Reject(ReasonFailed, "failed %d times", c.Attempts), false)
		return
	}
	now := p.now()
	_ = p.store.Write(ctx, func(q privicore.Queries) error {
		return q.MarkCommandAttempt(ctx, c.ID, p.opts.Replica, now, now.Add(p.opts.Sweep))
	})
}
