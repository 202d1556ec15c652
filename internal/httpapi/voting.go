package httpapi

import (
	"net/http"
	"time"

	"github.com/privicore/privicore/api"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/voting"
)

// §9 Verified authenticators, the profile's voting strategy and voting
// configurations.

func (s *Server) listAuthenticators(w http.ResponseWriter, r *http.Request) {
	list, err := s.Devices.List(r.Context(), authFrom(r).Profile.ID, privicore.RoleAuthenticator)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) retrieveVotingStrategy(w http.ResponseWriter, r *http.Request) {
	st, err := s.Voting.Strategy(r.Context(), authFrom(r).Profile.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.VotingStrategy{Strategy: st.Strategy, StrategyParams: st.Percentage, QuorumSize: st.QuorumSize,
		TimeLimit: st.TimeLimit, NumberOfAttempts: st.Attempts, Strategies: privicore.Strategies})
}

// optInt reads an optional integer field into *dst (nil when absent),
// adding a field error when it is present but no integer.
func optInt(p *params, v privicore.ValidationErrors, field string, names ...string) *int {
	n, ok, err := p.Int(append([]string{field}, names...)...)
	if err != nil {
		v.Add(field, err.Error())
		return nil
	}
	if !ok {
		return nil
	}
	i := int(max(min(n, 1<<31-1), -1<<31))
	return &i
}

// optString is a present string field, or nil.
func optString(p *params, names ...string) *string {
	if !p.Has(names...) {
		return nil
	}
	v := p.String(names...)
	return &v
}

// strategySetter handles one set-… endpoint: it reads its one required
// field into a StrategyChange.
func (s *Server) strategySetter(field string, set func(p *params, v privicore.ValidationErrors, ch *voting.StrategyChange)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.bind(w, r)
		if !ok {
			return
		}
		v := privicore.ValidationErrors{}
		var ch voting.StrategyChange
		if !p.Has(field) {
			v.Add(field, "is required")
		} else {
			set(p, v, &ch)
		}
		if err := v.Err(); err != nil {
			s.fail(w, r, err)
			return
		}
		c, err := s.Voting.ChangeStrategy(r.Context(), authFrom(r).Profile.ID, ch)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeAccepted(w, c)
	}
}

func (s *Server) setQuorumSize() http.HandlerFunc {
	return s.strategySetter("quorumSize", func(p *params, v privicore.ValidationErrors, ch *voting.StrategyChange) {
		ch.QuorumSize = optInt(p, v, "quorumSize")
	})
}

func (s *Server) setQuorumStrategy() http.HandlerFunc {
	return s.strategySetter("strategy", func(p *params, v privicore.ValidationErrors, ch *voting.StrategyChange) {
		ch.Strategy = optString(p, "strategy")
		ch.Percentage = optInt(p, v, "strategy_params", "strategyParams")
	})
}

func (s *Server) setVotingTimeLimit() http.HandlerFunc {
	return s.strategySetter("timeLimit", func(p *params, v privicore.ValidationErrors, ch *voting.StrategyChange) {
		ch.TimeLimit = optInt(p, v, "timeLimit")
	})
}

func (s *Server) setMaximumVotingAttempts() http.HandlerFunc {
	return s.strategySetter("numberOfAttempts", func(p *params, v privicore.ValidationErrors, ch *voting.StrategyChange) {
		ch.Attempts = optInt(p, v, "numberOfAttempts")
	})
}

// configurationInput reads the fields of a voting configuration.
func configurationInput(p *params) (voting.ConfigurationInput, error) {
	v := privicore.ValidationErrors{}
	in := voting.ConfigurationInput{
		Name:       optString(p, "name"),
		Strategy:   optString(p, "strategy"),
		Percentage: optInt(p, v, "percentageRequired"),
		TimeLimit:  optInt(p, v, "timeLimit"),
	}
	if p.Has("deviceIdentifiers") {
		ids := p.Strings("deviceIdentifiers")
		in.DeviceIDs = &ids
	}
	return in, v.Err()
}

func (s *Server) registerVotingConfiguration(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	in, err := configurationInput(p)
	if err == nil {
		var c *privicore.Command
		if c, err = s.Voting.RegisterConfiguration(r.Context(), authFrom(r).Profile.ID, in); err == nil {
			writeAccepted(w, c)
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) updateVotingConfiguration(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	in, err := configurationInput(p)
	if err == nil {
		key := p.String("id")
		if key == "" {
			key = p.String("name")
			in.Name = nil // the name finds it; renaming needs the id
		}
		var c *privicore.Command
		if c, err = s.Voting.UpdateConfiguration(r.Context(), authFrom(r).Profile.ID, key, in); err == nil {
			writeAccepted(w, c)
			return
		}
	}
	s.fail(w, r, err)
}

func votingConfigOf(c *privicore.VotingConfiguration) api.VotingConfiguration {
	return api.VotingConfiguration{ID: c.ID, Name: c.Name, TimeLimit: c.TimeLimit, Strategy: c.Strategy, PercentageRequired: c.Percentage,
		DeviceIdentifiers: c.DeviceIDs, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func (s *Server) listVotingConfigurations(w http.ResponseWriter, r *http.Request) {
	list, err := s.Voting.Configurations(r.Context(), authFrom(r).Profile.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]api.VotingConfiguration, 0, len(list))
	for _, c := range list {
		out = append(out, votingConfigOf(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) retrieveVotingConfiguration(w http.ResponseWriter, r *http.Request) {
	c, err := s.Voting.Configuration(r.Context(), authFrom(r).Profile.ID, r.PathValue("idOrName"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, votingConfigOf(c))
}

// §10 Policies.

// templatesJSON renders the catalogue in the spec's shape, by template id.
func templatesJSON() map[string]api.PolicyTemplate {
	out := map[string]api.PolicyTemplate{}
	for _, t := range voting.Templates {
		events := map[string]map[string]string{}
		for _, e := range t.Events {
			events[e.ID] = map[string]string{e.Name: e.Description}
		}
		out[t.ID] = api.PolicyTemplate{Name: t.Name, Description: t.Description, Events: events,
			Configuration: t.Configuration, VotingAttributes: t.VotingAttributes}
	}
	return out
}

func (s *Server) listPolicyTemplates(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, templatesJSON())
}

func (s *Server) registerPolicy(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		cfg, _, err := p.Object("configuration")
		if err != nil {
			return nil, privicore.Invalid("configuration", err.Error())
		}
		return s.Voting.RegisterPolicy(r.Context(), authFrom(r).Profile.ID, voting.PolicyInput{Name: p.String("name"),
			TemplateID: p.String("policyTemplateId"), EventIDs: p.Strings("applyingEventIds"), Configuration: cfg,
			VotingConfig: p.String("configurationId", "votingConfigurationId")})
	})
}

func policyOf(p *privicore.Policy) api.Policy {
	return api.Policy{ID: p.ID, Name: p.Name, PolicyTemplateID: p.TemplateID, ApplyingEventIDs: p.EventIDs, Events: p.Events,
		ConfigurationID: p.ConfigurationID, Configuration: p.Configuration, Active: p.Active, CreatedAt: p.CreatedAt}
}

func (s *Server) retrievePolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.Voting.Policy(r.Context(), authFrom(r).Profile.ID, r.PathValue("idOrName"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyOf(p))
}

// listPolicies lists all (active nil), active or inactive policies.
func (s *Server) listPolicies(active *bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Voting.Policies(r.Context(), authFrom(r).Profile.ID, active)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]api.Policy, 0, len(list))
		for _, p := range list {
			out = append(out, policyOf(p))
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// changePolicy handles activate, deactivate and delete.
func (s *Server) changePolicy(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.accept(w, r, func(p *params) (*privicore.Command, error) {
			return s.Voting.ChangePolicy(r.Context(), authFrom(r).Profile.ID, typ, p.String("policyId", "name"))
		})
	}
}

// §11 Voting operations.

func (s *Server) createVote(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	c, poolID, err := s.Voting.CreateVote(r.Context(), authFrom(r).Profile.ID, p.String("votingConfigurationId", "configurationId"),
		p.String("title"), p.String("question"), p.String("nonce"), p.Strings("skipAuthenticatorDevices"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("X-DPT-CAB-ID", c.ID)
	writeJSON(w, http.StatusAccepted, api.Vote{CommandID: c.ID, PoolID: poolID, Message: "Command accepted."})
}

func (s *Server) poolStatus(w http.ResponseWriter, r *http.Request) {
	pl, err := s.Voting.Pool(r.Context(), authFrom(r).Profile.ID, r.PathValue("poolId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	answers := make([]api.PoolAnswer, 0, len(pl.Answers))
	for _, a := range pl.Answers {
		vote := "no"
		if a.Yes {
			vote = "yes"
		}
		answers = append(answers, api.PoolAnswer{DeviceIdentifier: a.DeviceID, Vote: vote, At: a.At})
	}
	left := 0
	if pl.State == privicore.PoolOpen {
		left = max(0, int(time.Until(pl.ExpiresAt).Seconds()+0.5))
	}
	writeJSON(w, http.StatusOK, api.PoolStatus{PoolID: pl.ID, State: pl.State, Strategy: pl.Strategy, PercentageRequired: pl.Percentage,
		QuorumSize: pl.QuorumSize, Title: pl.Title, Question: pl.Question, Nonce: pl.Nonce, Eligible: pl.Eligible,
		Answers: answers, Attempt: pl.Attempt, MaxAttempts: pl.MaxAttempts, ExpiresAt: pl.ExpiresAt,
		SecondsLeft: left, Event: pl.Event, CommandID: pl.CommandID, Detail: pl.Detail})
}

func (s *Server) cancelPool(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.Voting.CancelVote(r.Context(), authFrom(r).Profile.ID, p.String("poolId"))
	})
}
