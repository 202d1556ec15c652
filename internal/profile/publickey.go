package profile

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/keys"
)

// Public keys: the profile's own, and (through DeviceKeys) a device's.

type publicKeyPayload struct {
	PublicKey        string `json:"publicKey"`
	DeviceIdentifier string `json:"deviceIdentifier,omitempty"`
	QRTokenID        string `json:"qrTokenId,omitempty"`
}

// DeviceKeys registers a device's public key inside a command; the device
// service implements it.
type DeviceKeys interface {
	RegisterKey(ctx context.Context, q privicore.Queries, profileID, deviceID, qrTokenID, publicKey string) error
}

// RegisterPublicKey validates a signed public key (EINVALID on publicKey
// for any length, hex, tag or checksum problem) and submits its
// registration for profile p, replacing an existing key. With a
// deviceIdentifier the key is a device's: only for a pending or approved
// device of the caller.
func (s *Service) RegisterPublicKey(ctx context.Context, p *privicore.Profile, publicKey, deviceIdentifier string) (*privicore.Command, error) {
	return s.RegisterKey(ctx, p.ID, publicKey, deviceIdentifier, "")
}

// RegisterKey is RegisterPublicKey for profileID; with qrTokenID (a device
// enrolling with a QR token) the device must be the one bound to that token.
func (s *Service) RegisterKey(ctx context.Context, profileID, publicKey, deviceIdentifier, qrTokenID string) (*privicore.Command, error) {
	publicKey = strings.ToLower(strings.TrimSpace(publicKey))
	if publicKey == "" {
		return nil, privicore.Invalid("publicKey", "is required")
	}
	if _, err := keys.ParseSigned(publicKey); err != nil {
		return nil, privicore.Invalid("publicKey", err.Error())
	}
	return s.cmds.Submit(ctx, profileID, CmdRegisterPublicKey, publicKeyPayload{PublicKey: publicKey, DeviceIdentifier: deviceIdentifier, QRTokenID: qrTokenID})
}

func (s *Service) handleRegisterPublicKey(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl publicKeyPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	if pl.DeviceIdentifier != "" {
		if s.devices == nil {
			return command.Result{}, privicore.Reject(ReasonDeviceNotFound, "device not found")
		}
		return command.Result{}, s.devices.RegisterKey(ctx, q, c.ProfileID, pl.DeviceIdentifier, pl.QRTokenID, pl.PublicKey)
	}
	p, err := q.FindProfileByID(ctx, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	p.PublicKey = pl.PublicKey
	p.UpdatedAt = s.now()
	return command.Result{}, q.UpdateProfile(ctx, p) // the store notes the change: every auth cache drops the profile
}

// PublicKey returns the caller's registered key (ENOTFOUND if none). With a
// deviceIdentifier, the key of that device of the caller.
func (s *Service) PublicKey(ctx context.Context, a *Auth, deviceIdentifier string) (string, error) {
	if deviceIdentifier != "" || a.Profile.PublicKey == "" {
		return "", privicore.Errorf(privicore.ENOTFOUND, "no public key registered")
	}
	return a.Profile.PublicKey, nil
}
