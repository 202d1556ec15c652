package device

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/protocol"
)

// Configuration issues a new client secret for the caller's approved device
// and returns its bundle; the previous secret stops working and connections
// made with it are closed. ENOTFOUND for a missing or foreign device,
// ECONFLICT unless approved.
func (s *Service) Configuration(ctx context.Context, profileID, deviceID string) (*privicore.Bundle, error) {
	if err := CheckID("deviceIdentifier", deviceID); err != nil {
		return nil, err
	}
	var secret string
	var d *privicore.Device
	err := s.store.Write(ctx, func(q privicore.Queries) error {
		var err error
		d, err = q.FindDevice(ctx, profileID, deviceID)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			return privicore.Errorf(privicore.ENOTFOUND, "device not found")
		} else if err != nil {
			return err
		}
		if d.State != privicore.DeviceApproved {
			return privicore.Errorf(privicore.ECONFLICT, "the device is not approved")
		}
		secret = newSecret()
		d.SecretHash = hashSecret(secret)
		d.UpdatedAt = s.now()
		return q.UpdateDevice(ctx, d)
	})
	if err != nil {
		return nil, err
	}
	s.bus.Disconnect(d.ClientID)
	return &privicore.Bundle{DeviceIdentifier: d.ID, ClientID: d.ClientID, ClientSecret: secret, BusURL: s.bus.URL(),
		BusSubjectPrefix: protocol.DeviceSubject(s.bus.Prefix(), d.ID), EnginePublicKey: s.engineKey, Role: d.Role}, nil
}

// AuthenticateDevice implements bus.DeviceAuthenticator: clientID and
// secret must be the current credentials of an active device (approved,
// its public key registered).
func (s *Service) AuthenticateDevice(clientID, secret string) (string, bool) {
	if !protocol.IsDeviceClient(clientID) || secret == "" {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := s.store.FindDeviceByClientID(ctx, clientID)
	if err != nil || !Active(d) || d.SecretHash == "" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(d.SecretHash)) != 1 {
		return "", false
	}
	id := d.ID
	go s.store.Write(context.Background(), func(q privicore.Queries) error { return q.TouchDevice(context.Background(), id, s.now()) })
	return d.ID, true
}

func newSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
