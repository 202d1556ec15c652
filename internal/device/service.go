// Package device holds the rules of the device lifecycle: request an
// identifier (with the owner's token or a QR enrollment token), register
// the device's own public key, approve or reject, configure meta, issue the
// bus configuration bundle, assign and drop roles, remove. Only the owner
// acts on a device; another profile's device behaves as a missing one.
package device

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Command types handled by this package.
const (
	CmdRequestIdentifier = "device.request_identifier"
	CmdConfigureMeta     = "device.configure_meta"
	CmdApprove           = "device.approve"
	CmdReject            = "device.reject"
	CmdRemove            = "device.remove"
	CmdAssignRole        = "device.assign_role"
	CmdDropRole          = "device.drop_role"
)

// Rejection reasons of this package.
const (
	ReasonNotFound          = "device.not_found"
	ReasonPublicKeyRequired = "device.public_key_required"
	ReasonAlreadyApproved   = "device.already_approved"
	ReasonNotApproved       = "device.not_approved"
	ReasonRoleTaken         = "device.role_taken"
	ReasonRoleNotHeld       = "device.role_not_held"
)

// Bus is what the service needs of the message bus (internal/bus).
type Bus interface {
	// URL is where devices connect (it goes into their bundle).
	URL() string
	// Prefix is the subject prefix (protocol.DeviceSubject).
	Prefix() string
	// Online reports whether a bus user is connected.
	Online(clientID string) bool
	// Disconnect closes every connection of a bus user.
	Disconnect(clientID string)
}

// Service implements the device rules.
type Service struct {
	store     privicore.Store
	cmds      *command.Processor
	bus       Bus
	engineKey string
	now       func() time.Time
}

// New returns the service and registers its command handlers. bus is where
// its devices connect (the bus authenticates them with an Authenticator, so
// it is started first).
func New(store privicore.Store, cmds *command.Processor, bus Bus, engineKey string) *Service {
	s := &Service{store: store, cmds: cmds, bus: bus, engineKey: engineKey, now: func() time.Time { return time.Now().UTC() }}
	cmds.Handle(CmdRequestIdentifier, s.handleRequest)
	cmds.Handle(CmdConfigureMeta, s.handleConfigureMeta)
	cmds.Handle(CmdApprove, s.handleApprove)
	cmds.Handle(CmdReject, s.handleReject)
	cmds.Handle(CmdRemove, s.handleRemove)
	cmds.Handle(CmdAssignRole, s.handleAssignRole)
	cmds.Handle(CmdDropRole, s.handleDropRole)
	cmds.Event(CmdApprove, command.Fires(privicore.EventDeviceApprove))
	cmds.Event(CmdRemove, command.Fires(privicore.EventDeviceRemove))
	roleEvent := func(storage, authenticator string) func(*privicore.Command) string {
		return func(c *privicore.Command) string {
			var p idPayload
			json.Unmarshal(c.Payload, &p)
			return map[string]string{privicore.RoleStorage: storage, privicore.RoleAuthenticator: authenticator}[p.Role]
		}
	}
	cmds.Event(CmdAssignRole, roleEvent(privicore.EventStorageRegister, privicore.EventAuthenticatorRegister))
	cmds.Event(CmdDropRole, roleEvent(privicore.EventStorageRemove, privicore.EventAuthenticatorRemove))
	return s
}

// CheckID validates a deviceIdentifier's shape (EINVALID on field).
func CheckID(field, id string) error {
	if id == "" {
		return privicore.Invalid(field, "is required")
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return privicore.Invalid(field, "must be a UUID")
	}
	return nil
}

// owned returns the caller's device, or the device.not_found rejection (a
// foreign device is indistinguishable from a missing one).
func owned(ctx context.Context, q privicore.Queries, profileID, id string) (*privicore.Device, error) {
	d, err := q.FindDevice(ctx, profileID, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, privicore.Reject(ReasonNotFound, "device not found")
	}
	return d, err
}

// Find returns the caller's device, or ENOTFOUND.
func (s *Service) Find(ctx context.Context, profileID, id string) (*privicore.Device, error) {
	d, err := s.store.FindDevice(ctx, profileID, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "device not found")
	}
	return d, err
}

// idPayload is the payload of the single-device commands.
type idPayload struct {
	DeviceID string `json:"deviceId"`
	Role     string `json:"role,omitempty"`
}

// Submit submits one of the single-device commands (approve, reject,
// remove, assign or drop a role) after checking the identifier's shape.
func (s *Service) Submit(ctx context.Context, profileID, typ, deviceID, role string) (*privicore.Command, error) {
	if err := CheckID("deviceIdentifier", deviceID); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, typ, idPayload{DeviceID: deviceID, Role: role})
}

// commandDevice decodes a single-device command and returns its device,
// which must be the caller's.
func commandDevice(ctx context.Context, q privicore.Queries, c *privicore.Command) (*privicore.Device, idPayload, error) {
	var p idPayload
	if err := decode(c, &p); err != nil {
		return nil, p, err
	}
	d, err := owned(ctx, q, c.ProfileID, p.DeviceID)
	return d, p, err
}

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}
