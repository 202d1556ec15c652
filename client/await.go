package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Waiting for a command's outcome on the session: the socket's acks first,
// the status endpoint as a safety net.

// pollEvery is Await's safety-net polling interval (Session.pollEvery).
const pollEvery = 3 * time.Second

// Await waits for command id to finish: the Outcome on success
// (command_status 2), a *RejectedError with the reason key on rejection
// (command_status 3). Pending events (command_status 1, e.g. while a vote
// runs) are ignored; OnVote hands over the pool events of a vote the
// command waits for. It listens on the socket, polls CommandStatus after
// every re-join (events may have been missed) and every few seconds as a
// safety net. An API error of a poll (a 404 *Error for an unknown command)
// ends it; a transport error does not (the socket may still deliver). It
// returns ctx's error when ctx ends and ErrSessionClosed after Close.
func (s *Session) Await(ctx context.Context, id string, opts ...WaitOption) (Outcome, error) {
	o := waitOptionsOf(opts)
	seen := 0
	for {
		seen = s.deliverPools(id, seen, o.onVote)
		if c, ok := s.lookup(id); ok {
			out, _, err := outcomeOf(id, c.status, c.body)
			return out, err
		}
		s.mu.Lock()
		w := make(chan struct{})
		s.waiters[id] = append(s.waiters[id], w)
		changed := s.changed
		s.mu.Unlock()
		pw, more := s.poolWaiter(id, seen, o.onVote)
		// The outcome (or a pool event) may have come in before the waiter
		// was registered.
		if _, ok := s.lookup(id); ok || more {
			s.dropWaiter(id, w)
			s.dropPoolWaiter(id, pw)
			continue
		}
		poll := time.NewTimer(s.pollEvery)
		var stop error
		vote := false
		select {
		case <-w:
		case <-pw:
			vote = true
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			stop = ctx.Err()
		case <-s.done:
			stop = ErrSessionClosed
		}
		poll.Stop()
		s.dropWaiter(id, w)
		s.dropPoolWaiter(id, pw)
		if stop != nil {
			return Outcome{}, stop
		}
		if vote {
			continue // hand it over, then wait on
		}
		if _, ok := s.lookup(id); ok {
			continue
		}
		st, err := s.CommandStatus(ctx, id)
		var apiErr *Error
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return Outcome{}, ctx.Err()
		case errors.As(err, &apiErr):
			return Outcome{}, fmt.Errorf("poll %s: %w", id, err)
		default:
			continue // the engine unreachable for now: wait for the socket or the next poll
		}
		if st.CommandStatus == 2 || st.CommandStatus == 3 {
			s.remember(id, st.CommandStatus, st.Body)
		}
	}
}

// dropWaiter forgets w (if remember has not already released it).
func (s *Session) dropWaiter(id string, w chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dropChan(s.waiters, id, w)
}

// dropChan removes w from waiters[id] (the caller holds s.mu).
func dropChan(waiters map[string][]chan struct{}, id string, w chan struct{}) {
	ws := waiters[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(waiters, id)
	} else {
		waiters[id] = ws
	}
}

// Do submits a command with submit (any method returning a command id) and
// awaits its outcome (with opts, as Await). A submission error (e.g. a 422
// *Error) is returned as is.
func (s *Session) Do(ctx context.Context, submit func() (string, error), opts ...WaitOption) (Outcome, error) {
	id, err := submit()
	if err != nil {
		return Outcome{}, err
	}
	return s.Await(ctx, id, opts...)
}
