package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// requestDevice asks for a device identifier with token (the owner's or a
// QR token) and returns the request command id and the device id.
func (a *api) requestDevice(token, name string) (string, string) {
	a.t.Helper()
	cmd := accepted(a.t, a.postJSON("/device/request-unique-identifier", token, map[string]string{"deviceName": name}))
	r := a.postJSON("/device/retrieve-unique-identifier", token, map[string]string{"id": cmd})
	deadline := time.Now().Add(5 * time.Second)
	for r.Status == 404 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		r = a.postJSON("/device/retrieve-unique-identifier", token, map[string]string{"id": cmd})
	}
	expect(a.t, r, 200)
	m := r.Map(a.t)
	if m["deviceIdentifier"] != m["deviceId"] {
		a.t.Fatalf("retrieve: %s", r.Body)
	}
	return cmd, m["deviceIdentifier"].(string)
}

// deviceKey registers a fresh key for device id and returns it.
func (a *api) deviceKey(token, id string) string {
	a.t.Helper()
	priv, _ := keys.Generate()
	k := keys.SignedPublic(priv)
	a.succeed(accepted(a.t, a.postJSON("/public-key/register-public-key", token, map[string]string{"publicKey": k, "deviceIdentifier": id})))
	return k
}

// approvedDevice enrolls, keys and approves a device of u.
func (a *api) approvedDevice(u *user, name string) string {
	a.t.Helper()
	_, id := a.requestDevice(u.Token, name)
	a.deviceKey(u.Token, id)
	a.succeed(accepted(a.t, a.postForm("/device/approve-device", u.Token, url.Values{"deviceIdentifier": {id}})))
	return id
}

type deviceRecord struct {
	DeviceIdentifier, Name, DisplayName, Role, State string
	Tags                                             []string
	Meta                                             map[string]any
	HasPublicKey, Online                             bool
	LastSeenAt                                       *time.Time
	CreatedAt                                        time.Time
}

func (a *api) devices(token string) map[string]deviceRecord {
	a.t.Helper()
	r := a.get("/device/retrieve-profile-devices", token)
	expect(a.t, r, 200)
	var list []deviceRecord
	r.JSON(a.t, &list)
	out := map[string]deviceRecord{}
	for _, d := range list {
		out[d.DeviceIdentifier] = d
	}
	return out
}

func (a *api) rejected(id, reason string) {
	a.t.Helper()
	if st, body := a.settle(id); st != 3 || body != reason {
		a.t.Fatalf("command %s: status %d body %q, want rejection %s", id, st, body, reason)
	}
}

func TestDeviceLifecycle(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("owner")

	cmd, id := a.requestDevice(u.Token, "vault-1")
	if st, body := a.settle(cmd); st != 2 || body != id {
		t.Fatalf("request ack %d %q, want the device id", st, body)
	}
	// The alias answers the same.
	r := a.get("/device/retrieve-device-id/"+cmd, u.Token)
	expect(t, r, 200)
	if r.Map(t)["deviceIdentifier"] != id {
		t.Fatalf("alias: %s", r.Body)
	}
	d := a.devices(u.Token)[id]
	if d.State != "pending" || d.Role != "none" || d.HasPublicKey || d.Name != "vault-1" || d.Online {
		t.Fatalf("new device %+v", d)
	}

	// Configuration needs approval (approval before the key: device_approval_test.go).
	expect(t, a.get("/device/retrieve-device-configuration/"+id, u.Token), http.StatusConflict)
	key := a.deviceKey(u.Token, id)
	r = a.get("/public-key/retrieve-public-key?deviceIdentifier="+id, u.Token)
	expect(t, r, 200)
	if r.Map(t)["publicKey"] != key {
		t.Fatalf("device key %s", r.Body)
	}
	a.succeed(accepted(t, a.postJSON("/device/approve-device", u.Token, map[string]string{"deviceId": id})))
	a.rejected(accepted(t, a.postJSON("/device/approve-device", u.Token, map[string]string{"deviceIdentifier": id})), "device.already_approved")
	a.rejected(accepted(t, a.postJSON("/device/reject-device", u.Token, map[string]string{"deviceIdentifier": id})), "device.already_approved")

	// Meta: JSON and form encodings, objects as bracketed keys.
	a.succeed(accepted(t, a.postJSON("/device/configure-meta", u.Token, map[string]any{"deviceIdentifier": id, "displayName": "Vault One", "tags": []string{"a", "b"}, "meta": map[string]any{"rack": 7}})))
	a.succeed(accepted(t, a.postForm("/device/configure-device-meta", u.Token, url.Values{"deviceIdentifier": {id}, "name": {"v1"}, "meta[site][city]": {"Ghent"}})))
	d = a.devices(u.Token)[id]
	site, _ := d.Meta["site"].(map[string]any)
	if d.Name != "v1" || d.DisplayName != "Vault One" || strings.Join(d.Tags, ",") != "a,b" || site["city"] != "Ghent" || d.State != "approved" || !d.HasPublicKey {
		t.Fatalf("after meta: %+v", d)
	}
	expect(t, a.postJSON("/device/configure-meta", u.Token, map[string]any{"deviceIdentifier": id, "meta": "[1]"}), 422)
	expect(t, a.postJSON("/device/configure-meta", u.Token, map[string]any{"deviceIdentifier": "not-a-uuid"}), 422)

	// Roles: one at a time, only when approved.
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id})))
	a.rejected(accepted(t, a.postJSON("/storage/register-storage-device", u.Token, map[string]string{"deviceIdentifier": id})), "device.role_taken")
	if d := a.devices(u.Token)[id]; d.Role != "storage" {
		t.Fatalf("role %q", d.Role)
	}
	a.succeed(accepted(t, a.postJSON("/storage/remove", u.Token, map[string]string{"deviceIdentifier": id})))
	a.rejected(accepted(t, a.postJSON("/storage/remove-storage", u.Token, map[string]string{"deviceIdentifier": id})), "device.role_not_held")
	_, pending := a.requestDevice(u.Token, "pending")
	a.rejected(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": pending})), "device.not_approved")

	// Reject deletes a pending device and its key.
	a.succeed(accepted(t, a.postJSON("/device/reject-device", u.Token, map[string]string{"deviceIdentifier": pending})))
	if _, still := a.devices(u.Token)[pending]; still {
		t.Fatal("rejected device still listed")
	}
	// Remove deletes an approved one.
	a.succeed(accepted(t, a.postJSON("/device/remove-device", u.Token, map[string]string{"deviceIdentifier": id})))
	if len(a.devices(u.Token)) != 0 {
		t.Fatalf("devices after removal: %v", a.devices(u.Token))
	}
	a.rejected(accepted(t, a.postJSON("/device/approve-device", u.Token, map[string]string{"deviceIdentifier": id})), "device.not_found")
}

func TestDevicesOfAnotherProfileAreMissing(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	alice, bob := a.activeUser("alice"), a.activeUser("bob")
	id := a.approvedDevice(alice, "alice-dev")
	cmd, _ := a.requestDevice(alice.Token, "another")

	if len(a.devices(bob.Token)) != 0 {
		t.Fatal("bob lists alice's devices")
	}
	expect(t, a.postJSON("/device/retrieve-unique-identifier", bob.Token, map[string]string{"id": cmd}), 404)
	expect(t, a.get("/device/retrieve-device-configuration/"+id, bob.Token), 404)
	expect(t, a.get("/public-key/retrieve-public-key?deviceIdentifier="+id, bob.Token), 404)
	for _, path := range []string{"/device/approve-device", "/device/reject-device", "/device/remove", "/storage/register", "/device/configure-meta"} {
		a.rejected(accepted(t, a.postJSON(path, bob.Token, map[string]string{"deviceIdentifier": id, "name": "pwned"})), "device.not_found")
	}
	priv, _ := keys.Generate()
	a.rejected(accepted(t, a.postJSON("/public-key/register-public-key", bob.Token, map[string]string{"publicKey": keys.SignedPublic(priv), "deviceIdentifier": id})), "device.not_found")
	d := a.devices(alice.Token)[id]
	if d.Name != "alice-dev" || d.State != "approved" || d.Role != "none" {
		t.Fatalf("bob changed alice's device: %+v", d)
	}
}

func TestQREnrollment(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("qr-owner")
	qr := a.postJSON("/profile/generate-token-qr", u.Token, map[string]string{"role": "storage"}).Map(t)["qrToken"].(string)

	// The device side, with the QR token only.
	_, id := a.requestDevice(qr, "scanned")
	expect(t, a.postJSON("/device/request-unique-identifier", qr, nil), 401) // one device per QR token
	expect(t, a.get("/device/retrieve-profile-devices", qr), 401)            // enrollment only
	expect(t, a.get("/profile/retrieve-profile-id", qr), 401)
	a.deviceKey(qr, id)
	d := a.devices(u.Token)[id]
	if d.State != "approved" || d.Role != "storage" || !d.HasPublicKey {
		t.Fatalf("QR-enrolled device %+v, want approved storage", d)
	}
	// The QR token acts only for its own device.
	_, other := a.requestDevice(u.Token, "other")
	priv, _ := keys.Generate()
	a.rejected(accepted(t, a.postJSON("/public-key/register-public-key", qr, map[string]string{"publicKey": keys.SignedPublic(priv), "deviceIdentifier": other})), "device.not_found")
	if a.devices(u.Token)[other].HasPublicKey {
		t.Fatal("a QR token set another device's key")
	}
}

func (a *api) bundle(token, id string) *privicore.Bundle {
	a.t.Helper()
	r := a.get("/device/retrieve-device-configuration/"+id, token)
	expect(a.t, r, 200)
	var b privicore.Bundle
	if err := json.Unmarshal(r.Body, &b); err != nil {
		a.t.Fatal(err)
	}
	return &b
}

// connect joins the bus as the device of b.
func connect(t *testing.T, b *privicore.Bundle, errs chan error) (*nats.Conn, error) {
	t.Helper()
	opts := []nats.Option{nats.UserInfo(b.ClientID, b.ClientSecret), nats.CustomInboxPrefix(protocol.InboxPrefix(b.DeviceIdentifier)),
		nats.MaxReconnects(0), nats.Timeout(5 * time.Second)}
	if errs != nil {
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }),
			nats.ClosedHandler(func(*nats.Conn) { errs <- errors.New("closed") }))
	}
	nc, err := nats.Connect(b.BusURL, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// expectViolation waits for the bus to refuse something (what: the failure
// message if it does not).
func expectViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("unexpected error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(what)
	}
}

func TestDeviceBusCredentialsAndIsolation(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("bus")
	id1, id2 := a.approvedDevice(u, "d1"), a.approvedDevice(u, "d2")
	b1, b2 := a.bundle(u.Token, id1), a.bundle(u.Token, id2)
	if b1.ClientID == "" || b1.ClientSecret == "" || b1.EnginePublicKey != e.EngineKey || b1.BusSubjectPrefix != "privicore.dev."+id1 || b1.Role != "none" || b1.DeviceIdentifier != id1 {
		t.Fatalf("bundle %+v", b1)
	}
	if _, err := connect(t, &privicore.Bundle{ClientID: b1.ClientID, ClientSecret: "wrong", BusURL: b1.BusURL, DeviceIdentifier: id1}, nil); err == nil {
		t.Fatal("a wrong secret connected")
	}
	errs := make(chan error, 10)
	nc1, err := connect(t, b1, errs)
	if err != nil {
		t.Fatal(err)
	}
	if d := a.devices(u.Token)[id1]; !d.Online || d.LastSeenAt == nil {
		t.Fatalf("connected device %+v not online", d)
	}
	own, _ := nc1.SubscribeSync(b1.BusSubjectPrefix + ".to.>")
	spy, _ := nc1.SubscribeSync(b2.BusSubjectPrefix + ".to.>") // another device's subjects
	nc1.Flush()
	expectViolation(t, errs, "subscribing to another device's subjects was not refused")
	engine := e.Bus.Conn()
	engine.Publish(b2.BusSubjectPrefix+".to.store", []byte("for d2"))
	engine.Publish(b1.BusSubjectPrefix+".to.store", []byte("for d1"))
	engine.Flush()
	if m, err := own.NextMsg(5 * time.Second); err != nil || string(m.Data) != "for d1" {
		t.Fatalf("own subject: %v %v", m, err)
	}
	if m, err := spy.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("device 1 read device 2's message %q", m.Data)
	}
	if err := nc1.Publish(b2.BusSubjectPrefix+".from.vote", []byte("forged")); err == nil {
		nc1.Flush()
		expectViolation(t, errs, "publishing as another device was not refused")
	}
	// JetStream runs in the engine's account, its state under the data
	// directory; a device cannot reach its API.
	if info, err := e.Bus.JetStreamInfo(); err != nil || info.MaxStore != bus.JetStreamMaxStore || info.MaxMemory != bus.JetStreamMaxMemory {
		t.Fatalf("engine JetStream: %+v %v", info, err)
	}
	if fi, err := os.Stat(filepath.Join(bus.StoreDir(e.DataDir), "jetstream")); err != nil || !fi.IsDir() {
		t.Fatalf("JetStream state not under the data directory: %v", err)
	}
	if err := nc1.Publish("$JS.API.STREAM.CREATE.spy", []byte(`{"name":"spy","subjects":["privicore.>"]}`)); err == nil {
		nc1.Flush()
		expectViolation(t, errs, "a device reached the JetStream API")
	}

	// A new bundle issues a new secret: the old one stops working at once.
	b1b := a.bundle(u.Token, id1)
	waitClosed(t, nc1)
	if _, err := connect(t, b1, nil); err == nil {
		t.Fatal("the old secret still connects")
	}
	nc1b, err := connect(t, b1b, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Removal revokes the credentials and closes the connection.
	a.succeed(accepted(t, a.postJSON("/device/remove", u.Token, map[string]string{"deviceIdentifier": id1})))
	waitClosed(t, nc1b)
	if _, err := connect(t, b1b, nil); err == nil {
		t.Fatal("a removed device still connects")
	}
}

func waitClosed(t *testing.T, nc *nats.Conn) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !nc.IsConnected() {
			return
		}
	}
	t.Fatal("connection still open")
}
