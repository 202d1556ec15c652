// Package device holds the rules of the device lifecycle: request an
// identifier (with the owner's token or a QR enrollment token), register
// the device's own public key, approve or reject, configure meta, issue the
// bus configuration bundle, assign and drop roles, remove. Only the owner
// acts on a device; another profile's device behaves as a missing one.
package device

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/protocol"
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

// Bus is what the service needs of the message bus.
type Bus interface {
	URL() string
	Prefix() string
	Online(clientID string) bool
	Disconnect(clientID string)
}

// Service implements the device rules.
type Service struct {
	store     privicore.Store
	cmds      *command.Processor
	bus       Bus
	engineKey string
	now       func() time.Time
	gen       atomic.Uint64 // committed device changes (DeviceGeneration)
}

// New returns the service and registers its command handlers.
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

// DeviceChanged implements profile.DeviceKeys.
func (s *Service) DeviceChanged() { s.changed() }

// changed is the After hook of a committed device change.
func (s *Service) changed() { s.gen.Add(1) }

// DeviceGeneration counts the committed device changes (approval, removal,
// a role, a key): a list of devices read while it is unchanged is current
// (it implements fanout.DeviceChanges).
func (s *Service) DeviceGeneration() uint64 { return s.gen.Load() }

// SetBus connects the bus (which itself authenticates devices through the
// service, hence the late binding). Call it before serving.
func (s *Service) SetBus(b Bus) { s.bus = b }

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

// ---- request / retrieve identifier ----

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

// ---- meta ----

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

// ---- approve / reject / remove ----

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

// Active reports whether d may connect to the bus and hold a role: it is
// approved and its public key is registered.
func Active(d *privicore.Device) bool {
	return d.State == privicore.DeviceApproved && d.PublicKey != ""
}

// approve marks d approved and gives it its bus user.
func (s *Service) approve(d *privicore.Device) {
	d.State = privicore.DeviceApproved
	d.ClientID = protocol.ClientID(d.ID)
}

func (s *Service) handleApprove(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	// A device may be approved before its key is registered (the
	// reference's clients do): it is then approved but not active — its
	// bundle can be downloaded, but the bus refuses it and it cannot take a
	// role until its key is registered.
	if d.State == privicore.DeviceApproved {
		return command.Result{}, privicore.Reject(ReasonAlreadyApproved, "device already approved")
	}
	s.approve(d)
	d.UpdatedAt = s.now()
	return command.Result{After: s.changed}, q.UpdateDevice(ctx, d)
}

func (s *Service) handleReject(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if d.State != privicore.DevicePending {
		return command.Result{}, privicore.Reject(ReasonAlreadyApproved, "only pending devices can be rejected; remove an approved one")
	}
	return command.Result{}, q.DeleteDevice(ctx, d.ID)
}

func (s *Service) handleRemove(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if err := q.DeleteDevice(ctx, d.ID); err != nil {
		return command.Result{}, err
	}
	// Once the removal is committed, its credentials no longer authenticate;
	// close the connection it already has.
	return command.Result{After: func() { s.bus.Disconnect(d.ClientID); s.changed() }}, nil
}

// ---- roles ----

func (s *Service) handleAssignRole(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, p, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	switch {
	case d.State != privicore.DeviceApproved:
		return command.Result{}, privicore.Reject(ReasonNotApproved, "device not approved")
	case !Active(d):
		// Role ⇒ key: a storage device or authenticator always has the key
		// its traffic is checked against.
		return command.Result{}, privicore.Reject(ReasonPublicKeyRequired, "register the device's public key first")
	case d.Role != privicore.RoleNone:
		return command.Result{}, privicore.Reject(ReasonRoleTaken, "the device already has the role %s", d.Role)
	}
	d.Role = p.Role
	d.UpdatedAt = s.now()
	return command.Result{After: s.changed}, q.UpdateDevice(ctx, d)
}

func (s *Service) handleDropRole(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, p, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if d.Role != p.Role {
		return command.Result{}, privicore.Reject(ReasonRoleNotHeld, "the device does not have the role %s", p.Role)
	}
	d.Role = privicore.RoleNone
	d.UpdatedAt = s.now()
	return command.Result{After: s.changed}, q.UpdateDevice(ctx, d)
}

// ---- listing and configuration ----

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

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}
