package command

import (
	"context"
	"sync"
	"time"

	"github.com/privicore/privicore"
)

// Acks that outlive their replica (shared mode, Options.Announcers).
//
// A replica records an outcome, then hands its ack to the publisher; one
// that dies in between (SIGKILL, a lost machine) would leave a recorded
// outcome whose ack no socket ever hears. So each outcome is recorded with
// its announcer (this replica), and the replica keeps a row in the store
// (privicore.Announcer) saying that it has handed to the bus the acks of
// every outcome it recorded before Through, renewed every AnnounceEvery
// with the bus's confirmation (Flusher), and that it lives until Until
// (one Lease on). A row past its Until is a replica that died: the replica
// holding AnnounceLease publishes the acks of its outcomes from Through on,
// then deletes the row. Acks are therefore delivered at least once: a
// dead replica's last outcomes (at most about AnnounceEvery of them, plus
// announceSlack) may be acked twice. A clean Stop ends the row.
//
// Outcomes in flight are tracked from the moment their UpdatedAt is taken
// (beginOutcome, which is the time recorded) to when their ack has been
// handed to the publisher (endOutcome): Through never passes one of them.

// Flusher is a Publisher that can say when what it was handed has left the
// replica (wsproxy.Hub: the bus has it).
type Flusher interface {
	Flush(timeout time.Duration) error
}

// Defaults of the announcements.
const (
	// DefaultAnnounceEvery is how often a replica renews its announcer and
	// looks for lapsed ones.
	DefaultAnnounceEvery = time.Second
	// announceSlack is taken off Through, against the replica's clock
	// stepping back.
	announceSlack = 250 * time.Millisecond
	// announceFlushWithin bounds the wait for the bus's confirmation.
	announceFlushWithin = 5 * time.Second
	// announcePage is how many of a lapsed replica's outcomes one read takes.
	announcePage = 500
)

// outcomes tracks the outcomes of this replica whose ack is not yet
// handed to the publisher.
type outcomes struct {
	mu     sync.Mutex
	open   map[string]time.Time // command id → the outcome's UpdatedAt
	active bool                 // shared mode: announcements are kept
}

// beginOutcome returns the time to record c's outcome with and the
// announcer to record it under ("" without announcements); in shared mode
// the outcome is tracked until endOutcome.
func (p *Processor) beginOutcome(id string) (time.Time, string) {
	if !p.outcomes.active {
		return p.now(), ""
	}
	p.outcomes.mu.Lock()
	defer p.outcomes.mu.Unlock()
	at := p.now() // under the lock: an announcedThrough after this sees it open
	p.outcomes.open[id] = at
	return at, p.opts.Replica
}

// endOutcome stops tracking command id's outcome: its ack was handed to
// the publisher, or nothing was recorded.
func (p *Processor) endOutcome(id string) {
	if !p.outcomes.active {
		return
	}
	p.outcomes.mu.Lock()
	delete(p.outcomes.open, id)
	p.outcomes.mu.Unlock()
}

// announcedThrough is a time before which every outcome this replica
// recorded has had its ack handed to the publisher (not yet flushed).
func (p *Processor) announcedThrough() time.Time {
	p.outcomes.mu.Lock()
	defer p.outcomes.mu.Unlock()
	through := p.now()
	for _, at := range p.outcomes.open {
		if at.Before(through) {
			through = at
		}
	}
	return through.Add(-announceSlack)
}

// keepAnnouncer renews this replica's announcer: Through as far as the
// bus confirms, Until one lease on (until, if set, instead: a Stop that
// leaves acks to the others).
func (p *Processor) keepAnnouncer(ctx context.Context, until time.Time) error {
	through := p.announcedThrough()
	if err := p.flushPublisher(); err != nil {
		return err
	}
	if until.IsZero() {
		until = p.now().Add(p.opts.Lease)
	}
	return p.opts.Announcers.KeepAnnouncer(ctx, privicore.Announcer{Replica: p.opts.Replica, Through: through, Until: until})
}

// announcer renews this replica's announcer every AnnounceEvery and, under
// AnnounceLease, announces what lapsed replicas may not have.
func (p *Processor) announcer() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.AnnounceEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx := context.Background()
		if err := p.keepAnnouncer(ctx, time.Time{}); err != nil {
			p.log.Warn("renewing the command announcer failed", "err", err)
		}
		p.opts.AnnounceLease.Do(func() { p.announceLapsed(ctx) })
	}
}

// endAnnouncer, at Stop, ends this replica's announcer if every outcome it
// recorded has been announced; if not (an ack still held, the bus not
// confirming), it lets the announcer lapse now, for another replica to
// announce from where this one is sure.
func (p *Processor) endAnnouncer(ctx context.Context) {
	p.outcomes.mu.Lock()
	open := len(p.outcomes.open)
	p.outcomes.mu.Unlock()
	if open == 0 && p.flushPublisher() == nil {
		if err := p.opts.Announcers.EndAnnouncer(ctx, p.opts.Replica); err == nil {
			return
		}
	}
	if err := p.keepAnnouncer(ctx, p.now()); err != nil {
		p.log.Warn("ending the command announcer failed; it lapses", "err", err)
	}
}

// announceLapsed publishes the acks of the outcomes that lapsed announcers
// recorded from their Through on, then ends those announcers.
func (p *Processor) announceLapsed(ctx context.Context) {
	lapsed, err := p.opts.Announcers.LapsedAnnouncers(ctx, p.now())
	if err != nil {
		p.log.Warn("reading lapsed command announcers failed", "err", err)
		return
	}
	for _, a := range lapsed {
		if a.Replica == p.opts.Replica {
			continue // this one's renewals are failing: it announces its own
		}
		n, err := p.announceFor(ctx, a)
		if err != nil {
			p.log.Warn("announcing a lapsed replica's outcomes failed", "replica", a.Replica, "err", err)
			continue
		}
		if err := p.opts.Announcers.EndAnnouncer(ctx, a.Replica); err != nil {
			p.log.Warn("ending a lapsed command announcer failed", "replica", a.Replica, "err", err)
			continue
		}
		p.log.Info("announced the outcomes of a replica that stopped without announcing them", "replica", a.Replica, "acks", n)
	}
}

// announceFor publishes the acks of a's outcomes from a.Through on and
// waits for the bus to have them.
func (p *Processor) announceFor(ctx context.Context, a privicore.Announcer) (int, error) {
	since, after, n := a.Through, "", 0
	for {
		cmds, err := p.opts.Announcers.UnannouncedCommands(ctx, a.Replica, since, after, announcePage)
		if err != nil {
			return n, err
		}
		for _, c := range cmds {
			if p.pub != nil && c.ProfileID != "" {
				p.pub.Publish(c.ProfileID, ackOf(c, c.Status, c.Body))
				n++
			}
		}
		if len(cmds) < announcePage {
			break
		}
		last := cmds[len(cmds)-1]
		since, after = last.UpdatedAt, last.ID
	}
	if n == 0 {
		return 0, nil
	}
	return n, p.flushPublisher()
}

// flushPublisher waits until the publisher has sent on what it was
// handed, if it can tell (Flusher); nil if it cannot.
func (p *Processor) flushPublisher() error {
	if f, ok := p.pub.(Flusher); ok {
		return f.Flush(announceFlushWithin)
	}
	return nil
}
