package command

import (
	"context"
	"sync"
)

// Hold keeps back the events of the commands submitted under it (their
// acks, and what handlers Publish for them) until Release: the HTTP layer
// releases it once the command's 202 has been written and flushed to the
// connection, so that no event of a command reaches a socket before its
// 202 (a client may start listening for a command when it reads its 202).
// Events are released in the order they were raised; events raised after
// Release go out at once.
type Hold struct {
	mu       sync.Mutex
	released bool
	pending  []func()
	ids      []string
	p        *Processor // the processor the ids are registered with
}

type holdKey struct{}

// WithHold returns ctx carrying a new Hold: commands submitted with the
// returned context have their events held until the Hold's Release. The
// caller must call Release, whatever happens (events are never dropped).
func WithHold(ctx context.Context) (context.Context, *Hold) {
	h := &Hold{}
	return context.WithValue(ctx, holdKey{}, h), h
}

func holdOf(ctx context.Context) *Hold {
	h, _ := ctx.Value(holdKey{}).(*Hold)
	return h
}

// Release sends the held events, in order, and lets every later one go out
// at once. It may be called more than once.
func (h *Hold) Release() {
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return
	}
	h.released = true
	// Publishers never block, so sending under the lock keeps the order
	// with events raised concurrently (they wait for the lock).
	for _, f := range h.pending {
		f()
	}
	h.pending = nil
	ids, p := h.ids, h.p
	h.mu.Unlock()
	if p != nil {
		p.unhold(ids)
	}
}

// run sends f now if h is released, or keeps it until then.
func (h *Hold) run(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		f()
		return
	}
	h.pending = append(h.pending, f)
}

// hold registers command id under the Hold of ctx, if any.
func (p *Processor) hold(ctx context.Context, id string) {
	h := holdOf(ctx)
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return
	}
	h.ids = append(h.ids, id)
	h.p = p
	h.mu.Unlock()
	p.holdMu.Lock()
	p.held[id] = h
	p.holdMu.Unlock()
}

func (p *Processor) unhold(ids []string) {
	p.holdMu.Lock()
	for _, id := range ids {
		delete(p.held, id)
	}
	p.holdMu.Unlock()
}

// Publish sends data about command commandID to profileID's channel
// through the processor's publisher (buffered for a profile without a
// joined socket): at once, or, while the request that submitted the
// command holds its events (a Hold), right after its 202. Acks go this way;
// so do the events that belong to a command and that its handler or
// another package raises (a data request's answer, the pool events and
// pending status of a command a vote holds).
func (p *Processor) Publish(commandID, profileID string, data any) {
	if p.pub == nil || profileID == "" {
		return
	}
	p.Later(commandID, func() { p.pub.Publish(profileID, data) })
}

// Later runs f at once, or, while command id's 202 has not left yet (a
// Hold), right after it, in order with the command's events. A handler's
// Result.After uses it for what announces the command's effects on the
// socket (a cancelled vote's POOL-RESOLVED comes after the cancellation's
// own ack). f must not block.
func (p *Processor) Later(id string, f func()) {
	p.holdMu.Lock()
	h := p.held[id]
	p.holdMu.Unlock()
	if h == nil {
		f()
		return
	}
	h.run(f)
}
