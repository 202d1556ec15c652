package command

import (
	"context"
	"errors"
	"time"

	"github.com/privicore/privicore"
)

// errRequeue is finish's answer for an inline command that failed for a
// transient reason: nothing is recorded, and it must take the queued path.
var errRequeue = errors.New("command: take the queued path")

// errAlreadyFinished rolls back an Apply whose command another execution
// finished first (or whose lease passed to another replica).
var errAlreadyFinished = errors.New("command already finished")

// errKeyBusy rolls back an inline command's write in cluster mode when a
// pending command of its key exists (or another transaction is deciding
// the key): it takes the queued path, behind it.
var errKeyBusy = errors.New("command: a pending command of the key exists")

// keyFree checks, in a fresh command's write, that it may commit ahead of
// the queue: in cluster mode, that no pending command of its key exists
// (CommandKeyFree; a key that is the command's id has none). A single
// engine knew it before the inline attempt (claim).
func (p *Processor) keyFree(ctx context.Context, q privicore.Queries, c *privicore.Command) error {
	if !p.opts.Shared || c.Key == c.ID {
		return nil
	}
	free, err := q.CommandKeyFree(ctx, c.Key)
	if err == nil && !free {
		err = errKeyBusy
	}
	return err
}

// finish is the one way a command ends, whether it runs inline (fresh: not
// in the store yet) or queued (its pending record is there).
//
// herr is a failure before Apply (of the gate, Prepare, or too many
// attempts); prepared is then what a staged Prepare did (to compensate on
// a rejection), nil if nothing. Without one, finish runs Apply and records the outcome in the
// same write: succeeded, with Apply's changes (a fresh command in cluster
// mode first makes sure no pending command of its key exists: if one does,
// it takes the queued path, errRequeue). When Apply rejects, those
// roll back, and the rejection is recorded instead, in a write with
// Compensate's changes for what Prepare did (prepared); a rejection given
// as herr is recorded the same way, compensating prepared if set. A fresh
// command is created with its outcome; a queued one is finished only if it
// is still pending and leased to this replica (another execution may have
// got there first, after this one's lease expired: then nothing changes). A recorded outcome is published, and a success's After
// runs; the command's input is forgotten.
//
// A transient failure (a non-rejection from the handler, or the store's on
// the success's write) records nothing: a queued command is retried
// (retry); for a fresh one finish returns errRequeue when the handler
// failed, the store's error when the store did. A rejection that cannot be
// recorded leaves a queued command pending for the sweeper (logged), and
// is the error of a fresh one.
func (p *Processor) finish(ctx context.Context, c *privicore.Command, h steps, prepared any, herr error, fresh bool) error {
	// The outcome's time and announcer; it is tracked until its ack is
	// handed to the publisher (announce.go), or nothing was recorded.
	at, announcer := p.beginOutcome(c.ID)
	announced := false
	defer func() {
		if !announced {
			p.endOutcome(c.ID)
		}
	}()
	if herr == nil {
		var res Result
		var aerr error
		err := p.store.Write(ctx, func(q privicore.Queries) error {
			if fresh {
				if err := p.keyFree(ctx, q, c); err != nil {
					return err
				}
			}
			if res, aerr = h.apply(ctx, q, c, prepared); aerr != nil {
				return aerr
			}
			if res.Body == "" {
				res.Body = BodySucceeded
			}
			return p.record(ctx, q, c, privicore.CommandSucceeded, res.Body, fresh, at, announcer)
		})
		switch {
		case err == nil:
			if fresh {
				c.Status, c.Body, c.UpdatedAt, c.Announcer = privicore.CommandSucceeded, res.Body, at, announcer
			}
			p.forget(c.ID)
			announced = true
			p.announce(c, privicore.CommandSucceeded, res)
			return nil
		case errors.Is(err, errAlreadyFinished):
			p.forget(c.ID)
			return nil
		case errors.Is(err, errKeyBusy):
			return errRequeue
		case aerr != nil && isRejection(aerr):
			herr = aerr
		case fresh && aerr != nil:
			return errRequeue
		case fresh:
			return err
		default:
			p.retry(ctx, c, err)
			return nil
		}
	}
	if !isRejection(herr) {
		if fresh {
			return errRequeue
		}
		p.retry(ctx, c, herr)
		return nil
	}
	reason := reasonOf(herr)
	err := p.store.Write(ctx, func(q privicore.Queries) error {
		if fresh {
			if err := p.keyFree(ctx, q, c); err != nil {
				return err
			}
		}
		if err := h.compensateIn(ctx, q, c, prepared); err != nil {
			return err
		}
		return p.record(ctx, q, c, privicore.CommandRejected, reason, fresh, at, announcer)
	})
	switch {
	case errors.Is(err, errKeyBusy):
		return errRequeue
	case err != nil && fresh:
		return err
	case err != nil:
		if privicore.ErrorCode(err) != privicore.ECONFLICT && !errors.Is(err, errAlreadyFinished) {
			p.log.Warn("recording a rejection failed", "command", c.ID, "err", err)
		}
		return nil
	}
	if fresh {
		c.Status, c.Body, c.UpdatedAt, c.Announcer = privicore.CommandRejected, reason, at, announcer
	}
	p.forget(c.ID)
	announced = true
	p.announce(c, privicore.CommandRejected, Result{Body: reason})
	return nil
}

// record writes c's outcome inside q: a fresh command is created with it;
// a recorded one finishes only while it is pending (errAlreadyFinished if
// not, so that whatever the write did rolls back).
func (p *Processor) record(ctx context.Context, q privicore.Queries, c *privicore.Command, status privicore.CommandStatus, body string, fresh bool, at time.Time, announcer string) error {
	if fresh {
		done := *c
		done.Status, done.Body, done.UpdatedAt, done.Announcer = status, body, at, announcer
		return q.CreateCommand(ctx, &done)
	}
	err := q.FinishCommand(ctx, c.ID, p.opts.Replica, status, body, at, announcer)
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return errAlreadyFinished
	}
	return err
}

// forget drops what this process kept about command id: it finished.
func (p *Processor) forget(id string) {
	p.dropInput(id)
	p.untrack(id)
}

// announce publishes c's recorded outcome and runs res.After (a success's).
func (p *Processor) announce(c *privicore.Command, status privicore.CommandStatus, res Result) {
	p.publish(c, status, res.Body, res.Notify)
	if res.After != nil {
		res.After()
	}
}

func isRejection(err error) bool {
	var e *privicore.Error
	return errors.As(err, &e) && e.Code != privicore.EUNAVAILABLE && e.Code != privicore.EINTERNAL
}

func reasonOf(err error) string {
	if r := privicore.ErrorReason(err); r != "" {
		return r
	}
	return "command.rejected"
}

// publish hands c's ack to the publisher (after its 202, Later), and then
// stops tracking its outcome (endOutcome).
func (p *Processor) publish(c *privicore.Command, status privicore.CommandStatus, body, notify string) {
	if p.pub == nil {
		p.endOutcome(c.ID)
		return
	}
	ev := ackOf(c, status, body)
	p.Later(c.ID, func() {
		if c.ProfileID != "" {
			p.pub.Publish(c.ProfileID, ev)
		}
		if notify != "" && notify != c.ProfileID {
			p.pub.Publish(notify, ev)
		}
		p.endOutcome(c.ID)
	})
}

// ackOf is the X-DPT-CAB-ID event of c's outcome (status, body): the one
// publish sends and a lapsed replica's announcer sends again.
func ackOf(c *privicore.Command, status privicore.CommandStatus, body string) Event {
	return Event{Type: EventCommand, ID: c.ID, CommandStatus: status, Body: body, Actor: c.Actor}
}
