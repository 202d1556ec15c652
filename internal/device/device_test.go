package device_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
	"github.com/privicore/privicore/internal/sqlstore"
)

// rig runs the device service on the real parts: a SQLite store, the
// command processor and the embedded bus (which authenticates devices
// through the service).
type rig struct {
	t     *testing.T
	ctx   context.Context
	store *sqlstore.DB
	svc   *device.Service
	bus   *bus.Bus
	// noted counts the device changes the store published for the
	// device lists (coherence.Devices).
	noted atomic.Int64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, peers := commandtest.OpenWithPeers(t)
	cmds := command.New(store, commandtest.Nowhere{}, command.Options{})
	enginePriv, _ := keys.Generate()
	b, err := bus.Start(bus.Config{Addr: "127.0.0.1:0", DataDir: dir}, device.NewAuthenticator(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	svc := device.New(store, cmds, b, keys.SignedPublic(enginePriv))
	if err := cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Stop)
	r := &rig{t: t, ctx: ctx, store: store, svc: svc, bus: b}
	peers.Handle(coherence.Devices, func(string) { r.noted.Add(1) })
	for _, p := range []string{"alice", "bob"} {
		now := time.Now().UTC()
		if err := store.Write(ctx, func(q privicore.Queries) error {
			return q.CreateProfile(ctx, &privicore.Profile{ID: p, Username: p, PasswordHash: "h", CreatedAt: now, UpdatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// succeed runs a command and returns its body; it must succeed.
func (r *rig) succeed(c *privicore.Command, err error) string {
	r.t.Helper()
	return commandtest.Succeeded(r.t, r.store, c, err).Body
}

// reject returns a check that a submitted command is rejected with
// reason: r.reject(reason)(r.do(…)).
func (r *rig) reject(reason string) func(c *privicore.Command, err error) {
	return func(c *privicore.Command, err error) {
		r.t.Helper()
		commandtest.Rejected(r.t, r.store, reason, c, err)
	}
}

// do submits a single-device command as profileID.
func (r *rig) do(profileID, typ, deviceID, role string) (*privicore.Command, error) {
	return r.svc.Submit(r.ctx, profileID, typ, deviceID, role)
}

// request creates a pending device of profileID and returns its id.
func (r *rig) request(profileID string, qr *device.Enrollment) (id, commandID string) {
	r.t.Helper()
	c, err := r.svc.RequestIdentifier(r.ctx, profileID, "phone", qr)
	return r.succeed(c, err), c.ID
}

// registerKey registers a fresh public key for the device as profileID
// (as the public-key registration command does) and reports its error.
func (r *rig) registerKey(profileID, deviceID, qrTokenID string) error {
	priv, _ := keys.Generate()
	return r.store.Write(r.ctx, func(q privicore.Queries) error {
		return r.svc.RegisterKey(r.ctx, q, profileID, deviceID, qrTokenID, keys.SignedPublic(priv))
	})
}

func (r *rig) find(profileID, id string) *privicore.Device {
	r.t.Helper()
	d, err := r.svc.Find(r.ctx, profileID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// connect opens one bus connection with a bundle's credentials, without
// retrying.
func connect(b *privicore.Bundle) (*nats.Conn, error) {
	return nats.Connect(b.BusURL, nats.UserInfo(b.ClientID, b.ClientSecret),
		nats.CustomInboxPrefix(protocol.InboxPrefix(b.DeviceIdentifier)), nats.NoReconnect())
}

// dialWatched connects with a bundle (without retrying) and returns a
// channel closed once the bus closes that connection.
func (r *rig) dialWatched(b *privicore.Bundle) <-chan struct{} {
	r.t.Helper()
	closed := make(chan struct{})
	nc, err := nats.Connect(b.BusURL, nats.UserInfo(b.ClientID, b.ClientSecret),
		nats.CustomInboxPrefix(protocol.InboxPrefix(b.DeviceIdentifier)), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	return closed
}

// A device goes request → approve → key → role. Approved before its key
// is registered it is not active: its bundle can be downloaded, but the bus
// refuses it and it cannot take a role. Each committed change that fanout's
// device lists depend on is published to them (coherence.Devices).
func TestDeviceLifecycle(t *testing.T) {
	r := newRig(t)
	id, reqID := r.request("alice", nil)
	if got, err := r.svc.RetrieveIdentifier(r.ctx, "alice", reqID, ""); err != nil || got != id {
		t.Fatalf("retrieve identifier: %q, %v; want %s", got, err, id)
	}
	if d := r.find("alice", id); d.State != privicore.DevicePending || d.Role != privicore.RoleNone || d.ClientID != "" {
		t.Fatalf("requested device %+v", d)
	}
	if _, err := r.svc.Configuration(r.ctx, "alice", id); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("bundle of a pending device: %v, want ECONFLICT", err)
	}
	r.reject(device.ReasonNotApproved)(r.do("alice", device.CmdAssignRole, id, privicore.RoleStorage))

	gen := r.noted.Load()
	r.succeed(r.do("alice", device.CmdApprove, id, ""))
	if r.noted.Load() == gen {
		t.Fatal("an approval is not published to the device lists")
	}
	r.reject(device.ReasonAlreadyApproved)(r.do("alice", device.CmdApprove, id, ""))
	r.reject(device.ReasonAlreadyApproved)(r.do("alice", device.CmdReject, id, ""))
	d := r.find("alice", id)
	if d.State != privicore.DeviceApproved || d.ClientID != protocol.ClientID(id) || device.Active(d) {
		t.Fatalf("approved device without a key: %+v (active %v)", d, device.Active(d))
	}

	// Approved, no key: a bundle, but no bus and no role.
	bundle, err := r.svc.Configuration(r.ctx, "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := connect(bundle); err == nil {
		nc.Close()
		t.Fatal("the bus accepted a device without a registered key")
	}
	r.reject(device.ReasonPublicKeyRequired)(r.do("alice", device.CmdAssignRole, id, privicore.RoleStorage))

	// The key makes it active: the same bundle now connects, and it takes a role.
	if err := r.registerKey("alice", id, ""); err != nil {
		t.Fatal(err)
	}
	if !device.Active(r.find("alice", id)) {
		t.Fatal("approved with a key is not active")
	}
	nc, err := connect(bundle)
	if err != nil {
		t.Fatalf("the bus refused an active device: %v", err)
	}
	nc.Close()
	gen = r.noted.Load()
	r.succeed(r.do("alice", device.CmdAssignRole, id, privicore.RoleStorage))
	if d := r.find("alice", id); d.Role != privicore.RoleStorage {
		t.Fatalf("role %q after assigning storage", d.Role)
	}
	if r.noted.Load() == gen {
		t.Fatal("a role is not published to the device lists")
	}
	r.reject(device.ReasonRoleTaken)(r.do("alice", device.CmdAssignRole, id, privicore.RoleAuthenticator))
	r.reject(device.ReasonRoleNotHeld)(r.do("alice", device.CmdDropRole, id, privicore.RoleAuthenticator))
	r.succeed(r.do("alice", device.CmdDropRole, id, privicore.RoleStorage))
	if d := r.find("alice", id); d.Role != privicore.RoleNone {
		t.Fatalf("role %q after dropping it", d.Role)
	}

	// Removal: gone, and its credentials no longer authenticate.
	gen = r.noted.Load()
	r.succeed(r.do("alice", device.CmdRemove, id, ""))
	if _, err := r.svc.Find(r.ctx, "alice", id); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("removed device: %v, want ENOTFOUND", err)
	}
	if r.noted.Load() == gen {
		t.Fatal("a removal is not published to the device lists")
	}
	if nc, err := connect(bundle); err == nil {
		nc.Close()
		t.Fatal("the bus accepted a removed device")
	}

	// A pending device can be rejected: it is gone.
	other, _ := r.request("alice", nil)
	r.succeed(r.do("alice", device.CmdReject, other, ""))
	if _, err := r.svc.Find(r.ctx, "alice", other); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("rejected device: %v, want ENOTFOUND", err)
	}
}

// A device requested with a QR enrollment token is bound to it: only that
// token retrieves it and registers its key, which approves it with the
// token's role at once.
func TestQREnrolledDeviceIsApprovedWithItsKey(t *testing.T) {
	r := newRig(t)
	id, reqID := r.request("alice", &device.Enrollment{TokenID: "qr-1", Role: privicore.RoleStorage})
	if _, err := r.svc.RetrieveIdentifier(r.ctx, "alice", reqID, "qr-2"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("retrieve with another QR token: %v, want ENOTFOUND", err)
	}
	if got, err := r.svc.RetrieveIdentifier(r.ctx, "alice", reqID, "qr-1"); err != nil || got != id {
		t.Fatalf("retrieve with its QR token: %q, %v", got, err)
	}
	if err := r.registerKey("alice", id, "qr-2"); privicore.ErrorReason(err) != device.ReasonNotFound {
		t.Fatalf("key with another QR token: %v, want %s", err, device.ReasonNotFound)
	}
	if d := r.find("alice", id); d.State != privicore.DevicePending {
		t.Fatalf("state %s after a refused key", d.State)
	}
	if err := r.registerKey("alice", id, "qr-1"); err != nil {
		t.Fatal(err)
	}
	if d := r.find("alice", id); !device.Active(d) || d.Role != privicore.RoleStorage || d.ClientID != protocol.ClientID(id) {
		t.Fatalf("QR-enrolled device after its key: %+v", d)
	}
}

// Only the owner acts on a device: to another profile it behaves as a
// missing one in every read and every command, and stays as it was.
func TestAnotherProfilesDeviceBehavesAsMissing(t *testing.T) {
	r := newRig(t)
	id, reqID := r.request("alice", nil)
	r.succeed(r.do("alice", device.CmdApprove, id, ""))
	if err := r.registerKey("alice", id, ""); err != nil {
		t.Fatal(err)
	}

	if _, err := r.svc.Find(r.ctx, "bob", id); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Errorf("find: %v, want ENOTFOUND", err)
	}
	if _, err := r.svc.PublicKey(r.ctx, "bob", id); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Errorf("public key: %v, want ENOTFOUND", err)
	}
	if _, err := r.svc.RetrieveIdentifier(r.ctx, "bob", reqID, ""); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Errorf("retrieve identifier: %v, want ENOTFOUND", err)
	}
	if _, err := r.svc.Configuration(r.ctx, "bob", id); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Errorf("bundle: %v, want ENOTFOUND", err)
	}
	if err := r.registerKey("bob", id, ""); privicore.ErrorReason(err) != device.ReasonNotFound {
		t.Errorf("register key: %v, want %s", err, device.ReasonNotFound)
	}
	if list, err := r.svc.List(r.ctx, "bob", ""); err != nil || len(list) != 0 {
		t.Errorf("bob's list: %v, %v", list, err)
	}
	name := "mine now"
	r.reject(device.ReasonNotFound)(r.svc.ConfigureMeta(r.ctx, "bob", device.Meta{DeviceID: id, Name: &name}))
	for _, c := range []struct{ typ, role string }{
		{device.CmdAssignRole, privicore.RoleStorage},
		{device.CmdDropRole, privicore.RoleNone},
		{device.CmdApprove, ""},
		{device.CmdReject, ""},
		{device.CmdRemove, ""},
	} {
		r.reject(device.ReasonNotFound)(r.do("bob", c.typ, id, c.role))
	}
	if d := r.find("alice", id); d.Name != "phone" || d.Role != privicore.RoleNone || !device.Active(d) {
		t.Fatalf("alice's device after bob's attempts: %+v", d)
	}
}

// A new bundle replaces the device's secret: the connection made with the
// old one is closed, and the old secret no longer authenticates.
func TestNewBundleSecretDisconnectsTheOldOne(t *testing.T) {
	r := newRig(t)
	id, _ := r.request("alice", nil)
	r.succeed(r.do("alice", device.CmdApprove, id, ""))
	if err := r.registerKey("alice", id, ""); err != nil {
		t.Fatal(err)
	}
	old, err := r.svc.Configuration(r.ctx, "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	closed := r.dialWatched(old)
	if !r.bus.Online(old.ClientID) {
		t.Fatal("the connected device is not online")
	}

	fresh, err := r.svc.Configuration(r.ctx, "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.ClientSecret == old.ClientSecret || fresh.ClientID != old.ClientID {
		t.Fatalf("new bundle: client %s (was %s), same secret %v", fresh.ClientID, old.ClientID, fresh.ClientSecret == old.ClientSecret)
	}
	select {
	case <-closed:
	case <-time.After(20 * time.Second): // a guard against a hang only
		t.Fatal("the connection with the old secret stays open")
	}
	if c, err := connect(old); err == nil {
		c.Close()
		t.Fatal("the old secret still authenticates")
	}
	c, err := connect(fresh)
	if err != nil {
		t.Fatalf("the new secret does not authenticate: %v", err)
	}
	c.Close()
}

// Removing a device closes the connection it has once the removal is
// committed.
func TestRemovalClosesTheDeviceConnection(t *testing.T) {
	r := newRig(t)
	id, _ := r.request("alice", nil)
	r.succeed(r.do("alice", device.CmdApprove, id, ""))
	if err := r.registerKey("alice", id, ""); err != nil {
		t.Fatal(err)
	}
	b, err := r.svc.Configuration(r.ctx, "alice", id)
	if err != nil {
		t.Fatal(err)
	}
	closed := r.dialWatched(b)
	r.succeed(r.do("alice", device.CmdRemove, id, ""))
	select {
	case <-closed:
	case <-time.After(20 * time.Second): // a guard against a hang only
		t.Fatal("the removed device's connection stays open")
	}
	if r.bus.Online(b.ClientID) {
		t.Fatal("the removed device is online")
	}
}
