package device

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Meta is a configure-meta request; nil fields stay as they are.
type Meta struct {
	DeviceID    string         `json:"deviceId"`
	Name        *string        `json:"name,omitempty"`
	DisplayName *string        `json:"displayName,omitempty"`
	Tags        []string       `json:"tags,omitempty"`
	SetTags     bool           `json:"setTags,omitempty"`
	Meta        map[string]any `json:"meta,omitempty"`
}

// ConfigureMeta submits a meta change.
func (s *Service) ConfigureMeta(ctx context.Context, profileID string, m Meta) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if err := CheckID("deviceIdentifier", m.DeviceID); err != nil {
		return nil, err
	}
	if m.Name != nil && utf8.RuneCountInString(*m.Name) > 255 {
		v.Add("name", "must be at most 255 characters")
	}
	if m.DisplayName != nil && utf8.RuneCountInString(*m.DisplayName) > 255 {
		v.Add("displayName", "must be at most 255 characters")
	}
	if len(m.Tags) > 64 {
		v.Add("tags", "must be at most 64 tags")
	}
	for _, t := range m.Tags {
		if t == "" || utf8.RuneCountInString(t) > 64 {
			v.Add("tags", "each tag must be 1 to 64 characters")
			break
		}
	}
	if b, _ := json.Marshal(m.Meta); len(b) > 4096 {
		v.Add("meta", "must be at most 4 KiB of JSON")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdConfigureMeta, m)
}

func (s *Service) handleConfigureMeta(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var m Meta
	if err := decode(c, &m); err != nil {
		return command.Result{}, err
	}
	d, err := owned(ctx, q, c.ProfileID, m.DeviceID)
	if err != nil {
		return command.Result{}, err
	}
	if m.Name != nil {
		d.Name = *m.Name
	}
	if m.DisplayName != nil {
		d.DisplayName = *m.DisplayName
	}
	if m.SetTags {
		d.Tags = m.Tags
	}
	if m.Meta != nil {
		d.Meta = m.Meta
	}
	d.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDevice(ctx, d)
}
