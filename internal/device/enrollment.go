package device

import (
	"context"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

type requestPayload struct {
	DeviceID  string `json:"deviceId"`
	Name      string `json:"name"`
	QRTokenID string `json:"qrTokenId,omitempty"`
	QRRole    string `json:"qrRole,omitempty"`
}

// Enrollment is the QR token a request came with, if any.
type Enrollment struct {
	TokenID string
	Role    string
}

// RequestIdentifier submits the creation of a pending device for profileID.
// With a QR enrollment the device is bound to that token and approved
// automatically once its key is registered. The ack body is the device id.
func (s *Service) RequestIdentifier(ctx context.Context, profileID, name string, qr *Enrollment) (*privicore.Command, error) {
	if utf8.RuneCountInString(name) > 255 {
		return nil, privicore.Invalid("deviceName", "must be at most 255 characters")
	}
	p := requestPayload{DeviceID: uuid.NewString(), Name: name}
	if qr != nil {
		p.QRTokenID, p.QRRole = qr.TokenID, qr.Role
	}
	return s.cmds.Submit(ctx, profileID, CmdRequestIdentifier, p)
}

func (s *Service) handleRequest(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p requestPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	now := s.now()
	d := &privicore.Device{ID: p.DeviceID, ProfileID: c.ProfileID, RequestCommandID: c.ID, Name: p.Name, DisplayName: p.Name,
		Tags: []string{}, Meta: map[string]any{}, Role: privicore.RoleNone, State: privicore.DevicePending,
		QRTokenID: p.QRTokenID, QRRole: p.QRRole, CreatedAt: now, UpdatedAt: now}
	if err := q.CreateDevice(ctx, d); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: d.ID}, nil
}

// RetrieveIdentifier returns the device created by request command
// commandID, once settled. With qrTokenID the device must be the one bound
// to that enrollment token.
func (s *Service) RetrieveIdentifier(ctx context.Context, profileID, commandID, qrTokenID string) (string, error) {
	d, err := s.store.FindDeviceByRequest(ctx, profileID, commandID)
	if err != nil || (qrTokenID != "" && d.QRTokenID != qrTokenID) {
		if err != nil && privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return "", err
		}
		return "", privicore.Errorf(privicore.ENOTFOUND, "no device for that request (yet)")
	}
	return d.ID, nil
}

// ---- public key ----

// RegisterKey sets the device's public key inside a command (called by the
// public key registration handler). The device must be the caller's and
// pending or approved; with qrTokenID it must be bound to that token. A
// QR-enrolled pending device is approved at once (and given the token's role).
func (s *Service) RegisterKey(ctx context.Context, q privicore.Queries, profileID, deviceID, qrTokenID, publicKey string) error {
	d, err := owned(ctx, q, profileID, deviceID)
	if err != nil {
		return err
	}
	if qrTokenID != "" && d.QRTokenID != qrTokenID {
		return privicore.Reject(ReasonNotFound, "device not found")
	}
	d.PublicKey = publicKey
	d.UpdatedAt = s.now()
	if d.QRTokenID != "" && d.State == privicore.DevicePending {
		s.approve(d)
		if d.QRRole != "" {
			d.Role = d.QRRole
		}
	}
	return q.UpdateDevice(ctx, d)
}

// PublicKey returns the caller's device's key (ENOTFOUND if none).
func (s *Service) PublicKey(ctx context.Context, profileID, deviceID string) (string, error) {
	d, err := s.Find(ctx, profileID, deviceID)
	if err != nil {
		return "", err
	}
	if d.PublicKey == "" {
		return "", privicore.Errorf(privicore.ENOTFOUND, "no public key registered")
	}
	return d.PublicKey, nil
}
