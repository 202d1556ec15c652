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
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
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
		wire: cfg.Wire, engineKey: cfg.EngineKey, log: cfg.Logger, checkEvery: cfg.CheckEvery, stop: make(chan struct{})}
	gate.svc = s
	cmds.Handle(CmdChangeStrategy, s.handleChangeStrategy)
	cmds.Handle(CmdRegisterConfiguration, s.handleRegisterConfiguration)
	cmds.Handle(CmdUpdateConfiguration, s.handleUpdateConfiguration)
	cmds.HandleSteps(CmdCreateVote, command.Steps{Key: command.ByID, Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ any) (command.Result, error) {
		return s.handleCreateVote(ctx, q, c)
	}})
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

// ConfigurationInput is a voting configuration to register, or the fields
// to change (nil: unchanged).
type ConfigurationInput struct {
	Name       *string   `json:"name,omitempty"`
	Strategy   *string   `json:"strategy,omitempty"`
	Percentage *int      `json:"percentageRequired,omitempty"`
	TimeLimit  *int      `json:"timeLimit,omitempty"`
	DeviceIDs  *[]string `json:"deviceIdentifiers,omitempty"` // empty or [""]: every authenticator
}

type configurationPayload struct {
	ID string             `json:"id"`
	In ConfigurationInput `json:"in"`
}

// check validates in as the result of applying it to old (nil: a new
// configuration) and fills the implied percentage.
func (s *Service) check(ctx context.Context, profileID string, in *ConfigurationInput, old *privicore.VotingConfiguration) error {
	v := privicore.ValidationErrors{}
	if in.Name != nil {
		*in.Name = strings.TrimSpace(*in.Name)
		if n := utf8.RuneCountInString(*in.Name); n < 1 || n > maxName {
			v.Add("name", "must be 1 to 128 characters")
		} else if other, err := s.store.FindVotingConfiguration(ctx, profileID, *in.Name); err == nil && (old == nil || other.ID != old.ID) {
			v.Add("name", "is already taken")
		}
	} else if old == nil {
		v.Add("name", "is required")
	}
	strategy := ""
	if in.Strategy != nil {
		strategy = *in.Strategy
		if !slices.Contains(privicore.Strategies, strategy) {
			v.Add("strategy", msgStrategy)
		}
	} else if old == nil {
		v.Add("strategy", "is required")
	} else {
		strategy = old.Strategy
	}
	if in.Percentage != nil && (*in.Percentage < 0 || *in.Percentage > 100) {
		v.Add("percentageRequired", msgPercentage)
	}
	if implied := privicore.ImpliedPercentage(strategy); implied >= 0 {
		in.Percentage = &implied
	} else if strategy == privicore.StrategyMinimumPercentage && in.Percentage == nil && (old == nil || old.Strategy != strategy) {
		v.Add("percentageRequired", msgPercentageRequiredForMinPct)
	}
	if in.TimeLimit != nil && (*in.TimeLimit < minTimeLimit || *in.TimeLimit > maxTimeLimit) {
		v.Add("timeLimit", msgTimeLimit)
	}
	if in.DeviceIDs != nil {
		ids := []string{}
		for _, id := range *in.DeviceIDs {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		*in.DeviceIDs = ids
		if len(ids) > 0 {
			auths, err := s.store.ListDevices(ctx, profileID, privicore.RoleAuthenticator)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if !holds(auths, id) {
					v.Add("deviceIdentifiers", id+" is not one of your authenticators")
				}
			}
		}
	}
	return v.Err()
}

func holds(devs []*privicore.Device, id string) bool {
	return slices.ContainsFunc(devs, func(d *privicore.Device) bool { return d.ID == id })
}

// RegisterConfiguration validates and submits a new configuration: name
// (1–128 characters, unique per profile), strategy, percentageRequired
// (0–100, required only for minimum_percentage), timeLimit (5 … 86 400 s,
// default the profile's), deviceIdentifiers (each one of the profile's
// authenticators; none: all of them). The ack body is its id.
func (s *Service) RegisterConfiguration(ctx context.Context, profileID string, in ConfigurationInput) (*privicore.Command, error) {
	if err := s.check(ctx, profileID, &in, nil); err != nil {
		return nil, err
	}
	id := command.NewID()
	return s.cmds.SubmitWithID(ctx, id, profileID, CmdRegisterConfiguration, configurationPayload{ID: id, In: in})
}

// UpdateConfiguration validates and submits a change of one of the
// profile's configurations (by id or name; ENOTFOUND otherwise).
func (s *Service) UpdateConfiguration(ctx context.Context, profileID, idOrName string, in ConfigurationInput) (*privicore.Command, error) {
	old, err := s.Configuration(ctx, profileID, idOrName)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, profileID, &in, old); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdUpdateConfiguration, configurationPayload{ID: old.ID, In: in})
}

// apply writes in over c and checks, at run time, that the devices are
// still authenticators of the profile.
func apply(ctx context.Context, q privicore.Queries, c *privicore.VotingConfiguration, in ConfigurationInput) error {
	if in.Name != nil {
		c.Name = *in.Name
	}
	if in.Strategy != nil {
		c.Strategy = *in.Strategy
	}
	if in.Percentage != nil {
		c.Percentage = *in.Percentage
	}
	if in.TimeLimit != nil {
		c.TimeLimit = *in.TimeLimit
	}
	if in.DeviceIDs != nil {
		c.DeviceIDs = *in.DeviceIDs
	}
	if len(c.DeviceIDs) > 0 && in.DeviceIDs != nil {
		auths, err := q.ListDevices(ctx, c.ProfileID, privicore.RoleAuthenticator)
		if err != nil {
			return err
		}
		for _, id := range c.DeviceIDs {
			if !holds(auths, id) {
				return privicore.Reject(ReasonDeviceNotAuthenticator, "%s is not an authenticator of the profile", id)
			}
		}
	}
	return nil
}

func nameRejection(err error) error {
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return privicore.Reject(ReasonNameTaken, "the name is taken")
	}
	return err
}

func (s *Service) handleRegisterConfiguration(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p configurationPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	st, err := strategyOf(ctx, q, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	now := s.now()
	cfg := &privicore.VotingConfiguration{ID: p.ID, ProfileID: c.ProfileID, TimeLimit: st.TimeLimit, DeviceIDs: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := apply(ctx, q, cfg, p.In); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: cfg.ID}, nameRejection(q.CreateVotingConfiguration(ctx, cfg))
}

func (s *Service) handleUpdateConfiguration(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p configurationPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	cfg, err := q.FindVotingConfiguration(ctx, c.ProfileID, p.ID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return command.Result{}, privicore.Reject(ReasonConfigurationNotFound, "voting configuration not found")
	} else if err != nil {
		return command.Result{}, err
	}
	if err := apply(ctx, q, cfg, p.In); err != nil {
		return command.Result{}, err
	}
	cfg.UpdatedAt = s.now()
	return command.Result{Body: cfg.ID}, nameRejection(q.UpdateVotingConfiguration(ctx, cfg))
}

// Configuration returns one of the profile's configurations by id or name.
func (s *Service) Configuration(ctx context.Context, profileID, idOrName string) (*privicore.VotingConfiguration, error) {
	if idOrName == "" {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "voting configuration not found")
	}
	c, err := s.store.FindVotingConfiguration(ctx, profileID, idOrName)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "voting configuration not found")
	}
	return c, err
}

// Configurations lists the profile's configurations.
func (s *Service) Configurations(ctx context.Context, profileID string) ([]*privicore.VotingConfiguration, error) {
	return s.store.ListVotingConfigurations(ctx, profileID)
}
