package voting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Policies (spec §10). A policy names a template of the engine's
// catalogue, the template's events it covers, a voting configuration (or
// the profile's strategy) and the template's parameters. While it is
// active, every command firing one of its events waits for a vote.

// Command types of policies.
const (
	CmdRegisterPolicy   = "policy.register"
	CmdActivatePolicy   = "policy.activate"
	CmdDeactivatePolicy = "policy.deactivate"
	CmdDeletePolicy     = "policy.delete"
)

// Rejection reasons of policies.
const (
	ReasonPolicyNotFound  = "policy.not_found"
	ReasonPolicyNameTaken = "policy.name_taken"
)

// TemplateEvent is one event a template can gate.
type TemplateEvent struct {
	ID, Name, Description string
}

// Template is an entry of the policy template catalogue.
type Template struct {
	ID               string
	Name             string
	Description      string
	Events           []TemplateEvent
	Configuration    []string // the parameters a policy's configuration may set
	VotingAttributes []string // what the voting configuration decides
}

// ParamBallotMessage is the template parameter whose text the ballots of
// the policy's pools show as their question.
const ParamBallotMessage = "ballotMessage"

var votingAttributes = []string{"strategy", "percentageRequired", "quorumSize", "timeLimit", "numberOfAttempts", "deviceIdentifiers"}

// Templates is the engine's catalogue. Event ids are the engine's own; one
// event may appear in several templates.
var Templates = []Template{
	{ID: "data-protection", Name: "Data protection", Description: "Vote on what happens to the profile's data tokens",
		Events: []TemplateEvent{
			{"dt-exchange", privicore.EventDataExchange, "Data is exchanged for a token (inline or streamed)"},
			{"dt-request", privicore.EventDataRequest, "A token's data is requested"},
			{"dt-update", privicore.EventDataUpdate, "A token's data or meta is updated"},
			{"dt-delete", privicore.EventDataDelete, "A token and its data are deleted"},
		}},
	{ID: "device-control", Name: "Device control", Description: "Vote on changes to the profile's devices",
		Events: []TemplateEvent{
			{"dev-approve", privicore.EventDeviceApprove, "A device is approved"},
			{"dev-remove", privicore.EventDeviceRemove, "A device is removed"},
			{"st-register", privicore.EventStorageRegister, "A device becomes a storage device"},
			{"st-remove", privicore.EventStorageRemove, "A storage device loses its role"},
			{"va-register", privicore.EventAuthenticatorRegister, "A device becomes an authenticator"},
			{"va-remove", privicore.EventAuthenticatorRemove, "An authenticator loses its role"},
		}},
	{ID: "account-security", Name: "Account security", Description: "Vote on changes to the profile's credentials and delegations",
		Events: []TemplateEvent{
			{"pr-password", privicore.EventPasswordChange, "The password is changed"},
			{"oa-register", privicore.EventOAuthRegister, "An OAuth application is registered"},
			{"va-remove", privicore.EventAuthenticatorRemove, "An authenticator loses its role"},
			{"po-deactivate", privicore.EventPolicyDeactivate, "A policy is deactivated"},
			{"po-delete", privicore.EventPolicyDelete, "A policy is deleted"},
		}},
	{ID: "policy-protection", Name: "Policy protection", Description: "Vote before policies are switched off",
		Events: []TemplateEvent{
			{"po-deactivate", privicore.EventPolicyDeactivate, "A policy is deactivated"},
			{"po-delete", privicore.EventPolicyDelete, "A policy is deleted"},
		}},
}

func init() {
	for i := range Templates {
		Templates[i].Configuration = []string{ParamBallotMessage}
		Templates[i].VotingAttributes = votingAttributes
	}
}

func template(id string) *Template {
	for i := range Templates {
		if Templates[i].ID == id {
			return &Templates[i]
		}
	}
	return nil
}

// PolicyInput is a policy to register.
type PolicyInput struct {
	Name          string         `json:"name"`
	TemplateID    string         `json:"policyTemplateId"`
	EventIDs      []string       `json:"applyingEventIds"`
	Configuration map[string]any `json:"configuration"`
	VotingConfig  string         `json:"configurationId"` // id or name; "" for the profile's strategy
}

type registerPolicyPayload struct {
	Policy privicore.Policy `json:"policy"`
}

// RegisterPolicy validates and submits a policy: a template of the
// catalogue, at least one of its event ids, a configuration whose
// template parameters have their type (other keys are kept as given; see
// checkPolicyConfiguration), a voting configuration of the profile (by id or
// name, optional), a name unique per profile (generated when absent). The
// policy starts inactive; the ack body is its id.
func (s *Service) RegisterPolicy(ctx context.Context, profileID string, in PolicyInput) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	pol := privicore.Policy{ProfileID: profileID, Name: strings.TrimSpace(in.Name), TemplateID: in.TemplateID, Configuration: in.Configuration}
	t := template(in.TemplateID)
	if t == nil {
		v.Add("policyTemplateId", "must be one of the templates of /policy/list-policy-templates")
	} else {
		if len(in.EventIDs) == 0 {
			v.Add("applyingEventIds", "must name at least one event of the template")
		}
		for _, id := range in.EventIDs {
			i := slices.IndexFunc(t.Events, func(e TemplateEvent) bool { return e.ID == id })
			if i < 0 {
				v.Add("applyingEventIds", id+" is not an event of the template "+t.ID)
			} else if !slices.Contains(pol.EventIDs, id) {
				pol.EventIDs = append(pol.EventIDs, id)
				pol.Events = append(pol.Events, t.Events[i].Name)
			}
		}
		checkPolicyConfiguration(v, t, in.Configuration)
	}
	if pol.Configuration == nil {
		pol.Configuration = map[string]any{}
	}
	if in.VotingConfig != "" {
		cfg, err := s.store.FindVotingConfiguration(ctx, profileID, in.VotingConfig)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			v.Add("configurationId", "is not one of your voting configurations")
		} else if err != nil {
			return nil, err
		} else {
			pol.ConfigurationID = cfg.ID
		}
	}
	if n := utf8.RuneCountInString(pol.Name); n > maxName {
		v.Add("name", "must be at most 128 characters")
	} else if n > 0 {
		if _, err := s.store.FindPolicy(ctx, profileID, pol.Name); err == nil {
			v.Add("name", "is already taken")
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	pol.ID = command.NewID()
	if pol.Name == "" {
		pol.Name = fmt.Sprintf("%s-%s", pol.TemplateID, pol.ID[len(pol.ID)-8:])
	}
	return s.cmds.SubmitWithID(ctx, pol.ID, profileID, CmdRegisterPolicy, registerPolicyPayload{Policy: pol})
}

// Bounds of a policy's configuration: its keys, their length, and its
// size as JSON. Keys a template does not declare are kept as they are
// (a client's own annotations, e.g. classification, label, handling).
const (
	maxConfigKeys     = 64
	maxConfigKeyLen   = 128
	maxConfigBytes    = 16 << 10
	maxParameterChars = 500
)

// checkPolicyConfiguration validates cfg against t: a declared parameter
// must have its type (every one so far is text of at most 500
// characters); an undeclared key may hold any JSON value and is stored and
// returned with the policy; the whole stays within the bounds above.
func checkPolicyConfiguration(v privicore.ValidationErrors, t *Template, cfg map[string]any) {
	if len(cfg) > maxConfigKeys {
		v.Add("configuration", fmt.Sprintf("must have at most %d keys", maxConfigKeys))
		return
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the field errors in a stable order
	for _, k := range keys {
		switch val := cfg[k]; {
		case k == "" || utf8.RuneCountInString(k) > maxConfigKeyLen:
			v.Add("configuration", fmt.Sprintf("keys must be 1 to %d characters", maxConfigKeyLen))
		case slices.Contains(t.Configuration, k):
			if str, ok := val.(string); !ok || utf8.RuneCountInString(str) > maxParameterChars {
				v.Add("configuration", fmt.Sprintf("%s must be text of at most %d characters", k, maxParameterChars))
			}
		}
	}
	if b, err := json.Marshal(cfg); err != nil || len(b) > maxConfigBytes {
		v.Add("configuration", fmt.Sprintf("must be at most %d bytes as JSON", maxConfigBytes))
	}
}

func (s *Service) handleRegisterPolicy(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p registerPolicyPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	pol := p.Policy
	pol.ProfileID, pol.Active = c.ProfileID, false
	pol.CreatedAt, pol.UpdatedAt = s.now(), s.now()
	if pol.ConfigurationID != "" {
		if _, err := q.FindVotingConfiguration(ctx, c.ProfileID, pol.ConfigurationID); err != nil {
			return command.Result{}, privicore.Reject(ReasonConfigurationNotFound, "voting configuration not found")
		}
	}
	if err := q.CreatePolicy(ctx, &pol); privicore.ErrorCode(err) == privicore.ECONFLICT {
		return command.Result{}, privicore.Reject(ReasonPolicyNameTaken, "the name is taken")
	} else if err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: pol.ID}, nil
}

type policyPayload struct {
	PolicyID string `json:"policyId"` // id or name
}

// ChangePolicy submits activate, deactivate or delete (typ: one of the
// Cmd…Policy types) of one of the profile's policies, by id or name.
func (s *Service) ChangePolicy(ctx context.Context, profileID, typ, idOrName string) (*privicore.Command, error) {
	if idOrName == "" {
		return nil, privicore.Invalid("policyId", "is required")
	}
	return s.cmds.Submit(ctx, profileID, typ, policyPayload{PolicyID: idOrName})
}

func (s *Service) handleChangePolicy(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p policyPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	pol, err := q.FindPolicy(ctx, c.ProfileID, p.PolicyID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return command.Result{}, privicore.Reject(ReasonPolicyNotFound, "policy not found")
	} else if err != nil {
		return command.Result{}, err
	}
	switch c.Type {
	case CmdActivatePolicy:
		s.gate.guarded.add(c.ProfileID) // before the commit: never a moment unguarded
		err = q.SetPolicyActive(ctx, pol.ID, true, s.now())
	case CmdDeletePolicy:
		err = q.DeletePolicy(ctx, pol.ID)
	default:
		err = q.SetPolicyActive(ctx, pol.ID, c.Type == CmdActivatePolicy, s.now())
	}
	return command.Result{Body: pol.ID}, err
}

// Policy returns one of the profile's policies by id or name.
func (s *Service) Policy(ctx context.Context, profileID, idOrName string) (*privicore.Policy, error) {
	p, err := s.store.FindPolicy(ctx, profileID, idOrName)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND || idOrName == "" {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "policy not found")
	}
	return p, err
}

// Policies lists the profile's policies; active selects active ones
// (true), inactive ones (false) or all (nil).
func (s *Service) Policies(ctx context.Context, profileID string, active *bool) ([]*privicore.Policy, error) {
	all, err := s.store.ListPolicies(ctx, profileID)
	if err != nil || active == nil {
		return all, err
	}
	out := []*privicore.Policy{}
	for _, p := range all {
		if p.Active == *active {
			out = append(out, p)
		}
	}
	return out, nil
}
