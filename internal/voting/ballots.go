package voting

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// Ballots (spec §11): each eligible authenticator gets the current
// attempt's ballot, again whenever it (re)connects while it has not
// answered; its answer is checked (the device was asked, in this attempt,
// before the deadline, once, with its key's MAC) and recorded, and the
// device gets a receipt.

// Wire is the bus as the pools use it (internal/bus implements it): a
// ballot out to one device; answers and hellos in from any device.
type Wire interface {
	// SendBallot publishes b to the device (protocol.OpBallot).
	SendBallot(deviceID string, b protocol.Ballot) error
	// ServeAnswers calls answer for each answer a device sends (a request
	// on protocol.OpVote), one at a time; reply sends the device its
	// receipt. a is nil when the message is no answer. stop ends it.
	ServeAnswers(answer func(deviceID string, a *protocol.Answer, reply func(protocol.Receipt))) (stop func(), err error)
	// OnHello calls hello with the id of every device that (re)connects
	// (protocol.OpHello). stop ends it.
	OnHello(hello func(deviceID string)) (stop func(), err error)
}

// sendBallots sends the current attempt's ballot to every eligible device
// that has not answered (only to onlyDevice when set).
func (s *Service) sendBallots(pl *privicore.Pool, onlyDevice string) {
	if s.wire == nil || pl.State != privicore.PoolOpen {
		return
	}
	for _, id := range pl.Eligible {
		if (onlyDevice != "" && id != onlyDevice) || slices.ContainsFunc(pl.Answers, func(a privicore.PoolAnswer) bool { return a.DeviceID == id }) {
			continue
		}
		b := protocol.Ballot{PoolID: pl.ID, Attempt: pl.Attempt, DeviceIdentifier: id, Event: pl.Event, Title: pl.Title,
			Question: pl.Question, Detail: pl.Detail, ExpiresAt: pl.ExpiresAt}
		if err := s.wire.SendBallot(id, b); err != nil {
			s.log.Warn("ballot not sent", "pool", pl.ID, "device", id, "err", err)
		}
	}
}

// onHello resends the open ballots of a device that (re)connected.
func (s *Service) onHello(deviceID string) {
	ctx := context.Background()
	open, err := s.store.OpenPools(ctx, time.Time{}, 10000)
	if err != nil {
		return
	}
	for _, pl := range open {
		if slices.Contains(pl.Eligible, deviceID) {
			if full, err := s.store.FindPool(ctx, pl.ProfileID, pl.ID); err == nil {
				s.sendBallots(full, deviceID)
			}
		}
	}
}

// errRefused carries a refusal reason out of a write.
type errRefused struct{ reason string }

func (e *errRefused) Error() string { return e.reason }

// onAnswer checks and records a device's answer, and replies with a
// receipt (before what the answer decided is announced). The pool is
// looked up in the device's own profile: another profile's pool is
// unknown to it.
func (s *Service) onAnswer(deviceID string, a *protocol.Answer, reply func(protocol.Receipt)) {
	if a == nil || (a.Vote != "yes" && a.Vote != "no") || a.PoolID == "" {
		reply(protocol.Receipt{Reason: protocol.RefusedMalformed})
		return
	}
	ctx := context.Background()
	var after func()
	err := s.store.Write(ctx, func(q privicore.Queries) error {
		// The device is the bus user that sent the answer (the bus confines
		// each device to its own subjects): found by its bus user, before
		// any profile is known; its profile scopes the pool.
		dev, err := q.FindDeviceByClientID(ctx, protocol.ClientID(deviceID))
		if err != nil {
			return &errRefused{protocol.RefusedUnknownPool}
		}
		pl, err := q.FindPool(ctx, dev.ProfileID, a.PoolID)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			return &errRefused{protocol.RefusedUnknownPool}
		} else if err != nil {
			return err
		}
		if pl.State != privicore.PoolOpen || a.Attempt != pl.Attempt || !s.now().Before(pl.ExpiresAt) {
			return &errRefused{protocol.RefusedClosed}
		}
		if !slices.Contains(pl.Eligible, deviceID) {
			return &errRefused{protocol.RefusedNotEligible}
		}
		pub, err := keys.ParsePublicKey(dev.PublicKey)
		if err != nil || protocol.Verify(a, deviceID, s.engineKey, pub) != nil {
			return &errRefused{protocol.RefusedSignature}
		}
		ans := privicore.PoolAnswer{DeviceID: deviceID, Yes: a.Vote == "yes", At: s.now()}
		if err := q.AddPoolAnswer(ctx, pl.ID, pl.Attempt, ans); privicore.ErrorCode(err) == privicore.ECONFLICT {
			return &errRefused{protocol.RefusedAnswered}
		} else if err != nil {
			return err
		}
		pl.Answers = append(pl.Answers, ans)
		after, err = s.settle(ctx, q, pl, false)
		return err
	})
	var refused *errRefused
	switch {
	case errors.As(err, &refused):
		reply(protocol.Receipt{Reason: refused.reason})
	case err != nil:
		s.log.Warn("recording an answer failed", "pool", a.PoolID, "err", err)
		reply(protocol.Receipt{Reason: "voting.unavailable"})
	default:
		reply(protocol.Receipt{Accepted: true})
		if after != nil {
			after()
		}
	}
}
