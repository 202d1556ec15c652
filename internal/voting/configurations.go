package voting

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Voting configurations (spec §9): named ways of voting that a policy or an
// ad-hoc vote can use instead of the profile's strategy.

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
