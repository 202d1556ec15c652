package privicore

import (
	"context"
	"time"
)

// Device roles and states.
const (
	RoleNone          = "none"
	RoleStorage       = "storage"
	RoleAuthenticator = "authenticator"

	DevicePending  = "pending"
	DeviceApproved = "approved"
)

// Device is third-party software enrolled under a profile: a storage device,
// an authenticator or a plain signer. Its key pair is generated on the
// device; the engine holds only the public key. Only the owner acts on it;
// another profile's device behaves as a missing one.
type Device struct {
	ID               string         // deviceIdentifier (UUID)
	ProfileID        string         // the owner
	RequestCommandID string         // the request-unique-identifier command
	Name             string         //
	DisplayName      string         //
	Tags             []string       //
	Meta             map[string]any //
	Role             string         // RoleNone, RoleStorage, RoleAuthenticator
	State            string         // DevicePending, DeviceApproved
	PublicKey        string         // signed public key (200 hex), "" until registered
	ClientID         string         // bus user name, set once approved
	SecretHash       string         // hex SHA-256 of the current bus client secret
	QRTokenID        string         // the enrollment token it was requested with, if any
	QRRole           string         // the role that token grants on approval
	LastSeenAt       time.Time      //
	CreatedAt        time.Time      //
	UpdatedAt        time.Time      //
}

// DeviceStore persists devices.
type DeviceStore interface {
	// CreateDevice inserts d.
	CreateDevice(ctx context.Context, d *Device) error
	// UpdateDevice writes every mutable field of d.
	UpdateDevice(ctx context.Context, d *Device) error
	// DeleteDevice removes the device.
	DeleteDevice(ctx context.Context, id string) error
	// FindDevice returns the profile's device, or ENOTFOUND (also for
	// another profile's device).
	FindDevice(ctx context.Context, profileID, id string) (*Device, error)
	// FindDeviceByClientID returns the device with that bus user, or
	// ENOTFOUND. It is not scoped to a profile: it serves the bus, which
	// authenticates a connection (and delivers a device's outbox) before
	// any profile is known; the bus user name is the device's own.
	FindDeviceByClientID(ctx context.Context, clientID string) (*Device, error)
	// FindDeviceByRequest returns the profile's device created by a
	// request command, or ENOTFOUND.
	FindDeviceByRequest(ctx context.Context, profileID, commandID string) (*Device, error)
	// ListDevices returns the profile's devices, oldest first; role "" means any.
	ListDevices(ctx context.Context, profileID, role string) ([]*Device, error)
	// TouchDevice sets LastSeenAt.
	TouchDevice(ctx context.Context, id string, at time.Time) error
}

// Bundle is a device's configuration bundle: what it needs to connect to
// the engine's bus. Each download carries a new ClientSecret.
type Bundle struct {
	DeviceIdentifier string `json:"device-identifier"`
	ClientID         string `json:"client-id"`
	ClientSecret     string `json:"client-secret"`
	BusURL           string `json:"bus-url"`
	BusSubjectPrefix string `json:"bus-subject-prefix"`
	EnginePublicKey  string `json:"engine-public-key"`
	Role             string `json:"role"`
}
