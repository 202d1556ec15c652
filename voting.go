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
