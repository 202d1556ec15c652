package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/privicore/privicore"
)

// Submit records a command of typ for profileID with payload (marshaled to
// JSON) and queues it. It returns once the command is durable: the caller
// may then answer 202.
func (p *Processor) Submit(ctx context.Context, profileID, typ string, payload any) (*privicore.Command, error) {
	return p.SubmitWithID(ctx, NewID(), profileID, typ, payload)
}

// SubmitWithID is Submit with a caller-chosen id.
func (p *Processor) SubmitWithID(ctx context.Context, id, profileID, typ string, payload any) (*privicore.Command, error) {
	return p.submit(ctx, id, profileID, typ, payload, nil, false)
}

// submit is Submit with the command's in-memory input in, if has (Task).
// The command runs inline when it can: unless a vote may hold it (its pool
// needs the command's record first), its type's Prepare may run inline,
// and nothing with its ordering key is pending or running inline (in
// cluster mode the inline write makes sure of the former: finish).
// Otherwise, or when the inline attempt fails for a transient reason, it
// is recorded pending, for the dispatcher of whichever replica claims it.
func (p *Processor) submit(ctx context.Context, id, profileID, typ string, payload, in any, has bool) (c *privicore.Command, err error) {
	h, ok := p.handlers[typ]
	if !ok {
		return nil, fmt.Errorf("command: no handler for %q", typ)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	if has {
		p.setInput(id, in)
		defer func() {
			if err != nil {
				p.dropInput(id)
			}
		}()
	}
	now := p.now()
	c = &privicore.Command{ID: id, ProfileID: profileID, Type: typ, Payload: raw, Status: privicore.CommandPending, CreatedAt: now, UpdatedAt: now,
		Actor: actorOf(ctx)}
	c.Key = p.keyOf(c)
	p.hold(ctx, c.ID)
	if _, gated := p.gated(ctx, c); !gated && (h.prepare == nil || h.prepareInline) {
		if p.claim(c.Key) {
			done, err := p.inline(ctx, c, h, in, has)
			p.release(c.Key)
			if done || err != nil {
				return c, err
			}
		}
	}
	if has {
		c.Origin, c.OriginUntil = p.opts.Replica, p.now().Add(p.opts.Lease)
	}
	p.track(c.ID, c.Key) // before it is durable: no inline command of its key overtakes it
	if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, c) }); err != nil {
		p.untrack(c.ID)
		return nil, err
	}
	p.wake()
	return c, nil
}

// inlinePrepareWithin bounds an inline Prepare (Task.PrepareInline): the
// caller is waiting for its 202.
const inlinePrepareWithin = 2 * time.Second

// inline runs c's Prepare in the caller, then records c with its outcome
// in one write (finish). done is false when it failed for a transient
// reason and must take the queued path, where Prepare runs again.
func (p *Processor) inline(ctx context.Context, c *privicore.Command, h steps, in any, has bool) (done bool, err error) {
	var prepared any
	var herr error
	if h.prepare != nil {
		pctx, cancel := context.WithTimeout(ctx, inlinePrepareWithin)
		prepared, herr = h.prepare(pctx, c, in, has)
		cancel()
		if herr != nil && pctx.Err() != nil {
			// Slow (or the caller left): the queued path takes over, with
			// the command recorded first and Prepare's full time.
			return false, nil
		}
	}
	if err := p.finish(ctx, c, h, prepared, herr, true); errors.Is(err, errRequeue) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	return true, nil
}

// Run records a command and applies it in the same transaction, for
// commands whose effect must be visible at once (e.g. a delete that must
// stop reads immediately). A rejection from apply is returned as the error,
// and nothing is recorded; on success the outcome is published as usual.
// When the gate may hold the command, it takes the queued path instead
// (typ must then have a handler doing what apply does).
func (p *Processor) Run(ctx context.Context, profileID, typ string, payload any, apply func(q privicore.Queries) (Result, error)) (*privicore.Command, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	now := p.now()
	c := &privicore.Command{ID: NewID(), ProfileID: profileID, Type: typ, Payload: raw, Status: privicore.CommandSucceeded, CreatedAt: now, UpdatedAt: now,
		Actor: actorOf(ctx)}
	c.Key = p.keyOf(c)
	if _, handled := p.handlers[typ]; handled {
		if _, gated := p.gated(ctx, c); gated {
			return p.SubmitWithID(ctx, c.ID, profileID, typ, payload)
		}
	}
	p.hold(ctx, c.ID)
	c.UpdatedAt, c.Announcer = p.beginOutcome(c.ID) // tracked until its ack is handed over (announce.go)
	var res Result
	err = p.store.Write(ctx, func(q privicore.Queries) error {
		var err error
		if res, err = apply(q); err != nil {
			return err
		}
		if res.Body == "" {
			res.Body = BodySucceeded
		}
		c.Body = res.Body
		return q.CreateCommand(ctx, c)
	})
	if err != nil {
		p.endOutcome(c.ID)
		return nil, err
	}
	// Under a Hold (the HTTP layer's), published once the 202 has left.
	p.announce(c, privicore.CommandSucceeded, res)
	return c, nil
}
