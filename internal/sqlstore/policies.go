package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

const policyCols = `id, profile_id, name, template_id, event_ids, events, configuration_id, configuration, active, created_at, updated_at`

func scanPolicy(row interface{ Scan(...any) error }) (*privicore.Policy, error) {
	var p privicore.Policy
	var eventIDs, events, cfg string
	var active int
	var created, updated int64
	err := row.Scan(&p.ID, &p.ProfileID, &p.Name, &p.TemplateID, &eventIDs, &events, &p.ConfigurationID, &cfg, &active, &created, &updated)
	if isNoRows(err) {
		return nil, notFound("policy")
	} else if err != nil {
		return nil, dbErr(err)
	}
	json.Unmarshal([]byte(eventIDs), &p.EventIDs)
	json.Unmarshal([]byte(events), &p.Events)
	json.Unmarshal([]byte(cfg), &p.Configuration)
	if p.Configuration == nil {
		p.Configuration = map[string]any{}
	}
	p.Active, p.CreatedAt, p.UpdatedAt = active == 1, fromNanos(created), fromNanos(updated)
	return &p, nil
}

// CreatePolicy implements privicore.PolicyStore.
func (q queries) CreatePolicy(ctx context.Context, p *privicore.Policy) error {
	eventIDs, _ := json.Marshal(nonNil(p.EventIDs))
	events, _ := json.Marshal(nonNil(p.Events))
	cfg, _ := json.Marshal(p.Configuration)
	if p.Configuration == nil {
		cfg = []byte("{}")
	}
	active := 0
	if p.Active {
		active = 1
	}
	_, err := q.exec(ctx, `INSERT INTO policies (`+policyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.ProfileID, p.Name, p.TemplateID, string(eventIDs), string(events), p.ConfigurationID, string(cfg), active, nanos(p.CreatedAt), nanos(p.UpdatedAt))
	return nameTaken(err)
}

// SetPolicyActive implements privicore.PolicyStore.
func (q queries) SetPolicyActive(ctx context.Context, id string, active bool, at time.Time) error {
	a := 0
	if active {
		a = 1
	}
	profileID, err := scanString(q.row(ctx, `UPDATE policies SET active = ?, updated_at = ? WHERE id = ? RETURNING profile_id`, a, nanos(at), id))
	if isNoRows(err) || privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if active {
		q.note(coherence.Policies, profileID)
	}
	return nil
}

// DeletePolicy implements privicore.PolicyStore.
func (q queries) DeletePolicy(ctx context.Context, id string) error {
	_, err := q.exec(ctx, `DELETE FROM policies WHERE id = ?`, id)
	return dbErr(err) // no note: a gate that still guards the profile only reads its policies once more
}

// FindPolicy implements privicore.PolicyStore.
func (q queries) FindPolicy(ctx context.Context, profileID, idOrName string) (*privicore.Policy, error) {
	p, err := scanPolicy(q.row(ctx, `SELECT `+policyCols+` FROM policies WHERE profile_id = ? AND id = ?`, profileID, idOrName))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return scanPolicy(q.row(ctx, `SELECT `+policyCols+` FROM policies WHERE profile_id = ? AND name = ?`, profileID, idOrName))
	}
	return p, err
}

// ListPolicies implements privicore.PolicyStore.
func (q queries) ListPolicies(ctx context.Context, profileID string) ([]*privicore.Policy, error) {
	return collect(ctx, q, scanPolicy, `SELECT `+policyCols+` FROM policies WHERE profile_id = ? ORDER BY created_at, id`, profileID)
}

// ActivePolicyProfiles implements privicore.PolicyStore.
func (q queries) ActivePolicyProfiles(ctx context.Context) ([]string, error) {
	return collect(ctx, q, scanString, `SELECT DISTINCT profile_id FROM policies WHERE active = 1`)
}
