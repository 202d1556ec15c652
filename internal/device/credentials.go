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

// Authenticator checks devices' bus credentials (it implements
// bus.DeviceAuthenticator). It needs nothing but the store, so the bus can
// be started with it before the device service, which needs the bus.
type Authenticator struct {
	store privicore.Store
	now   func() time.Time
}

// NewAuthenticator returns the authenticator of devices in store.
func NewAuthenticator(store privicore.Store) *Authenticator {
	return &Authenticator{store: store, now: func() time.Time { return time.Now().UTC() }}
}

// AuthenticateDevice implements bus.DeviceAuthenticator: clientID and
// secret must be the current credentials of an active device (approved,
// its public key registered). It records when the device was last seen.
func (a *Authenticator) AuthenticateDevice(clientID, secret string) (string, bool) {
	if !protocol.IsDeviceClient(clientID) || secret == "" {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := a.store.FindDeviceByClientID(ctx, clientID)
	if err != nil || !Active(d) || d.SecretHash == "" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(d.SecretHash)) != 1 {
		return "", false
	}
	id := d.ID
	go a.store.Write(context.Background(), func(q privicore.Queries) error { return q.TouchDevice(context.Background(), id, a.now()) })
	return d.ID, true
}

// AuthenticateDevice is Authenticator's, for the store the service was
// made with.
func (s *Service) AuthenticateDevice(clientID, secret string) (string, bool) {
	return (&Authenticator{store: s.store, now: s.now}).AuthenticateDevice(clientID, secret)
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
