package voting

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/lease"
)

// Pools (spec §9, §11). A pool opens when a held command first runs: its
// eligible authenticators, strategy, quorum, time limit and attempts are
// frozen then. Ballots go out over the bus (ballots.go); the pool resolves
// as soon as no further answer can change the outcome (tally.go), or at
// the deadline (enforced by the engine: a loop resolves overdue pools,
// also after a restart). A failed attempt is followed by a new one (same
// pool, fresh ballots) while attempts remain; the held command is then
// applied or rejected with voting.<state>.

// Config is how the pools reach the devices.
type Config struct {
	Wire      Wire             // the bus; Start fails without it
	EngineKey *ecdh.PrivateKey // authenticates answers (with each device's public key)
	Logger    *slog.Logger
	// CheckEvery is how often overdue pools are looked for; default 200 ms.
	CheckEvery time.Duration
	// Deadlines, if set, is the lease under which overdue pools are
	// resolved: by one replica at a time (nil: always here).
	Deadlines *lease.Lease
}

// Start listens for answers and hellos, resends the ballots of open pools
// and resolves overdue pools from now on.
func (s *Service) Start(ctx context.Context) error {
	if s.wire == nil {
		return errors.New("voting: no bus")
	}
	stopAnswers, err := s.wire.ServeAnswers(s.onAnswer)
	if err != nil {
		return err
	}
	s.unsubscribe = append(s.unsubscribe, stopAnswers)
	stopHellos, err := s.wire.OnHello(s.onHello)
	if err != nil {
		return err
	}
	s.unsubscribe = append(s.unsubscribe, stopHellos)
	if err := s.reloadGuarded(ctx); err != nil {
		return err
	}
	open, err := s.store.OpenPools(ctx, time.Time{}, 10000)
	if err != nil {
		return err
	}
	for _, pl := range open {
		s.sendBallots(pl, "")
	}
	s.wg.Add(1)
	go s.expiryLoop()
	return nil
}

// Stop ends the loop and the subscriptions.
func (s *Service) Stop() {
	select {
	case <-s.stop:
		return
	default:
		close(s.stop)
	}
	for _, stop := range s.unsubscribe {
		stop()
	}
	s.wg.Wait()
}

// poolSpec is what a new pool is made of.
type poolSpec struct {
	id, event, configuration, title, question, nonce string
	skip                                             []string
	detail                                           map[string]any
}

// open creates c's pool and sends its ballots.
func (s *Service) open(ctx context.Context, c *privicore.Command, spec poolSpec) (*privicore.Pool, error) {
	if spec.id == "" {
		spec.id = command.NewID()
	}
	var pl *privicore.Pool
	var after func()
	err := s.store.Write(ctx, func(q privicore.Queries) error {
		if existing, err := q.FindPoolByCommand(ctx, c.ProfileID, c.ID); err == nil {
			pl, after = existing, func() {} // opened meanwhile
			return nil
		}
		st, err := strategyOf(ctx, q, c.ProfileID)
		if err != nil {
			return err
		}
		now := s.now()
		pl = &privicore.Pool{ID: spec.id, ProfileID: c.ProfileID, CommandID: c.ID, Event: spec.event, Title: spec.title, Question: spec.question,
			Nonce: spec.nonce, Detail: spec.detail, Strategy: st.Strategy, Percentage: st.Percentage, TimeLimit: st.TimeLimit,
			Attempt: 1, MaxAttempts: st.Attempts, State: privicore.PoolOpen, CreatedAt: now}
		auths, err := q.ListDevices(ctx, c.ProfileID, privicore.RoleAuthenticator)
		if err != nil {
			return err
		}
		var named []string
		if spec.configuration != "" {
			cfg, err := q.FindVotingConfiguration(ctx, c.ProfileID, spec.configuration)
			if privicore.ErrorCode(err) == privicore.ENOTFOUND {
				return privicore.Reject(ReasonConfigurationNotFound, "voting configuration not found")
			} else if err != nil {
				return err
			}
			pl.Strategy, pl.Percentage, pl.TimeLimit, named = cfg.Strategy, cfg.Percentage, cfg.TimeLimit, cfg.DeviceIDs
		}
		pl.Eligible = []string{}
		for _, d := range auths {
			if (len(named) == 0 || slices.Contains(named, d.ID)) && !slices.Contains(spec.skip, d.ID) {
				pl.Eligible = append(pl.Eligible, d.ID)
			}
		}
		pl.QuorumSize = max(1, min(st.QuorumSize, len(pl.Eligible)))
		pl.ExpiresAt = now.Add(time.Duration(pl.TimeLimit) * time.Second)
		if err := q.CreatePool(ctx, pl); err != nil {
			return err
		}
		opened := s.openedNews(pl, c.Actor) // the first attempt, before settle moves on
		next, err := s.settle(ctx, q, pl, false)
		if next == nil {
			next = func() { s.sendBallots(pl, "") } // the first ballots
		}
		after = func() { opened(); next() }
		return err
	})
	if err != nil {
		return nil, err
	}
	after()
	return pl, nil
}

// describe is what a ballot shows about a held command: its payload's
// identifying fields (never a secret: payloads hold none).
func describe(c *privicore.Command) map[string]any {
	var m map[string]any
	json.Unmarshal(c.Payload, &m)
	out := map[string]any{"commandId": c.ID}
	if c.Actor != "" {
		out["by"] = c.Actor
	}
	for _, k := range []string{"token", "dataToken", "tempToken", "deviceIdentifier", "deviceId", "role", "policyId", "name", "application"} {
		if v, ok := m[k]; ok && v != "" {
			out[k] = v
		}
	}
	return out
}

// settle resolves pl inside q if its outcome is known (or, with deadline,
// its time is up): approved, or failed with a new attempt while attempts
// remain, or failed for good. It returns what to do once committed —
// resume the held command, or send the new attempt's ballots — or nil
// while the pool still waits for answers.
func (s *Service) settle(ctx context.Context, q privicore.Queries, pl *privicore.Pool, deadline bool) (func(), error) {
	state, final := tallyOf(pl, deadline)
	if !final {
		return nil, nil
	}
	return s.finish(ctx, q, pl, state)
}

// finish records state as pl's result (or opens its next attempt). What
// it returns to run after the commit announces it on the socket first
// (POOL-RESOLVED, or POOL-OPENED and the pending status of the next
// attempt), then resumes the command or sends the ballots.
func (s *Service) finish(ctx context.Context, q privicore.Queries, pl *privicore.Pool, state string) (func(), error) {
	now := s.now()
	if state != privicore.PoolApproved && state != privicore.PoolCancelled && pl.Attempt < pl.MaxAttempts {
		pl.Attempt++
		pl.Answers = nil
		pl.ExpiresAt = now.Add(time.Duration(pl.TimeLimit) * time.Second)
		if err := q.UpdatePool(ctx, pl); err != nil {
			return nil, err
		}
		if st, final := tallyOf(pl, false); final { // nobody can answer: fail through the attempts now
			return s.finish(ctx, q, pl, st)
		}
		actor := "" // the held command's submitter, for its pending status
		if c, err := q.FindCommand(ctx, pl.CommandID); err == nil {
			actor = c.Actor
		}
		opened := s.openedNews(pl, actor)
		return func() { opened(); s.sendBallots(pl, "") }, nil
	}
	pl.State, pl.ResolvedAt = state, now
	if err := q.UpdatePool(ctx, pl); err != nil {
		return nil, err
	}
	id, resolved := pl.CommandID, s.resolvedNews(pl)
	return func() { resolved(); s.cmds.Resume(context.Background(), id) }, nil
}

// expiryLoop resolves pools whose deadline passed, and reloads the
// guarded profiles every second.
func (s *Service) expiryLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.checkEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.deadlines.Do(func() { s.expire(context.Background()) })
			if time.Since(last) >= time.Second {
				last = time.Now()
				if err := s.reloadGuarded(context.Background()); err != nil {
					s.log.Warn("reloading the guarded profiles failed", "err", err)
				}
			}
		}
	}
}

// expire resolves every overdue open pool at its deadline.
func (s *Service) expire(ctx context.Context) {
	due, err := s.store.OpenPools(ctx, s.now(), 1000)
	if err != nil {
		return
	}
	for _, stale := range due {
		var after func()
		err := s.store.Write(ctx, func(q privicore.Queries) error {
			pl, err := q.FindPool(ctx, stale.ProfileID, stale.ID)
			if err != nil || pl.State != privicore.PoolOpen || s.now().Before(pl.ExpiresAt) {
				return err
			}
			after, err = s.settle(ctx, q, pl, true)
			return err
		})
		if err != nil {
			s.log.Warn("resolving an overdue pool failed", "pool", stale.ID, "err", err)
		} else if after != nil {
			after()
		}
	}
}
