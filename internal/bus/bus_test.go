package bus_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/protocol"
)

// guard bounds every wait: generous, never what a test measures.
const guard = 15 * time.Second

// devices is the bus's DeviceAuthenticator in these tests: the approved
// devices' bus credentials (client id → device id and secret). Which devices
// are approved, and how their secrets are kept, is internal/device's rule
// (tested there and through the API: TestDeviceBusCredentialsAndIsolation);
// here the bus's own: it admits exactly whom the authenticator admits, with
// that device's subjects only.
type devices map[string]struct{ id, secret string }

func (d devices) AuthenticateDevice(clientID, secret string) (string, bool) {
	e, ok := d[clientID]
	if !ok || secret == "" || secret != e.secret {
		return "", false
	}
	return e.id, true
}

// approved are the two devices of the tests.
var approved = devices{
	protocol.ClientID("d1"): {"d1", "secret-1"},
	protocol.ClientID("d2"): {"d2", "secret-2"},
}

// start runs an embedded bus, closed when the test ends.
func start(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Start(bus.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()}, approved)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// device is one device connection and the asynchronous errors the server
// sent it (permission violations).
type device struct {
	nc     *nats.Conn
	errs   chan error
	closed chan struct{}
}

// connect connects as clientID with secret, not reconnecting.
func connect(t *testing.T, b *bus.Bus, clientID, secret string) (*device, error) {
	t.Helper()
	d := &device{errs: make(chan error, 16), closed: make(chan struct{})}
	var once sync.Once
	nc, err := nats.Connect(b.URL(), nats.UserInfo(clientID, secret), nats.NoReconnect(),
		nats.CustomInboxPrefix(protocol.InboxPrefix(protocol.ClientDevice(clientID))),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case d.errs <- err:
			default:
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { once.Do(func() { close(d.closed) }) }))
	if err != nil {
		return nil, err
	}
	d.nc = nc
	t.Cleanup(nc.Close)
	return d, nil
}

func mustConnect(t *testing.T, b *bus.Bus, deviceID string) *device {
	t.Helper()
	id := protocol.ClientID(deviceID)
	d, err := connect(t, b, id, approved[id].secret)
	if err != nil {
		t.Fatalf("%s with its secret: %v", deviceID, err)
	}
	return d
}

// violation waits for the server's permissions violation on what.
func (d *device) violation(t *testing.T, what string) {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case err := <-d.errs:
			if strings.Contains(strings.ToLower(err.Error()), "permissions violation") && strings.Contains(err.Error(), what) {
				return
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s", what)
		}
	}
}

func root(deviceID string) string { return protocol.DeviceSubject(protocol.DefaultPrefix, deviceID) }

// An approved device connects with its secret; a wrong or empty secret, an
// unknown client and the engine's own user name with a guessed password are
// refused.
func TestOnlyApprovedDevicesWithTheirSecretConnect(t *testing.T) {
	b := start(t)
	mustConnect(t, b, "d1")
	for _, c := range []struct{ what, user, secret string }{
		{"a wrong secret", protocol.ClientID("d1"), "secret-2"},
		{"an empty secret", protocol.ClientID("d1"), ""},
		{"an unknown client", protocol.ClientID("d3"), "secret-1"},
		{"the engine's user name", "privicore-engine", "secret-1"},
	} {
		if d, err := connect(t, b, c.user, c.secret); err == nil {
			d.nc.Close()
			t.Errorf("%s connected", c.what)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization error", c.what, err)
		}
	}
}

// A device publishes only on its own from-subjects: the engine receives
// them; a publish on another device's subjects, on a to-subject or on the
// JetStream API is refused by the server and reaches nobody.
func TestDevicePublishesOnlyOnItsOwnFromSubjects(t *testing.T) {
	b := start(t)
	engine, err := b.Conn().SubscribeSync(protocol.DefaultPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	js, err := b.Conn().SubscribeSync("$JS.API.>")
	if err != nil {
		t.Fatal(err)
	}
	b.Conn().Flush()
	d1 := mustConnect(t, b, "d1")
	for _, subject := range []string{protocol.From(root("d2"), "hello"), protocol.To(root("d1"), "ping"), "$JS.API.INFO"} {
		if err := d1.nc.Publish(subject, []byte("refused")); err != nil {
			t.Fatal(err)
		}
		d1.violation(t, subject)
	}
	// One connection's messages arrive in order: the allowed one comes
	// last, so anything refused that got through would have come first.
	own := protocol.From(root("d1"), "hello")
	if err := d1.nc.Publish(own, []byte("allowed")); err != nil {
		t.Fatal(err)
	}
	m, err := engine.NextMsg(guard)
	if err != nil || m.Subject != own || string(m.Data) != "allowed" {
		t.Fatalf("the engine received %v %v first, want the device's own publish on %s", m, err, own)
	}
	if n, _, _ := js.Pending(); n != 0 {
		t.Fatalf("the device reached the JetStream API (%d messages)", n)
	}
}

// A device subscribes only to its own to-subjects and its own inbox: it
// receives what the engine sends it and answers the engine's requests; a
// subscription to another device's subjects or inbox is refused and
// receives nothing.
func TestDeviceSubscribesOnlyToItsOwnSubjects(t *testing.T) {
	b := start(t)
	d1 := mustConnect(t, b, "d1")
	refused := map[string]*nats.Subscription{}
	for _, subject := range []string{protocol.ToAll(root("d2")), protocol.FromAll(root("d1")), protocol.InboxPrefix("d2") + ".>"} {
		sub, err := d1.nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		d1.violation(t, subject)
		refused[subject] = sub
	}
	own, err := d1.nc.SubscribeSync(protocol.ToAll(root("d1")))
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := d1.nc.SubscribeSync(protocol.InboxPrefix("d1") + ".x")
	if err != nil {
		t.Fatal(err)
	}
	d1.nc.Flush()
	for _, subject := range []string{protocol.To(root("d2"), "ping"), protocol.From(root("d1"), "hello"), protocol.InboxPrefix("d2") + ".x",
		protocol.InboxPrefix("d1") + ".x", protocol.To(root("d1"), "ping")} {
		if err := b.Conn().Publish(subject, []byte(subject)); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := inbox.NextMsg(guard); err != nil || m.Subject != protocol.InboxPrefix("d1")+".x" {
		t.Fatalf("own inbox: %v %v", m, err)
	}
	if m, err := own.NextMsg(guard); err != nil || m.Subject != protocol.To(root("d1"), "ping") {
		t.Fatalf("own to-subject: %v %v", m, err)
	}
	// The last message has arrived, so everything sent before it has too.
	for subject, sub := range refused {
		if n, _, _ := sub.Pending(); n != 0 {
			t.Errorf("a refused subscription to %s received %d messages", subject, n)
		}
	}

	// The engine's requests are answered (the reply subject is allowed once
	// per delivery: one subscription only, as the daemons have).
	own.Unsubscribe()
	if _, err := d1.nc.Subscribe(protocol.To(root("d1"), "echo"), func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	d1.nc.Flush()
	if r, err := b.Conn().Request(protocol.To(root("d1"), "echo"), []byte("hi"), guard); err != nil || string(r.Data) != "hi" {
		var errs []error
		for len(d1.errs) > 0 {
			errs = append(errs, <-d1.errs)
		}
		t.Fatalf("request to the device: %v %v %v", r, err, errs)
	}
}

// Disconnect closes every connection of one device, and only its.
func TestDisconnectClosesTheDevicesConnections(t *testing.T) {
	b := start(t)
	first, second := mustConnect(t, b, "d1"), mustConnect(t, b, "d1")
	other := mustConnect(t, b, "d2")
	b.Disconnect(protocol.ClientID("d1"))
	for i, d := range []*device{first, second} {
		select {
		case <-d.closed:
		case <-time.After(guard):
			t.Fatalf("connection %d of the disconnected device is still open", i+1)
		}
	}
	if err := other.nc.FlushTimeout(guard); err != nil || !other.nc.IsConnected() {
		t.Fatalf("the other device lost its connection: %v", err)
	}
	b.Disconnect("") // no one
	if err := other.nc.FlushTimeout(guard); err != nil {
		t.Fatalf("Disconnect of no one: %v", err)
	}
}

// Online reports a device's presence: at once after it connects and after
// Disconnect, and once its connection has ended by itself.
func TestOnlineReportsPresence(t *testing.T) {
	b := start(t)
	d1 := protocol.ClientID("d1")
	if b.Online(d1) || b.Online("") {
		t.Fatal("online before connecting")
	}
	c := mustConnect(t, b, "d1")
	if !b.Online(d1) {
		t.Fatal("not online right after connecting")
	}
	if b.Online(protocol.ClientID("d2")) {
		t.Fatal("another device is online")
	}
	b.Disconnect(d1)
	if b.Online(d1) {
		t.Fatal("online right after Disconnect")
	}
	<-c.closed

	c = mustConnect(t, b, "d1")
	c.nc.Close() // ends by itself
	for deadline := time.Now().Add(guard); b.Online(d1); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still online after its connection closed")
		}
	}
}

// TestProbeCountsABusyDeviceOnline: on an external NATS the engine probes
// a device; one subscribed but slower to answer than the probe's second
// (a busy machine) is online, one with no subscription offline until it
// subscribes.
func TestProbeCountsABusyDeviceOnline(t *testing.T) {
	srv := natsServer(t, false)
	b, err := bus.Start(bus.Config{NATSURL: srv.ClientURL()}, approved)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dev, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	answered := make(chan struct{})
	sub, err := dev.Subscribe(protocol.To(protocol.DeviceSubject(b.Prefix(), "busy"), protocol.OpPing), func(m *nats.Msg) {
		time.Sleep(1500 * time.Millisecond) // past the probe's wait
		m.Respond(nil)
		close(answered)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	dev.Flush()
	if !b.Online(protocol.ClientID("busy")) {
		t.Fatal("a subscribed device slow to answer the probe is offline")
	}
	<-answered
	if b.Online(protocol.ClientID("away")) {
		t.Fatal("a device with no subscription is online")
	}
	// An offline answer is not kept: the device that subscribes right
	// after is online at the next probe.
	late, err := dev.Subscribe(protocol.To(protocol.DeviceSubject(b.Prefix(), "away"), protocol.OpPing), func(m *nats.Msg) { m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer late.Unsubscribe()
	dev.Flush()
	if !b.Online(protocol.ClientID("away")) {
		t.Fatal("a device that subscribed just after an offline probe is still offline")
	}
}
