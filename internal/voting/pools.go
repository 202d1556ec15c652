package voting

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// Pools (spec §9, §11). A pool opens when a held command first runs: its
// eligible authenticators, strategy, quorum, time limit and attempts are
// frozen then. Ballots go out over the bus; answers come back as requests
// and are checked (the device was asked, in this attempt, before the
// deadline, once, with its key's MAC). The pool resolves as soon as no
// further answer can change the outcome, or at the deadline (enforced by
// the engine: a loop resolves overdue pools, also after a restart). A
// failed attempt is followed by a new one (same pool, fresh ballots) while
// attempts remain; the held command is then applied or rejected with
// voting.<state>.

// Command types and the event of ad-hoc votes.
const (
	CmdCreateVote = "voting.create"
	CmdCancelVote = "voting.cancel"
	EventVote     = "voting.create"
)

// More rejection reasons.
const (
	ReasonPoolNotFound = "voting.pool_not_found"
	ReasonPoolClosed   = "voting.pool_closed"
)

// Bus connects the pools to the devices.
type Bus struct {
	Conn       *nats.Conn
	Prefix     string
	EngineKey  *ecdh.PrivateKey // authenticates answers (with each device's public key)
	Logger     *slog.Logger
	CheckEvery time.Duration // how often overdue pools are looked for; default 200 ms
}

// pools is the running side of the pools.
type pools struct {
	bus  Bus
	subs []*nats.Subscription
	stop chan struct{}
	wg   sync.WaitGroup
}

// SetBus connects the service to the devices; call before Start.
func (s *Service) SetBus(b Bus) {
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	if b.CheckEvery <= 0 {
		b.CheckEvery = 200 * time.Millisecond
	}
	s.pools = &pools{bus: b, stop: make(chan struct{})}
}

// Start listens for answers and hellos, resends the ballots of open pools
// and resolves overdue pools from now on.
func (s *Service) Start(ctx context.Context) error {
	if s.pools == nil {
		return errors.New("voting: no bus")
	}
	p := s.pools
	for subject, h := range map[string]nats.MsgHandler{
		protocol.FromAny(p.bus.Prefix, protocol.OpVote):  s.onAnswer,
		protocol.FromAny(p.bus.Prefix, protocol.OpHello): s.onHello,
	} {
		sub, err := p.bus.Conn.Subscribe(subject, h)
		if err != nil {
			return err
		}
		p.subs = append(p.subs, sub)
	}
	if err := s.reloadGuarded(ctx); err != nil {
		return err
	}
	open, err := s.store.OpenPools(ctx, time.Time{}, 10000)
	if err != nil {
		return err
	}
	for _, pl := range open {
		s.sendBallots(ctx, pl, "")
	}
	p.wg.Add(1)
	go s.expiryLoop()
	return nil
}

// Stop ends the loop and the subscriptions.
func (s *Service) Stop() {
	if s.pools == nil {
		return
	}
	select {
	case <-s.pools.stop:
		return
	default:
		close(s.pools.stop)
	}
	for _, sub := range s.pools.subs {
		sub.Unsubscribe()
	}
	s.pools.wg.Wait()
}

// ---- creating and holding ----

// Gated implements command.Gate: an ad-hoc vote always; another event when
// the profile may have an active policy (Check reads them).
func (s *Service) Gated(ctx context.Context, c *privicore.Command, event string) bool {
	return event == EventVote || s.guarded.has(c.ProfileID)
}

// Check implements command.Gate: the command's pool decides; without one,
// one is opened (and the command held) if a policy still covers it.
func (s *Service) Check(ctx context.Context, c *privicore.Command, event string) (bool, error) {
	pl, err := s.store.FindPoolByCommand(ctx, c.ID)
	if err == nil {
		return verdict(pl)
	} else if privicore.ErrorCode(err) != privicore.ENOTFOUND {
		return false, err
	}
	spec := poolSpec{event: event}
	if event == EventVote {
		if spec, err = voteSpec(c); err != nil {
			return false, err
		}
	} else {
		pol, err := s.policyFor(ctx, c.ProfileID, event)
		if err != nil {
			return false, err
		}
		if pol == nil {
			return true, nil // no policy covers it any more
		}
		spec.configuration, spec.title = pol.ConfigurationID, pol.Name
		spec.question, _ = pol.Configuration[ParamBallotMessage].(string)
		spec.detail = s.describe(c)
	}
	if pl, err = s.open(ctx, c, spec); err != nil {
		return false, err
	}
	return verdict(pl)
}

// verdict is what a pool says about its held command: wait (open), run
// (approved), or the rejection voting.<state>.
func verdict(pl *privicore.Pool) (proceed bool, err error) {
	switch pl.State {
	case privicore.PoolOpen:
		return false, nil
	case privicore.PoolApproved:
		return true, nil
	}
	return false, privicore.Reject("voting."+pl.State, "the vote ended %s", pl.State)
}

// voteSpec is the pool of an ad-hoc vote command.
func voteSpec(c *privicore.Command) (poolSpec, error) {
	var p createPayload
	if err := decode(c, &p); err != nil {
		return poolSpec{}, err
	}
	return poolSpec{event: EventVote, id: p.PoolID, configuration: p.ConfigurationID, title: p.Title, question: p.Question,
		nonce: p.Nonce, skip: p.Skip}, nil
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
		if existing, err := q.FindPoolByCommand(ctx, c.ID); err == nil {
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
			next = func() { s.sendBallots(context.Background(), pl, "") } // the first ballots
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
func (s *Service) describe(c *privicore.Command) map[string]any {
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

// ---- resolution ----

// outcome is what the answers so far say, if every way the remaining
// voters could still answer (or stay silent) gives the same result.
func outcome(pl *privicore.Pool) (string, bool) {
	yes, no := tally(pl)
	pending := max(0, len(pl.Eligible)-len(pl.Answers))
	first := ""
	for y := 0; y <= pending; y++ {
		for n := 0; y+n <= pending; n++ {
			r := result(pl, yes+y, no+n)
			if first == "" {
				first = r
			} else if r != first {
				return "", false
			}
		}
	}
	return first, true
}

// atDeadline is the outcome with the answers received.
func atDeadline(pl *privicore.Pool) string {
	yes, no := tally(pl)
	return result(pl, yes, no)
}

// tally counts the current attempt's yes and no answers.
func tally(pl *privicore.Pool) (yes, no int) {
	for _, a := range pl.Answers {
		if a.Yes {
			yes++
		}
	}
	return yes, len(pl.Answers) - yes
}

// result applies the strategy to a count of answers.
func result(pl *privicore.Pool, yes, no int) string {
	n := yes + no
	switch {
	case n == 0 && len(pl.Eligible) > 0:
		return privicore.PoolExpired
	case n < pl.QuorumSize || n == 0:
		return privicore.PoolQuorumNotMet
	}
	var ok bool
	switch pl.Strategy {
	case privicore.StrategyUnanimous:
		ok = no == 0
	case privicore.StrategyConsensus:
		ok = 2*yes > n
	case privicore.StrategyAffirmative:
		ok = yes >= 1
	default:
		ok = 100*yes >= pl.Percentage*n
	}
	if ok {
		return privicore.PoolApproved
	}
	return privicore.PoolRejected
}

// settle resolves pl inside q if its outcome is known (or, with deadline,
// its time is up): approved, or failed with a new attempt while attempts
// remain, or failed for good. It returns what to do once committed —
// resume the held command, or send the new attempt's ballots — or nil
// while the pool still waits for answers.
func (s *Service) settle(ctx context.Context, q privicore.Queries, pl *privicore.Pool, deadline bool) (func(), error) {
	state, known := outcome(pl)
	if deadline {
		state, known = atDeadline(pl), true
	}
	if !known {
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
		if st, known := outcome(pl); known { // nobody can answer: fail through the attempts now
			return s.finish(ctx, q, pl, st)
		}
		actor := "" // the held command's submitter, for its pending status
		if c, err := q.FindCommand(ctx, pl.CommandID); err == nil {
			actor = c.Actor
		}
		opened := s.openedNews(pl, actor)
		return func() { opened(); s.sendBallots(context.Background(), pl, "") }, nil
	}
	pl.State, pl.ResolvedAt = state, now
	if err := q.UpdatePool(ctx, pl); err != nil {
		return nil, err
	}
	id, resolved := pl.CommandID, s.resolvedNews(pl)
	return func() { resolved(); s.cmds.Resume(context.Background(), id) }, nil
}

// sendBallots sends the current attempt's ballot to every eligible device
// that has not answered (only to onlyDevice when set).
func (s *Service) sendBallots(ctx context.Context, pl *privicore.Pool, onlyDevice string) {
	if s.pools == nil || pl.State != privicore.PoolOpen {
		return
	}
	for _, id := range pl.Eligible {
		if (onlyDevice != "" && id != onlyDevice) || slices.ContainsFunc(pl.Answers, func(a privicore.PoolAnswer) bool { return a.DeviceID == id }) {
			continue
		}
		b, _ := json.Marshal(protocol.Ballot{PoolID: pl.ID, Attempt: pl.Attempt, DeviceIdentifier: id, Event: pl.Event, Title: pl.Title,
			Question: pl.Question, Detail: pl.Detail, ExpiresAt: pl.ExpiresAt})
		if err := s.pools.bus.Conn.Publish(protocol.To(protocol.DeviceSubject(s.pools.bus.Prefix, id), protocol.OpBallot), b); err != nil {
			s.pools.bus.Logger.Warn("ballot not sent", "pool", pl.ID, "device", id, "err", err)
		}
	}
}

// deviceOf returns the device id in a <prefix>.dev.<id>.from.<op> subject.
func (s *Service) deviceOf(subject string) string {
	return protocol.SubjectDevice(s.pools.bus.Prefix, subject)
}

// onHello resends the open ballots of a device that (re)connected.
func (s *Service) onHello(m *nats.Msg) {
	id := s.deviceOf(m.Subject)
	ctx := context.Background()
	open, err := s.store.OpenPools(ctx, time.Time{}, 10000)
	if err != nil {
		return
	}
	for _, pl := range open {
		if slices.Contains(pl.Eligible, id) {
			if full, err := s.store.FindPool(ctx, pl.ID); err == nil {
				s.sendBallots(ctx, full, id)
			}
		}
	}
}

// errRefused carries a refusal reason out of a write.
type errRefused struct{ reason string }

func (e *errRefused) Error() string { return e.reason }

// onAnswer checks and records a device's answer, and replies with a receipt.
func (s *Service) onAnswer(m *nats.Msg) {
	reply := func(r protocol.Receipt) {
		b, _ := json.Marshal(r)
		m.Respond(b)
	}
	deviceID := s.deviceOf(m.Subject)
	var a protocol.Answer
	if json.Unmarshal(m.Data, &a) != nil || (a.Vote != "yes" && a.Vote != "no") || a.PoolID == "" {
		reply(protocol.Receipt{Reason: protocol.RefusedMalformed})
		return
	}
	ctx := context.Background()
	var after func()
	err := s.store.Write(ctx, func(q privicore.Queries) error {
		pl, err := q.FindPool(ctx, a.PoolID)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			return &errRefused{protocol.RefusedUnknownPool}
		} else if err != nil {
			return err
		}
		dev, err := q.FindDevice(ctx, pl.ProfileID, deviceID)
		if err != nil || dev.ProfileID != pl.ProfileID {
			return &errRefused{protocol.RefusedUnknownPool}
		}
		if pl.State != privicore.PoolOpen || a.Attempt != pl.Attempt || !s.now().Before(pl.ExpiresAt) {
			return &errRefused{protocol.RefusedClosed}
		}
		if !slices.Contains(pl.Eligible, deviceID) {
			return &errRefused{protocol.RefusedNotEligible}
		}
		pub, err := keys.ParsePublicKey(dev.PublicKey)
		if err != nil || protocol.Verify(&a, deviceID, s.pools.bus.EngineKey, pub) != nil {
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
		s.pools.bus.Logger.Warn("recording an answer failed", "pool", a.PoolID, "err", err)
		reply(protocol.Receipt{Reason: "voting.unavailable"})
	default:
		reply(protocol.Receipt{Accepted: true})
		if after != nil {
			after()
		}
	}
}

// expiryLoop resolves pools whose deadline passed, and reloads the
// guarded profiles every second.
func (s *Service) expiryLoop() {
	defer s.pools.wg.Done()
	t := time.NewTicker(s.pools.bus.CheckEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.pools.stop:
			return
		case <-t.C:
			s.expire(context.Background())
			if time.Since(last) >= time.Second {
				last = time.Now()
				if err := s.reloadGuarded(context.Background()); err != nil {
					s.pools.bus.Logger.Warn("reloading the guarded profiles failed", "err", err)
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
			pl, err := q.FindPool(ctx, stale.ID)
			if err != nil || pl.State != privicore.PoolOpen || s.now().Before(pl.ExpiresAt) {
				return err
			}
			after, err = s.settle(ctx, q, pl, true)
			return err
		})
		if err != nil {
			s.pools.bus.Logger.Warn("resolving an overdue pool failed", "pool", stale.ID, "err", err)
		} else if after != nil {
			after()
		}
	}
}

// ---- ad-hoc votes ----

type createPayload struct {
	PoolID          string   `json:"poolId"`
	ConfigurationID string   `json:"configurationId,omitempty"`
	Title           string   `json:"title"`
	Question        string   `json:"question"`
	Nonce           string   `json:"nonce,omitempty"`
	Skip            []string `json:"skip,omitempty"`
}

// CreateVote validates and submits an ad-hoc vote: configuration (id or
// name; "" for the profile's strategy), question (1–2000 characters), title
// (≤ 200), skipped devices, nonce (≤ 256). Its command's ack comes when the
// pool resolves: 2 approved, 3 voting.<state>.
func (s *Service) CreateVote(ctx context.Context, profileID, configuration, title, question, nonce string, skip []string) (*privicore.Command, string, error) {
	v := privicore.ValidationErrors{}
	if n := utf8Len(question); n < 1 || n > 2000 {
		v.Add("question", "must be 1 to 2000 characters")
	}
	if utf8Len(title) > 200 {
		v.Add("title", "must be at most 200 characters")
	}
	if len(nonce) > 256 {
		v.Add("nonce", "must be at most 256 characters")
	}
	cfgID := ""
	if configuration != "" {
		cfg, err := s.store.FindVotingConfiguration(ctx, profileID, configuration)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			v.Add("votingConfigurationId", "is not one of your voting configurations")
		} else if err != nil {
			return nil, "", err
		} else {
			cfgID = cfg.ID
		}
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	poolID := command.NewID()
	c, err := s.cmds.Submit(ctx, profileID, CmdCreateVote, createPayload{PoolID: poolID, ConfigurationID: cfgID, Title: title,
		Question: question, Nonce: nonce, Skip: skip})
	if err != nil {
		return nil, "", err
	}
	// The pool opens now, so that its status is there with the 202 (the
	// command's first run finds it; if this fails, that run opens it).
	if spec, err := voteSpec(c); err == nil {
		if _, err := s.open(ctx, c, spec); err != nil && privicore.ErrorCode(err) != privicore.EREJECTED {
			s.pools.bus.Logger.Warn("opening a pool failed; its command will", "pool", poolID, "err", err)
		}
	}
	return c, poolID, nil
}

func (s *Service) handleCreateVote(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p createPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: p.PoolID}, nil
}

// Pool returns one of the profile's pools (another profile's is ENOTFOUND).
func (s *Service) Pool(ctx context.Context, profileID, id string) (*privicore.Pool, error) {
	pl, err := s.store.FindPool(ctx, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && pl.ProfileID != profileID) {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "pool not found")
	}
	return pl, err
}

type cancelPayload struct {
	PoolID string `json:"poolId"`
}

// CancelVote submits the cancellation of one of the profile's open pools:
// the held operation fails with voting.cancelled.
func (s *Service) CancelVote(ctx context.Context, profileID, poolID string) (*privicore.Command, error) {
	if poolID == "" {
		return nil, privicore.Invalid("poolId", "is required")
	}
	return s.cmds.Submit(ctx, profileID, CmdCancelVote, cancelPayload{PoolID: poolID})
}

func (s *Service) handleCancelVote(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p cancelPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	pl, err := q.FindPool(ctx, p.PoolID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && pl.ProfileID != c.ProfileID) {
		return command.Result{}, privicore.Reject(ReasonPoolNotFound, "pool not found")
	} else if err != nil {
		return command.Result{}, err
	}
	if pl.State != privicore.PoolOpen {
		return command.Result{}, privicore.Reject(ReasonPoolClosed, "the pool already ended %s", pl.State)
	}
	after, err := s.finish(ctx, q, pl, privicore.PoolCancelled)
	if err != nil {
		return command.Result{}, err
	}
	// The pool's end is announced after the cancellation's own ack (which
	// waits for the cancellation's 202).
	return command.Result{After: func() { s.cmds.Later(c.ID, after) }}, nil
}
