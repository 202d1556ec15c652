package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/privicore/privicore/api"
)

// Authenticators, the profile's voting strategy, voting configurations,
// policies and votes (spec §9–§11). Commands return their command id; wait
// with Session.Await or Client.WaitCommand.

// RegisterAuthenticator gives an approved device without a role the
// authenticator role.
func (c *Client) RegisterAuthenticator(ctx context.Context, deviceID string) (string, error) {
	return c.command(ctx, "/verified-authenticator/register", nil, deviceBody(deviceID))
}

// RemoveAuthenticator drops the role (the device stays).
func (c *Client) RemoveAuthenticator(ctx context.Context, deviceID string) (string, error) {
	return c.command(ctx, "/verified-authenticator/remove", nil, deviceBody(deviceID))
}

// Authenticators lists the profile's authenticators.
func (c *Client) Authenticators(ctx context.Context) ([]Device, error) {
	var out []Device
	_, _, err := c.do(ctx, http.MethodGet, "/verified-authenticator/list", nil, nil, &out)
	return out, err
}

// VotingStrategy is the profile's default way of voting.
type VotingStrategy = api.VotingStrategy

// VotingStrategy returns the profile's strategy.
func (c *Client) VotingStrategy(ctx context.Context) (VotingStrategy, error) {
	var out VotingStrategy
	_, _, err := c.do(ctx, http.MethodGet, "/verified-authenticator/retrieve-voting-strategy", nil, nil, &out)
	return out, err
}

// SetQuorumSize submits the quorum (at most the number of authenticators).
func (c *Client) SetQuorumSize(ctx context.Context, n int) (string, error) {
	return c.command(ctx, "/verified-authenticator/set-quorum-size", nil, map[string]int{"quorumSize": n})
}

// SetQuorumStrategy submits the strategy; percentage counts only for
// minimum_percentage.
func (c *Client) SetQuorumStrategy(ctx context.Context, strategy string, percentage int) (string, error) {
	return c.command(ctx, "/verified-authenticator/set-quorum-strategy", nil, map[string]any{"strategy": strategy, "strategy_params": percentage})
}

// SetVotingTimeLimit submits the time limit of a vote.
func (c *Client) SetVotingTimeLimit(ctx context.Context, limit time.Duration) (string, error) {
	return c.command(ctx, "/verified-authenticator/set-voting-time-limit", nil, map[string]int{"timeLimit": int(limit.Seconds())})
}

// SetMaximumVotingAttempts submits how many times a failed vote is tried.
func (c *Client) SetMaximumVotingAttempts(ctx context.Context, n int) (string, error) {
	return c.command(ctx, "/verified-authenticator/set-maximum-voting-attempts", nil, map[string]int{"numberOfAttempts": n})
}

// VotingConfiguration is a named way of voting.
type VotingConfiguration = api.VotingConfiguration

// configurationBody is what RegisterVotingConfiguration and
// UpdateVotingConfiguration send of a VotingConfiguration: its fields
// that are set (a zero field stays as it is).
type configurationBody struct {
	ID                 string    `json:"id,omitempty"`
	Name               string    `json:"name,omitempty"`
	Strategy           string    `json:"strategy,omitempty"`
	PercentageRequired int       `json:"percentageRequired,omitempty"`
	TimeLimit          int       `json:"timeLimit,omitempty"`         // seconds
	DeviceIdentifiers  []string  `json:"deviceIdentifiers,omitempty"` // none: every authenticator
	CreatedAt          time.Time `json:"createdAt,omitzero"`
	UpdatedAt          time.Time `json:"updatedAt,omitzero"`
}

func configurationBodyOf(v VotingConfiguration) configurationBody {
	return configurationBody{ID: v.ID, Name: v.Name, Strategy: v.Strategy, PercentageRequired: v.PercentageRequired, TimeLimit: v.TimeLimit,
		DeviceIdentifiers: v.DeviceIdentifiers, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

// RegisterVotingConfiguration submits a configuration; the outcome's body
// is its id.
func (c *Client) RegisterVotingConfiguration(ctx context.Context, v VotingConfiguration) (string, error) {
	return c.command(ctx, "/verified-authenticator/voting-configuration/register", nil, configurationBodyOf(v))
}

// UpdateVotingConfiguration submits a change: v.ID (or v.Name) finds it;
// zero fields stay.
func (c *Client) UpdateVotingConfiguration(ctx context.Context, v VotingConfiguration) (string, error) {
	return c.command(ctx, "/verified-authenticator/voting-configuration/update", nil, configurationBodyOf(v))
}

// VotingConfigurations lists the profile's configurations.
func (c *Client) VotingConfigurations(ctx context.Context) ([]VotingConfiguration, error) {
	var out []VotingConfiguration
	_, _, err := c.do(ctx, http.MethodGet, "/verified-authenticator/voting-configuration/list", nil, nil, &out)
	return out, err
}

// VotingConfigurationByKey returns one configuration by id or name.
func (c *Client) VotingConfigurationByKey(ctx context.Context, idOrName string) (VotingConfiguration, error) {
	var out VotingConfiguration
	_, _, err := c.do(ctx, http.MethodGet, "/verified-authenticator/voting-configuration/retrieve/"+url.PathEscape(idOrName), nil, nil, &out)
	return out, err
}

// PolicyTemplate is an entry of the engine's catalogue.
type PolicyTemplate = api.PolicyTemplate

// PolicyTemplates returns the catalogue by template id.
func (c *Client) PolicyTemplates(ctx context.Context) (map[string]PolicyTemplate, error) {
	var out map[string]PolicyTemplate
	_, _, err := c.do(ctx, http.MethodGet, "/policy/list-policy-templates", nil, nil, &out)
	return out, err
}

// Policy is a registered policy.
type Policy = api.Policy

// policyBody is what RegisterPolicy sends of a Policy: the template and
// its events, and the other fields that are set.
type policyBody struct {
	ID               string         `json:"id,omitempty"`
	Name             string         `json:"name,omitempty"`
	PolicyTemplateID string         `json:"policyTemplateId"`
	ApplyingEventIDs []string       `json:"applyingEventIds"`
	Events           []string       `json:"events,omitempty"`
	ConfigurationID  string         `json:"configurationId,omitempty"` // a voting configuration (id or name)
	Configuration    map[string]any `json:"configuration,omitempty"`
	Active           bool           `json:"active,omitempty"`
	CreatedAt        time.Time      `json:"createdAt,omitzero"`
}

// RegisterPolicy submits a policy (inactive); the outcome's body is its id.
func (c *Client) RegisterPolicy(ctx context.Context, p Policy) (string, error) {
	return c.command(ctx, "/policy/register", nil, policyBody{ID: p.ID, Name: p.Name, PolicyTemplateID: p.PolicyTemplateID,
		ApplyingEventIDs: p.ApplyingEventIDs, Events: p.Events, ConfigurationID: p.ConfigurationID, Configuration: p.Configuration,
		Active: p.Active, CreatedAt: p.CreatedAt})
}

// Policies lists "registered" (all), "active" or "inactive" policies.
func (c *Client) Policies(ctx context.Context, which string) ([]Policy, error) {
	switch which {
	case "registered", "active", "inactive":
	default:
		return nil, fmt.Errorf("policies: which must be registered, active or inactive, not %q", which)
	}
	var out []Policy
	_, _, err := c.do(ctx, http.MethodGet, "/policy/list-"+which+"-policies", nil, nil, &out)
	return out, err
}

// Policy returns one of the profile's policies by id or name, with its
// configuration.
func (c *Client) Policy(ctx context.Context, idOrName string) (*Policy, error) {
	var out Policy
	_, _, err := c.do(ctx, http.MethodGet, "/policy/retrieve-policy/"+url.PathEscape(idOrName), nil, nil, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangePolicy submits "activate", "deactivate" or "delete" of a policy
// (by id or name).
func (c *Client) ChangePolicy(ctx context.Context, action, idOrName string) (string, error) {
	switch action {
	case "activate", "deactivate", "delete":
	default:
		return "", fmt.Errorf("policy action must be activate, deactivate or delete, not %q", action)
	}
	return c.command(ctx, "/policy/"+action, nil, map[string]string{"policyId": idOrName})
}

// Vote is an opened ad-hoc vote: its command (whose ack comes when the
// pool resolves) and its pool.
type Vote = api.Vote

// CreateVote asks the profile's authenticators a question; configuration
// is a voting configuration's id or name ("" for the profile's strategy).
func (c *Client) CreateVote(ctx context.Context, configuration, title, question, nonce string, skip []string) (Vote, error) {
	var out Vote
	_, _, err := c.do(ctx, http.MethodPost, "/voting/create", nil, map[string]any{"votingConfigurationId": configuration, "title": title,
		"question": question, "nonce": nonce, "skipAuthenticatorDevices": skip}, &out)
	return out, err
}

// PoolStatus is a pool as check-pool-status shows it.
type PoolStatus = api.PoolStatus

// PoolAnswer is one answer of a pool's current attempt.
type PoolAnswer = api.PoolAnswer

// PoolStatus returns a pool's state.
func (c *Client) PoolStatus(ctx context.Context, poolID string) (PoolStatus, error) {
	var out PoolStatus
	_, _, err := c.do(ctx, http.MethodGet, "/voting/check-pool-status/"+url.PathEscape(poolID), nil, nil, &out)
	return out, err
}

// CancelPool submits the cancellation of an open pool.
func (c *Client) CancelPool(ctx context.Context, poolID string) (string, error) {
	return c.command(ctx, "/voting/cancel-pool", nil, map[string]string{"poolId": poolID})
}
