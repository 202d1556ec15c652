package client

import (
	"encoding/json"

	"github.com/privicore/privicore/api"
)

// Event types of voting pools on the channel (spec §1).
const (
	EventPoolOpened   = api.EventPoolOpened   // an attempt of a pool opened: the command waits for a vote
	EventPoolResolved = api.EventPoolResolved // the pool's final state
)

// PoolEvent is a POOL-OPENED or POOL-RESOLVED event: the vote a command
// waits for (a command held by a policy, or an ad-hoc vote).
type PoolEvent = api.PoolEvent

// maxPoolEvents bounds the pool events remembered per command (the engine
// allows at most 10 attempts: 11 events).
const maxPoolEvents = 64

// WaitOption configures how Await and Retrieve wait.
type WaitOption func(*waitOptions)

type waitOptions struct {
	onVote func(PoolEvent)
}

// OnVote calls fn with each pool event of the awaited command, in order,
// one at a time, before the wait returns: e.g. to show "waiting for a
// vote" while a policy holds the command. Events that arrived before the
// wait began are delivered first.
func OnVote(fn func(PoolEvent)) WaitOption {
	return func(o *waitOptions) { o.onVote = fn }
}

func waitOptionsOf(opts []WaitOption) waitOptions {
	var o waitOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// rememberPool records a pool event by its command and wakes the command's
// pool waiters. The newest outcomeCache commands are kept.
func (s *Session) rememberPool(raw json.RawMessage) {
	var ev PoolEvent
	if json.Unmarshal(raw, &ev) != nil || ev.CommandID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list, known := s.pools[ev.CommandID]
	if !known {
		s.poolOrder = append(s.poolOrder, ev.CommandID)
		if len(s.poolOrder) > outcomeCache {
			delete(s.pools, s.poolOrder[0])
			s.poolOrder = s.poolOrder[1:]
		}
	}
	if len(list) < maxPoolEvents {
		s.pools[ev.CommandID] = append(list, ev)
	}
	for _, w := range s.poolWaiters[ev.CommandID] {
		close(w)
	}
	delete(s.poolWaiters, ev.CommandID)
}

// poolEvents returns the pool events of command id from the seen-th on.
func (s *Session) poolEvents(id string, seen int) []PoolEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.pools[id]
	if seen >= len(list) {
		return nil
	}
	return append([]PoolEvent(nil), list[seen:]...)
}

// deliverPools hands fn the pool events of id it has not seen yet and
// returns how many it has now seen.
func (s *Session) deliverPools(id string, seen int, fn func(PoolEvent)) int {
	if fn == nil {
		return seen
	}
	for _, ev := range s.poolEvents(id, seen) {
		fn(ev)
		seen++
	}
	return seen
}

// poolWaiter returns a channel closed at id's next pool event (nil, which
// never fires, when fn is nil or events beyond seen are already there).
func (s *Session) poolWaiter(id string, seen int, fn func(PoolEvent)) (w chan struct{}, pending bool) {
	if fn == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pools[id]) > seen {
		return nil, true
	}
	w = make(chan struct{})
	s.poolWaiters[id] = append(s.poolWaiters[id], w)
	return w, false
}

// dropPoolWaiter forgets w (if rememberPool has not already released it).
func (s *Session) dropPoolWaiter(id string, w chan struct{}) {
	if w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dropChan(s.poolWaiters, id, w)
}
