package privicore

import (
	"context"
	"time"
)

// Voting strategies (spec §9), evaluated over the answers received.
const (
	StrategyUnanimous         = "unanimous"          // every answer is yes
	StrategyConsensus         = "consensus"          // more than half the answers are yes
	StrategyAffirmative       = "affirmative"        // at least one yes
	StrategyMinimumPercentage = "minimum_percentage" // the yes share is at least Percentage
)

// Strategies lists the strategies, in the spec's order.
var Strategies = []string{StrategyUnanimous, StrategyConsensus, StrategyAffirmative, StrategyMinimumPercentage}

// ImpliedPercentage is the yes percentage a strategy stands for (100, 51, 1),
// or -1 for minimum_percentage, which takes its own.
func ImpliedPercentage(strategy string) int {
	switch strategy {
	case StrategyUnanimous:
		return 100
	case StrategyConsensus:
		return 51
	case StrategyAffirmative:
		return 1
	}
	return -1
}

// VotingStrategy is a profile's default way of voting: what pools use when
// no voting configuration names another.
type VotingStrategy struct {
	ProfileID  string    //
	Strategy   string    // one of Strategies
	Percentage int       // yes percentage 0–100 (implied for all but minimum_percentage)
	QuorumSize int       // answers needed for a result to count (≥ 1)
	TimeLimit  int       // seconds a pool stays open (5 … 86 400)
	Attempts   int       // pools tried before the operation is denied for good (1 … 10)
	UpdatedAt  time.Time //
}

// DefaultVotingStrategy is what a profile has until it changes it:
// unanimous, quorum 1, 60 s, one attempt.
func DefaultVotingStrategy(profileID string) *VotingStrategy {
	return &VotingStrategy{ProfileID: profileID, Strategy: StrategyUnanimous, Percentage: 100, QuorumSize: 1, TimeLimit: 60, Attempts: 1}
}

// VotingConfiguration is a named way of voting a policy or an ad-hoc pool
// can use instead of the profile's strategy.
type VotingConfiguration struct {
	ID         string    // the register command's id
	ProfileID  string    //
	Name       string    // unique per profile
	Strategy   string    // one of Strategies
	Percentage int       // yes percentage 0–100
	TimeLimit  int       // seconds
	DeviceIDs  []string  // the eligible authenticators; empty: all of the profile's
	CreatedAt  time.Time //
	UpdatedAt  time.Time //
}

// VotingStore persists voting strategies and configurations.
type VotingStore interface {
	// FindVotingStrategy returns the profile's strategy, or ENOTFOUND while
	// it has the defaults.
	FindVotingStrategy(ctx context.Context, profileID string) (*VotingStrategy, error)
	// SaveVotingStrategy inserts or replaces the profile's strategy.
	SaveVotingStrategy(ctx context.Context, s *VotingStrategy) error
	// CreateVotingConfiguration inserts c; a name the profile uses is
	// ECONFLICT.
	CreateVotingConfiguration(ctx context.Context, c *VotingConfiguration) error
	// UpdateVotingConfiguration writes c's fields; a name the profile uses
	// for another configuration is ECONFLICT.
	UpdateVotingConfiguration(ctx context.Context, c *VotingConfiguration) error
	// FindVotingConfiguration looks one of the profile's configurations up
	// by id or name; ENOTFOUND.
	FindVotingConfiguration(ctx context.Context, profileID, idOrName string) (*VotingConfiguration, error)
	// ListVotingConfigurations returns the profile's configurations, oldest first.
	ListVotingConfigurations(ctx context.Context, profileID string) ([]*VotingConfiguration, error)
}

// Pool states (spec §11). Every state but PoolOpen is final for its
// attempt; a failed attempt (rejected, expired, quorum not met) is followed
// by a new one while attempts remain.
const (
	PoolOpen         = "open"
	PoolApproved     = "approved"
	PoolRejected     = "rejected"       // the strategy said no
	PoolExpired      = "expired"        // the time limit passed without any answer
	PoolQuorumNotMet = "quorum_not_met" // too few answers for a result to count
	PoolCancelled    = "cancelled"      // the profile cancelled it
)

// Pool is a vote of a profile's authenticators on one operation: a held
// command (Event names what it would do) or an ad-hoc question.
type Pool struct {
	ID          string         // UUIDv7
	ProfileID   string         //
	CommandID   string         // the command whose ack waits for the outcome
	Event       string         // the gated event, or "voting.create"
	Title       string         //
	Question    string         //
	Nonce       string         // the creator's, echoed back
	Detail      map[string]any // what the ballot shows: application, data token, device…
	Strategy    string         // how answers count
	Percentage  int            //
	QuorumSize  int            //
	TimeLimit   int            // seconds per attempt
	Eligible    []string       // the authenticators asked (frozen when the pool opens)
	Attempt     int            // 1, 2, …
	MaxAttempts int            //
	State       string         // Pool…
	CreatedAt   time.Time      //
	ExpiresAt   time.Time      // the current attempt's deadline
	ResolvedAt  time.Time      // zero while open
	Answers     []PoolAnswer   // of the current attempt
}

// PoolAnswer is one authenticator's answer.
type PoolAnswer struct {
	DeviceID string
	Yes      bool
	At       time.Time
}

// PoolStore persists pools and their answers.
type PoolStore interface {
	// CreatePool inserts p.
	CreatePool(ctx context.Context, p *Pool) error
	// UpdatePool writes p's attempt, state, deadline and resolution time.
	UpdatePool(ctx context.Context, p *Pool) error
	// FindPool returns one of the profile's pools with the current
	// attempt's answers, or ENOTFOUND (also for another profile's pool).
	FindPool(ctx context.Context, profileID, id string) (*Pool, error)
	// FindPoolByCommand returns the pool holding one of the profile's
	// commands, or ENOTFOUND.
	FindPoolByCommand(ctx context.Context, profileID, commandID string) (*Pool, error)
	// AddPoolAnswer records an answer; a second answer of the device in the
	// same attempt is ECONFLICT.
	AddPoolAnswer(ctx context.Context, poolID string, attempt int, a PoolAnswer) error
	// OpenPools lists open pools (without answers), soonest deadline first:
	// those whose deadline is before dueBefore, or all when it is zero.
	// It spans every profile: it serves the engine's own deadline loop and
	// the resending of ballots, which act for no profile; each pool names
	// its profile for the scoped reads that follow.
	OpenPools(ctx context.Context, dueBefore time.Time, limit int) ([]*Pool, error)
}

// The events a policy can gate (spec §10): what a command would do.
const (
	EventDataExchange          = "data-token.exchange" // also stream uploads
	EventDataRequest           = "data-token.request-data"
	EventDataUpdate            = "data-token.update"
	EventDataDelete            = "data-token.delete"
	EventDeviceApprove         = "device.approve"
	EventDeviceRemove          = "device.remove"
	EventStorageRegister       = "storage.register"
	EventStorageRemove         = "storage.remove"
	EventAuthenticatorRegister = "verified-authenticator.register"
	EventAuthenticatorRemove   = "verified-authenticator.remove"
	EventPolicyDeactivate      = "policy.deactivate"
	EventPolicyDelete          = "policy.delete"
	EventPasswordChange        = "profile.change-password"
	EventOAuthRegister         = "oauth.register"
)

// Policy makes the profile's authenticators vote on the events it covers
// while it is active.
type Policy struct {
	ID              string         // the register command's id
	ProfileID       string         //
	Name            string         // unique per profile
	TemplateID      string         // from the engine's catalogue
	EventIDs        []string       // ids of the template's events it covers
	Events          []string       // their names (Event…), derived from EventIDs
	ConfigurationID string         // a voting configuration; "" for the profile's strategy
	Configuration   map[string]any // the template's parameters
	Active          bool           // new policies start inactive
	CreatedAt       time.Time      //
	UpdatedAt       time.Time      //
}

// PolicyStore persists policies.
type PolicyStore interface {
	// CreatePolicy inserts p; a name the profile uses is ECONFLICT.
	CreatePolicy(ctx context.Context, p *Policy) error
	// SetPolicyActive switches a policy on or off.
	SetPolicyActive(ctx context.Context, id string, active bool, at time.Time) error
	// DeletePolicy removes a policy.
	DeletePolicy(ctx context.Context, id string) error
	// FindPolicy looks one of the profile's policies up by id or name; ENOTFOUND.
	FindPolicy(ctx context.Context, profileID, idOrName string) (*Policy, error)
	// ListPolicies returns the profile's policies, oldest first.
	ListPolicies(ctx context.Context, profileID string) ([]*Policy, error)
	// ActivePolicyProfiles lists the profiles with at least one active policy.
	ActivePolicyProfiles(ctx context.Context) ([]string, error)
}
