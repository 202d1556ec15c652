package command

import (
	"context"
	"hash/fnv"

	"github.com/privicore/privicore"
)

// enqueue hands c to its worker unless it is already queued or running. A
// full queue leaves it to the sweeper: it is durable either way.
func (p *Processor) enqueue(c *privicore.Command) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.inflight[c.ID] {
		return
	}
	// Commands with one ordering key go to one worker, in order; commands
	// ordered after nothing go to whichever worker is idle.
	key := p.keyOf(c)
	q := p.free
	if key != c.ID {
		h := fnv.New32a()
		h.Write([]byte(key))
		q = p.queues[int(h.Sum32())%len(p.queues)]
	}
	select {
	case q <- c:
		p.inflight[c.ID] = true
		p.keys[key]++
	default:
	}
}

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
// is queued or running.
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
	if p.keys[key]--; p.keys[key] <= 0 {
		delete(p.keys, key)
	}
}

func (p *Processor) worker(q chan *privicore.Command) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case c := <-q:
			p.execute(c)
			key := p.keyOf(c)
			p.mu.Lock()
			delete(p.inflight, c.ID)
			p.mu.Unlock()
			p.release(key)
		}
	}
}

// execute runs a recorded pending command once: the gate's check, Prepare
// (outside any transaction, with the command's input if this process has
// it), then finish.
func (p *Processor) execute(c *privicore.Command) {
	ctx := context.Background()
	// The sweeper's copy may be older than this command's last execution
	// (read before it finished or counted an attempt): go by the record.
	cur, err := p.store.FindCommand(ctx, c.ID)
	switch {
	case privicore.ErrorCode(err) == privicore.ENOTFOUND:
		return // pruned
	case err != nil:
		p.log.Warn("reading a pending command failed", "command", c.ID, "err", err)
		return // the sweeper brings it back
	case cur.Status != privicore.CommandPending:
		return // finished by an earlier execution
	}
	c.Attempts = cur.Attempts
	h, known := p.handlers[c.Type]
	if !known {
		p.finish(ctx, c, steps{}, nil, privicore.Reject("command.unknown_type", "unknown command type"), false)
		return
	}
	if ev, gated := p.gated(ctx, c); gated {
		proceed, err := p.gate.Check(ctx, c, ev)
		switch {
		case err != nil:
			p.finish(ctx, c, h, nil, err, false) // a rejection, or a retry
			return
		case !proceed:
			return // held: pending until the gate resumes it
		}
	}
	var prepared any
	var herr error
	if h.prepare != nil {
		in, has := p.input(c.ID)
		prepared, herr = h.prepare(ctx, c, in, has)
	}
	p.finish(ctx, c, h, prepared, herr, false)
}

// retry counts a transient failure of a recorded command; past MaxAttempts
// the command is rejected.
func (p *Processor) retry(ctx context.Context, c *privicore.Command, cause error) {
	p.log.Warn("command failed, will retry", "command", c.ID, "type", c.Type, "attempt", c.Attempts+1, "err", cause)
	c.Attempts++
	if c.Attempts >= p.opts.MaxAttempts {
		p.finish(ctx, c, steps{}, nil, privicore.Reject(ReasonFailed, "failed %d times", c.Attempts), false)
		return
	}
	_ = p.store.Write(ctx, func(q privicore.Queries) error { return q.MarkCommandAttempt(ctx, c.ID, p.now()) })
	// The sweeper re-queues it once this execution has left the in-flight set.
}
