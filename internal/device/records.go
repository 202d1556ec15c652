package device

import (
	"context"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
)

// RecordOf renders d, asking the bus whether it is connected.
func (s *Service) RecordOf(d *privicore.Device) api.Device {
	r := api.Device{DeviceIdentifier: d.ID, Name: d.Name, DisplayName: d.DisplayName, Tags: d.Tags, Meta: d.Meta,
		Role: d.Role, State: d.State, HasPublicKey: d.PublicKey != "", CreatedAt: d.CreatedAt.Truncate(time.Second)}
	if d.ClientID != "" && s.bus != nil {
		r.Online = s.bus.Online(d.ClientID)
	}
	if r.Online {
		now := s.now().Truncate(time.Second)
		r.LastSeenAt = &now
	} else if !d.LastSeenAt.IsZero() {
		t := d.LastSeenAt.Truncate(time.Second)
		r.LastSeenAt = &t
	}
	return r
}

// List returns the profile's devices with role ("" for all).
func (s *Service) List(ctx context.Context, profileID, role string) ([]api.Device, error) {
	ds, err := s.store.ListDevices(ctx, profileID, role)
	if err != nil {
		return nil, err
	}
	out := make([]api.Device, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.RecordOf(d))
	}
	return out, nil
}
