// Package voting holds the rules of the profile's voting strategy and of
// voting configurations (spec §9): who votes, how answers are counted, for
// how long, how many times a failed vote is retried.
//
// Requests are validated when they arrive (422 with field errors); what
// depends on state that may change before the command runs (the number of
// authenticators, name uniqueness, which devices are authenticators) is
// checked again when it runs and reported as a rejection.
package voting

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/lease"
)

// Command types handled by this package.
const (
	CmdChangeStrategy        = "voting.change_strategy"
	CmdRegisterConfiguration = "voting.register_configuration"
	CmdUpdateConfiguration   = "voting.update_configuration"
)

// Rejection reasons of this package.
const (
	ReasonQuorumTooLarge         = "voting.quorum_too_large"
	ReasonNameTaken              = "voting.name_taken"
	ReasonDeviceNotAuthenticator = "voting.device_not_authenticator"
	ReasonConfigurationNotFound  = "voting.configuration_not_found"
)

// Bounds, and the field errors that state them.
const (
	maxName                    = 128
	minTimeLimit, maxTimeLimit = 5, 86400
	minAttempts, maxAttempts   = 1, 10

	msgStrategy                    = "must be one of unanimous, consensus, affirmative, minimum_percentage"
	msgPercentage                  = "must be a percentage from 0 to 100"
	msgTimeLimit                   = "must be 5 to 86400 seconds"
	msgPercentageRequiredForMinPct = "is required for minimum_percentage"
)

// Service implements the voting rules.
type Service struct {
	store      privicore.Store
	cmds       *command.Processor
	gate       *Gate
	now        func() time.Time
	wire       Wire
	engineKey  *ecdh.PrivateKey
	log        *slog.Logger
	checkEvery time.Duration
	deadlines  *lease.Lease

	unsubscribe []func() // Start's subscriptions
	stop        chan struct{}
	wg          sync.WaitGroup
}

// New returns the service, registers its command handlers with cmds and
// gives gate (the one cmds was constructed with) the pools it opens.
func New(store privicore.Store, cmds *command.Processor, gate *Gate, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 200 * time.Millisecond
	}
	s := &Service{store: store, cmds: cmds, gate: gate, now: func() time.Time { return time.Now().UTC() },
		wire: cfg.Wire, engineKey: cfg.EngineKey, log: cfg.Logger, checkEvery: cfg.CheckEvery, deadlines: cfg.Deadlines, stop: make(chan struct{})}
	gate.svc = s
	cmds.Handle(CmdChangeStrategy, s.handleChangeStrategy)
	cmds.Handle(CmdRegisterConfiguration, s.handleRegisterConfiguration)
	cmds.Handle(CmdUpdateConfiguration, s.handleUpdateConfiguration)
	cmds.HandleKeyed(CmdCreateVote, command.ByID, s.handleCreateVote)
	cmds.Handle(CmdCancelVote, s.handleCancelVote)
	cmds.Event(CmdCreateVote, func(*privicore.Command) string { return EventVote })
	cmds.Handle(CmdRegisterPolicy, s.handleRegisterPolicy)
	for _, typ := range []string{CmdActivatePolicy, CmdDeactivatePolicy, CmdDeletePolicy} {
		cmds.Handle(typ, s.handleChangePolicy)
	}
	cmds.Event(CmdDeactivatePolicy, command.Fires(privicore.EventPolicyDeactivate))
	cmds.Event(CmdDeletePolicy, command.Fires(privicore.EventPolicyDelete))
	return s
}

func utf8Len(s string) int { return utf8.RuneCountInString(s) }

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}

// strategyOf returns the profile's strategy (the defaults until changed).
func strategyOf(ctx context.Context, q privicore.VotingStore, profileID string) (*privicore.VotingStrategy, error) {
	st, err := q.FindVotingStrategy(ctx, profileID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return privicore.DefaultVotingStrategy(profileID), nil
	}
	return st, err
}

// Strategy returns the profile's voting strategy.
func (s *Service) Strategy(ctx context.Context, profileID string) (*privicore.VotingStrategy, error) {
	return strategyOf(ctx, s.store, profileID)
}

// StrategyChange is a change of the profile's strategy; nil fields stay.
type StrategyChange struct {
	QuorumSize *int    `json:"quorumSize,omitempty"`
	Strategy   *string `json:"strategy,omitempty"`
	Percentage *int    `json:"percentage,omitempty"` // strategy_params; only with Strategy
	TimeLimit  *int    `json:"timeLimit,omitempty"`
	Attempts   *int    `json:"attempts,omitempty"`
}

// ChangeStrategy validates and submits a change of the profile's strategy:
// quorum ≥ 1 (and, when it runs, at most the number of authenticators:
// voting.quorum_too_large), a known strategy with its yes percentage
// (0–100; implied for all but minimum_percentage, which needs it), a time
// limit of 5 … 86 400 s, 1 … 10 attempts.
func (s *Service) ChangeStrategy(ctx context.Context, profileID string, ch StrategyChange) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if ch.QuorumSize != nil && *ch.QuorumSize < 1 {
		v.Add("quorumSize", "must be an integer of at least 1")
	}
	if ch.Strategy != nil {
		if !slices.Contains(privicore.Strategies, *ch.Strategy) {
			v.Add("strategy", msgStrategy)
		} else if implied := privicore.ImpliedPercentage(*ch.Strategy); implied >= 0 {
			ch.Percentage = &implied
		} else if ch.Percentage == nil {
			v.Add("strategy_params", msgPercentageRequiredForMinPct)
		}
		if ch.Percentage != nil && (*ch.Percentage < 0 || *ch.Percentage > 100) {
			v.Add("strategy_params", msgPercentage)
		}
	}
	if ch.TimeLimit != nil && (*ch.TimeLimit < minTimeLimit || *ch.TimeLimit > maxTimeLimit) {
		v.Add("timeLimit", msgTimeLimit)
	}
	if ch.Attempts != nil && (*ch.Attempts < minAttempts || *ch.Attempts > maxAttempts) {
		v.Add("numberOfAttempts", "must be 1 to 10")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdChangeStrategy, ch)
}

func (s *Service) handleChangeStrategy(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var ch StrategyChange
	if err := decode(c, &ch); err != nil {
		return command.Result{}, err
	}
	st, err := strategyOf(ctx, q, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	if ch.QuorumSize != nil {
		auths, err := q.ListDevices(ctx, c.ProfileID, privicore.RoleAuthenticator)
		if err != nil {
			return command.Result{}, err
		}
		if *ch.QuorumSize > len(auths) {
			return command.Result{}, privicore.Reject(ReasonQuorumTooLarge, "the quorum is above the %d authenticators of the profile", len(auths))
		}
		st.QuorumSize = *ch.QuorumSize
	}
	if ch.Strategy != nil {
		st.Strategy, st.Percentage = *ch.Strategy, *ch.Percentage
	}
	if ch.TimeLimit != nil {
		st.TimeLimit = *ch.TimeLimit
	}
	if ch.Attempts != nil {
		st.Attempts = *ch.Attempts
	}
	st.UpdatedAt = s.now()
	return command.Result{}, q.SaveVotingStrategy(ctx, st)
}
