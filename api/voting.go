package api

import (
	"encoding/json"
	"time"
)

// Voting (spec §9–§11): the profile's strategy, voting configurations,
// policies, pools and their socket events. Instants are written as the
// spec shows them, UTC to the second with a numeric offset
// (privicore.TimeFormat, 2026-02-21T15:33:44+00:00); any RFC 3339 time
// reads back.

// VotingStrategy is the profile's default way of voting
// (GET /verified-authenticator/retrieve-voting-strategy).
type VotingStrategy struct {
	Strategy         string   `json:"strategy"`
	StrategyParams   int      `json:"strategyParams"` // the yes percentage
	QuorumSize       int      `json:"quorumSize"`
	TimeLimit        int      `json:"timeLimit"` // seconds
	NumberOfAttempts int      `json:"numberOfAttempts"`
	Strategies       []string `json:"strategies"` // every strategy the engine knows
}

// VotingConfiguration is a named way of voting, as listed and retrieved
// (/verified-authenticator/voting-configuration/…).
type VotingConfiguration struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	TimeLimit          int       `json:"timeLimit"` // seconds
	Strategy           string    `json:"strategy"`
	PercentageRequired int       `json:"percentageRequired"`
	DeviceIdentifiers  []string  `json:"deviceIdentifiers"` // none: every authenticator
	CreatedAt          time.Time `json:"createdAt"`
	UpdatedAt          time.Time `json:"updatedAt"`
}

// MarshalJSON writes c with its instants in the API's format.
func (c VotingConfiguration) MarshalJSON() ([]byte, error) {
	type plain VotingConfiguration
	return json.Marshal(struct {
		plain
		CreatedAt string `json:"createdAt"`
		UpdatedAt string `json:"updatedAt"`
	}{plain(c), wireTime(c.CreatedAt), wireTime(c.UpdatedAt)})
}

// PolicyTemplate is an entry of the engine's policy catalogue
// (GET /policy/list-policy-templates answers them by template id).
type PolicyTemplate struct {
	Name             string                       `json:"name"`
	Description      string                       `json:"description"`
	Events           map[string]map[string]string `json:"events"` // event id → {event name: description}
	Configuration    []string                     `json:"configuration"`
	VotingAttributes []string                     `json:"votingAttributes"`
}

// Policy is a registered policy, as listed and retrieved (/policy/…).
type Policy struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	PolicyTemplateID string         `json:"policyTemplateId"`
	ApplyingEventIDs []string       `json:"applyingEventIds"`
	Events           []string       `json:"events"`
	ConfigurationID  string         `json:"configurationId"` // a voting configuration; "" for the profile's strategy
	Configuration    map[string]any `json:"configuration"`   // the template's parameters, and the client's own keys
	Active           bool           `json:"active"`
	CreatedAt        time.Time      `json:"createdAt"`
}

// MarshalJSON writes p with its instant in the API's format.
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	return json.Marshal(struct {
		plain
		CreatedAt string `json:"createdAt"`
	}{plain(p), wireTime(p.CreatedAt)})
}

// Vote is the answer of POST /voting/create: the ad-hoc vote's command
// (whose ack comes when the pool resolves) and its pool.
type Vote struct {
	CommandID string `json:"commandId"`
	PoolID    string `json:"poolId"`
	Message   string `json:"message,omitempty"` // "Command accepted."
}

// PoolStatus is a pool as GET /voting/check-pool-status/{poolId} shows it.
type PoolStatus struct {
	PoolID             string         `json:"poolId"`
	State              string         `json:"state"` // open, approved, rejected, expired, cancelled, quorum_not_met
	Strategy           string         `json:"strategy"`
	PercentageRequired int            `json:"percentageRequired"`
	QuorumSize         int            `json:"quorumSize"`
	Title              string         `json:"title"`
	Question           string         `json:"question"`
	Nonce              string         `json:"nonce"`
	Eligible           []string       `json:"eligible"` // the authenticators asked
	Answers            []PoolAnswer   `json:"answers"`  // of the current attempt
	Attempt            int            `json:"attempt"`
	MaxAttempts        int            `json:"maxAttempts"`
	ExpiresAt          time.Time      `json:"expiresAt"`   // the current attempt's deadline
	SecondsLeft        int            `json:"secondsLeft"` // 0 once the pool ended
	Event              string         `json:"event"`       // the gated event, or voting.create
	CommandID          string         `json:"commandId"`   // the held command, or the create-voting command
	Detail             map[string]any `json:"detail"`      // what the ballots show
}

// MarshalJSON writes s with its instant in the API's format.
func (s PoolStatus) MarshalJSON() ([]byte, error) {
	type plain PoolStatus
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(s), wireTime(s.ExpiresAt)})
}

// PoolAnswer is one answer of a pool's current attempt.
type PoolAnswer struct {
	DeviceIdentifier string    `json:"deviceIdentifier"`
	Vote             string    `json:"vote"` // yes or no
	At               time.Time `json:"at"`
}

// MarshalJSON writes a with its instant in the API's format.
func (a PoolAnswer) MarshalJSON() ([]byte, error) {
	type plain PoolAnswer
	return json.Marshal(struct {
		plain
		At string `json:"at"`
	}{plain(a), wireTime(a.At)})
}

// The socket events of pools (spec §1): the data.type of each.
const (
	// EventPoolOpened is an attempt of a pool opening: the first when the
	// pool opens, then each retry that waits for answers. With it, the
	// held command's (or the ad-hoc vote's) pending status: X-DPT-CAB-ID
	// with command_status 1 and the pool id as body.
	EventPoolOpened = "POOL-OPENED"
	// EventPoolResolved is a pool's final state.
	EventPoolResolved = "POOL-RESOLVED"
)

// PoolOpened is the data of a POOL-OPENED event.
type PoolOpened struct {
	Type      string    `json:"type"` // EventPoolOpened
	ID        string    `json:"id"`   // the pool id
	PoolID    string    `json:"poolId"`
	CommandID string    `json:"commandId"` // the held command, or the create-voting command
	Event     string    `json:"event"`     // the gated event, or voting.create
	Attempt   int       `json:"attempt"`
	ExpiresAt time.Time `json:"expiresAt"` // this attempt's deadline
}

// MarshalJSON writes e with its instant in the API's format.
func (e PoolOpened) MarshalJSON() ([]byte, error) {
	type plain PoolOpened
	return json.Marshal(struct {
		plain
		ExpiresAt string `json:"expiresAt"`
	}{plain(e), wireTime(e.ExpiresAt)})
}

// PoolResolved is the data of a POOL-RESOLVED event.
type PoolResolved struct {
	Type      string `json:"type"` // EventPoolResolved
	ID        string `json:"id"`   // the pool id
	PoolID    string `json:"poolId"`
	CommandID string `json:"commandId"`
	State     string `json:"state"` // approved, rejected, expired, cancelled, quorum_not_met
}

// PoolEvent reads either pool event: the fields of PoolOpened and
// PoolResolved together, each left zero where its event has none.
type PoolEvent struct {
	Type      string    `json:"type"`      // EventPoolOpened or EventPoolResolved
	PoolID    string    `json:"poolId"`    //
	CommandID string    `json:"commandId"` // the held command, or the create-voting command
	Event     string    `json:"event"`     // opened: the gated event, e.g. data-token.request-data
	Attempt   int       `json:"attempt"`   // opened: 1, 2, …
	ExpiresAt time.Time `json:"expiresAt"` // opened: this attempt's deadline
	State     string    `json:"state"`     // resolved: approved, rejected, expired, cancelled, quorum_not_met
}
