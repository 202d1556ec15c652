package datatoken

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// MetaUpdate is an update-data-token request (metadata only).
type MetaUpdate struct {
	Token                              string
	FileName, Extension, Context, Path *string
}

// UpdateMeta submits a metadata change.
func (s *Service) UpdateMeta(ctx context.Context, profileID string, m MetaUpdate) (*privicore.Command, error) {
	if m.Token == "" {
		return nil, privicore.Invalid("token", "is required")
	}
	if m.Context != nil && (*m.Context == "" || utf8.RuneCountInString(*m.Context) > 512) {
		return nil, privicore.Invalid("context", "must be 1 to 512 characters")
	}
	if _, err := s.owned(ctx, s.store, profileID, m.Token); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdMeta, m)
}

func (s *Service) handleMeta(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var m MetaUpdate
	if err := decode(c, &m); err != nil {
		return command.Result{}, err
	}
	t, err := s.owned(ctx, q, c.ProfileID, m.Token)
	if err != nil {
		return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
	}
	file, _ := t.Meta["file"].(map[string]any)
	if file == nil {
		file = map[string]any{}
	}
	for k, v := range map[string]*string{"fileName": m.FileName, "extension": m.Extension, "path": m.Path} {
		if v != nil {
			file[k] = *v
		}
	}
	t.Meta["file"] = file
	if m.Context != nil {
		t.Context = *m.Context
	}
	t.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDataToken(ctx, t)
}

type riskPayload struct {
	Token  string         `json:"token"`
	Fields map[string]any `json:"fields"`
}

// ConfigureRisk submits the information-security risk meta of a token:
// classification (required), label, handling, retentionDays and any other
// fields (64 fields, 4 KiB).
func (s *Service) ConfigureRisk(ctx context.Context, profileID, token string, fields map[string]any) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if token == "" {
		v.Add("token", "is required")
	}
	checkRisk(fields, v) // risk.go
	if len(fields) > maxRiskFields {
		v.Add("fields", "at most 64 fields")
	}
	if b, _ := json.Marshal(fields); len(b) > maxRiskBytes {
		v.Add("fields", "at most 4 KiB")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.owned(ctx, s.store, profileID, token); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdRisk, riskPayload{Token: token, Fields: fields})
}

func (s *Service) handleRisk(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p riskPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	t, err := s.owned(ctx, q, c.ProfileID, p.Token)
	if err != nil {
		return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
	}
	t.Meta["information_security_risk"] = p.Fields
	t.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDataToken(ctx, t)
}
