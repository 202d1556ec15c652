package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/privicore/privicore"
)

// FindVotingStrategy implements privicore.VotingStore.
func (q queries) FindVotingStrategy(ctx context.Context, profileID string) (*privicore.VotingStrategy, error) {
	s := privicore.VotingStrategy{ProfileID: profileID}
	var updated int64
	err := q.row(ctx, `SELECT strategy, percentage, quorum_size, time_limit, attempts, updated_at FROM voting_strategies WHERE profile_id = ?`, profileID).
		Scan(&s.Strategy, &s.Percentage, &s.QuorumSize, &s.TimeLimit, &s.Attempts, &updated)
	if isNoRows(err) {
		return nil, notFound("voting strategy")
	} else if err != nil {
		return nil, dbErr(err)
	}
	s.UpdatedAt = fromNanos(updated)
	return &s, nil
}

// SaveVotingStrategy implements privicore.VotingStore.
func (q queries) SaveVotingStrategy(ctx context.Context, s *privicore.VotingStrategy) error {
	_, err := q.exec(ctx, `INSERT INTO voting_strategies (profile_id, strategy, percentage, quorum_size, time_limit, attempts, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (profile_id) DO UPDATE SET strategy = excluded.strategy, percentage = excluded.percentage,
		quorum_size = excluded.quorum_size, time_limit = excluded.time_limit, attempts = excluded.attempts, updated_at = excluded.updated_at`,
		s.ProfileID, s.Strategy, s.Percentage, s.QuorumSize, s.TimeLimit, s.Attempts, nanos(s.UpdatedAt))
	return dbErr(err)
}

const votingConfigCols = `id, profile_id, name, strategy, percentage, time_limit, device_ids, created_at, updated_at`

func scanVotingConfig(row interface{ Scan(...any) error }) (*privicore.VotingConfiguration, error) {
	var c privicore.VotingConfiguration
	var devices string
	var created, updated int64
	err := row.Scan(&c.ID, &c.ProfileID, &c.Name, &c.Strategy, &c.Percentage, &c.TimeLimit, &devices, &created, &updated)
	if isNoRows(err) {
		return nil, notFound("voting configuration")
	} else if err != nil {
		return nil, dbErr(err)
	}
	json.Unmarshal([]byte(devices), &c.DeviceIDs)
	if c.DeviceIDs == nil {
		c.DeviceIDs = []string{}
	}
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &c, nil
}

func nameTaken(err error) error {
	if isUniqueViolation(err) {
		return &privicore.Error{Code: privicore.ECONFLICT, Reason: "voting.name_taken", Message: "the name is taken"}
	}
	return dbErr(err)
}

// CreateVotingConfiguration implements privicore.VotingStore.
func (q queries) CreateVotingConfiguration(ctx context.Context, c *privicore.VotingConfiguration) error {
	devices, _ := json.Marshal(nonNil(c.DeviceIDs))
	_, err := q.exec(ctx, `INSERT INTO voting_configurations (`+votingConfigCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProfileID, c.Name, c.Strategy, c.Percentage, c.TimeLimit, string(devices), nanos(c.CreatedAt), nanos(c.UpdatedAt))
	return nameTaken(err)
}

// UpdateVotingConfiguration implements privicore.VotingStore.
func (q queries) UpdateVotingConfiguration(ctx context.Context, c *privicore.VotingConfiguration) error {
	devices, _ := json.Marshal(nonNil(c.DeviceIDs))
	_, err := q.exec(ctx, `UPDATE voting_configurations SET name = ?, strategy = ?, percentage = ?, time_limit = ?, device_ids = ?, updated_at = ?
		WHERE id = ?`, c.Name, c.Strategy, c.Percentage, c.TimeLimit, string(devices), nanos(c.UpdatedAt), c.ID)
	return nameTaken(err)
}

// FindVotingConfiguration implements privicore.VotingStore.
func (q queries) FindVotingConfiguration(ctx context.Context, profileID, idOrName string) (*privicore.VotingConfiguration, error) {
	c, err := scanVotingConfig(q.row(ctx, `SELECT `+votingConfigCols+` FROM voting_configurations WHERE profile_id = ? AND id = ?`, profileID, idOrName))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return scanVotingConfig(q.row(ctx, `SELECT `+votingConfigCols+` FROM voting_configurations WHERE profile_id = ? AND name = ?`, profileID, idOrName))
	}
	return c, err
}

// ListVotingConfigurations implements privicore.VotingStore.
func (q queries) ListVotingConfigurations(ctx context.Context, profileID string) ([]*privicore.VotingConfiguration, error) {
	return collect(ctx, q, scanVotingConfig, `SELECT `+votingConfigCols+` FROM voting_configurations WHERE profile_id = ? ORDER BY created_at, id`, profileID)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
