package wsproxy

// Shared mode: with a Relay (replicas on one database and one bus), every
// event goes through the bus, to the hubs of every replica that has a
// socket that may hear it, and what none may hear is kept on the bus
// (JetStream) for the next join on any replica. Without one (one engine)
// the hub delivers and buffers in memory (hub.go).

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/command"
)

// Relay carries events and socket closings between the replicas' hubs;
// *bus.Events implements it. An audience (bus.Audience) names who may hear
// an event: a hub listens to a profile's audiences while it has a socket
// joined for them, so that publishing to an audience nobody listens to
// anywhere keeps the event.
type Relay interface {
	// Publish sends ev to the listeners of profileID's audience, or keeps
	// it when there is none (Drain). It must not block.
	Publish(profileID, audience string, ev bus.Event)
	// Buffer keeps ev for a later Drain and tells audience's listeners.
	Buffer(profileID, audience string, ev bus.Event)
	// Listen hears profileID's events of audience (bus.AllAudiences: all)
	// from when it returns; buffered is called when events were kept.
	Listen(profileID, audience string, deliver func(bus.Event), buffered func()) (stop func(), err error)
	// Drain takes, once cluster-wide and in order, the kept events of
	// profileID that wants accepts.
	Drain(profileID string, wants func(bus.Event) bool) ([]bus.Event, error)
	// Flush returns once every event Publish was given before it has
	// reached the bus's listeners or been kept, or fails after timeout.
	Flush(timeout time.Duration) error
	// CloseToken has the other replicas close the sockets of tokenID.
	CloseToken(tokenID string) error
	// OnCloseToken calls closeToken for each other replica's CloseToken.
	OnCloseToken(closeToken func(tokenID string)) (stop func(), err error)
}

// Flush returns once every event Publish was given before it has left
// this replica: with a Relay, once the bus has it (Relay.Flush); without
// one, at once (the events are in the sockets' queues or buffered here).
// It fails if the bus does not confirm within timeout.
func (h *Hub) Flush(timeout time.Duration) error {
	if h.opts.Relay == nil {
		return nil
	}
	return h.opts.Relay.Flush(timeout)
}

// routeKey is one subscription of the hub: a profile's audience.
type routeKey struct{ profileID, audience string }

// route is a subscription and the sockets joined on it.
type route struct {
	n    int
	stop func()
}

// drainState is a drain of a profile's kept events in progress: the live
// events that arrive meanwhile wait for it (they come after the kept ones).
type drainState struct {
	again bool // events were kept meanwhile: drain once more
	held  []heldEvent
}

type heldEvent struct {
	audience string // the subscription it came on
	ev       bus.Event
}

// scopedAudiences are the scopes of EventScopes, each once, sorted.
var scopedAudiences = func() []string {
	var s []string
	for _, scope := range EventScopes {
		if !slices.Contains(s, scope) {
			s = append(s, scope)
		}
	}
	sort.Strings(s)
	return s
}()

// audienceOf is who may hear ev (Grant.allows, as a subject): the sockets
// of an application's commands' acks, of a scope, or the profile's own.
func audienceOf(ev eventInfo) string {
	if ev.typ == command.EventCommand {
		if app, ok := strings.CutPrefix(ev.actor, actorApplication("")); ok {
			return bus.Audience("app", app)
		}
		return bus.Audience("own")
	}
	if scope, ok := EventScopes[ev.typ]; ok {
		return bus.Audience("scope", scope)
	}
	return bus.Audience("own")
}

// audiences are the audiences a socket joined with g hears: all of the
// profile's for its own tokens; an access token's application's acks and
// the scopes it covers. Each event is in exactly one of them.
func audiences(g *Grant) []string {
	if !g.OAuth {
		return []string{bus.AllAudiences}
	}
	var out []string
	if g.Application != "" {
		out = append(out, bus.Audience("app", g.Application))
	}
	for _, scope := range scopedAudiences {
		if privicore.ScopeCovers(g.Scopes, scope) {
			out = append(out, bus.Audience("scope", scope))
		}
	}
	return out
}

func infoOf(ev bus.Event) eventInfo { return eventInfo{typ: ev.Type, actor: ev.Actor} }

// listen subscribes to profileID's audiences that no socket of this hub
// listens to yet and counts the socket on the others.
func (h *Hub) listen(profileID string, auds []string) error {
	h.routeMu.Lock()
	defer h.routeMu.Unlock()
	for i, a := range auds {
		k := routeKey{profileID, a}
		if r := h.routes[k]; r != nil {
			r.n++
			continue
		}
		stop, err := h.opts.Relay.Listen(profileID, a, func(ev bus.Event) { h.deliverRemote(profileID, a, ev) }, func() { h.drain(profileID) })
		if err != nil {
			h.unlistenLocked(profileID, auds[:i])
			return err
		}
		h.routes[k] = &route{n: 1, stop: stop}
	}
	return nil
}

// unlisten uncounts a socket on profileID's audiences; the last one out
// unsubscribes (events then find no listener and are kept).
func (h *Hub) unlisten(profileID string, auds []string) {
	if len(auds) == 0 {
		return
	}
	h.routeMu.Lock()
	defer h.routeMu.Unlock()
	h.unlistenLocked(profileID, auds)
}

func (h *Hub) unlistenLocked(profileID string, auds []string) {
	for _, a := range auds {
		k := routeKey{profileID, a}
		r := h.routes[k]
		if r == nil {
			continue
		}
		if r.n--; r.n <= 0 {
			r.stop()
			delete(h.routes, k)
		}
	}
}

// releaseRoutes unlistens what c listened to before it was detached.
func (h *Hub) releaseRoutes(c *conn) {
	h.mu.Lock()
	profileID, auds := c.releaseProfile, c.release
	c.releaseProfile, c.release = "", nil
	h.mu.Unlock()
	h.unlisten(profileID, auds)
}

// deliverRemote hands an event that came on the subscription of
// profileID's audience to the sockets joined on it; one that none of them
// takes (they left meanwhile) is kept for the next join.
func (h *Hub) deliverRemote(profileID, audience string, ev bus.Event) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if d := h.draining[profileID]; d != nil {
		d.held = append(d.held, heldEvent{audience: audience, ev: ev})
		h.mu.Unlock()
		return
	}
	ok := h.deliverOnLocked(profileID, audience, ev)
	h.mu.Unlock()
	if !ok {
		h.opts.Relay.Buffer(profileID, audienceOf(infoOf(ev)), ev)
	}
}

// deliverOnLocked queues ev for the sockets of profileID joined on
// audience that may read it.
func (h *Hub) deliverOnLocked(profileID, audience string, ev bus.Event) bool {
	info, delivered := infoOf(ev), false
	for c := range h.joined[profileID] {
		if slices.Contains(c.routes, audience) && c.grant.allows(info) {
			c.enqueue(ev.Data)
			delivered = true
		}
	}
	return delivered
}

// mayReadLocked reports whether a socket joined for profileID may read ev.
func (h *Hub) mayReadLocked(profileID string, ev eventInfo) bool {
	for c := range h.joined[profileID] {
		if c.grant.allows(ev) {
			return true
		}
	}
	return false
}

// drain takes the events kept for profileID that its sockets joined here
// may read and delivers them, then the live events that came meanwhile.
// One drain per profile runs at a time; a drain asked for meanwhile (more
// events kept) runs once more at its end.
func (h *Hub) drain(profileID string) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if d := h.draining[profileID]; d != nil {
		d.again = true
		h.mu.Unlock()
		return
	}
	d := &drainState{}
	h.draining[profileID] = d
	h.mu.Unlock()
	var lost []bus.Event // taken, but no socket may read it any more
	for {
		evs, err := h.opts.Relay.Drain(profileID, func(ev bus.Event) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.mayReadLocked(profileID, infoOf(ev))
		})
		if err != nil {
			h.log.Warn("kept events not drained", "profile", profileID, "err", err)
		}
		h.mu.Lock()
		for _, ev := range evs {
			delivered := false
			for c := range h.joined[profileID] {
				if c.grant.allows(infoOf(ev)) {
					c.enqueue(ev.Data)
					delivered = true
				}
			}
			if !delivered {
				lost = append(lost, ev)
			}
		}
		if d.again && err == nil {
			d.again = false
			h.mu.Unlock()
			continue
		}
		delete(h.draining, profileID)
		for _, e := range d.held {
			if !h.deliverOnLocked(profileID, e.audience, e.ev) {
				lost = append(lost, e.ev)
			}
		}
		h.mu.Unlock()
		break
	}
	for _, ev := range lost {
		h.opts.Relay.Buffer(profileID, audienceOf(infoOf(ev)), ev)
	}
}
